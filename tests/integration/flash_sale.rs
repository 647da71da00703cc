//! The flash sale end to end: every buggy variant is found by exploration within a stated
//! bound, found seeds replay to the same fingerprint, the correct variant survives the
//! whole fault matrix and generated schedules, shrinking finds the one fault that matters,
//! and snapshots pin the report and a shrunk schedule.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as PropConfig, TestRunner};
use scenarios::flash_sale::faults::{self, FlashFault};
use scenarios::flash_sale::{FlashSale, Options, Variant};
use scenarios::scenario::{Faults, Plan, Scenario};

use crate::support::found_and_replayed;
use sim_runtime::schedule::{schedule_strategy, FaultSchedule};
use sim_runtime::time::Duration;

/// Seeds each buggy variant gets before the test gives up. Exploration finds each of them
/// far sooner (see `buggy_variants_are_found_within_the_bound` for the exact indices);
/// the bound leaves room for changes in the models without making the test slow.
const FIND_BOUND: u64 = 64;

/// Seeds per fault-matrix entry for the correct variant (`SIM_SEEDS` raises it).
fn ci_seeds() -> u64 {
    sim_runtime::harness::EnvSettings::from_env()
        .ok()
        .and_then(|e| e.seeds)
        .unwrap_or(3)
}

fn plan(variant: Variant, faults: Faults<FlashFault>) -> Plan<FlashSale> {
    Plan::new(variant, faults)
}

/// The invariant each buggy variant breaks, and the faults under which to look for it.
fn expectations() -> Vec<(Variant, &'static str, Faults<FlashFault>)> {
    vec![
        (Variant::CheckThenDecrement, "no_oversell", Faults::Swarm),
        (Variant::CommitBeforeWrite, "no_lost_ack", Faults::Swarm),
        (Variant::NoIdempotency, "no_duplicate", Faults::Swarm),
        (
            Variant::KafkaDownNoCompensation,
            "conservation",
            Faults::Swarm,
        ),
    ]
}

#[test]
fn buggy_variants_are_found_within_the_bound_and_replay_exactly() {
    for (variant, checker, faults) in expectations() {
        found_and_replayed::<FlashSale>(variant, checker, faults, FIND_BOUND);
    }
}

#[test]
fn the_correct_variant_passes_every_fault_matrix_entry() {
    for (info, schedule) in faults::matrix() {
        let plan = plan(
            Variant::Correct,
            Faults::Named {
                name: info.name,
                schedule,
            },
        );
        for seed in 0..ci_seeds() {
            let out = plan.run(seed);
            assert!(
                !out.failed(),
                "correct variant failed {} at seed {seed}: {:?}",
                info.name,
                out.failure_summary()
            );
        }
    }
}

fn fault_strategy() -> impl Strategy<Value = FlashFault> {
    prop_oneof![
        (100u64..20_000).prop_map(|down_ms| FlashFault::WorkerCrash { down_ms }),
        (1u64..600, 100u64..10_000).prop_map(|(e, f)| FlashFault::RedisLatency {
            extra_ms: e,
            for_ms: Some(f)
        }),
        (100u64..15_000).prop_map(|for_ms| FlashFault::KafkaDown { for_ms }),
        (100u64..15_000).prop_map(|for_ms| FlashFault::DbDown { for_ms }),
        (0u32..2, 100u64..10_000).prop_map(|(i, d)| FlashFault::ApiKill {
            instance: i,
            down_ms: Some(d)
        }),
        (100u64..8_000).prop_map(|for_ms| FlashFault::PartitionApiRedis { for_ms }),
    ]
}

#[test]
fn the_correct_variant_passes_generated_fault_schedules() {
    let cases = ci_seeds() as u32 * 4;
    let mut runner = TestRunner::new(PropConfig {
        cases,
        failure_persistence: None,
        ..PropConfig::default()
    });
    let strategy = (
        schedule_strategy(fault_strategy(), Duration::from_secs(30), 6),
        any::<u64>(),
    );
    runner
        .run(&strategy, |(schedule, seed)| {
            let out = plan(Variant::Correct, Faults::Schedule(schedule.clone())).run(seed);
            prop_assert!(
                !out.failed(),
                "{:?} under {}",
                out.failure_summary(),
                schedule
            );
            Ok(())
        })
        .unwrap();
}

/// A failing generated schedule of `commit_before_write`: many faults, one of which (a
/// worker crash) matters.
fn failing_commit_before_write() -> (u64, FaultSchedule<FlashFault>) {
    let mut runner = TestRunner::deterministic();
    let strategy = schedule_strategy(fault_strategy(), Duration::from_secs(30), 8);
    for seed in 0..200u64 {
        let schedule = strategy.new_tree(&mut runner).unwrap().current();
        if schedule.len() < 4
            || !schedule
                .iter()
                .any(|f| matches!(f.fault, FlashFault::WorkerCrash { .. }))
        {
            continue;
        }
        let out = plan(
            Variant::CommitBeforeWrite,
            Faults::Schedule(schedule.clone()),
        )
        .run(seed);
        if out
            .verdicts
            .iter()
            .any(|v| !v.ok && v.checker == "no_lost_ack")
        {
            return (seed, schedule);
        }
    }
    panic!("no failing schedule of commit_before_write among 200 generated ones");
}

#[test]
fn shrinking_commit_before_write_ends_with_the_single_worker_kill() {
    let (seed, schedule) = failing_commit_before_write();
    assert!(schedule.len() >= 4);
    let (shrunk, out) = plan(Variant::CommitBeforeWrite, Faults::Schedule(schedule))
        .shrink(seed)
        .expect("the schedule fails");
    assert_eq!(shrunk.len(), 1, "shrunk to {shrunk}");
    assert!(
        matches!(shrunk.faults[0].fault, FlashFault::WorkerCrash { .. }),
        "shrunk to {shrunk}"
    );
    assert!(out
        .verdicts
        .iter()
        .any(|v| !v.ok && v.checker == "no_lost_ack"));
    insta::assert_json_snapshot!(
        "shrunk_commit_before_write",
        serde_json::json!({"seed": seed, "schedule": shrunk})
    );
}

#[test]
fn report_snapshot_for_a_fixed_seed() {
    // The defaults: 1,000 users race for 100 items, as in the document.
    let report = FlashSale::report(1, &Options::default()).unwrap();
    insta::assert_snapshot!("flash_sale_report_seed_1", report.to_markdown());
}

#[test]
fn a_plan_run_twice_gives_the_same_fingerprint() {
    let options = Options {
        users: 150,
        items: 15,
        api_instances: 3,
        spawn_rate: Some(50.0),
    };
    let plan = plan(Variant::Correct, Faults::Swarm).with_options(options);
    for seed in [1, 0x5eed] {
        let (a, b) = (plan.run(seed), plan.run(seed));
        assert_eq!(a.report.fingerprint, b.report.fingerprint, "seed {seed:#x}");
        assert_eq!(a.verdicts, b.verdicts);
        assert_eq!(a.schedule, b.schedule);
    }
    // The options reach the run: a different sale size is a different run.
    let default = plan.clone().with_options(Options::default()).run(1);
    assert_ne!(default.report.fingerprint, plan.run(1).report.fingerprint);
}
