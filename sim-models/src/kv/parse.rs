//! Argument vectors to commands (`["SET","k","v","NX"]` -> `Command::Set`), with Redis 7's
//! parse errors (arity, syntax, "not an integer"). The inverse of `Command::to_args`; used
//! by tests written as redis-cli sessions and by anyone replaying a `kv.cmd` trace.

use sim_runtime::time::Duration;

use super::command::{
    errors, Command, Condition, ExpireFlags, Reply, ScoreBound, SetExpiry, ZAddFlags,
};
use super::number;
use super::state::parse_i64_strict;

type P<T> = Result<T, Reply>;

fn e(s: impl Into<String>) -> Reply {
    Reply::error(s)
}

fn int(s: &str) -> P<i64> {
    parse_i64_strict(s).ok_or_else(|| e(errors::NOT_INTEGER))
}

/// A score: Redis' `string2d`, which is C's `strtod` (so `0x10` is 16) without NaN.
fn float(s: &str, error: &str) -> P<f64> {
    number::string2d(s).ok_or_else(|| e(error))
}

/// A range bound: `strtod` over what follows an optional `(`, as `zslParseRange` reads it.
fn bound(s: &str) -> P<ScoreBound> {
    let (exclusive, rest) = match s.strip_prefix('(') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let value = number::strtod_all(rest)
        .filter(|v| !v.is_nan())
        .ok_or_else(|| e(errors::MIN_MAX_NOT_FLOAT))?;
    Ok(ScoreBound { value, exclusive })
}

/// Redis' arity: positive is exact, negative is a minimum (command name included).
fn arity(name: &str) -> Option<i64> {
    Some(match name {
        "ping" | "flushall" => -1,
        "multi" | "exec" | "discard" | "unwatch" | "dbsize" => 1,
        "get" | "incr" | "decr" | "ttl" | "pttl" | "persist" | "hgetall" | "hlen" | "llen"
        | "scard" | "smembers" | "zcard" => 2,
        "getset" | "incrby" | "decrby" | "hget" | "sismember" | "zscore" => 3,
        "hincrby" | "lrange" | "lrem" => 4,
        "mget" | "del" | "exists" | "watch" | "lpop" | "rpop" => -2,
        "set" | "expire" | "pexpire" | "pexpireat" | "hdel" | "lpush" | "rpush" | "blpop"
        | "brpop" | "sadd" | "srem" | "zrem" | "eval" => -3,
        "hset" | "zadd" | "zrangebyscore" => -4,
        "getdel" | "strlen" | "type" | "keys" => 2,
        "setnx" | "append" | "hexists" | "lindex" | "zrank" => 3,
        "setex" | "psetex" | "hsetnx" | "ltrim" | "zincrby" => 4,
        "expireat" | "mset" | "msetnx" | "hmget" => -3,
        "sinter" | "sunion" | "unlink" => -2,
        "evalsha" | "xdel" | "xpending" => -3,
        "script" | "xgroup" | "subscribe" | "psubscribe" | "pubsub" => -2,
        "unsubscribe" | "punsubscribe" => -1,
        "publish" => 3,
        "xlen" => 2,
        "xadd" => -5,
        "xrange" | "xrevrange" | "xtrim" | "xread" | "xack" => -4,
        "xclaim" | "xautoclaim" => -6,
        "xreadgroup" => -7,
        other => return super::ext::arity(other),
    })
}

/// Parses an argument vector into a command, or the error reply Redis would give.
pub fn parse<S: AsRef<str>>(argv: &[S]) -> Result<Command, Reply> {
    let argv: Vec<&str> = argv.iter().map(AsRef::as_ref).collect();
    let (name, args) = known(&argv)?;
    parse_args(&name, args)
}

/// Parses what a client sent as the server does: `Err` only for what Redis refuses before
/// running (or queueing) anything, an unknown command or a wrong argument count, which
/// inside MULTI makes EXEC answer EXECABORT. Errors Redis finds while running the command
/// (syntax, integers, floats...) become [`Command::BadArguments`], queued by MULTI like any
/// command, whose error then comes back inside EXEC's array.
pub fn parse_request<S: AsRef<str>>(argv: &[S]) -> Result<Command, Reply> {
    let argv: Vec<&str> = argv.iter().map(AsRef::as_ref).collect();
    let (name, args) = known(&argv)?;
    Ok(
        parse_args(&name, args).unwrap_or_else(|reply| Command::BadArguments {
            error: match reply {
                Reply::Error(text) => text,
                other => other.to_string(),
            },
            name,
        }),
    )
}

/// The lowercase name and the arguments of a known command with an acceptable argument
/// count (Redis' `processCommand` checks).
fn known<'a>(argv: &'a [&'a str]) -> P<(String, &'a [&'a str])> {
    let Some((first, args)) = argv.split_first() else {
        return Err(e("ERR empty command"));
    };
    let name = first.to_ascii_lowercase();
    let Some(ar) = arity(&name) else {
        return Err(e(errors::unknown_command(first, args)));
    };
    let argc = argv.len() as i64;
    // A container command with a subcommand is checked as the subcommand (its own
    // arity, `script|load`), as Redis' command table holds them; alone, as itself.
    let (ar, full_name) = match (subcommands(&name), args.first()) {
        (Some(table), Some(sub)) => {
            let lower = sub.to_ascii_lowercase();
            let Some(&(_, ar)) = table.iter().find(|(n, _)| *n == lower) else {
                return Err(e(errors::unknown_subcommand(&name, sub)));
            };
            (ar, format!("{name}|{lower}"))
        }
        _ => (ar, name.clone()),
    };
    if (ar > 0 && argc != ar) || (ar < 0 && argc < -ar) {
        return Err(e(errors::arity(&full_name)));
    }
    Ok((name, args))
}

/// The subcommands the model runs of a container command, with Redis 7.0's arity (the
/// whole argument vector's, command and subcommand included). One Redis has and the model
/// does not (`SCRIPT KILL`, `XGROUP HELP`...) is refused as unknown.
fn subcommands(name: &str) -> Option<&'static [(&'static str, i64)]> {
    Some(match name {
        "script" => &[("load", 3), ("exists", -3), ("flush", -2)],
        "xgroup" => &[
            ("create", -5),
            ("setid", -5),
            ("destroy", 4),
            ("createconsumer", 5),
            ("delconsumer", 5),
        ],
        "pubsub" => &[("channels", -2), ("numsub", -2), ("numpat", 2)],
        _ => return None,
    })
}

fn parse_args(name: &str, args: &[&str]) -> P<Command> {
    let s = |i: usize| args[i].to_string();
    let rest = |from: usize| {
        args[from..]
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
    };
    use Command::*;
    Ok(match name {
        "ping" => match args {
            [] => Ping { message: None },
            [m] => Ping {
                message: Some(m.to_string()),
            },
            _ => return Err(e(errors::arity("ping"))),
        },
        "multi" => Multi,
        "exec" => Exec,
        "discard" => Discard,
        "unwatch" => Unwatch,
        "dbsize" => DbSize,
        // ASYNC and SYNC only say how the memory is freed.
        "flushall" => match args {
            [] => FlushAll,
            [mode] if ["async", "sync"].contains(&mode.to_ascii_lowercase().as_str()) => FlushAll,
            _ => return Err(e(errors::SYNTAX)),
        },
        "get" => Get { key: s(0) },
        "set" => parse_set(args)?,
        "getset" => GetSet {
            key: s(0),
            value: s(1),
        },
        "mget" => MGet { keys: rest(0) },
        "del" => Del { keys: rest(0) },
        "exists" => Exists { keys: rest(0) },
        "watch" => Watch { keys: rest(0) },
        "incr" => Incr { key: s(0) },
        "decr" => Decr { key: s(0) },
        "incrby" => IncrBy {
            key: s(0),
            delta: int(args[1])?,
        },
        "decrby" => DecrBy {
            key: s(0),
            delta: int(args[1])?,
        },
        "expire" | "pexpire" | "pexpireat" => {
            let (n, flags) = expire_args(args)?;
            match name {
                "expire" => Expire {
                    key: s(0),
                    seconds: n,
                    flags,
                },
                "pexpire" => PExpire {
                    key: s(0),
                    millis: n,
                    flags,
                },
                _ => PExpireAt {
                    key: s(0),
                    at_millis: n,
                    flags,
                },
            }
        }
        "expireat" => {
            let (seconds, flags) = expire_args(args)?;
            ExpireAt {
                key: s(0),
                seconds,
                flags,
            }
        }
        "setnx" => SetNx {
            key: s(0),
            value: s(1),
        },
        "setex" | "psetex" => SetEx {
            key: s(0),
            ttl: int(args[1])?,
            unit_ms: if name == "setex" { 1000 } else { 1 },
            value: s(2),
        },
        "mset" | "msetnx" => {
            if args.len() % 2 != 0 {
                return Err(e(errors::arity(name)));
            }
            let pairs = args
                .chunks(2)
                .map(|c| (c[0].to_string(), c[1].to_string()))
                .collect();
            if name == "mset" {
                MSet { pairs }
            } else {
                MSetNx { pairs }
            }
        }
        "append" => Append {
            key: s(0),
            value: s(1),
        },
        "getdel" => GetDel { key: s(0) },
        "strlen" => StrLen { key: s(0) },
        "hmget" => HMGet {
            key: s(0),
            fields: rest(1),
        },
        "hexists" => HExists {
            key: s(0),
            field: s(1),
        },
        "hsetnx" => HSetNx {
            key: s(0),
            field: s(1),
            value: s(2),
        },
        "lindex" => LIndex {
            key: s(0),
            index: s(1),
        },
        "ltrim" => LTrim {
            key: s(0),
            start: int(args[1])?,
            stop: int(args[2])?,
        },
        "sinter" => SInter { keys: rest(0) },
        "sunion" => SUnion { keys: rest(0) },
        "zincrby" => ZIncrBy {
            key: s(0),
            delta: float(args[1], errors::NOT_FLOAT)?,
            member: s(2),
        },
        "zrank" => ZRank {
            key: s(0),
            member: s(1),
        },
        "type" => Type { key: s(0) },
        "unlink" => Unlink { keys: rest(0) },
        "keys" => Keys { pattern: s(0) },
        "ttl" => Ttl { key: s(0) },
        "pttl" => PTtl { key: s(0) },
        "persist" => Persist { key: s(0) },
        "hset" => {
            if args.len() % 2 == 0 {
                return Err(e(errors::arity("hset")));
            }
            HSet {
                key: s(0),
                pairs: args[1..]
                    .chunks(2)
                    .map(|c| (c[0].to_string(), c[1].to_string()))
                    .collect(),
            }
        }
        "hget" => HGet {
            key: s(0),
            field: s(1),
        },
        "hdel" => HDel {
            key: s(0),
            fields: rest(1),
        },
        "hincrby" => HIncrBy {
            key: s(0),
            field: s(1),
            delta: int(args[2])?,
        },
        "hgetall" => HGetAll { key: s(0) },
        "hlen" => HLen { key: s(0) },
        "lpush" => LPush {
            key: s(0),
            values: rest(1),
        },
        "rpush" => RPush {
            key: s(0),
            values: rest(1),
        },
        "lpop" | "rpop" => {
            if args.len() > 2 {
                return Err(e(errors::arity(name)));
            }
            let count = match args.get(1) {
                None => None,
                Some(c) => Some(
                    parse_i64_strict(c)
                        .and_then(|n| u64::try_from(n).ok())
                        .ok_or_else(|| e(errors::NOT_POSITIVE))?,
                ),
            };
            if name == "lpop" {
                LPop { key: s(0), count }
            } else {
                RPop { key: s(0), count }
            }
        }
        "llen" => LLen { key: s(0) },
        "lrange" => LRange {
            key: s(0),
            start: int(args[1])?,
            stop: int(args[2])?,
        },
        "lrem" => LRem {
            key: s(0),
            count: int(args[1])?,
            value: s(2),
        },
        "blpop" | "brpop" => {
            let (keys, t) = args.split_at(args.len() - 1);
            let secs: f64 = t[0].parse().map_err(|_| e(errors::TIMEOUT_NOT_FLOAT))?;
            if !secs.is_finite() {
                return Err(e(errors::TIMEOUT_NOT_FLOAT));
            }
            if secs < 0.0 {
                return Err(e(errors::TIMEOUT_NEGATIVE));
            }
            let timeout = Duration::from_millis((secs * 1000.0).round() as u64);
            let keys = keys.iter().map(|k| k.to_string()).collect();
            if name == "blpop" {
                BLPop { keys, timeout }
            } else {
                BRPop { keys, timeout }
            }
        }
        "sadd" => SAdd {
            key: s(0),
            members: rest(1),
        },
        "srem" => SRem {
            key: s(0),
            members: rest(1),
        },
        "sismember" => SIsMember {
            key: s(0),
            member: s(1),
        },
        "scard" => SCard { key: s(0) },
        "smembers" => SMembers { key: s(0) },
        "zadd" => parse_zadd(args)?,
        "zrangebyscore" => {
            let mut with_scores = false;
            let mut limit = None;
            let mut i = 3;
            while i < args.len() {
                match args[i].to_ascii_uppercase().as_str() {
                    "WITHSCORES" => with_scores = true,
                    "LIMIT" if i + 2 < args.len() => {
                        limit = Some((int(args[i + 1])?, int(args[i + 2])?));
                        i += 2;
                    }
                    _ => return Err(e(errors::SYNTAX)),
                }
                i += 1;
            }
            ZRangeByScore {
                key: s(0),
                min: bound(args[1])?,
                max: bound(args[2])?,
                with_scores,
                limit,
            }
        }
        "zrem" => ZRem {
            key: s(0),
            members: rest(1),
        },
        "zscore" => ZScore {
            key: s(0),
            member: s(1),
        },
        "zcard" => ZCard { key: s(0) },
        "eval" | "evalsha" => {
            let (keys, args) = eval_keys(args)?;
            if name == "eval" {
                EvalLua {
                    source: s(0),
                    keys,
                    args,
                }
            } else {
                EvalSha {
                    sha: s(0),
                    keys,
                    args,
                }
            }
        }
        "script" => parse_script(args)?,
        "subscribe" => Subscribe { channels: rest(0) },
        "unsubscribe" => Unsubscribe { channels: rest(0) },
        "psubscribe" => PSubscribe { patterns: rest(0) },
        "punsubscribe" => PUnsubscribe { patterns: rest(0) },
        "publish" => Publish {
            channel: s(0),
            message: s(1),
        },
        "pubsub" => parse_pubsub(args)?,
        other => match super::ext::parse(other, args) {
            Some(parsed) => Ext(parsed?),
            None => match super::stream::parse(other, args) {
                Some(parsed) => Stream(parsed?),
                None => unreachable!("every name with an arity is parsed above"),
            },
        },
    })
}

/// EXPIRE's family after the key: the time and the NX/XX/GT/LT options. The options are
/// checked before the time, as Redis' `parseExtendedExpireArgumentsOrReply` runs first.
fn expire_args(args: &[&str]) -> P<(i64, ExpireFlags)> {
    let mut flags = ExpireFlags::default();
    for opt in &args[2..] {
        match opt.to_ascii_uppercase().as_str() {
            "NX" => flags.nx = true,
            "XX" => flags.xx = true,
            "GT" => flags.gt = true,
            "LT" => flags.lt = true,
            _ => return Err(e(format!("ERR Unsupported option {opt}"))),
        }
    }
    if flags.nx && (flags.xx || flags.gt || flags.lt) {
        return Err(e(errors::EXPIRE_NX_OTHERS));
    }
    if flags.gt && flags.lt {
        return Err(e(errors::EXPIRE_GT_LT));
    }
    Ok((int(args[1])?, flags))
}

/// EVAL's and EVALSHA's `numkeys key... arg...` after the script.
fn eval_keys(args: &[&str]) -> P<(Vec<String>, Vec<String>)> {
    let n = int(args[1])?;
    if n < 0 {
        return Err(e(errors::NUMKEYS_NEGATIVE));
    }
    let rest = &args[2..];
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if n > rest.len() {
        return Err(e(errors::NUMKEYS_TOO_BIG));
    }
    let owned = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    Ok((owned(&rest[..n]), owned(&rest[n..])))
}

fn parse_pubsub(args: &[&str]) -> P<Command> {
    // The subcommand and its arity were checked by `known`.
    Ok(match args[0].to_ascii_lowercase().as_str() {
        "channels" if args.len() <= 2 => Command::PubSubChannels {
            pattern: args.get(1).map(|p| p.to_string()),
        },
        "numsub" => Command::PubSubNumSub {
            channels: args[1..].iter().map(|a| a.to_string()).collect(),
        },
        "numpat" => Command::PubSubNumPat,
        _ => return Err(subcommand_syntax("PUBSUB", args[0])),
    })
}

/// Redis' `addReplySubcommandSyntaxError`: what a container command answers when it finds
/// its arguments wrong after the arity check passed.
fn subcommand_syntax(command: &str, sub: &str) -> Reply {
    e(format!(
        "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {command} HELP."
    ))
}

fn parse_script(args: &[&str]) -> P<Command> {
    // The subcommand and its arity were checked by `known`.
    match args[0].to_ascii_lowercase().as_str() {
        "load" => Ok(Command::ScriptLoad {
            source: args[1].to_string(),
        }),
        "exists" => Ok(Command::ScriptExists {
            shas: args[1..].iter().map(|a| a.to_string()).collect(),
        }),
        "flush" => match args[1..] {
            [] => Ok(Command::ScriptFlush),
            [m] if m.eq_ignore_ascii_case("sync") || m.eq_ignore_ascii_case("async") => {
                Ok(Command::ScriptFlush)
            }
            _ => Err(e("ERR SCRIPT FLUSH only support SYNC|ASYNC option")),
        },
        _ => Err(subcommand_syntax("SCRIPT", args[0])),
    }
}

fn parse_set(args: &[&str]) -> P<Command> {
    // Redis' `parseExtendedStringArgumentsOrReply`: an option may repeat (the last time
    // wins) but not meet its opposite, and the time is only read once every option is
    // known, so `SET k v PX x KEEPTTL` is a syntax error, not a bad integer.
    let mut condition = Condition::Always;
    let mut get = false;
    let mut keep_ttl = false;
    let mut expiry: Option<(String, &str)> = None;
    let mut i = 2;
    while i < args.len() {
        let opt = args[i].to_ascii_uppercase();
        let next = args.get(i + 1);
        let other_expiry = |kind: &str| expiry.as_ref().is_some_and(|(k, _)| k != kind);
        match (opt.as_str(), next) {
            ("NX", _) if condition != Condition::Xx => condition = Condition::Nx,
            ("XX", _) if condition != Condition::Nx => condition = Condition::Xx,
            ("GET", _) => get = true,
            ("KEEPTTL", _) if expiry.is_none() => keep_ttl = true,
            ("EX" | "PX" | "EXAT" | "PXAT", Some(n)) if !keep_ttl && !other_expiry(&opt) => {
                expiry = Some((opt.clone(), n));
                i += 1;
            }
            _ => return Err(e(errors::SYNTAX)),
        }
        i += 1;
    }
    let expiry = match expiry {
        None if keep_ttl => SetExpiry::KeepTtl,
        None => SetExpiry::None,
        Some((kind, n)) => {
            let n = int(n)?;
            match kind.as_str() {
                "EX" => SetExpiry::Ex(n),
                "PX" => SetExpiry::Px(n),
                "EXAT" => SetExpiry::ExAt(n),
                _ => SetExpiry::PxAt(n),
            }
        }
    };
    Ok(Command::Set {
        key: args[0].to_string(),
        value: args[1].to_string(),
        condition,
        expiry,
        get,
    })
}

fn parse_zadd(args: &[&str]) -> P<Command> {
    let mut flags = ZAddFlags::default();
    let mut i = 1;
    while i < args.len() {
        match args[i].to_ascii_uppercase().as_str() {
            "NX" => flags.nx = true,
            "XX" => flags.xx = true,
            "GT" => flags.gt = true,
            "LT" => flags.lt = true,
            "CH" => flags.ch = true,
            "INCR" => return Err(e("ERR ZADD INCR is not supported by this model")),
            _ => break,
        }
        i += 1;
    }
    let pairs = &args[i..];
    if pairs.is_empty() || pairs.len() % 2 != 0 {
        return Err(e(errors::SYNTAX));
    }
    if flags.nx && flags.xx {
        return Err(e(errors::NX_XX));
    }
    // Checked before the scores are read, as `zaddGenericCommand` does.
    if (flags.nx && (flags.gt || flags.lt)) || (flags.gt && flags.lt) {
        return Err(e(errors::ZADD_GT_LT_NX));
    }
    let mut members = Vec::with_capacity(pairs.len() / 2);
    for c in pairs.chunks(2) {
        members.push((float(c[0], errors::NOT_FLOAT)?, c[1].to_string()));
    }
    Ok(Command::ZAdd {
        key: args[0].to_string(),
        flags,
        members,
    })
}
