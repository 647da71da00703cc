//! Medistream end to end: each buggy variant is found by exploration within a stated
//! bound and its seed replays to the same fingerprint, the correct variant survives the
//! fault matrix and swarm schedules, a shrink keeps the fault that matters, the same seed
//! twice gives the same fingerprint, and a snapshot pins the confirmation jobs'
//! transitions when a worker is killed (seed 1).

use scenarios::medistream::faults::MediFault;
use scenarios::medistream::{faults, Medistream, Params, Variant};
use scenarios::scenario::{Faults, Plan};

use crate::support::{correct_survives, found_and_replayed, named};

/// Seeds each buggy variant gets before the test gives up (each is found within the
/// first few; the bound leaves room for changes in the models).
const FIND_BOUND: u64 = 32;

#[test]
fn buggy_variants_are_found_within_the_bound_and_replay_exactly() {
    for (variant, checker, faults) in [
        (Variant::PopThenCrashLosesJob, "no_job_lost", Faults::Swarm),
        (Variant::AuthAfterDb, "auth_before_work", Faults::Swarm),
        (
            Variant::RetryWithoutBackoff,
            "retries_bounded",
            Faults::Swarm,
        ),
        (
            Variant::SharedPoolForSignup,
            "booking_latency_in_flood",
            named::<Medistream>("signup_flood"),
        ),
    ] {
        found_and_replayed::<Medistream>(variant, checker, faults, FIND_BOUND);
    }
}

#[test]
fn the_correct_variant_passes_the_matrix_and_swarm_schedules() {
    correct_survives::<Medistream>(24);
}

#[test]
fn the_same_seed_twice_gives_the_same_fingerprint() {
    let plan = Plan::<Medistream>::new(Variant::Correct, Faults::Swarm);
    for seed in [1, 2, 3] {
        let (a, b) = (plan.run(seed), plan.run(seed));
        assert_eq!(a.report.fingerprint, b.report.fingerprint, "seed {seed}");
        assert_eq!(a.verdicts, b.verdicts);
    }
    assert_ne!(
        plan.run(1).report.fingerprint,
        plan.run(2).report.fingerprint
    );
}

#[test]
fn shrinking_a_lost_job_keeps_one_crash_or_outage() {
    let plan = Plan::<Medistream>::new(Variant::PopThenCrashLosesJob, Faults::Swarm);
    let seed = (0..64)
        .find(|&s| plan.run(s).failed())
        .expect("a failing swarm seed");
    let (schedule, out) = plan.shrink(seed).expect("the seed fails");
    assert!(
        out.verdicts
            .iter()
            .any(|v| !v.ok && v.checker == "no_job_lost"),
        "the shrunk schedule still loses a job: {:?}",
        out.failure_summary()
    );
    assert_eq!(schedule.faults.len(), 1, "{schedule:?}");
    // A popped job lives only in its worker until the acknowledgement: a crash, or Redis
    // gone when the worker reports back, loses it.
    assert!(
        matches!(
            schedule.faults[0].fault,
            MediFault::WorkerCrash { .. } | MediFault::RedisDown { .. }
        ),
        "only a crash or a lost acknowledgement loses a popped job: {schedule:?}"
    );
}

#[test]
fn the_confirmation_jobs_when_a_worker_is_killed() {
    let (_, schedule) = faults::matrix()
        .into_iter()
        .find(|(info, _)| info.name == "worker_crash")
        .expect("a fault-matrix entry");
    let (report, data) =
        scenarios::scenario::simulate_flow(1, Variant::Correct, Params::default(), schedule, None);
    assert!(report.is_pass(), "{}", report.outcome);
    let data = data.expect("a completed run");
    // Every job's transitions, in the order the workers made them.
    insta::assert_json_snapshot!("medistream_jobs_worker_crash_seed_1", data.jobs);
}
