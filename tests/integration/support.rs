//! What the scenarios' end-to-end tests share: a fault-matrix entry by name, a buggy
//! variant found by exploration and its seed replayed, and the correct variant run across
//! the fault matrix and swarm schedules.

use std::sync::atomic::AtomicBool;

use scenarios::explore::SeedSpace;
use scenarios::scenario::{Faults, Plan, Scenario, ServiceVariant};

/// The fault-matrix entry named `fault` of scenario `S`.
pub fn named<S: Scenario>(fault: &str) -> Faults<S::Fault> {
    let correct = <S::Variant as ServiceVariant>::ALL[0];
    Plan::<S>::parse(correct.name(), fault)
        .expect("a fault-matrix entry")
        .faults
}

/// Explores the first `bound` seeds of `variant` under `faults` from the tests' base,
/// asserts the lowest failure breaks `checker`, and that its seed replays to the same
/// fingerprint and verdicts.
pub fn found_and_replayed<S: Scenario>(
    variant: S::Variant,
    checker: &str,
    faults: Faults<S::Fault>,
    bound: u64,
) {
    let plan = Plan::<S>::new(variant, faults);
    let space = SeedSpace {
        base: 0x5eed,
        count: bound,
        shard: (0, 1),
    };
    let found = plan.explore(&space, 2, false, &AtomicBool::new(false), |_, _| {});
    let (index, out) = found
        .lowest
        .as_ref()
        .unwrap_or_else(|| panic!("{} not caught in {bound} seeds", variant.name()));
    assert!(
        out.verdicts.iter().any(|v| !v.ok && v.checker == checker),
        "{} failed, but not {checker}: {:?} (seed index {index})",
        variant.name(),
        out.failure_summary()
    );
    let again = plan.run(out.seed());
    assert_eq!(
        again.report.fingerprint,
        out.report.fingerprint,
        "{} seed {:#x}",
        variant.name(),
        out.seed()
    );
    assert_eq!(again.verdicts, out.verdicts);
}

/// The correct variant passes every fault-matrix entry at seed 1 and swarm seeds
/// `0..swarm_seeds`.
pub fn correct_survives<S: Scenario>(swarm_seeds: u64) {
    let correct = <S::Variant as ServiceVariant>::ALL[0];
    for (info, _) in S::matrix() {
        let out = Plan::<S>::new(correct, named::<S>(info.name)).run(1);
        assert!(!out.failed(), "{}: {:?}", info.name, out.failure_summary());
    }
    let swarm = Plan::<S>::new(correct, Faults::Swarm);
    for seed in 0..swarm_seeds {
        let out = swarm.run(seed);
        assert!(
            !out.failed(),
            "swarm seed {seed}: {:?}",
            out.failure_summary()
        );
    }
}
