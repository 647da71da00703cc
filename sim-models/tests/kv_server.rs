//! The kv server and client over sim-net: typed replies and errors, each fault verb pair,
//! maxmemory, and the `kv.cmd` command log.

mod kv_support;

use kv_support::{client, start, Commands};
use sim_models::kv::{
    self, errors, ClientConfig, Command, Config, KvClient, KvError, Reply, ServerError,
};
use sim_net::{Addr, ConnectionFailure};
use sim_runtime::node::NodeId;
use sim_runtime::time::{self, sleep, Duration};
use sim_runtime::{trace, Probability};

#[sim_runtime::test]
async fn typed_commands_round_trip_over_the_network() {
    let server = start(Config::default()).await;
    let c = client(&server, 1000);
    c.ping().await.unwrap();
    assert_eq!(c.get("k").await.unwrap(), None);
    c.set("k", "v").await.unwrap();
    assert!(!c.set_nx("k", "w").await.unwrap());
    assert!(c.set_nx("n", "5").await.unwrap());
    assert_eq!(c.incr("n").await.unwrap(), 6);
    assert_eq!(c.decr_by("n", 10).await.unwrap(), -4);
    assert_eq!(
        c.mget(&["k", "x", "n"]).await.unwrap(),
        vec![Some("v".into()), None, Some("-4".into())]
    );
    assert_eq!(c.getset("k", "w").await.unwrap(), Some("v".into()));
    assert_eq!(c.ttl("k").await.unwrap(), -1);
    assert_eq!(c.ttl("missing").await.unwrap(), -2);
    c.set_px("t", "1", Duration::from_secs(10)).await.unwrap();
    assert_eq!(c.ttl("t").await.unwrap(), 10);
    assert!(c
        .set_nx_px("lock", "me", Duration::from_millis(200))
        .await
        .unwrap());
    sleep(Duration::from_millis(250)).await;
    assert!(
        c.set_nx_px("lock", "you", Duration::from_millis(200))
            .await
            .unwrap(),
        "the lock expired"
    );
    assert_eq!(c.hset("h", "f", "1").await.unwrap(), 1);
    assert_eq!(c.hincr_by("h", "f", 2).await.unwrap(), 3);
    assert_eq!(c.hget("h", "f").await.unwrap(), Some("3".into()));
    assert_eq!(c.hgetall("h").await.unwrap().len(), 1);
    assert_eq!(c.rpush("l", &["a", "b"]).await.unwrap(), 2);
    assert_eq!(c.lrange("l", 0, -1).await.unwrap(), vec!["a", "b"]);
    assert_eq!(c.lpop("l").await.unwrap(), Some("a".into()));
    assert_eq!(c.sadd("s", &["x", "y"]).await.unwrap(), 2);
    assert!(c.sismember("s", "x").await.unwrap());
    assert_eq!(c.zadd("z", 2.0, "b").await.unwrap(), 1);
    assert_eq!(c.zadd("z", 1.0, "a").await.unwrap(), 1);
    let due = c.zrangebyscore(
        "z",
        kv::ScoreBound::NEG_INF,
        kv::ScoreBound::inclusive(1.5),
        None,
    );
    assert_eq!(due.await.unwrap(), vec!["a"]);
    assert_eq!(c.zrem("z", &["a"]).await.unwrap(), 1);
    assert_eq!(c.zscore("z", "b").await.unwrap(), Some(2.0));
    // An error reply is a typed server error, not a network error.
    let e = c.incr("k").await.unwrap_err();
    assert_eq!(e, KvError::Server(ServerError(errors::NOT_INTEGER.into())));
    assert!(!e.is_network());
    let e = c.lpush("k", &["x"]).await.unwrap_err();
    assert!(e.is_wrongtype(), "{e}");
    assert_eq!(e.server_error().unwrap().kind(), "WRONGTYPE");
}

#[sim_runtime::test]
async fn network_failures_are_typed_refused_timeout_reset_unreachable() {
    let server = start(Config::default()).await;
    let c = client(&server, 300);
    c.set("k", "v").await.unwrap();

    // Paused: the request waits in the socket, the client's timeout fires.
    server.pause();
    let start = time::now();
    assert_eq!(
        c.get("k").await,
        Err(KvError::Connection(ConnectionFailure::Timeout))
    );
    assert_eq!(time::now() - start, Duration::from_millis(300));
    server.resume();
    assert_eq!(c.get("k").await.unwrap(), Some("v".into()));

    // A blocked call on a crashing server is reset; a down server refuses at once.
    let blocked = {
        let c = c.clone();
        sim_runtime::spawn(async move { c.blpop(&["q"], Duration::ZERO).await })
    };
    sleep(Duration::from_millis(20)).await;
    server.crash();
    assert_eq!(
        blocked.await.unwrap(),
        Err(KvError::Connection(ConnectionFailure::Reset))
    );
    let start = time::now();
    assert_eq!(
        c.get("k").await,
        Err(KvError::Connection(ConnectionFailure::Refused))
    );
    assert_eq!(time::now(), start, "refused fails fast");
    server.restart();
    server.ready().await;
    c.get("k").await.unwrap();

    let nowhere = KvClient::new(Addr::new(NodeId(999), 6379), ClientConfig::default());
    assert_eq!(
        nowhere.get("k").await,
        Err(KvError::Connection(ConnectionFailure::Unreachable))
    );
}

#[sim_runtime::test]
async fn a_write_that_timed_out_while_paused_still_runs_on_resume() {
    let server = start(Config::default()).await;
    let c = client(&server, 100);
    server.pause();
    assert_eq!(
        c.incr("n").await,
        Err(KvError::Connection(ConnectionFailure::Timeout))
    );
    sleep(Duration::from_millis(500)).await;
    server.resume();
    sleep(Duration::from_millis(10)).await;
    // The caller saw a failure, yet the increment happened: the classic ambiguity.
    assert_eq!(c.get("n").await.unwrap(), Some("1".into()));
}

#[sim_runtime::test]
async fn slow_adds_latency_to_each_command_and_fast_removes_it() {
    let server = start(Config::default()).await;
    let c = client(&server, 2000);
    c.set("k", "v").await.unwrap();
    let timed = |c: KvClient| async move {
        let t = time::now();
        c.get("k").await.unwrap();
        time::now() - t
    };
    let base = timed(c.clone()).await;
    assert!(base <= Duration::from_millis(10), "{base:?}");
    server.slow(Duration::from_millis(500));
    let slow = timed(c.clone()).await;
    assert!(
        slow >= Duration::from_millis(502) && slow <= Duration::from_millis(510),
        "{slow:?}"
    );
    server.fast();
    assert!(timed(c.clone()).await <= Duration::from_millis(10));
}

#[sim_runtime::test]
async fn fail_rate_answers_with_error_replies_and_heal_stops_it() {
    let server = start(Config::default()).await;
    let c = client(&server, 1000);
    server.fail(Probability::ALWAYS);
    let e = c.set("k", "v").await.unwrap_err();
    assert_eq!(e, KvError::Server(ServerError(errors::INJECTED.into())));
    // A queued command that fails makes EXEC abort, as a refused command does.
    let r = c.multi().incr("n").exec().await;
    assert_eq!(
        r,
        Err(KvError::Server(ServerError(errors::EXECABORT.into())))
    );
    server.heal();
    c.set("k", "v").await.unwrap();
    assert_eq!(
        c.get("n").await.unwrap(),
        None,
        "the failed transaction wrote nothing"
    );

    // At p = 0.3 about 30% fail.
    server.fail(Probability::of(0.3));
    let mut failed = 0;
    for _ in 0..400 {
        if c.incr("m").await.is_err() {
            failed += 1;
        }
    }
    assert!((80..160).contains(&failed), "{failed}");
    server.heal();
    assert_eq!(c.get("m").await.unwrap(), Some((400 - failed).to_string()));
}

#[sim_runtime::test]
async fn maxmemory_noeviction_gives_oom_errors_on_writes_only() {
    let config = Config {
        maxmemory: Some(2_000),
        ..Config::default()
    };
    let server = start(config).await;
    let c = client(&server, 1000);
    let mut stored = 0;
    let err = loop {
        match c.set(&format!("key:{stored}"), "0123456789").await {
            Ok(()) => stored += 1,
            Err(e) => break e,
        }
    };
    assert!(err.is_oom(), "{err}");
    assert_eq!(err.server_error().unwrap().message(), errors::OOM);
    assert!(stored > 10, "{stored}");
    // Reads and deletions still work, and freeing memory lets writes in again.
    assert_eq!(c.get("key:0").await.unwrap(), Some("0123456789".into()));
    assert!(c.rpush("list", &["x"]).await.unwrap_err().is_oom());
    assert_eq!(c.del(&["key:0", "key:1"]).await.unwrap(), 2);
    c.set("again", "x").await.unwrap();
    assert_eq!(server.stats().unwrap().rejected_oom, 2);
}

#[sim_runtime::test]
async fn every_command_and_its_reply_is_in_the_trace() {
    let commands = Commands::capture();
    let log = trace::capture_prefix("kv.cmd");
    let server = start(Config::default()).await;
    let c = client(&server, 1000);
    c.set("k", "v").await.unwrap();
    assert_eq!(c.get("k").await.unwrap(), Some("v".into()));
    let _ = c.incr("k").await;
    let events = commands.all();
    let seen: Vec<(Command, Reply)> = events
        .iter()
        .map(|e| (e.cmd.clone().into_owned(), e.reply.clone().into_owned()))
        .collect();
    let cmd = |line: &[&str]| kv::parse(line).unwrap();
    assert_eq!(
        seen,
        vec![
            (cmd(&["SET", "k", "v"]), Reply::ok()),
            (cmd(&["GET", "k"]), Reply::bulk("v")),
            (cmd(&["INCR", "k"]), Reply::error(errors::NOT_INTEGER)),
        ]
    );
    assert_eq!(
        events[0].offset,
        Some(1),
        "the SET is the first replicated batch"
    );
    assert_eq!(events[1].offset, None, "reads write nothing");
    assert!(events
        .iter()
        .all(|e| e.server == "redis" && e.node == "redis"));
    assert_eq!(
        commands.writes(),
        events[..1],
        "a command that wrote is named apart, so checkers can follow writes alone"
    );
    // What `--trace` shows: the same events, named, with the command as a structure.
    let names: Vec<String> = log
        .snapshot()
        .iter()
        .map(|e| e.name().to_string())
        .collect();
    assert_eq!(names, ["kv.cmd.write", "kv.cmd", "kv.cmd"]);
    assert_eq!(
        log.snapshot()[0].fields_value(),
        serde_json::json!({
            "server": "redis",
            "node": "redis",
            "client": 1,
            "cmd": {"Set": {"key": "k", "value": "v", "condition": "Always", "expiry": "None", "get": false}},
            "reply": {"Status": "OK"},
            "offset": 1,
        })
    );
}

/// The TTL helpers are named for what they send: `SET .. PX <milliseconds>`.
#[sim_runtime::test]
async fn set_px_and_set_nx_px_send_a_ttl_in_milliseconds() {
    let server = start(Config::default()).await;
    let c = client(&server, 1000);
    let writes = trace::capture::<kv::WriteEvent<'_>>();
    c.set_px("a", "1", Duration::from_millis(1500))
        .await
        .unwrap();
    assert!(c.set_nx_px("b", "1", Duration::from_secs(2)).await.unwrap());
    let expiries: Vec<kv::SetExpiry> = writes
        .values()
        .into_iter()
        .filter_map(|w| match w.cmd.into_owned() {
            Command::Set { expiry, .. } => Some(expiry),
            _ => None,
        })
        .collect();
    assert_eq!(expiries, [kv::SetExpiry::Px(1500), kv::SetExpiry::Px(2000)]);
    let left = c.pttl("a").await.unwrap();
    assert!((1400..=1500).contains(&left), "{left} ms left");
}

/// Raw argument vectors are parsed by the server, so MULTI treats them as Redis 7.0 does:
/// an unknown command or a wrong argument count dooms the transaction (EXECABORT), while
/// a bad argument is queued and fails inside EXEC's array.
#[sim_runtime::test]
async fn raw_commands_fail_inside_multi_where_redis_fails_them() {
    let server = start(Config::default()).await;
    let c = client(&server, 1000);
    let call = |argv: &'static [&'static str]| {
        let c = c.clone();
        async move {
            match c.call_argv(argv).await {
                Ok(r) => r,
                Err(KvError::Server(e)) => Reply::Error(e.0),
                Err(other) => panic!("{other}"),
            }
        }
    };
    assert_eq!(call(&["MULTI"]).await, Reply::ok());
    assert_eq!(call(&["INCRBY", "b", "1.5"]).await, Reply::queued());
    assert_eq!(call(&["PING", "hello"]).await, Reply::queued());
    assert_eq!(call(&["UNWATCH"]).await, Reply::queued());
    assert_eq!(
        call(&["EXEC"]).await,
        Reply::Array(vec![
            Reply::error(errors::NOT_INTEGER),
            Reply::bulk("hello"),
            Reply::ok()
        ])
    );
    assert_eq!(call(&["MULTI"]).await, Reply::ok());
    assert_eq!(call(&["ZCARD"]).await, Reply::error(errors::arity("zcard")));
    assert_eq!(
        call(&["NOSUCH", "a"]).await,
        Reply::error("ERR unknown command 'NOSUCH', with args beginning with: 'a' ")
    );
    assert_eq!(call(&["SET", "k", "v"]).await, Reply::queued());
    assert_eq!(call(&["EXEC"]).await, Reply::error(errors::EXECABORT));
    assert_eq!(call(&["EXISTS", "k"]).await, Reply::Int(0), "nothing ran");
    assert_eq!(
        call(&["FLUSHALL", "extra"]).await,
        Reply::error(errors::SYNTAX)
    );
}
