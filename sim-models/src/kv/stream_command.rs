//! The stream commands as parsed arguments: [`StreamCommand`], its argument vector
//! ([`StreamCommand::to_args`]) and [`parse`], with Redis 7.0's errors.
//!
//! Parsing checks only what Redis checks before it looks the key up. What Redis reads
//! after finding the key and the group (XDEL's and XACK's IDs, everything of XCLAIM after
//! the consumer, XGROUP's IDs) stays text here and is read by the engine in Redis' order,
//! so that `XACK missing g x` answers 0 and `XCLAIM k nogroup c 0 x` NOGROUP, as Redis
//! does.

use serde::Serialize;

use super::command::{errors, Reply};
use super::state::parse_i64_strict;
use super::stream::{parse_strict_id, range_end, range_start, string2ull, StreamId, INVALID_ID};

/// How XADD picks the new entry's ID.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum IdSpec {
    /// `*`: the clock, or one more than the last ID.
    Auto,
    /// `ms-*`: that millisecond, the next sequence number.
    AutoSeq(u64),
    Explicit(StreamId),
}

/// What a trim keeps: the newest `MaxLen` entries, or those from `MinId` on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum TrimBy {
    MaxLen(u64),
    MinId(StreamId),
}

/// A trimming rule (XADD's MAXLEN/MINID, XTRIM). `approx` (`~`) removes whole nodes only;
/// `limit` bounds how many entries one trim removes (0: no bound).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Trim {
    pub by: TrimBy,
    pub approx: bool,
    pub limit: u64,
}

impl Trim {
    /// An exact trim, as Redis propagates an approximate one once it knows the outcome.
    pub fn exact(by: TrimBy) -> Self {
        Trim {
            by,
            approx: false,
            limit: 0,
        }
    }
}

/// The entries one approximate trim may remove when no LIMIT is given: 100 nodes of
/// `stream-node-max-entries` (100), Redis' default.
pub const APPROX_TRIM_LIMIT: u64 = 10_000;

/// XPENDING's extended form.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PendingRange {
    pub min_idle: i64,
    pub start: StreamId,
    pub end: StreamId,
    pub count: u64,
    pub consumer: Option<String>,
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
        start: StreamId,
        end: StreamId,
        /// `Some(0)` (or a negative COUNT) answers a null array for an existing stream.
        count: Option<u64>,
        rev: bool,
    },
    /// The IDs are read once the stream is found (a missing key answers 0 first).
    Del {
        key: String,
        ids: Vec<String>,
    },
    TrimCmd {
        key: String,
        trim: Trim,
    },
    /// XREAD and XREADGROUP (with `group`); each stream's ID is checked with its key.
    Read {
        group: Option<(String, String)>,
        count: Option<u64>,
        block: Option<u64>,
        noack: bool,
        keys: Vec<String>,
        ids: Vec<String>,
    },
    /// `options` (MKSTREAM, ENTRIESREAD n) are checked; the ID is read after the key.
    GroupCreate {
        key: String,
        group: String,
        id: String,
        options: Vec<String>,
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
    /// `options` (ENTRIESREAD n) are checked; the ID is read after the key and group.
    GroupSetId {
        key: String,
        group: String,
        id: String,
        options: Vec<String>,
    },
    /// The IDs are read once the key and group are found (else the answer is 0).
    Ack {
        key: String,
        group: String,
        ids: Vec<String>,
    },
    Pending {
        key: String,
        group: String,
        extended: Option<PendingRange>,
    },
    /// `args` (min-idle-time, IDs, options) are read once the key and group are found.
    Claim {
        key: String,
        group: String,
        consumer: String,
        args: Vec<String>,
    },
    AutoClaim {
        key: String,
        group: String,
        consumer: String,
        min_idle: u64,
        start: StreamId,
        count: u64,
        just_id: bool,
    },
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn trim_args(t: &Trim, a: &mut Vec<String>) {
    let (kind, threshold) = match t.by {
        TrimBy::MaxLen(len) => ("MAXLEN", len.to_string()),
        TrimBy::MinId(id) => ("MINID", id.to_string()),
    };
    a.push(kind.into());
    a.push(if t.approx { "~" } else { "=" }.into());
    a.push(threshold);
    if t.approx {
        a.extend(["LIMIT".into(), t.limit.to_string()]);
    }
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
                    a.extend([end.to_string(), start.to_string()]);
                } else {
                    a.extend([start.to_string(), end.to_string()]);
                }
                if let Some(c) = count {
                    a.extend(["COUNT".into(), c.to_string()]);
                }
            }
            Del { key, ids } => {
                a.push(key.clone());
                a.extend(ids.iter().cloned());
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
                options,
            } => {
                a.extend(["CREATE".into(), key.clone(), group.clone(), id.clone()]);
                a.extend(options.iter().cloned());
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
            GroupSetId {
                key,
                group,
                id,
                options,
            } => {
                a.extend(["SETID".into(), key.clone(), group.clone(), id.clone()]);
                a.extend(options.iter().cloned());
            }
            Ack { key, group, ids } => {
                a.extend([key.clone(), group.clone()]);
                a.extend(ids.iter().cloned());
            }
            Pending {
                key,
                group,
                extended,
            } => {
                a.extend([key.clone(), group.clone()]);
                if let Some(r) = extended {
                    a.extend(["IDLE".into(), r.min_idle.to_string()]);
                    a.extend([r.start.to_string(), r.end.to_string(), r.count.to_string()]);
                    a.extend(r.consumer.iter().cloned());
                }
            }
            Claim {
                key,
                group,
                consumer,
                args,
            } => {
                a.extend([key.clone(), group.clone(), consumer.clone()]);
                a.extend(args.iter().cloned());
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
                    start.to_string(),
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

/// Redis' `getLongLongFromObjectOrReply` with its default message.
fn long_long(s: &str) -> Result<i64, Reply> {
    parse_i64_strict(s).ok_or_else(|| Reply::error(errors::NOT_INTEGER))
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
        "xdel" => Ok(StreamCommand::Del {
            key: args[0].into(),
            ids: strings(&args[1..]),
        }),
        "xtrim" => parse_trim_command(args),
        "xread" => parse_read(args, false),
        "xreadgroup" => parse_read(args, true),
        "xgroup" => parse_group(args),
        "xack" => Ok(StreamCommand::Ack {
            key: args[0].into(),
            group: args[1].into(),
            ids: strings(&args[2..]),
        }),
        "xpending" => parse_pending(args),
        "xclaim" => Ok(StreamCommand::Claim {
            key: args[0].into(),
            group: args[1].into(),
            consumer: args[2].into(),
            args: strings(&args[3..]),
        }),
        "xautoclaim" => parse_autoclaim(args),
        _ => return None,
    })
}

/// What `streamParseAddOrTrimArgsOrReply` reads: the trimming rule, NOMKSTREAM and, for
/// XADD, the ID and where it stands in `args`.
struct AddTrimArgs {
    trim: Option<Trim>,
    no_mkstream: bool,
    id: Option<(IdSpec, usize)>,
}

/// XADD's and XTRIM's options, in Redis' loop: options may come in any order and repeat
/// (but MAXLEN and MINID exclude each other); for XADD the first argument that is no
/// option is the ID.
fn parse_add_trim(args: &[&str], xadd: bool) -> Result<AddTrimArgs, Reply> {
    let mut by: Option<TrimBy> = None;
    let mut approx = false;
    let mut limit: Option<i64> = None;
    let mut no_mkstream = false;
    let mut id = None;
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = args[i];
        let lower = opt.to_ascii_lowercase();
        if xadd && opt == "*" {
            id = Some((IdSpec::Auto, i));
            break;
        } else if (lower == "maxlen" || lower == "minid") && more > 0 {
            if by.is_some() {
                return Err(Reply::error(
                    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            approx = false;
            if more >= 2 && (args[i + 1] == "~" || args[i + 1] == "=") {
                approx = args[i + 1] == "~";
                i += 1;
            }
            let threshold = args[i + 1];
            by = Some(if lower == "maxlen" {
                let len = long_long(threshold)?;
                if len < 0 {
                    return Err(Reply::error("ERR The MAXLEN argument must be >= 0."));
                }
                TrimBy::MaxLen(len as u64)
            } else {
                TrimBy::MinId(parse_strict_id(threshold)?)
            });
            i += 1;
        } else if lower == "limit" && more > 0 {
            let n = long_long(args[i + 1])?;
            if n < 0 {
                return Err(Reply::error("ERR The LIMIT argument must be >= 0."));
            }
            limit = Some(n);
            i += 1;
        } else if xadd && lower == "nomkstream" {
            no_mkstream = true;
        } else if xadd {
            id = Some((parse_xadd_id(opt)?, i));
            break;
        } else {
            return Err(syntax());
        }
        i += 1;
    }
    if limit.is_some_and(|n| n > 0) && by.is_none() {
        return Err(Reply::error(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && by.is_none() {
        return Err(Reply::error(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if limit.is_some() && !approx {
        return Err(Reply::error(
            "ERR syntax error, LIMIT cannot be used without the special ~ option",
        ));
    }
    let limit = match limit {
        Some(n) => n as u64,
        None if approx => APPROX_TRIM_LIMIT,
        None => 0,
    };
    Ok(AddTrimArgs {
        trim: by.map(|by| Trim { by, approx, limit }),
        no_mkstream,
        id,
    })
}

/// XADD's ID: explicit (strict), or `ms-*` (the sequence left to the stream).
fn parse_xadd_id(s: &str) -> Result<IdSpec, Reply> {
    let text = s.split('\0').next().unwrap_or("");
    if let (true, Some((ms, "*"))) = (s.len() <= 127, text.split_once('-')) {
        return string2ull(ms)
            .map(IdSpec::AutoSeq)
            .ok_or_else(|| Reply::error(INVALID_ID));
    }
    parse_strict_id(s).map(IdSpec::Explicit)
}

fn parse_add(args: &[&str]) -> Result<StreamCommand, Reply> {
    let parsed = parse_add_trim(args, true)?;
    let Some((id, at)) = parsed.id else {
        return Err(Reply::error(errors::arity("xadd")));
    };
    let rest = &args[at + 1..];
    if rest.len() < 2 || rest.len() % 2 != 0 {
        return Err(Reply::error(errors::arity("xadd")));
    }
    // Refused before the key is looked up (no WRONGTYPE, no NOMKSTREAM nil), as in Redis.
    if id == IdSpec::Explicit(StreamId::MIN) {
        return Err(Reply::error(super::stream::ID_ZERO));
    }
    Ok(StreamCommand::Add {
        key: args[0].into(),
        no_mkstream: parsed.no_mkstream,
        trim: parsed.trim,
        id,
        fields: rest
            .chunks(2)
            .map(|p| (p[0].to_string(), p[1].to_string()))
            .collect(),
    })
}

fn parse_trim_command(args: &[&str]) -> Result<StreamCommand, Reply> {
    let parsed = parse_add_trim(args, false)?;
    Ok(StreamCommand::TrimCmd {
        key: args[0].into(),
        trim: parsed.trim.ok_or_else(syntax)?,
    })
}

fn parse_range(args: &[&str], rev: bool) -> Result<StreamCommand, Reply> {
    // The bounds are read before COUNT, as `xrangeGenericCommand` does.
    let (start, end) = if rev {
        (args[2], args[1])
    } else {
        (args[1], args[2])
    };
    let start = range_start(start)?;
    let end = range_end(end)?;
    let mut count = None;
    let mut j = 3;
    while j < args.len() {
        if args[j].eq_ignore_ascii_case("count") && j + 1 < args.len() {
            count = Some(long_long(args[j + 1])?.max(0) as u64);
            j += 2;
        } else {
            return Err(syntax());
        }
    }
    Ok(StreamCommand::Range {
        key: args[0].into(),
        start,
        end,
        count,
        rev,
    })
}

fn parse_read(args: &[&str], grouped: bool) -> Result<StreamCommand, Reply> {
    let mut group = None;
    let mut count = None;
    let mut block = None;
    let mut noack = false;
    let mut streams_at = None;
    let mut i = 0;
    while i < args.len() {
        let more = args.len() - 1 - i;
        match args[i].to_ascii_lowercase().as_str() {
            "block" if more > 0 => {
                let ms = parse_i64_strict(args[i + 1])
                    .ok_or_else(|| Reply::error("ERR timeout is not an integer or out of range"))?;
                if ms < 0 {
                    return Err(Reply::error(errors::TIMEOUT_NEGATIVE));
                }
                block = Some(ms as u64);
                i += 1;
            }
            "count" if more > 0 => {
                let n = long_long(args[i + 1])?;
                count = (n > 0).then_some(n as u64);
                i += 1;
            }
            "streams" if more > 0 => {
                if (args.len() - i - 1) % 2 != 0 {
                    return Err(Reply::error(
                        "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                    ));
                }
                streams_at = Some(i + 1);
                break;
            }
            "group" if more >= 2 => {
                if !grouped {
                    return Err(Reply::error(
                        "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                    ));
                }
                group = Some((args[i + 1].to_string(), args[i + 2].to_string()));
                i += 2;
            }
            "noack" => {
                if !grouped {
                    return Err(Reply::error(
                        "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                    ));
                }
                noack = true;
            }
            _ => return Err(syntax()),
        }
        i += 1;
    }
    let Some(at) = streams_at else {
        return Err(syntax());
    };
    if grouped && group.is_none() {
        return Err(Reply::error("ERR Missing GROUP option for XREADGROUP"));
    }
    let rest = &args[at..];
    let half = rest.len() / 2;
    Ok(StreamCommand::Read {
        group,
        count,
        block,
        noack,
        keys: strings(&rest[..half]),
        ids: strings(&rest[half..]),
    })
}

/// Redis' `addReplySubcommandSyntaxError` for XGROUP.
pub(crate) fn group_syntax(sub: &str) -> Reply {
    Reply::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try XGROUP HELP."
    ))
}

/// XGROUP; its arity per subcommand is the caller's check. The options of CREATE and
/// SETID are read first, as `xgroupCommand` does, before the key.
fn parse_group(args: &[&str]) -> Result<StreamCommand, Reply> {
    let sub = args[0].to_ascii_lowercase();
    let (key, group) = (args[1].to_string(), args[2].to_string());
    let (create, setid) = (sub == "create", sub == "setid");
    let mut i = 4;
    while i < args.len() {
        if create && args[i].eq_ignore_ascii_case("mkstream") {
            i += 1;
        } else if (create || setid)
            && args[i].eq_ignore_ascii_case("entriesread")
            && i + 1 < args.len()
        {
            let n = long_long(args[i + 1])?;
            if n < -1 {
                return Err(Reply::error(
                    "ERR value for ENTRIESREAD must be positive or -1",
                ));
            }
            i += 2;
        } else {
            return Err(group_syntax(args[0]));
        }
    }
    let options = || strings(&args[4.min(args.len())..]);
    Ok(match sub.as_str() {
        "create" => StreamCommand::GroupCreate {
            key,
            group,
            id: args[3].into(),
            options: options(),
        },
        "setid" => StreamCommand::GroupSetId {
            key,
            group,
            id: args[3].into(),
            options: options(),
        },
        "destroy" => StreamCommand::GroupDestroy { key, group },
        "createconsumer" => StreamCommand::GroupCreateConsumer {
            key,
            group,
            consumer: args[3].into(),
        },
        "delconsumer" => StreamCommand::GroupDelConsumer {
            key,
            group,
            consumer: args[3].into(),
        },
        _ => return Err(group_syntax(args[0])),
    })
}

fn parse_pending(args: &[&str]) -> Result<StreamCommand, Reply> {
    let (key, group) = (args[0].to_string(), args[1].to_string());
    let argc = args.len() + 1;
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(syntax());
    }
    if argc == 3 {
        return Ok(StreamCommand::Pending {
            key,
            group,
            extended: None,
        });
    }
    let mut at = 2;
    let mut min_idle = 0;
    if args[2].eq_ignore_ascii_case("idle") {
        min_idle = long_long(args[3])?;
        if argc < 8 {
            return Err(syntax());
        }
        at += 2;
    }
    // The count is read before the bounds, as `xpendingCommand` does; an argument after
    // the consumer is ignored, as there.
    let count = long_long(args[at + 2])?.max(0) as u64;
    let start = range_start(args[at])?;
    let end = range_end(args[at + 1])?;
    Ok(StreamCommand::Pending {
        key,
        group,
        extended: Some(PendingRange {
            min_idle,
            start,
            end,
            count,
            consumer: args.get(at + 3).map(|c| c.to_string()),
        }),
    })
}

fn parse_autoclaim(args: &[&str]) -> Result<StreamCommand, Reply> {
    let min_idle = parse_i64_strict(args[3])
        .ok_or_else(|| Reply::error("ERR Invalid min-idle-time argument for XAUTOCLAIM"))?;
    let start = range_start(args[4])?;
    let mut count = 100;
    let mut just_id = false;
    let mut i = 5;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case("count") && i + 1 < args.len() {
            // Redis bounds COUNT so that count * sizeof(streamID) fits a long.
            let n = parse_i64_strict(args[i + 1]);
            match n {
                Some(n) if (1..=i64::MAX / 16).contains(&n) => count = n as u64,
                _ => return Err(Reply::error("ERR COUNT must be > 0")),
            }
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
        start,
        count,
        just_id,
    })
}

/// XCLAIM's arguments after the consumer, read as `xclaimCommand` does once the key and
/// group are found.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ClaimArgs {
    pub min_idle: u64,
    pub ids: Vec<StreamId>,
    /// The last IDLE or TIME given: the delivery time (`now - idle`, or the time).
    pub delivery: Option<Delivery>,
    /// A negative RETRYCOUNT counts as not given.
    pub retry_count: Option<u64>,
    pub force: bool,
    pub just_id: bool,
    pub last_id: Option<StreamId>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Delivery {
    Idle(i64),
    Time(i64),
}

pub(crate) fn parse_claim_args(args: &[String]) -> Result<ClaimArgs, Reply> {
    let min_idle = parse_i64_strict(&args[0])
        .ok_or_else(|| Reply::error("ERR Invalid min-idle-time argument for XCLAIM"))?;
    let mut c = ClaimArgs {
        min_idle: min_idle.max(0) as u64,
        ids: Vec::new(),
        delivery: None,
        retry_count: None,
        force: false,
        just_id: false,
        last_id: None,
    };
    let mut j = 1;
    while j < args.len() {
        match parse_strict_id(&args[j]) {
            Ok(id) => c.ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    // What is no ID is an option.
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = args[j].to_ascii_lowercase();
        let value = |name: &str| {
            parse_i64_strict(&args[j + 1]).ok_or_else(|| {
                Reply::error(format!("ERR Invalid {name} option argument for XCLAIM"))
            })
        };
        match opt.as_str() {
            "force" => c.force = true,
            "justid" => c.just_id = true,
            "idle" if more > 0 => {
                c.delivery = Some(Delivery::Idle(value("IDLE")?));
                j += 1;
            }
            "time" if more > 0 => {
                c.delivery = Some(Delivery::Time(value("TIME")?));
                j += 1;
            }
            "retrycount" if more > 0 => {
                let n = value("RETRYCOUNT")?;
                c.retry_count = u64::try_from(n).ok();
                j += 1;
            }
            "lastid" if more > 0 => {
                c.last_id = Some(parse_strict_id(&args[j + 1])?);
                j += 1;
            }
            _ => {
                return Err(Reply::error(format!(
                    "ERR Unrecognized XCLAIM option '{}'",
                    args[j]
                )))
            }
        }
        j += 1;
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<StreamCommand, Reply> {
        parse(args[0], &args[1..]).unwrap()
    }

    #[test]
    fn xadd_reads_options_in_any_order_then_the_id() {
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
                trim: Some(Trim {
                    by: TrimBy::MaxLen(10),
                    approx: true,
                    limit: APPROX_TRIM_LIMIT
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
        assert_eq!(
            p(&["xadd", "s", "MAXLEN", "1", "MINID", "2", "*", "a", "1"]),
            Err(Reply::error(
                "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"
            ))
        );
        assert_eq!(
            p(&["xadd", "s", "MAXLEN", "1", "LIMIT", "5", "*", "a", "1"]),
            Err(Reply::error(
                "ERR syntax error, LIMIT cannot be used without the special ~ option"
            ))
        );
        assert!(matches!(
            p(&["xadd", "s", "7-*", "a", "1"]),
            Ok(StreamCommand::Add {
                id: IdSpec::AutoSeq(7),
                ..
            })
        ));
    }

    #[test]
    fn ranges_and_reads_check_what_redis_checks_before_the_key() {
        assert_eq!(
            p(&[
                "xrange",
                "s",
                "(18446744073709551615-18446744073709551615",
                "+"
            ]),
            Err(Reply::error("ERR invalid start ID for the interval"))
        );
        assert!(matches!(
            p(&["xrevrange", "s", "+", "-", "COUNT", "1", "COUNT", "0"]),
            Ok(StreamCommand::Range { count: Some(0), .. })
        ));
        assert_eq!(
            p(&["xread", "STREAMS", "a", "b", "0"]),
            Err(Reply::error("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."))
        );
        assert_eq!(
            p(&["xread", "NOACK", "STREAMS", "a", "0"]),
            Err(Reply::error(
                "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."
            ))
        );
        assert_eq!(p(&["xread", "COUNT", "1", "STREAMS"]), Err(syntax()));
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
        assert!(parse("get", &["k"]).is_none());
    }

    #[test]
    fn ids_read_as_string2ull_reads_them() {
        assert_eq!(string2ull("+5"), Some(5));
        assert_eq!(string2ull(" 5"), Some(5));
        assert_eq!(string2ull("-5"), None);
        assert_eq!(string2ull(" -1"), Some(u64::MAX));
        assert_eq!(string2ull("18446744073709551616"), None);
        assert_eq!(string2ull(""), None);
        assert_eq!(parse_strict_id("-"), Err(Reply::error(INVALID_ID)));
        assert_eq!(super::super::stream::parse_id("-"), Ok(StreamId::MIN));
    }
}
