//! The kv model's command semantics, table-driven, against the pure engine (no network):
//! each row is `client ms COMMAND => REPLY`, the reply as redis-cli prints it for Redis 7
//! (see `kv_support::table`). Errors are compared as exact strings.

mod kv_support;

use kv_support::table::{engine, run_table};
use sim_models::kv::{parse, ClientId, Engine, EngineConfig, EvictionPolicy, Session, Step};
use sim_runtime::time::Instant;

const WRONGTYPE: &str = "(error) WRONGTYPE Operation against a key holding the wrong kind of value";

#[test]
fn strings() {
    run_table(
        &mut engine(),
        r#"
        1 0 GET k => (nil)
        1 0 SET k v => OK
        1 0 GET k => "v"
        1 0 SET k w NX => (nil)
        1 0 GET k => "v"
        1 0 SET n 1 XX => (nil)
        1 0 SET k w XX => OK
        1 0 SET k x GET => "w"
        1 0 SET fresh x NX GET => (nil)
        1 0 SET fresh y NX GET => "x"
        1 0 GET fresh => "x"
        1 0 GETSET k y => "x"
        1 0 GETSET nokey y => (nil)
        1 0 MGET k nokey missing => ["y", "y", (nil)]
        1 0 SET k v NX XX => (error) ERR syntax error
        1 0 SET k v EX 0 => (error) ERR invalid expire time in 'set' command
        1 0 SET k v PX -5 => (error) ERR invalid expire time in 'set' command
        1 0 SET k v EX ten => (error) ERR value is not an integer or out of range
        1 0 SET k v EX 1 PX 5 => (error) ERR syntax error
        1 0 GET => (error) ERR wrong number of arguments for 'get' command
        1 0 FOO a b => (error) ERR unknown command 'FOO', with args beginning with: 'a' 'b' 
        1 0 EXISTS k k nokey missing => (integer) 3
        1 0 DEL k missing nokey => (integer) 2
        1 0 DEL k => (integer) 0
        1 0 DBSIZE => (integer) 1
    "#,
    );
}

#[test]
fn counters() {
    run_table(
        &mut engine(),
        r#"
        1 0 INCR c => (integer) 1
        1 0 INCRBY c 10 => (integer) 11
        1 0 DECR c => (integer) 10
        1 0 DECRBY c 15 => (integer) -5
        1 0 INCRBY c x => (error) ERR value is not an integer or out of range
        1 0 SET s abc => OK
        1 0 INCR s => (error) ERR value is not an integer or out of range
        1 0 SET s 007 => OK
        1 0 INCR s => (error) ERR value is not an integer or out of range
        1 0 SET s +1 => OK
        1 0 INCR s => (error) ERR value is not an integer or out of range
        1 0 SET m 9223372036854775807 => OK
        1 0 INCR m => (error) ERR increment or decrement would overflow
        1 0 DECRBY m -9223372036854775808 => (error) ERR decrement would overflow
        1 0 SET m -9223372036854775808 => OK
        1 0 DECR m => (error) ERR increment or decrement would overflow
        1 0 INCRBY m 9223372036854775807 => (integer) -1
        1 0 LPUSH l a => (integer) 1
        1 0 INCR l => (error) WRONGTYPE Operation against a key holding the wrong kind of value
        1 0 GET l => (error) WRONGTYPE Operation against a key holding the wrong kind of value
        1 0 MGET l c => [(nil), "-5"]
    "#,
    );
}

#[test]
fn expiry_on_virtual_time() {
    run_table(
        &mut engine(),
        r#"
        1 0 TTL k => (integer) -2
        1 0 SET k v => OK
        1 0 TTL k => (integer) -1
        1 0 PTTL k => (integer) -1
        1 0 EXPIRE k 10 => (integer) 1
        1 0 TTL k => (integer) 10
        1 2400 TTL k => (integer) 8
        1 2600 TTL k => (integer) 7
        1 2600 PTTL k => (integer) 7400
        1 2600 EXPIRE k 5 NX => (integer) 0
        1 2600 EXPIRE k 5 GT => (integer) 0
        1 2600 EXPIRE k 5 LT => (integer) 1
        1 2600 PTTL k => (integer) 5000
        1 2600 EXPIRE k 5 NX XX => (error) ERR NX and XX, GT or LT options at the same time are not compatible
        1 2600 EXPIRE k 5 GT LT => (error) ERR GT and LT options at the same time are not compatible
        1 7600 GET k => "v"
        1 7601 GET k => (nil)
        1 7601 TTL k => (integer) -2
        1 7601 EXPIRE k 10 => (integer) 0
        1 8000 SET k v EX 1 => OK
        1 8500 PERSIST k => (integer) 1
        1 8500 PERSIST k => (integer) 0
        1 9500 GET k => "v"
        1 9500 PEXPIRE k 100 => (integer) 1
        1 9500 SET k w KEEPTTL => OK
        1 9550 PTTL k => (integer) 50
        1 9550 SET k w => OK
        1 9550 TTL k => (integer) -1
        1 9550 INCR n => (integer) 1
        1 9550 PEXPIRE n 50 => (integer) 1
        1 9560 INCR n => (integer) 2
        1 9570 PTTL n => (integer) 30
        1 9570 EXPIRE n 0 => (integer) 1
        1 9570 EXISTS n => (integer) 0
        1 9570 SET p 1 PXAT 9600 => OK
        1 9570 PTTL p => (integer) 30
        1 9601 EXISTS p => (integer) 0
        1 9601 DBSIZE => (integer) 1
    "#,
    );
}

#[test]
fn hashes() {
    run_table(
        &mut engine(),
        r#"
        1 0 HSET h a 1 b 2 => (integer) 2
        1 0 HSET h a 3 c 4 => (integer) 1
        1 0 HGET h a => "3"
        1 0 HGET h z => (nil)
        1 0 HGET nokey a => (nil)
        1 0 HGETALL h => ["a", "3", "b", "2", "c", "4"]
        1 0 HLEN h => (integer) 3
        1 0 HINCRBY h a 5 => (integer) 8
        1 0 HINCRBY h new -2 => (integer) -2
        1 0 HSET h s x => (integer) 1
        1 0 HINCRBY h s 1 => (error) ERR hash value is not an integer
        1 0 HINCRBY h a x => (error) ERR value is not an integer or out of range
        1 0 HSET h a => (error) ERR wrong number of arguments for 'hset' command
        1 0 HDEL h a b zz => (integer) 2
        1 0 HDEL h c new s => (integer) 3
        1 0 EXISTS h => (integer) 0
        1 0 HGETALL h => []
        1 0 SET str x => OK
        1 0 HSET str a 1 => (error) WRONGTYPE Operation against a key holding the wrong kind of value
        1 0 HGET str a => (error) WRONGTYPE Operation against a key holding the wrong kind of value
    "#,
    );
}

#[test]
fn lists() {
    run_table(
        &mut engine(),
        r#"
        1 0 LPUSH l a b c => (integer) 3
        1 0 RPUSH l d => (integer) 4
        1 0 LRANGE l 0 -1 => ["c", "b", "a", "d"]
        1 0 LRANGE l -2 100 => ["a", "d"]
        1 0 LRANGE l 3 1 => []
        1 0 LLEN l => (integer) 4
        1 0 LPOP l => "c"
        1 0 RPOP l => "d"
        1 0 RPUSH l a x a => (integer) 5
        1 0 LREM l 1 a => (integer) 1
        1 0 LRANGE l 0 -1 => ["b", "a", "x", "a"]
        1 0 LREM l -1 a => (integer) 1
        1 0 LRANGE l 0 -1 => ["b", "a", "x"]
        1 0 LREM l 0 zz => (integer) 0
        1 0 LPOP l 2 => ["b", "a"]
        1 0 LPOP l 0 => []
        1 0 LPOP l -1 => (error) ERR value is out of range, must be positive
        1 0 RPOP l 5 => ["x"]
        1 0 EXISTS l => (integer) 0
        1 0 LPOP l => (nil)
        1 0 LPOP l 3 => (nil)
        1 0 LLEN l => (integer) 0
        1 0 SET s v => OK
        1 0 LPUSH s a => (error) WRONGTYPE Operation against a key holding the wrong kind of value
        1 0 BLPOP s 1 => (error) WRONGTYPE Operation against a key holding the wrong kind of value
        1 0 BLPOP l 1 => (blocked)
        1 0 BLPOP l -1 => (error) ERR timeout is negative
        2 0 BLPOP l x => (error) ERR timeout is not a float or out of range
    "#,
    );
}

#[test]
fn blocked_pops_are_served_fifo_after_the_pushing_command() {
    run_table(
        &mut engine(),
        r#"
        1 0 BLPOP q 0 => (blocked)
        2 1 BRPOP other q 0 => (blocked)
        3 2 BLPOP q 0 => (blocked)
        4 3 RPUSH q a b => (integer) 2 | served c1 ["q", "a"] | served c2 ["q", "b"]
        4 4 LLEN q => (integer) 0
        4 5 RPUSH other z => (integer) 1
        4 6 RPUSH q c => (integer) 1 | served c3 ["q", "c"]
        5 7 RPUSH q now => (integer) 1
        6 8 BLPOP empty q 0 => ["q", "now"]
    "#,
    );
}

#[test]
fn sets_and_sorted_sets() {
    run_table(
        &mut engine(),
        r#"
        1 0 SADD s a b a => (integer) 2
        1 0 SADD s a => (integer) 0
        1 0 SISMEMBER s a => (integer) 1
        1 0 SISMEMBER s z => (integer) 0
        1 0 SCARD s => (integer) 2
        1 0 SMEMBERS s => ["a", "b"]
        1 0 SREM s a z => (integer) 1
        1 0 SREM s b => (integer) 1
        1 0 EXISTS s => (integer) 0
        1 0 ZADD z 3 c 1 a 2 b => (integer) 3
        1 0 ZADD z 1 b => (integer) 0
        1 0 ZADD z CH 5 b => (integer) 1
        1 0 ZADD z NX 0 b 4 d => (integer) 1
        1 0 ZADD z XX 0 e 2 a => (integer) 0
        1 0 ZADD z GT CH 1 a 9 c => (integer) 1
        1 0 ZADD z LT CH 1 a 9 d => (integer) 1
        1 0 ZSCORE z a => "1"
        1 0 ZRANGEBYSCORE z -inf +inf WITHSCORES => ["a", "1", "d", "4", "b", "5", "c", "9"]
        1 0 ZRANGEBYSCORE z (1 5 => ["d", "b"]
        1 0 ZRANGEBYSCORE z 1 (5 => ["a", "d"]
        1 0 ZRANGEBYSCORE z -inf +inf LIMIT 1 2 => ["d", "b"]
        1 0 ZRANGEBYSCORE z 5 1 => []
        1 0 ZRANGEBYSCORE z x 1 => (error) ERR min or max is not a float
        1 0 ZADD z nan a => (error) ERR value is not a valid float
        1 0 ZADD z NX XX 1 a => (error) ERR XX and NX options at the same time are not compatible
        1 0 ZADD z GT LT 1 a => (error) ERR GT, LT, and/or NX options at the same time are not compatible
        1 0 ZADD z 1.5 x => (integer) 1
        1 0 ZSCORE z x => "1.5"
        1 0 ZREM z a x zz => (integer) 2
        1 0 ZCARD z => (integer) 3
        1 0 SADD z a => (error) WRONGTYPE Operation against a key holding the wrong kind of value
        1 0 ZADD s 1 a => (integer) 1
    "#,
    );
}

#[test]
fn transactions_and_watch() {
    run_table(
        &mut engine(),
        r#"
        1 0 EXEC => (error) ERR EXEC without MULTI
        1 0 DISCARD => (error) ERR DISCARD without MULTI
        1 0 MULTI => OK
        1 0 MULTI => (error) ERR MULTI calls can not be nested
        1 0 WATCH k => (error) ERR WATCH inside MULTI is not allowed
        1 0 SET k 1 => QUEUED
        1 0 INCR k => QUEUED
        1 0 LPUSH k x => QUEUED
        1 0 EXEC => [OK, (integer) 2, (error) WRONGTYPE Operation against a key holding the wrong kind of value]
        1 0 MULTI => OK
        1 0 INCR k => QUEUED
        1 0 DISCARD => OK
        1 0 GET k => "2"
        // Another client's write to a watched key aborts EXEC with nil.
        1 0 WATCH k => OK
        2 0 INCR k => (integer) 3
        1 0 MULTI => OK
        1 0 SET k 100 => QUEUED
        1 0 EXEC => (nil)
        1 0 GET k => "3"
        // EXEC cleared the watch: the next transaction runs.
        2 0 INCR k => (integer) 4
        1 0 MULTI => OK
        1 0 SET k 100 => QUEUED
        1 0 EXEC => [OK]
        // A write that changes nothing does not count as a change.
        1 0 SADD s a => (integer) 1
        1 0 WATCH s => OK
        2 0 SADD s a => (integer) 0
        2 0 SREM s zz => (integer) 0
        1 0 MULTI => OK
        1 0 SADD s b => QUEUED
        1 0 EXEC => [(integer) 1]
        // UNWATCH forgets the watch.
        1 0 WATCH k => OK
        1 0 UNWATCH => OK
        2 0 DEL k => (integer) 1
        1 0 MULTI => OK
        1 0 GET k => QUEUED
        1 0 EXEC => [(nil)]
        // An expired watched key aborts EXEC (Redis 7).
        1 0 SET t v PX 10 => OK
        1 0 WATCH t => OK
        1 20 MULTI => OK
        1 20 GET t => QUEUED
        1 20 EXEC => (nil)
        // The watching client's own writes after WATCH count as changes too.
        1 30 WATCH w => OK
        1 30 SET w 1 => OK
        1 30 MULTI => OK
        1 30 GET w => QUEUED
        1 30 EXEC => (nil)
        // BLPOP inside MULTI does not block.
        1 40 MULTI => OK
        1 40 BLPOP nolist 0 => QUEUED
        1 40 EXEC => [(nil)]
    "#,
    );
}

#[test]
fn maxmemory_noeviction_refuses_growing_writes() {
    let mut e = Engine::new(EngineConfig {
        maxmemory: Some(300),
        ..EngineConfig::default()
    });
    // Each "kN vvvv" entry is about 2 + 4 + 16 + 48 = 70 bytes: 5 fit under 300 bytes only
    // because Redis checks *before* a command, so the write that crosses the limit passes.
    run_table(
        &mut e,
        r#"
        1 0 SET k1 vvvv => OK
        1 0 SET k2 vvvv => OK
        1 0 SET k3 vvvv => OK
        1 0 SET k4 vvvv => OK
        1 0 SET k5 vvvv => OK
        1 0 SET k6 vvvv => (error) OOM command not allowed when used memory > 'maxmemory'.
        1 0 INCR k7 => (error) OOM command not allowed when used memory > 'maxmemory'.
        1 0 GET k1 => "vvvv"
        1 0 MULTI => OK
        1 0 GET k1 => (error) OOM command not allowed when used memory > 'maxmemory'.
        1 0 EXEC => (error) EXECABORT Transaction discarded because of previous errors.
        1 0 DEL k1 => (integer) 1
        1 0 SET k6 vvvv => OK
        1 0 EXPIRE k6 1 => (integer) 1
        1 0 LPOP nolist => (nil)
    "#,
    );
    assert_eq!(e.stats().rejected_oom, 2);
}

#[test]
fn maxmemory_allkeys_lru_evicts_instead() {
    let mut e = Engine::new(EngineConfig {
        maxmemory: Some(300),
        eviction_policy: EvictionPolicy::AllKeysLru,
        eviction_samples: 50,
        seed: 7,
        ..EngineConfig::default()
    });
    let transcript: String = (0..20)
        .map(|i| format!("1 0 SET k{i:02} vvvv => OK\n"))
        .collect();
    run_table(&mut e, &transcript);
    assert!(
        e.dataset().used_memory() <= 300 + 80,
        "{}",
        e.dataset().used_memory()
    );
    assert!(e.stats().evicted_keys >= 14);
    // With many samples the sampler finds the least recently used keys: the newest stay.
    let live = e.dataset().strings(Instant::START);
    assert!(
        live.contains_key("k19") && live.contains_key("k18"),
        "{live:?}"
    );
}

#[test]
fn scripts_run_atomically_and_propagate_their_writes() {
    use sim_models::kv::{Command, Reply, Script};
    // Decrement stock only while it is positive: the flash-sale check-and-set.
    let take = Script::new("take_stock", |ctx, keys, args| {
        let want: i64 = args[0].parse().unwrap_or(1);
        let have = match ctx.call(Command::Get {
            key: keys[0].clone(),
        }) {
            Reply::Bulk(s) => s.parse::<i64>().unwrap_or(0),
            Reply::Nil => 0,
            other => return other,
        };
        if have < want {
            return Reply::Int(-1);
        }
        ctx.call(Command::DecrBy {
            key: keys[0].clone(),
            delta: want,
        })
    });
    let eval = |n: &str| Command::Eval {
        script: take.clone(),
        keys: vec!["stock".into()],
        args: vec![n.into()],
    };
    let mut e = engine();
    let mut s = Session::new(ClientId(1));
    let t = Instant::START;
    let mut run = |e: &mut Engine, c: Command| match s.handle(e, c, t) {
        Step::Reply(r) => r,
        Step::Blocked { .. } => panic!("scripts never block"),
    };
    assert_eq!(
        run(&mut e, parse(&["SET", "stock", "3"]).unwrap()),
        Reply::ok()
    );
    let _ = e.take_effects();
    assert_eq!(run(&mut e, eval("2")), Reply::Int(1));
    assert_eq!(run(&mut e, eval("2")), Reply::Int(-1));
    // What a script wrote is propagated as the commands it ran, not as the script.
    assert_eq!(
        e.take_effects(),
        vec![Command::DecrBy {
            key: "stock".into(),
            delta: 2
        }]
    );
    let nested = Script::new("nested", |ctx, _, _| ctx.call(Command::Multi));
    let r = run(
        &mut e,
        Command::Eval {
            script: nested,
            keys: vec![],
            args: vec![],
        },
    );
    assert_eq!(
        r,
        Reply::error("ERR This Redis command is not allowed from script")
    );
    // A script's error reply reaches the caller; its earlier writes stay (no rollback).
    let half = Script::new("half", |ctx, _, _| {
        ctx.call(Command::Set {
            key: "h".into(),
            value: "1".into(),
            condition: Default::default(),
            expiry: Default::default(),
            get: false,
        });
        ctx.call(Command::LPush {
            key: "h".into(),
            values: vec!["x".into()],
        })
    });
    let r = run(
        &mut e,
        Command::Eval {
            script: half,
            keys: vec![],
            args: vec![],
        },
    );
    assert_eq!(r.to_string(), WRONGTYPE);
    assert_eq!(run(&mut e, parse(&["GET", "h"]).unwrap()), Reply::bulk("1"));
}

/// The commands added for the conformance suite's "commonly needed" list, with the replies
/// Redis 7.0.15 gave to the same lines.
#[test]
fn commonly_needed_commands() {
    run_table(
        &mut engine(),
        r#"
        1 0 SETNX s 1 => (integer) 1
        1 0 SETNX s 2 => (integer) 0
        1 0 APPEND s 23 => (integer) 3
        1 0 STRLEN s => (integer) 3
        1 0 GETDEL s => "123"
        1 0 GETDEL s => (nil)
        1 0 SETEX t 0 v => (error) ERR invalid expire time in 'setex' command
        1 0 PSETEX t x v => (error) ERR value is not an integer or out of range
        1 0 SETEX t 10 v => OK
        1 0 TTL t => (integer) 10
        1 0 EXPIREAT t 5 NX => (integer) 0
        1 0 EXPIREAT t 5 => (integer) 1
        1 6000 EXISTS t => (integer) 0
        1 6000 MSET a 1 b => (error) ERR wrong number of arguments for 'mset' command
        1 6000 MSET a 1 b 2 => OK
        1 6000 MSETNX b 3 c 4 => (integer) 0
        1 6000 MSETNX c 3 d 4 => (integer) 1
        1 6000 HSET h f 1 => (integer) 1
        1 6000 HSETNX h f 2 => (integer) 0
        1 6000 HSETNX h g 2 => (integer) 1
        1 6000 HMGET h g x f => ["2", (nil), "1"]
        1 6000 HEXISTS h x => (integer) 0
        1 6000 HGETALL h => ["f", "1", "g", "2"]
        1 6000 RPUSH l a b c d => (integer) 4
        1 6000 LINDEX l -1 => "d"
        1 6000 LINDEX l x => (error) ERR value is not an integer or out of range
        1 6000 LINDEX missing x => (nil)
        1 6000 LTRIM l 1 -2 => OK
        1 6000 LRANGE l 0 -1 => ["b", "c"]
        1 6000 LTRIM l 5 10 => OK
        1 6000 TYPE l => none
        1 6000 SADD s1 a b c => (integer) 3
        1 6000 SADD s2 b c d => (integer) 3
        1 6000 SINTER s1 s2 => ["b", "c"]
        1 6000 SINTER s1 nothing => []
        1 6000 SUNION s1 s2 => ["a", "b", "c", "d"]
        1 6000 SINTER s1 h => (error) WRONGTYPE Operation against a key holding the wrong kind of value
        1 6000 ZINCRBY z 0x10 m => "16"
        1 6000 ZINCRBY z 0.1 m => "16.100000000000001"
        1 6000 ZINCRBY z inf m => "inf"
        1 6000 ZINCRBY z -inf m => (error) ERR resulting score is not a number (NaN)
        1 6000 ZADD z 1 a => (integer) 1
        1 6000 ZRANK z m => (integer) 1
        1 6000 ZRANK z x => (nil)
        1 6000 TYPE z => zset
        1 6000 TYPE h => hash
        1 6000 KEYS s? => ["s1", "s2"]
        1 6000 UNLINK s1 s2 nothing => (integer) 2
    "#,
    );
}
