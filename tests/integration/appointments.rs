//! The appointments backend end to end: each buggy variant is found by exploration within
//! a stated bound and its seed replays to the same fingerprint, the correct variant
//! survives the fault matrix and swarm schedules, a shrink keeps the fault that matters,
//! and a snapshot pins the breaker's transitions under the database failure.

use std::sync::atomic::AtomicBool;

use scenarios::appointments::faults::ApptFault;
use scenarios::appointments::{faults, Appointments, Variant};
use scenarios::explore::SeedSpace;
use scenarios::scenario::{Faults, Plan, ServiceVariant};

/// Seeds each buggy variant gets before the test gives up (each is found within the first
/// few; the bound leaves room for changes in the models).
const FIND_BOUND: u64 = 32;

fn named(fault: &str) -> Faults<ApptFault> {
    let (info, schedule) = faults::matrix()
        .into_iter()
        .find(|(info, _)| info.name == fault)
        .expect("a fault-matrix entry");
    Faults::Named {
        name: info.name,
        schedule,
    }
}

#[test]
fn buggy_variants_are_found_within_the_bound_and_replay_exactly() {
    for (variant, checker, faults) in [
        (
            Variant::SelectThenInsert,
            "no_double_booking",
            Faults::Swarm,
        ),
        (Variant::BreakerStuckOpen, "recovers", named("db_down")),
        (Variant::StaleCache, "fresh_lists", Faults::Swarm),
    ] {
        let plan = Plan::<Appointments>::new(variant, faults);
        let space = SeedSpace {
            base: 0x5eed,
            count: FIND_BOUND,
            shard: (0, 1),
        };
        let found = plan.explore(&space, 2, false, &AtomicBool::new(false), |_, _| {});
        let (index, out) = found
            .lowest
            .as_ref()
            .unwrap_or_else(|| panic!("{} not caught in {FIND_BOUND} seeds", variant.name()));
        assert!(
            out.verdicts.iter().any(|v| !v.ok && v.checker == checker),
            "{} failed, but not {checker}: {:?} (seed index {index})",
            variant.name(),
            out.failure_summary()
        );
        let again = plan.run(out.seed());
        assert_eq!(again.report.fingerprint, out.report.fingerprint);
        assert_eq!(again.verdicts, out.verdicts);
    }
}

#[test]
fn the_correct_variant_passes_the_matrix_and_swarm_schedules() {
    for (info, _) in faults::matrix() {
        let out = Plan::<Appointments>::new(Variant::Correct, named(info.name)).run(1);
        assert!(!out.failed(), "{}: {:?}", info.name, out.failure_summary());
    }
    let swarm = Plan::<Appointments>::new(Variant::Correct, Faults::Swarm);
    for seed in 0..24 {
        let out = swarm.run(seed);
        assert!(
            !out.failed(),
            "swarm seed {seed}: {:?}",
            out.failure_summary()
        );
    }
}

#[test]
fn shrinking_a_stuck_breaker_keeps_the_database_failure() {
    let plan = Plan::<Appointments>::new(Variant::BreakerStuckOpen, Faults::Swarm);
    let seed = (0..64)
        .find(|&s| plan.run(s).failed())
        .expect("a failing swarm seed");
    let (schedule, out) = plan.shrink(seed).expect("the seed fails");
    assert!(out.failed(), "the shrunk schedule still fails");
    assert!(
        schedule.iter().all(|f| matches!(
            f.fault,
            ApptFault::DbDown { .. }
                | ApptFault::PartitionApiDb { .. }
                | ApptFault::DbLatency { .. }
        )),
        "only database trouble can open the breaker: {schedule:?}"
    );
    assert!(schedule.faults.len() <= 2, "{schedule:?}");
}

#[test]
fn the_breakers_transitions_under_the_database_failure() {
    let out = Plan::<Appointments>::new(Variant::Correct, named("db_down")).run(1);
    let metrics = out.metrics.expect("a completed run");
    insta::assert_json_snapshot!("appointments_breaker_db_down_seed_1", metrics.breaker);
}
