//! The story backend end to end: each buggy variant is found by exploration within a
//! stated bound and its seed replays to the same fingerprint, the correct variant
//! survives the fault matrix and swarm schedules, the same seed twice gives the same
//! fingerprint, a shrink of a write-behind loss keeps the Redis crash, and a snapshot
//! pins the report (seed 1).

use scenarios::scenario::{Faults, Plan, Scenario};
use scenarios::story_backend::faults::StoryFault;
use scenarios::story_backend::{Options, StoryBackend, Variant};

use crate::support::{correct_survives, found_and_replayed, named, report_page_draws_its_plots};

/// Seeds each buggy variant gets before the test gives up (under the named faults each
/// fails at the first seed; swarm seeds found the retry storm within the first three
/// when written).
const FIND_BOUND: u64 = 32;

#[test]
fn buggy_variants_are_found_within_the_bound_and_replay_exactly() {
    for (variant, checker, faults) in [
        (
            Variant::NoPoolTimeout,
            "latency_bounded",
            named::<StoryBackend>("slow_queries"),
        ),
        (
            Variant::CacheFailClosed,
            "fails_open_without_redis",
            named::<StoryBackend>("redis_down"),
        ),
        (
            Variant::WriteBehindCache,
            "no_acked_write_lost",
            named::<StoryBackend>("redis_down"),
        ),
        (Variant::RetryStorm, "load_bounded", Faults::Swarm),
    ] {
        found_and_replayed::<StoryBackend>(variant, checker, faults, FIND_BOUND);
    }
}

#[test]
fn the_correct_variant_passes_the_matrix_and_swarm_schedules() {
    correct_survives::<StoryBackend>(32);
}

#[test]
fn the_same_seed_twice_gives_the_same_fingerprint() {
    let plan = Plan::<StoryBackend>::new(Variant::Correct, Faults::Swarm);
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
fn shrinking_a_write_behind_loss_keeps_the_redis_crash() {
    let plan = Plan::<StoryBackend>::new(Variant::WriteBehindCache, Faults::Swarm);
    let seed = (0..64)
        .find(|&s| {
            plan.run(s)
                .verdicts
                .iter()
                .any(|v| !v.ok && v.checker == "no_acked_write_lost")
        })
        .expect("a swarm seed that loses a write");
    let (schedule, out) = plan.shrink(seed).expect("the seed fails");
    assert!(
        out.verdicts
            .iter()
            .any(|v| !v.ok && v.checker == "no_acked_write_lost"),
        "the shrunk schedule still loses a write: {:?}",
        out.failure_summary()
    );
    // Parked writes live only in Redis until the flusher moves them: only Redis going
    // away loses them. A database outage may stay beside it (it keeps writes parked
    // longer); nothing else matters.
    assert!(
        schedule
            .faults
            .iter()
            .any(|f| matches!(f.fault, StoryFault::RedisDown { .. })),
        "only a Redis crash loses a parked write: {schedule:?}"
    );
    assert!(
        schedule.faults.iter().all(|f| matches!(
            f.fault,
            StoryFault::RedisDown { .. } | StoryFault::DbDown { .. }
        )),
        "{schedule:?}"
    );
    assert!(schedule.faults.len() <= 2, "{schedule:?}");
}

#[test]
fn the_report_of_seed_1() {
    let report = StoryBackend::report(1, &Options::default()).expect("every run completes");
    for section in &report.sections {
        assert!(!section.table.rows.is_empty(), "{}", section.heading);
    }
    let markdown = report.to_markdown();
    assert!(!markdown.contains("TBD"));
    insta::assert_snapshot!("story_backend_report_seed_1", markdown);
    // One plot per scenario, its buggy variant beside the correct one, with the database
    // load under the four request panels.
    assert_eq!(report.plots.len(), 6);
    let lines: Vec<usize> = report
        .plots
        .iter()
        .map(|p| p.panels[0].lines.len())
        .collect();
    assert_eq!(lines, [1, 3, 2, 2, 1, 1]);
    assert!(report.plots.iter().all(|p| p.panels.len() == 5));
    report_page_draws_its_plots(&report, "story_backend_report.html");
}
