//! # sim-runtime: the deterministic world
//!
//! A single-threaded, seeded async runtime in which simulated time, randomness and
//! scheduling are all functions of one `u64` seed. Everything above it (the network, the
//! models, the scenarios) runs as tasks on named nodes that can be killed, restarted and
//! paused.
//!
//! Map of the crate:
//! - [`sim`]: `Sim`, one run from configuration to [`Report`]; [`outcome`]: how it ended.
//! - `world` (private): the executor loop and its state; [`task`]: spawn, join, abort.
//! - `watchdog` (private): the thread outside every simulation that reports a task
//!   looping without awaiting (`SimConfig::busy_loop_limit`).
//! - [`time`]: virtual `Instant`, `sleep`, `timeout`, `interval`.
//! - [`mod@rng`]: ChaCha streams with named forks, `Probability`; [`rng()`] per node
//!   life, [`rng_global`] per run.
//! - [`node`]: nodes, kill/restart/pause/resume, CPU cores (`compute`), memory budgets.
//! - [`trace`]: events, the fingerprint, captures for checkers, JSON lines.
//! - [`schedule`]: `FaultSchedule<F>`, proptest strategies (feature `proptest`), swarm
//!   testing.
//! - [`sometimes!`] and [`always!`] ([`probe`]): coverage probes counted per run and
//!   per sweep, declared at link time so that those never reached can be listed.
//! - [`buggify!`]: rare paths made common; [`harness`]: `SIM_SEED` & co. and replay lines.
//! - [`log`]: `tracing` lines stamped with virtual time, node and task.
//! - [`timeline`]: a run drawn as one self-contained HTML page (lanes, requests,
//!   messages, fault windows, the violation), from its trace.
//!
//! ```
//! use sim_runtime::{Sim, time::{sleep, Duration}};
//! let result = Sim::new(7).run(|| async {
//!     let h = sim_runtime::spawn(async { sleep(Duration::from_millis(5)).await; 2 });
//!     h.await.unwrap() * 21
//! });
//! assert!(result.report.is_pass());
//! assert_eq!(result.output, Some(42));
//! ```

pub mod buggify;
pub mod harness;
pub mod hash;
pub mod log;
pub mod node;
pub mod outcome;
pub mod probe;
pub mod rng;
pub mod schedule;
pub mod sim;
pub mod task;
pub mod time;
pub mod timeline;
mod timers;
pub mod trace;
mod watchdog;
mod world;

pub use node::{NodeId, NodeState};
pub use outcome::{Outcome, Report};
pub use rng::{Probability, SimRng};
pub use schedule::{FaultSchedule, ScheduledFault, Swarm};
pub use sim::{seed, RunResult, Sim, SimConfig};
pub use sim_runtime_macros::test;
pub use task::{spawn, spawn_named, spawn_on, yield_now, JoinError, JoinHandle};
pub use world::{extension, is_running};

/// A named random stream of the calling node's current life, forked by (node,
/// incarnation, name): independent of every other name and node, and new after each
/// restart, so that a restarted node draws afresh (its jitter, its backoff) instead of
/// replaying the draws of its previous life. For a stream that the whole run shares
/// whoever asks, use [`rng_global`].
pub fn rng(name: &str) -> SimRng {
    world::with(|w| {
        let node = w.current_node();
        let incarnation = w.nodes[node.index()].incarnation;
        w.root_rng
            .fork(name)
            .fork_indexed(u64::from(node.0) << 32 | u64::from(incarnation))
    })
}

/// A named random stream of the whole run, forked by name alone: the same whichever node
/// or incarnation asks, for what outlives any one node (the network's latencies, a
/// model's fault dice).
pub fn rng_global(name: &str) -> SimRng {
    world::with(|w| w.root_rng.fork(name))
}

/// Runs `f` on the simulation's shared "user" stream (for test code that needs a few
/// random draws without naming a stream).
pub fn with_rng<R>(f: impl FnOnce(&mut SimRng) -> R) -> R {
    world::with(|w| f(&mut w.user_rng))
}
