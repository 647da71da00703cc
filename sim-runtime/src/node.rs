//! Nodes: named groups of tasks built from a factory, so that they can be killed,
//! restarted, paused and resumed like processes. Each node has simulated CPU cores
//! (`compute`) and an optional memory budget (`reserve_memory`), so CPU saturation and
//! OOM kills are part of the model.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::rc::Rc;

use futures::FutureExt;
use serde::{Deserialize, Serialize};

use crate::task::{self, JoinHandle};
use crate::time::{self, Duration, Instant};
use crate::trace::EventKind;
use crate::world::{self, NodeEntry};

/// A node's identity. Stable across restarts (the incarnation changes instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The node that runs the test's main future.
    pub const MAIN: NodeId = NodeId(0);

    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }

    /// The node's name.
    pub fn name(self) -> String {
        world::with(|w| w.node_name(self).to_string())
    }

    /// Kills the node: every task is dropped (destructors run) and never polled again;
    /// CPU queues and memory are released. The node stays down until `restart`.
    pub fn kill(self) {
        kill(self)
    }

    /// Runs the factory again (killing the node first if it is up).
    pub fn restart(self) {
        restart(self)
    }

    /// Holds the node's tasks and timers, as SIGSTOP would.
    pub fn pause(self) {
        pause(self)
    }

    /// Releases a paused node; what it missed runs at once.
    pub fn resume(self) {
        resume(self)
    }

    pub fn state(self) -> NodeState {
        world::with(|w| w.nodes[self.index()].state)
    }

    pub fn is_alive(self) -> bool {
        self.state().is_alive()
    }

    /// How many times the node has been (re)started; 0 for the first start.
    pub fn incarnation(self) -> u32 {
        world::with(|w| w.nodes[self.index()].incarnation)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An id that names no node (a typo in a test, a stale id) still prints.
        let name = world::try_with(|w| w.nodes.get(self.index()).map(|n| n.name.clone())).flatten();
        match name {
            Some(name) => write!(f, "{name}"),
            None => write!(f, "n{}", self.0),
        }
    }
}

/// Whether a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeState {
    Running,
    Paused,
    Killed,
}

impl NodeState {
    /// Running or paused: the process exists.
    pub fn is_alive(self) -> bool {
        !matches!(self, NodeState::Killed)
    }
}

/// A change in a node's life, delivered to [`on_lifecycle`] hooks (sim-net uses them to
/// reset connections of a killed node).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    Killed,
    Restarted,
    Paused,
    Resumed,
}

/// A node's resources. `Default` is one core, no memory budget, a perfect clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeConfig {
    /// Simulated CPU cores for `compute`.
    pub cores: usize,
    /// Bytes the node may reserve before the OOM killer kills it; `None` is unlimited.
    pub memory_budget: Option<u64>,
    /// A constant offset of the node's clock, in nanoseconds (may be negative).
    pub clock_skew_nanos: i64,
    /// How fast the node's clock runs, in parts per million (100 = 0.01 % fast).
    pub clock_drift_ppm: i64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            cores: 1,
            memory_budget: None,
            clock_skew_nanos: 0,
            clock_drift_ppm: 0,
        }
    }
}

type Factory = Rc<dyn Fn() -> futures::future::LocalBoxFuture<'static, ()>>;

/// Builds a node: `node("api-1").cores(4).build(|| async { serve().await })`.
#[derive(Clone, Debug)]
pub struct NodeBuilder {
    name: String,
    config: NodeConfig,
}

/// Starts describing a node named `name`.
pub fn node(name: impl Into<String>) -> NodeBuilder {
    NodeBuilder {
        name: name.into(),
        config: NodeConfig::default(),
    }
}

impl NodeBuilder {
    pub fn cores(mut self, cores: usize) -> Self {
        assert!(cores > 0, "a node needs at least one core");
        self.config.cores = cores;
        self
    }

    pub fn memory_budget(mut self, bytes: u64) -> Self {
        self.config.memory_budget = Some(bytes);
        self
    }

    pub fn clock_skew(mut self, skew_nanos: i64) -> Self {
        self.config.clock_skew_nanos = skew_nanos;
        self
    }

    pub fn clock_drift_ppm(mut self, ppm: i64) -> Self {
        assert!(ppm > -1_000_000, "a clock cannot run backwards");
        self.config.clock_drift_ppm = ppm;
        self
    }

    pub fn config(mut self, config: NodeConfig) -> Self {
        self.config = config;
        self
    }

    /// Creates the node and starts its factory's future as the node's first task.
    #[track_caller]
    pub fn build<F, Fut>(self, factory: F) -> NodeId
    where
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let factory: Factory = Rc::new(move || factory().boxed_local());
        let cores = self.config.cores;
        let id = world::with(|w| {
            let id = NodeId(w.nodes.len() as u32);
            if self.config.clock_drift_ppm != 0 {
                world::note_clock_drift();
            }
            w.note_node(&self.name);
            w.nodes.push(NodeEntry {
                name: self.name.clone(),
                state: NodeState::Running,
                incarnation: 0,
                config: self.config,
                factory: Some(factory.clone()),
                held: Vec::new(),
                epoch: 0,
                cores_free_at: vec![Instant::START; cores],
                memory_used: 0,
                cpu_busy: Duration::ZERO,
            });
            w.core_event(id, None, EventKind::NodeStart { name: self.name });
            id
        });
        start(id, factory);
        id
    }
}

fn start(id: NodeId, factory: Factory) {
    let name: &'static str = "node-main";
    let fut = factory();
    task::spawn_on_named(id, name, Location::caller(), fut).detach();
}

fn notify(id: NodeId, event: Lifecycle) {
    let hooks = world::with(|w| w.lifecycle_hooks.clone());
    for h in hooks {
        h(id, event);
    }
}

/// Registers a hook called after each node lifecycle change.
pub fn on_lifecycle(hook: impl Fn(NodeId, Lifecycle) + 'static) {
    world::with(|w| w.lifecycle_hooks.push(Rc::new(hook)));
}

pub(crate) fn kill(id: NodeId) {
    assert_ne!(id, NodeId::MAIN, "the main node cannot be killed");
    let mut wakers = Vec::new();
    let killed = world::with(|w| {
        let node = &mut w.nodes[id.index()];
        if !node.state.is_alive() {
            return false;
        }
        node.state = NodeState::Killed;
        node.memory_used = 0;
        let now = w.now;
        for c in node.cores_free_at.iter_mut() {
            *c = now;
        }
        w.core_event(id, None, EventKind::NodeKill);
        w.kill_node_tasks(id, &mut wakers);
        true
    });
    for wk in wakers {
        wk.wake();
    }
    if killed {
        notify(id, Lifecycle::Killed);
    }
}

pub(crate) fn restart(id: NodeId) {
    assert_ne!(id, NodeId::MAIN, "the main node cannot be restarted");
    kill(id);
    let factory = world::with(|w| {
        let node = &mut w.nodes[id.index()];
        node.state = NodeState::Running;
        node.incarnation += 1;
        w.core_event(id, None, EventKind::NodeRestart);
        w.nodes[id.index()].factory.clone()
    });
    if let Some(f) = factory {
        start(id, f);
    }
    notify(id, Lifecycle::Restarted);
}

pub(crate) fn pause(id: NodeId) {
    assert_ne!(id, NodeId::MAIN, "the main node cannot be paused");
    let changed = world::with(|w| {
        let node = &mut w.nodes[id.index()];
        if node.state != NodeState::Running {
            return false;
        }
        node.state = NodeState::Paused;
        w.core_event(id, None, EventKind::NodePause);
        true
    });
    if changed {
        notify(id, Lifecycle::Paused);
    }
}

pub(crate) fn resume(id: NodeId) {
    let changed = world::with(|w| {
        let node = &mut w.nodes[id.index()];
        if node.state != NodeState::Paused {
            return false;
        }
        node.state = NodeState::Running;
        w.core_event(id, None, EventKind::NodeResume);
        w.release_held(id);
        true
    });
    if changed {
        notify(id, Lifecycle::Resumed);
    }
}

/// The node the calling task runs on.
pub fn current() -> NodeId {
    world::with(|w| w.current_node())
}

/// The current node and its incarnation, in one look (hot paths key state by both).
pub fn current_with_incarnation() -> (NodeId, u32) {
    world::with(|w| {
        let node = w.current_node();
        (node, w.nodes[node.index()].incarnation)
    })
}

/// Finds a node by name.
pub fn lookup(name: &str) -> Option<NodeId> {
    world::with(|w| {
        w.nodes
            .iter()
            .position(|n| n.name == name)
            .map(|i| NodeId(i as u32))
    })
}

/// Every node, in creation order.
pub fn all() -> Vec<NodeId> {
    world::with(|w| (0..w.nodes.len() as u32).map(NodeId).collect())
}

/// Occupies one of the current node's cores for `cost` of virtual time. Requests queue
/// FIFO for the earliest free core, so with N cores and a fixed cost throughput plateaus
/// at N / cost and latency grows with the queue, like a bcrypt-bound service.
pub async fn compute(cost: Duration) {
    let done = world::with(|w| {
        let now = w.now;
        let node = w.current_node();
        let entry = &mut w.nodes[node.index()];
        entry.cpu_busy += cost;
        let (core, free_at) = entry
            .cores_free_at
            .iter()
            .copied()
            .enumerate()
            .min_by_key(|(i, t)| (*t, *i))
            .expect("a node has at least one core");
        let start = free_at.max(now);
        let end = start + cost;
        entry.cores_free_at[core] = end;
        end
    });
    // Sleep in true time: CPU work does not care how the node's clock drifts.
    time::sleep_until_global(done).await;
}

/// CPU time consumed by `node` through `compute` so far (for utilisation metrics).
pub fn cpu_busy(node: NodeId) -> Duration {
    world::with(|w| w.nodes[node.index()].cpu_busy)
}

/// Reserved memory, returned to the node when dropped (unless the node died since).
#[derive(Debug)]
pub struct MemoryGuard {
    node: NodeId,
    incarnation: u32,
    bytes: u64,
}

impl Drop for MemoryGuard {
    fn drop(&mut self) {
        world::try_with(|w| {
            let n = &mut w.nodes[self.node.index()];
            if n.incarnation == self.incarnation && n.state.is_alive() {
                n.memory_used = n.memory_used.saturating_sub(self.bytes);
            }
        });
    }
}

/// Reserves `bytes` on the current node. Beyond its budget the OOM killer kills the node,
/// and this future never completes (the calling task dies with its node).
pub async fn reserve_memory(bytes: u64) -> MemoryGuard {
    enum Verdict {
        Granted(MemoryGuard),
        Oom(NodeId),
    }
    let verdict = world::with(|w| {
        let id = w.current_node();
        let n = &mut w.nodes[id.index()];
        let used = n.memory_used.saturating_add(bytes);
        match n.config.memory_budget {
            Some(budget) if used > budget => {
                w.core_event(
                    id,
                    w.current_task(),
                    EventKind::NodeOom {
                        requested: bytes,
                        budget,
                    },
                );
                Verdict::Oom(id)
            }
            _ => {
                n.memory_used = used;
                Verdict::Granted(MemoryGuard {
                    node: id,
                    incarnation: n.incarnation,
                    bytes,
                })
            }
        }
    });
    match verdict {
        Verdict::Granted(g) => g,
        Verdict::Oom(id) => {
            kill(id);
            // The task is marked killed; it will be dropped before it is polled again.
            std::future::pending::<MemoryGuard>().await
        }
    }
}

/// Memory reserved on `node` now.
pub fn memory_used(node: NodeId) -> u64 {
    world::with(|w| w.nodes[node.index()].memory_used)
}

/// Spawns a named task on `node`.
#[track_caller]
pub fn spawn_on_node<F>(node: NodeId, name: &'static str, future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    task::spawn_on_named(node, name, Location::caller(), future)
}
