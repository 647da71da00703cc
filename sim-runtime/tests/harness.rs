//! The seed harness: environment variables and their errors, the replay line, seed
//! sweeps, and the `#[sim_runtime::test]` attribute.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use sim_runtime::harness::{
    parse_seed, test_path, EnvError, EnvSettings, Harness, Sweep, SweepPosition, DEFAULT_SEEDS,
    DEFAULT_SEED_BASE,
};
use sim_runtime::time::{sleep, Duration};
use sim_runtime::{Outcome, Sim};

fn env(pairs: &[(&str, &str)]) -> Result<EnvSettings, EnvError> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    EnvSettings::parse(|k| map.get(k).cloned())
}

#[test]
fn good_values_parse() {
    let s = env(&[
        ("SIM_SEED", "0x5eed_1234"),
        ("SIM_SEEDS", " 250 "),
        ("SIM_SEED_BASE", "42"),
        ("SIM_CHECK_DETERMINISM", "1"),
    ])
    .unwrap();
    assert_eq!(s.seed, Some(0x5eed_1234));
    assert_eq!(s.seeds, Some(250));
    assert_eq!(s.base, Some(42));
    assert!(s.check_determinism);
    let empty = env(&[]).unwrap();
    assert_eq!(
        empty,
        EnvSettings {
            seed: None,
            seeds: None,
            base: None,
            check_determinism: false,
            require_probes: false
        }
    );
    // Empty values count as unset; the flag's spellings.
    assert_eq!(env(&[("SIM_SEED", "  ")]).unwrap().seed, None);
    for (v, on) in [("true", true), ("0", false), ("false", false), ("", false)] {
        assert_eq!(
            env(&[("SIM_CHECK_DETERMINISM", v)])
                .unwrap()
                .check_determinism,
            on
        );
    }
    assert_eq!(parse_seed("0XFF"), Some(255));
    assert_eq!(parse_seed("18446744073709551615"), Some(u64::MAX));
}

#[test]
fn each_bad_environment_value_gives_an_error_naming_its_variable() {
    let cases: &[(&str, &str, EnvError)] = &[
        (
            "SIM_SEED",
            "banana",
            EnvError::BadSeed {
                var: "SIM_SEED",
                value: "banana".into(),
            },
        ),
        (
            "SIM_SEED",
            "0xZZ",
            EnvError::BadSeed {
                var: "SIM_SEED",
                value: "0xZZ".into(),
            },
        ),
        (
            "SIM_SEED",
            "18446744073709551616",
            EnvError::BadSeed {
                var: "SIM_SEED",
                value: "18446744073709551616".into(),
            },
        ),
        (
            "SIM_SEED",
            "-1",
            EnvError::BadSeed {
                var: "SIM_SEED",
                value: "-1".into(),
            },
        ),
        (
            "SIM_SEED_BASE",
            "0x",
            EnvError::BadSeed {
                var: "SIM_SEED_BASE",
                value: "0x".into(),
            },
        ),
        (
            "SIM_SEEDS",
            "0",
            EnvError::BadCount {
                var: "SIM_SEEDS",
                value: "0".into(),
            },
        ),
        (
            "SIM_SEEDS",
            "ten",
            EnvError::BadCount {
                var: "SIM_SEEDS",
                value: "ten".into(),
            },
        ),
        (
            "SIM_SEEDS",
            "-5",
            EnvError::BadCount {
                var: "SIM_SEEDS",
                value: "-5".into(),
            },
        ),
        (
            "SIM_CHECK_DETERMINISM",
            "yes",
            EnvError::BadFlag {
                var: "SIM_CHECK_DETERMINISM",
                value: "yes".into(),
            },
        ),
    ];
    for (var, value, expected) in cases {
        let err = env(&[(var, value)]).expect_err("a bad value");
        assert_eq!(&err, expected, "{var}={value}");
        let message = err.to_string();
        assert!(message.contains(var), "{message}");
        assert!(message.contains(value), "{message}");
    }
    // One bad variable among good ones still fails, naming the bad one.
    let err = env(&[("SIM_SEED", "1"), ("SIM_SEEDS", "many")]).unwrap_err();
    assert!(err.to_string().starts_with("SIM_SEEDS="), "{err}");
    // A huge value is quoted in part, not echoed whole.
    let huge = "9".repeat(50_000_000);
    let message = env(&[("SIM_SEED", &huge)]).unwrap_err().to_string();
    assert!(message.len() < 600, "{} bytes", message.len());
    let quoted = format!(
        "{0}… ({1} bytes left out) …{0}",
        "9".repeat(200),
        50_000_000 - 400
    );
    assert!(message.contains(&quoted), "{message}");
}

#[test]
fn the_replay_line_names_the_package_and_the_test() {
    let h = Harness::new("scenarios", "flash_sale::worker_crash");
    assert_eq!(
        h.replay_line(0x5eed_1234),
        "SIM_SEED=0x5eed1234 cargo test -p scenarios flash_sale::worker_crash -- --exact --nocapture"
    );
    // `module_path!()` starts with the crate; cargo's test filter does not.
    assert_eq!(
        test_path("scenarios::flash_sale", "worker_crash"),
        "flash_sale::worker_crash"
    );
    assert_eq!(test_path("harness", "top_level"), "top_level");
}

#[test]
fn a_failing_seed_reports_a_replay_line_that_reproduces_it() {
    let h = Harness::new("sim-runtime", "harness::flaky");
    // Fails on roughly half the seeds.
    let body = || async {
        sleep(Duration::from_millis(1)).await;
        let bad = sim_runtime::rng("coin").below(2) == 0;
        assert!(!bad, "the coin came up bad");
    };
    let env = EnvSettings {
        seed: None,
        seeds: Some(32),
        base: Some(7),
        check_determinism: false,
        require_probes: false,
    };
    let failure = h.run_with(&env, &body).expect_err("some seed fails");
    let seed = failure.report.seed;
    assert!(matches!(failure.report.outcome, Outcome::Panic { .. }));
    let prefix = format!("SIM_SEED={seed:#x} ");
    assert!(failure.replay.starts_with(&prefix), "{}", failure.replay);
    assert!(failure
        .replay
        .ends_with("cargo test -p sim-runtime harness::flaky -- --exact --nocapture"));
    let text = failure.to_string();
    assert_eq!(
        text.matches(&failure.replay).count(),
        1,
        "printed once: {text}"
    );
    let position = failure.sweep.expect("a sweep's failure knows its place");
    assert_eq!(position.base, 7);
    assert_eq!(
        sim_runtime::rng::derive_seed(7, position.index),
        seed,
        "the index names the failing seed"
    );
    assert!(
        text.contains(&format!(
            "is seed {} of the sweep from SIM_SEED_BASE=0x7",
            position.index
        )),
        "{text}"
    );
    assert_eq!(
        failure.report.replay.as_deref(),
        Some(failure.replay.as_str())
    );
    // Pasting the line's SIM_SEED replays exactly that run.
    let value = failure.replay.split(' ').next().unwrap();
    let (var, seed_text) = value.split_once('=').unwrap();
    let replay_env = EnvSettings::parse(|k| (k == var).then(|| seed_text.to_string())).unwrap();
    assert_eq!(replay_env.sweep(DEFAULT_SEEDS), Sweep::Single(seed));
    let again = h
        .run_with(&replay_env, &body)
        .expect_err("replays the failure");
    assert_eq!(again.report.fingerprint, failure.report.fingerprint);
    assert_eq!(again.report.outcome, failure.report.outcome);
}

#[test]
fn a_test_returning_err_fails_with_its_error() {
    let h = Harness::new("sim-runtime", "returns_err");
    let body = || async { Err::<(), _>("checker found 2 oversold items") };
    let failure = h.run_seed(1, false, &body).expect_err("Err fails the seed");
    assert!(failure.report.is_pass(), "the run itself ended normally");
    let error = failure.error.as_deref().unwrap();
    assert!(error.contains("oversold"), "{error}");
}

#[test]
fn sweeps_derive_their_seeds_by_mixing_and_run_each_once() {
    let list: Vec<u64> = EnvSettings {
        seed: None,
        seeds: None,
        base: None,
        check_determinism: false,
        require_probes: false,
    }
    .sweep(DEFAULT_SEEDS)
    .seeds()
    .map(|(_, seed)| seed)
    .collect();
    assert_eq!(list.len() as u64, DEFAULT_SEEDS);
    assert_eq!(list[0], sim_runtime::rng::derive_seed(DEFAULT_SEED_BASE, 0));
    for pair in list.windows(2) {
        assert_ne!(pair[0].wrapping_add(1), pair[1], "seeds are not base + n");
    }
    let distinct: std::collections::BTreeSet<_> = list.iter().collect();
    assert_eq!(distinct.len(), list.len());

    let seen = RefCell::new(Vec::new());
    let body = || {
        seen.borrow_mut().push(sim_runtime::seed());
        async {}
    };
    let env = EnvSettings {
        seed: None,
        seeds: Some(5),
        base: Some(99),
        check_determinism: true,
        require_probes: false,
    };
    let ran = Harness::new("sim-runtime", "sweep")
        .run_with(&env, &body)
        .unwrap();
    assert_eq!(ran, 5);
    let expected: Vec<u64> = (0..5)
        .flat_map(|i| {
            let s = sim_runtime::rng::derive_seed(99, i);
            [s, s] // twice each: the determinism check reruns every seed
        })
        .collect();
    assert_eq!(*seen.borrow(), expected);
}

#[test]
fn the_largest_sweep_costs_nothing_before_its_first_seed() {
    // A sweep is walked, never built: SIM_SEEDS=u64::MAX once panicked building a list.
    let sweep = env(&[
        ("SIM_SEEDS", "18446744073709551615"),
        ("SIM_SEED_BASE", "3"),
    ])
    .unwrap()
    .sweep(DEFAULT_SEEDS);
    assert_eq!(sweep.len(), u64::MAX);
    let first: Vec<_> = sweep.seeds().take(2).collect();
    assert_eq!(
        first,
        (0..2)
            .map(|index| (
                Some(SweepPosition { index, base: 3 }),
                sim_runtime::rng::derive_seed(3, index)
            ))
            .collect::<Vec<_>>()
    );
}

thread_local! {
    static ATTRIBUTE_RUNS: Cell<u32> = const { Cell::new(0) };
}

/// The attribute as a user writes it: an async test body run under a sweep of seeds.
#[sim_runtime::test(seeds = 4)]
async fn the_test_attribute_runs_an_async_body_under_the_harness() {
    ATTRIBUTE_RUNS.with(|r| r.set(r.get() + 1));
    let h = sim_runtime::spawn(async {
        sleep(Duration::from_millis(5)).await;
        sim_runtime::seed()
    });
    let seed = h.await.unwrap();
    assert_eq!(seed, sim_runtime::seed());
    assert_eq!(sim_runtime::time::now().as_nanos(), 5_000_000);
}

#[sim_runtime::test(seeds = 2, time_limit_secs = 1)]
async fn the_test_attribute_accepts_a_result_body() -> Result<(), String> {
    sleep(Duration::from_millis(10)).await;
    Ok(())
}

#[test]
fn the_attribute_expansion_is_a_plain_test_function() {
    // Calling the generated function runs the sweep in this thread; without SIM_SEED
    // or SIM_SEEDS in the environment that is exactly the attribute's 4 seeds.
    let settings = EnvSettings::from_env().expect("the test environment parses");
    ATTRIBUTE_RUNS.with(|r| r.set(0));
    the_test_attribute_runs_an_async_body_under_the_harness();
    let runs = ATTRIBUTE_RUNS.with(Cell::get);
    let expected = match (settings.seed, settings.seeds) {
        (Some(_), _) => 1,
        (None, Some(n)) => n as u32,
        (None, None) => 4,
    } * if settings.check_determinism { 2 } else { 1 };
    assert_eq!(runs, expected);
}

#[test]
fn a_failing_sweep_returns_the_first_failure_and_run_panics_with_it() {
    let h = Harness::new("sim-runtime", "always_fails");
    let body = || async {
        if sim_runtime::seed() != 0 {
            panic!("planted failure");
        }
    };
    let env = EnvSettings::parse(|_| None).unwrap();
    let failure = h.run_with(&env, &body).unwrap_err();
    let text = failure.to_string();
    assert!(text.contains("planted failure"), "{text}");
    assert!(text.contains("replay with: SIM_SEED=0x"), "{text}");
    assert!(text.contains(&format!("{:#x}", failure.report.seed)));
    // The first seed of the default sweep.
    assert_eq!(
        failure.report.seed,
        sim_runtime::rng::derive_seed(DEFAULT_SEED_BASE, 0)
    );
    // `run`, what the attribute calls, turns the failure into the test's panic.
    let panic = std::panic::catch_unwind(|| h.run(body)).expect_err("run panics");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("planted failure"), "{message}");
    assert!(
        message.contains("cargo test -p sim-runtime always_fails"),
        "{message}"
    );
}

#[test]
fn sims_with_the_same_seed_under_the_harness_and_directly_agree() {
    let body = || async {
        sleep(Duration::from_millis(3)).await;
    };
    let via_harness = Harness::new("sim-runtime", "agree")
        .run_seed(77, false, &body)
        .unwrap();
    let direct = Sim::new(77).run(body);
    assert_eq!(via_harness.fingerprint, direct.report.fingerprint);
}

thread_local! {
    static FLAKY_RUNS: Cell<u32> = const { Cell::new(0) };
}

#[test]
fn the_determinism_check_runs_a_failing_seed_twice_and_reports_its_divergence() {
    let h = Harness::new("sim-runtime", "fails_differently");
    let env = EnvSettings {
        seed: Some(7),
        seeds: None,
        base: None,
        check_determinism: true,
        require_probes: false,
    };
    // Fails every time, but with a trace that depends on state outside the simulation:
    // the failure does not replay, and the check must say so.
    FLAKY_RUNS.with(|r| r.set(0));
    let body = || async {
        let run = FLAKY_RUNS.with(|r| {
            r.set(r.get() + 1);
            r.get()
        });
        sleep(Duration::from_millis(u64::from(run))).await;
        if run > 0 {
            panic!("planted failure");
        }
    };
    let failure = h.run_with(&env, &body).unwrap_err();
    assert_eq!(FLAKY_RUNS.with(Cell::get), 2, "the failing seed ran twice");
    assert!(failure.divergence.is_some(), "{failure}");
    assert!(failure.to_string().contains("non-determinism"), "{failure}");

    // A failure that replays exactly is reported as the failure itself, checked twice.
    FLAKY_RUNS.with(|r| r.set(0));
    let steady = || async {
        FLAKY_RUNS.with(|r| r.set(r.get() + 1));
        sleep(Duration::from_millis(3)).await;
        if sim_runtime::seed() == 7 {
            panic!("planted failure");
        }
    };
    let failure = h.run_with(&env, &steady).unwrap_err();
    assert_eq!(FLAKY_RUNS.with(Cell::get), 2);
    assert!(failure.divergence.is_none(), "{failure}");
    assert!(failure.to_string().contains("planted failure"), "{failure}");
}
