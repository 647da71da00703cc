//! Concurrent clients against one kv server: WATCH/MULTI/EXEC optimistic locking, BLPOP
//! waiters in FIFO order with timeouts on virtual time, scripts as atomic steps, and
//! determinism of a faulty run.

mod kv_support;

use std::cell::RefCell;
use std::rc::Rc;

use kv_support::{at_ms, run_fingerprint, start};
use serde::{Deserialize, Serialize};
use sim_models::kv::{Command, Config, KvClient, KvServer, ReplicaConfig, Reply, Script};
use sim_runtime::time::{self, sleep, sleep_until, Duration};
use sim_runtime::{spawn, FaultSchedule, Probability};

fn client(server: &KvServer) -> KvClient {
    kv_support::client(server, 1000)
}

#[sim_runtime::test]
async fn watch_aborts_exec_when_another_client_changed_the_key() {
    let server = start(Config::default()).await;
    let (a, b) = (client(&server), client(&server));
    a.set("balance", "100").await.unwrap();
    a.watch(&["balance"]).await.unwrap();
    let seen: i64 = a.get("balance").await.unwrap().unwrap().parse().unwrap();
    // Meanwhile another client spends from the same balance.
    assert_eq!(b.decr_by("balance", 30).await.unwrap(), 70);
    let r = a
        .multi()
        .set("balance", &(seen - 50).to_string())
        .exec()
        .await
        .unwrap();
    assert_eq!(r, None, "EXEC returns nil: a watched key changed");
    assert_eq!(
        a.get("balance").await.unwrap(),
        Some("70".into()),
        "the stale write did not happen"
    );
    // Without interference the same transaction commits.
    a.watch(&["balance"]).await.unwrap();
    let r = a.multi().decr_by("balance", 50).exec().await.unwrap();
    assert_eq!(r, Some(vec![Reply::Int(20)]));
}

#[sim_runtime::test(seeds = 8)]
async fn optimistic_increments_with_retries_lose_nothing_under_contention() {
    let server = start(Config::default()).await;
    let aborts = Rc::new(RefCell::new(0));
    let mut workers = Vec::new();
    for _ in 0..5 {
        let c = client(&server);
        let aborts = aborts.clone();
        workers.push(spawn(async move {
            for _ in 0..10 {
                loop {
                    c.watch(&["n"]).await.unwrap();
                    let n: i64 = c.get("n").await.unwrap().map_or(0, |v| v.parse().unwrap());
                    let r = c
                        .multi()
                        .set("n", &(n + 1).to_string())
                        .exec()
                        .await
                        .unwrap();
                    if r.is_some() {
                        break;
                    }
                    *aborts.borrow_mut() += 1;
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(client(&server).get("n").await.unwrap(), Some("50".into()));
    assert!(*aborts.borrow() > 0, "five clients on one key must collide");
}

#[sim_runtime::test(seeds = 8)]
async fn blpop_waiters_are_served_fifo() {
    let server = start(Config::default()).await;
    let got = Rc::new(RefCell::new(Vec::new()));
    let mut waiters = Vec::new();
    // Consumers block at 10, 20, 30, 40 ms, in that order.
    for i in 0..4u64 {
        let c = client(&server);
        let got = got.clone();
        waiters.push(spawn(async move {
            sleep_until(at_ms(10 * (i + 1))).await;
            let (_, v) = c.blpop(&["jobs"], Duration::ZERO).await.unwrap().unwrap();
            got.borrow_mut().push((i, v));
        }));
    }
    sleep_until(at_ms(100)).await;
    let p = client(&server);
    p.rpush("jobs", &["j0", "j1"]).await.unwrap();
    sleep(Duration::from_millis(50)).await;
    p.rpush("jobs", &["j2"]).await.unwrap();
    p.rpush("jobs", &["j3"]).await.unwrap();
    for w in waiters {
        w.await.unwrap();
    }
    let mut got = got.borrow().clone();
    got.sort();
    let want: Vec<(u64, String)> = (0..4).map(|i| (i, format!("j{i}"))).collect();
    assert_eq!(got, want, "the first to block gets the first element");
}

#[sim_runtime::test(seeds = 8)]
async fn blpop_times_out_on_virtual_time() {
    let server = start(Config::default()).await;
    let c = client(&server);
    c.ping().await.unwrap();
    let start = time::now();
    let r = c.blpop(&["empty"], Duration::from_secs(30)).await.unwrap();
    let waited = time::now() - start;
    assert_eq!(r, None);
    // 30 s on the server's clock plus one round trip of 1..5 ms each way.
    assert!(
        waited >= Duration::from_millis(30_002) && waited <= Duration::from_millis(30_010),
        "{waited:?}"
    );
}

/// Twenty buyers, ten items: `buy` is called by each buyer with its client.
async fn sell_ten_items_to_twenty_buyers<F, Fut>(buy: F) -> usize
where
    F: Fn(KvClient) -> Fut,
    Fut: std::future::Future<Output = bool> + 'static,
{
    let server = start(Config::default()).await;
    client(&server).set("stock", "10").await.unwrap();
    let buyers: Vec<_> = (0..20).map(|_| spawn(buy(client(&server)))).collect();
    let mut sold = 0;
    for b in buyers {
        sold += usize::from(b.await.unwrap());
    }
    sold
}

/// Checks and decrements in one step.
fn buy_script() -> Script {
    Script::new("buy", |ctx, keys, _| {
        match ctx.call(Command::Get {
            key: keys[0].clone(),
        }) {
            Reply::Bulk(s) if s.parse::<i64>().unwrap_or(0) > 0 => ctx.call(Command::Decr {
                key: keys[0].clone(),
            }),
            Reply::Bulk(_) | Reply::Nil => Reply::Int(-1),
            other => other,
        }
    })
}

#[sim_runtime::test(seeds = 4)]
async fn a_script_is_atomic_and_never_oversells() {
    let buy = buy_script();
    let sold =
        sell_ten_items_to_twenty_buyers(|c| {
            let buy = buy.clone();
            async move {
                matches!(c.eval(&buy, &["stock"], &[]).await.unwrap(), Reply::Int(n) if n >= 0)
            }
        })
        .await;
    assert_eq!(sold, 10);
}

/// The naive GET-then-DECR lets buyers interleave between the check and the write. An
/// existence claim over seeds, so it runs them itself.
#[test]
fn get_then_decr_oversells() {
    let naive = |c: KvClient| async move {
        let n: i64 = c.get("stock").await.unwrap().unwrap().parse().unwrap();
        n > 0 && c.decr("stock").await.is_ok()
    };
    let oversold = (0..4).any(|seed| {
        let (sold, _) = run_fingerprint(seed, move || sell_ten_items_to_twenty_buyers(naive));
        sold > 10
    });
    assert!(oversold, "the naive check-then-act must oversell");
}

/// The faults a schedule can apply to a kv server.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum KvFault {
    Crash,
    Restart,
    Pause,
    Resume,
    Slow(u64),
    Fast,
    Fail(f64),
    Heal,
    Failover,
}

fn faulty_run(seed: u64) -> (u64, Vec<String>) {
    let (outcomes, fingerprint) = run_fingerprint(seed, || async {
        let config = Config {
            replica: Some(ReplicaConfig {
                replication_lag: Duration::from_millis(30),
            }),
            ..Config::default()
        };
        let server = start(config).await;
        let schedule = FaultSchedule::new()
            .at(Duration::from_millis(100), KvFault::Slow(20))
            .at(Duration::from_millis(200), KvFault::Fast)
            .at(Duration::from_millis(250), KvFault::Fail(0.2))
            .at(Duration::from_millis(350), KvFault::Heal)
            .at(Duration::from_millis(400), KvFault::Pause)
            .at(Duration::from_millis(700), KvFault::Resume)
            .at(Duration::from_millis(800), KvFault::Crash)
            .at(Duration::from_millis(900), KvFault::Restart)
            .at(Duration::from_millis(1_200), KvFault::Failover);
        let s = server.clone();
        schedule.install(move |f| {
            match f {
                KvFault::Crash => s.crash(),
                KvFault::Restart => s.restart(),
                KvFault::Pause => s.pause(),
                KvFault::Resume => s.resume(),
                KvFault::Slow(ms) => s.slow(Duration::from_millis(ms)),
                KvFault::Fast => s.fast(),
                KvFault::Fail(p) => s.fail(Probability::of(p)),
                KvFault::Heal => s.heal(),
                KvFault::Failover => s.failover().unwrap(),
            }
            async {}
        });
        let mut outcomes = Vec::new();
        let c = kv_support::client(&server, 100);
        let consumer = {
            let c = kv_support::client(&server, 100);
            spawn(async move {
                let mut got = Vec::new();
                while time::now() < at_ms(1_400) {
                    let r = c.blpop(&["q"], Duration::from_millis(50)).await;
                    if r.is_err() {
                        // A refused call fails at once: back off, or this loop spins.
                        sleep(Duration::from_millis(10)).await;
                    }
                    got.push(format!("{r:?}"));
                }
                got
            })
        };
        for i in 0..150 {
            let r = match i % 4 {
                0 => c.incr("n").await.map(|n| n.to_string()),
                1 => c.rpush("q", &[&i.to_string()]).await.map(|n| n.to_string()),
                2 => c.get("n").await.map(|v| format!("{v:?}")),
                _ => c
                    .set_px(&format!("k{i}"), "v", Duration::from_millis(300))
                    .await
                    .map(|_| "ok".into()),
            };
            outcomes.push(format!("{r:?}"));
            sleep(Duration::from_millis(10)).await;
        }
        outcomes.extend(consumer.await.unwrap());
        outcomes
    });
    (fingerprint, outcomes)
}

#[test]
fn same_seed_same_trace_under_every_fault() {
    let (f1, o1) = faulty_run(42);
    let (f2, o2) = faulty_run(42);
    assert_eq!(o1, o2);
    assert_eq!(f1, f2, "same seed, same fingerprint");
    let (f3, _) = faulty_run(43);
    assert_ne!(f1, f3, "another seed explores another run");
    // The run did meet the faults: timeouts, resets or refusals, and injected errors.
    assert!(o1.iter().any(|o| o.contains("Timeout")), "{o1:?}");
    assert!(o1.iter().any(|o| o.contains("injected failure")), "{o1:?}");
    assert!(
        o1.iter()
            .any(|o| o.contains("Refused") || o.contains("Reset")),
        "{o1:?}"
    );
}
