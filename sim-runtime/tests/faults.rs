//! Faults as data (`FaultSchedule`), their proptest shrinking (with the `proptest`
//! feature), swarm testing and `buggify!()`.
//!
//! `Sim::new` by hand where a test compares runs or reads their reports, and for the
//! property that proptest shrinks (one fixed seed, so that only the schedule varies).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use sim_runtime::node;
use sim_runtime::schedule::ScheduleError;
use sim_runtime::time::{now, sleep, Duration, Instant};
use sim_runtime::{buggify, trace, FaultSchedule, ScheduledFault, Sim, Swarm};

/// A scenario's own fault type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Fault {
    Crash { node: u8 },
    Pause { node: u8, ms: u64 },
    Slow { ms: u64 },
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn at_ms(n: u64) -> Instant {
    Instant::from_nanos(n * 1_000_000)
}

#[test]
fn a_schedule_round_trips_through_json_and_stays_sorted() {
    let schedule = FaultSchedule::new()
        .at(ms(500), Fault::Pause { node: 1, ms: 200 })
        .at(ms(100), Fault::Crash { node: 0 })
        .at(ms(500), Fault::Slow { ms: 30 });
    assert_eq!(schedule.len(), 3);
    let times: Vec<u64> = schedule.iter().map(|f| f.at_ms).collect();
    assert_eq!(times, vec![100, 500, 500]);
    // Equal times keep insertion order.
    assert_eq!(schedule.faults[1].fault, Fault::Pause { node: 1, ms: 200 });
    let json = schedule.to_json();
    assert!(json.contains("\"at_ms\": 100"), "{json}");
    assert!(json.contains("Crash"), "{json}");
    let back: FaultSchedule<Fault> = FaultSchedule::from_json(&json).unwrap();
    assert_eq!(back, schedule);
    // A hand-edited file in any order is sorted on load.
    let edited = r#"{"faults":[{"at_ms":900,"fault":{"Slow":{"ms":5}}},
                                {"at_ms":20,"fault":{"Crash":{"node":2}}}]}"#;
    let loaded: FaultSchedule<Fault> = FaultSchedule::from_json(edited).unwrap();
    assert_eq!(
        loaded.faults,
        vec![
            ScheduledFault {
                at_ms: 20,
                fault: Fault::Crash { node: 2 }
            },
            ScheduledFault {
                at_ms: 900,
                fault: Fault::Slow { ms: 5 }
            },
        ]
    );
    assert_eq!(loaded.faults[0].at(), at_ms(20));
    assert_eq!(
        loaded.to_string(),
        "T+20ms Crash { node: 2 }; T+900ms Slow { ms: 5 }"
    );
    assert_eq!(FaultSchedule::<Fault>::new().to_string(), "(no faults)");
    let bad: Result<FaultSchedule<Fault>, ScheduleError> =
        FaultSchedule::from_json(r#"{"faults":[{"at_ms":1,"fault":"Meteor"}]}"#);
    assert!(bad
        .unwrap_err()
        .to_string()
        .contains("malformed fault schedule"));
}

#[sim_runtime::test]
async fn installed_faults_fire_at_their_virtual_times_even_while_a_window_is_open() {
    let schedule = FaultSchedule::new()
        .at(ms(10), Fault::Pause { node: 0, ms: 100 })
        .at(ms(50), Fault::Crash { node: 1 })
        .at(ms(50), Fault::Slow { ms: 1 })
        .at(ms(70), Fault::Crash { node: 0 });
    let fired = Rc::new(RefCell::new(Vec::new()));
    let nodes = [
        node::node("a").build(std::future::pending::<()>),
        node::node("b").build(std::future::pending::<()>),
    ];
    let injected = trace::capture::<ScheduledFault<Fault>>();
    let f = fired.clone();
    let h = schedule.install(move |fault: Fault| {
        let f = f.clone();
        async move {
            f.borrow_mut().push(now());
            match fault {
                Fault::Crash { node } => nodes[node as usize].kill(),
                Fault::Pause { node, ms: window } => {
                    // A windowed fault: its handler runs for the whole window.
                    nodes[node as usize].pause();
                    sleep(ms(window)).await;
                    nodes[node as usize].resume();
                }
                Fault::Slow { .. } => {}
            }
        }
    });
    h.await.unwrap();
    sleep(ms(200)).await;
    let fired_at = fired.borrow().clone();
    assert_eq!(fired_at, vec![at_ms(10), at_ms(50), at_ms(50), at_ms(70)]);
    let injected = injected.to_vec();
    assert_eq!(
        injected.iter().map(|c| c.time).collect::<Vec<_>>(),
        fired_at,
        "one fault.inject event per fault, on time"
    );
    assert_eq!(
        injected.into_iter().map(|c| c.event).collect::<Vec<_>>(),
        schedule.faults
    );
    assert_eq!(nodes.map(|n| n.is_alive()), [false, false]);
}

/// Shrinking schedules with proptest.
#[cfg(feature = "proptest")]
mod shrinking {
    use std::cell::RefCell;
    use std::rc::Rc;

    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};

    use sim_runtime::node::{self, Lifecycle};
    use sim_runtime::schedule::schedule_strategy;
    use sim_runtime::time::{now, sleep, sleep_until, Instant};
    use sim_runtime::{FaultSchedule, ScheduledFault, Sim};

    use super::{at_ms, ms, Fault};

    /// The service under test, with a planted bug: the database acknowledges a write at
    /// once but persists it 50 ms later, so a crash of the database (node 0) in that window
    /// loses an acknowledged write. Every other fault is harmless. Returns whether every
    /// acknowledged write survived.
    fn no_acknowledged_write_lost(schedule: &FaultSchedule<Fault>) -> bool {
        let schedule = schedule.clone();
        let result = Sim::new(1).run(move || async move {
            #[derive(Default)]
            struct Db {
                pending: Vec<(u32, Instant)>,
                durable: Vec<u32>,
                acked: Vec<u32>,
            }
            let db = Rc::new(RefCell::new(Db::default()));
            let d = db.clone();
            let database = node::node("db").build(move || {
                let d = d.clone();
                async move {
                    loop {
                        sleep(ms(10)).await;
                        let mut db = d.borrow_mut();
                        let due: Vec<u32> = db
                            .pending
                            .iter()
                            .filter(|(_, at)| now() - *at >= ms(50))
                            .map(|(v, _)| *v)
                            .collect();
                        db.pending.retain(|(v, _)| !due.contains(v));
                        db.durable.extend(due);
                    }
                }
            });
            let d = db.clone();
            node::on_lifecycle(move |id, change| {
                if id == database && change == Lifecycle::Killed {
                    d.borrow_mut().pending.clear(); // volatile state is gone
                }
            });
            let others = [
                database,
                node::node("cache").build(std::future::pending::<()>),
                node::node("api").build(std::future::pending::<()>),
            ];
            schedule
                .install(move |fault| async move {
                    match fault {
                        Fault::Crash { node } => others[node as usize].kill(),
                        Fault::Pause { node, ms: window } => {
                            let n = others[node as usize];
                            n.pause();
                            sleep(ms(window)).await;
                            n.resume();
                        }
                        Fault::Slow { .. } => {}
                    }
                })
                .detach();
            sleep_until(at_ms(300)).await;
            if database.is_alive() {
                let mut db = db.borrow_mut();
                db.pending.push((1, now()));
                db.acked.push(1);
            }
            sleep_until(at_ms(2_000)).await;
            let db = db.borrow();
            db.acked.iter().all(|v| db.durable.contains(v))
        });
        assert!(result.report.is_pass(), "{}", result.report);
        result.output.unwrap()
    }

    fn fault_strategy() -> impl Strategy<Value = Fault> {
        prop_oneof![
            (0..3u8).prop_map(|node| Fault::Crash { node }),
            (0..3u8, 1..500u64).prop_map(|(node, ms)| Fault::Pause { node, ms }),
            (1..500u64).prop_map(|ms| Fault::Slow { ms }),
        ]
    }

    #[test]
    fn proptest_shrinks_a_failing_schedule_of_many_faults_to_the_one_that_matters() {
        // A fixed proptest RNG: the test explores the same schedules on every run.
        let config = Config {
            cases: 512,
            failure_persistence: None,
            max_shrink_iters: 10_000,
            ..Config::default()
        };
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
        let mut runner = TestRunner::new_with_rng(config, rng);
        let strategy = schedule_strategy(fault_strategy(), ms(1_000), 24);
        let first_failure: RefCell<Option<FaultSchedule<Fault>>> = RefCell::new(None);
        let outcome = runner.run(&strategy, |schedule| {
            let ok = no_acknowledged_write_lost(&schedule);
            if !ok && first_failure.borrow().is_none() {
                *first_failure.borrow_mut() = Some(schedule.clone());
            }
            prop_assert!(ok, "an acknowledged write was lost under {}", schedule);
            Ok(())
        });
        let Err(TestError::Fail(reason, minimal)) = outcome else {
            panic!("the planted bug was not found: {outcome:?}");
        };
        let original = first_failure.into_inner().expect("a failing schedule");
        assert!(
            original.len() >= 5,
            "the first failing schedule had many faults: {original}"
        );
        // Shrunk to the single crash of the database, at the start of the window.
        assert_eq!(
            minimal.faults,
            vec![ScheduledFault {
                at_ms: 300,
                fault: Fault::Crash { node: 0 }
            }],
            "shrunk from {original}"
        );
        assert!(reason.to_string().contains("acknowledged write was lost"));
        // The shrunk schedule is printable and replays from its JSON.
        let replayed: FaultSchedule<Fault> = FaultSchedule::from_json(&minimal.to_json()).unwrap();
        assert!(!no_acknowledged_write_lost(&replayed));
    }

    #[test]
    fn schedule_strategies_respect_their_bounds() {
        let mut runner = TestRunner::deterministic();
        let strategy = schedule_strategy(fault_strategy(), ms(250), 6);
        for _ in 0..200 {
            let s = strategy.new_tree(&mut runner).unwrap().current();
            assert!(s.len() <= 6);
            assert!(s.iter().all(|f| f.at_ms < 250));
            assert!(s.faults.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        }
    }
}

#[test]
fn a_swarm_is_a_function_of_the_seed_and_prints_its_choices() {
    let kinds = ["crash", "pause", "partition", "slow"];
    let a = Swarm::from_seed(0x5eed, &kinds);
    assert_eq!(a, Swarm::from_seed(0x5eed, &kinds));
    assert_eq!(a.kinds.len(), 4);
    let text = a.to_string();
    assert!(text.starts_with("swarm["), "{text}");
    for k in kinds {
        assert!(text.contains(k), "{text}");
        match a.rate(k) {
            Some(p) => {
                assert!(a.is_on(k));
                assert!(text.contains(&format!("{k}={:.2}", p.get())), "{text}");
            }
            None => assert!(text.contains(&format!("{k}=off")), "{text}"),
        }
    }
    let json = serde_json::to_string(&a).unwrap();
    assert_eq!(serde_json::from_str::<Swarm>(&json).unwrap(), a);
    // Across seeds every kind is sometimes on and sometimes off, and at least one is on.
    let swarms: Vec<Swarm> = (0..64).map(|s| Swarm::from_seed(s, &kinds)).collect();
    for k in kinds {
        assert!(swarms.iter().any(|s| s.is_on(k)));
        assert!(swarms.iter().any(|s| !s.is_on(k)));
    }
    assert!(swarms.iter().all(|s| kinds.iter().any(|k| s.is_on(k))));
    assert!(!a.is_on("meteor"));
    // Generated schedules hold only the kinds that are on, and are reproducible.
    let swarm = swarms.iter().find(|s| !s.is_on("slow")).unwrap();
    let make = |kind: &str, rng: &mut sim_runtime::SimRng| match kind {
        "crash" => Fault::Crash {
            node: rng.below(3) as u8,
        },
        "pause" | "partition" => Fault::Pause {
            node: 0,
            ms: rng.range(1..100),
        },
        _ => Fault::Slow { ms: 1 },
    };
    let g1 = swarm.generate(9, Duration::from_secs(60), Duration::from_secs(5), make);
    let g2 = swarm.generate(9, Duration::from_secs(60), Duration::from_secs(5), make);
    assert_eq!(g1, g2);
    assert!(!g1.is_empty());
    assert!(g1.iter().all(|f| f.fault != Fault::Slow { ms: 1 }));
    assert!(g1.iter().all(|f| f.at_ms < 60_000));
}

/// Six distinct buggify sites, each called many times; returns how often each fired.
async fn exercise_buggify_sites() -> Vec<u32> {
    let mut fired = vec![0u32; 6];
    for _ in 0..200 {
        let calls = [
            buggify!(),
            buggify!(),
            buggify!(0.5),
            buggify!(),
            buggify!(0.9),
            buggify!(),
        ];
        for (count, hit) in fired.iter_mut().zip(calls) {
            *count += u32::from(hit);
        }
        sim_runtime::yield_now().await;
    }
    fired
}

#[test]
fn buggify_sites_are_enabled_per_seed_listed_in_the_report_and_deterministic() {
    let mut ever_enabled = BTreeSet::new();
    let mut ever_disabled = BTreeSet::new();
    for seed in 0..24 {
        let run = || Sim::new(seed).buggify(true).run(exercise_buggify_sites);
        let (a, b) = (run(), run());
        assert_eq!(a.output, b.output, "seed {seed}: buggify is deterministic");
        assert_eq!(a.report.buggify_sites, b.report.buggify_sites);
        assert_eq!(a.report.fingerprint, b.report.fingerprint);
        let fired = a.output.unwrap();
        let sites = &a.report.buggify_sites;
        // A site fires only when enabled, and an enabled site called 200 times fires.
        let firing = fired.iter().filter(|n| **n > 0).count();
        assert_eq!(firing, sites.len(), "seed {seed}: {fired:?} vs {sites:?}");
        for (i, n) in fired.iter().enumerate() {
            if *n > 0 {
                ever_enabled.insert(i);
                assert!(*n < 200 || i == 4, "seed {seed}: fires with a probability");
            } else {
                ever_disabled.insert(i);
            }
        }
        for s in sites {
            assert!(s.starts_with("sim-runtime/tests/faults.rs:"), "{s}");
        }
        if !sites.is_empty() {
            let mut failing = a.report.clone();
            failing.outcome = sim_runtime::Outcome::StepLimit { limit: 1 };
            assert!(failing.to_string().contains("buggify sites enabled"));
        }
    }
    assert_eq!(ever_enabled.len(), 6, "every site is enabled for some seed");
    assert_eq!(
        ever_disabled.len(),
        6,
        "every site is disabled for some seed"
    );
    // With buggify off (the default) no site fires and none is listed.
    let off = Sim::new(1).run(exercise_buggify_sites);
    assert_eq!(off.output, Some(vec![0; 6]));
    assert!(off.report.buggify_sites.is_empty());
    // Outside a simulation, never.
    assert!(!buggify!());
}
