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
}

impl Verdict {
    pub fn pass(checker: &str, detail: impl Into<String>) -> Self {
        Verdict {
            checker: checker.to_string(),
            ok: true,
            detail: detail.into(),
        }
    }

    pub fn fail(checker: &str, detail: impl Into<String>) -> Self {
        Verdict {
            checker: checker.to_string(),
            ok: false,
            detail: detail.into(),
        }
    }

    pub fn check(checker: &str, ok: bool, detail: impl Into<String>) -> Self {
        Verdict {
            checker: checker.to_string(),
            ok,
            detail: detail.into(),
        }
    }
}

/// The instant `ms` milliseconds into a run: how checkers' tests write the times of the
/// observations they plant.
pub fn at_ms(ms: u64) -> Instant {
    Instant::START + Duration::from_millis(ms)
}
