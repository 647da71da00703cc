//! Connections: pool exhaustion by slow queries and recovery, `max_connections`, idle
//! timeout, validation after a restart, and the server's fault verbs as clients see them.

mod sql_support;

use sim_models::sql::{
    ClientConfig, Config, ConnectionFailure, Fault, FaultEvent, IsolationLevel, Pool, PoolConfig,
    PoolTimeoutEvent, SessionChange, SessionEvent, SqlError,
};
use sim_runtime::time::{self, sleep, Duration};
use sim_runtime::{spawn, trace};
use sql_support::{config, db, start};

/// A key lookup, as a request handler makes it.
const GET_ACCOUNT: &str = "SELECT * FROM accounts WHERE id = $1";

fn small_pool(addr: sim_net::Addr, acquire_timeout: Duration) -> Pool {
    Pool::new(
        addr,
        PoolConfig {
            max_size: 10,
            acquire_timeout,
            ..PoolConfig::default()
        },
    )
}

#[sim_runtime::test(seeds = 12)]
async fn slow_queries_exhaust_a_pool_of_ten_then_it_recovers() {
    let timeouts = trace::capture::<PoolTimeoutEvent>();
    let server = start(config()).await;
    let pool = small_pool(server.addr(), Duration::from_millis(300));
    // Ten report queries that take 2 s each, holding their connections.
    let slow: Vec<_> = (0..10)
        .map(|_| {
            let pool = pool.clone();
            spawn(async move {
                let mut c = pool.acquire().await?;
                c.execute("SELECT pg_sleep(2)", &[]).await?;
                Ok::<_, SqlError>(())
            })
        })
        .collect();
    sleep(Duration::from_millis(100)).await;
    // Requests arriving meanwhile find no connection.
    let during: Vec<_> = (0..5_i64)
        .map(|i| {
            let pool = pool.clone();
            spawn(async move {
                let mut c = pool.acquire().await?;
                c.query_opt(GET_ACCOUNT, &[&(1 + i % 2)]).await
            })
        })
        .collect();
    sleep(Duration::from_millis(10)).await;
    let status = pool.status();
    assert_eq!(status.open, 10);
    assert_eq!(status.idle, 0);
    assert_eq!(status.waiting, 5, "{status:?}");
    for t in during {
        let r = t.await.unwrap();
        assert!(
            matches!(r, Err(SqlError::PoolTimeout { waited }) if waited == Duration::from_millis(300)),
            "{r:?}"
        );
        assert_eq!(r.unwrap_err().sqlstate(), None);
    }
    // Each timeout is traced with the numbers.
    let traced = timeouts.values();
    assert_eq!(traced.len(), 5);
    assert!(traced
        .iter()
        .all(|e| e.addr == server.addr() && e.waited_ns == 300_000_000 && e.max_size == 10));
    for t in slow {
        assert!(t.await.unwrap().is_ok());
    }
    // After the slow queries, requests are served again, quickly.
    let start = time::now();
    for i in 0..5_i64 {
        let mut c = pool.acquire().await.unwrap();
        assert!(c
            .query_opt(GET_ACCOUNT, &[&(1 + i % 2)])
            .await
            .unwrap()
            .is_some());
    }
    assert!(time::now().duration_since(start) < Duration::from_millis(100));
}

#[sim_runtime::test(seeds = 12)]
async fn a_slow_server_exhausts_the_pool_until_it_is_fast_again() {
    let faults = trace::capture::<FaultEvent>();
    let server = start(config()).await;
    let pool = small_pool(server.addr(), Duration::from_millis(200));
    server.slow(Duration::from_secs(1));
    let mut tasks = Vec::new();
    for i in 0..30 {
        let pool = pool.clone();
        tasks.push(spawn(async move {
            sleep(Duration::from_millis(10 * i)).await;
            let mut c = pool.acquire().await?;
            c.query_opt(GET_ACCOUNT, &[&1_i64]).await
        }));
    }
    let mut timeouts = 0;
    for t in tasks {
        if let Err(SqlError::PoolTimeout { .. }) = t.await.unwrap() {
            timeouts += 1;
        }
    }
    assert!(timeouts >= 10, "only {timeouts} timeouts");
    server.fast();
    let start = time::now();
    let mut c = pool.acquire().await.unwrap();
    c.query_opt(GET_ACCOUNT, &[&1_i64]).await.unwrap();
    assert!(time::now().duration_since(start) < Duration::from_millis(50));
    let traced: Vec<Fault> = faults.values().into_iter().map(|e| e.fault).collect();
    assert_eq!(
        traced,
        [
            Fault::Slow {
                delay_ns: 1_000_000_000
            },
            Fault::Fast
        ]
    );
}

#[sim_runtime::test(seeds = 12)]
async fn max_connections_refuses_extra_sessions_with_53300() {
    let sessions = trace::capture::<SessionEvent>();
    let server = start(Config {
        max_connections: 4,
        ..config()
    })
    .await;
    // A pool sized above the server's limit: the pool-sizing bug.
    let pool = small_pool(server.addr(), Duration::from_secs(1));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let pool = pool.clone();
            spawn(async move {
                let mut c = pool.acquire().await?;
                c.execute("SELECT pg_sleep(0.5)", &[]).await
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap().map(|_| ()));
    }
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let refused: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(ok, 4, "{results:?}");
    assert!(refused
        .iter()
        .all(|e| **e == SqlError::TooManyConnections && e.sqlstate() == Some("53300")));
    assert_eq!(refused[0].to_string(), "sorry, too many clients already");
    // The server traced each refusal with its error.
    let rejected = sessions
        .values()
        .into_iter()
        .filter(|e| e.change == SessionChange::Rejected(SqlError::TooManyConnections))
        .count();
    assert_eq!(rejected, refused.len());
}

#[sim_runtime::test(seeds = 4)]
async fn idle_connections_time_out() {
    let server = start(config()).await;
    let pool = Pool::new(
        server.addr(),
        PoolConfig {
            idle_timeout: Some(Duration::from_secs(10)),
            ..PoolConfig::default()
        },
    );
    let conns = [
        pool.acquire().await.unwrap(),
        pool.acquire().await.unwrap(),
        pool.acquire().await.unwrap(),
    ];
    drop(conns);
    let before = pool.status();
    assert_eq!((before.open, before.idle), (3, 3));
    sleep(Duration::from_secs(11)).await;
    let mut c = pool.acquire().await.unwrap();
    c.query_opt(GET_ACCOUNT, &[&1_i64]).await.unwrap();
    let after = pool.status();
    // The three idle ones were closed; one fresh connection was opened.
    assert_eq!((after.open, after.idle, after.discarded), (1, 0, 3));
    drop(c);
    sleep(Duration::from_millis(50)).await;
    assert_eq!(
        server.sessions(),
        1,
        "the server saw the idle sessions close"
    );
}

#[sim_runtime::test(seeds = 12)]
async fn pool_validates_connections_after_a_server_restart() {
    let (server, pool) = db().await;
    {
        let _a = pool.acquire().await.unwrap();
        let _b = pool.acquire().await.unwrap();
    }
    server.crash();
    sleep(Duration::from_millis(100)).await;
    server.restart();
    server.ready().await;
    // Both idle connections are dead; validation replaces them transparently.
    let mut c = pool.acquire().await.unwrap();
    assert!(c.query_opt(GET_ACCOUNT, &[&1_i64]).await.unwrap().is_some());
    drop(c);
    let status = pool.status();
    assert_eq!(status.discarded, 2, "{status:?}");
    assert_eq!(status.open, 1);
}

#[sim_runtime::test(seeds = 12)]
async fn refuse_terminates_sessions_and_refuses_connections_until_accept() {
    let (server, pool) = db().await;
    let mut c = pool.acquire().await.unwrap();
    let mut tx = c
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()
        .await
        .unwrap();
    tx.execute(
        "UPDATE accounts SET balance = $1 WHERE id = $2",
        &[&0_i64, &1_i64],
    )
    .await
    .unwrap();
    server.refuse();
    sleep(Duration::from_millis(20)).await;
    let e = tx.commit().await.unwrap_err();
    assert_eq!(e.sqlstate(), Some("57P01"), "{e:?}");
    drop(c);
    assert_eq!(
        pool.acquire().await.map(|_| ()).unwrap_err(),
        SqlError::Connection(ConnectionFailure::Refused)
    );
    // The open transaction was rolled back; committed data stayed.
    let committed = server.committed_rows("accounts").unwrap();
    assert_eq!(committed[0].get::<_, i64>("balance").unwrap(), 100);
    server.accept();
    server.ready().await;
    let mut c = pool.acquire().await.unwrap();
    let after = c.query_one(GET_ACCOUNT, &[&1_i64]).await.unwrap();
    assert_eq!(after.get::<_, i64>("balance").unwrap(), 100);
}

#[sim_runtime::test(seeds = 12)]
async fn pause_times_clients_out_and_resume_serves_them_again() {
    let server = start(config()).await;
    let pool = Pool::new(
        server.addr(),
        PoolConfig {
            client: ClientConfig {
                query_timeout: Some(Duration::from_millis(500)),
                ..ClientConfig::default()
            },
            ..PoolConfig::default()
        },
    );
    let mut c = pool.acquire().await.unwrap();
    server.pause();
    assert_eq!(
        c.query_opt(GET_ACCOUNT, &[&1_i64]).await.unwrap_err(),
        SqlError::Connection(ConnectionFailure::Timeout)
    );
    drop(c);
    sleep(Duration::from_secs(1)).await;
    server.resume();
    let mut c = pool.acquire().await.unwrap();
    assert!(c.query_opt(GET_ACCOUNT, &[&1_i64]).await.unwrap().is_some());
}
