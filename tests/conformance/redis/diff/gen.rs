//! The seeded generator: sequences of commands over everything the kv model supports,
//! with the inputs Redis refuses (wrong types, wrong arity, non-integers, out-of-range
//! values, incompatible options, unknown commands) mixed in.
//!
//! Keys come from a pool of five, so commands of different types meet on the same key.
//! Times are chosen so that no key expires *during* a sequence on either side (TTLs are
//! at least 100 s, or already in the past): the model's virtual clock and the real clock
//! advance differently, and a race between them would be noise, not a divergence.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One argument: text, or a Unix time relative to when the sequence runs (absolute
/// expiry must be compared against the real clock).
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Text(String),
    /// Unix seconds, this many seconds from the start of the sequence.
    UnixSecs(i64),
    /// Unix milliseconds, this many milliseconds from the start of the sequence.
    UnixMillis(i64),
}

/// One command of a sequence.
pub type Step = Vec<Arg>;

/// The argument vectors of `steps` with times resolved against `unix_ms`.
pub fn render(steps: &[Step], unix_ms: i64) -> Vec<Vec<String>> {
    steps
        .iter()
        .map(|step| {
            step.iter()
                .map(|a| match a {
                    Arg::Text(s) => s.clone(),
                    Arg::UnixSecs(d) => (unix_ms / 1000 + d).to_string(),
                    Arg::UnixMillis(d) => (unix_ms + d).to_string(),
                })
                .collect()
        })
        .collect()
}

/// An argument vector as a redis-cli line (quoted where needed).
pub fn cli_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.is_empty() || a.contains([' ', '"', '\'', '\\']) {
                format!("{a:?}")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

const KEYS: &[&str] = &["a", "b", "c", "d", "e"];
const VALUES: &[&str] = &[
    "1",
    "2",
    "10",
    "-3",
    "0",
    "v",
    "x",
    "1.5",
    "",
    "9223372036854775807",
    "-9223372036854775808",
    "0x10",
    "hello world",
];
const INTEGERS: &[&str] = &[
    "1",
    "5",
    "-2",
    "0",
    "100",
    "1.5",
    "x",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999",
    " 1",
    "+1",
    "007",
];
const SCORES: &[&str] = &[
    "1",
    "2",
    "0",
    "-1.5",
    "0.1",
    "1e20",
    "0x10",
    "inf",
    "-inf",
    "+inf",
    "nan",
    "x",
    "3.5",
    "1e-5",
    "123456789",
    "",
];
const BOUNDS: &[&str] = &[
    "-inf", "+inf", "0", "1", "(1", "2.5", "(0.1", "x", "(", "0x2", "inf", "-1.5",
];
const MEMBERS: &[&str] = &["m1", "m2", "m3", "1", "2"];
const FIELDS: &[&str] = &["f1", "f2", "f3", "f4"];
const SECONDS: &[&str] = &[
    "100",
    "1000",
    "86400",
    "0",
    "-1",
    "x",
    "1.5",
    "9223372036854775807",
    "-9223372036854775808",
];
const MILLIS: &[&str] = &["100000", "5000000", "0", "-5", "y", "9223372036854775807"];
const EXPIRE_FLAGS: &[&str] = &["NX", "XX", "GT", "LT", "nx", "BAD"];
const SET_OPTIONS: &[&str] = &[
    "NX", "XX", "GET", "KEEPTTL", "EX", "PX", "EXAT", "PXAT", "BAD",
];
const ZADD_FLAGS: &[&str] = &["NX", "XX", "GT", "LT", "CH"];
const SCRIPTS: &[&str] = &[
    "return 1",
    "return redis.call('GET', KEYS[1])",
    "return redis.call('INCR', KEYS[1])",
    "return {1, 'two', {3}}",
    "return redis.error_reply('boom')",
    "return redis.status_reply('fine')",
    "return redis.call('SET', KEYS[1], ARGV[1])",
    "return 3.99",
    "return nil",
    "return redis.pcall('LPUSH', KEYS[1], 'x')",
];
const UNKNOWN: &[&str] = &["NOSUCHCMD", "GETT", "foo"];

/// A seeded source of choices.
pub struct Choices(ChaCha8Rng);

impl Choices {
    pub fn new(seed: u64) -> Self {
        Choices(ChaCha8Rng::seed_from_u64(seed))
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.0.next_u64() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.0.next_u64() % 100 < percent
    }

    pub fn pick(&mut self, from: &[&str]) -> String {
        from[self.below(from.len())].to_string()
    }

    /// 1..=max picks.
    pub fn some(&mut self, from: &[&str], max: usize) -> Vec<String> {
        let n = 1 + self.below(max);
        (0..n).map(|_| self.pick(from)).collect()
    }
}

fn text(parts: Vec<String>) -> Step {
    parts.into_iter().map(Arg::Text).collect()
}

fn cmd(name: &str, args: Vec<String>) -> Step {
    let mut v = vec![name.to_string()];
    v.extend(args);
    text(v)
}

/// The sequence of seed `seed`: 5 to 40 commands, some grouped in MULTI blocks.
pub fn sequence(seed: u64) -> Vec<Step> {
    let mut c = Choices::new(seed);
    let len = 5 + c.below(36);
    let mut steps = Vec::with_capacity(len + 4);
    while steps.len() < len {
        if c.chance(12) {
            // A transaction: MULTI, a few commands (some refused), EXEC or DISCARD.
            if c.chance(30) {
                steps.push(cmd("WATCH", c.some(KEYS, 2)));
                if c.chance(50) {
                    steps.push(command(&mut c));
                }
            }
            steps.push(cmd("MULTI", vec![]));
            for _ in 0..1 + c.below(4) {
                steps.push(if c.chance(10) {
                    blocking_pop(&mut c)
                } else {
                    queueable(&mut c)
                });
            }
            steps.push(cmd(if c.chance(85) { "EXEC" } else { "DISCARD" }, vec![]));
        } else {
            steps.push(command(&mut c));
        }
    }
    steps
}

/// A command for inside a MULTI block: anything but EXEC and DISCARD, which would end the
/// block early and let a BLPOP after them block the real server.
fn queueable(c: &mut Choices) -> Step {
    loop {
        let step = command(c);
        let ends = matches!(&step[0], Arg::Text(n) if n == "EXEC" || n == "DISCARD");
        if !ends {
            return step;
        }
    }
}

/// BLPOP/BRPOP, only generated inside MULTI, where they never block.
fn blocking_pop(c: &mut Choices) -> Step {
    let name = if c.chance(50) { "BLPOP" } else { "BRPOP" };
    let mut args = c.some(KEYS, 2);
    args.push(c.pick(&["0", "1", "0.5", "-1", "x"]));
    cmd(name, args)
}

/// One command of any family.
pub fn command(c: &mut Choices) -> Step {
    match c.below(11) {
        0 | 1 => string(c),
        9 | 10 => added(c),
        2 => expiry(c),
        3 => hash(c),
        4 => list(c),
        5 => set(c),
        6 => zset(c),
        7 => malformed(c),
        _ => misc(c),
    }
}

fn key(c: &mut Choices) -> String {
    c.pick(KEYS)
}

fn string(c: &mut Choices) -> Step {
    let k = key(c);
    match c.below(10) {
        0 => cmd("GET", vec![k]),
        1 | 2 => set_command(c, k),
        3 => cmd("GETSET", vec![k, c.pick(VALUES)]),
        4 => cmd("MGET", c.some(KEYS, 4)),
        5 => cmd("DEL", c.some(KEYS, 4)),
        6 => cmd("EXISTS", c.some(KEYS, 4)),
        7 => cmd(c.pick(&["INCR", "DECR"]).as_str(), vec![k]),
        _ => cmd(
            c.pick(&["INCRBY", "DECRBY"]).as_str(),
            vec![k, c.pick(INTEGERS)],
        ),
    }
}

fn set_command(c: &mut Choices, k: String) -> Step {
    let mut step = cmd("SET", vec![k, c.pick(VALUES)]);
    for _ in 0..c.below(3) {
        let opt = c.pick(SET_OPTIONS);
        let with_time = ["EX", "PX", "EXAT", "PXAT"].contains(&opt.as_str());
        step.push(Arg::Text(opt.clone()));
        if !with_time {
            continue;
        }
        step.push(match opt.as_str() {
            "EX" => Arg::Text(c.pick(SECONDS)),
            "PX" => Arg::Text(c.pick(MILLIS)),
            "EXAT" => unix_secs(c),
            _ => unix_millis(c),
        });
    }
    step
}

/// An absolute time in seconds: in the past, far enough in the future, or nonsense.
fn unix_secs(c: &mut Choices) -> Arg {
    match c.below(5) {
        0 => Arg::UnixSecs(-1000),
        1 | 2 => Arg::UnixSecs(100 + c.below(1000) as i64),
        3 => Arg::Text("1000".into()),
        _ => Arg::Text(c.pick(&["0", "-1", "x", "9223372036854775807"])),
    }
}

fn unix_millis(c: &mut Choices) -> Arg {
    match c.below(5) {
        0 => Arg::UnixMillis(-1_000_000),
        1 | 2 => Arg::UnixMillis(100_000 + c.below(1_000_000) as i64),
        3 => Arg::Text("1000".into()),
        _ => Arg::Text(c.pick(&["0", "-1", "x", "9223372036854775807"])),
    }
}

fn expire_flags(c: &mut Choices) -> Vec<Arg> {
    let n = if c.chance(60) { 0 } else { 1 + c.below(2) };
    (0..n).map(|_| Arg::Text(c.pick(EXPIRE_FLAGS))).collect()
}

fn expiry(c: &mut Choices) -> Step {
    let k = key(c);
    let mut step = match c.below(7) {
        0 => cmd("EXPIRE", vec![k, c.pick(SECONDS)]),
        1 => cmd("PEXPIRE", vec![k, c.pick(MILLIS)]),
        2 => {
            let mut s = cmd("PEXPIREAT", vec![k]);
            s.push(unix_millis(c));
            s
        }
        3 => return cmd("TTL", vec![k]),
        4 => return cmd("PTTL", vec![k]),
        5 => return cmd("PERSIST", vec![k]),
        _ => return set_command(c, k),
    };
    step.extend(expire_flags(c));
    step
}

fn hash(c: &mut Choices) -> Step {
    let k = key(c);
    match c.below(7) {
        0 | 1 => {
            let mut args = vec![k];
            for _ in 0..1 + c.below(3) {
                args.push(c.pick(FIELDS));
                args.push(c.pick(VALUES));
            }
            cmd("HSET", args)
        }
        2 => cmd("HGET", vec![k, c.pick(FIELDS)]),
        3 => {
            let mut args = vec![k];
            args.extend(c.some(FIELDS, 3));
            cmd("HDEL", args)
        }
        4 => cmd("HINCRBY", vec![k, c.pick(FIELDS), c.pick(INTEGERS)]),
        5 => cmd("HGETALL", vec![k]),
        _ => cmd("HLEN", vec![k]),
    }
}

fn list(c: &mut Choices) -> Step {
    let k = key(c);
    match c.below(7) {
        0 | 1 => {
            let mut args = vec![k];
            args.extend(c.some(VALUES, 3));
            cmd(c.pick(&["LPUSH", "RPUSH"]).as_str(), args)
        }
        2 => {
            let mut args = vec![k];
            if c.chance(40) {
                args.push(c.pick(&["0", "1", "2", "10", "-1", "x"]));
            }
            cmd(c.pick(&["LPOP", "RPOP"]).as_str(), args)
        }
        3 => cmd("LLEN", vec![k]),
        4 | 5 => cmd(
            "LRANGE",
            vec![
                k,
                c.pick(&["0", "1", "-1", "-100", "x", "5"]),
                c.pick(&["-1", "0", "2", "100", "-2", "y"]),
            ],
        ),
        _ => cmd(
            "LREM",
            vec![k, c.pick(&["0", "1", "-1", "2", "z"]), c.pick(VALUES)],
        ),
    }
}

fn set(c: &mut Choices) -> Step {
    let k = key(c);
    match c.below(6) {
        0 | 1 => {
            let mut args = vec![k];
            args.extend(c.some(MEMBERS, 3));
            cmd("SADD", args)
        }
        2 => {
            let mut args = vec![k];
            args.extend(c.some(MEMBERS, 3));
            cmd("SREM", args)
        }
        3 => cmd("SISMEMBER", vec![k, c.pick(MEMBERS)]),
        4 => cmd("SCARD", vec![k]),
        _ => cmd("SMEMBERS", vec![k]),
    }
}

fn zset(c: &mut Choices) -> Step {
    let k = key(c);
    match c.below(7) {
        0 | 1 => {
            let mut args = vec![k];
            if c.chance(35) {
                args.extend(c.some(ZADD_FLAGS, 2));
            }
            for _ in 0..1 + c.below(3) {
                args.push(c.pick(SCORES));
                args.push(c.pick(MEMBERS));
            }
            if c.chance(5) {
                args.pop();
            }
            cmd("ZADD", args)
        }
        2 => {
            let mut args = vec![k, c.pick(BOUNDS), c.pick(BOUNDS)];
            if c.chance(40) {
                args.push("WITHSCORES".into());
            }
            if c.chance(30) {
                args.push("LIMIT".into());
                args.push(c.pick(&["0", "1", "-1", "x"]));
                args.push(c.pick(&["1", "2", "-1", "0"]));
            }
            cmd("ZRANGEBYSCORE", args)
        }
        3 => {
            let mut args = vec![k];
            args.extend(c.some(MEMBERS, 3));
            cmd("ZREM", args)
        }
        4 => cmd("ZSCORE", vec![k, c.pick(MEMBERS)]),
        _ => cmd("ZCARD", vec![k]),
    }
}

/// The commands added to the model for the "commonly needed" list.
fn added(c: &mut Choices) -> Step {
    let k = key(c);
    match c.below(21) {
        0 => {
            let mut s = cmd("EXPIREAT", vec![k]);
            s.push(unix_secs(c));
            s.extend(expire_flags(c));
            s
        }
        1 => cmd("SETNX", vec![k, c.pick(VALUES)]),
        2 => cmd("SETEX", vec![k, c.pick(SECONDS), c.pick(VALUES)]),
        3 => cmd("PSETEX", vec![k, c.pick(MILLIS), c.pick(VALUES)]),
        4 | 5 => {
            let mut args = vec![];
            for _ in 0..1 + c.below(3) {
                args.push(key(c));
                args.push(c.pick(VALUES));
            }
            if c.chance(10) {
                args.pop();
            }
            cmd(c.pick(&["MSET", "MSETNX"]).as_str(), args)
        }
        6 => cmd("APPEND", vec![k, c.pick(VALUES)]),
        7 => cmd("GETDEL", vec![k]),
        8 => cmd("STRLEN", vec![k]),
        9 => {
            let mut args = vec![k];
            args.extend(c.some(FIELDS, 3));
            cmd("HMGET", args)
        }
        10 => cmd("HEXISTS", vec![k, c.pick(FIELDS)]),
        11 => cmd("HSETNX", vec![k, c.pick(FIELDS), c.pick(VALUES)]),
        12 => cmd("LINDEX", vec![k, c.pick(&["0", "1", "-1", "-3", "5", "x"])]),
        13 => cmd(
            "LTRIM",
            vec![
                k,
                c.pick(&["0", "1", "-2", "5", "x"]),
                c.pick(&["-1", "0", "1", "-3", "10"]),
            ],
        ),
        14 => cmd(c.pick(&["SINTER", "SUNION"]).as_str(), c.some(KEYS, 3)),
        15 => cmd("ZINCRBY", vec![k, c.pick(SCORES), c.pick(MEMBERS)]),
        16 => cmd("ZRANK", vec![k, c.pick(MEMBERS)]),
        17 => cmd("TYPE", vec![k]),
        18 => cmd("UNLINK", c.some(KEYS, 3)),
        _ => cmd(
            "KEYS",
            vec![c.pick(&["*", "a*", "?", "[a-c]", "[^a]", "b", "*\\*"])],
        ),
    }
}

/// Unknown commands and wrong argument counts.
fn malformed(c: &mut Choices) -> Step {
    match c.below(3) {
        0 => {
            let mut args = vec![];
            for _ in 0..c.below(3) {
                args.push(c.pick(VALUES));
            }
            cmd(&c.pick(UNKNOWN), args)
        }
        _ => {
            // A real command with an argument too few (or many, for fixed arities).
            let full = command(c);
            let mut step = full.clone();
            if c.chance(70) || step.len() < 2 {
                step.truncate(c.below(step.len().max(2) - 1) + 1);
            } else {
                step.push(Arg::Text("extra".into()));
            }
            step
        }
    }
}

fn misc(c: &mut Choices) -> Step {
    match c.below(8) {
        0 => {
            let mut args = vec![];
            for _ in 0..c.below(3) {
                args.push(c.pick(VALUES));
            }
            cmd("PING", args)
        }
        1 => cmd("DBSIZE", vec![]),
        2 => {
            if c.chance(50) {
                cmd("FLUSHALL", vec![])
            } else {
                cmd("FLUSHALL", vec![c.pick(&["ASYNC", "sync", "extra"])])
            }
        }
        3 => cmd("WATCH", c.some(KEYS, 2)),
        4 => cmd(c.pick(&["UNWATCH", "EXEC", "DISCARD"]).as_str(), vec![]),
        _ => {
            let mut args = vec![c.pick(SCRIPTS)];
            let nkeys = c.below(2);
            args.push(if c.chance(5) {
                "x".into()
            } else {
                nkeys.to_string()
            });
            for _ in 0..nkeys {
                args.push(key(c));
            }
            args.push(c.pick(VALUES));
            cmd("EVAL", args)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_sequence_and_others_differ() {
        assert_eq!(sequence(7), sequence(7));
        assert_ne!(sequence(7), sequence(8));
    }
}
