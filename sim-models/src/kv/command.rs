//! Commands and replies: Redis' protocol as Rust types (RESP2 without the bytes).
//!
//! Values are `String`s rather than byte strings: every system in this project stores text
//! (numbers, ids, JSON), and text makes traces and failing tests readable. A command
//! serialises structurally (`{"Set":{"key":"k","value":"v",...}}`), which is what the
//! `kv.cmd` trace events record and what is cheap to hash; [`Command::args`] gives the
//! argument vector `MONITOR` would show (`SET k v NX`), and [`crate::kv::parse`] is its
//! inverse.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use super::ext::ExtCommand;
use super::script::Script;
use super::stream::StreamCommand;
use crate::kv::state::fmt_score;
use sim_runtime::time::Duration;

/// The error replies this model produces, spelled exactly as Redis 7 does.
pub mod errors {
    pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
    pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
    pub const NOT_FLOAT: &str = "ERR value is not a valid float";
    pub const HASH_NOT_INTEGER: &str = "ERR hash value is not an integer";
    pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
    pub const DECREMENT_OVERFLOW: &str = "ERR decrement would overflow";
    pub const SYNTAX: &str = "ERR syntax error";
    pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";
    pub const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";
    pub const EXEC_WITHOUT_MULTI: &str = "ERR EXEC without MULTI";
    pub const DISCARD_WITHOUT_MULTI: &str = "ERR DISCARD without MULTI";
    pub const NESTED_MULTI: &str = "ERR MULTI calls can not be nested";
    pub const WATCH_IN_MULTI: &str = "ERR WATCH inside MULTI is not allowed";
    pub const READONLY: &str = "READONLY You can't write against a read only replica.";
    pub const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";
    pub const MIN_MAX_NOT_FLOAT: &str = "ERR min or max is not a float";
    pub const TIMEOUT_NOT_FLOAT: &str = "ERR timeout is not a float or out of range";
    pub const TIMEOUT_NEGATIVE: &str = "ERR timeout is negative";
    pub const NX_XX: &str = "ERR XX and NX options at the same time are not compatible";
    pub const ZADD_GT_LT_NX: &str =
        "ERR GT, LT, and/or NX options at the same time are not compatible";
    pub const EXPIRE_NX_OTHERS: &str =
        "ERR NX and XX, GT or LT options at the same time are not compatible";
    pub const EXPIRE_GT_LT: &str = "ERR GT and LT options at the same time are not compatible";
    pub const NOT_IN_SCRIPT: &str = "ERR This Redis command is not allowed from script";
    pub const NUMKEYS_TOO_BIG: &str = "ERR Number of keys can't be greater than number of args";
    pub const NUMKEYS_NEGATIVE: &str = "ERR Number of keys can't be negative";
    /// Not a Redis message: what the model answers where a command would leave a value
    /// that is not UTF-8 (a SETRANGE that splits a character); values are text here (see
    /// the `kv` module's deliberate differences).
    pub const NOT_UTF8: &str = "ERR the kv model stores UTF-8 text: this would split a character";
    /// What a `fail_rate` fault answers. Not a Redis message: an injected failure must be
    /// recognisable in a trace, and service code should treat it as any other error reply.
    pub const INJECTED: &str = "ERR injected failure (kv fail_rate fault)";

    /// `ERR wrong number of arguments for 'get' command`.
    pub fn arity(name: &str) -> String {
        format!("ERR wrong number of arguments for '{name}' command")
    }

    /// Redis 7's reply to a container command's unknown subcommand (`SCRIPT BAD`): the
    /// subcommand cut at 128 characters (and at a NUL byte), CR and LF made spaces.
    pub fn unknown_subcommand(command: &str, sub: &str) -> String {
        let sub: String = sub
            .split('\0')
            .next()
            .unwrap_or("")
            .chars()
            .take(128)
            .collect();
        format!(
            "ERR unknown subcommand '{sub}'. Try {} HELP.",
            command.to_ascii_uppercase()
        )
        .replace(['\r', '\n'], " ")
    }

    /// `ERR invalid expire time in 'set' command`.
    pub fn invalid_expire(name: &str) -> String {
        format!("ERR invalid expire time in '{name}' command")
    }

    /// Redis 7's reply to an unknown command: the name cut at 128 characters, then the
    /// arguments, each quoted and followed by a space, until 128 characters of them are
    /// shown (the last one cut to fit).
    pub fn unknown_command<S: AsRef<str>>(name: &str, args: &[S]) -> String {
        const SHOWN: usize = 128;
        // Redis formats with `%s`, which stops at a NUL byte, and turns CR and LF in an
        // error reply into spaces (they would break the protocol).
        fn c_str(s: &str) -> &str {
            s.split('\0').next().unwrap_or("")
        }
        let mut shown = String::new();
        for a in args {
            let used = shown.chars().count();
            if used >= SHOWN {
                break;
            }
            let cut: String = c_str(a.as_ref()).chars().take(SHOWN - used).collect();
            shown.push_str(&format!("'{cut}' "));
        }
        let name: String = c_str(name).chars().take(SHOWN).collect();
        format!("ERR unknown command '{name}', with args beginning with: {shown}")
            .replace(['\r', '\n'], " ")
    }
}

/// A reply, as RESP2 types it. RESP2 has one nil for both a missing string and an aborted
/// transaction or timed-out BLPOP; so has this type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Reply {
    Nil,
    /// A simple string: `OK`, `QUEUED`, `PONG`.
    Status(String),
    Int(i64),
    Bulk(String),
    Array(Vec<Reply>),
    /// An error reply, with its prefix (`ERR`, `WRONGTYPE`, `OOM`, ...).
    Error(String),
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Status("OK".into())
    }

    pub fn queued() -> Reply {
        Reply::Status("QUEUED".into())
    }

    pub fn bulk(s: impl Into<String>) -> Reply {
        Reply::Bulk(s.into())
    }

    pub fn error(s: impl Into<String>) -> Reply {
        Reply::Error(s.into())
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    pub fn from_bool(b: bool) -> Reply {
        Reply::Int(i64::from(b))
    }

    pub fn from_len(n: usize) -> Reply {
        Reply::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }

    pub fn opt_bulk(s: Option<String>) -> Reply {
        s.map_or(Reply::Nil, Reply::Bulk)
    }

    pub fn bulks<I: IntoIterator<Item = String>>(items: I) -> Reply {
        Reply::Array(items.into_iter().map(Reply::Bulk).collect())
    }
}

impl fmt::Display for Reply {
    /// redis-cli's rendering, on one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Nil => write!(f, "(nil)"),
            Reply::Status(s) => write!(f, "{s}"),
            Reply::Int(i) => write!(f, "(integer) {i}"),
            Reply::Bulk(s) => write!(f, "{s:?}"),
            Reply::Error(e) => write!(f, "(error) {e}"),
            Reply::Array(items) => {
                write!(f, "[")?;
                for (i, r) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{r}")?;
                }
                write!(f, "]")
            }
        }
    }
}

/// SET's and ZADD's existence condition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum Condition {
    #[default]
    Always,
    /// Only when the key (or member) does not exist.
    Nx,
    /// Only when it exists.
    Xx,
}

/// SET's expiry option. `At` forms are milliseconds of virtual time since the start of the
/// simulation, this model's Unix epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum SetExpiry {
    /// No option: SET clears any TTL.
    #[default]
    None,
    Ex(i64),
    Px(i64),
    ExAt(i64),
    PxAt(i64),
    KeepTtl,
}

/// EXPIRE's NX/XX/GT/LT flags (Redis 7). Incompatible combinations are errors at execution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExpireFlags {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
}

/// ZADD's flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ZAddFlags {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
    /// Count changed members, not only added ones.
    pub ch: bool,
}

/// A ZRANGEBYSCORE bound: `1`, `(1` (exclusive), `-inf`, `+inf`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ScoreBound {
    pub value: f64,
    pub exclusive: bool,
}

impl ScoreBound {
    pub fn inclusive(value: f64) -> Self {
        ScoreBound {
            value,
            exclusive: false,
        }
    }

    pub fn exclusive(value: f64) -> Self {
        ScoreBound {
            value,
            exclusive: true,
        }
    }

    pub const NEG_INF: ScoreBound = ScoreBound {
        value: f64::NEG_INFINITY,
        exclusive: false,
    };
    pub const POS_INF: ScoreBound = ScoreBound {
        value: f64::INFINITY,
        exclusive: false,
    };

    fn to_arg(self) -> String {
        let v = if self.value == f64::INFINITY {
            "+inf".to_string()
        } else {
            fmt_score(self.value)
        };
        if self.exclusive {
            format!("({v}")
        } else {
            v
        }
    }
}

/// One command. Variant fields are already typed, so the only argument errors left are
/// the semantic ones Redis checks while executing (an expire time of 0, a NaN score...).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Command {
    /// PING answers PONG, or echoes its message.
    Ping {
        message: Option<String>,
    },
    /// An argument vector as a client sent it, parsed by the server (see
    /// [`crate::kv::parse::parse_request`]): what a generic `redis-cli`-like call sends,
    /// so that unknown commands and arity errors are decided where Redis decides them.
    Raw {
        argv: Vec<String>,
    },
    /// A known command whose arguments Redis refuses when it runs it (a syntax error, a
    /// count that is not an integer...): outside MULTI it answers `error`; inside MULTI
    /// it is queued like any command and its error comes back in EXEC's array.
    BadArguments {
        name: String,
        error: String,
    },
    // Strings.
    Get {
        key: String,
    },
    Set {
        key: String,
        value: String,
        condition: Condition,
        expiry: SetExpiry,
        get: bool,
    },
    GetSet {
        key: String,
        value: String,
    },
    MGet {
        keys: Vec<String>,
    },
    Del {
        keys: Vec<String>,
    },
    Exists {
        keys: Vec<String>,
    },
    Incr {
        key: String,
    },
    Decr {
        key: String,
    },
    IncrBy {
        key: String,
        delta: i64,
    },
    DecrBy {
        key: String,
        delta: i64,
    },
    // Expiry.
    Expire {
        key: String,
        seconds: i64,
        flags: ExpireFlags,
    },
    PExpire {
        key: String,
        millis: i64,
        flags: ExpireFlags,
    },
    /// Absolute expiry in milliseconds of virtual time; what EXPIRE and SET EX propagate as.
    PExpireAt {
        key: String,
        at_millis: i64,
        flags: ExpireFlags,
    },
    Ttl {
        key: String,
    },
    PTtl {
        key: String,
    },
    Persist {
        key: String,
    },
    // Hashes.
    HSet {
        key: String,
        pairs: Vec<(String, String)>,
    },
    HGet {
        key: String,
        field: String,
    },
    HDel {
        key: String,
        fields: Vec<String>,
    },
    HIncrBy {
        key: String,
        field: String,
        delta: i64,
    },
    HGetAll {
        key: String,
    },
    HLen {
        key: String,
    },
    // Lists.
    LPush {
        key: String,
        values: Vec<String>,
    },
    RPush {
        key: String,
        values: Vec<String>,
    },
    LPop {
        key: String,
        count: Option<u64>,
    },
    RPop {
        key: String,
        count: Option<u64>,
    },
    LLen {
        key: String,
    },
    LRange {
        key: String,
        start: i64,
        stop: i64,
    },
    LRem {
        key: String,
        count: i64,
        value: String,
    },
    /// Blocks up to `timeout` (zero: forever) until one of `keys` has an element.
    BLPop {
        keys: Vec<String>,
        timeout: Duration,
    },
    BRPop {
        keys: Vec<String>,
        timeout: Duration,
    },
    // Sets.
    SAdd {
        key: String,
        members: Vec<String>,
    },
    SRem {
        key: String,
        members: Vec<String>,
    },
    SIsMember {
        key: String,
        member: String,
    },
    SCard {
        key: String,
    },
    SMembers {
        key: String,
    },
    // Sorted sets.
    ZAdd {
        key: String,
        flags: ZAddFlags,
        members: Vec<(f64, String)>,
    },
    ZRangeByScore {
        key: String,
        min: ScoreBound,
        max: ScoreBound,
        with_scores: bool,
        /// LIMIT offset count (a negative count means "all").
        limit: Option<(i64, i64)>,
    },
    ZRem {
        key: String,
        members: Vec<String>,
    },
    ZScore {
        key: String,
        member: String,
    },
    ZCard {
        key: String,
    },
    // Transactions.
    Multi,
    Exec,
    Discard,
    Watch {
        keys: Vec<String>,
    },
    Unwatch,
    // Scripts.
    /// EVAL of a Rust closure (see [`Script`]).
    Eval {
        script: Script,
        keys: Vec<String>,
        args: Vec<String>,
    },
    /// EVAL of Lua source, run by the server's Lua 5.1 (see [`super::lua`]).
    EvalLua {
        source: String,
        keys: Vec<String>,
        args: Vec<String>,
    },
    EvalSha {
        sha: String,
        keys: Vec<String>,
        args: Vec<String>,
    },
    ScriptLoad {
        source: String,
    },
    ScriptExists {
        shas: Vec<String>,
    },
    ScriptFlush,
    // Streams.
    Stream(StreamCommand),
    // Pub/Sub: the server shell runs these (they are about connections, not the dataset).
    Subscribe {
        channels: Vec<String>,
    },
    Unsubscribe {
        channels: Vec<String>,
    },
    PSubscribe {
        patterns: Vec<String>,
    },
    PUnsubscribe {
        patterns: Vec<String>,
    },
    Publish {
        channel: String,
        message: String,
    },
    PubSubChannels {
        pattern: Option<String>,
    },
    PubSubNumSub {
        channels: Vec<String>,
    },
    PubSubNumPat,
    // Commands added for the conformance suite's "commonly needed" list.
    ExpireAt {
        key: String,
        seconds: i64,
        flags: ExpireFlags,
    },
    SetNx {
        key: String,
        value: String,
    },
    /// SETEX (`unit_ms` 1000) and PSETEX (`unit_ms` 1).
    SetEx {
        key: String,
        ttl: i64,
        unit_ms: i64,
        value: String,
    },
    MSet {
        pairs: Vec<(String, String)>,
    },
    MSetNx {
        pairs: Vec<(String, String)>,
    },
    Append {
        key: String,
        value: String,
    },
    GetDel {
        key: String,
    },
    StrLen {
        key: String,
    },
    HMGet {
        key: String,
        fields: Vec<String>,
    },
    HExists {
        key: String,
        field: String,
    },
    HSetNx {
        key: String,
        field: String,
        value: String,
    },
    /// The index stays text: Redis looks the key up (nil when missing, WRONGTYPE) before
    /// it reads the index.
    LIndex {
        key: String,
        index: String,
    },
    LTrim {
        key: String,
        start: i64,
        stop: i64,
    },
    SInter {
        keys: Vec<String>,
    },
    SUnion {
        keys: Vec<String>,
    },
    ZIncrBy {
        key: String,
        delta: f64,
        member: String,
    },
    ZRank {
        key: String,
        member: String,
    },
    Type {
        key: String,
    },
    Unlink {
        keys: Vec<String>,
    },
    Keys {
        pattern: String,
    },
    /// The commands of the second list (INCRBYFLOAT, LMOVE, ZRANGE, SCAN...): see
    /// [`super::ext`].
    Ext(ExtCommand),
    // Server.
    DbSize,
    FlushAll,
}

impl Command {
    /// The lowercase command name, as Redis 7 spells it in error messages.
    pub fn name(&self) -> &'static str {
        use Command::*;
        match self {
            Ping { .. } => "ping",
            // The name of a raw vector is only known once it is parsed.
            Raw { .. } => "raw",
            BadArguments { .. } => "bad-arguments",
            Get { .. } => "get",
            Set { .. } => "set",
            GetSet { .. } => "getset",
            MGet { .. } => "mget",
            Del { .. } => "del",
            Exists { .. } => "exists",
            Incr { .. } => "incr",
            Decr { .. } => "decr",
            IncrBy { .. } => "incrby",
            DecrBy { .. } => "decrby",
            Expire { .. } => "expire",
            PExpire { .. } => "pexpire",
            PExpireAt { .. } => "pexpireat",
            Ttl { .. } => "ttl",
            PTtl { .. } => "pttl",
            Persist { .. } => "persist",
            HSet { .. } => "hset",
            HGet { .. } => "hget",
            HDel { .. } => "hdel",
            HIncrBy { .. } => "hincrby",
            HGetAll { .. } => "hgetall",
            HLen { .. } => "hlen",
            LPush { .. } => "lpush",
            RPush { .. } => "rpush",
            LPop { .. } => "lpop",
            RPop { .. } => "rpop",
            LLen { .. } => "llen",
            LRange { .. } => "lrange",
            LRem { .. } => "lrem",
            BLPop { .. } => "blpop",
            BRPop { .. } => "brpop",
            SAdd { .. } => "sadd",
            SRem { .. } => "srem",
            SIsMember { .. } => "sismember",
            SCard { .. } => "scard",
            SMembers { .. } => "smembers",
            ZAdd { .. } => "zadd",
            ZRangeByScore { .. } => "zrangebyscore",
            ZRem { .. } => "zrem",
            ZScore { .. } => "zscore",
            ZCard { .. } => "zcard",
            Multi => "multi",
            Exec => "exec",
            Discard => "discard",
            Watch { .. } => "watch",
            Unwatch => "unwatch",
            Eval { .. } | EvalLua { .. } => "eval",
            EvalSha { .. } => "evalsha",
            ScriptLoad { .. } | ScriptExists { .. } | ScriptFlush => "script",
            Stream(c) => c.name(),
            Subscribe { .. } => "subscribe",
            Unsubscribe { .. } => "unsubscribe",
            PSubscribe { .. } => "psubscribe",
            PUnsubscribe { .. } => "punsubscribe",
            Publish { .. } => "publish",
            PubSubChannels { .. } | PubSubNumSub { .. } | PubSubNumPat => "pubsub",
            DbSize => "dbsize",
            FlushAll => "flushall",
            ExpireAt { .. } => "expireat",
            SetNx { .. } => "setnx",
            SetEx { unit_ms: 1000, .. } => "setex",
            SetEx { .. } => "psetex",
            MSet { .. } => "mset",
            MSetNx { .. } => "msetnx",
            Append { .. } => "append",
            GetDel { .. } => "getdel",
            StrLen { .. } => "strlen",
            HMGet { .. } => "hmget",
            HExists { .. } => "hexists",
            HSetNx { .. } => "hsetnx",
            LIndex { .. } => "lindex",
            LTrim { .. } => "ltrim",
            SInter { .. } => "sinter",
            SUnion { .. } => "sunion",
            ZIncrBy { .. } => "zincrby",
            ZRank { .. } => "zrank",
            Type { .. } => "type",
            Unlink { .. } => "unlink",
            Keys { .. } => "keys",
            Ext(c) => c.name(),
        }
    }

    /// Commands that may change the dataset: refused on a replica (READONLY) and, when
    /// they can also grow it, refused under `maxmemory` (see [`Command::may_grow`]).
    /// Pub/Sub commands, which the server shell runs (see [`super::pubsub`]).
    pub fn is_pubsub(&self) -> bool {
        use Command::*;
        matches!(
            self,
            Subscribe { .. }
                | Unsubscribe { .. }
                | PSubscribe { .. }
                | PUnsubscribe { .. }
                | Publish { .. }
                | PubSubChannels { .. }
                | PubSubNumSub { .. }
                | PubSubNumPat
        )
    }

    pub fn is_write(&self) -> bool {
        use Command::*;
        matches!(
            self,
            Set { .. }
                | GetSet { .. }
                | Del { .. }
                | Incr { .. }
                | Decr { .. }
                | IncrBy { .. }
                | DecrBy { .. }
                | Expire { .. }
                | PExpire { .. }
                | PExpireAt { .. }
                | Persist { .. }
                | HSet { .. }
                | HDel { .. }
                | HIncrBy { .. }
                | LPush { .. }
                | RPush { .. }
                | LPop { .. }
                | RPop { .. }
                | LRem { .. }
                | BLPop { .. }
                | BRPop { .. }
                | SAdd { .. }
                | SRem { .. }
                | ZAdd { .. }
                | ZRem { .. }
                | Eval { .. }
                | EvalLua { .. }
                | EvalSha { .. }
                | FlushAll
                | ExpireAt { .. }
                | SetNx { .. }
                | SetEx { .. }
                | MSet { .. }
                | MSetNx { .. }
                | Append { .. }
                | GetDel { .. }
                | HSetNx { .. }
                | LTrim { .. }
                | ZIncrBy { .. }
                | Unlink { .. }
        ) || matches!(self, Stream(c) if c.is_write())
            || matches!(self, Ext(c) if c.is_write())
    }

    /// Redis' `denyoom` flag: writes that can grow memory, refused with OOM above
    /// `maxmemory`. Deletions and pops stay allowed so that a full store can be drained.
    pub fn may_grow(&self) -> bool {
        use Command::*;
        matches!(
            self,
            Set { .. }
                | GetSet { .. }
                | Incr { .. }
                | Decr { .. }
                | IncrBy { .. }
                | DecrBy { .. }
                | HSet { .. }
                | HIncrBy { .. }
                | LPush { .. }
                | RPush { .. }
                | SAdd { .. }
                | ZAdd { .. }
                | Eval { .. }
                | EvalLua { .. }
                | EvalSha { .. }
                | Stream(StreamCommand::Add { .. })
                | SetNx { .. }
                | SetEx { .. }
                | MSet { .. }
                | MSetNx { .. }
                | Append { .. }
                | HSetNx { .. }
                | ZIncrBy { .. }
        ) || matches!(self, Ext(c) if c.may_grow())
    }

    /// The argument vector, as `MONITOR` would print it.
    pub fn to_args(&self) -> Vec<String> {
        self.args().into_iter().map(Cow::into_owned).collect()
    }

    /// [`Command::to_args`] with what the command holds borrowed rather than copied.
    fn args(&self) -> Vec<Cow<'_, str>> {
        use Command::*;
        // Names are ASCII; room for the usual few arguments without regrowing.
        let mut a: Vec<Cow<'_, str>> = Vec::with_capacity(8);
        match self {
            Raw { argv } => return argv.iter().map(|x| b(x)).collect(),
            BadArguments { name, .. } => return vec![Cow::Owned(name.to_ascii_uppercase())],
            _ => a.push(Cow::Owned(self.name().to_ascii_uppercase())),
        }
        fn s(x: &'static str) -> Cow<'static, str> {
            Cow::Borrowed(x)
        }
        fn b(x: &str) -> Cow<'_, str> {
            Cow::Borrowed(x)
        }
        fn o<'a>(x: String) -> Cow<'a, str> {
            Cow::Owned(x)
        }
        match self {
            Multi
            | Exec
            | Discard
            | Unwatch
            | DbSize
            | FlushAll
            | Raw { .. }
            | BadArguments { .. } => {}
            Ping { message } => a.extend(message.iter().map(|m| b(m))),
            EvalLua {
                source: first,
                keys,
                args,
            }
            | EvalSha {
                sha: first,
                keys,
                args,
            } => {
                a.extend([b(first), o(keys.len().to_string())]);
                a.extend(keys.iter().map(|x| b(x)));
                a.extend(args.iter().map(|x| b(x)));
            }
            ScriptLoad { source } => a.extend([s("LOAD"), b(source)]),
            ScriptExists { shas } => {
                a.push(s("EXISTS"));
                a.extend(shas.iter().map(|x| b(x)));
            }
            ScriptFlush => a.push(s("FLUSH")),
            Stream(c) => a.extend(c.to_args().into_iter().map(o)),
            Ext(c) => a.extend(c.to_args().into_iter().map(o)),
            Subscribe { channels: names }
            | Unsubscribe { channels: names }
            | PSubscribe { patterns: names }
            | PUnsubscribe { patterns: names } => a.extend(names.iter().map(|x| b(x))),
            Publish { channel, message } => a.extend([b(channel), b(message)]),
            PubSubChannels { pattern } => {
                a.push(s("CHANNELS"));
                a.extend(pattern.iter().map(|x| b(x)));
            }
            PubSubNumSub { channels } => {
                a.push(s("NUMSUB"));
                a.extend(channels.iter().map(|x| b(x)));
            }
            PubSubNumPat => a.push(s("NUMPAT")),
            Get { key }
            | Incr { key }
            | Decr { key }
            | Ttl { key }
            | PTtl { key }
            | Persist { key }
            | HGetAll { key }
            | HLen { key }
            | LLen { key }
            | SCard { key }
            | SMembers { key }
            | ZCard { key } => a.push(b(key)),
            Set {
                key,
                value,
                condition,
                expiry,
                get,
            } => {
                a.extend([b(key), b(value)]);
                match condition {
                    Condition::Always => {}
                    Condition::Nx => a.push(s("NX")),
                    Condition::Xx => a.push(s("XX")),
                }
                if *get {
                    a.push(s("GET"));
                }
                match expiry {
                    SetExpiry::None => {}
                    SetExpiry::Ex(n) => a.extend([s("EX"), o(n.to_string())]),
                    SetExpiry::Px(n) => a.extend([s("PX"), o(n.to_string())]),
                    SetExpiry::ExAt(n) => a.extend([s("EXAT"), o(n.to_string())]),
                    SetExpiry::PxAt(n) => a.extend([s("PXAT"), o(n.to_string())]),
                    SetExpiry::KeepTtl => a.push(s("KEEPTTL")),
                }
            }
            GetSet { key, value } => a.extend([b(key), b(value)]),
            MGet { keys } | Del { keys } | Exists { keys } | Watch { keys } => {
                a.extend(keys.iter().map(|x| b(x)))
            }
            IncrBy { key, delta } | DecrBy { key, delta } => {
                a.extend([b(key), o(delta.to_string())])
            }
            Expire {
                key,
                seconds: n,
                flags,
            }
            | PExpire {
                key,
                millis: n,
                flags,
            }
            | PExpireAt {
                key,
                at_millis: n,
                flags,
            } => {
                a.extend([b(key), o(n.to_string())]);
                for (on, name) in [
                    (flags.nx, "NX"),
                    (flags.xx, "XX"),
                    (flags.gt, "GT"),
                    (flags.lt, "LT"),
                ] {
                    if on {
                        a.push(s(name));
                    }
                }
            }
            HSet { key, pairs } => {
                a.push(b(key));
                for (f, v) in pairs {
                    a.extend([b(f), b(v)]);
                }
            }
            HGet { key, field } => a.extend([b(key), b(field)]),
            HDel { key, fields: rest }
            | LPush { key, values: rest }
            | RPush { key, values: rest }
            | SAdd { key, members: rest }
            | SRem { key, members: rest }
            | ZRem { key, members: rest } => {
                a.push(b(key));
                a.extend(rest.iter().map(|x| b(x)));
            }
            HIncrBy { key, field, delta } => a.extend([b(key), b(field), o(delta.to_string())]),
            LPop { key, count } | RPop { key, count } => {
                a.push(b(key));
                if let Some(c) = count {
                    a.push(o(c.to_string()));
                }
            }
            LRange { key, start, stop } => {
                a.extend([b(key), o(start.to_string()), o(stop.to_string())])
            }
            LRem { key, count, value } => a.extend([b(key), o(count.to_string()), b(value)]),
            BLPop { keys, timeout } | BRPop { keys, timeout } => {
                a.extend(keys.iter().map(|x| b(x)));
                a.push(o(timeout.as_secs_f64().to_string()));
            }
            SIsMember { key, member } | ZScore { key, member } => a.extend([b(key), b(member)]),
            ZAdd {
                key,
                flags,
                members,
            } => {
                a.push(b(key));
                for (on, name) in [
                    (flags.nx, "NX"),
                    (flags.xx, "XX"),
                    (flags.gt, "GT"),
                    (flags.lt, "LT"),
                    (flags.ch, "CH"),
                ] {
                    if on {
                        a.push(s(name));
                    }
                }
                for (score, m) in members {
                    a.extend([o(fmt_score(*score)), b(m)]);
                }
            }
            ZRangeByScore {
                key,
                min,
                max,
                with_scores,
                limit,
            } => {
                a.extend([b(key), o(min.to_arg()), o(max.to_arg())]);
                if *with_scores {
                    a.push(s("WITHSCORES"));
                }
                if let Some((off, cnt)) = limit {
                    a.extend([s("LIMIT"), o(off.to_string()), o(cnt.to_string())]);
                }
            }
            ExpireAt {
                key,
                seconds,
                flags,
            } => {
                a.extend([b(key), o(seconds.to_string())]);
                for (on, name) in [
                    (flags.nx, "NX"),
                    (flags.xx, "XX"),
                    (flags.gt, "GT"),
                    (flags.lt, "LT"),
                ] {
                    if on {
                        a.push(s(name));
                    }
                }
            }
            SetNx { key, value } | Append { key, value } => a.extend([b(key), b(value)]),
            SetEx {
                key, ttl, value, ..
            } => a.extend([b(key), o(ttl.to_string()), b(value)]),
            MSet { pairs } | MSetNx { pairs } => {
                for (k, v) in pairs {
                    a.extend([b(k), b(v)]);
                }
            }
            GetDel { key } | StrLen { key } | Type { key } => a.push(b(key)),
            HMGet { key, fields } => {
                a.push(b(key));
                a.extend(fields.iter().map(|x| b(x)));
            }
            HExists { key, field } => a.extend([b(key), b(field)]),
            HSetNx { key, field, value } => a.extend([b(key), b(field), b(value)]),
            LIndex { key, index } => a.extend([b(key), b(index)]),
            LTrim { key, start, stop } => {
                a.extend([b(key), o(start.to_string()), o(stop.to_string())])
            }
            SInter { keys } | SUnion { keys } | Unlink { keys } => {
                a.extend(keys.iter().map(|x| b(x)))
            }
            ZIncrBy { key, delta, member } => a.extend([b(key), o(fmt_score(*delta)), b(member)]),
            ZRank { key, member } => a.extend([b(key), b(member)]),
            Keys { pattern } => a.push(b(pattern)),
            Eval { script, keys, args } => {
                a.extend([Cow::Borrowed(script.name()), o(keys.len().to_string())]);
                a.extend(keys.iter().map(|x| b(x)));
                a.extend(args.iter().map(|x| b(x)));
            }
        }
        a
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_args().join(" "))
    }
}
