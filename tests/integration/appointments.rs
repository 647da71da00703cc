//! The appointments backend end to end: each buggy variant is found by exploration within
//! a stated bound and its seed replays to the same fingerprint, the correct variant
//! survives the fault matrix and swarm schedules, a shrink keeps the fault that matters,
//! and a snapshot pins the breaker's transitions under the database failure.

use scenarios::appointments::faults::ApptFault;
use scenarios::appointments::{Appointments, Variant};
use scenarios::scenario::{Faults, Plan};

use crate::support::{correct_survives, found_and_replayed, named};

/// Seeds each buggy variant gets before the test gives up (each is found within the first
/// few; the bound leaves room for changes in the models).
const FIND_BOUND: u64 = 32;

#[test]
fn buggy_variants_are_found_within_the_bound_and_replay_exactly() {
    for (variant, checker, faults) in [
        (
            Variant::SelectThenInsert,
            "no_double_booking",
            Faults::Swarm,
        ),
        (
            Variant::BreakerStuckOpen,
            "recovers",
            named::<Appointments>("db_down"),
        ),
        (Variant::StaleCache, "fresh_lists", Faults::Swarm),
    ] {
        found_and_replayed::<Appointments>(variant, checker, faults, FIND_BOUND);
    }
}

#[test]
fn the_correct_variant_passes_the_matrix_and_swarm_schedules() {
    correct_survives::<Appointments>(24);
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
    let out = Plan::<Appointments>::new(Variant::Correct, named::<Appointments>("db_down")).run(1);
    let metrics = out.metrics.expect("a completed run");
    insta::assert_json_snapshot!("appointments_breaker_db_down_seed_1", metrics.breaker);
}
