//! How a run ended, and the report a failure carries: the seed, the virtual time, the last
//! events and the line that replays it.

use std::cell::RefCell;
use std::fmt;
use std::sync::Once;

use serde::Serialize;

use crate::time::Instant;
use crate::trace::{Event, TaskId};

/// A task that was alive but could never run again when the run deadlocked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlockedTask {
    pub task: TaskId,
    pub node: String,
    /// The name given at spawn, or empty.
    pub name: String,
    /// `file:line` of the spawn call.
    pub spawned_at: String,
}

impl fmt::Display for BlockedTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.name.is_empty() {
            "<unnamed>"
        } else {
            &self.name
        };
        write!(
            f,
            "{} on node {}: {} (spawned at {})",
            self.task, self.node, name, self.spawned_at
        )
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The main future completed.
    Pass,
    /// A task panicked: a bug in the code under test (or an assertion that failed).
    Panic {
        message: String,
        node: String,
        task: Option<TaskId>,
        task_name: String,
        location: Option<String>,
    },
    /// The main future is pending, nothing is runnable and no timer is set.
    Deadlock { blocked: Vec<BlockedTask> },
    /// Virtual time passed the configured limit.
    TimeLimit { limit: Instant },
    /// The executor took more steps than allowed (a livelock or busy loop).
    StepLimit { limit: u64 },
}

impl Outcome {
    pub fn is_pass(&self) -> bool {
        matches!(self, Outcome::Pass)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Pass => write!(f, "pass"),
            Outcome::Panic {
                message,
                node,
                task,
                task_name,
                location,
            } => {
                write!(f, "panic on node {node}")?;
                if let Some(t) = task {
                    write!(f, " in task {t}")?;
                }
                if !task_name.is_empty() {
                    write!(f, " ({task_name})")?;
                }
                if let Some(l) = location {
                    write!(f, " at {l}")?;
                }
                write!(f, ": {message}")
            }
            Outcome::Deadlock { blocked } => {
                writeln!(
                    f,
                    "deadlock: the main future is pending, nothing can run and no timer is set"
                )?;
                writeln!(f, "blocked tasks ({}):", blocked.len())?;
                for b in blocked {
                    writeln!(f, "  {b}")?;
                }
                Ok(())
            }
            Outcome::TimeLimit { limit } => write!(f, "virtual time limit {limit} reached"),
            Outcome::StepLimit { limit } => write!(f, "step limit of {limit} steps reached"),
        }
    }
}

/// Everything about one finished run. In JSON the seed and the fingerprint are hex
/// strings, as they are printed everywhere else: JSON tools read numbers as doubles, which
/// round a 64-bit value.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    #[serde(serialize_with = "hex_seed")]
    pub seed: u64,
    pub outcome: Outcome,
    /// Virtual time when the run ended.
    pub time: Instant,
    pub steps: u64,
    pub events: u64,
    #[serde(serialize_with = "hex_fingerprint")]
    pub fingerprint: u64,
    /// The last events (the ring buffer), oldest first.
    #[serde(skip)]
    pub last_events: Vec<Event>,
    /// Buggify sites that were enabled in this run.
    pub buggify_sites: Vec<String>,
    /// This run's `sometimes!` and `always!` counts.
    pub probes: crate::probe::ProbeTally,
    /// The command that replays this run, when the harness knows it.
    pub replay: Option<String>,
}

impl Report {
    pub fn is_pass(&self) -> bool {
        self.outcome.is_pass()
    }

    /// The run completed and every `always!` held.
    pub fn is_clean(&self) -> bool {
        self.is_pass() && self.probes.broken().next().is_none()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed {:#018x}: {}", self.seed, self.outcome)?;
        writeln!(
            f,
            "  at virtual time {}, after {} steps and {} events, fingerprint {:#018x}",
            self.time, self.steps, self.events, self.fingerprint
        )?;
        if !self.buggify_sites.is_empty() {
            writeln!(
                f,
                "  buggify sites enabled: {}",
                self.buggify_sites.join(", ")
            )?;
        }
        for (_, detail) in self.probes.violations() {
            writeln!(f, "  {detail}")?;
        }
        if !self.outcome.is_pass() && !self.last_events.is_empty() {
            writeln!(f, "  last {} events:", self.last_events.len())?;
            for e in &self.last_events {
                writeln!(f, "    {e}")?;
            }
        }
        if let Some(r) = &self.replay {
            writeln!(f, "  replay: {r}")?;
        }
        Ok(())
    }
}

thread_local! {
    static IN_SIM: RefCell<bool> = const { RefCell::new(false) };
    static LAST_PANIC: RefCell<Option<(String, Option<String>)>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Installs (once per process) a panic hook that, on a thread running a simulation,
/// records the message and location for the `Outcome` instead of printing them; on other
/// threads it defers to the previous hook.
pub(crate) fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_sim = IN_SIM.with(|s| *s.borrow());
            if in_sim {
                let message = payload_message(info.payload());
                let location = info
                    .location()
                    .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
                LAST_PANIC.with(|p| *p.borrow_mut() = Some((message, location)));
            } else {
                previous(info);
            }
        }));
    });
}

pub(crate) fn set_in_sim(v: bool) {
    IN_SIM.with(|s| *s.borrow_mut() = v);
}

pub(crate) fn take_panic_info() -> (String, Option<String>) {
    LAST_PANIC
        .with(|p| p.borrow_mut().take())
        .unwrap_or_else(|| ("<unknown panic>".to_string(), None))
}

fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

fn hex_seed<S: serde::Serializer>(seed: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{seed:#x}"))
}

fn hex_fingerprint<S: serde::Serializer>(fingerprint: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{fingerprint:#018x}"))
}
