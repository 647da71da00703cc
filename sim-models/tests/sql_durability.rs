//! Crashes while clients write: exactly the committed data survives with
//! `synchronous_commit = on`; with it off, the commits of the last WAL writer round are
//! lost, and only those. A crash is the node's death however it comes: the `crash` verb
//! and a plain `node.kill()` trace the same run.

mod sql_support;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use sim_models::sql::{
    Config, CrashEvent, IsolationLevel, Row, SqlServer, Statement, StmtEvent, ToSql,
};
use sim_runtime::time::{self, sleep, sleep_until, Duration, Instant};
use sim_runtime::trace::{self, Capture};
use sim_runtime::{spawn, Sim};
use sql_support::{config, db, pool, start};

fn ids(rows: &[Row]) -> BTreeSet<i64> {
    rows.iter()
        .map(|r| r.get::<_, i64>("id").unwrap())
        .collect()
}

/// The text writers insert appointments with.
const INSERT_APPOINTMENT: &str =
    "INSERT INTO appointments (id, doctor, slot, patient) VALUES ($1, $2, $3, $4)";

/// Ids of appointments whose INSERT the server reported committed (the event is emitted
/// after the implicit commit, in the same step; it carries the planned statement, its
/// parameters bound into the row).
fn committed_inserts(stmts: &Capture<StmtEvent>) -> BTreeSet<i64> {
    stmts
        .events()
        .iter()
        .filter(|c| c.event.is_ok())
        .filter_map(|c| match &c.event.stmt {
            Statement::Insert(i) if i.table == "appointments" => {
                i.rows.first().and_then(|r| r.get::<_, i64>("id").ok())
            }
            _ => None,
        })
        .collect()
}

#[sim_runtime::test(seeds = 12)]
async fn a_crash_keeps_exactly_the_committed_data() {
    let (server, pool) = db().await;
    let stmts = trace::capture::<StmtEvent>();
    let acked = Rc::new(RefCell::new(BTreeSet::new()));
    // Writers inserting appointments one statement (one transaction) at a time.
    for w in 0..3i64 {
        let (pool, acked) = (pool.clone(), acked.clone());
        spawn(async move {
            for i in 0..100i64 {
                let id = w * 1000 + i;
                let Ok(mut c) = pool.acquire().await else {
                    return;
                };
                let params: [&dyn ToSql; 4] = [&id, &"house", &id, &"p"];
                if c.execute(INSERT_APPOINTMENT, &params).await.is_err() {
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
            tx.execute(
                "INSERT INTO bookings (id, doctor, slot, patient) VALUES ($1, $2, $3, $4)",
                &[&1_i64, &"house", &1_i64, &"q"],
            )
            .await
            .unwrap();
            sleep(Duration::from_secs(3600)).await;
        })
    };
    let crash_at = 40 + sim_runtime::with_rng(|r| r.below(60));
    sleep(Duration::from_millis(crash_at)).await;
    server.crash();
    let committed = committed_inserts(&stmts);
    let acked = acked.borrow().clone();
    holder.abort();
    sleep(Duration::from_millis(500)).await;
    server.restart();
    server.ready().await;
    let mut c = pool.acquire().await.unwrap();
    let survivors = ids(&c.query("SELECT id FROM appointments", &[]).await.unwrap());
    assert!(!committed.is_empty(), "nothing committed before the crash");
    assert_eq!(survivors, committed, "exactly the committed rows");
    assert!(
        acked.is_subset(&survivors),
        "an acknowledged commit was lost"
    );
    let balance: i64 = c
        .query_one("SELECT balance FROM accounts WHERE id = $1", &[&1_i64])
        .await
        .unwrap()
        .get("balance")
        .unwrap();
    assert_eq!(balance, 100, "uncommitted update survived");
    assert!(
        c.query_opt("SELECT * FROM bookings WHERE id = $1", &[&1_i64])
            .await
            .unwrap()
            .is_none(),
        "uncommitted insert survived"
    );
}

#[sim_runtime::test(seeds = 12)]
async fn asynchronous_commit_loses_only_the_last_wal_writer_round() {
    let wal_writer_delay = Duration::from_millis(200);
    // WAL writer rounds start with the node.
    let node_start = time::now();
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
                let params: [&dyn ToSql; 4] = [&id, &"house", &id, &"p"];
                if c.execute(INSERT_APPOINTMENT, &params).await.is_err() {
                    return;
                }
                acked.borrow_mut().push((id, time::now()));
                sleep(Duration::from_millis(10)).await;
            }
        })
        .detach();
    }
    // Between 50 and 150 ms into a WAL writer round (they start with the node), so that
    // several acknowledged commits wait for their flush. Timed from the node's start, not
    // from the end of the fixture's schema and seeding.
    let crash_after = 850 + sim_runtime::with_rng(|r| r.below(100));
    sleep_until(node_start + Duration::from_millis(crash_after)).await;
    let crash_at = time::now();
    server.crash();
    let lost = server.last_crash().unwrap().lost_commits.len();
    let acked = acked.borrow().clone();
    server.restart();
    server.ready().await;
    let mut c = pool.acquire().await.unwrap();
    let survivors = ids(&c
        .query("SELECT id FROM appointments WHERE slot >= $1", &[&0_i64])
        .await
        .unwrap());
    let acked_ids: BTreeSet<i64> = acked.iter().map(|(id, _)| *id).collect();
    let missing: Vec<&(i64, Instant)> = acked
        .iter()
        .filter(|(id, _)| !survivors.contains(id))
        .collect();
    assert!(!missing.is_empty(), "acknowledged commits were lost");
    // The server may also have lost a commit whose reply was still on the wire.
    assert!(
        lost == missing.len() || lost == missing.len() + 1,
        "lost {lost}, missing {}",
        missing.len()
    );
    for (id, at) in &missing {
        assert!(
            crash_at.duration_since(*at) <= wal_writer_delay,
            "id {id} acknowledged at {at} was lost by the crash at {crash_at}"
        );
    }
    // What survived is a prefix of what was acknowledged (commit order).
    assert!(survivors.is_subset(&acked_ids));
    let first_missing = missing[0].0;
    assert!(survivors.iter().all(|id| *id < first_missing));
}

/// How a test takes the server down and up again.
#[derive(Clone, Copy, Debug)]
enum Verbs {
    /// The handle's `crash` and `restart`.
    Handle,
    /// The node's lifecycle, as a fault schedule drives it.
    Node,
}

/// Writers and an open transaction meet a crash and a restart, taken with `verbs`; the
/// run's crash events and what survived.
async fn crash_and_restart(verbs: Verbs) -> (Vec<CrashEvent>, Vec<Row>) {
    let crashes = trace::capture::<CrashEvent>();
    // WAL writer rounds start with the node.
    let node_start = time::now();
    let server: SqlServer = start(Config {
        synchronous_commit: false,
        ..config()
    })
    .await;
    let pool = pool(&server);
    for w in 0..3i64 {
        let pool = pool.clone();
        spawn(async move {
            for i in 0..100i64 {
                let Ok(mut c) = pool.acquire().await else {
                    return;
                };
                let params: [&dyn ToSql; 4] = [&(w * 1000 + i), &"house", &i, &"p"];
                if c.execute(INSERT_APPOINTMENT, &params).await.is_err() {
                    return;
                }
            }
        })
        .detach();
    }
    // A transaction open at the crash.
    {
        let pool = pool.clone();
        spawn(async move {
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
            sleep(Duration::from_secs(3600)).await;
        })
        .detach();
    }
    // Before the first WAL writer round (200 ms after the node's start): the commits so far
    // are not durable.
    sleep_until(node_start + Duration::from_millis(150)).await;
    match verbs {
        Verbs::Handle => server.crash(),
        Verbs::Node => server.node().kill(),
    }
    sleep(Duration::from_millis(100)).await;
    match verbs {
        Verbs::Handle => server.restart(),
        Verbs::Node => server.node().restart(),
    }
    server.ready().await;
    (
        crashes.values(),
        server.committed_rows("appointments").unwrap(),
    )
}

#[test]
fn the_crash_verb_is_the_nodes_death_and_traces_the_same() {
    let run = |seed, verbs| {
        let r = Sim::new(seed).run(move || crash_and_restart(verbs));
        assert!(r.report.is_pass(), "{}", r.report);
        (
            r.output.expect("a passing run has an output"),
            r.report.fingerprint,
        )
    };
    for seed in [1, 2, 0x5eed] {
        let ((by_verb, rows), print) = run(seed, Verbs::Handle);
        let ((by_node, node_rows), node_print) = run(seed, Verbs::Node);
        assert_eq!(print, node_print, "seed {seed}: the traces differ");
        assert_eq!(by_verb, by_node, "seed {seed}");
        assert_eq!(rows, node_rows, "seed {seed}");
        // One crash event for the one death, reporting what it took away.
        assert_eq!(by_verb.len(), 1, "seed {seed}: {by_verb:?}");
        let crash = &by_verb[0];
        assert_eq!(crash.server, "db");
        assert!(
            !crash.rolled_back.is_empty() && !crash.lost_commits.is_empty(),
            "seed {seed}: the crash met running transactions and unflushed commits: {crash:?}"
        );
    }
}
