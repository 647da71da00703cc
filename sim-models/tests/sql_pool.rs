//! Connections: pool exhaustion by slow queries and recovery, `max_connections`, idle
//! timeout, validation after a restart, and the server's fault verbs as clients see them.

mod sql_support;

use sim_models::sql::{
    ClientConfig, Config, ConnectionFailure, IsolationLevel, Pool, PoolConfig, SqlError, Statement,
    Update,
};
use sim_runtime::spawn;
use sim_runtime::time::{self, sleep, Duration};
use sql_support::{config, run, start, SEEDS};

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

#[test]
fn slow_queries_exhaust_a_pool_of_ten_then_it_recovers() {
    for seed in 0..SEEDS {
        let (slow, during, status, after) = run(seed, || async {
            let server = start(config()).await;
            let pool = small_pool(server.addr(), Duration::from_millis(300));
            // Ten report queries that take 2 s each, holding their connections.
            let slow: Vec<_> = (0..10)
                .map(|_| {
                    let pool = pool.clone();
                    spawn(async move {
                        let mut c = pool.acquire().await?;
                        c.execute(Statement::Sleep(Duration::from_secs(2))).await?;
                        Ok::<_, SqlError>(())
                    })
                })
                .collect();
            sleep(Duration::from_millis(100)).await;
            // Requests arriving meanwhile find no connection.
            let during: Vec<_> = (0..5)
                .map(|i| {
                    let pool = pool.clone();
                    spawn(async move {
                        let mut c = pool.acquire().await?;
                        c.get("accounts", 1 + i % 2).await
                    })
                })
                .collect();
            sleep(Duration::from_millis(10)).await;
            let status = pool.status();
            let mut during_results = Vec::new();
            for t in during {
                during_results.push(t.await.unwrap());
            }
            let mut slow_results = Vec::new();
            for t in slow {
                slow_results.push(t.await.unwrap());
            }
            // After the slow queries, requests are served again, quickly.
            let start = time::now();
            let mut after = Vec::new();
            for i in 0..5 {
                let mut c = pool.acquire().await.unwrap();
                after.push(c.get("accounts", 1 + i % 2).await.map(|r| r.is_some()));
            }
            after.push(Ok(
                time::now().duration_since(start) < Duration::from_millis(100)
            ));
            (slow_results, during_results, status, after)
        });
        assert!(slow.iter().all(Result::is_ok), "seed {seed}");
        assert_eq!(status.open, 10);
        assert_eq!(status.idle, 0);
        assert_eq!(status.waiting, 5, "seed {seed}: {status:?}");
        for r in &during {
            assert!(
                matches!(r, Err(SqlError::PoolTimeout { waited }) if *waited == Duration::from_millis(300)),
                "seed {seed}: {r:?}"
            );
            assert_eq!(r.as_ref().unwrap_err().sqlstate(), None);
        }
        assert!(
            after.iter().all(|r| matches!(r, Ok(true))),
            "seed {seed}: {after:?}"
        );
    }
}

#[test]
fn a_slow_server_exhausts_the_pool_until_it_is_fast_again() {
    for seed in 0..SEEDS {
        let (timeouts, served_after) = run(seed, || async {
            let server = start(config()).await;
            let pool = small_pool(server.addr(), Duration::from_millis(200));
            server.slow(Duration::from_secs(1));
            let mut tasks = Vec::new();
            for i in 0..30 {
                let pool = pool.clone();
                tasks.push(spawn(async move {
                    sleep(Duration::from_millis(10 * i)).await;
                    let mut c = pool.acquire().await?;
                    c.get("accounts", 1).await
                }));
            }
            let mut timeouts = 0;
            for t in tasks {
                if let Err(SqlError::PoolTimeout { .. }) = t.await.unwrap() {
                    timeouts += 1;
                }
            }
            server.fast();
            let start = time::now();
            let mut c = pool.acquire().await.unwrap();
            c.get("accounts", 1).await.unwrap();
            (timeouts, time::now().duration_since(start))
        });
        assert!(timeouts >= 10, "seed {seed}: only {timeouts} timeouts");
        assert!(served_after < Duration::from_millis(50), "seed {seed}");
    }
}

#[test]
fn max_connections_refuses_extra_sessions_with_53300() {
    for seed in 0..SEEDS {
        let results = run(seed, || async {
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
                        c.execute(Statement::Sleep(Duration::from_millis(500)))
                            .await
                    })
                })
                .collect();
            let mut results = Vec::new();
            for t in tasks {
                results.push(t.await.unwrap().map(|_| ()));
            }
            results
        });
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let refused: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(ok, 4, "seed {seed}: {results:?}");
        assert!(refused
            .iter()
            .all(|e| **e == SqlError::TooManyConnections && e.sqlstate() == Some("53300")));
        assert_eq!(refused[0].to_string(), "sorry, too many clients already");
    }
}

#[test]
fn idle_connections_time_out() {
    let (before, after, sessions) = run(3, || async {
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
        sleep(Duration::from_secs(11)).await;
        let mut c = pool.acquire().await.unwrap();
        c.get("accounts", 1).await.unwrap();
        let after = pool.status();
        drop(c);
        sleep(Duration::from_millis(50)).await;
        (before, after, server.sessions())
    });
    assert_eq!((before.open, before.idle), (3, 3));
    // The three idle ones were closed; one fresh connection was opened.
    assert_eq!((after.open, after.idle, after.discarded), (1, 0, 3));
    assert_eq!(sessions, 1, "the server saw the idle sessions close");
}

#[test]
fn pool_validates_connections_after_a_server_restart() {
    for seed in 0..SEEDS {
        let (status, row) = run(seed, || async {
            let server = start(config()).await;
            let pool = sql_support::pool(&server);
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
            let row = c.get("accounts", 1).await.unwrap();
            drop(c);
            (pool.status(), row)
        });
        assert!(row.is_some(), "seed {seed}");
        assert_eq!(status.discarded, 2, "seed {seed}: {status:?}");
        assert_eq!(status.open, 1);
    }
}

#[test]
fn refuse_terminates_sessions_and_refuses_connections_until_accept() {
    for seed in 0..SEEDS {
        let (in_tx, on_connect, committed, after) = run(seed, || async {
            let server = start(config()).await;
            let pool = sql_support::pool(&server);
            let mut c = pool.acquire().await.unwrap();
            let mut tx = c.begin(IsolationLevel::ReadCommitted).await.unwrap();
            tx.update(Update::table("accounts").set("balance", 0).key(1))
                .await
                .unwrap();
            server.refuse();
            sleep(Duration::from_millis(20)).await;
            let in_tx = tx.commit().await;
            drop(c);
            let on_connect = pool.acquire().await.map(|_| ());
            let committed = server.committed_rows("accounts").unwrap();
            server.accept();
            server.ready().await;
            let mut c = pool.acquire().await.unwrap();
            let after = c.get("accounts", 1).await.unwrap().unwrap();
            (in_tx, on_connect, committed, after)
        });
        let e = in_tx.unwrap_err();
        assert_eq!(e.sqlstate(), Some("57P01"), "seed {seed}: {e:?}");
        assert_eq!(
            on_connect.unwrap_err(),
            SqlError::Connection(ConnectionFailure::Refused)
        );
        // The open transaction was rolled back; committed data stayed.
        assert_eq!(committed[0].get::<i64>("balance").unwrap(), 100);
        assert_eq!(after.get::<i64>("balance").unwrap(), 100);
    }
}

#[test]
fn pause_times_clients_out_and_resume_serves_them_again() {
    for seed in 0..SEEDS {
        let (during, after) = run(seed, || async {
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
            let during = c.get("accounts", 1).await;
            drop(c);
            sleep(Duration::from_secs(1)).await;
            server.resume();
            let mut c = pool.acquire().await.unwrap();
            (during, c.get("accounts", 1).await.map(|r| r.is_some()))
        });
        assert_eq!(
            during.unwrap_err(),
            SqlError::Connection(ConnectionFailure::Timeout),
            "seed {seed}"
        );
        assert_eq!(after, Ok(true), "seed {seed}");
    }
}
