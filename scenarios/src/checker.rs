//! Checker verdicts. Checkers are plain functions over trace events and final state,
//! written against what the simulated dependencies and the users observed, never against
//! the service's own bookkeeping: service code never checks itself.

use serde::{Deserialize, Serialize};
use sim_runtime::time::{Duration, Instant};

/// One invariant's verdict for one run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub checker: String,
    pub ok: bool,
    pub detail: String,
    /// For a violation, when it happened and the trace events that lead to it, where the
    /// checker can tell: what the timeline page marks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness: Option<Witness>,
}

/// Where a violation shows in the trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Witness {
    /// The instant the invariant was first broken.
    pub at: Instant,
    /// The `seq` of each trace event that leads to it (for an oversell: the stock
    /// decrements and the acknowledged orders).
    pub seqs: Vec<u64>,
}

impl Verdict {
    pub fn pass(checker: &str, detail: impl Into<String>) -> Self {
        Verdict {
            checker: checker.to_string(),
            ok: true,
            detail: detail.into(),
            witness: None,
        }
    }

    pub fn fail(checker: &str, detail: impl Into<String>) -> Self {
        Verdict {
            checker: checker.to_string(),
            ok: false,
            detail: detail.into(),
            witness: None,
        }
    }

    pub fn check(checker: &str, ok: bool, detail: impl Into<String>) -> Self {
        Verdict {
            checker: checker.to_string(),
            ok,
            detail: detail.into(),
            witness: None,
        }
    }

    /// The same verdict, saying where in the trace its violation shows.
    pub fn with_witness(mut self, at: Instant, seqs: Vec<u64>) -> Self {
        self.witness = Some(Witness { at, seqs });
        self
    }
}

/// The instant `ms` milliseconds into a run: how checkers' tests write the times of the
/// observations they plant.
pub fn at_ms(ms: u64) -> Instant {
    Instant::START + Duration::from_millis(ms)
}
