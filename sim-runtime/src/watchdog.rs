//! The busy-loop watchdog. A task that loops without awaiting never hands control back
//! to the executor, so nothing inside the simulation can notice: the virtual clock stands
//! still and the step limit is never reached. One thread outside every simulation watches
//! each running simulation's heartbeat (a count the executor bumps before every poll)
//! and, when one has not moved for the configured wall time, reports the seed, the
//! virtual time and the task being polled, then ends the process with exit code 101 (a
//! failed test's): the simulation's own thread cannot be unwound from outside.
//!
//! The watchdog never writes to a simulation, so it cannot change a run.

// The one place in sim-runtime that runs a thread and reads the wall clock: it watches
// simulations from outside and never touches one.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Once, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::time;

/// How often the watchdog looks at the heartbeats.
const LOOK_EVERY: Duration = Duration::from_millis(50);

/// What a running simulation publishes for the watchdog. The executor is the only
/// writer; every write is a relaxed store, a plain move on the hot path.
pub(crate) struct Heartbeat {
    seed: u64,
    replay: Option<String>,
    /// How long one poll may take before it counts as a busy loop.
    limit: Duration,
    /// Bumped before every poll (and every drop of a dead task).
    beats: AtomicU64,
    /// The task being polled: its id, and its node and spawn site (`node << 32 | site`).
    task: AtomicU64,
    node_site: AtomicU64,
    /// Virtual time in nanoseconds.
    now: AtomicU64,
    /// Set while the simulation waits on its trace output (a slow pipe, a pager): a wait,
    /// not a loop.
    waiting: AtomicBool,
    /// Set once the executor stopped: nothing to watch any more.
    stopped: AtomicBool,
    /// Names for the report, added as the run creates them (rarely).
    names: Mutex<Names>,
}

#[derive(Default)]
struct Names {
    nodes: Vec<String>,
    sites: Vec<(&'static str, &'static Location<'static>)>,
}

impl Heartbeat {
    pub(crate) fn new(seed: u64, replay: Option<String>, limit: Duration) -> Arc<Self> {
        Arc::new(Heartbeat {
            seed,
            replay,
            limit,
            beats: AtomicU64::new(0),
            task: AtomicU64::new(u64::MAX),
            node_site: AtomicU64::new(0),
            now: AtomicU64::new(0),
            waiting: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            names: Mutex::new(Names::default()),
        })
    }

    /// A poll of task `id` (on `node`, from spawn site `site`) is about to start.
    #[inline]
    pub(crate) fn beat(&self, id: u64, node: u32, site: u32) {
        // One writer: a load and a store, not a read-modify-write.
        self.beats
            .store(self.beats.load(Relaxed).wrapping_add(1), Relaxed);
        self.task.store(id, Relaxed);
        self.node_site
            .store(u64::from(node) << 32 | u64::from(site), Relaxed);
    }

    pub(crate) fn set_now(&self, now: time::Instant) {
        self.now.store(now.as_nanos(), Relaxed);
    }

    pub(crate) fn set_waiting(&self, waiting: bool) {
        self.waiting.store(waiting, Relaxed);
    }

    pub(crate) fn stop(&self) {
        self.stopped.store(true, Relaxed);
    }

    pub(crate) fn note_node(&self, name: &str) {
        self.names().nodes.push(name.to_string());
    }

    pub(crate) fn note_site(&self, name: &'static str, location: &'static Location<'static>) {
        self.names().sites.push((name, location));
    }

    fn names(&self) -> std::sync::MutexGuard<'_, Names> {
        self.names.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the watchdog prints when this simulation is stuck.
    fn report(&self, stuck_for: Duration) -> String {
        let node_site = self.node_site.load(Relaxed);
        let (node, site) = ((node_site >> 32) as usize, node_site as u32 as usize);
        let names = self.names();
        let node = names.nodes.get(node).map_or("?", String::as_str);
        let task = match names.sites.get(site) {
            Some((name, location)) => format!("{name:?}, spawned at {location}"),
            None => "?".to_string(),
        };
        let mut text = format!(
            "sim-runtime watchdog: seed {:#x}: one poll has run for {:.1} s of wall time \
             without returning: a loop that never awaits?\n  \
             virtual time: {}\n  \
             task:         #{} {task} on node {node}\n",
            self.seed,
            stuck_for.as_secs_f64(),
            time::Instant::from_nanos(self.now.load(Relaxed)),
            self.task.load(Relaxed),
        );
        if let Some(line) = &self.replay {
            text.push_str(&format!("  replay with:  {line}\n"));
        }
        text
    }
}

/// A watched simulation and what the watchdog last saw of it.
struct Watched {
    heartbeat: Weak<Heartbeat>,
    beats: u64,
    since: Instant,
}

static WATCHED: Mutex<Vec<Watched>> = Mutex::new(Vec::new());
static START: Once = Once::new();

/// Watches `heartbeat` until it is dropped (with its simulation).
pub(crate) fn watch(heartbeat: &Arc<Heartbeat>) {
    WATCHED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Watched {
            heartbeat: Arc::downgrade(heartbeat),
            beats: heartbeat.beats.load(Relaxed),
            since: Instant::now(),
        });
    START.call_once(|| {
        // Without its thread the watchdog only misses busy loops; a run goes on.
        let _ = std::thread::Builder::new()
            .name("sim-runtime-watchdog".into())
            .spawn(watch_forever);
    });
}

fn watch_forever() {
    loop {
        std::thread::sleep(LOOK_EVERY);
        let mut watched = WATCHED.lock().unwrap_or_else(PoisonError::into_inner);
        watched.retain(|w| w.heartbeat.strong_count() > 0);
        for w in watched.iter_mut() {
            let Some(h) = w.heartbeat.upgrade() else {
                continue;
            };
            let beats = h.beats.load(Relaxed);
            let now = Instant::now();
            if beats != w.beats || h.waiting.load(Relaxed) || h.stopped.load(Relaxed) {
                w.beats = beats;
                w.since = now;
                continue;
            }
            let stuck_for = now.duration_since(w.since);
            if stuck_for >= h.limit {
                eprint!("{}", h.report(stuck_for));
                std::process::exit(101);
            }
        }
    }
}
