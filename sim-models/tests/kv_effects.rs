//! Properties of the kv engine under random command sequences:
//! - applying a primary's effects, in order, to an empty copy (what the AOF and a replica
//!   do) reproduces the primary's live keys, values and expiry times after every step;
//! - the running memory count equals a recomputation;
//! - `parse(cmd.to_args()) == cmd` (the argument vector `MONITOR` shows reads back).

use proptest::prelude::*;
use sim_models::kv::{
    parse, ClientId, Command, Engine, EngineConfig, EvictionPolicy, Reply, Script, Session, Step,
};
use sim_runtime::time::Instant;

const TEMPLATES: &[&str] = &[
    "SET {k} {v}",
    "SET {k} {v} NX",
    "SET {k} {v} XX GET",
    "SET {k} {v} PX {n}",
    "SET {k} {v} EX 1",
    "SET {k} {v} KEEPTTL",
    "GETSET {k} {v}",
    "GET {k}",
    "MGET {k} {k2}",
    "DEL {k} {k2}",
    "INCR {k}",
    "DECRBY {k} {n}",
    "EXPIRE {k} 1",
    "PEXPIRE {k} {n}",
    "PEXPIRE {k} {n} GT",
    "PEXPIRE {k} {n} NX",
    "PERSIST {k}",
    "TTL {k}",
    "HSET {k} f{v} {v}",
    "HDEL {k} f{v}",
    "HINCRBY {k} f{v} {n}",
    "LPUSH {k} {v} {v}",
    "RPUSH {k} {v}",
    "LPOP {k}",
    "RPOP {k} 2",
    "LREM {k} 0 {v}",
    "SADD {k} {v}",
    "SREM {k} {v}",
    "ZADD {k} {n} {v}",
    "ZADD {k} GT CH {n} {v}",
    "ZREM {k} {v}",
    "MULTI",
    "EXEC",
    "DISCARD",
    "WATCH {k}",
    "EVAL",
    "BLPOP",
    "FLUSHALL",
];

#[derive(Clone, Debug)]
struct Op {
    template: &'static str,
    k: &'static str,
    k2: &'static str,
    v: &'static str,
    n: u32,
    advance_ms: u64,
}

fn op() -> impl Strategy<Value = Op> {
    let keys = prop::sample::select(vec!["a", "b", "c"]);
    (
        prop::sample::select(TEMPLATES.to_vec()),
        keys.clone(),
        keys,
        prop::sample::select(vec!["1", "2", "x", "-3", "10"]),
        1u32..50,
        0u64..40,
    )
        .prop_map(|(template, k, k2, v, n, advance_ms)| Op {
            template,
            k,
            k2,
            v,
            n,
            advance_ms,
        })
}

/// A script that moves one element between lists only if a counter is below a limit:
/// several effects from one atomic step.
fn script() -> Command {
    let s = Script::new("move_if_below", |ctx, keys, _args| {
        let n = match ctx.call(Command::Incr {
            key: keys[0].clone(),
        }) {
            Reply::Int(n) => n,
            other => return other,
        };
        if n > 3 {
            return Reply::Int(0);
        }
        match ctx.call(Command::RPop {
            key: keys[1].clone(),
            count: None,
        }) {
            Reply::Bulk(v) => ctx.call(Command::LPush {
                key: keys[0].clone() + "l",
                values: vec![v],
            }),
            other => other,
        }
    });
    Command::Eval {
        script: s,
        keys: vec!["cnt".into(), "a".into()],
        args: vec![],
    }
}

fn check(config: EngineConfig, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut primary = Engine::new(config);
    let mut follower = Engine::new(EngineConfig::default());
    let mut main = Session::new(ClientId(1));
    let mut blocker = Session::new(ClientId(2));
    let mut now_ms = 0;
    for op in ops {
        now_ms += op.advance_ms;
        let now = Instant::from_nanos(now_ms * 1_000_000);
        let (cmd, session) = match op.template {
            "EVAL" => (script(), &mut main),
            "BLPOP" if primary.is_blocked(ClientId(2)) => continue,
            "BLPOP" => (
                Command::BLPop {
                    keys: vec![op.k.into()],
                    timeout: Default::default(),
                },
                &mut blocker,
            ),
            t => {
                let line = t
                    .replace("{k2}", op.k2)
                    .replace("{k}", op.k)
                    .replace("{v}", op.v)
                    .replace("{n}", &op.n.to_string());
                let argv: Vec<&str> = line.split_whitespace().collect();
                let cmd = parse(&argv).expect("templates are valid commands");
                prop_assert_eq!(parse(&cmd.to_args()), Ok(cmd.clone()));
                (cmd, &mut main)
            }
        };
        let _step: Step = session.handle(&mut primary, cmd, now);
        let _ = primary.serve_blocked();
        for effect in primary.take_effects() {
            follower.apply(&effect);
        }
        prop_assert_eq!(
            primary.dataset().used_memory(),
            primary.dataset().used_memory_recomputed()
        );
        prop_assert_eq!(
            primary.dataset().live_entries(now),
            follower.dataset().live_entries(now),
            "after step at {}ms",
            now_ms
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn effects_reproduce_the_dataset(ops in prop::collection::vec(op(), 1..120)) {
        check(EngineConfig::default(), ops)?;
    }

    #[test]
    fn effects_reproduce_the_dataset_under_eviction(ops in prop::collection::vec(op(), 1..120)) {
        let config = EngineConfig {
            maxmemory: Some(400),
            eviction_policy: EvictionPolicy::AllKeysLru,
            ..EngineConfig::default()
        };
        check(config, ops)?;
    }
}
