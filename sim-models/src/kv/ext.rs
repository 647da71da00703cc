//! The commands of the conformance suite's second list, typed as [`ExtCommand`] (a
//! [`Command::Ext`](super::Command::Ext)), with their argument parsing: INCRBYFLOAT and
//! HINCRBYFLOAT, LMOVE/RPOPLPUSH and their blocking forms, SPOP and SRANDMEMBER, ZRANGE
//! in all its forms (BYSCORE, BYLEX, REV, LIMIT, WITHSCORES, and the older ZREVRANGE,
//! ZRANGEBYLEX...), ZPOPMIN/ZPOPMAX and BZPOPMIN/BZPOPMAX, ZREMRANGEBY*, ZCOUNT and
//! ZLEXCOUNT, ZMSCORE, ZREVRANK, SCAN and HSCAN/SSCAN/ZSCAN, GETRANGE/SETRANGE, GETEX,
//! COPY and RENAME/RENAMENX. Their semantics are in `ext_exec`.
//!
//! Parsing follows each command's order of checks in Redis 7.0: what Redis refuses before
//! it looks the key up is refused here (so it comes back inside EXEC's array, as in
//! Redis); what Redis reads only after the key lookup (INCRBYFLOAT's increment, GETEX's
//! time, the SCAN options of HSCAN and its kin) stays text for the execution to read.

use std::borrow::Cow;

use serde::Serialize;
use sim_runtime::time::Duration;

use super::command::{errors, Reply, ScoreBound};
use super::number;
use super::state::{fmt_score, parse_i64_strict};

type P<T> = Result<T, Reply>;

fn e(s: impl Into<String>) -> Reply {
    Reply::error(s)
}

/// One end of a list (LMOVE's LEFT and RIGHT).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum End {
    Left,
    Right,
}

impl End {
    fn arg(self) -> &'static str {
        match self {
            End::Left => "LEFT",
            End::Right => "RIGHT",
        }
    }

    pub fn is_right(self) -> bool {
        self == End::Right
    }
}

/// A ZRANGEBYLEX bound: `-`, `+`, `[a` (inclusive) or `(a` (exclusive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum LexBound {
    Min,
    Max,
    Inclusive(String),
    Exclusive(String),
}

impl LexBound {
    fn arg(&self) -> Cow<'_, str> {
        match self {
            LexBound::Min => Cow::Borrowed("-"),
            LexBound::Max => Cow::Borrowed("+"),
            LexBound::Inclusive(s) => Cow::Owned(format!("[{s}")),
            LexBound::Exclusive(s) => Cow::Owned(format!("({s}")),
        }
    }
}

/// A sorted-set range: by rank, by score or by member (lex), as given (for a reversed
/// ZRANGE the first bound is the higher one, as the client wrote it).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum ZRangeSpec {
    Rank(i64, i64),
    Score(ScoreBound, ScoreBound),
    Lex(LexBound, LexBound),
}

/// GETEX's option.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub enum GetExOption {
    #[default]
    None,
    Persist,
    /// EX, PX, EXAT or PXAT (upper case) and the time as text: Redis reads it after the
    /// key lookup.
    Time(&'static str, String),
}

/// Which aggregate HSCAN, SSCAN and ZSCAN iterate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ScanOf {
    Hash,
    Set,
    ZSet,
}

/// The commands of this module.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum ExtCommand {
    /// The increment stays text: Redis reads it after the key's value.
    IncrByFloat {
        key: String,
        delta: String,
    },
    HIncrByFloat {
        key: String,
        field: String,
        delta: String,
    },
    /// LMOVE, and RPOPLPUSH (RIGHT LEFT).
    LMove {
        source: String,
        destination: String,
        from: End,
        to: End,
    },
    /// BLMOVE, and BRPOPLPUSH.
    BLMove {
        source: String,
        destination: String,
        from: End,
        to: End,
        timeout: Duration,
    },
    SPop {
        key: String,
        count: Option<u64>,
    },
    SRandMember {
        key: String,
        count: Option<i64>,
    },
    /// ZRANGE and every older form (ZREVRANGE, ZRANGEBYSCORE's reverse, ZRANGEBYLEX...).
    ZRange {
        key: String,
        range: ZRangeSpec,
        rev: bool,
        limit: Option<(i64, i64)>,
        with_scores: bool,
    },
    ZPop {
        key: String,
        max: bool,
        count: Option<u64>,
    },
    BZPop {
        keys: Vec<String>,
        max: bool,
        timeout: Duration,
    },
    /// ZREMRANGEBYRANK, ZREMRANGEBYSCORE, ZREMRANGEBYLEX.
    ZRemRange {
        key: String,
        range: ZRangeSpec,
    },
    /// ZCOUNT (a score range) and ZLEXCOUNT (a lex range).
    ZCount {
        key: String,
        range: ZRangeSpec,
    },
    ZMScore {
        key: String,
        members: Vec<String>,
    },
    ZRevRank {
        key: String,
        member: String,
    },
    /// SCAN over the keyspace.
    Scan {
        cursor: u64,
        pattern: Option<String>,
        count: Option<i64>,
        kind: Option<String>,
    },
    /// HSCAN, SSCAN, ZSCAN: the options are read after the key lookup, as Redis does.
    ScanIn {
        of: ScanOf,
        key: String,
        cursor: u64,
        options: Vec<String>,
    },
    GetRange {
        key: String,
        start: i64,
        end: i64,
    },
    SetRange {
        key: String,
        offset: i64,
        value: String,
    },
    GetEx {
        key: String,
        option: GetExOption,
    },
    Copy {
        source: String,
        destination: String,
        replace: bool,
    },
    Rename {
        key: String,
        new_key: String,
        nx: bool,
    },
}

/// Redis' arity of this module's commands (negative: a minimum), `None` for others.
pub fn arity(name: &str) -> Option<i64> {
    Some(match name {
        "incrbyfloat" | "zrevrank" => 3,
        "getrange" | "substr" | "setrange" | "hincrbyfloat" => 4,
        "lmove" => 5,
        "blmove" => 6,
        "rpoplpush" | "rename" | "renamenx" => 3,
        "brpoplpush" => 4,
        "spop" | "srandmember" | "getex" | "scan" => -2,
        "zrange" | "zrevrange" | "zrevrangebyscore" | "zrangebylex" | "zrevrangebylex" => -4,
        "zpopmin" | "zpopmax" => -2,
        "bzpopmin" | "bzpopmax" => -3,
        "zremrangebyrank" | "zremrangebyscore" | "zremrangebylex" | "zcount" | "zlexcount" => 4,
        "zmscore" => -3,
        "hscan" | "sscan" | "zscan" => -3,
        "copy" => -3,
        _ => return None,
    })
}

fn int(s: &str) -> P<i64> {
    parse_i64_strict(s).ok_or_else(|| e(errors::NOT_INTEGER))
}

/// Redis' `getPositiveLongFromObjectOrReply`: anything but a non-negative integer is "out
/// of range, must be positive".
fn positive(s: &str) -> P<u64> {
    parse_i64_strict(s)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| e(errors::NOT_POSITIVE))
}

fn end(s: &str) -> P<End> {
    match s.to_ascii_lowercase().as_str() {
        "left" => Ok(End::Left),
        "right" => Ok(End::Right),
        _ => Err(e(errors::SYNTAX)),
    }
}

/// A blocking command's timeout in seconds, as Redis 7's `getTimeoutFromObjectOrReply`
/// reads it: `strtold`, then milliseconds truncated (so `-0.0001` is 0, not negative).
pub fn timeout(s: &str) -> P<Duration> {
    let secs = number::string2d(s)
        .filter(|v| v.is_finite())
        .ok_or_else(|| e(errors::TIMEOUT_NOT_FLOAT))?;
    let ms = (secs * 1000.0).trunc();
    if ms < 0.0 {
        return Err(e(errors::TIMEOUT_NEGATIVE));
    }
    Ok(Duration::from_millis(ms as u64))
}

/// A score range bound (`zslParseRange`).
fn score_bound(s: &str) -> Option<ScoreBound> {
    let (exclusive, rest) = match s.strip_prefix('(') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let value = number::strtod_all(rest).filter(|v| !v.is_nan())?;
    Some(ScoreBound { value, exclusive })
}

fn score_range(min: &str, max: &str) -> P<ZRangeSpec> {
    match (score_bound(min), score_bound(max)) {
        (Some(a), Some(b)) => Ok(ZRangeSpec::Score(a, b)),
        _ => Err(e(errors::MIN_MAX_NOT_FLOAT)),
    }
}

fn lex_bound(s: &str) -> Option<LexBound> {
    match s.as_bytes().first()? {
        b'+' if s.len() == 1 => Some(LexBound::Max),
        b'-' if s.len() == 1 => Some(LexBound::Min),
        b'[' => Some(LexBound::Inclusive(s[1..].to_string())),
        b'(' => Some(LexBound::Exclusive(s[1..].to_string())),
        _ => None,
    }
}

fn lex_range(min: &str, max: &str) -> P<ZRangeSpec> {
    match (lex_bound(min), lex_bound(max)) {
        (Some(a), Some(b)) => Ok(ZRangeSpec::Lex(a, b)),
        _ => Err(e("ERR min or max not valid string range item")),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum By {
    Auto,
    Rank,
    Score,
    Lex,
}

/// Redis 7.0's `zrangeGenericCommand`: the options first (unknown ones, a repeated REV or
/// BY* are syntax errors; LIMIT's numbers are read at once), then the conflicts, then the
/// range.
fn parse_zrange(args: &[&str], mut by: By, mut rev: Option<bool>) -> P<ExtCommand> {
    let mut with_scores = false;
    let mut limit = None;
    let mut j = 3;
    while j < args.len() {
        let left = args.len() - j - 1;
        let opt = args[j].to_ascii_lowercase();
        match opt.as_str() {
            "withscores" => with_scores = true,
            "limit" if left >= 2 => {
                limit = Some((int(args[j + 1])?, int(args[j + 2])?));
                j += 2;
            }
            "rev" if rev.is_none() => rev = Some(true),
            "bylex" if by == By::Auto => by = By::Lex,
            "byscore" if by == By::Auto => by = By::Score,
            _ => return Err(e(errors::SYNTAX)),
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    if by == By::Auto {
        by = By::Rank;
    }
    if limit.is_some_and(|(_, count)| count != -1) && by == By::Rank {
        return Err(e(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if with_scores && by == By::Lex {
        return Err(e(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    // A reversed score or lex range is written max first.
    let (lo, hi) = if rev && by != By::Rank {
        (args[2], args[1])
    } else {
        (args[1], args[2])
    };
    let range = match by {
        By::Rank | By::Auto => ZRangeSpec::Rank(int(lo)?, int(hi)?),
        By::Score => score_range(lo, hi)?,
        By::Lex => lex_range(lo, hi)?,
    };
    Ok(ExtCommand::ZRange {
        key: args[0].to_string(),
        range,
        rev,
        limit,
        with_scores,
    })
}

/// Redis' `parseScanCursorOrReply`: `strtoul`, so `-1` wraps and an empty text is 0.
pub fn scan_cursor(s: &str) -> P<u64> {
    let invalid = || e("ERR invalid cursor");
    if s.starts_with(|c: char| c.is_ascii_whitespace() || c == '\x0b') {
        return Err(invalid());
    }
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if s.is_empty() {
        return Ok(0);
    }
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(invalid());
    }
    let v: u64 = digits.parse().map_err(|_| invalid())?;
    Ok(if negative { v.wrapping_neg() } else { v })
}

/// SCAN's options (`scanGenericCommand`'s first step); TYPE only for the keyspace.
#[allow(clippy::type_complexity)]
pub fn scan_options(
    args: &[&str],
    keyspace: bool,
) -> P<(Option<String>, Option<i64>, Option<String>)> {
    let (mut pattern, mut count, mut kind) = (None, None, None);
    let mut i = 0;
    while i < args.len() {
        let left = args.len() - i;
        match args[i].to_ascii_lowercase().as_str() {
            "count" if left >= 2 => {
                let n = int(args[i + 1])?;
                if n < 1 {
                    return Err(e(errors::SYNTAX));
                }
                count = Some(n);
            }
            "match" if left >= 2 => pattern = Some(args[i + 1].to_string()),
            "type" if keyspace && left >= 2 => kind = Some(args[i + 1].to_string()),
            _ => return Err(e(errors::SYNTAX)),
        }
        i += 2;
    }
    Ok((pattern, count, kind))
}

/// Parses one of this module's commands (`name` lowercase, `args` after it, arity already
/// checked); `None` when `name` is not one of them.
pub fn parse(name: &str, args: &[&str]) -> Option<P<ExtCommand>> {
    use ExtCommand::*;
    arity(name)?;
    let s = |i: usize| args[i].to_string();
    Some((|| -> P<ExtCommand> {
        Ok(match name {
            "incrbyfloat" => IncrByFloat {
                key: s(0),
                delta: s(1),
            },
            "hincrbyfloat" => HIncrByFloat {
                key: s(0),
                field: s(1),
                delta: s(2),
            },
            "lmove" => LMove {
                source: s(0),
                destination: s(1),
                from: end(args[2])?,
                to: end(args[3])?,
            },
            "rpoplpush" => LMove {
                source: s(0),
                destination: s(1),
                from: End::Right,
                to: End::Left,
            },
            "blmove" => {
                let (from, to) = (end(args[2])?, end(args[3])?);
                BLMove {
                    source: s(0),
                    destination: s(1),
                    from,
                    to,
                    timeout: timeout(args[4])?,
                }
            }
            "brpoplpush" => BLMove {
                source: s(0),
                destination: s(1),
                from: End::Right,
                to: End::Left,
                timeout: timeout(args[2])?,
            },
            "spop" => match args {
                [_] => SPop {
                    key: s(0),
                    count: None,
                },
                [_, c] => SPop {
                    key: s(0),
                    count: Some(positive(c)?),
                },
                _ => return Err(e(errors::SYNTAX)),
            },
            "srandmember" => match args {
                [_] => SRandMember {
                    key: s(0),
                    count: None,
                },
                [_, c] => {
                    let n = int(c)?;
                    if n == i64::MIN {
                        return Err(e("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"));
                    }
                    SRandMember {
                        key: s(0),
                        count: Some(n),
                    }
                }
                _ => return Err(e(errors::SYNTAX)),
            },
            "zrange" => parse_zrange(args, By::Auto, None)?,
            "zrevrange" => parse_zrange(args, By::Rank, Some(true))?,
            "zrevrangebyscore" => parse_zrange(args, By::Score, Some(true))?,
            "zrangebylex" => parse_zrange(args, By::Lex, Some(false))?,
            "zrevrangebylex" => parse_zrange(args, By::Lex, Some(true))?,
            "zpopmin" | "zpopmax" => match args {
                [_] | [_, _] => ZPop {
                    key: s(0),
                    max: name == "zpopmax",
                    count: args.get(1).map(|c| positive(c)).transpose()?,
                },
                _ => return Err(e(errors::SYNTAX)),
            },
            "bzpopmin" | "bzpopmax" => {
                let (keys, t) = args.split_at(args.len() - 1);
                BZPop {
                    keys: keys.iter().map(|k| k.to_string()).collect(),
                    max: name == "bzpopmax",
                    timeout: timeout(t[0])?,
                }
            }
            "zremrangebyrank" => ZRemRange {
                key: s(0),
                range: ZRangeSpec::Rank(int(args[1])?, int(args[2])?),
            },
            "zremrangebyscore" => ZRemRange {
                key: s(0),
                range: score_range(args[1], args[2])?,
            },
            "zremrangebylex" => ZRemRange {
                key: s(0),
                range: lex_range(args[1], args[2])?,
            },
            "zcount" => ZCount {
                key: s(0),
                range: score_range(args[1], args[2])?,
            },
            "zlexcount" => ZCount {
                key: s(0),
                range: lex_range(args[1], args[2])?,
            },
            "zmscore" => ZMScore {
                key: s(0),
                members: args[1..].iter().map(|m| m.to_string()).collect(),
            },
            "zrevrank" => ZRevRank {
                key: s(0),
                member: s(1),
            },
            "scan" => {
                let cursor = scan_cursor(args[0])?;
                let (pattern, count, kind) = scan_options(&args[1..], true)?;
                Scan {
                    cursor,
                    pattern,
                    count,
                    kind,
                }
            }
            "hscan" | "sscan" | "zscan" => ScanIn {
                of: match name {
                    "hscan" => ScanOf::Hash,
                    "sscan" => ScanOf::Set,
                    _ => ScanOf::ZSet,
                },
                key: s(0),
                cursor: scan_cursor(args[1])?,
                options: args[2..].iter().map(|a| a.to_string()).collect(),
            },
            "getrange" | "substr" => GetRange {
                key: s(0),
                start: int(args[1])?,
                end: int(args[2])?,
            },
            "setrange" => {
                let offset = int(args[1])?;
                if offset < 0 {
                    return Err(e("ERR offset is out of range"));
                }
                SetRange {
                    key: s(0),
                    offset,
                    value: s(2),
                }
            }
            "getex" => GetEx {
                key: s(0),
                option: parse_getex(&args[1..])?,
            },
            "copy" => {
                let mut replace = false;
                let mut j = 2;
                while j < args.len() {
                    let more = args.len() - j - 1;
                    match args[j].to_ascii_lowercase().as_str() {
                        "replace" => replace = true,
                        "db" if more > 0 => {
                            let db = int(args[j + 1])
                                .ok()
                                .filter(|d| i32::try_from(*d).is_ok())
                                .ok_or_else(|| e(errors::NOT_INTEGER))?;
                            // One database, as a Redis started with `databases 1`.
                            if db != 0 {
                                return Err(e("ERR DB index is out of range"));
                            }
                            j += 1;
                        }
                        _ => return Err(e(errors::SYNTAX)),
                    }
                    j += 1;
                }
                if args[0] == args[1] {
                    return Err(e("ERR source and destination objects are the same"));
                }
                Copy {
                    source: s(0),
                    destination: s(1),
                    replace,
                }
            }
            "rename" | "renamenx" => Rename {
                key: s(0),
                new_key: s(1),
                nx: name == "renamenx",
            },
            _ => unreachable!("parse is only called for names with an arity here"),
        })
    })())
}

/// `parseExtendedStringArgumentsOrReply` for GETEX: one of EX/PX/EXAT/PXAT (with a value)
/// or PERSIST; repeating the same one is allowed, mixing them is a syntax error.
fn parse_getex(args: &[&str]) -> P<GetExOption> {
    let mut option = GetExOption::None;
    let mut j = 0;
    while j < args.len() {
        let opt = args[j].to_ascii_uppercase();
        let next = args.get(j + 1);
        let same_or_none = |kind: &str| match &option {
            GetExOption::None => true,
            GetExOption::Time(k, _) => *k == kind,
            GetExOption::Persist => false,
        };
        match opt.as_str() {
            "PERSIST" if matches!(option, GetExOption::None | GetExOption::Persist) => {
                option = GetExOption::Persist
            }
            "EX" | "PX" | "EXAT" | "PXAT" if same_or_none(&opt) && next.is_some() => {
                let kind = match opt.as_str() {
                    "EX" => "EX",
                    "PX" => "PX",
                    "EXAT" => "EXAT",
                    _ => "PXAT",
                };
                option = GetExOption::Time(kind, next.map(|n| n.to_string()).unwrap_or_default());
                j += 1;
            }
            _ => return Err(e(errors::SYNTAX)),
        }
        j += 1;
    }
    Ok(option)
}

impl ExtCommand {
    pub fn name(&self) -> &'static str {
        use ExtCommand::*;
        match self {
            IncrByFloat { .. } => "incrbyfloat",
            HIncrByFloat { .. } => "hincrbyfloat",
            LMove { .. } => "lmove",
            BLMove { .. } => "blmove",
            SPop { .. } => "spop",
            SRandMember { .. } => "srandmember",
            ZRange { .. } => "zrange",
            ZPop { max: false, .. } => "zpopmin",
            ZPop { max: true, .. } => "zpopmax",
            BZPop { max: false, .. } => "bzpopmin",
            BZPop { max: true, .. } => "bzpopmax",
            ZRemRange {
                range: ZRangeSpec::Rank(..),
                ..
            } => "zremrangebyrank",
            ZRemRange {
                range: ZRangeSpec::Score(..),
                ..
            } => "zremrangebyscore",
            ZRemRange { .. } => "zremrangebylex",
            ZCount {
                range: ZRangeSpec::Lex(..),
                ..
            } => "zlexcount",
            ZCount { .. } => "zcount",
            ZMScore { .. } => "zmscore",
            ZRevRank { .. } => "zrevrank",
            Scan { .. } => "scan",
            ScanIn {
                of: ScanOf::Hash, ..
            } => "hscan",
            ScanIn {
                of: ScanOf::Set, ..
            } => "sscan",
            ScanIn { .. } => "zscan",
            GetRange { .. } => "getrange",
            SetRange { .. } => "setrange",
            GetEx { .. } => "getex",
            Copy { .. } => "copy",
            Rename { nx: false, .. } => "rename",
            Rename { nx: true, .. } => "renamenx",
        }
    }

    /// Whether the command may change the dataset (refused on a replica).
    pub fn is_write(&self) -> bool {
        use ExtCommand::*;
        !matches!(
            self,
            SRandMember { .. }
                | ZRange { .. }
                | ZCount { .. }
                | ZMScore { .. }
                | ZRevRank { .. }
                | Scan { .. }
                | ScanIn { .. }
                | GetRange { .. }
        )
    }

    /// Redis' `denyoom` flag among these commands.
    pub fn may_grow(&self) -> bool {
        use ExtCommand::*;
        matches!(
            self,
            IncrByFloat { .. }
                | HIncrByFloat { .. }
                | LMove { .. }
                | BLMove { .. }
                | SetRange { .. }
                | Copy { .. }
        )
    }

    /// The keys a blocking form waits on.
    pub fn blocking_keys(&self) -> Option<&[String]> {
        match self {
            ExtCommand::BLMove { source, .. } => Some(std::slice::from_ref(source)),
            ExtCommand::BZPop { keys, .. } => Some(keys),
            _ => None,
        }
    }

    /// The arguments after the command name, as a client would send them.
    pub fn to_args(&self) -> Vec<String> {
        use ExtCommand::*;
        let mut a: Vec<String> = Vec::new();
        let range_args = |r: &ZRangeSpec, rev: bool| -> Vec<String> {
            let (x, y) = match r {
                ZRangeSpec::Rank(s, t) => (s.to_string(), t.to_string()),
                ZRangeSpec::Score(s, t) => (score_arg(*s), score_arg(*t)),
                ZRangeSpec::Lex(s, t) => (s.arg().into_owned(), t.arg().into_owned()),
            };
            if rev && !matches!(r, ZRangeSpec::Rank(..)) {
                vec![y, x]
            } else {
                vec![x, y]
            }
        };
        match self {
            IncrByFloat { key, delta } => a.extend([key.clone(), delta.clone()]),
            HIncrByFloat { key, field, delta } => {
                a.extend([key.clone(), field.clone(), delta.clone()])
            }
            LMove {
                source,
                destination,
                from,
                to,
            } => a.extend([
                source.clone(),
                destination.clone(),
                from.arg().into(),
                to.arg().into(),
            ]),
            BLMove {
                source,
                destination,
                from,
                to,
                timeout,
            } => a.extend([
                source.clone(),
                destination.clone(),
                from.arg().into(),
                to.arg().into(),
                timeout.as_secs_f64().to_string(),
            ]),
            SPop { key, count } => {
                a.push(key.clone());
                a.extend(count.map(|c| c.to_string()));
            }
            SRandMember { key, count } => {
                a.push(key.clone());
                a.extend(count.map(|c| c.to_string()));
            }
            ZRange {
                key,
                range,
                rev,
                limit,
                with_scores,
            } => {
                a.push(key.clone());
                a.extend(range_args(range, *rev));
                match range {
                    ZRangeSpec::Rank(..) => {}
                    ZRangeSpec::Score(..) => a.push("BYSCORE".into()),
                    ZRangeSpec::Lex(..) => a.push("BYLEX".into()),
                }
                if *rev {
                    a.push("REV".into());
                }
                if let Some((o, c)) = limit {
                    a.extend(["LIMIT".into(), o.to_string(), c.to_string()]);
                }
                if *with_scores {
                    a.push("WITHSCORES".into());
                }
            }
            ZPop { key, count, .. } => {
                a.push(key.clone());
                a.extend(count.map(|c| c.to_string()));
            }
            BZPop { keys, timeout, .. } => {
                a.extend(keys.iter().cloned());
                a.push(timeout.as_secs_f64().to_string());
            }
            ZRemRange { key, range } | ZCount { key, range } => {
                a.push(key.clone());
                a.extend(range_args(range, false));
            }
            ZMScore { key, members } => {
                a.push(key.clone());
                a.extend(members.iter().cloned());
            }
            ZRevRank { key, member } => a.extend([key.clone(), member.clone()]),
            Scan {
                cursor,
                pattern,
                count,
                kind,
            } => {
                a.push(cursor.to_string());
                if let Some(p) = pattern {
                    a.extend(["MATCH".into(), p.clone()]);
                }
                if let Some(c) = count {
                    a.extend(["COUNT".into(), c.to_string()]);
                }
                if let Some(k) = kind {
                    a.extend(["TYPE".into(), k.clone()]);
                }
            }
            ScanIn {
                key,
                cursor,
                options,
                ..
            } => {
                a.extend([key.clone(), cursor.to_string()]);
                a.extend(options.iter().cloned());
            }
            GetRange { key, start, end } => {
                a.extend([key.clone(), start.to_string(), end.to_string()])
            }
            SetRange { key, offset, value } => {
                a.extend([key.clone(), offset.to_string(), value.clone()])
            }
            GetEx { key, option } => {
                a.push(key.clone());
                match option {
                    GetExOption::None => {}
                    GetExOption::Persist => a.push("PERSIST".into()),
                    GetExOption::Time(kind, t) => a.extend([kind.to_string(), t.clone()]),
                }
            }
            Copy {
                source,
                destination,
                replace,
            } => {
                a.extend([source.clone(), destination.clone()]);
                if *replace {
                    a.push("REPLACE".into());
                }
            }
            Rename { key, new_key, .. } => a.extend([key.clone(), new_key.clone()]),
        }
        a
    }
}

fn score_arg(b: ScoreBound) -> String {
    let v = if b.value == f64::INFINITY {
        "+inf".to_string()
    } else {
        fmt_score(b.value)
    };
    if b.exclusive {
        format!("({v}")
    } else {
        v
    }
}
