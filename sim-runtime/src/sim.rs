//! `Sim`: one seeded run of a simulated program, from configuration to `Report`.

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::node::NodeId;
use crate::outcome::{self, Outcome, Report};
use crate::task;
use crate::time::{Duration, Instant};
use crate::trace::{Divergence, Event};
use crate::watchdog::Heartbeat;
use crate::world::{self, Limits, Step, World};

/// Knobs of one run. `Default` is what a test wants: a generous virtual-time limit, a
/// step limit that catches tasks that wake each other forever, the watchdog that catches
/// a task looping without awaiting, a 64-event tail for failure reports.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The run stops with `Outcome::TimeLimit` when the next timer is later than this.
    pub time_limit: Option<Duration>,
    /// The run stops with `Outcome::StepLimit` after this many task polls.
    pub step_limit: Option<u64>,
    /// How many of the last events a report keeps.
    pub tail_events: usize,
    /// Record a poll event for every task poll (every scheduling decision). On by default:
    /// it makes the fingerprint sensitive to interleavings, not only to outcomes.
    pub trace_polls: bool,
    /// Whether `buggify!()` sites may fire in this run.
    pub buggify: bool,
    /// Wall-clock time one poll may take before the watchdog, a thread outside the
    /// simulation, reports a busy loop (seed, virtual time, task) and ends the process:
    /// a task that never awaits stops the executor, so no virtual limit can catch it.
    /// `None` turns the watchdog off.
    pub busy_loop_limit: Option<Duration>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            time_limit: Some(Duration::from_secs(24 * 3600)),
            step_limit: Some(200_000_000),
            tail_events: 64,
            trace_polls: true,
            buggify: false,
            busy_loop_limit: Some(Duration::from_secs(30)),
        }
    }
}

/// A simulation about to run.
pub struct Sim {
    seed: u64,
    config: SimConfig,
    jsonl: Option<Box<dyn Write>>,
    record: bool,
    compare: Option<Rc<Vec<Event>>>,
    replay: Option<String>,
}

/// The result of [`Sim::run`]: the report and, on a pass, the main future's output.
pub struct RunResult<T> {
    pub report: Report,
    pub output: Option<T>,
    /// With [`Sim::record_events`]: every event of the run.
    pub recording: Option<Vec<Event>>,
    /// With [`Sim::compare_with`]: the first event where this run differed.
    pub divergence: Option<Divergence>,
    /// With [`Sim::trace_jsonl`]: the error that stopped the trace output, if one did
    /// (a full disk). The run itself is unaffected; the caller decides how to fail.
    pub trace_error: Option<std::io::Error>,
}

impl Sim {
    pub fn new(seed: u64) -> Self {
        Sim {
            seed,
            config: SimConfig::default(),
            jsonl: None,
            record: false,
            compare: None,
            replay: None,
        }
    }

    pub fn config(mut self, config: SimConfig) -> Self {
        self.config = config;
        self
    }

    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.config.time_limit = Some(limit);
        self
    }

    pub fn step_limit(mut self, limit: u64) -> Self {
        self.config.step_limit = Some(limit);
        self
    }

    pub fn buggify(mut self, on: bool) -> Self {
        self.config.buggify = on;
        self
    }

    /// Writes every event as a JSON line to `out`.
    pub fn trace_jsonl(mut self, out: impl Write + 'static) -> Self {
        self.jsonl = Some(Box::new(out));
        self
    }

    /// Keeps every event of the run (for determinism checks).
    pub fn record_events(mut self) -> Self {
        self.record = true;
        self
    }

    /// Compares each event against a recording of an earlier run.
    pub fn compare_with(mut self, reference: Rc<Vec<Event>>) -> Self {
        self.compare = Some(reference);
        self
    }

    /// The replay command printed in the report.
    pub fn replay_line(mut self, line: impl Into<String>) -> Self {
        self.replay = Some(line.into());
        self
    }

    /// Runs `main` on the main node until it completes or the run fails.
    pub fn run<F, Fut>(self, main: F) -> RunResult<Fut::Output>
    where
        F: FnOnce() -> Fut,
        Fut: Future + 'static,
        Fut::Output: 'static,
    {
        outcome::install_panic_hook();
        let limits = Limits {
            time_limit: self.config.time_limit.map(|d| Instant::START + d),
            step_limit: self.config.step_limit,
            trace_polls: self.config.trace_polls,
        };
        let mut world = World::new(self.seed, self.config.tail_events, limits);
        world.buggify.set_enabled(self.config.buggify);
        let heartbeat = self
            .config
            .busy_loop_limit
            .map(|limit| Heartbeat::new(self.seed, self.replay.clone(), limit));
        if let Some(h) = &heartbeat {
            world.watch(Arc::clone(h));
        }
        if let Some(out) = self.jsonl {
            world.trace.set_jsonl(match &heartbeat {
                Some(h) => Box::new(WaitsOnOutput {
                    out,
                    heartbeat: Arc::clone(h),
                }),
                None => out,
            });
        }
        if self.record {
            world.trace.start_recording();
        }
        if let Some(reference) = self.compare {
            world.trace.compare_with(reference);
        }
        world::install(world);
        outcome::set_in_sim(true);
        let mut handle =
            task::spawn_on_named(NodeId::MAIN, "main", std::panic::Location::caller(), main());
        let outcome = drive(&mut handle);
        if let Some(h) = &heartbeat {
            h.stop();
        }
        let output = if outcome.is_pass() {
            take_output(&mut handle)
        } else {
            None
        };
        drop(handle);
        world::teardown();
        outcome::set_in_sim(false);
        let mut world = world::uninstall().expect("world installed above");
        world.trace.flush();
        let report = Report {
            seed: self.seed,
            outcome,
            time: world.now,
            steps: world.steps,
            events: world.trace.event_count(),
            fingerprint: world.trace.fingerprint(),
            last_events: world.trace.tail(),
            buggify_sites: world.buggify.enabled_sites(),
            probes: world.probes.take(),
            replay: self.replay,
        };
        crate::probe::finished(&report.probes);
        RunResult {
            report,
            output,
            recording: world.trace.take_recording(),
            divergence: world.trace.divergence(),
            trace_error: world.trace.take_jsonl_error(),
        }
    }
}

/// The trace output, telling the watchdog while the run waits on it: a trace piped into
/// a pager may block for minutes, and that is not a busy loop.
struct WaitsOnOutput {
    out: Box<dyn Write>,
    heartbeat: Arc<Heartbeat>,
}

impl WaitsOnOutput {
    fn waiting<T>(&mut self, io: impl FnOnce(&mut dyn Write) -> T) -> T {
        self.heartbeat.set_waiting(true);
        let r = io(&mut *self.out);
        self.heartbeat.set_waiting(false);
        r
    }
}

impl Write for WaitsOnOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.waiting(|out| out.write(buf))
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.waiting(|out| out.write_all(buf))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.waiting(|out| out.flush())
    }
}

fn drive<T>(main: &mut task::JoinHandle<T>) -> Outcome {
    loop {
        if main.is_finished() {
            return Outcome::Pass;
        }
        match world::step() {
            Step::Ran | Step::Idle => {}
            Step::Panicked => {
                let panic = world::with(|w| {
                    w.panic.take().map(|p| Outcome::Panic {
                        message: p.message,
                        node: w.node_name(p.node).to_string(),
                        task: p.task,
                        task_name: p.task_name.to_string(),
                        location: p.location,
                    })
                });
                if let Some(p) = panic {
                    return p;
                }
            }
            Step::OutOfSteps(limit) => return Outcome::StepLimit { limit },
            Step::TimeLimit => {
                let limit = world::with(|w| w.limits.time_limit.unwrap_or(w.now));
                return Outcome::TimeLimit { limit };
            }
            Step::Deadlock => {
                let blocked = world::with(|w| w.blocked_tasks());
                return Outcome::Deadlock { blocked };
            }
        }
    }
}

fn take_output<T>(handle: &mut task::JoinHandle<T>) -> Option<T> {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    match Pin::new(handle).poll(&mut cx) {
        Poll::Ready(Ok(v)) => Some(v),
        _ => None,
    }
}

/// The seed of the running simulation.
pub fn seed() -> u64 {
    world::with(|w| w.seed)
}
