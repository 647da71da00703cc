//! Streams: Redis 7's append-only logs with consumer groups (XADD, XRANGE, XREADGROUP,
//! XACK, XPENDING, XCLAIM, XAUTOCLAIM, ...), the data structure services use as a job
//! queue with acknowledgements.
//!
//! This module is the value and its semantics, pure: a [`Stream`] and one function per
//! command, taking parsed arguments and the clock (Unix milliseconds) and returning
//! Redis's reply. Argument parsing is [`parse`]; the engine looks keys up and calls in.
//!
//! Consumer groups keep what Redis keeps: the last delivered ID, the pending entries list
//! (PEL) with each entry's owner, delivery count and last delivery time, and per-consumer
//! PELs, so that a consumer that dies holding entries leaves them pending until another
//! claims them (XCLAIM, XAUTOCLAIM) — the failure a job queue on streams must handle.
//!
//! Differences from Redis, on purpose: approximate trimming (`~`) removes whole blocks of
//! 100 entries (Redis removes whole radix-tree nodes, whose size depends on the entries'
//! bytes), and XINFO is not modelled.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use super::command::{errors, Reply};

/// An entry ID: milliseconds and a sequence number, ordered as Redis orders them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub fn new(ms: u64, seq: u64) -> Self {
        StreamId { ms, seq }
    }

    fn next(self) -> Option<StreamId> {
        if self.seq < u64::MAX {
            Some(StreamId::new(self.ms, self.seq + 1))
        } else if self.ms < u64::MAX {
            Some(StreamId::new(self.ms + 1, 0))
        } else {
            None
        }
    }

    fn prev(self) -> Option<StreamId> {
        if self.seq > 0 {
            Some(StreamId::new(self.ms, self.seq - 1))
        } else if self.ms > 0 {
            Some(StreamId::new(self.ms - 1, u64::MAX))
        } else {
            None
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";
const ID_TOO_SMALL: &str =
    "ERR The ID specified in XADD is equal or smaller than the target stream top item";
const ID_ZERO: &str = "ERR The ID specified in XADD must be greater than 0-0";

/// Parses a full or partial ID (`5`, `5-1`); a missing sequence is `missing_seq`.
fn parse_id(s: &str, missing_seq: u64) -> Result<StreamId, Reply> {
    let bad = || Reply::error(INVALID_ID);
    let (ms, seq) = match s.split_once('-') {
        Some((ms, seq)) => (ms, Some(seq)),
        None => (s, None),
    };
    let ms: u64 = ms.parse().map_err(|_| bad())?;
    let seq = match seq {
        Some(seq) => seq.parse().map_err(|_| bad())?,
        None => missing_seq,
    };
    Ok(StreamId::new(ms, seq))
}

/// A range bound of XRANGE and XPENDING: `-`, `+`, an ID, or `(ID` (exclusive).
fn parse_bound(s: &str, start: bool) -> Result<Option<StreamId>, Reply> {
    match s {
        "-" => Ok(Some(StreamId::MIN)),
        "+" => Ok(Some(StreamId::MAX)),
        _ => {
            let (exclusive, id) = match s.strip_prefix('(') {
                Some(rest) => (true, rest),
                None => (false, s),
            };
            let id = parse_id(id, if start { 0 } else { u64::MAX })?;
            if !exclusive {
                return Ok(Some(id));
            }
            Ok(if start { id.next() } else { id.prev() })
        }
    }
}

/// How XADD picks the new entry's ID.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum IdSpec {
    /// `*`: the clock, or one more than the last ID.
    Auto,
    /// `ms-*`: that millisecond, the next sequence number.
    AutoSeq(u64),
    Explicit(StreamId),
}

/// A trimming rule (XADD's MAXLEN/MINID, XTRIM).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Trim {
    MaxLen { len: u64, approx: bool },
    MinId { id: StreamId, approx: bool },
}

/// A stream command with its arguments parsed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum StreamCommand {
    Add {
        key: String,
        no_mkstream: bool,
        trim: Option<Trim>,
        id: IdSpec,
        fields: Vec<(String, String)>,
    },
    Len {
        key: String,
    },
    Range {
        key: String,
        start: String,
        end: String,
        count: Option<u64>,
        rev: bool,
    },
    Del {
        key: String,
        ids: Vec<StreamId>,
    },
    TrimCmd {
        key: String,
        trim: Trim,
    },
    /// XREAD and XREADGROUP (with `group`).
    Read {
        group: Option<(String, String)>,
        count: Option<u64>,
        block: Option<u64>,
        noack: bool,
        keys: Vec<String>,
        ids: Vec<String>,
    },
    GroupCreate {
        key: String,
        group: String,
        id: String,
        mkstream: bool,
    },
    GroupDestroy {
        key: String,
        group: String,
    },
    GroupCreateConsumer {
        key: String,
        group: String,
        consumer: String,
    },
    GroupDelConsumer {
        key: String,
        group: String,
        consumer: String,
    },
    GroupSetId {
        key: String,
        group: String,
        id: String,
    },
    Ack {
        key: String,
        group: String,
        ids: Vec<StreamId>,
    },
    Pending {
        key: String,
        group: String,
        /// `(min idle, start, end, count, consumer)` for the extended form.
        extended: Option<(u64, String, String, u64, Option<String>)>,
    },
    Claim {
        key: String,
        group: String,
        consumer: String,
        min_idle: u64,
        ids: Vec<StreamId>,
        idle: Option<u64>,
        time: Option<u64>,
        retry_count: Option<u64>,
        force: bool,
        just_id: bool,
    },
    AutoClaim {
        key: String,
        group: String,
        consumer: String,
        min_idle: u64,
        start: String,
        count: u64,
        just_id: bool,
    },
}

impl StreamCommand {
    /// The lowercase command name.
    pub fn name(&self) -> &'static str {
        use StreamCommand::*;
        match self {
            Add { .. } => "xadd",
            Len { .. } => "xlen",
            Range { rev: false, .. } => "xrange",
            Range { rev: true, .. } => "xrevrange",
            Del { .. } => "xdel",
            TrimCmd { .. } => "xtrim",
            Read { group: None, .. } => "xread",
            Read { group: Some(_), .. } => "xreadgroup",
            GroupCreate { .. }
            | GroupDestroy { .. }
            | GroupCreateConsumer { .. }
            | GroupDelConsumer { .. }
            | GroupSetId { .. } => "xgroup",
            Ack { .. } => "xack",
            Pending { .. } => "xpending",
            Claim { .. } => "xclaim",
            AutoClaim { .. } => "xautoclaim",
        }
    }

    /// The arguments after the command name, as a client would send them.
    pub fn to_args(&self) -> Vec<String> {
        use StreamCommand::*;
        let mut a: Vec<String> = Vec::new();
        let trim_args = |t: &Trim, a: &mut Vec<String>| {
            let (kind, approx, threshold) = match t {
                Trim::MaxLen { len, approx } => ("MAXLEN", *approx, len.to_string()),
                Trim::MinId { id, approx } => ("MINID", *approx, id.to_string()),
            };
            a.push(kind.into());
            if approx {
                a.push("~".into());
            }
            a.push(threshold);
        };
        match self {
            Add {
                key,
                no_mkstream,
                trim,
                id,
                fields,
            } => {
                a.push(key.clone());
                if *no_mkstream {
                    a.push("NOMKSTREAM".into());
                }
                if let Some(t) = trim {
                    trim_args(t, &mut a);
                }
                a.push(match id {
                    IdSpec::Auto => "*".into(),
                    IdSpec::AutoSeq(ms) => format!("{ms}-*"),
                    IdSpec::Explicit(id) => id.to_string(),
                });
                for (f, v) in fields {
                    a.extend([f.clone(), v.clone()]);
                }
            }
            Len { key } => a.push(key.clone()),
            Range {
                key,
                start,
                end,
                count,
                rev,
            } => {
                a.push(key.clone());
                if *rev {
                    a.extend([end.clone(), start.clone()]);
                } else {
                    a.extend([start.clone(), end.clone()]);
                }
                if let Some(c) = count {
                    a.extend(["COUNT".into(), c.to_string()]);
                }
            }
            Del { key, ids } => {
                a.push(key.clone());
                a.extend(ids.iter().map(StreamId::to_string));
            }
            TrimCmd { key, trim } => {
                a.push(key.clone());
                trim_args(trim, &mut a);
            }
            Read {
                group,
                count,
                block,
                noack,
                keys,
                ids,
            } => {
                if let Some((g, c)) = group {
                    a.extend(["GROUP".into(), g.clone(), c.clone()]);
                }
                if let Some(c) = count {
                    a.extend(["COUNT".into(), c.to_string()]);
                }
                if let Some(b) = block {
                    a.extend(["BLOCK".into(), b.to_string()]);
                }
                if *noack {
                    a.push("NOACK".into());
                }
                a.push("STREAMS".into());
                a.extend(keys.iter().cloned());
                a.extend(ids.iter().cloned());
            }
            GroupCreate {
                key,
                group,
                id,
                mkstream,
            } => {
                a.extend(["CREATE".into(), key.clone(), group.clone(), id.clone()]);
                if *mkstream {
                    a.push("MKSTREAM".into());
                }
            }
            GroupDestroy { key, group } => a.extend(["DESTROY".into(), key.clone(), group.clone()]),
            GroupCreateConsumer {
                key,
                group,
                consumer,
            } => a.extend([
                "CREATECONSUMER".into(),
                key.clone(),
                group.clone(),
                consumer.clone(),
            ]),
            GroupDelConsumer {
                key,
                group,
                consumer,
            } => a.extend([
                "DELCONSUMER".into(),
                key.clone(),
                group.clone(),
                consumer.clone(),
            ]),
            GroupSetId { key, group, id } => {
                a.extend(["SETID".into(), key.clone(), group.clone(), id.clone()])
            }
            Ack { key, group, ids } => {
                a.extend([key.clone(), group.clone()]);
                a.extend(ids.iter().map(StreamId::to_string));
            }
            Pending {
                key,
                group,
                extended,
            } => {
                a.extend([key.clone(), group.clone()]);
                if let Some((idle, start, end, count, consumer)) = extended {
                    if *idle > 0 {
                        a.extend(["IDLE".into(), idle.to_string()]);
                    }
                    a.extend([start.clone(), end.clone(), count.to_string()]);
                    a.extend(consumer.iter().cloned());
                }
            }
            Claim {
                key,
                group,
                consumer,
                min_idle,
                ids,
                idle,
                time,
                retry_count,
                force,
                just_id,
            } => {
                a.extend([
                    key.clone(),
                    group.clone(),
                    consumer.clone(),
                    min_idle.to_string(),
                ]);
                a.extend(ids.iter().map(StreamId::to_string));
                for (name, v) in [("IDLE", idle), ("TIME", time), ("RETRYCOUNT", retry_count)] {
                    if let Some(v) = v {
                        a.extend([name.to_string(), v.to_string()]);
                    }
                }
                if *force {
                    a.push("FORCE".into());
                }
                if *just_id {
                    a.push("JUSTID".into());
                }
            }
            AutoClaim {
                key,
                group,
                consumer,
                min_idle,
                start,
                count,
                just_id,
            } => {
                a.extend([
                    key.clone(),
                    group.clone(),
                    consumer.clone(),
                    min_idle.to_string(),
                    start.clone(),
                    "COUNT".into(),
                    count.to_string(),
                ]);
                if *just_id {
                    a.push("JUSTID".into());
                }
            }
        }
        a
    }

    /// The keys the command touches (for WATCH, expiry and type checks).
    pub fn keys(&self) -> Vec<&str> {
        use StreamCommand::*;
        match self {
            Read { keys, .. } => keys.iter().map(String::as_str).collect(),
            Add { key, .. }
            | Len { key }
            | Range { key, .. }
            | Del { key, .. }
            | TrimCmd { key, .. }
            | GroupCreate { key, .. }
            | GroupDestroy { key, .. }
            | GroupCreateConsumer { key, .. }
            | GroupDelConsumer { key, .. }
            | GroupSetId { key, .. }
            | Ack { key, .. }
            | Pending { key, .. }
            | Claim { key, .. }
            | AutoClaim { key, .. } => vec![key.as_str()],
        }
    }

    /// Whether the command may write.
    pub fn is_write(&self) -> bool {
        !matches!(
            self,
            StreamCommand::Len { .. }
                | StreamCommand::Range { .. }
                | StreamCommand::Pending { .. }
                | StreamCommand::Read { group: None, .. }
        )
    }
}

fn syntax() -> Reply {
    Reply::error(errors::SYNTAX)
}

fn uint(s: &str) -> Result<u64, Reply> {
    s.parse::<u64>()
        .map_err(|_| Reply::error(errors::NOT_INTEGER))
}

/// Parses a stream command (`name` lowercase, `args` after the name). `None` when `name`
/// is not a stream command. Arity is the caller's check.
pub fn parse(name: &str, args: &[&str]) -> Option<Result<StreamCommand, Reply>> {
    Some(match name {
        "xadd" => parse_add(args),
        "xlen" => Ok(StreamCommand::Len {
            key: args[0].into(),
        }),
        "xrange" | "xrevrange" => parse_range(args, name == "xrevrange"),
        "xdel" => args[1..]
            .iter()
            .map(|s| parse_id(s, 0))
            .collect::<Result<_, _>>()
            .map(|ids| StreamCommand::Del {
                key: args[0].into(),
                ids,
            }),
        "xtrim" => parse_trim(&args[1..]).and_then(|(trim, used)| {
            if used != args.len() - 1 {
                return Err(syntax());
            }
            trim.map(|trim| StreamCommand::TrimCmd {
                key: args[0].into(),
                trim,
            })
            .ok_or_else(syntax)
        }),
        "xread" => parse_read(args, false),
        "xreadgroup" => parse_read(args, true),
        "xgroup" => parse_group(args),
        "xack" => args[2..]
            .iter()
            .map(|s| parse_id(s, 0))
            .collect::<Result<_, _>>()
            .map(|ids| StreamCommand::Ack {
                key: args[0].into(),
                group: args[1].into(),
                ids,
            }),
        "xpending" => parse_pending(args),
        "xclaim" => parse_claim(args),
        "xautoclaim" => parse_autoclaim(args),
        _ => return None,
    })
}

/// A trimming clause at the start of `args`; returns it and how many arguments it used.
fn parse_trim(args: &[&str]) -> Result<(Option<Trim>, usize), Reply> {
    let Some(kind) = args.first().map(|a| a.to_ascii_lowercase()) else {
        return Ok((None, 0));
    };
    if kind != "maxlen" && kind != "minid" {
        return Ok((None, 0));
    }
    let mut i = 1;
    let mut approx = false;
    match args.get(i).copied() {
        Some("~") => {
            approx = true;
            i += 1;
        }
        Some("=") => i += 1,
        _ => {}
    }
    let threshold = args.get(i).ok_or_else(syntax)?;
    i += 1;
    // LIMIT only bounds approximate trimming's work; it does not change what exact
    // trimming keeps, so it is accepted and otherwise ignored.
    if args.get(i).is_some_and(|a| a.eq_ignore_ascii_case("limit")) {
        if !approx {
            return Err(Reply::error(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
        uint(args.get(i + 1).ok_or_else(syntax)?)?;
        i += 2;
    }
    let trim = if kind == "maxlen" {
        let len: i64 = threshold
            .parse()
            .map_err(|_| Reply::error(errors::NOT_INTEGER))?;
        if len < 0 {
            return Err(Reply::error("ERR The MAXLEN argument must be >= 0."));
        }
        Trim::MaxLen {
            len: len as u64,
            approx,
        }
    } else {
        Trim::MinId {
            id: parse_id(threshold, 0)?,
            approx,
        }
    };
    Ok((Some(trim), i))
}

fn parse_add(args: &[&str]) -> Result<StreamCommand, Reply> {
    let key = args[0].to_string();
    let mut i = 1;
    let mut no_mkstream = false;
    let mut trim = None;
    loop {
        let Some(a) = args.get(i) else {
            return Err(Reply::error(errors::arity("xadd")));
        };
        if a.eq_ignore_ascii_case("nomkstream") {
            no_mkstream = true;
            i += 1;
            continue;
        }
        let (t, used) = parse_trim(&args[i..])?;
        if used > 0 {
            trim = t;
            i += used;
            continue;
        }
        break;
    }
    let id = match args[i] {
        "*" => IdSpec::Auto,
        s => match s.strip_suffix("-*") {
            Some(ms) => IdSpec::AutoSeq(ms.parse().map_err(|_| Reply::error(INVALID_ID))?),
            None => IdSpec::Explicit(parse_id(s, 0)?),
        },
    };
    let rest = &args[i + 1..];
    if rest.is_empty() || rest.len() % 2 != 0 {
        return Err(Reply::error(errors::arity("xadd")));
    }
    // Refused before the key is looked up (no WRONGTYPE, no NOMKSTREAM nil), as in Redis.
    if matches!(id, IdSpec::Explicit(StreamId { ms: 0, seq: 0 })) {
        return Err(Reply::error(ID_ZERO));
    }
    let fields = rest
        .chunks(2)
        .map(|p| (p[0].to_string(), p[1].to_string()))
        .collect();
    Ok(StreamCommand::Add {
        key,
        no_mkstream,
        trim,
        id,
        fields,
    })
}

fn parse_range(args: &[&str], rev: bool) -> Result<StreamCommand, Reply> {
    // The bounds are read before COUNT, as `xrangeGenericCommand` does.
    let (start, end) = if rev {
        (args[2], args[1])
    } else {
        (args[1], args[2])
    };
    parse_bound(start, true)?;
    parse_bound(end, false)?;
    let count = match args.len() {
        3 => None,
        5 if args[3].eq_ignore_ascii_case("count") => Some(
            args[4]
                .parse::<i64>()
                .map_err(|_| Reply::error(errors::NOT_INTEGER))?
                .max(0) as u64,
        ),
        _ => return Err(syntax()),
    };
    Ok(StreamCommand::Range {
        key: args[0].into(),
        start: start.into(),
        end: end.into(),
        count,
        rev,
    })
}

fn parse_read(args: &[&str], grouped: bool) -> Result<StreamCommand, Reply> {
    let mut i = 0;
    let mut group = None;
    let mut count = None;
    let mut block = None;
    let mut noack = false;
    while i < args.len() {
        let a = args[i].to_ascii_lowercase();
        match a.as_str() {
            "count" if i + 1 < args.len() => {
                let n: i64 = args[i + 1]
                    .parse()
                    .map_err(|_| Reply::error(errors::NOT_INTEGER))?;
                count = (n > 0).then_some(n as u64);
                i += 2;
            }
            "block" if i + 1 < args.len() => {
                let ms: i64 = args[i + 1]
                    .parse()
                    .map_err(|_| Reply::error("ERR timeout is not an integer or out of range"))?;
                if ms < 0 {
                    return Err(Reply::error(errors::TIMEOUT_NEGATIVE));
                }
                block = Some(ms as u64);
                i += 2;
            }
            "group" if grouped && i + 2 < args.len() => {
                group = Some((args[i + 1].to_string(), args[i + 2].to_string()));
                i += 3;
            }
            "noack" if grouped => {
                noack = true;
                i += 1;
            }
            "streams" => {
                i += 1;
                break;
            }
            _ => return Err(syntax()),
        }
    }
    let rest = &args[i.min(args.len())..];
    if rest.is_empty() || rest.len() % 2 != 0 {
        return Err(Reply::error(
            "ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified.",
        ));
    }
    if grouped && group.is_none() {
        return Err(Reply::error("ERR Missing GROUP option for XREADGROUP"));
    }
    let half = rest.len() / 2;
    Ok(StreamCommand::Read {
        group,
        count,
        block,
        noack,
        keys: rest[..half].iter().map(|s| s.to_string()).collect(),
        ids: rest[half..].iter().map(|s| s.to_string()).collect(),
    })
}

fn parse_group(args: &[&str]) -> Result<StreamCommand, Reply> {
    let sub = args[0].to_ascii_lowercase();
    let n = args.len();
    let arity = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(Reply::error(errors::arity(&format!("xgroup|{sub}"))))
        }
    };
    match sub.as_str() {
        "create" => {
            arity((4..=7).contains(&n))?;
            let mut mkstream = false;
            let mut i = 4;
            while i < n {
                if args[i].eq_ignore_ascii_case("mkstream") {
                    mkstream = true;
                    i += 1;
                } else if args[i].eq_ignore_ascii_case("entriesread") && i + 1 < n {
                    uint(args[i + 1])?;
                    i += 2;
                } else {
                    return Err(syntax());
                }
            }
            Ok(StreamCommand::GroupCreate {
                key: args[1].into(),
                group: args[2].into(),
                id: args[3].into(),
                mkstream,
            })
        }
        "destroy" => {
            arity(n == 3)?;
            Ok(StreamCommand::GroupDestroy {
                key: args[1].into(),
                group: args[2].into(),
            })
        }
        "createconsumer" | "delconsumer" => {
            arity(n == 4)?;
            let (key, group, consumer) = (args[1].into(), args[2].into(), args[3].into());
            Ok(if sub == "createconsumer" {
                StreamCommand::GroupCreateConsumer {
                    key,
                    group,
                    consumer,
                }
            } else {
                StreamCommand::GroupDelConsumer {
                    key,
                    group,
                    consumer,
                }
            })
        }
        "setid" => {
            arity(n == 4 || n == 6)?;
            Ok(StreamCommand::GroupSetId {
                key: args[1].into(),
                group: args[2].into(),
                id: args[3].into(),
            })
        }
        _ => Err(Reply::error(format!(
            "ERR unknown subcommand '{}'. Try XGROUP HELP.",
            args[0]
        ))),
    }
}

fn parse_pending(args: &[&str]) -> Result<StreamCommand, Reply> {
    let (key, group) = (args[0].to_string(), args[1].to_string());
    if args.len() == 2 {
        return Ok(StreamCommand::Pending {
            key,
            group,
            extended: None,
        });
    }
    let mut i = 2;
    let mut min_idle = 0;
    if args[i].eq_ignore_ascii_case("idle") {
        min_idle = uint(args.get(i + 1).ok_or_else(syntax)?)?;
        i += 2;
    }
    let rest = &args[i..];
    if rest.len() != 3 && rest.len() != 4 {
        return Err(syntax());
    }
    // The count is read before the bounds, as `xpendingCommand` does.
    let count: i64 = rest[2]
        .parse()
        .map_err(|_| Reply::error(errors::NOT_INTEGER))?;
    parse_bound(rest[0], true)?;
    parse_bound(rest[1], false)?;
    Ok(StreamCommand::Pending {
        key,
        group,
        extended: Some((
            min_idle,
            rest[0].into(),
            rest[1].into(),
            count.max(0) as u64,
            rest.get(3).map(|c| c.to_string()),
        )),
    })
}

fn parse_claim(args: &[&str]) -> Result<StreamCommand, Reply> {
    let min_idle: i64 = args[3]
        .parse()
        .map_err(|_| Reply::error("ERR Invalid min-idle-time argument for XCLAIM"))?;
    let mut ids = Vec::new();
    let mut i = 4;
    while i < args.len() {
        match parse_id(args[i], 0) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        i += 1;
    }
    let (mut idle, mut time, mut retry_count, mut force, mut just_id) =
        (None, None, None, false, false);
    while i < args.len() {
        let opt = args[i].to_ascii_lowercase();
        let value = || -> Result<u64, Reply> {
            let v = args.get(i + 1).ok_or_else(syntax)?;
            v.parse::<i64>()
                .map(|v| v.max(0) as u64)
                .map_err(|_| Reply::error(errors::NOT_INTEGER))
        };
        match opt.as_str() {
            "idle" => {
                idle = Some(value()?);
                i += 2;
            }
            "time" => {
                time = Some(value()?);
                i += 2;
            }
            "retrycount" => {
                retry_count = Some(value()?);
                i += 2;
            }
            "force" => {
                force = true;
                i += 1;
            }
            "justid" => {
                just_id = true;
                i += 1;
            }
            "lastid" => {
                parse_id(args.get(i + 1).ok_or_else(syntax)?, 0)?;
                i += 2;
            }
            _ => {
                return Err(Reply::error(format!(
                    "ERR Unrecognized XCLAIM option '{}'",
                    args[i]
                )))
            }
        }
    }
    Ok(StreamCommand::Claim {
        key: args[0].into(),
        group: args[1].into(),
        consumer: args[2].into(),
        min_idle: min_idle.max(0) as u64,
        ids,
        idle,
        time,
        retry_count,
        force,
        just_id,
    })
}

fn parse_autoclaim(args: &[&str]) -> Result<StreamCommand, Reply> {
    let min_idle: i64 = args[3]
        .parse()
        .map_err(|_| Reply::error("ERR Invalid min-idle-time argument for XAUTOCLAIM"))?;
    parse_bound(args[4], true)?;
    let mut count = 100;
    let mut just_id = false;
    let mut i = 5;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case("count") && i + 1 < args.len() {
            let n: i64 = args[i + 1]
                .parse()
                .map_err(|_| Reply::error(errors::NOT_INTEGER))?;
            if !(1..=i64::MAX / 10).contains(&n) {
                return Err(Reply::error("ERR COUNT must be > 0"));
            }
            count = n as u64;
            i += 2;
        } else if args[i].eq_ignore_ascii_case("justid") {
            just_id = true;
            i += 1;
        } else {
            return Err(syntax());
        }
    }
    Ok(StreamCommand::AutoClaim {
        key: args[0].into(),
        group: args[1].into(),
        consumer: args[2].into(),
        min_idle: min_idle.max(0) as u64,
        start: args[4].into(),
        count,
        just_id,
    })
}

/// One pending entry: delivered to `consumer`, not yet acknowledged.
#[derive(Clone, Debug, PartialEq)]
struct Pending {
    consumer: String,
    delivered_ms: u64,
    deliveries: u64,
}

#[derive(Clone, Debug, PartialEq, Default)]
struct Consumer {
    seen_ms: u64,
    pending: BTreeSet<StreamId>,
}

#[derive(Clone, Debug, PartialEq)]
struct Group {
    last_delivered: StreamId,
    pending: BTreeMap<StreamId, Pending>,
    consumers: BTreeMap<String, Consumer>,
}

impl Group {
    fn consumer(&mut self, name: &str, now_ms: u64) -> &mut Consumer {
        let c = self.consumers.entry(name.to_string()).or_default();
        c.seen_ms = now_ms;
        c
    }

    fn deliver(&mut self, id: StreamId, consumer: &str, now_ms: u64) {
        if let Some(old) = self.pending.get(&id).map(|p| p.consumer.clone()) {
            if let Some(c) = self.consumers.get_mut(&old) {
                c.pending.remove(&id);
            }
        }
        let deliveries = self.pending.get(&id).map_or(0, |p| p.deliveries) + 1;
        self.pending.insert(
            id,
            Pending {
                consumer: consumer.to_string(),
                delivered_ms: now_ms,
                deliveries,
            },
        );
        self.consumer(consumer, now_ms).pending.insert(id);
    }
}

/// A stream value: entries by ID, the last ID ever given, and the consumer groups.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Stream {
    entries: BTreeMap<StreamId, Vec<(String, String)>>,
    last_id: StreamId,
    groups: BTreeMap<String, Group>,
    bytes: usize,
}

/// Bytes charged per entry on top of its fields.
const ENTRY_OVERHEAD: usize = 32;

fn entry_bytes(fields: &[(String, String)]) -> usize {
    ENTRY_OVERHEAD + fields.iter().map(|(f, v)| f.len() + v.len()).sum::<usize>()
}

fn entry_reply(id: StreamId, fields: &[(String, String)]) -> Reply {
    Reply::Array(vec![
        Reply::bulk(id.to_string()),
        Reply::Array(
            fields
                .iter()
                .flat_map(|(f, v)| [Reply::bulk(f.clone()), Reply::bulk(v.clone())])
                .collect(),
        ),
    ])
}

fn no_group(key: &str, group: &str, command: &str) -> Reply {
    // Redis 7.0 names the command only in XREADGROUP's message.
    if command != "XREADGROUP" {
        return Reply::error(format!(
            "NOGROUP No such key '{key}' or consumer group '{group}'"
        ));
    }
    Reply::error(format!(
        "NOGROUP No such key '{key}' or consumer group '{group}' in {command} with GROUP option"
    ))
}

impl Stream {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The running size estimate, for `maxmemory`.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The last ID ever given (entries deleted since included).
    pub fn last_id(&self) -> StreamId {
        self.last_id
    }

    /// The size computed from scratch: the test oracle for [`Stream::bytes`].
    pub fn bytes_recomputed(&self) -> usize {
        self.entries.values().map(|f| entry_bytes(f)).sum()
    }

    /// XADD on an existing (or new, empty) stream.
    pub fn add(
        &mut self,
        id: &IdSpec,
        fields: Vec<(String, String)>,
        trim: Option<&Trim>,
        now_ms: u64,
    ) -> Result<StreamId, Reply> {
        if self.last_id == StreamId::new(u64::MAX, u64::MAX) {
            return Err(Reply::error(
                "ERR The stream has exhausted the last possible ID, unable to add more items",
            ));
        }
        let id = match *id {
            IdSpec::Auto => {
                if now_ms > self.last_id.ms {
                    StreamId::new(now_ms, 0)
                } else {
                    self.last_id
                        .next()
                        .ok_or_else(|| Reply::error(ID_TOO_SMALL))?
                }
            }
            IdSpec::AutoSeq(ms) => {
                if ms > self.last_id.ms {
                    StreamId::new(ms, 0)
                } else if ms == self.last_id.ms && self.last_id.seq < u64::MAX {
                    StreamId::new(ms, self.last_id.seq + 1)
                } else {
                    return Err(Reply::error(ID_TOO_SMALL));
                }
            }
            IdSpec::Explicit(id) => {
                if id == StreamId::MIN {
                    return Err(Reply::error(ID_ZERO));
                }
                if id <= self.last_id {
                    return Err(Reply::error(ID_TOO_SMALL));
                }
                id
            }
        };
        self.bytes += entry_bytes(&fields);
        self.entries.insert(id, fields);
        self.last_id = id;
        if let Some(trim) = trim {
            self.trim(trim);
        }
        Ok(id)
    }

    /// Trims by the rule; returns how many entries went.
    pub fn trim(&mut self, trim: &Trim) -> u64 {
        let doomed: usize = match *trim {
            Trim::MaxLen { len, approx } => {
                let excess = self.entries.len().saturating_sub(len as usize);
                if approx {
                    excess - excess % 100
                } else {
                    excess
                }
            }
            Trim::MinId { id, approx } => {
                let below = self.entries.range(..id).count();
                if approx {
                    below - below % 100
                } else {
                    below
                }
            }
        };
        for _ in 0..doomed {
            if let Some((_, fields)) = self.entries.pop_first() {
                self.bytes -= entry_bytes(&fields);
            }
        }
        doomed as u64
    }

    /// XRANGE / XREVRANGE.
    pub fn range(&self, start: &str, end: &str, count: Option<u64>, rev: bool) -> Reply {
        let (Ok(Some(lo)), Ok(Some(hi))) = (parse_bound(start, true), parse_bound(end, false))
        else {
            return Reply::Array(vec![]);
        };
        if lo > hi || count == Some(0) {
            return Reply::Array(vec![]);
        }
        let limit = count.map_or(usize::MAX, |c| c as usize);
        let items = self.entries.range(lo..=hi);
        let out: Vec<Reply> = if rev {
            items
                .rev()
                .take(limit)
                .map(|(id, f)| entry_reply(*id, f))
                .collect()
        } else {
            items
                .take(limit)
                .map(|(id, f)| entry_reply(*id, f))
                .collect()
        };
        Reply::Array(out)
    }

    /// XDEL: returns how many of `ids` existed.
    pub fn delete(&mut self, ids: &[StreamId]) -> i64 {
        let mut n = 0;
        for id in ids {
            if let Some(fields) = self.entries.remove(id) {
                self.bytes -= entry_bytes(&fields);
                n += 1;
            }
        }
        n
    }

    /// Resolves a read position: `$` is the last ID.
    fn position(&self, id: &str) -> Result<StreamId, Reply> {
        if id == "$" {
            return Ok(self.last_id);
        }
        parse_id(id, 0)
    }

    /// XREAD of one stream: entries after `after`.
    pub fn read_after(&self, after: &str, count: Option<u64>) -> Result<Vec<Reply>, Reply> {
        let after = self.position(after)?;
        let Some(from) = after.next() else {
            return Ok(vec![]);
        };
        let limit = count.map_or(usize::MAX, |c| c as usize);
        Ok(self
            .entries
            .range(from..)
            .take(limit)
            .map(|(id, f)| entry_reply(*id, f))
            .collect())
    }

    /// XGROUP CREATE on this stream.
    pub fn create_group(&mut self, group: &str, id: &str) -> Result<(), Reply> {
        let start = self.position(id)?;
        if self.groups.contains_key(group) {
            return Err(Reply::error("BUSYGROUP Consumer Group name already exists"));
        }
        self.groups.insert(
            group.to_string(),
            Group {
                last_delivered: start,
                pending: BTreeMap::new(),
                consumers: BTreeMap::new(),
            },
        );
        Ok(())
    }

    pub fn destroy_group(&mut self, group: &str) -> bool {
        self.groups.remove(group).is_some()
    }

    /// XGROUP CREATECONSUMER: 1 when created.
    pub fn create_consumer(
        &mut self,
        key: &str,
        group: &str,
        consumer: &str,
        now_ms: u64,
    ) -> Result<i64, Reply> {
        let g = self.group_mut(key, group, "XGROUP")?;
        if g.consumers.contains_key(consumer) {
            return Ok(0);
        }
        g.consumer(consumer, now_ms);
        Ok(1)
    }

    /// XGROUP DELCONSUMER: the number of pending entries it held.
    pub fn delete_consumer(
        &mut self,
        key: &str,
        group: &str,
        consumer: &str,
    ) -> Result<i64, Reply> {
        let g = self.group_mut(key, group, "XGROUP")?;
        let Some(c) = g.consumers.remove(consumer) else {
            return Ok(0);
        };
        for id in &c.pending {
            g.pending.remove(id);
        }
        Ok(c.pending.len() as i64)
    }

    pub fn set_group_id(&mut self, key: &str, group: &str, id: &str) -> Result<(), Reply> {
        let id = self.position(id)?;
        self.group_mut(key, group, "XGROUP")?.last_delivered = id;
        Ok(())
    }

    fn group_mut(&mut self, key: &str, group: &str, command: &str) -> Result<&mut Group, Reply> {
        self.groups.get_mut(group).ok_or_else(|| {
            if command == "XGROUP" {
                Reply::error(format!(
                    "NOGROUP No such consumer group '{group}' for key name '{key}'"
                ))
            } else {
                no_group(key, group, command)
            }
        })
    }

    /// XREADGROUP of one stream: `>` delivers new entries (and makes them pending unless
    /// `noack`); an ID reads the consumer's own pending entries after it.
    #[allow(clippy::too_many_arguments)]
    pub fn read_group(
        &mut self,
        key: &str,
        group: &str,
        consumer: &str,
        id: &str,
        count: Option<u64>,
        noack: bool,
        now_ms: u64,
    ) -> Result<Vec<Reply>, Reply> {
        let limit = count.map_or(usize::MAX, |c| c as usize);
        let Stream {
            entries, groups, ..
        } = self;
        let g = groups
            .get_mut(group)
            .ok_or_else(|| no_group(key, group, "XREADGROUP"))?;
        if id == ">" {
            let Some(from) = g.last_delivered.next() else {
                return Ok(vec![]);
            };
            let batch: Vec<(StreamId, Vec<(String, String)>)> = entries
                .range(from..)
                .take(limit)
                .map(|(id, f)| (*id, f.clone()))
                .collect();
            g.consumer(consumer, now_ms);
            let mut out = Vec::with_capacity(batch.len());
            for (id, fields) in batch {
                g.last_delivered = id;
                if !noack {
                    g.deliver(id, consumer, now_ms);
                }
                out.push(entry_reply(id, &fields));
            }
            return Ok(out);
        }
        let after = parse_id(id, 0)?;
        let c = g.consumer(consumer, now_ms);
        let ids: Vec<StreamId> = c
            .pending
            .range(after..)
            .filter(|p| **p > after || after == StreamId::MIN)
            .take(limit)
            .copied()
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            // Reading history counts as a delivery, as in Redis.
            if let Some(p) = g.pending.get_mut(&id) {
                p.deliveries += 1;
                p.delivered_ms = now_ms;
            }
            out.push(match entries.get(&id) {
                Some(fields) => entry_reply(id, fields),
                None => Reply::Array(vec![Reply::bulk(id.to_string()), Reply::Nil]),
            });
        }
        Ok(out)
    }

    /// XACK: how many of `ids` were pending.
    pub fn ack(&mut self, group: &str, ids: &[StreamId]) -> i64 {
        let Some(g) = self.groups.get_mut(group) else {
            return 0;
        };
        let mut n = 0;
        for id in ids {
            if let Some(p) = g.pending.remove(id) {
                if let Some(c) = g.consumers.get_mut(&p.consumer) {
                    c.pending.remove(id);
                }
                n += 1;
            }
        }
        n
    }

    /// XPENDING, summary form.
    pub fn pending_summary(&self, key: &str, group: &str) -> Result<Reply, Reply> {
        let g = self
            .groups
            .get(group)
            .ok_or_else(|| no_group(key, group, "XPENDING"))?;
        if g.pending.is_empty() {
            return Ok(Reply::Array(vec![
                Reply::Int(0),
                Reply::Nil,
                Reply::Nil,
                Reply::Nil,
            ]));
        }
        let first = g.pending.keys().next().copied().unwrap_or_default();
        let last = g.pending.keys().next_back().copied().unwrap_or_default();
        let per_consumer: Vec<Reply> = g
            .consumers
            .iter()
            .filter(|(_, c)| !c.pending.is_empty())
            .map(|(name, c)| {
                Reply::Array(vec![
                    Reply::bulk(name.clone()),
                    Reply::bulk(c.pending.len().to_string()),
                ])
            })
            .collect();
        Ok(Reply::Array(vec![
            Reply::from_len(g.pending.len()),
            Reply::bulk(first.to_string()),
            Reply::bulk(last.to_string()),
            Reply::Array(per_consumer),
        ]))
    }

    /// XPENDING, extended form.
    #[allow(clippy::too_many_arguments)]
    pub fn pending_range(
        &self,
        key: &str,
        group: &str,
        min_idle: u64,
        start: &str,
        end: &str,
        count: u64,
        consumer: Option<&str>,
        now_ms: u64,
    ) -> Result<Reply, Reply> {
        let g = self
            .groups
            .get(group)
            .ok_or_else(|| no_group(key, group, "XPENDING"))?;
        let (Some(lo), Some(hi)) = (parse_bound(start, true)?, parse_bound(end, false)?) else {
            return Ok(Reply::Array(vec![]));
        };
        if lo > hi {
            return Ok(Reply::Array(vec![]));
        }
        let out = g
            .pending
            .range(lo..=hi)
            .filter(|(_, p)| consumer.is_none_or(|c| p.consumer == c))
            .filter(|(_, p)| now_ms.saturating_sub(p.delivered_ms) >= min_idle)
            .take(count as usize)
            .map(|(id, p)| {
                Reply::Array(vec![
                    Reply::bulk(id.to_string()),
                    Reply::bulk(p.consumer.clone()),
                    Reply::Int(now_ms.saturating_sub(p.delivered_ms) as i64),
                    Reply::Int(p.deliveries as i64),
                ])
            })
            .collect();
        Ok(Reply::Array(out))
    }

    /// XCLAIM.
    #[allow(clippy::too_many_arguments)]
    pub fn claim(
        &mut self,
        key: &str,
        group: &str,
        consumer: &str,
        min_idle: u64,
        ids: &[StreamId],
        idle: Option<u64>,
        time: Option<u64>,
        retry_count: Option<u64>,
        force: bool,
        just_id: bool,
        now_ms: u64,
    ) -> Result<Reply, Reply> {
        let Stream {
            entries, groups, ..
        } = self;
        let g = groups
            .get_mut(group)
            .ok_or_else(|| no_group(key, group, "XCLAIM"))?;
        let delivered_ms = match (idle, time) {
            (Some(idle), _) => now_ms.saturating_sub(idle),
            (None, Some(t)) => t,
            (None, None) => now_ms,
        };
        g.consumer(consumer, now_ms);
        let mut out = Vec::new();
        for id in ids {
            if !entries.contains_key(id) {
                // The entry was deleted: Redis drops it from the PEL.
                if let Some(p) = g.pending.remove(id) {
                    if let Some(c) = g.consumers.get_mut(&p.consumer) {
                        c.pending.remove(id);
                    }
                }
                continue;
            }
            let deliveries = match g.pending.get(id) {
                Some(p) if now_ms.saturating_sub(p.delivered_ms) < min_idle => continue,
                Some(p) => p.deliveries,
                None if force => 0,
                None => continue,
            };
            g.deliver(*id, consumer, now_ms);
            if let Some(p) = g.pending.get_mut(id) {
                p.delivered_ms = delivered_ms;
                p.deliveries = match (retry_count, just_id) {
                    (Some(n), _) => n,
                    // JUSTID does not count as a delivery.
                    (None, true) => deliveries,
                    (None, false) => deliveries + 1,
                };
            }
            out.push(if just_id {
                Reply::bulk(id.to_string())
            } else {
                entry_reply(*id, &entries[id])
            });
        }
        Ok(Reply::Array(out))
    }

    /// XAUTOCLAIM: `[next cursor, claimed entries, deleted IDs]`.
    #[allow(clippy::too_many_arguments)]
    pub fn auto_claim(
        &mut self,
        key: &str,
        group: &str,
        consumer: &str,
        min_idle: u64,
        start: &str,
        count: u64,
        just_id: bool,
        now_ms: u64,
    ) -> Result<Reply, Reply> {
        let Stream {
            entries, groups, ..
        } = self;
        let g = groups
            .get_mut(group)
            .ok_or_else(|| no_group(key, group, "XAUTOCLAIM"))?;
        let Some(from) = parse_bound(start, true)? else {
            return Ok(Reply::Array(vec![
                Reply::bulk("0-0"),
                Reply::Array(vec![]),
                Reply::Array(vec![]),
            ]));
        };
        g.consumer(consumer, now_ms);
        // Redis scans at most count * 10 PEL entries per call.
        let scan: Vec<StreamId> = g
            .pending
            .range(from..)
            .take((count * 10) as usize)
            .map(|(id, _)| *id)
            .collect();
        let mut claimed = Vec::new();
        let mut deleted = Vec::new();
        let mut next = StreamId::MIN;
        let mut done = true;
        for (i, id) in scan.iter().enumerate() {
            if claimed.len() as u64 >= count {
                next = *id;
                done = false;
                break;
            }
            let idle = now_ms.saturating_sub(g.pending[id].delivered_ms);
            if idle < min_idle {
                continue;
            }
            if !entries.contains_key(id) {
                if let Some(p) = g.pending.remove(id) {
                    if let Some(c) = g.consumers.get_mut(&p.consumer) {
                        c.pending.remove(id);
                    }
                }
                deleted.push(Reply::bulk(id.to_string()));
                continue;
            }
            let deliveries = g.pending[id].deliveries;
            g.deliver(*id, consumer, now_ms);
            if just_id {
                if let Some(p) = g.pending.get_mut(id) {
                    p.deliveries = deliveries;
                }
                claimed.push(Reply::bulk(id.to_string()));
            } else {
                claimed.push(entry_reply(*id, &entries[id]));
            }
            if i + 1 == scan.len() {
                break;
            }
        }
        if done && scan.len() as u64 == count * 10 {
            // The scan budget ran out: resume after the last entry scanned.
            if let Some(last) = scan.last().and_then(|id| id.next()) {
                next = last;
            }
        }
        Ok(Reply::Array(vec![
            Reply::bulk(next.to_string()),
            Reply::Array(claimed),
            Reply::Array(deleted),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(v: &str) -> Vec<(String, String)> {
        vec![("f".to_string(), v.to_string())]
    }

    fn ids(reply: &Reply) -> Vec<String> {
        let Reply::Array(items) = reply else {
            panic!("not an array: {reply:?}")
        };
        items
            .iter()
            .map(|e| match e {
                Reply::Array(pair) => match &pair[0] {
                    Reply::Bulk(id) => id.clone(),
                    other => panic!("{other:?}"),
                },
                Reply::Bulk(id) => id.clone(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn ids_grow_and_refuse_to_go_back() {
        let mut s = Stream::default();
        let a = s.add(&IdSpec::Auto, fields("a"), None, 1000).unwrap();
        assert_eq!(a, StreamId::new(1000, 0));
        // The clock went back (or stood still): the sequence moves on.
        let b = s.add(&IdSpec::Auto, fields("b"), None, 999).unwrap();
        assert_eq!(b, StreamId::new(1000, 1));
        assert_eq!(
            s.add(
                &IdSpec::Explicit(StreamId::new(1000, 1)),
                fields("c"),
                None,
                0
            ),
            Err(Reply::error(ID_TOO_SMALL))
        );
        assert_eq!(
            s.add(&IdSpec::AutoSeq(1000), fields("c"), None, 0),
            Ok(StreamId::new(1000, 2))
        );
        let mut empty = Stream::default();
        assert_eq!(
            empty.add(&IdSpec::Explicit(StreamId::MIN), fields("z"), None, 0),
            Err(Reply::error(ID_ZERO))
        );
    }

    #[test]
    fn ranges_take_exclusive_bounds_counts_and_reverse() {
        let mut s = Stream::default();
        for i in 1..=3 {
            s.add(&IdSpec::Explicit(StreamId::new(i, 1)), fields("v"), None, 0)
                .unwrap();
        }
        assert_eq!(ids(&s.range("-", "+", None, false)), ["1-1", "2-1", "3-1"]);
        assert_eq!(ids(&s.range("2", "+", Some(1), false)), ["2-1"]);
        assert_eq!(ids(&s.range("(1-1", "+", None, false)), ["2-1", "3-1"]);
        assert_eq!(ids(&s.range("-", "+", Some(2), true)), ["3-1", "2-1"]);
        assert_eq!(ids(&s.range("3", "1", None, false)), Vec::<String>::new());
    }

    #[test]
    fn a_group_delivers_each_entry_once_and_keeps_it_pending_until_acked() {
        let mut s = Stream::default();
        for i in 1..=3 {
            s.add(&IdSpec::Explicit(StreamId::new(i, 1)), fields("v"), None, 0)
                .unwrap();
        }
        s.create_group("g", "0").unwrap();
        assert_eq!(
            s.create_group("g", "0"),
            Err(Reply::error("BUSYGROUP Consumer Group name already exists"))
        );
        let first = s
            .read_group("s", "g", "c1", ">", Some(2), false, 10)
            .unwrap();
        assert_eq!(ids(&Reply::Array(first)), ["1-1", "2-1"]);
        let second = s.read_group("s", "g", "c2", ">", None, false, 10).unwrap();
        assert_eq!(ids(&Reply::Array(second)), ["3-1"]);
        assert_eq!(s.ack("g", &[StreamId::new(1, 1), StreamId::new(9, 9)]), 1);
        assert_eq!(
            s.pending_summary("s", "g").unwrap(),
            Reply::Array(vec![
                Reply::Int(2),
                Reply::bulk("2-1"),
                Reply::bulk("3-1"),
                Reply::Array(vec![
                    Reply::Array(vec![Reply::bulk("c1"), Reply::bulk("1")]),
                    Reply::Array(vec![Reply::bulk("c2"), Reply::bulk("1")]),
                ]),
            ])
        );
        // c1's history: only what it holds and has not acknowledged.
        let history = s.read_group("s", "g", "c1", "0", None, false, 20).unwrap();
        assert_eq!(ids(&Reply::Array(history)), ["2-1"]);
        assert_eq!(
            s.read_group("s", "nog", "c1", ">", None, false, 0),
            Err(Reply::error(
                "NOGROUP No such key 's' or consumer group 'nog' in XREADGROUP with GROUP option"
            ))
        );
    }

    #[test]
    fn a_dead_consumers_entries_are_claimed_after_they_idle() {
        let mut s = Stream::default();
        for i in 1..=2 {
            s.add(
                &IdSpec::Explicit(StreamId::new(i, 0)),
                fields("job"),
                None,
                0,
            )
            .unwrap();
        }
        s.create_group("g", "0").unwrap();
        s.read_group("s", "g", "dead", ">", None, false, 1_000)
            .unwrap();
        // Not idle long enough yet.
        let early = s
            .auto_claim("s", "g", "alive", 5_000, "0", 10, false, 3_000)
            .unwrap();
        assert_eq!(
            early,
            Reply::Array(vec![
                Reply::bulk("0-0"),
                Reply::Array(vec![]),
                Reply::Array(vec![])
            ])
        );
        s.delete(&[StreamId::new(2, 0)]);
        let later = s
            .auto_claim("s", "g", "alive", 5_000, "0", 10, false, 7_000)
            .unwrap();
        let Reply::Array(parts) = &later else {
            panic!()
        };
        assert_eq!(ids(&parts[1]), ["1-0"]);
        assert_eq!(
            parts[2],
            Reply::Array(vec![Reply::bulk("2-0")]),
            "deleted meanwhile"
        );
        let detail = s
            .pending_range("s", "g", 0, "-", "+", 10, None, 7_500)
            .unwrap();
        assert_eq!(
            detail,
            Reply::Array(vec![Reply::Array(vec![
                Reply::bulk("1-0"),
                Reply::bulk("alive"),
                Reply::Int(500),
                Reply::Int(2),
            ])])
        );
        // XCLAIM back, only once the entry idled.
        let none = s
            .claim(
                "s",
                "g",
                "dead",
                1_000,
                &[StreamId::new(1, 0)],
                None,
                None,
                None,
                false,
                true,
                7_600,
            )
            .unwrap();
        assert_eq!(none, Reply::Array(vec![]));
        let back = s
            .claim(
                "s",
                "g",
                "dead",
                1_000,
                &[StreamId::new(1, 0)],
                None,
                None,
                None,
                false,
                true,
                9_000,
            )
            .unwrap();
        assert_eq!(back, Reply::Array(vec![Reply::bulk("1-0")]));
    }

    #[test]
    fn trimming_is_exact_or_by_whole_blocks() {
        let mut s = Stream::default();
        for i in 1..=250 {
            s.add(&IdSpec::Explicit(StreamId::new(i, 0)), fields("x"), None, 0)
                .unwrap();
        }
        assert_eq!(
            s.trim(&Trim::MaxLen {
                len: 200,
                approx: true
            }),
            0
        );
        assert_eq!(
            s.trim(&Trim::MaxLen {
                len: 100,
                approx: true
            }),
            100
        );
        assert_eq!(
            s.trim(&Trim::MaxLen {
                len: 100,
                approx: false
            }),
            50
        );
        assert_eq!(s.len(), 100);
        let kept_from = StreamId::new(201, 0);
        assert_eq!(
            s.trim(&Trim::MinId {
                id: kept_from,
                approx: false
            }),
            50
        );
        assert_eq!(ids(&s.range("-", "-", None, false)).len(), 0);
        let bytes: usize = s.entries.values().map(|f| entry_bytes(f)).sum();
        assert_eq!(s.bytes(), bytes);
    }

    #[test]
    fn commands_parse_with_redis_errors() {
        let p = |args: &[&str]| parse(args[0], &args[1..]).unwrap();
        assert!(matches!(
            p(&[
                "xadd",
                "s",
                "NOMKSTREAM",
                "MAXLEN",
                "~",
                "10",
                "*",
                "a",
                "1"
            ]),
            Ok(StreamCommand::Add {
                no_mkstream: true,
                trim: Some(Trim::MaxLen {
                    len: 10,
                    approx: true
                }),
                id: IdSpec::Auto,
                ..
            })
        ));
        assert_eq!(
            p(&["xadd", "s", "5-x", "a", "1"]),
            Err(Reply::error(INVALID_ID))
        );
        assert_eq!(
            p(&["xadd", "s", "*", "a"]),
            Err(Reply::error(errors::arity("xadd")))
        );
        assert!(p(&[
            "xreadgroup",
            "GROUP",
            "g",
            "c",
            "COUNT",
            "2",
            "STREAMS",
            "s",
            ">"
        ])
        .is_ok());
        assert_eq!(
            p(&["xread", "STREAMS", "a", "b", "0"]),
            Err(Reply::error("ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified."))
        );
        assert!(parse("get", &["k"]).is_none());
    }
}
