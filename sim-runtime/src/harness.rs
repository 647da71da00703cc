//! The seed harness behind `#[sim_runtime::test]`: which seeds to run (from `SIM_SEED`,
//! `SIM_SEEDS`, `SIM_SEED_BASE`), the determinism check (`SIM_CHECK_DETERMINISM=1`), the
//! probe requirement (`SIM_REQUIRE_PROBES=1`: every declared `sometimes!` of the test's
//! scope held in some seed), the failure message with its ready-to-paste replay line, and
//! the failing seed's timeline page when `SIM_HTML=path` asks for one.

use std::fmt;
use std::future::Future;
use std::rc::Rc;

use crate::outcome::Report;
use crate::probe::{self, ProbeTally};
use crate::rng::derive_seed;
use crate::sim::{Sim, SimConfig};
use crate::trace::Divergence;

/// Seeds a sweep runs when `SIM_SEEDS` is unset: enough to find interleaving bugs in a
/// small test, few enough that `cargo test` stays quick.
pub const DEFAULT_SEEDS: u64 = 16;
/// The sweep base when `SIM_SEED_BASE` is unset: fixed, so plain `cargo test` is
/// reproducible; CI passes its own base to explore new seeds.
pub const DEFAULT_SEED_BASE: u64 = 0x5eed_0000_0000_0000;

/// A bad value in one of the harness's environment variables.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("{var}={value:?} is not a seed: expected a decimal or 0x-prefixed hex u64")]
    BadSeed { var: &'static str, value: String },
    #[error("{var}={value:?} is not a count: expected a positive decimal integer")]
    BadCount { var: &'static str, value: String },
    #[error("{var}={value:?} is not a flag: expected 1, 0, true or false")]
    BadFlag { var: &'static str, value: String },
}

/// How much of each end of a long bad value an error message quotes.
pub const QUOTED_END: usize = 200;

/// `text` as an error message may quote it: whole when short, else its first and last
/// [`QUOTED_END`] bytes and how much was left out between them (a 50 MB value is not
/// echoed back, and the end of a message, where parsers say what they expected, stays).
pub fn elide(text: &str) -> String {
    if text.len() <= 2 * QUOTED_END + 40 {
        return text.to_string();
    }
    let mut head = QUOTED_END;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - QUOTED_END;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    format!(
        "{}… ({} bytes left out) …{}",
        &text[..head],
        tail - head,
        &text[tail..]
    )
}

/// Parses a seed: decimal (`42`) or hex (`0x2a`, underscores allowed: `0x5eed_1234`).
pub fn parse_seed(text: &str) -> Option<u64> {
    let t = text.trim().replace('_', "");
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else {
        t.parse::<u64>().ok()
    }
}

/// What the environment asks the harness to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSettings {
    /// `SIM_SEED`: replay exactly this seed.
    pub seed: Option<u64>,
    /// `SIM_SEEDS`: how many seeds a sweep runs.
    pub seeds: Option<u64>,
    /// `SIM_SEED_BASE`: where a sweep starts.
    pub base: Option<u64>,
    /// `SIM_CHECK_DETERMINISM`: run each seed twice and compare traces.
    pub check_determinism: bool,
    /// `SIM_REQUIRE_PROBES`: fail a sweep in which a declared `sometimes!` never held.
    pub require_probes: bool,
}

impl EnvSettings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, EnvError> {
        Self::parse(|k| std::env::var(k).ok())
    }

    /// Parses settings from any lookup (the process environment, or a map in tests).
    pub fn parse(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let seed_var = |var: &'static str| -> Result<Option<u64>, EnvError> {
            match lookup(var) {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => parse_seed(&v).map(Some).ok_or_else(|| EnvError::BadSeed {
                    var,
                    value: elide(&v),
                }),
            }
        };
        let seed = seed_var("SIM_SEED")?;
        let base = seed_var("SIM_SEED_BASE")?;
        let seeds = match lookup("SIM_SEEDS") {
            None => None,
            Some(v) if v.trim().is_empty() => None,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    return Err(EnvError::BadCount {
                        var: "SIM_SEEDS",
                        value: elide(&v),
                    })
                }
            },
        };
        let flag = |var: &'static str| match lookup(var).as_deref().map(str::trim) {
            None | Some("") | Some("0") | Some("false") => Ok(false),
            Some("1") | Some("true") => Ok(true),
            Some(other) => Err(EnvError::BadFlag {
                var,
                value: elide(other),
            }),
        };
        Ok(EnvSettings {
            seed,
            seeds,
            base,
            check_determinism: flag("SIM_CHECK_DETERMINISM")?,
            require_probes: flag("SIM_REQUIRE_PROBES")?,
        })
    }

    /// The seeds to run, given the test's default count. Lazy: a sweep of `u64::MAX`
    /// seeds costs no memory before its first seed.
    pub fn sweep(&self, default_count: u64) -> Sweep {
        match self.seed {
            Some(seed) => Sweep::Single(seed),
            None => Sweep::Range {
                base: self.base.unwrap_or(DEFAULT_SEED_BASE),
                count: self.seeds.unwrap_or(default_count),
            },
        }
    }
}

/// The seeds a test runs: one seed to replay, or `count` seeds derived from `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    Single(u64),
    Range { base: u64, count: u64 },
}

impl Sweep {
    /// How many seeds.
    pub fn len(&self) -> u64 {
        match *self {
            Sweep::Single(_) => 1,
            Sweep::Range { count, .. } => count,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The seeds in order, each with its position in a range (`None` for a single seed).
    pub fn seeds(&self) -> impl Iterator<Item = (Option<SweepPosition>, u64)> {
        let (single, base, count) = match *self {
            Sweep::Single(seed) => (Some(seed), 0, 0),
            Sweep::Range { base, count } => (None, base, count),
        };
        let range = (0..count).map(move |index| {
            (
                Some(SweepPosition { index, base }),
                derive_seed(base, index),
            )
        });
        single.map(|seed| (None, seed)).into_iter().chain(range)
    }
}

/// `module_path!()` and a function name as `cargo test` filters it (the crate's own name,
/// the first path segment, is not part of a test's name).
pub fn test_path(module_path: &str, name: &str) -> String {
    match module_path.split_once("::") {
        Some((_, rest)) => format!("{rest}::{name}"),
        None => name.to_string(),
    }
}

/// A run's way of saying it failed, for `Result`-returning tests.
pub trait TestOutput {
    fn into_failure(self) -> Option<String>;
}

impl TestOutput for () {
    fn into_failure(self) -> Option<String> {
        None
    }
}

impl<E: fmt::Debug> TestOutput for Result<(), E> {
    fn into_failure(self) -> Option<String> {
        self.err().map(|e| format!("test returned Err: {e:?}"))
    }
}

/// A seed that failed: its report, and for a determinism failure where the runs split.
#[derive(Debug, Clone)]
pub struct Failure {
    pub report: Report,
    pub error: Option<String>,
    pub divergence: Option<Divergence>,
    pub replay: String,
    /// Where in a sweep the seed was: its index and the sweep's `SIM_SEED_BASE`
    /// (`None` when `SIM_SEED` chose the seed).
    pub sweep: Option<SweepPosition>,
}

/// A seed's place in a sweep: seed `index` of the sweep from `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepPosition {
    pub index: u64,
    pub base: u64,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.divergence {
            writeln!(
                f,
                "non-determinism: seed {:#x} gave two different traces",
                self.report.seed
            )?;
            writeln!(f, "{d}")?;
        }
        if let Some(e) = &self.error {
            writeln!(f, "{e}")?;
        }
        if let Some(p) = self.sweep {
            writeln!(
                f,
                "seed {:#x} is seed {} of the sweep from SIM_SEED_BASE={:#x}",
                self.report.seed, p.index, p.base
            )?;
        }
        // The report carries the same replay line; it is printed once, last.
        let report = Report {
            replay: None,
            ..self.report.clone()
        };
        write!(f, "{report}")?;
        writeln!(f, "replay with: {}", self.replay)
    }
}

/// Runs a test body under the seeds the environment asks for.
#[derive(Debug, Clone)]
pub struct Harness {
    package: String,
    test: String,
    default_seeds: u64,
    config: SimConfig,
    /// The module trees whose `sometimes!` probes `SIM_REQUIRE_PROBES` requires.
    probe_scope: Vec<String>,
}

impl Harness {
    pub fn new(package: &str, test: impl Into<String>) -> Self {
        Harness {
            package: package.to_string(),
            test: test.into(),
            default_seeds: DEFAULT_SEEDS,
            config: SimConfig::default(),
            // The test's own crate: a test binary links every crate below it, whose
            // probes other tests reach.
            probe_scope: vec![package.replace('-', "_")],
        }
    }

    /// The module trees (`scenarios::flash_sale`) whose declared `sometimes!` probes must
    /// hold in some seed when `SIM_REQUIRE_PROBES=1`.
    pub fn probes(mut self, scope: &[&str]) -> Self {
        self.probe_scope = scope.iter().map(|s| s.to_string()).collect();
        self
    }

    /// How many seeds a sweep runs when `SIM_SEEDS` is unset.
    pub fn seeds(mut self, n: u64) -> Self {
        self.default_seeds = n.max(1);
        self
    }

    pub fn config(mut self, config: SimConfig) -> Self {
        self.config = config;
        self
    }

    /// The command that runs this test at `seed` alone: `--exact`, since the name is
    /// otherwise a substring filter that runs every test containing it, and
    /// `--nocapture`, since a `#[should_panic]` test would otherwise hide its report.
    pub fn replay_line(&self, seed: u64) -> String {
        format!(
            "SIM_SEED={seed:#x} cargo test -p {} {} -- --exact --nocapture",
            self.package, self.test
        )
    }

    /// Runs every seed; panics with the first failure's report and replay line.
    pub fn run<F, Fut>(&self, body: F)
    where
        F: Fn() -> Fut,
        Fut: Future + 'static,
        Fut::Output: TestOutput + 'static,
    {
        let env = match EnvSettings::from_env() {
            Ok(e) => e,
            Err(e) => panic!("sim-runtime: {e}"),
        };
        let (ran, probes) = match self.sweep(&env, &body) {
            Ok(swept) => swept,
            Err(failure) => {
                let html = self.timeline_note(failure.report.seed, &body);
                panic!("{failure}{html}")
            }
        };
        let scope: Vec<&str> = self.probe_scope.iter().map(String::as_str).collect();
        let rows = probes.table(&scope, ran);
        if !rows.is_empty() {
            eprintln!("sim: {} probes over the sweep:", self.test);
            for row in &rows {
                eprintln!("  {row}");
            }
        }
        if env.require_probes {
            let unfired = probe::unfired(&scope, &probes);
            if !unfired.is_empty() {
                panic!(
                    "SIM_REQUIRE_PROBES=1: {} declared sometimes! probes never held in the sweep:\n{}",
                    unfired.len(),
                    probe::list(&unfired)
                );
            }
        }
    }

    /// `SIM_HTML=path`: writes the failing seed's timeline, for a person to look at, and
    /// says where (or why not) in a line for the failure message.
    fn timeline_note<F, Fut>(&self, seed: u64, body: &F) -> String
    where
        F: Fn() -> Fut,
        Fut: Future + 'static,
        Fut::Output: TestOutput + 'static,
    {
        match std::env::var("SIM_HTML") {
            Ok(path) if !path.trim().is_empty() => {
                match self.write_timeline(seed, body, path.trim()) {
                    Ok(()) => format!("\ntimeline: {}", path.trim()),
                    Err(e) => format!("\ntimeline not written to {}: {e}", path.trim()),
                }
            }
            _ => String::new(),
        }
    }

    /// Runs `seed` again with its trace kept and writes its timeline page to `path`.
    pub fn write_timeline<F, Fut>(&self, seed: u64, body: &F, path: &str) -> Result<(), String>
    where
        F: Fn() -> Fut,
        Fut: Future + 'static,
        Fut::Output: TestOutput + 'static,
    {
        let buffer = crate::trace::SharedBuffer::default();
        let result = Sim::new(seed)
            .config(self.config.clone())
            .replay_line(self.replay_line(seed))
            .trace_jsonl(buffer.clone())
            .run(body);
        let error = result.output.and_then(TestOutput::into_failure);
        let report = &result.report;
        let failed = !report.is_pass() || error.is_some();
        let message = error.unwrap_or_else(|| report.outcome.to_string());
        let at_ns = u64::try_from(report.time.elapsed_since_start().as_nanos()).unwrap_or(u64::MAX);
        let run = crate::timeline::RunInfo {
            title: format!("{} seed {seed:#x}", self.test),
            details: vec![
                ("replay".into(), self.replay_line(seed)),
                (
                    "fingerprint".into(),
                    format!("{:#018x}", report.fingerprint),
                ),
            ],
            outcome: if failed {
                message.clone()
            } else {
                "pass".into()
            },
            failed,
        };
        // A test's failure has no checker to say which events lead to it: it is marked
        // where the run ended.
        let violation = failed.then(|| crate::timeline::Violation {
            at_ns,
            checker: "test".into(),
            message,
            seqs: Vec::new(),
        });
        let timeline =
            crate::timeline::Timeline::from_jsonl(&buffer.text(), run, &[], violation.as_ref())
                .map_err(|e| e.to_string())?;
        std::fs::write(path, timeline.to_html()).map_err(|e| e.to_string())
    }

    /// Runs the seeds `env` selects; the first failure is returned, not panicked. On
    /// success: how many seeds ran, and their probe counts added up.
    pub fn sweep<F, Fut>(
        &self,
        env: &EnvSettings,
        body: &F,
    ) -> Result<(u64, ProbeTally), Box<Failure>>
    where
        F: Fn() -> Fut,
        Fut: Future + 'static,
        Fut::Output: TestOutput + 'static,
    {
        let sweep = env.sweep(self.default_seeds);
        if let Sweep::Range { base, count } = sweep {
            eprintln!(
                "sim: {} runs {count} seeds from SIM_SEED_BASE={base:#x}",
                self.test
            );
        }
        let mut ran = 0;
        let mut probes = ProbeTally::default();
        for (position, seed) in sweep.seeds() {
            let report =
                self.run_seed(seed, env.check_determinism, body)
                    .map_err(|mut failure| {
                        failure.sweep = position;
                        failure
                    })?;
            probes.merge(&report.probes);
            ran += 1;
        }
        Ok((ran, probes))
    }

    /// Runs the seeds `env` selects; the first failure is returned, not panicked.
    pub fn run_with<F, Fut>(&self, env: &EnvSettings, body: &F) -> Result<u64, Box<Failure>>
    where
        F: Fn() -> Fut,
        Fut: Future + 'static,
        Fut::Output: TestOutput + 'static,
    {
        self.sweep(env, body).map(|(ran, _)| ran)
    }

    /// Runs one seed (twice when checking determinism).
    pub fn run_seed<F, Fut>(
        &self,
        seed: u64,
        check_determinism: bool,
        body: &F,
    ) -> Result<Report, Box<Failure>>
    where
        F: Fn() -> Fut,
        Fut: Future + 'static,
        Fut::Output: TestOutput + 'static,
    {
        let replay = self.replay_line(seed);
        let mut sim = Sim::new(seed)
            .config(self.config.clone())
            .replay_line(replay.clone());
        if check_determinism {
            sim = sim.record_events();
        }
        let first = sim.run(body);
        let error = first.output.and_then(TestOutput::into_failure);
        // An `always!` that did not hold fails the seed as a failed check would.
        let broken: Vec<String> = first
            .report
            .probes
            .violations()
            .into_iter()
            .map(|(_, detail)| detail)
            .collect();
        let error = match (error, broken.is_empty()) {
            (error, true) => error,
            (None, false) => Some(broken.join("\n")),
            (Some(e), false) => Some(format!("{e}\n{}", broken.join("\n"))),
        };
        let failed = !first.report.is_pass() || error.is_some();
        // A failing seed is run twice as well: it is the one a user will want to replay,
        // and a failure that does not replay must say so before anything else.
        if check_determinism {
            let reference = Rc::new(first.recording.unwrap_or_default());
            let second = Sim::new(seed)
                .config(self.config.clone())
                .replay_line(replay.clone())
                .compare_with(reference)
                .run(body);
            let divergence = second.divergence.or_else(|| {
                (second.report.fingerprint != first.report.fingerprint).then_some(Divergence {
                    first: None,
                    second: None,
                })
            });
            if let Some(d) = divergence {
                return Err(Box::new(Failure {
                    report: second.report,
                    error,
                    divergence: Some(d),
                    replay,
                    sweep: None,
                }));
            }
        }
        if failed {
            return Err(Box::new(Failure {
                report: first.report,
                error,
                divergence: None,
                replay,
                sweep: None,
            }));
        }
        Ok(first.report)
    }
}
