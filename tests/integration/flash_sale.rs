//! The flash sale end to end: every buggy variant is found by exploration within a stated
//! bound, found seeds replay to the same fingerprint, the correct variant survives the
//! whole fault matrix and generated schedules, shrinking finds the one fault that matters,
//! and snapshots pin the report and a shrunk schedule.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as PropConfig, TestRunner};
use scenarios::explore::{explore, SeedSpace};
use scenarios::flash_sale::faults::{self, FlashFault};
use scenarios::flash_sale::{FlashSale, Variant};
use scenarios::scenario::{FaultChoice, RunSpec, Scenario};
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

fn spec(variant: Variant, fault: FaultChoice, seed: u64) -> RunSpec {
    RunSpec {
        seed,
        variant: variant.name().to_string(),
        fault,
        params: serde_json::Value::Null,
    }
}

/// The invariant each buggy variant breaks, and the faults under which to look for it.
fn expectations() -> Vec<(Variant, &'static str, FaultChoice)> {
    vec![
        (
            Variant::CheckThenDecrement,
            "no_oversell",
            FaultChoice::Swarm,
        ),
        (
            Variant::CommitBeforeWrite,
            "no_lost_ack",
            FaultChoice::Swarm,
        ),
        (Variant::NoIdempotency, "no_duplicate", FaultChoice::Swarm),
        (
            Variant::KafkaDownNoCompensation,
            "conservation",
            FaultChoice::Swarm,
        ),
    ]
}

#[test]
fn buggy_variants_are_found_within_the_bound_and_replay_exactly() {
    for (variant, checker, fault) in expectations() {
        let template = spec(variant, fault.clone(), 0);
        let space = SeedSpace {
            base: 0x5eed,
            count: FIND_BOUND,
            shard: (0, 1),
        };
        let found = explore(&FlashSale, &template, &space, 2, false, |_| {}).expect("valid spec");
        let (index, out) = found.failures.first().unwrap_or_else(|| {
            panic!(
                "{} was not caught within {FIND_BOUND} seeds",
                variant.name()
            )
        });
        assert!(
            out.verdicts.iter().any(|v| !v.ok && v.checker == checker),
            "{} failed, but not {checker}: {:?} (seed index {index})",
            variant.name(),
            out.failure_summary()
        );
        // Replay: the same seed gives the same fingerprint and the same verdicts.
        let again = FlashSale.run(&out.spec).expect("valid spec");
        assert_eq!(
            again.report.fingerprint,
            out.report.fingerprint,
            "{} seed {:#x}",
            variant.name(),
            out.spec.seed
        );
        assert_eq!(again.verdicts, out.verdicts);
    }
}

#[test]
fn the_correct_variant_passes_every_fault_matrix_entry() {
    for (info, _) in faults::matrix() {
        for seed in 0..ci_seeds() {
            let out = FlashSale
                .run(&spec(
                    Variant::Correct,
                    FaultChoice::Named(info.name.to_string()),
                    seed,
                ))
                .unwrap();
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
            let json = serde_json::to_value(&schedule).unwrap();
            let out = FlashSale
                .run(&spec(Variant::Correct, FaultChoice::Schedule(json), seed))
                .unwrap();
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
        let json = serde_json::to_value(&schedule).unwrap();
        let out = FlashSale
            .run(&spec(
                Variant::CommitBeforeWrite,
                FaultChoice::Schedule(json),
                seed,
            ))
            .unwrap();
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
    let json = serde_json::to_value(&schedule).unwrap();
    let (shrunk, out) = FlashSale
        .shrink(&spec(
            Variant::CommitBeforeWrite,
            FaultChoice::Schedule(json),
            seed,
        ))
        .unwrap()
        .unwrap();
    let shrunk: FaultSchedule<FlashFault> = serde_json::from_value(shrunk).unwrap();
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
    let report = FlashSale.report(1, &serde_json::Value::Null).unwrap();
    insta::assert_snapshot!("flash_sale_report_seed_1", report.to_markdown());
}
