//! The Elle-style checker: hand-written histories, one per anomaly, that it rejects with
//! the right witness, and good ones it accepts; then the list-append workload against the
//! SQL model at each isolation level, where the checker finds the anomalies the level
//! allows and none it forbids, and catches a planted fault in the model's snapshots.

use sim_models::check::elle::{self, AnomalyKind, History, ListAppend, Op, Outcome, Report};
use sim_models::sql::{self, IsolationLevel, Pool, PoolConfig};
use sim_runtime::time::{sleep, Duration};
use sim_runtime::Sim;

fn append(key: u64, element: u64) -> Op {
    Op::Append { key, element }
}

fn read(key: u64, list: &[u64]) -> Op {
    Op::Read {
        key,
        list: Some(list.to_vec()),
    }
}

/// A history of committed transactions (client = position).
fn committed(txns: Vec<Vec<Op>>) -> History {
    let mut h = History::new();
    for (client, ops) in txns.into_iter().enumerate() {
        h.push(client, ops, Outcome::Committed);
    }
    h
}

/// The anomalies of `report` of `kind`, as text.
fn witnesses(report: &Report, kind: AnomalyKind) -> Vec<String> {
    report.of(kind).map(ToString::to_string).collect()
}

#[test]
fn a_serial_history_is_valid() {
    let h = committed(vec![
        vec![append(0, 1), append(1, 2)],
        vec![read(0, &[1]), append(0, 3), read(1, &[2])],
        vec![read(0, &[1, 3]), read(1, &[2]), append(1, 4)],
        vec![read(1, &[2, 4]), read(0, &[1, 3])],
    ]);
    let report = elle::check(&h);
    assert!(report.is_valid(), "{report}");
    assert_eq!(report.txns, 4);
    assert!(report.edges > 0);
}

#[test]
fn a_transaction_of_unknown_outcome_that_was_read_counts_as_committed() {
    let mut h = History::new();
    h.push(0, vec![append(0, 1)], Outcome::Unknown);
    h.push(1, vec![append(0, 2)], Outcome::Unknown);
    h.push(2, vec![read(0, &[1])], Outcome::Committed);
    // An aborted transaction's reads prove nothing, even impossible ones.
    h.push(3, vec![read(0, &[2, 1])], Outcome::Aborted);
    let report = elle::check(&h);
    assert!(report.is_valid(), "{report}");
    assert_eq!(report.txns, 2, "T0 (read) and T2; not T1 nor T3");
}

#[test]
fn g0_dirty_writes_in_opposite_orders_on_two_keys() {
    let h = committed(vec![
        vec![append(0, 1), append(1, 2)],
        vec![append(0, 3), append(1, 4)],
        vec![read(0, &[1, 3]), read(1, &[4, 2])],
    ]);
    let report = elle::check(&h);
    assert!(report.has(AnomalyKind::G0), "{report}");
    let w = witnesses(&report, AnomalyKind::G0);
    assert!(
        w[0].starts_with("G0: the cycle T0 -ww(0)-> T1 -ww(1)-> T0"),
        "{w:?}"
    );
    assert!(
        w[0].contains("T1 appended 3 to key 0 right after T0's append")
            && w[0].contains("T0 appended 2 to key 1 right after T1's append"),
        "{w:?}"
    );
}

#[test]
fn g1a_a_read_of_an_aborted_append() {
    let mut h = History::new();
    h.push(0, vec![append(0, 1)], Outcome::Aborted);
    h.push(1, vec![read(0, &[1])], Outcome::Committed);
    let report = elle::check(&h);
    assert_eq!(
        witnesses(&report, AnomalyKind::G1a),
        ["G1a: T1 committed having read 1 in key 0, appended by T0, which aborted"],
        "{report}"
    );
}

#[test]
fn g1b_a_read_of_an_intermediate_state() {
    let h = committed(vec![
        vec![append(0, 1), append(0, 2)],
        vec![read(0, &[1])],
        vec![read(0, &[1, 2])],
    ]);
    let report = elle::check(&h);
    assert_eq!(
        witnesses(&report, AnomalyKind::G1b),
        ["G1b: T1 read key 0 up to 1, an intermediate state of T0, which went on to append 2"],
        "{report}"
    );
    // T1 read between T0's two appends, so the graph has T0 -wr-> T1 -rw-> T0 as well.
    assert!(report.has(AnomalyKind::GSingle), "{report}");
}

#[test]
fn g1c_each_reads_the_others_append() {
    let h = committed(vec![
        vec![append(0, 1), read(1, &[2])],
        vec![append(1, 2), read(0, &[1])],
    ]);
    let report = elle::check(&h);
    assert!(report.has(AnomalyKind::G1c), "{report}");
    assert!(!report.has(AnomalyKind::G0), "{report}");
    let w = witnesses(&report, AnomalyKind::G1c);
    assert!(w[0].contains("T0 -wr(0)-> T1 -wr(1)-> T0"), "{w:?}");
}

#[test]
fn g_single_read_skew() {
    // T0 reads key 0 before T1's append and key 1 after it.
    let h = committed(vec![
        vec![read(0, &[]), read(1, &[2])],
        vec![append(0, 1), append(1, 2)],
        vec![read(0, &[1])],
    ]);
    let report = elle::check(&h);
    assert_eq!(
        report.kinds().into_iter().collect::<Vec<_>>(),
        [AnomalyKind::GSingle],
        "{report}"
    );
    insta::assert_snapshot!("g_single_report", report.to_string());
}

#[test]
fn g2_item_write_skew_is_not_g_single() {
    let h = committed(vec![
        vec![read(0, &[]), read(1, &[]), append(0, 1)],
        vec![read(0, &[]), read(1, &[]), append(1, 2)],
        vec![read(0, &[1]), read(1, &[2])],
    ]);
    let report = elle::check(&h);
    assert_eq!(
        report.kinds().into_iter().collect::<Vec<_>>(),
        [AnomalyKind::G2Item],
        "{report}"
    );
    let w = witnesses(&report, AnomalyKind::G2Item);
    assert!(
        w[0].contains("T0 -rw(1)-> T1 -rw(0)-> T0")
            && w[0].contains("T0 read key 1 without 2, which T1 appended next"),
        "{w:?}"
    );
}

#[test]
fn lost_update_two_appends_after_reading_the_same_version() {
    let h = committed(vec![
        vec![read(0, &[]), append(0, 1)],
        vec![read(0, &[]), append(0, 2)],
        vec![read(0, &[1, 2])],
    ]);
    let report = elle::check(&h);
    assert_eq!(
        witnesses(&report, AnomalyKind::LostUpdate),
        ["lost-update: on key 0, read as [] by T0 (then appended 1), T1 (then appended 2), all committed"],
        "{report}"
    );
    // The same interleaving is a cycle too: T0 -ww-> T1 -rw-> T0.
    assert!(report.has(AnomalyKind::GSingle), "{report}");
}

#[test]
fn reads_no_version_order_explains() {
    let h = committed(vec![
        vec![append(0, 1)],
        vec![append(0, 2)],
        vec![read(0, &[1, 2])],
        vec![read(0, &[2, 1])],
        vec![read(1, &[9])],
    ]);
    let report = elle::check(&h);
    assert!(report.has(AnomalyKind::IncompatibleOrder), "{report}");
    assert_eq!(
        witnesses(&report, AnomalyKind::GarbageRead),
        ["garbage-read: T4 read 9 in key 1, which no transaction appended"]
    );
}

#[test]
fn internal_a_read_that_misses_the_transactions_own_append() {
    let h = committed(vec![
        vec![append(0, 1)],
        vec![read(0, &[1]), append(0, 2), read(0, &[1])],
        vec![read(0, &[1, 2]), read(0, &[])],
    ]);
    let report = elle::check(&h);
    assert_eq!(
        witnesses(&report, AnomalyKind::Internal),
        [
            "internal: T1 read key 0 as [1], but its own earlier operations make it [1] ... [2]",
            "internal: T2 read key 0 as [], but its own earlier operations make it [1 2] ... []",
        ],
        "{report}"
    );
}

/// Checking is fast enough to run on every seed: a long history of many overlapping
/// transactions (a few thousand) is checked well within a debug test's budget; the
/// figure itself is measured in release, not here.
#[test]
fn a_long_serial_history_is_valid() {
    let mut h = History::new();
    let mut lists = vec![Vec::new(); 10];
    for i in 0..5000u64 {
        let key = (i * 7) % 10;
        let e = i + 1;
        let before = lists[key as usize].clone();
        lists[key as usize].push(e);
        h.push(
            (i % 10) as usize,
            vec![
                read(key, &before),
                append(key, e),
                read((key + 3) % 10, &lists[((key + 3) % 10) as usize]),
            ],
            Outcome::Committed,
        );
    }
    let report = elle::check(&h);
    assert!(report.is_valid(), "{report}");
    assert_eq!(report.txns, 5000);
}

// ----- The workload against the SQL model -----

/// One run of the list-append workload at `isolation`, and its trace fingerprint.
fn run(seed: u64, isolation: IsolationLevel, late_snapshot: bool) -> (History, u64) {
    let r = Sim::new(seed).run(move || async move {
        let config = sql::Config {
            test_fault_late_snapshot: late_snapshot,
            ..sql::Config::default()
        };
        let db = sql::start("db", config);
        db.ready().await;
        let pool = Pool::new(db.addr(), PoolConfig::default());
        let workload = ListAppend::default().isolation(isolation);
        workload.setup(&pool).await.expect("setup");
        workload.run(&pool).await
    });
    assert!(r.report.is_pass(), "seed {seed}: {}", r.report);
    (
        r.output.expect("a pass has an output"),
        r.report.fingerprint,
    )
}

const SEEDS: std::ops::RangeInclusive<u64> = 1..=8;

/// The kinds found per seed, after checking that none of `forbidden` ever shows.
fn kinds_over_seeds(
    isolation: IsolationLevel,
    late_snapshot: bool,
    forbidden: &[AnomalyKind],
) -> Vec<std::collections::BTreeSet<AnomalyKind>> {
    SEEDS
        .map(|seed| {
            let (h, _) = run(seed, isolation, late_snapshot);
            let (ok, _, _) = h.outcome_counts();
            assert!(ok > 100, "seed {seed}: only {ok} commits");
            let report = elle::check(&h);
            println!(
                "{isolation} seed {seed}: {:?} {:?}",
                h.outcome_counts(),
                report.kinds()
            );
            for k in forbidden {
                assert!(
                    !report.has(*k),
                    "{isolation} seed {seed} shows {k}:\n{report}"
                );
            }
            report.kinds()
        })
        .collect()
}

const NEVER: [AnomalyKind; 7] = [
    AnomalyKind::IncompatibleOrder,
    AnomalyKind::GarbageRead,
    AnomalyKind::Internal,
    AnomalyKind::G0,
    AnomalyKind::G1a,
    AnomalyKind::G1b,
    AnomalyKind::G1c,
];

#[test]
fn read_committed_shows_read_skew_and_lost_updates_and_nothing_worse_than_g_single() {
    let found = kinds_over_seeds(IsolationLevel::ReadCommitted, false, &NEVER);
    for kind in [AnomalyKind::GSingle, AnomalyKind::LostUpdate] {
        let seeds = found.iter().filter(|k| k.contains(&kind)).count();
        assert!(seeds > 0, "{kind} never found over seeds {SEEDS:?}");
    }
}

#[test]
fn repeatable_read_shows_write_skew_but_not_g_single_nor_lost_updates() {
    let mut forbidden = NEVER.to_vec();
    forbidden.extend([AnomalyKind::GSingle, AnomalyKind::LostUpdate]);
    let found = kinds_over_seeds(IsolationLevel::RepeatableRead, false, &forbidden);
    let seeds = found
        .iter()
        .filter(|k| k.contains(&AnomalyKind::G2Item))
        .count();
    assert!(seeds > 0, "G2-item never found over seeds {SEEDS:?}");
}

#[test]
fn serializable_shows_no_anomaly() {
    for seed in 1..=24 {
        let (h, _) = run(seed, IsolationLevel::Serializable, false);
        let report = elle::check(&h);
        assert!(report.is_valid(), "seed {seed}:\n{report}");
    }
}

/// A crash in the middle: COMMITs whose answers are lost have an unknown outcome, and
/// the checker must not mistake them for anomalies.
#[test]
fn serializable_through_a_crash_shows_no_anomaly() {
    let mut unknown = 0;
    for seed in 1..=8 {
        let r = Sim::new(seed).run(|| async {
            let db = sql::start("db", sql::Config::default());
            db.ready().await;
            let pool = Pool::new(db.addr(), PoolConfig::default());
            let workload = ListAppend::default();
            workload.setup(&pool).await.expect("setup");
            let crash = {
                let db = db.clone();
                sim_runtime::spawn(async move {
                    sleep(Duration::from_millis(30)).await;
                    db.crash();
                    sleep(Duration::from_millis(2)).await;
                    db.restart();
                })
            };
            let history = workload.run(&pool).await;
            crash.await.unwrap();
            history
        });
        assert!(r.report.is_pass(), "seed {seed}: {}", r.report);
        let h = r.output.unwrap();
        let (ok, aborted, lost) = h.outcome_counts();
        println!("seed {seed}: {ok} committed, {aborted} aborted, {lost} unknown");
        unknown += lost;
        let report = elle::check(&h);
        assert!(report.is_valid(), "seed {seed}:\n{report}");
    }
    assert!(unknown > 0, "no COMMIT met the crash");
}

#[test]
fn a_snapshot_taken_too_late_is_caught() {
    let found = kinds_over_seeds(IsolationLevel::RepeatableRead, true, &[]);
    let seeds = found
        .iter()
        .filter(|k| k.contains(&AnomalyKind::GSingle))
        .count();
    assert!(seeds > 0, "the late snapshot's read skew went unnoticed");
    // The witness tells the cycle: one rw edge, closed by ww/wr edges.
    let (h, _) = run(1, IsolationLevel::RepeatableRead, true);
    let report = elle::check(&h);
    let w = witnesses(&report, AnomalyKind::GSingle);
    assert!(
        w[0].starts_with("G-single: the cycle T")
            && w[0].matches("-rw(").count() == 1
            && w[0].contains("which T"),
        "{w:?}"
    );
}

#[test]
fn same_seed_same_history() {
    for seed in [1, 2] {
        let (a, fa) = run(seed, IsolationLevel::RepeatableRead, false);
        let (b, fb) = run(seed, IsolationLevel::RepeatableRead, false);
        assert_eq!(fa, fb, "seed {seed}");
        assert_eq!(a, b, "seed {seed}");
        assert_eq!(elle::check(&a).to_string(), elle::check(&b).to_string());
    }
    assert_ne!(
        run(1, IsolationLevel::RepeatableRead, false).0,
        run(2, IsolationLevel::RepeatableRead, false).0
    );
}
