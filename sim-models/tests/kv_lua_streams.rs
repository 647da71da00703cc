//! Lua scripts and streams through a real client and server: a service's own Lua rate
//! limiter runs unchanged, EVALSHA finds what SCRIPT LOAD loaded until a restart empties
//! the cache, a script's writes persist as the commands it ran; a stream consumer group
//! works as a job queue whose crashed worker's jobs are claimed by another; and all of it
//! replays bit for bit from a seed.

mod kv_support;

use kv_support::{run_fingerprint, start};
use sim_models::kv::{self, Config, KvClient, KvError, KvServer, Persistence, Reply};
use sim_runtime::time::{sleep, Duration};

fn client(server: &KvServer) -> KvClient {
    kv_support::client(server, 500)
}

/// Sends a command written as redis-cli arguments.
async fn cmd(c: &KvClient, argv: &[&str]) -> Result<Reply, KvError> {
    c.call(kv::parse(argv).expect("the test's commands parse"))
        .await
}

/// The server's error message.
fn message(e: &KvError) -> &str {
    e.server_error()
        .map_or("(not a server error)", |e| e.message())
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.to_string())
}

/// A fixed-window rate limiter as services write it in Lua: INCR, EXPIRE on the first hit.
const RATE_LIMIT: &str = r#"
local n = redis.call('INCR', KEYS[1])
if n == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
if n > tonumber(ARGV[2]) then
  return redis.error_reply('RATELIMITED too many requests')
end
return n
"#;

#[sim_runtime::test]
async fn a_services_lua_rate_limiter_runs_unchanged() {
    let server = start(Config::default()).await;
    let c = client(&server);
    for expected in 1..=3 {
        let reply = cmd(&c, &["EVAL", RATE_LIMIT, "1", "rl:alice", "1000", "3"]).await;
        assert_eq!(reply, Ok(Reply::Int(expected)));
    }
    let refused = cmd(&c, &["EVAL", RATE_LIMIT, "1", "rl:alice", "1000", "3"]).await;
    let err = refused.expect_err("the fourth request in the window is refused");
    assert_eq!(message(&err), "RATELIMITED too many requests");
    // The window expires on the virtual clock.
    sleep(Duration::from_millis(1001)).await;
    assert_eq!(
        cmd(&c, &["EVAL", RATE_LIMIT, "1", "rl:alice", "1000", "3"]).await,
        Ok(Reply::Int(1))
    );
}

#[sim_runtime::test]
async fn evalsha_finds_loaded_scripts_until_a_restart_empties_the_cache() {
    let server = start(Config {
        persistence: Persistence::AofAlways,
        ..Config::default()
    })
    .await;
    let c = client(&server);
    let sha = match cmd(
        &c,
        &[
            "SCRIPT",
            "LOAD",
            "return redis.call('INCRBY', KEYS[1], ARGV[1])",
        ],
    )
    .await
    {
        Ok(Reply::Bulk(sha)) => sha,
        other => panic!("SCRIPT LOAD answers the SHA1: {other:?}"),
    };
    assert_eq!(sha.len(), 40);
    assert_eq!(
        cmd(&c, &["EVALSHA", &sha, "1", "n", "5"]).await,
        Ok(Reply::Int(5))
    );
    assert_eq!(
        cmd(&c, &["SCRIPT", "EXISTS", &sha, "0000"]).await,
        Ok(Reply::Array(vec![Reply::Int(1), Reply::Int(0)]))
    );
    server.crash();
    server.restart();
    server.ready().await;
    let c = client(&server);
    let err = cmd(&c, &["EVALSHA", &sha, "1", "n", "5"])
        .await
        .expect_err("the script cache does not survive a restart");
    assert_eq!(
        message(&err),
        "NOSCRIPT No matching script. Please use EVAL."
    );
    // What the script wrote did: it was logged as the INCRBY it ran.
    assert_eq!(cmd(&c, &["GET", "n"]).await, Ok(bulk("5")));
}

#[sim_runtime::test]
async fn a_script_error_names_the_script_and_its_line() {
    let server = start(Config::default()).await;
    let c = client(&server);
    cmd(&c, &["SET", "s", "text"]).await.unwrap();
    let source = "local a = 1\nreturn redis.call('INCR', KEYS[1])";
    let err = cmd(&c, &["EVAL", source, "1", "s"]).await.unwrap_err();
    assert_eq!(
        message(&err),
        format!(
            "ERR value is not an integer or out of range script: {}, on @user_script:2.",
            kv::lua::sha1_hex(source)
        )
    );
    let err = cmd(&c, &["EVAL", "return redis.call('MULTI')", "0"])
        .await
        .unwrap_err();
    assert!(
        message(&err).starts_with("ERR This Redis command is not allowed from script script: "),
        "{}",
        message(&err)
    );
}

/// A worker that takes one job from the group and acknowledges it unless it `dies` first.
async fn work_one(c: &KvClient, worker: &str, dies: bool) -> Option<String> {
    let reply = cmd(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "workers",
            worker,
            "COUNT",
            "1",
            "STREAMS",
            "jobs",
            ">",
        ],
    )
    .await
    .unwrap();
    let id = match reply {
        Reply::Array(streams) => match &streams[0] {
            Reply::Array(pair) => match &pair[1] {
                Reply::Array(entries) => match &entries[0] {
                    Reply::Array(entry) => match &entry[0] {
                        Reply::Bulk(id) => id.clone(),
                        other => panic!("{other:?}"),
                    },
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        },
        Reply::Nil => return None,
        other => panic!("{other:?}"),
    };
    if !dies {
        cmd(c, &["XACK", "jobs", "workers", &id]).await.unwrap();
    }
    Some(id)
}

#[sim_runtime::test]
async fn a_crashed_workers_job_stays_pending_until_another_worker_claims_it() {
    let server = start(Config {
        persistence: Persistence::AofAlways,
        ..Config::default()
    })
    .await;
    let c = client(&server);
    cmd(
        &c,
        &["XGROUP", "CREATE", "jobs", "workers", "$", "MKSTREAM"],
    )
    .await
    .unwrap();
    for job in ["a", "b", "c"] {
        let id = cmd(&c, &["XADD", "jobs", "*", "job", job]).await.unwrap();
        assert!(matches!(id, Reply::Bulk(_)));
    }
    let done = work_one(&c, "w1", false).await.unwrap();
    let lost = work_one(&c, "w2", true).await.unwrap();
    assert_ne!(done, lost);
    // The pending list holds exactly the dead worker's job.
    let pending = cmd(&c, &["XPENDING", "jobs", "workers"]).await.unwrap();
    assert_eq!(
        pending,
        Reply::Array(vec![
            Reply::Int(1),
            bulk(&lost),
            bulk(&lost),
            Reply::Array(vec![Reply::Array(vec![bulk("w2"), bulk("1")])]),
        ])
    );
    // The server restarts in between: the group and its pending list come back from
    // the AOF.
    server.crash();
    server.restart();
    server.ready().await;
    let c = client(&server);
    let early = cmd(
        &c,
        &[
            "XAUTOCLAIM",
            "jobs",
            "workers",
            "w3",
            "30000",
            "0",
            "JUSTID",
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        early,
        Reply::Array(vec![
            bulk("0-0"),
            Reply::Array(vec![]),
            Reply::Array(vec![])
        ]),
        "not idle long enough"
    );
    sleep(Duration::from_secs(31)).await;
    let claimed = cmd(
        &c,
        &[
            "XAUTOCLAIM",
            "jobs",
            "workers",
            "w3",
            "30000",
            "0",
            "JUSTID",
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        claimed,
        Reply::Array(vec![
            bulk("0-0"),
            Reply::Array(vec![bulk(&lost)]),
            Reply::Array(vec![])
        ])
    );
    cmd(&c, &["XACK", "jobs", "workers", &lost]).await.unwrap();
    // The third job is still there for whoever reads next; nothing else is pending.
    assert!(work_one(&c, "w3", false).await.is_some());
    assert_eq!(work_one(&c, "w3", false).await, None);
    assert_eq!(
        cmd(&c, &["XPENDING", "jobs", "workers"]).await,
        Ok(Reply::Array(vec![
            Reply::Int(0),
            Reply::Nil,
            Reply::Nil,
            Reply::Nil
        ]))
    );
    assert_eq!(cmd(&c, &["XLEN", "jobs"]).await, Ok(Reply::Int(3)));
    let err = cmd(&c, &["LPUSH", "jobs", "x"]).await.unwrap_err();
    assert!(err.is_wrongtype());
}

#[sim_runtime::test]
async fn blocked_stream_readers_wake_on_xadd_or_time_out() {
    let server = start(Config::default()).await;
    let producer = client(&server);
    cmd(&producer, &["XADD", "events", "*", "n", "old"])
        .await
        .unwrap();
    cmd(&producer, &["XGROUP", "CREATE", "events", "g", "$"])
        .await
        .unwrap();
    let (s1, s2) = (server.clone(), server.clone());
    // XREAD from `$`: only what arrives after it blocked.
    let tail = sim_runtime::spawn(async move {
        let c = kv_support::client(&s1, 60_000);
        cmd(&c, &["XREAD", "BLOCK", "0", "STREAMS", "events", "$"]).await
    });
    // A group worker waiting for its next job.
    let worker = sim_runtime::spawn(async move {
        let c = kv_support::client(&s2, 60_000);
        cmd(
            &c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "w",
                "BLOCK",
                "5000",
                "STREAMS",
                "events",
                ">",
            ],
        )
        .await
    });
    sleep(Duration::from_millis(100)).await;
    let id = cmd(&producer, &["XADD", "events", "*", "n", "new"])
        .await
        .unwrap();
    let Reply::Bulk(id) = id else {
        panic!("{id:?}")
    };
    let expected = Reply::Array(vec![Reply::Array(vec![
        bulk("events"),
        Reply::Array(vec![Reply::Array(vec![
            bulk(&id),
            Reply::Array(vec![bulk("n"), bulk("new")]),
        ])]),
    ])]);
    assert_eq!(tail.await.unwrap(), Ok(expected.clone()));
    assert_eq!(worker.await.unwrap(), Ok(expected));
    // Nothing more comes: a bounded BLOCK ends with nil at its deadline.
    let start_at = sim_runtime::time::now();
    let idle = cmd(
        &producer,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "w",
            "BLOCK",
            "300",
            "STREAMS",
            "events",
            ">",
        ],
    )
    .await;
    assert_eq!(idle, Ok(Reply::Nil));
    assert!(sim_runtime::time::now().duration_since(start_at) >= Duration::from_millis(300));
}

/// Scripts and streams together, for the determinism check.
async fn scripts_and_streams() -> Vec<Reply> {
    let server = start(Config::default()).await;
    let c = client(&server);
    let mut replies = Vec::new();
    cmd(&c, &["XGROUP", "CREATE", "q", "g", "0", "MKSTREAM"])
        .await
        .unwrap();
    for i in 0..5 {
        let id = cmd(&c, &["XADD", "q", "*", "n", &i.to_string()])
            .await
            .unwrap();
        replies.push(id);
        replies.push(
            cmd(&c, &["EVAL", "return math.random(1000)", "0"])
                .await
                .unwrap(),
        );
        sleep(Duration::from_millis(sim_runtime::rng("gap").below(50))).await;
    }
    replies.push(
        cmd(&c, &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "q", ">"])
            .await
            .unwrap(),
    );
    replies
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    let (a, fa) = run_fingerprint(7, scripts_and_streams);
    let (b, fb) = run_fingerprint(7, scripts_and_streams);
    assert_eq!(a, b);
    assert_eq!(fa, fb);
    let (_, fc) = run_fingerprint(8, scripts_and_streams);
    assert_ne!(fa, fc, "the seed reaches the stream IDs through the clock");
}
