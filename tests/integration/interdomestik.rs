//! Interdomestik end to end: each buggy variant is found by exploration within a stated
//! bound and its seed replays to the same fingerprint, the correct variant survives the
//! fault matrix and swarm schedules, a shrink keeps the fault that matters, the same seed
//! twice gives the same fingerprint, and a snapshot pins the report (seed 1).

use scenarios::interdomestik::faults::InterFault;
use scenarios::interdomestik::{Interdomestik, Options, Variant};
use scenarios::scenario::{Faults, Plan, Scenario};

use crate::support::{correct_survives, found_and_replayed, named, report_page_draws_its_plots};

/// Seeds each buggy variant gets before the test gives up (each was found within the
/// first 28 swarm seeds when written).
const FIND_BOUND: u64 = 64;

#[test]
fn buggy_variants_are_found_within_the_bound_and_replay_exactly() {
    for (variant, checker, faults) in [
        (
            Variant::InconsistentLockOrder,
            "deadlock_free",
            named::<Interdomestik>("none"),
        ),
        (
            Variant::TwoTransactions,
            "subscription_with_account",
            Faults::Swarm,
        ),
        (
            Variant::EmailInTransaction,
            "requests_isolated",
            named::<Interdomestik>("email_down"),
        ),
        (
            Variant::RateLimitRace,
            "rate_limit_held",
            named::<Interdomestik>("none"),
        ),
    ] {
        found_and_replayed::<Interdomestik>(variant, checker, faults, FIND_BOUND);
    }
}

#[test]
fn the_correct_variant_passes_the_matrix_and_swarm_schedules() {
    correct_survives::<Interdomestik>(48);
}

#[test]
fn shrinking_an_account_without_its_subscription_keeps_the_kill_or_outage_between() {
    let plan = Plan::<Interdomestik>::new(Variant::TwoTransactions, Faults::Swarm);
    let seed = (0..FIND_BOUND)
        .find(|&s| {
            plan.run(s)
                .verdicts
                .iter()
                .any(|v| !v.ok && v.checker == "subscription_with_account")
        })
        .expect("a swarm seed leaving an account without its subscription");
    let (schedule, out) = plan.shrink(seed).expect("the seed fails");
    assert!(
        out.verdicts
            .iter()
            .any(|v| !v.ok && v.checker == "subscription_with_account"),
        "the shrunk schedule still leaves an account bare: {:?}",
        out.failure_summary()
    );
    assert_eq!(schedule.faults.len(), 1, "{schedule:?}");
    // Only something that stops the second transaction after the first committed can
    // leave the account bare: the instance dying, or the database going away.
    assert!(
        matches!(
            schedule.faults[0].fault,
            InterFault::ApiKill { .. } | InterFault::DbDown { .. }
        ),
        "{schedule:?}"
    );
    // The document's crash: an instance killed mid-registration. Shrinking may shorten
    // the outage but keeps the kill.
    let plan =
        Plan::<Interdomestik>::new(Variant::TwoTransactions, named::<Interdomestik>("api_kill"));
    let seed = (0..FIND_BOUND)
        .find(|&s| plan.run(s).failed())
        .expect("a seed whose kill leaves an account bare");
    let (schedule, out) = plan.shrink(seed).expect("the seed fails");
    assert!(out.failed(), "{schedule:?}");
    assert_eq!(schedule.faults.len(), 1, "{schedule:?}");
    assert!(
        matches!(schedule.faults[0].fault, InterFault::ApiKill { .. }),
        "{schedule:?}"
    );
}

#[test]
fn the_same_seed_twice_gives_the_same_fingerprint() {
    let plan = Plan::<Interdomestik>::new(Variant::Correct, Faults::Swarm);
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
fn the_report_of_seed_1() {
    let report = Interdomestik::report(1, &Options::default()).expect("every run completes");
    for section in &report.sections {
        assert!(!section.table.rows.is_empty(), "{}", section.heading);
    }
    insta::assert_snapshot!("interdomestik_report_seed_1", report.to_markdown());
    // The slow database with both pools, then each stress scenario but `none`.
    let entries = scenarios::interdomestik::faults::matrix().len();
    assert_eq!(report.plots.len(), 1 + entries - 1);
    assert_eq!(
        report.plots[0].panels[0].lines.len(),
        3,
        "pool 10, 50, 50 with room"
    );
    report_page_draws_its_plots(&report, "interdomestik_report.html");
}
