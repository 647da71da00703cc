//! Crashes while clients write: exactly the committed data survives with
//! `synchronous_commit = on`; with it off, the commits of the last WAL writer round are
//! lost, and only those.

mod sql_support;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use sim_models::sql::{col, Config, Insert, IsolationLevel, StmtEvent, Update};
use sim_models::sql_row;
use sim_runtime::time::{self, sleep, Duration, Instant};
use sim_runtime::{spawn, trace};
use sql_support::{config, pool, run, start, SEEDS};

fn ids(rows: &[sim_models::sql::Row]) -> BTreeSet<i64> {
    rows.iter().map(|r| r.get::<i64>("id").unwrap()).collect()
}

/// Ids of appointments whose INSERT the server reported committed (the trace is emitted
/// after the implicit commit, in the same step).
fn committed_inserts(log: &trace::EventLog) -> BTreeSet<i64> {
    log.snapshot()
        .iter()
        .filter_map(|e| e.fields::<StmtEvent>().ok())
        .filter(|e| e.is_ok() && e.stmt.starts_with("INSERT INTO appointments"))
        .filter_map(|e| {
            let rest = e.stmt.split("id=").nth(1)?;
            rest.split(',').next()?.parse().ok()
        })
        .collect()
}

#[test]
fn a_crash_keeps_exactly_the_committed_data() {
    for seed in 0..SEEDS {
        let (survivors, committed, acked, balance, open_booking) = run(seed, move || async move {
            let server = start(config()).await;
            let log = trace::capture_prefix("sql.stmt");
            let pool = pool(&server);
            let acked = Rc::new(RefCell::new(BTreeSet::new()));
            // Writers inserting appointments one statement (one transaction) at a time.
            for w in 0..3i64 {
                let (pool, acked) = (pool.clone(), acked.clone());
                spawn(async move {
                    for i in 0..100i64 {
                        let id = w * 1000 + i;
                        let Ok(mut c) = pool.acquire().await else { return };
                        let row = sql_row! {"id" => id, "doctor" => "house", "slot" => id, "patient" => "p"};
                        if c.execute(Insert::into("appointments", row)).await.is_err() {
                            return;
                        }
                        acked.borrow_mut().insert(id);
                        sleep(Duration::from_millis(1 + (id % 7) as u64)).await;
                    }
                })
                .detach();
            }
            // A transaction left open at the crash.
            let mut holder = {
                let pool = pool.clone();
                spawn(async move {
                    let mut c = pool.acquire().await.unwrap();
                    let mut tx = c.begin(IsolationLevel::ReadCommitted).await.unwrap();
                    tx.update(Update::table("accounts").set("balance", 0).key(1))
                        .await
                        .unwrap();
                    tx.insert(
                        "bookings",
                        sql_row! {"id" => 1, "doctor" => "house", "slot" => 1, "patient" => "q"},
                    )
                    .await
                    .unwrap();
                    sleep(Duration::from_secs(3600)).await;
                })
            };
            let crash_at = 40 + sim_runtime::with_rng(|r| r.below(60));
            sleep(Duration::from_millis(crash_at)).await;
            server.crash();
            let committed = committed_inserts(&log);
            let acked = acked.borrow().clone();
            holder.abort();
            sleep(Duration::from_millis(500)).await;
            server.restart();
            server.ready().await;
            let mut c = pool.acquire().await.unwrap();
            let survivors = ids(&c
                .query(sim_models::sql::Select::from("appointments"))
                .await
                .unwrap());
            let balance: i64 = c
                .get("accounts", 1)
                .await
                .unwrap()
                .unwrap()
                .get("balance")
                .unwrap();
            let open_booking = c.get("bookings", 1).await.unwrap();
            (survivors, committed, acked, balance, open_booking)
        });
        assert!(
            !committed.is_empty(),
            "seed {seed}: nothing committed before the crash"
        );
        assert_eq!(
            survivors, committed,
            "seed {seed}: exactly the committed rows"
        );
        assert!(
            acked.is_subset(&survivors),
            "seed {seed}: an acknowledged commit was lost"
        );
        assert_eq!(balance, 100, "seed {seed}: uncommitted update survived");
        assert!(
            open_booking.is_none(),
            "seed {seed}: uncommitted insert survived"
        );
    }
}

#[test]
fn asynchronous_commit_loses_only_the_last_wal_writer_round() {
    let wal_writer_delay = Duration::from_millis(200);
    for seed in 0..SEEDS {
        let (acked, survivors, crash_at, lost) = run(seed, move || async move {
            let server = start(Config {
                synchronous_commit: false,
                wal_writer_delay,
                ..config()
            })
            .await;
            let pool = pool(&server);
            let acked: Rc<RefCell<Vec<(i64, Instant)>>> = Rc::default();
            {
                let (pool, acked) = (pool.clone(), acked.clone());
                spawn(async move {
                    let mut c = pool.acquire().await.unwrap();
                    for id in 0..1000i64 {
                        let row = sql_row! {"id" => id, "doctor" => "house", "slot" => id, "patient" => "p"};
                        if c.execute(Insert::into("appointments", row)).await.is_err() {
                            return;
                        }
                        acked.borrow_mut().push((id, time::now()));
                        sleep(Duration::from_millis(10)).await;
                    }
                })
                .detach();
            }
            let crash_after = 700 + sim_runtime::with_rng(|r| r.below(300));
            sleep(Duration::from_millis(crash_after)).await;
            let crash_at = time::now();
            server.crash();
            let lost = server.last_crash().unwrap().lost_commits.len();
            let acked = acked.borrow().clone();
            server.restart();
            server.ready().await;
            let mut c = pool.acquire().await.unwrap();
            let survivors = ids(&c
                .query(sim_models::sql::Select::from("appointments").filter(col("slot").ge(0)))
                .await
                .unwrap());
            (acked, survivors, crash_at, lost)
        });
        let acked_ids: BTreeSet<i64> = acked.iter().map(|(id, _)| *id).collect();
        let missing: Vec<&(i64, Instant)> = acked
            .iter()
            .filter(|(id, _)| !survivors.contains(id))
            .collect();
        assert!(
            !missing.is_empty(),
            "seed {seed}: acknowledged commits were lost"
        );
        // The server may also have lost a commit whose reply was still on the wire.
        assert!(
            lost == missing.len() || lost == missing.len() + 1,
            "seed {seed}: lost {lost}, missing {}",
            missing.len()
        );
        for (id, at) in &missing {
            assert!(
                crash_at.duration_since(*at) <= wal_writer_delay,
                "seed {seed}: id {id} acknowledged at {at} was lost by the crash at {crash_at}"
            );
        }
        // What survived is a prefix of what was acknowledged (commit order).
        assert!(survivors.is_subset(&acked_ids));
        let first_missing = missing[0].0;
        assert!(
            survivors.iter().all(|id| *id < first_missing),
            "seed {seed}"
        );
    }
}
