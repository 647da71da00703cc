//! The seeded generator: sequences of commands over everything the kv model supports,
//! with the inputs Redis refuses (wrong types, wrong arity, non-integers, out-of-range
//! values, incompatible options, unknown commands) mixed in.
//!
//! Keys come from a pool of five, so commands of different types meet on the same key.
//! Values include bytes that are easy to get wrong (NUL, CR LF, tabs, DEL); multi-byte
//! UTF-8 keys and values live under their own key (`ü`), where GETRANGE cuts characters
//! (both sides then read the bytes the same way, see `real.rs`), so that no SETRANGE on a
//! pool key can split a character (which the model refuses, a documented difference).
//!
//! Some commands only come at the top level of a sequence, never inside MULTI, because
//! their comparison needs the commands around them (see `compare.rs`): SPOP and
//! SRANDMEMBER (random members: after `SMEMBERS k`, and an SPOP is followed by `DEL k` so
//! that both sides continue from the same state), XADD with an automatic ID (followed by
//! XLEN and DEL), SCAN and its kin (each side iterates to the end), and Pub/Sub (which the
//! model does not run inside MULTI, a documented difference). Blocking commands outside
//! MULTI wait at most 10 ms, which the model waits in virtual time.
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
    "a\0b",
    "line\r\nnext",
    "\t\x7f\x01",
    "\0",
];
/// Multi-byte UTF-8, only under the key `ü`.
const UTF8_VALUES: &[&str] = &["日本語", "é", "naïve café", "😀x", "ß\0ü", "abc"];
const FLOATS: &[&str] = &[
    "1",
    "1.5",
    "-0.25",
    "0.1",
    "1e20",
    "1234.5678",
    "0x10",
    "inf",
    "-inf",
    "nan",
    "x",
    "",
    " 1",
    "1e-5000",
    "3.0e2",
    "-5",
    "5.0e3",
    "10",
];
const LEX: &[&str] = &[
    "-", "+", "[m1", "(m2", "[1", "(m3", "[", "(", "m1", "x", "[m3", "(1", "[2",
];
const RANKS: &[&str] = &["0", "1", "-1", "2", "-2", "10", "-100", "x"];
const DIRECTIONS: &[&str] = &["LEFT", "RIGHT", "left", "UP"];
const STREAM_IDS: &[&str] = &[
    "1-1",
    "1-2",
    "2",
    "3-0",
    "5-1",
    "10-0",
    "0-1",
    "0-0",
    "1-1",
    "x",
    "1-*",
    "12-*",
    "18446744073709551615-18446744073709551615",
    "20-5",
    "-",
    "+",
];
const STREAM_BOUNDS: &[&str] = &["-", "+", "1", "(1-1", "2-0", "x", "5", "(5-1", "0"];
const GROUPS: &[&str] = &["g1", "g2"];
const CONSUMERS: &[&str] = &["c1", "c2"];
const CHANNELS: &[&str] = &["ch1", "ch2", "news.*"];
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
const SCRIPTS: &[(&str, &str)] = &[
    ("return 1", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"),
    ("return redis.call('GET', KEYS[1])", "d3c21d0c2b9ca22f82737626a27bcaf5d288f99f"),
    ("return redis.call('INCR', KEYS[1])", "61636018f4e6b5817b89791bbed242f93fa089e3"),
    ("return {1, 'two', {3}}", "7bd1e29a2f8429d88791dcbda93f0d4ce2135664"),
    ("return redis.error_reply('boom')", "d2c7d536b1af41ad259332b132df5bf0271722cc"),
    ("return redis.status_reply('fine')", "e6f4add6322256592e4346ab24a69ffadf3c90e0"),
    ("return redis.call('SET', KEYS[1], ARGV[1])", "d8f2fad9f8e86a53d2a6ebd960b33c4972cacc37"),
    ("return 3.99", "96a73eb2d11e2649f9191db08cadffa71d25fecf"),
    ("return nil", "79cefb99366d8809d2e903c5f36f50c2b731913f"),
    ("return redis.pcall('LPUSH', KEYS[1], 'x')", "e6fc0302decb93fee4838244feddc0802e0a3cac"),
    ("return redis.pcall('INCR', KEYS[1])", "a89d6d897bdbddf3eb8ebdd32aefe405cbf980d6"),
    ("local r = redis.pcall('HGET', KEYS[1], 'f1') if type(r) == 'table' then return r.err end return r", "540907623287f0eca81e5f10e948cb2056c7769b"),
    ("return {1, 2, 3.7, 'x', nil, 4}", "256a99a4376c01c32874da60e3ae7cbdd3319289"),
    ("return {err = 'custom error'}", "8fb81109f8d1b6b9885c8394e9df0076fa03ff4b"),
    ("return {ok = 'custom status'}", "2dc25514150db322213502af3f4675a7e354d061"),
    ("return true", "b36f6a251a4827a53c13e202f3feb7d9f4350dee"),
    ("return false", "b3c9422cbf2832b3c706cbb070d6c379b0f0fa1c"),
    ("return redis.call('nosuchcommand')", "60e6252e19199d82f2bea24345497fd1b735ed32"),
    ("return redis.call('SET', KEYS[1])", "b2ff587b7a308d63c678b5092e6d854d12908911"),
    ("return +", "1fd5091818ea327c4e55ed84125fdc6179ae44cf"),
    ("return redis.call('HGETALL', KEYS[1])", "2e9dc1eee79fed50b6f3a9088fab7b81cb333123"),
    ("return type(redis.call('GET', KEYS[1]))", "4311c5f3472f8abaaab52d2c7df83e49a3b91846"),
    ("return redis.call('TYPE', KEYS[1]).ok", "99af230b57f3f818c70eb9ca597f1b73c9308da3"),
    ("return redis.call('RPUSH', KEYS[1], ARGV[1], ARGV[1])", "c7633d3aaac0039f97c08606e7e597521d3efe3e"),
    ("return redis.call('ZADD', KEYS[1], 1, ARGV[1])", "9ea6da5074bf7958b2a3ed8608a60a5766da6bd0"),
    ("return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')", "17058ba9ef2eefbbf2c21e4989f8f22de79790b5"),
    ("return tonumber(ARGV[1])", "ccf9eb5e959d5d1685245616c2d23bd2389dfd7b"),
    ("return #KEYS + #ARGV", "6e550ab7cf45e2ef5d2af047fbc92dd7594f4005"),
    ("return redis.call('INCRBYFLOAT', KEYS[1], '1.5')", "1767cd1d3cf12992d4d0203643adf0f1012adcd6"),
    ("return redis.sha1hex(ARGV[1])", "a0e05a99d84be1af701165680cf050a4c8a31d64"),
    ("return undefined_global", "66079c13a0dbe54bee8cb53ac72311504271983b"),
    ("x = 1", "34bce5f775de97f557a34088509c8bfe1ea17e52"),
    ("return redis.call('EXISTS', KEYS[1], KEYS[1])", "78b6675e2888fc93801c258727404959cf462204"),
    ("error('raw lua error')", "0ddaffe129407b5ca1c4a5c011c54099e11851f7"),
    ("error({err='table error'})", "adfa822391a0d82d7eab23f6aae5ad6a45f8d32f"),
    ("return redis.call('LRANGE', KEYS[1], 0, -1)", "08a8f392fa2afa779bfae927f77d2bb399eb43a3"),
    ("return 2^53", "ebcff8555131ef439e03c4ab008e4836e6f99b60"),
    ("return -0.5", "2674624437dc249c41bbdf85bcb1f33f6d17f70c"),
    ("return redis.call('GET')", "72273adc3c5955bf8543f1ad6ce893355b89617d"),
    ("return redis.call('SCARD', KEYS[1])", "6df1a8e2e440aba62e80952545d1647b0d569b1b"),
    ("return redis.call('XADD', KEYS[1], '7-7', 'f', ARGV[1])", "cea66d366a7797f77bf6c55388b217b3c242949e"),
    ("return redis.call('LMOVE', KEYS[1], KEYS[1], 'LEFT', 'RIGHT')", "76edd70afe04e44066c7b9f41e15bf206599e89e"),
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

/// Whether a blocking command outside MULTI has a timeout other than a positive number
/// (0 waits forever on the real server). Generated sequences never do; a shrunk one might.
pub fn may_block_forever(steps: &[Step]) -> bool {
    let mut in_multi = false;
    for step in steps {
        let Some(Arg::Text(name)) = step.first() else {
            continue;
        };
        match name.to_ascii_uppercase().as_str() {
            "MULTI" => in_multi = true,
            "EXEC" | "DISCARD" => in_multi = false,
            "BLPOP" | "BRPOP" | "BLMOVE" | "BRPOPLPUSH" | "BZPOPMIN" | "BZPOPMAX" if !in_multi => {
                let timeout = match step.last() {
                    Some(Arg::Text(t)) => t.parse::<f64>().unwrap_or(0.0),
                    _ => 0.0,
                };
                if timeout <= 0.0 || timeout > 1.0 {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
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
        } else if c.chance(10) {
            steps.extend(top_level(&mut c));
        } else {
            steps.push(command(&mut c));
        }
    }
    steps
}

/// The groups that only come at a sequence's top level (see the module docs).
fn top_level(c: &mut Choices) -> Vec<Step> {
    let k = key(c);
    match c.below(8) {
        0 => {
            // Random members: compared against the SMEMBERS just before.
            let mut group = vec![cmd("SMEMBERS", vec![k.clone()])];
            let mut args = vec![k.clone()];
            if c.chance(70) {
                args.push(c.pick(&["0", "1", "2", "3", "10", "-1", "-3", "-10", "x"]));
            }
            if c.chance(50) {
                group.push(cmd("SRANDMEMBER", args));
            } else {
                if args.len() > 1 && args[1].starts_with('-') && c.chance(70) {
                    args[1] = args[1][1..].to_string();
                }
                group.push(cmd("SPOP", args));
                group.push(cmd("DEL", vec![k]));
            }
            group
        }
        1 => {
            // An automatic stream ID, compared by shape; the stream goes after.
            let mut xadd = vec![k.clone()];
            if c.chance(30) {
                xadd.extend(["MAXLEN".to_string(), c.pick(&["1", "2", "~", "="])]);
                if xadd[2] == "~" || xadd[2] == "=" {
                    xadd.push("3".into());
                }
            }
            xadd.extend(["*".to_string(), c.pick(FIELDS), c.pick(VALUES)]);
            vec![
                cmd("XADD", xadd),
                cmd("XLEN", vec![k.clone()]),
                cmd("DEL", vec![k]),
            ]
        }
        2 | 3 => vec![scan(c)],
        4 => vec![pubsub(c)],
        5 => {
            // Multi-byte text under its own key.
            let u = "ü".to_string();
            let mut group = vec![cmd("SET", vec![u.clone(), c.pick(UTF8_VALUES)])];
            for _ in 0..1 + c.below(3) {
                group.push(match c.below(5) {
                    0 => cmd("GETRANGE", vec![u.clone(), c.pick(RANKS), c.pick(RANKS)]),
                    1 => cmd("STRLEN", vec![u.clone()]),
                    2 => cmd("APPEND", vec![u.clone(), c.pick(UTF8_VALUES)]),
                    3 => cmd("GET", vec![u.clone()]),
                    _ => cmd(
                        "HSET",
                        vec!["ü:h".into(), c.pick(UTF8_VALUES), c.pick(UTF8_VALUES)],
                    ),
                });
            }
            group
        }
        _ => {
            // Blocking commands outside MULTI, waiting at most 10 ms when nothing is there.
            let t = "0.01".to_string();
            vec![match c.below(4) {
                0 => cmd(c.pick(&["BLPOP", "BRPOP"]).as_str(), vec![k, t]),
                1 => cmd(
                    "BLMOVE",
                    vec![
                        k,
                        key(c),
                        c.pick(&["LEFT", "RIGHT"]),
                        c.pick(&["LEFT", "RIGHT"]),
                        t,
                    ],
                ),
                2 => cmd("BRPOPLPUSH", vec![k, key(c), t]),
                _ => cmd(c.pick(&["BZPOPMIN", "BZPOPMAX"]).as_str(), vec![k, t]),
            }]
        }
    }
}

/// SCAN and its kin from cursor 0 (each side then iterates to the end), or with a cursor
/// Redis refuses.
fn scan(c: &mut Choices) -> Step {
    let cursor = if c.chance(90) {
        "0".to_string()
    } else {
        c.pick(&["x", " 0", "1.5", "99999999999999999999"])
    };
    let (name, mut args) = match c.below(2) {
        0 => ("SCAN".to_string(), vec![cursor]),
        _ => (c.pick(&["HSCAN", "SSCAN", "ZSCAN"]), vec![key(c), cursor]),
    };
    for _ in 0..c.below(3) {
        match c.below(5) {
            0 | 1 => args.extend([
                "MATCH".into(),
                c.pick(&["*", "a*", "?", "[a-c]", "m*", "f1"]),
            ]),
            2 => args.extend(["COUNT".into(), c.pick(&["1", "2", "10", "0", "x"])]),
            3 => args.extend([
                "TYPE".into(),
                c.pick(&[
                    "string", "list", "hash", "set", "zset", "stream", "STRING", "nosuch",
                ]),
            ]),
            _ => args.push(c.pick(&["MATCH", "BAD"])),
        }
    }
    cmd(&name, args)
}

/// Pub/Sub with nobody subscribed.
fn pubsub(c: &mut Choices) -> Step {
    match c.below(5) {
        0 | 1 => cmd("PUBLISH", vec![c.pick(CHANNELS), c.pick(VALUES)]),
        2 => {
            let mut args = vec!["CHANNELS".to_string()];
            if c.chance(50) {
                args.push(c.pick(&["*", "ch*", "x"]));
            }
            cmd("PUBSUB", args)
        }
        3 => {
            let mut args = vec!["NUMSUB".to_string()];
            args.extend((0..c.below(3)).map(|_| c.pick(CHANNELS)));
            cmd("PUBSUB", args)
        }
        _ => cmd("PUBSUB", vec![c.pick(&["NUMPAT", "numpat", "BAD"])]),
    }
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
    let timeout = c.pick(&["0", "1", "0.5", "-1", "x"]);
    match c.below(4) {
        0 | 1 => {
            let name = if c.chance(50) { "BLPOP" } else { "BRPOP" };
            let mut args = c.some(KEYS, 2);
            args.push(timeout);
            cmd(name, args)
        }
        2 => {
            if c.chance(50) {
                cmd("BRPOPLPUSH", vec![key(c), key(c), timeout])
            } else {
                cmd(
                    "BLMOVE",
                    vec![
                        key(c),
                        key(c),
                        c.pick(DIRECTIONS),
                        c.pick(DIRECTIONS),
                        timeout,
                    ],
                )
            }
        }
        _ => {
            let mut args = c.some(KEYS, 2);
            args.push(timeout);
            cmd(c.pick(&["BZPOPMIN", "BZPOPMAX"]).as_str(), args)
        }
    }
}

/// One command of any family.
pub fn command(c: &mut Choices) -> Step {
    match c.below(16) {
        0 | 1 => string(c),
        9 | 10 => added(c),
        2 => expiry(c),
        3 => hash(c),
        4 => list(c),
        5 => set(c),
        6 => zset(c),
        7 => malformed(c),
        11 | 12 => second_list(c),
        13 => sorted_ranges(c),
        14 => stream(c),
        _ => misc(c),
    }
}

/// The commands of the model's second list (`kv::ext`), but the ranges.
fn second_list(c: &mut Choices) -> Step {
    let k = key(c);
    match c.below(17) {
        0 | 1 => cmd("INCRBYFLOAT", vec![k, c.pick(FLOATS)]),
        2 => cmd("HINCRBYFLOAT", vec![k, c.pick(FIELDS), c.pick(FLOATS)]),
        3 => cmd(
            "LMOVE",
            vec![k, key(c), c.pick(DIRECTIONS), c.pick(DIRECTIONS)],
        ),
        4 => cmd("RPOPLPUSH", vec![k, key(c)]),
        5 => cmd("GETRANGE", vec![k, c.pick(RANKS), c.pick(RANKS)]),
        6 => cmd(
            "SETRANGE",
            vec![
                k,
                c.pick(&["0", "1", "3", "10", "-1", "x", "536870912"]),
                c.pick(VALUES),
            ],
        ),
        7 | 8 => {
            let mut args = vec![k];
            match c.below(6) {
                0 => {}
                1 => args.push("PERSIST".into()),
                2 => args.extend(["EX".into(), c.pick(SECONDS)]),
                3 => args.extend(["PX".into(), c.pick(MILLIS)]),
                4 => {
                    args.push("EXAT".into());
                    return getex_at(c, args, true);
                }
                _ => {
                    args.push(c.pick(&["PXAT", "PERSIST", "EX", "BAD"]));
                    if c.chance(50) {
                        return getex_at(c, args, false);
                    }
                }
            }
            if c.chance(10) {
                args.push(c.pick(&["PERSIST", "EX", "KEEPTTL"]));
            }
            cmd("GETEX", args)
        }
        9 | 10 => {
            let mut args = vec![k, key(c)];
            if c.chance(30) {
                args.push("REPLACE".into());
            }
            if c.chance(15) {
                args.push("DB".into());
                args.push(c.pick(&["0", "16", "x", "-1"]));
            }
            cmd("COPY", args)
        }
        11 | 12 => cmd(c.pick(&["RENAME", "RENAMENX"]).as_str(), vec![k, key(c)]),
        13 => {
            let mut args = vec![k];
            args.extend(c.some(MEMBERS, 3));
            cmd("ZMSCORE", args)
        }
        14 => cmd("ZREVRANK", vec![k, c.pick(MEMBERS)]),
        15 => {
            let mut args = vec![k];
            if c.chance(60) {
                args.push(c.pick(&["0", "1", "2", "5", "-1", "x"]));
            }
            cmd(c.pick(&["ZPOPMIN", "ZPOPMAX"]).as_str(), args)
        }
        _ => cmd("SUBSTR", vec![k, c.pick(RANKS), c.pick(RANKS)]),
    }
}

fn getex_at(c: &mut Choices, mut args: Vec<String>, seconds: bool) -> Step {
    let mut step = text(vec!["GETEX".to_string()]);
    step.extend(args.drain(..).map(Arg::Text));
    step.push(if seconds {
        unix_secs(c)
    } else {
        unix_millis(c)
    });
    step
}

/// ZRANGE in all its forms, and the commands that take the same ranges.
fn sorted_ranges(c: &mut Choices) -> Step {
    let k = key(c);
    let by = c.below(3);
    let (lo, hi) = match by {
        0 => (c.pick(RANKS), c.pick(RANKS)),
        1 => (c.pick(BOUNDS), c.pick(BOUNDS)),
        _ => (c.pick(LEX), c.pick(LEX)),
    };
    let options = |c: &mut Choices, args: &mut Vec<String>| {
        if c.chance(30) {
            args.push("WITHSCORES".into());
        }
        if c.chance(30) {
            args.push("LIMIT".into());
            args.push(c.pick(&["0", "1", "2", "-1", "x"]));
            args.push(c.pick(&["1", "2", "-1", "0", "y"]));
        }
    };
    match c.below(8) {
        0..=2 => {
            let mut args = vec![k, lo, hi];
            match by {
                0 => {}
                1 => args.push("BYSCORE".into()),
                _ => args.push("BYLEX".into()),
            }
            if c.chance(40) {
                args.push("REV".into());
            }
            if c.chance(5) {
                args.push(c.pick(&["REV", "BYSCORE", "BAD"]));
            }
            options(c, &mut args);
            cmd("ZRANGE", args)
        }
        3 => {
            let mut args = vec![k, lo, hi];
            options(c, &mut args);
            let name = match by {
                0 => "ZREVRANGE",
                1 => "ZREVRANGEBYSCORE",
                _ => c.pick(&["ZRANGEBYLEX", "ZREVRANGEBYLEX"]).leak(),
            };
            cmd(name, args)
        }
        4 | 5 => cmd(
            match by {
                0 => "ZREMRANGEBYRANK",
                1 => "ZREMRANGEBYSCORE",
                _ => "ZREMRANGEBYLEX",
            },
            vec![k, lo, hi],
        ),
        _ => cmd(
            if by == 2 { "ZLEXCOUNT" } else { "ZCOUNT" },
            vec![k, lo, hi],
        ),
    }
}

/// Streams, with explicit IDs (automatic ones come at the top level).
fn stream(c: &mut Choices) -> Step {
    let k = key(c);
    match c.below(14) {
        0..=2 => {
            let mut args = vec![k];
            if c.chance(10) {
                args.push("NOMKSTREAM".into());
            }
            if c.chance(15) {
                args.push(c.pick(&["MAXLEN", "MINID"]));
                if c.chance(40) {
                    args.push(c.pick(&["~", "="]));
                }
                args.push(c.pick(&["0", "1", "2", "3-0", "x"]));
            }
            args.push(c.pick(STREAM_IDS));
            for _ in 0..1 + c.below(2) {
                args.push(c.pick(FIELDS));
                args.push(c.pick(VALUES));
            }
            if c.chance(5) {
                args.pop();
            }
            cmd("XADD", args)
        }
        3 => {
            let mut args = vec![k, c.pick(STREAM_BOUNDS), c.pick(STREAM_BOUNDS)];
            if c.chance(30) {
                args.extend(["COUNT".into(), c.pick(&["1", "2", "0", "-1", "x"])]);
            }
            cmd(c.pick(&["XRANGE", "XREVRANGE"]).as_str(), args)
        }
        4 => cmd("XLEN", vec![k]),
        5 => {
            let mut args = vec![k];
            args.extend(c.some(STREAM_IDS, 2));
            cmd("XDEL", args)
        }
        6 => {
            let mut args = vec![k, c.pick(&["MAXLEN", "MINID", "BAD"])];
            if c.chance(30) {
                args.push(c.pick(&["~", "="]));
            }
            args.push(c.pick(&["0", "1", "2", "3-0", "x"]));
            cmd("XTRIM", args)
        }
        7 => {
            let g = c.pick(GROUPS);
            match c.below(5) {
                0 | 1 => {
                    let mut args = vec![
                        "CREATE".into(),
                        k,
                        g,
                        c.pick(&["$", "0", "1-1", "x", "-", "+"]),
                    ];
                    if c.chance(50) {
                        args.push("MKSTREAM".into());
                    }
                    if c.chance(15) {
                        args.extend(group_option(c));
                    }
                    cmd("XGROUP", args)
                }
                2 => cmd("XGROUP", vec!["DESTROY".into(), k, g]),
                3 => cmd(
                    "XGROUP",
                    vec![
                        c.pick(&["CREATECONSUMER", "DELCONSUMER"]),
                        k,
                        g,
                        c.pick(CONSUMERS),
                    ],
                ),
                _ => {
                    let mut args = vec![
                        "SETID".into(),
                        k,
                        g,
                        c.pick(&["$", "0", "2-0", "x", "-", "+"]),
                    ];
                    if c.chance(15) {
                        args.extend(group_option(c));
                    }
                    cmd("XGROUP", args)
                }
            }
        }
        8 | 9 => {
            let mut args = vec!["GROUP".into(), c.pick(GROUPS), c.pick(CONSUMERS)];
            if c.chance(40) {
                args.extend(["COUNT".into(), c.pick(&["1", "2", "x"])]);
            }
            if c.chance(15) {
                args.push("NOACK".into());
            }
            args.extend(["STREAMS".into(), k, c.pick(&[">", ">", "0", "1-1", "x"])]);
            cmd("XREADGROUP", args)
        }
        10 => {
            let mut args = vec![k, c.pick(GROUPS)];
            args.extend(c.some(STREAM_IDS, 2));
            cmd("XACK", args)
        }
        11 => {
            let mut args = vec![k, c.pick(GROUPS)];
            if c.chance(60) {
                args.extend([
                    c.pick(STREAM_BOUNDS),
                    c.pick(STREAM_BOUNDS),
                    c.pick(&["10", "1", "x"]),
                ]);
                if c.chance(40) {
                    args.push(c.pick(CONSUMERS));
                }
            }
            cmd("XPENDING", args)
        }
        12 => {
            let mut args = vec![
                k,
                c.pick(GROUPS),
                c.pick(CONSUMERS),
                c.pick(&["0", "3600000", "0", "3600000", "x", "-1"]),
            ];
            if c.chance(20) {
                args.push(c.pick(&["0-0", "0", "x", "(0-1", "-"]));
                args.extend([c.pick(&["COUNT", "JUSTID"])]);
                if args.last().is_some_and(|a| a == "COUNT") {
                    args.push(c.pick(&["1", "10", "0"]));
                }
                return cmd("XAUTOCLAIM", args);
            }
            args.extend(c.some(STREAM_IDS, 2));
            for _ in 0..c.below(3) {
                let option = c.pick(&[
                    "JUSTID",
                    "FORCE",
                    "RETRYCOUNT",
                    "IDLE",
                    "TIME",
                    "LASTID",
                    "BAD",
                ]);
                let value = match option.as_str() {
                    "RETRYCOUNT" => Some(c.pick(&["2", "0", "-1", "x"])),
                    "IDLE" => Some(c.pick(&["0", "1000", "-5", "x"])),
                    "TIME" => Some(c.pick(&["0", "-1", "99999999999999", "x"])),
                    "LASTID" => Some(c.pick(&["5-0", "0", "x"])),
                    _ => None,
                };
                args.push(option);
                // An option without its value at the end is an error of its own.
                if let Some(value) = value.filter(|_| !c.chance(10)) {
                    args.push(value);
                }
            }
            cmd("XCLAIM", args)
        }
        _ => {
            let mut args = vec![];
            if c.chance(40) {
                args.extend(["COUNT".into(), c.pick(&["1", "2", "x"])]);
            }
            args.extend(["STREAMS".into(), k, c.pick(&["0", "1-1", "$"])]);
            cmd("XREAD", args)
        }
    }
}

/// An option after XGROUP CREATE's or SETID's ID: ENTRIESREAD (good or bad), or one
/// XGROUP does not take.
fn group_option(c: &mut Choices) -> Vec<String> {
    match c.below(3) {
        0 => vec!["ENTRIESREAD".into(), c.pick(&["3", "-1", "-2", "x"])],
        1 => vec!["ENTRIESREAD".into()],
        _ => vec![c.pick(&["BAD", "MKSTREAM"])],
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
            let mut step = command(c);
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
    match c.below(10) {
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
        5 => {
            let (source, sha) = SCRIPTS[c.below(SCRIPTS.len())];
            match c.below(6) {
                0 | 1 => cmd("SCRIPT", vec!["LOAD".into(), source.into()]),
                2 => cmd(
                    "SCRIPT",
                    vec!["EXISTS".into(), sha.into(), c.pick(&["0000", sha])],
                ),
                3 => {
                    let mut args = vec!["FLUSH".to_string()];
                    if c.chance(40) {
                        args.push(c.pick(&["ASYNC", "sync", "BAD"]));
                    }
                    cmd("SCRIPT", args)
                }
                _ => {
                    let mut args = vec![
                        if c.chance(10) {
                            "ffffffffffffffffffffffffffffffffffffffff".into()
                        } else {
                            sha.to_string()
                        },
                        c.below(2).to_string(),
                    ];
                    if args[1] == "1" {
                        args.push(key(c));
                    }
                    args.push(c.pick(VALUES));
                    cmd("EVALSHA", args)
                }
            }
        }
        _ => {
            let mut args = vec![SCRIPTS[c.below(SCRIPTS.len())].0.to_string()];
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
