//! `sometimes!` and `always!`: counted per run in the run's own world, added up over a
//! sweep, declared at link time so that a probe no run reached is still listed, and an
//! `always!` that fails fails the seed with the probe's name.

use sim_runtime::harness::{EnvSettings, Harness};
use sim_runtime::probe::{self, ProbeKind, ProbeTally};
use sim_runtime::time::{sleep, Duration};
use sim_runtime::{always, sometimes, Sim};

/// A probe in code that nothing calls: it must be declared all the same.
#[allow(dead_code)]
mod unreachable {
    pub fn never_called() {
        sim_runtime::sometimes!("probes_test.never_reached", true);
    }
}

mod reached {
    use super::*;

    /// Holds in the runs whose seed is even; `always!` holds unless `break_always`.
    pub async fn body(break_always: bool) {
        let seed = sim_runtime::seed();
        for i in 0..3u64 {
            sleep(Duration::from_millis(1)).await;
            sometimes!("probes_test.even_seed", seed % 2 == 0);
            always!("probes_test.small_index", i < 3 && !break_always);
        }
    }
}

fn env(seeds: u64) -> EnvSettings {
    EnvSettings {
        seed: None,
        seeds: Some(seeds),
        base: Some(11),
        check_determinism: false,
        require_probes: false,
    }
}

#[test]
fn a_run_counts_its_own_probes_and_a_second_run_starts_from_zero() {
    let first = Sim::new(2).run(|| reached::body(false)).report;
    let even = first.probes.get("probes_test.even_seed").unwrap();
    assert_eq!(
        (even.runs, even.runs_held, even.evaluated, even.held),
        (1, 1, 3, 3)
    );
    // Same thread, next run: nothing of the first leaks into it.
    let second = Sim::new(3).run(|| reached::body(false)).report;
    let odd = second.probes.get("probes_test.even_seed").unwrap();
    assert_eq!(
        (odd.runs, odd.runs_held, odd.evaluated, odd.held),
        (1, 0, 3, 0)
    );
    assert!(second.is_clean());
    assert!(second.probes.get("probes_test.never_reached").is_none());
}

#[test]
fn outside_a_simulation_a_probe_counts_nowhere_and_does_not_panic() {
    sometimes!("probes_test.outside", true);
    let report = Sim::new(1).run(|| async {}).report;
    assert!(report.probes.is_empty());
}

#[test]
fn every_probe_is_declared_even_one_in_code_never_called() {
    let declared = probe::declared();
    let never = declared
        .iter()
        .find(|s| s.name == "probes_test.never_reached")
        .expect("declared at link time");
    assert_eq!(never.kind, ProbeKind::Sometimes);
    assert_eq!(never.module, "probes::unreachable");
    assert!(never.within(&["probes"]) && never.within(&["probes::unreachable"]));
    assert!(!never.within(&["probes::reached"]) && !never.within(&["probe"]));
    let always = declared
        .iter()
        .find(|s| s.name == "probes_test.small_index")
        .unwrap();
    assert_eq!(always.kind, ProbeKind::Always);
}

#[test]
fn a_sweep_adds_up_its_probes_and_lists_the_sometimes_that_never_held() {
    let body = || reached::body(false);
    let (ran, tally) = Harness::new("sim-runtime", "probes")
        .sweep(&env(8), &body)
        .unwrap();
    assert_eq!(ran, 8);
    let even = tally.get("probes_test.even_seed").unwrap();
    assert_eq!((even.runs, even.evaluated), (8, 24));
    assert!(even.runs_held > 0 && even.runs_held < 8, "{even:?}");
    // The reached module's probes all held somewhere; the planted one never ran.
    assert!(probe::unfired(&["probes::reached"], &tally).is_empty());
    let unfired = probe::unfired(&["probes"], &tally);
    let names: Vec<&str> = unfired.iter().map(|s| s.name).collect();
    // The crate's other never-counted probe is one evaluated outside any simulation.
    assert_eq!(names, ["probes_test.never_reached", "probes_test.outside"]);
    assert!(probe::list(&unfired).contains("sometimes!(probes_test.never_reached) at"));
    // A sweep in which no seed is even: the probe that needs one is listed.
    let odd_only = ProbeTally {
        probes: tally
            .probes
            .iter()
            .map(|(n, c)| {
                let mut c = c.clone();
                c.runs_held = 0;
                (*n, c)
            })
            .collect(),
    };
    let names: Vec<&str> = probe::unfired(&["probes::reached"], &odd_only)
        .iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["probes_test.even_seed"]);
}

#[test]
fn an_always_that_fails_fails_the_seed_with_its_name_and_place() {
    let report = Sim::new(5).run(|| reached::body(true)).report;
    assert!(report.is_pass(), "the run itself completes");
    assert!(!report.is_clean());
    let violations = report.probes.violations();
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].0, "always:probes_test.small_index");
    assert!(
        violations[0]
            .1
            .starts_with("always!(probes_test.small_index) did not hold 3 of 3 times, first at"),
        "{}",
        violations[0].1
    );
    assert!(
        violations[0].1.contains("on node main"),
        "{}",
        violations[0].1
    );
    let body = || reached::body(true);
    let failure = Harness::new("sim-runtime", "probes")
        .sweep(&env(2), &body)
        .unwrap_err();
    let text = failure.to_string();
    assert!(text.contains("always!(probes_test.small_index)"), "{text}");
    assert!(text.contains("replay with: SIM_SEED="), "{text}");
}

#[test]
fn probe_counts_are_the_same_for_the_same_seed() {
    let run = |seed| Sim::new(seed).run(|| reached::body(false)).report.probes;
    for seed in 0..4 {
        assert_eq!(run(seed), run(seed));
    }
}

#[test]
fn collect_adds_up_the_runs_on_its_thread_and_only_while_it_collects() {
    let ((), tally, runs) = probe::collect(|| {
        for seed in [2, 4, 5] {
            Sim::new(seed).run(|| reached::body(false));
        }
    });
    assert_eq!(runs, 3);
    let even = tally.get("probes_test.even_seed").unwrap();
    assert_eq!((even.runs, even.runs_held), (3, 2));
    // Outside `collect`, nothing is gathered: the next collection starts empty.
    Sim::new(6).run(|| reached::body(false));
    let ((), tally, runs) = probe::collect(|| ());
    assert_eq!((runs, tally.is_empty()), (0, true));
}
