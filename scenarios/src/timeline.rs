//! A scenario run's timeline page (`sim run … --html`, `sim replay … --html`): the run's
//! trace drawn by [`sim_runtime::timeline`], with what only the scenario knows added: each
//! scheduled fault's window and name, and the first violated checker's instant and the
//! events its witness names.

use serde::Serialize;
use serde_json::Value;
use sim_runtime::schedule::FaultSchedule;
use sim_runtime::time::Instant;
use sim_runtime::timeline::{RunInfo, ScheduledWindow, Timeline, TimelineError, Violation};
use sim_runtime::trace::SharedBuffer;

use crate::inject::Windowed;
use crate::scenario::{Output, Plan, RunOutput, Scenario};

fn ns(t: Instant) -> u64 {
    u64::try_from(t.elapsed_since_start().as_nanos()).unwrap_or(u64::MAX)
}

/// A fault as its window's label: its kind, then its other fields (`api_kill instance=0
/// down_ms=8759`).
pub fn fault_label<F: Serialize>(fault: &F) -> String {
    match serde_json::to_value(fault) {
        Ok(Value::Object(fields)) => {
            let kind = fields
                .get("fault")
                .and_then(Value::as_str)
                .unwrap_or("fault");
            let rest: Vec<String> = fields
                .iter()
                .filter(|(k, _)| *k != "fault")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            if rest.is_empty() {
                kind.to_string()
            } else {
                format!("{kind} {}", rest.join(" "))
            }
        }
        Ok(other) => other.to_string(),
        Err(_) => "fault".into(),
    }
}

/// Each scheduled fault's window, named.
pub fn scheduled_windows<F: Windowed + Serialize>(
    schedule: &FaultSchedule<F>,
) -> Vec<ScheduledWindow> {
    schedule
        .iter()
        .map(|f| ScheduledWindow {
            label: fault_label(&f.fault),
            start_ns: ns(f.at()),
            end_ns: f.fault.duration().map(|d| ns(f.at() + d)),
        })
        .collect()
}

/// What the page marks as the violation: the first failed checker (at its witness's
/// instant, or the run's end when it has none), or the run itself when it did not
/// complete.
pub fn violation_of<F, M>(out: &RunOutput<F, M>) -> Option<Violation> {
    let end = ns(out.report.time);
    if !out.report.is_pass() {
        return Some(Violation {
            at_ns: end,
            checker: "run".into(),
            message: out.report.outcome.to_string(),
            seqs: Vec::new(),
        });
    }
    let v = out.verdicts.iter().find(|v| !v.ok)?;
    Some(Violation {
        at_ns: v.witness.as_ref().map_or(end, |w| ns(w.at)),
        checker: v.checker.clone(),
        message: v.detail.clone(),
        seqs: v.witness.as_ref().map_or(Vec::new(), |w| w.seqs.clone()),
    })
}

/// Runs `seed` of `plan` with its trace kept: the run's output, its trace as JSON lines,
/// and its timeline. `details` are the page's header lines (the replay command, say).
pub fn run_with_timeline<S: Scenario>(
    plan: &Plan<S>,
    seed: u64,
    details: Vec<(String, String)>,
) -> Result<(Output<S>, String, Timeline), TimelineError> {
    let buffer = SharedBuffer::default();
    let out = plan.run_traced(seed, Box::new(buffer.clone()));
    let jsonl = buffer.text();
    let run = RunInfo {
        title: format!("{} {} seed {seed:#x}", S::NAME, out.variant),
        details: [
            ("variant".to_string(), out.variant.to_string()),
            ("fault".into(), out.fault.to_string()),
            (
                "schedule".into(),
                serde_json::to_string(&out.schedule).unwrap_or_default(),
            ),
            (
                "fingerprint".into(),
                format!("{:#018x}", out.report.fingerprint),
            ),
        ]
        .into_iter()
        .chain(details)
        .collect(),
        outcome: out.failure_summary().unwrap_or_else(|| "pass".into()),
        failed: out.failed(),
    };
    let windows = scheduled_windows(&out.schedule);
    let violation = violation_of(&out);
    let timeline = Timeline::from_jsonl(&jsonl, run, &windows, violation.as_ref())?;
    Ok((out, jsonl, timeline))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flash_sale::faults::FlashFault;

    #[test]
    fn a_fault_label_names_its_kind_then_its_fields() {
        let f = FlashFault::ApiKill {
            instance: 1,
            down_ms: Some(500),
        };
        assert_eq!(fault_label(&f), "api_kill down_ms=500 instance=1");
    }
}
