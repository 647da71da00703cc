//! The world: the one mutable state of a running simulation, reached through a
//! thread-local, and the executor loop that drives it.
//!
//! Rules that keep it sound without `unsafe`: the world is borrowed only for short,
//! non-reentrant sections, and nothing that can run user code (waking a waker, dropping a
//! future, scheduling a runnable) happens while it is borrowed. Functions that must do
//! both collect wakers inside the borrow and wake them after.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::panic::Location;
use std::rc::Rc;
use std::task::Waker;

use async_task::Runnable;
use slab::Slab;

use crate::node::{NodeConfig, NodeId, NodeState};
use crate::rng::SimRng;
use crate::time::{Duration, Instant};
use crate::trace::{EventKind, TaskId, Trace};

thread_local! {
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

/// Runs `f` on the current world. Panics outside a simulation: calling a simulated API
/// from a plain thread is a bug in the caller.
#[track_caller]
pub(crate) fn with<R>(f: impl FnOnce(&mut World) -> R) -> R {
    WORLD.with(|cell| {
        let mut guard = cell
            .try_borrow_mut()
            .expect("sim-runtime world re-entered: a simulated API was called while the world was busy");
        let w = guard
            .as_mut()
            .expect("no simulation is running on this thread: call this inside Sim::run or a #[sim_runtime::test]");
        f(w)
    })
}

/// Like [`with`], but `None` outside a simulation or while the world is busy (used by
/// destructors, which may run during teardown).
pub(crate) fn try_with<R>(f: impl FnOnce(&mut World) -> R) -> Option<R> {
    WORLD.with(|cell| {
        let mut guard = cell.try_borrow_mut().ok()?;
        guard.as_mut().map(f)
    })
}

/// The schedule function of every task. A wake after the simulation ended (a waker kept
/// in a static, say) has nowhere to go: the runnable is dropped, which drops the task.
pub(crate) fn schedule_runnable(runnable: Runnable<TaskMeta>) {
    let leftover = WORLD.with(|cell| {
        let mut guard = cell
            .try_borrow_mut()
            .expect("a task was woken while the sim-runtime world was busy (a bug in sim-runtime)");
        match guard.as_mut() {
            Some(w) => {
                w.schedule(runnable);
                None
            }
            None => Some(runnable),
        }
    });
    drop(leftover);
}

/// True while a simulation runs on this thread.
pub fn is_running() -> bool {
    WORLD.with(|cell| cell.try_borrow().map(|w| w.is_some()).unwrap_or(true))
}

pub(crate) fn install(world: World) {
    WORLD.with(|cell| {
        let mut slot = cell.borrow_mut();
        assert!(
            slot.is_none(),
            "a simulation is already running on this thread; simulations do not nest"
        );
        *slot = Some(world);
    });
}

pub(crate) fn uninstall() -> Option<World> {
    WORLD.with(|cell| cell.borrow_mut().take())
}

/// Task metadata stored inside each async-task header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TaskMeta {
    pub id: u64,
    pub key: u32,
    pub node: u32,
}

pub(crate) struct TaskEntry {
    pub id: u64,
    pub node: NodeId,
    pub killed: bool,
    pub waker: Option<Waker>,
    pub name: &'static str,
    pub location: &'static Location<'static>,
}

/// A timer registration: which slab slot and which registration (slots are reused).
#[derive(Clone, Copy, Debug)]
pub(crate) struct TimerKey {
    key: u32,
    seq: u64,
}

struct TimerEntry {
    seq: u64,
    waker: Waker,
    task: Option<TaskId>,
    node: NodeId,
}

pub(crate) struct NodeEntry {
    pub name: String,
    pub state: NodeState,
    pub incarnation: u32,
    pub config: NodeConfig,
    pub factory: Option<Rc<dyn Fn() -> futures::future::LocalBoxFuture<'static, ()>>>,
    pub held: Vec<Runnable<TaskMeta>>,
    /// When each simulated core is next free (FIFO scheduling of `compute`).
    pub cores_free_at: Vec<Instant>,
    pub memory_used: u64,
    pub cpu_busy: Duration,
}

/// Limits and knobs of the executor.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    pub time_limit: Option<Instant>,
    pub step_limit: Option<u64>,
    pub trace_polls: bool,
}

pub(crate) struct PanicRecord {
    pub message: String,
    pub location: Option<String>,
    pub node: NodeId,
    pub task: Option<TaskId>,
    pub task_name: &'static str,
}

type LifecycleHook = Rc<dyn Fn(NodeId, crate::node::Lifecycle)>;

pub(crate) struct World {
    pub now: Instant,
    pub seed: u64,
    pub root_rng: SimRng,
    sched_rng: SimRng,
    run_queue: Vec<Runnable<TaskMeta>>,
    reap_queue: Vec<Runnable<TaskMeta>>,
    pub tasks: Slab<TaskEntry>,
    next_task_id: u64,
    pub nodes: Vec<NodeEntry>,
    timers: BinaryHeap<Reverse<(Instant, u64, u32)>>,
    timer_slab: Slab<TimerEntry>,
    timer_seq: u64,
    pub trace: Trace,
    pub current: Option<TaskMeta>,
    pub steps: u64,
    pub limits: Limits,
    pub panic: Option<PanicRecord>,
    pub lifecycle_hooks: Vec<LifecycleHook>,
    extensions: BTreeMap<TypeId, Rc<dyn Any>>,
    pub buggify: crate::buggify::BuggifyState,
    pub user_rng: SimRng,
}

impl World {
    pub(crate) fn new(seed: u64, ring_capacity: usize, limits: Limits) -> Self {
        let root_rng = SimRng::new(seed);
        let sched_rng = root_rng.fork("sim-runtime.scheduler");
        let user_rng = root_rng.fork("user");
        let buggify = crate::buggify::BuggifyState::new(&root_rng);
        let mut w = World {
            now: Instant::START,
            seed,
            root_rng,
            sched_rng,
            run_queue: Vec::new(),
            reap_queue: Vec::new(),
            tasks: Slab::new(),
            next_task_id: 0,
            nodes: Vec::new(),
            timers: BinaryHeap::new(),
            timer_slab: Slab::new(),
            timer_seq: 0,
            trace: Trace::new(ring_capacity),
            current: None,
            steps: 0,
            limits,
            panic: None,
            lifecycle_hooks: Vec::new(),
            extensions: BTreeMap::new(),
            buggify,
            user_rng,
        };
        // Node 0 runs the test's main future; it can be neither killed nor paused.
        w.nodes.push(NodeEntry {
            name: "main".to_string(),
            state: NodeState::Running,
            incarnation: 0,
            config: NodeConfig::default(),
            factory: None,
            held: Vec::new(),
            cores_free_at: vec![Instant::START],
            memory_used: 0,
            cpu_busy: Duration::ZERO,
        });
        w
    }

    // ----- context -----

    pub(crate) fn current_node(&self) -> NodeId {
        self.current.map_or(NodeId::MAIN, |m| NodeId(m.node))
    }

    pub(crate) fn current_task(&self) -> Option<TaskId> {
        self.current.map(|m| TaskId(m.id))
    }

    pub(crate) fn emit_custom<T: serde::Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        fields: &T,
    ) {
        let node = self.current_node();
        let task = self.current_task();
        self.trace.custom(self.now, node, task, name, fields);
    }

    pub(crate) fn core_event(&mut self, node: NodeId, task: Option<TaskId>, kind: EventKind) {
        self.trace.core(self.now, node, task, kind);
    }

    /// Gets or creates the per-simulation extension of type `T` (how upper crates such
    /// as sim-net keep their state inside the world without the runtime knowing them).
    pub(crate) fn extension<T: Default + 'static>(&mut self) -> Rc<T> {
        let entry = self
            .extensions
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Rc::new(T::default()) as Rc<dyn Any>);
        Rc::clone(entry)
            .downcast::<T>()
            .expect("extension map keyed by TypeId")
    }

    // ----- clocks -----

    /// What the current node's clock reads: true time plus skew plus drift.
    pub(crate) fn local_now(&self) -> Instant {
        let cfg = &self.nodes[self.current_node().index()].config;
        if cfg.clock_skew_nanos == 0 && cfg.clock_drift_ppm == 0 {
            return self.now;
        }
        let t = self.now.as_nanos() as i128;
        let drift = t * cfg.clock_drift_ppm as i128 / 1_000_000;
        let local = t + cfg.clock_skew_nanos as i128 + drift;
        Instant::from_nanos(local.clamp(0, u64::MAX as i128) as u64)
    }

    /// Converts a local clock reading of the current node into true time.
    pub(crate) fn local_to_global(&self, local: Instant) -> Instant {
        let cfg = &self.nodes[self.current_node().index()].config;
        if cfg.clock_skew_nanos == 0 && cfg.clock_drift_ppm == 0 {
            return local;
        }
        let l = local.as_nanos() as i128 - cfg.clock_skew_nanos as i128;
        let t = l * 1_000_000 / (1_000_000 + cfg.clock_drift_ppm as i128);
        Instant::from_nanos(t.clamp(0, u64::MAX as i128) as u64)
    }

    /// A local duration of the current node in true time (a fast clock sleeps short).
    pub(crate) fn global_duration(&self, local: Duration) -> Duration {
        let cfg = &self.nodes[self.current_node().index()].config;
        if cfg.clock_drift_ppm == 0 {
            return local;
        }
        let n =
            local.as_nanos() * 1_000_000 / (1_000_000 + cfg.clock_drift_ppm as i128).max(1) as u128;
        Duration::from_nanos(n.min(u64::MAX as u128) as u64)
    }

    // ----- timers -----

    pub(crate) fn add_timer(&mut self, deadline: Instant, waker: Waker) -> TimerKey {
        self.timer_seq += 1;
        let seq = self.timer_seq;
        let entry = TimerEntry {
            seq,
            waker,
            task: self.current_task(),
            node: self.current_node(),
        };
        let key = self.timer_slab.insert(entry) as u32;
        self.timers.push(Reverse((deadline, seq, key)));
        TimerKey { key, seq }
    }

    pub(crate) fn update_timer_waker(&mut self, key: TimerKey, waker: &Waker) {
        if let Some(e) = self.timer_slab.get_mut(key.key as usize) {
            if e.seq == key.seq && !e.waker.will_wake(waker) {
                e.waker = waker.clone();
            }
        }
    }

    /// Removes a registration; returns its waker so the caller drops it outside the borrow.
    pub(crate) fn cancel_timer(&mut self, key: TimerKey) -> Option<Waker> {
        match self.timer_slab.get(key.key as usize) {
            Some(e) if e.seq == key.seq => Some(self.timer_slab.remove(key.key as usize).waker),
            _ => None,
        }
    }

    /// The earliest live timer deadline, discarding cancelled ones.
    fn next_timer(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, seq, key))) = self.timers.peek().copied() {
            match self.timer_slab.get(key as usize) {
                Some(e) if e.seq == seq => return Some(at),
                _ => {
                    self.timers.pop();
                }
            }
        }
        None
    }

    /// Pops every live timer due at `at` and returns their wakers, in registration order.
    fn fire_timers(&mut self, at: Instant, wakers: &mut Vec<Waker>) {
        while let Some(Reverse((due, seq, key))) = self.timers.peek().copied() {
            if due > at {
                break;
            }
            self.timers.pop();
            let live = matches!(self.timer_slab.get(key as usize), Some(e) if e.seq == seq);
            if live {
                let e = self.timer_slab.remove(key as usize);
                self.trace
                    .core(self.now, e.node, e.task, EventKind::TimerFire);
                wakers.push(e.waker);
            }
        }
    }

    // ----- tasks -----

    pub(crate) fn register_task(
        &mut self,
        node: NodeId,
        name: &'static str,
        location: &'static Location<'static>,
    ) -> TaskMeta {
        let id = self.next_task_id;
        self.next_task_id += 1;
        let killed = !self.nodes[node.index()].state.is_alive();
        let key = self.tasks.insert(TaskEntry {
            id,
            node,
            killed,
            waker: None,
            name,
            location,
        }) as u32;
        self.core_event(node, Some(TaskId(id)), EventKind::TaskSpawn { name });
        TaskMeta {
            id,
            key,
            node: node.0,
        }
    }

    pub(crate) fn task_entry(&mut self, meta: TaskMeta) -> Option<&mut TaskEntry> {
        self.tasks
            .get_mut(meta.key as usize)
            .filter(|e| e.id == meta.id)
    }

    pub(crate) fn finish_task(&mut self, meta: TaskMeta, aborted: bool) -> Option<Waker> {
        let entry = self.tasks.get(meta.key as usize)?;
        if entry.id != meta.id {
            return None;
        }
        let entry = self.tasks.remove(meta.key as usize);
        let kind = if aborted {
            EventKind::TaskAbort
        } else {
            EventKind::TaskComplete
        };
        self.core_event(entry.node, Some(TaskId(meta.id)), kind);
        entry.waker
    }

    /// The schedule function of every task: where a woken runnable goes.
    pub(crate) fn schedule(&mut self, runnable: Runnable<TaskMeta>) {
        let meta = *runnable.metadata();
        match self.tasks.get(meta.key as usize) {
            Some(e) if e.id == meta.id && !e.killed => {
                let node = &mut self.nodes[meta.node as usize];
                if node.state == NodeState::Paused {
                    node.held.push(runnable);
                } else {
                    self.run_queue.push(runnable);
                }
            }
            // Killed, aborted or finished: run it only so that async-task drops it.
            _ => self.reap_queue.push(runnable),
        }
    }

    /// Marks a task killed and returns its waker so it gets polled once more to drop its
    /// future (never the user's future).
    pub(crate) fn kill_task(&mut self, meta_key: u32, id: u64) -> Option<Waker> {
        let e = self
            .tasks
            .get_mut(meta_key as usize)
            .filter(|e| e.id == id)?;
        e.killed = true;
        e.waker.clone()
    }

    /// Marks every task of `node` killed; returns wakers to wake after the borrow.
    pub(crate) fn kill_node_tasks(&mut self, node: NodeId, wakers: &mut Vec<Waker>) {
        for (_, e) in self.tasks.iter_mut() {
            if e.node == node && !e.killed {
                e.killed = true;
                if let Some(w) = &e.waker {
                    wakers.push(w.clone());
                }
            }
        }
        let held = std::mem::take(&mut self.nodes[node.index()].held);
        self.reap_queue.extend(held);
    }

    pub(crate) fn release_held(&mut self, node: NodeId) {
        let held = std::mem::take(&mut self.nodes[node.index()].held);
        self.run_queue.extend(held);
    }

    /// Every task that is alive but not runnable: the deadlock report.
    pub(crate) fn blocked_tasks(&self) -> Vec<crate::outcome::BlockedTask> {
        self.tasks
            .iter()
            .filter(|(_, e)| !e.killed)
            .map(|(_, e)| crate::outcome::BlockedTask {
                task: TaskId(e.id),
                node: self.nodes[e.node.index()].name.clone(),
                name: e.name.to_string(),
                spawned_at: format!("{}:{}", e.location.file(), e.location.line()),
            })
            .collect()
    }

    pub(crate) fn node_name(&self, node: NodeId) -> &str {
        &self.nodes[node.index()].name
    }
}

/// What one executor step did.
pub(crate) enum Step {
    Ran,
    Idle,
    Panicked,
    TimeLimit,
    OutOfSteps(u64),
    Deadlock,
}

/// Picks and runs one runnable, or advances the clock. Never holds the world borrow while
/// user code runs.
pub(crate) fn step() -> Step {
    enum Next {
        Run(Runnable<TaskMeta>),
        Wake(Vec<Waker>),
        TimeLimit,
        StepLimit(u64),
        Deadlock,
    }
    let next = with(|w| {
        if let Some(limit) = w.limits.step_limit.filter(|l| w.steps >= *l) {
            return Next::StepLimit(limit);
        }
        if let Some(r) = w.reap_queue.pop() {
            return Next::Run(r);
        }
        if !w.run_queue.is_empty() {
            let i = w.sched_rng.index(w.run_queue.len());
            return Next::Run(w.run_queue.swap_remove(i));
        }
        match w.next_timer() {
            Some(at) => {
                if w.limits.time_limit.is_some_and(|limit| at > limit) {
                    return Next::TimeLimit;
                }
                w.now = w.now.max(at);
                let mut wakers = Vec::new();
                w.fire_timers(at, &mut wakers);
                Next::Wake(wakers)
            }
            None => Next::Deadlock,
        }
    });
    match next {
        Next::Run(r) => {
            let meta = *r.metadata();
            with(|w| {
                w.steps += 1;
                w.current = Some(meta);
                if w.limits.trace_polls {
                    w.core_event(
                        NodeId(meta.node),
                        Some(TaskId(meta.id)),
                        EventKind::TaskPoll,
                    );
                }
            });
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.run()));
            let panicked = result.is_err();
            with(|w| {
                w.current = None;
                if panicked && w.panic.is_none() {
                    let (message, location) = crate::outcome::take_panic_info();
                    let task_name = w
                        .tasks
                        .get(meta.key as usize)
                        .filter(|e| e.id == meta.id)
                        .map_or("?", |e| e.name);
                    w.panic = Some(PanicRecord {
                        message,
                        location,
                        node: NodeId(meta.node),
                        task: Some(TaskId(meta.id)),
                        task_name,
                    });
                }
            });
            if let Err(payload) = result {
                // Keep the payload alive until after the borrow: dropping it runs user code.
                drop(payload);
                return Step::Panicked;
            }
            Step::Ran
        }
        Next::Wake(wakers) => {
            for w in wakers {
                w.wake();
            }
            Step::Idle
        }
        Next::TimeLimit => Step::TimeLimit,
        Next::StepLimit(l) => Step::OutOfSteps(l),
        Next::Deadlock => Step::Deadlock,
    }
}

/// Kills every task and runs the reaper until nothing is left, so that all futures are
/// dropped while the world still exists (their destructors may call into it).
pub(crate) fn teardown() {
    loop {
        let mut wakers = Vec::new();
        let work = with(|w| {
            for (_, e) in w.tasks.iter_mut() {
                if !e.killed {
                    e.killed = true;
                    if let Some(wk) = &e.waker {
                        wakers.push(wk.clone());
                    }
                }
            }
            for n in 0..w.nodes.len() {
                let held = std::mem::take(&mut w.nodes[n].held);
                w.reap_queue.extend(held);
            }
            let queued = std::mem::take(&mut w.run_queue);
            w.reap_queue.extend(queued);
            std::mem::take(&mut w.reap_queue)
        });
        for wk in wakers {
            wk.wake();
        }
        if work.is_empty() && with(|w| w.reap_queue.is_empty() && w.run_queue.is_empty()) {
            break;
        }
        for r in work {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.run()));
        }
    }
}

/// Public handle on per-simulation extension state (see [`World::extension`]).
pub fn extension<T: Default + 'static>() -> Rc<T> {
    with(|w| w.extension::<T>())
}
