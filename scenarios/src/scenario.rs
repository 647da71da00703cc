//! What every scenario offers the `sim` program and the tests: its variants, its fault
//! matrix, and one seeded run from which come the outcome, the checkers' verdicts, the
//! metrics and the fingerprint.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::checker::Verdict;

/// A variant of a scenario's service logic: the correct one, or a buggy one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct VariantInfo {
    pub name: &'static str,
    pub buggy: bool,
    pub description: &'static str,
}

/// One named entry of a scenario's fault matrix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FaultInfo {
    pub name: &'static str,
    pub description: &'static str,
}

/// Which faults a run gets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum FaultChoice {
    /// A named fault-matrix entry (`none` for a fault-free run).
    Named(String),
    /// A schedule drawn from the seed over every fault kind (swarm testing).
    Swarm,
    /// An explicit schedule, as JSON (the output of `sim shrink`, or hand-written).
    Schedule(serde_json::Value),
}

impl fmt::Display for FaultChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultChoice::Named(n) => write!(f, "{n}"),
            FaultChoice::Swarm => write!(f, "swarm"),
            FaultChoice::Schedule(_) => write!(f, "schedule"),
        }
    }
}

/// Everything that determines one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub seed: u64,
    pub variant: String,
    pub fault: FaultChoice,
    /// Scenario-specific sizes (users, items, …); `Null` for the defaults.
    #[serde(default)]
    pub params: serde_json::Value,
}

/// What one run produced.
#[derive(Clone, Debug, Serialize)]
pub struct RunOutput {
    pub spec: RunSpec,
    /// The runtime's view: outcome, time, fingerprint.
    pub report: sim_runtime::Report,
    pub verdicts: Vec<Verdict>,
    /// The schedule that ran, as JSON (for replay and shrinking).
    pub schedule: serde_json::Value,
    /// Scenario metrics (latencies, counts, recovery time).
    pub metrics: serde_json::Value,
    /// Swarm choices, when the schedule came from a swarm.
    pub swarm: Option<String>,
}

impl RunOutput {
    /// A run fails when the simulation itself failed or any checker found a violation.
    pub fn failed(&self) -> bool {
        !self.report.is_pass() || self.verdicts.iter().any(|v| !v.ok)
    }

    /// The first violated invariant, or the runtime failure.
    pub fn failure_summary(&self) -> Option<String> {
        if !self.report.is_pass() {
            return Some(format!("run failed: {}", self.report.outcome));
        }
        self.verdicts
            .iter()
            .find(|v| !v.ok)
            .map(|v| format!("{}: {}", v.checker, v.detail))
    }
}

/// User-caused errors: an unknown variant or fault, a schedule that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("unknown scenario {0:?}; `sim list` shows the scenarios")]
    UnknownScenario(String),
    #[error("unknown variant {variant:?} of {scenario}; known: {known}")]
    UnknownVariant {
        scenario: &'static str,
        variant: String,
        known: String,
    },
    #[error("unknown fault {fault:?} of {scenario}; known: {known}")]
    UnknownFault {
        scenario: &'static str,
        fault: String,
        known: String,
    },
    #[error("malformed schedule: {0}")]
    BadSchedule(String),
    #[error("bad parameters: {0}")]
    BadParams(String),
}

/// A system under test.
pub trait Scenario: Sync {
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    fn variants(&self) -> Vec<VariantInfo>;
    fn faults(&self) -> Vec<FaultInfo>;
    /// Checks a spec without running it (so bad input fails before any work).
    fn validate(&self, spec: &RunSpec) -> Result<(), SpecError>;
    /// Runs one seed.
    fn run(&self, spec: &RunSpec) -> Result<RunOutput, SpecError>;
    /// Runs with a trace written as JSON lines to `out`.
    fn run_traced(
        &self,
        spec: &RunSpec,
        out: Box<dyn std::io::Write>,
    ) -> Result<RunOutput, SpecError>;
    /// Shrinks a failing run's schedule to a smallest one that still fails the same way.
    fn shrink(&self, spec: &RunSpec) -> Result<Option<(serde_json::Value, RunOutput)>, SpecError>;
    /// The resilience report (Markdown and JSON) from runs of the fault matrix.
    fn report(
        &self,
        seed: u64,
        params: &serde_json::Value,
    ) -> Result<crate::report::ScenarioReport, SpecError>;
}

/// Checks that `name` is one of `known`.
pub fn check_name(
    scenario: &'static str,
    what: &str,
    name: &str,
    known: &[&str],
) -> Result<(), SpecError> {
    if known.contains(&name) {
        return Ok(());
    }
    let list = known.join(", ");
    Err(match what {
        "variant" => SpecError::UnknownVariant {
            scenario,
            variant: name.to_string(),
            known: list,
        },
        _ => SpecError::UnknownFault {
            scenario,
            fault: name.to_string(),
            known: list,
        },
    })
}
