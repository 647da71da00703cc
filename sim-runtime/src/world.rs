//! The world: the one mutable state of a running simulation, reached through a
//! thread-local, and the executor loop that drives it.
//!
//! Rules that keep it sound without `unsafe`: the world is borrowed only for short,
//! non-reentrant sections, and nothing that can run user code (waking a waker, dropping a
//! future, scheduling a runnable) happens while it is borrowed. Functions that must do
//! both collect wakers inside the borrow and wake them after.
//!
//! How a step stays cheap with a million tasks: whether a task is dead is read from its
//! own header (its node's kill epoch), not from the registry; dead tasks go to a reaper
//! queue that runs before anything else, so a kill's destructors run at the kill's
//! instant; the scheduler picks among a bounded window of the oldest runnables
//! (`SCHED_WINDOW`); timers sit in per-instant buckets, and every timer due at or before
//! `now` has fired, which lets a due `Sleep` complete without a borrow.

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::mem::ManuallyDrop;
use std::panic::Location;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;

use async_task::Runnable;
use slab::Slab;

use crate::node::{NodeConfig, NodeId, NodeState};
use crate::rng::SimRng;
use crate::time::{Duration, Instant};
use crate::timers::{TimerKey, Timers};
use crate::trace::{EventKind, TaskId, Trace};
use crate::watchdog::Heartbeat;

thread_local! {
    /// `ManuallyDrop` so that the thread-local has no destructor to register, which every
    /// access would check: `uninstall` takes the world out at the end of each run (a
    /// world left behind by a panic escaping `Sim::run` is leaked at thread exit).
    static WORLD: ManuallyDrop<RefCell<Option<World>>> =
        const { ManuallyDrop::new(RefCell::new(None)) };
    /// What code inside a poll reads without borrowing the world, in one thread-local:
    /// each access to a thread-local is a call here, and the hot paths read several.
    static FAST: Fast = const {
        Fast {
            poll: Cell::new(0),
            now: Cell::new(0),
            drift: Cell::new(false),
        }
    };
    /// The waker of a task that parked for the first time (see [`PollFlags::park`]).
    static PARKED: Cell<Option<Waker>> = const { Cell::new(None) };
}

struct Fast {
    /// What the executor and the polled task's wrapper tell each other: `POLL_*` bits.
    poll: Cell<u8>,
    /// A copy of `World::now` in nanoseconds.
    now: Cell<u64>,
    /// Whether any node's clock drifts, so that a local duration differs from a true one
    /// (see [`sleep_deadline`]).
    drift: Cell<bool>,
}

/// The poll in progress only drops a dead task's future.
const POLL_REAP: u8 = 1;
/// The polled task never parked before: keep its waker if it parks.
const POLL_WANT_WAKER: u8 = 2;
/// The task's future completed.
const POLL_COMPLETED: u8 = 4;
/// The task's future was dropped unfinished.
const POLL_ABORTED: u8 = 8;

/// What the executor told the poll in progress, read once by the task's wrapper.
#[derive(Clone, Copy)]
pub(crate) struct PollFlags(u8);

impl PollFlags {
    /// Whether the task being polled is dead, so that its wrapper drops the future
    /// instead of polling it.
    #[inline]
    pub(crate) fn is_reap(self) -> bool {
        self.0 & POLL_REAP != 0
    }

    /// Called by a task's wrapper when its future returned `Pending`. The first time a
    /// task parks, the executor keeps its waker in the registry so that `kill` can wake
    /// it; tasks that complete in their first poll never pay for a waker.
    #[inline]
    pub(crate) fn park(self, waker: &Waker) {
        if self.0 & POLL_WANT_WAKER != 0 {
            PARKED.with(|p| p.set(Some(waker.clone())));
        }
    }
}

/// The flags of the poll in progress. A plain thread-local rather than the world: it is
/// read on every poll.
#[inline]
pub(crate) fn poll_flags() -> PollFlags {
    PollFlags(FAST.with(|f| f.poll.get()))
}

/// The running simulation's true time, from a thread-local copy (no world borrow).
/// Every timer whose deadline is at or before it has fired: the clock only moves by
/// firing all timers due at the new instant, and timers are only set in the future.
#[inline]
pub(crate) fn now_fast() -> Instant {
    Instant::from_nanos(FAST.with(|f| f.now.get()))
}

/// Called when a node with a drifting clock joins the run.
pub(crate) fn note_clock_drift() {
    FAST.with(|f| f.drift.set(true));
}

/// The true deadline of a sleep of `duration` on the calling node's clock. Without
/// drift anywhere (nearly always) that is `now + duration`, and needs no world borrow:
/// `sleep` is on the hot path of every timer-heavy program.
#[inline]
pub(crate) fn sleep_deadline(duration: Duration) -> Instant {
    if let Some(now) = FAST.with(|f| (!f.drift.get()).then(|| f.now.get())) {
        return Instant::from_nanos(now) + duration;
    }
    with(|w| {
        let local = w.global_duration(duration);
        w.now + local
    })
}

/// Called by a task's wrapper when its future completed or was dropped; the executor
/// removes the task from the registry after the poll.
#[inline]
pub(crate) fn task_done(aborted: bool) {
    let bit = if aborted {
        POLL_ABORTED
    } else {
        POLL_COMPLETED
    };
    FAST.with(|f| f.poll.set(f.poll.get() | bit));
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
#[inline]
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
        FAST.with(|f| {
            f.now.set(world.now.as_nanos());
            f.drift.set(false);
        });
        *slot = Some(world);
    });
}

pub(crate) fn uninstall() -> Option<World> {
    FAST.with(|f| {
        f.now.set(0);
        f.drift.set(false);
    });
    WORLD.with(|cell| cell.borrow_mut().take())
}

/// Task metadata stored inside each async-task header. The executor reads it on every
/// step, so whether a task is dead is decided here, without touching the task registry:
/// a task is dead once its epoch differs from its node's, because the node was killed
/// after the task was spawned or because the task was aborted (its epoch set to `DEAD`).
///
/// Five 4-byte words: with async-task's own fields (three words and a flag), a 56-byte
/// header, which async-task's flag fills to the end. With a million live tasks each
/// byte here is a megabyte, which is why a task enters the registry (another 48 bytes)
/// only when it first parks: most tasks finish in their first poll. Five words rather
/// than six also keep a small task within the allocator's 128-byte size class.
#[derive(Debug)]
pub(crate) struct TaskMeta {
    id_low: u32,
    /// The id's bits 32..40 in the low `ID_HIGH_BITS`, the site above them: an index
    /// into `World::sites`, the spawn's name and location.
    id_high_site: u32,
    /// The task's registry key once it parked, `NO_KEY` before. Set before its first
    /// poll to the key that registering would take (see `step`).
    pub key: Cell<u32>,
    pub node: u32,
    /// The epoch (`EPOCH_MASK` bits) and the `POLLED` flag: whether the task was polled
    /// before (so a later park needs no registration).
    state: Cell<u32>,
}

const _: () = assert!(std::mem::size_of::<TaskMeta>() == 20);

/// Bits of a task id above the low 32 kept in `TaskMeta::id_high_site`: a run may
/// spawn 2^40 tasks, and name 2^24 spawn sites (call sites and names: a few hundred).
const ID_HIGH_BITS: u32 = 8;
const MAX_TASKS: u64 = 1 << (32 + ID_HIGH_BITS);
const MAX_SITES: u32 = 1 << (32 - ID_HIGH_BITS);

/// `TaskMeta::key` of a task that never parked.
pub(crate) const NO_KEY: u32 = u32::MAX;

/// The epoch bits of `TaskMeta::state`; node epochs wrap within them.
const EPOCH_MASK: u32 = u32::MAX >> 1;
/// The epoch of an aborted task, or of one spawned onto a killed node; no node has it.
const DEAD: u32 = EPOCH_MASK;
const POLLED: u32 = !EPOCH_MASK;

impl TaskMeta {
    fn new(id: u64, site: u32, node: u32, epoch: u32) -> Self {
        assert!(id < MAX_TASKS, "a run may spawn at most 2^40 tasks");
        assert!(site < MAX_SITES, "a run may have at most 2^24 spawn sites");
        TaskMeta {
            id_low: id as u32,
            id_high_site: (id >> 32) as u32 | site << ID_HIGH_BITS,
            key: Cell::new(NO_KEY),
            node,
            state: Cell::new(epoch),
        }
    }

    pub(crate) fn id(&self) -> u64 {
        let high = self.id_high_site & ((1 << ID_HIGH_BITS) - 1);
        u64::from(high) << 32 | u64::from(self.id_low)
    }

    /// Index into `World::sites`: the spawn's name and location.
    pub(crate) fn site(&self) -> u32 {
        self.id_high_site >> ID_HIGH_BITS
    }

    fn epoch(&self) -> u32 {
        self.state.get() & EPOCH_MASK
    }

    /// Marks the task aborted: dead whatever its node's epoch.
    pub(crate) fn abort(&self) {
        self.state.set(self.state.get() & POLLED | DEAD);
    }

    /// Sets the polled flag; returns whether it was set already.
    fn mark_polled(&self) -> bool {
        let s = self.state.get();
        self.state.set(s | POLLED);
        s & POLLED != 0
    }

    fn was_polled(&self) -> bool {
        self.state.get() & POLLED != 0
    }
}

/// The task being polled: what simulated APIs called from it see as "current".
#[derive(Clone, Copy, Debug)]
pub(crate) struct Current {
    pub id: u64,
    pub key: u32,
    pub node: u32,
    pub site: u32,
}

impl Current {
    fn of(meta: &TaskMeta) -> Self {
        Current {
            id: meta.id(),
            key: meta.key.get(),
            node: meta.node,
            site: meta.site(),
        }
    }
}

/// A parked task in the registry: what `kill` and the deadlock report need.
pub(crate) struct TaskEntry {
    pub id: u64,
    /// The task's own waker, so that `kill` can get a parked task polled once more to
    /// drop its future.
    pub waker: Option<Waker>,
    /// Index into `World::sites`: the spawn's name and location, stored once per call
    /// site rather than once per task.
    pub site: u32,
    pub node: NodeId,
    pub killed: bool,
}

/// Where tasks are spawned from: a name (maybe empty) and a source location.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpawnSite {
    pub name: &'static str,
    pub location: &'static Location<'static>,
}

impl SpawnSite {
    /// Identity of the site's static data (a lookup key only: it never reaches the trace).
    fn key(&self) -> (usize, usize, usize) {
        (
            self.name.as_ptr() as usize,
            self.name.len(),
            std::ptr::from_ref(self.location) as usize,
        )
    }
}

pub(crate) struct NodeEntry {
    pub name: String,
    pub state: NodeState,
    pub incarnation: u32,
    pub config: NodeConfig,
    pub factory: Option<Rc<dyn Fn() -> futures::future::LocalBoxFuture<'static, ()>>>,
    pub held: Vec<Runnable<TaskMeta>>,
    /// Bumped by every kill (skipping `DEAD`): tasks of an earlier epoch are dead.
    pub epoch: u32,
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
    run_queue: VecDeque<Runnable<TaskMeta>>,
    reap_queue: Vec<Runnable<TaskMeta>>,
    pub tasks: Slab<TaskEntry>,
    next_task_id: u64,
    pub nodes: Vec<NodeEntry>,
    timers: Timers,
    /// The emptied vector of the last timer firing, reused by the next (see `step`).
    spare_wakers: Vec<Waker>,
    pub trace: Trace,
    pub current: Option<Current>,
    /// Set when the task being polled is killed or aborted during its poll, for a task
    /// that is not in the registry yet (see `register_waker`).
    current_killed: bool,
    /// Set by teardown: every task is dead.
    torn_down: bool,
    sites: Vec<SpawnSite>,
    site_index: BTreeMap<(usize, usize, usize), u32>,
    /// The last site looked up: spawns come in loops, so this is nearly always a hit.
    last_site: Option<((usize, usize, usize), u32)>,
    pub steps: u64,
    pub limits: Limits,
    pub panic: Option<PanicRecord>,
    pub lifecycle_hooks: Vec<LifecycleHook>,
    extensions: BTreeMap<TypeId, Rc<dyn Any>>,
    pub buggify: crate::buggify::BuggifyState,
    /// This run's probe counts (`sometimes!`, `always!`), handed to its report.
    pub probes: crate::probe::ProbeState,
    pub user_rng: SimRng,
    /// What the busy-loop watchdog sees of this run, when it watches.
    heartbeat: Option<Arc<Heartbeat>>,
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
            run_queue: VecDeque::new(),
            reap_queue: Vec::new(),
            tasks: Slab::new(),
            next_task_id: 0,
            nodes: Vec::new(),
            timers: Timers::default(),
            spare_wakers: Vec::new(),
            trace: Trace::new(ring_capacity),
            current: None,
            current_killed: false,
            torn_down: false,
            sites: Vec::new(),
            site_index: BTreeMap::new(),
            last_site: None,
            steps: 0,
            limits,
            panic: None,
            lifecycle_hooks: Vec::new(),
            extensions: BTreeMap::new(),
            buggify,
            probes: crate::probe::ProbeState::default(),
            user_rng,
            heartbeat: None,
        };
        // Node 0 runs the test's main future; it can be neither killed nor paused.
        w.nodes.push(NodeEntry {
            name: "main".to_string(),
            state: NodeState::Running,
            incarnation: 0,
            config: NodeConfig::default(),
            factory: None,
            held: Vec::new(),
            epoch: 0,
            cores_free_at: vec![Instant::START],
            memory_used: 0,
            cpu_busy: Duration::ZERO,
        });
        w
    }

    /// Lets the busy-loop watchdog see this run through `heartbeat`.
    pub(crate) fn watch(&mut self, heartbeat: Arc<Heartbeat>) {
        for node in &self.nodes {
            heartbeat.note_node(&node.name);
        }
        for site in &self.sites {
            heartbeat.note_site(site.name, site.location);
        }
        heartbeat.set_now(self.now);
        crate::watchdog::watch(&heartbeat);
        self.heartbeat = Some(heartbeat);
    }

    /// A node was added: the watchdog names it in a report.
    pub(crate) fn note_node(&self, name: &str) {
        if let Some(h) = &self.heartbeat {
            h.note_node(name);
        }
    }

    // ----- context -----

    pub(crate) fn current_node(&self) -> NodeId {
        self.current.map_or(NodeId::MAIN, |m| NodeId(m.node))
    }

    pub(crate) fn current_task(&self) -> Option<TaskId> {
        self.current.map(|m| TaskId(m.id))
    }

    #[inline(always)]
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

    #[inline]
    pub(crate) fn add_timer(&mut self, deadline: Instant, waker: Waker) -> TimerKey {
        debug_assert!(deadline > self.now, "timers are only set in the future");
        let (task, node) = (self.current_task(), self.current_node());
        self.timers.add(deadline, waker, task, node)
    }

    /// A timer that only wakes `waker` at `deadline`, on behalf of a task of `node` that
    /// is not the caller (see `time::wake_at_global`); its fire is traced on that node.
    pub(crate) fn add_wake_timer(&mut self, deadline: Instant, waker: Waker, node: NodeId) {
        debug_assert!(deadline > self.now, "timers are only set in the future");
        self.timers.add(deadline, waker, None, node);
    }

    pub(crate) fn update_timer_waker(&mut self, deadline: Instant, key: TimerKey, waker: &Waker) {
        self.timers.update_waker(deadline, key, waker);
    }

    /// Cancels a registration; returns its waker so the caller drops it outside the borrow.
    pub(crate) fn cancel_timer(&mut self, deadline: Instant, key: TimerKey) -> Option<Waker> {
        self.timers.cancel(deadline, key)
    }

    /// Pops every live timer due at or before `at` and returns their wakers, in deadline
    /// then registration order.
    fn fire_timers(&mut self, at: Instant, wakers: &mut Vec<Waker>) {
        let (now, trace) = (self.now, &mut self.trace);
        self.timers.fire_until(at, |f| {
            trace.timer_fire(now, f.node, f.task, f.later);
            wakers.push(f.waker);
        });
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
        let site = self.intern_site(SpawnSite { name, location });
        let n = &self.nodes[node.index()];
        // Spawning onto a killed node gives a task that is dead from the start.
        let killed = !n.state.is_alive();
        let epoch = if killed { DEAD } else { n.epoch };
        self.core_event(node, Some(TaskId(id)), EventKind::TaskSpawn { name });
        TaskMeta::new(id, site, node.0, epoch)
    }

    fn intern_site(&mut self, site: SpawnSite) -> u32 {
        let key = site.key();
        if let Some((last, index)) = self.last_site {
            if last == key {
                return index;
            }
        }
        let index = match self.site_index.get(&key) {
            Some(&i) => i,
            None => {
                let i = self.sites.len() as u32;
                if let Some(h) = &self.heartbeat {
                    h.note_site(site.name, site.location);
                }
                self.sites.push(site);
                self.site_index.insert(key, i);
                i
            }
        };
        self.last_site = Some((key, index));
        index
    }

    pub(crate) fn task_name(&self, c: Current) -> &'static str {
        self.sites.get(c.site as usize).map_or("?", |s| s.name)
    }

    /// Reads the task that just entered the scheduler's window (and its registry entry),
    /// so that by the time it is picked, on average `SCHED_WINDOW` steps later, its memory
    /// is in cache: the reads overlap with this step's work instead of stalling a later
    /// one. Only matters with more than `SCHED_WINDOW` runnable tasks.
    #[inline]
    fn touch_window_entrant(&self) {
        if let Some(r) = self.run_queue.get(SCHED_WINDOW - 1) {
            let meta = r.metadata();
            std::hint::black_box(meta.state.get());
        }
    }

    /// Registers a task that parked for the first time, with its waker, under the key
    /// its first poll was given. Returns the waker again when the task was killed during
    /// that poll (it killed its own node, or aborted itself), to be woken after the borrow
    /// so that the reaper drops it.
    fn register_waker(&mut self, c: Current, waker: Waker) -> Option<Waker> {
        let killed = self.current_killed || self.torn_down;
        let wake = killed.then(|| waker.clone());
        let key = self.tasks.insert(TaskEntry {
            id: c.id,
            waker: Some(waker),
            site: c.site,
            node: NodeId(c.node),
            killed,
        });
        // Nothing enters the registry during a poll, so the key promised before it holds.
        debug_assert_eq!(key as u32, c.key, "registry key promised at the first poll");
        wake
    }

    /// Makes `meta`'s task the current one, for the poll about to run. Before a task's
    /// first poll, its key is set to the registry's next free key: the one it takes if
    /// it parks (nothing else enters the registry during a poll).
    fn set_current(&mut self, meta: &TaskMeta) {
        if !meta.was_polled() {
            meta.key.set(self.tasks.vacant_key() as u32);
        }
        if let Some(h) = &self.heartbeat {
            h.beat(meta.id(), meta.node, meta.site());
        }
        self.current_killed = false;
        self.current = Some(Current::of(meta));
    }

    /// Whether a task may no longer run its future: aborted, its node killed since it was
    /// spawned, or the simulation is being torn down.
    #[inline]
    fn is_dead(&self, meta: &TaskMeta) -> bool {
        self.torn_down || self.nodes[meta.node as usize].epoch != meta.epoch()
    }

    /// Removes a task from the registry once its future is gone; returns its waker so
    /// that the caller drops it outside the borrow.
    fn finish_task(&mut self, c: Current, aborted: bool) -> Option<Waker> {
        let kind = if aborted {
            EventKind::TaskAbort
        } else {
            EventKind::TaskComplete
        };
        self.core_event(NodeId(c.node), Some(TaskId(c.id)), kind);
        // Only a task that parked once has an entry; the id check tells it from a task
        // whose first poll was promised the same key but finished instead.
        let registered = self.tasks.get(c.key as usize).is_some_and(|e| e.id == c.id);
        registered.then(|| self.tasks.remove(c.key as usize).waker)?
    }

    /// The schedule function of every task: where a woken runnable goes.
    #[inline(always)]
    pub(crate) fn schedule(&mut self, runnable: Runnable<TaskMeta>) {
        let meta = runnable.metadata();
        if self.is_dead(meta) {
            // Killed or aborted: run it only so that its future is dropped.
            self.reap_queue.push(runnable);
            return;
        }
        let node = &mut self.nodes[meta.node as usize];
        if node.state == NodeState::Paused {
            node.held.push(runnable);
        } else {
            self.run_queue.push_back(runnable);
        }
    }

    /// Marks a task aborted and returns its waker so it gets polled once more to drop its
    /// future (never the user's future).
    pub(crate) fn kill_task(&mut self, meta_key: u32, node: u32, id: u64) -> Option<Waker> {
        if self.current.is_some_and(|c| c.id == id) {
            self.current_killed = true;
        }
        // Held by a paused node, it would wait for the resume to be dropped, and so
        // would whoever joins it.
        let held = &mut self.nodes[node as usize].held;
        if let Some(i) = held.iter().position(|r| r.metadata().id() == id) {
            self.reap_queue.push(held.remove(i));
        }
        // A task that never parked is queued, held or running: dead by its epoch, it is
        // reaped when picked. One that parked is woken so that the reaper gets it.
        let e = self
            .tasks
            .get_mut(meta_key as usize)
            .filter(|e| e.id == id)?;
        e.killed = true;
        e.waker.clone()
    }

    /// Kills every task of `node`: they are dead from now on, and the ones already queued
    /// move to the reaper, which drops their futures before any other task runs. Returns
    /// the wakers of the parked ones, to wake after the borrow (which reaps them too).
    pub(crate) fn kill_node_tasks(&mut self, node: NodeId, wakers: &mut Vec<Waker>) {
        if self.current.is_some_and(|c| c.node == node.0) {
            self.current_killed = true;
        }
        let entry = &mut self.nodes[node.index()];
        entry.epoch = (entry.epoch + 1) & EPOCH_MASK;
        if entry.epoch == DEAD {
            entry.epoch = 0;
        }
        let held = std::mem::take(&mut entry.held);
        self.reap_queue.extend(held);
        let queued = std::mem::take(&mut self.run_queue);
        for r in queued {
            if r.metadata().node == node.0 {
                self.reap_queue.push(r);
            } else {
                self.run_queue.push_back(r);
            }
        }
        for (_, e) in self.tasks.iter_mut() {
            if e.node == node && !e.killed {
                e.killed = true;
                if let Some(w) = &e.waker {
                    wakers.push(w.clone());
                }
            }
        }
    }

    pub(crate) fn release_held(&mut self, node: NodeId) {
        let held = std::mem::take(&mut self.nodes[node.index()].held);
        self.run_queue.extend(held);
    }

    /// Every task that is alive but not runnable: the deadlock report. Parked tasks are
    /// in the registry; tasks held by a paused node before their first poll are not.
    pub(crate) fn blocked_tasks(&self) -> Vec<crate::outcome::BlockedTask> {
        let blocked = |id: u64, node: NodeId, site: u32| {
            let site = self.sites[site as usize];
            crate::outcome::BlockedTask {
                task: TaskId(id),
                node: self.nodes[node.index()].name.clone(),
                name: site.name.to_string(),
                spawned_at: format!("{}:{}", site.location.file(), site.location.line()),
            }
        };
        let mut out: Vec<_> = self
            .tasks
            .iter()
            .filter(|(_, e)| !e.killed)
            .map(|(_, e)| blocked(e.id, e.node, e.site))
            .collect();
        for n in &self.nodes {
            for r in n
                .held
                .iter()
                .map(|r| r.metadata())
                .filter(|m| !m.was_polled())
            {
                out.push(blocked(r.id(), NodeId(r.node), r.site()));
            }
        }
        out.sort_by_key(|b| b.task);
        out
    }

    pub(crate) fn node_name(&self, node: NodeId) -> &str {
        &self.nodes[node.index()].name
    }
}

/// The scheduler picks uniformly among the oldest `SCHED_WINDOW` runnable tasks: among
/// all of them whenever fewer are runnable at once (nearly always), while a fan-out of a
/// million tasks is still served roughly oldest first from memory that is in cache,
/// instead of by cache misses all over the queue (with `touch_window_entrant`, measured
/// on the 1M-task spawn-and-join benchmark: 4.5 M/s, against 1.1 M/s for uniform picks
/// over the whole queue). Every runnable task reaches the window as older ones run,
/// and is then picked with probability 1 / `SCHED_WINDOW` per step: none starves.
const SCHED_WINDOW: usize = 1024;

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
        Run(Runnable<TaskMeta>, bool),
        Wake(Vec<Waker>),
        TimeLimit,
        OutOfSteps(u64),
        Deadlock,
    }
    let next = with(|w| {
        // The previous poll may have left its task as current (see below): between
        // steps no task is current.
        w.current = None;
        if let Some(limit) = w.limits.step_limit.filter(|l| w.steps >= *l) {
            return Next::OutOfSteps(limit);
        }
        // Dead tasks are dropped first, so a kill's destructors run at the kill's instant
        // before anyone else is polled. Dropping is not a scheduling decision: no step is
        // counted and no poll traced (the task's abort event is).
        if let Some(r) = w.reap_queue.pop() {
            w.set_current(r.metadata());
            return Next::Run(r, true);
        }
        while !w.run_queue.is_empty() {
            let i = w.sched_rng.index(w.run_queue.len().min(SCHED_WINDOW));
            // The pick changes places with the oldest, which then waits among the window.
            let Some(r) = w.run_queue.swap_remove_front(i) else {
                break;
            };
            w.touch_window_entrant();
            let meta = r.metadata();
            if w.is_dead(meta) {
                // Aborted while it was queued.
                w.set_current(meta);
                return Next::Run(r, true);
            }
            let node = &mut w.nodes[meta.node as usize];
            if node.state == NodeState::Paused {
                // Queued before its node was paused: hold it with the rest.
                node.held.push(r);
                continue;
            }
            w.steps += 1;
            w.set_current(meta);
            if w.limits.trace_polls {
                let (node, task) = (NodeId(meta.node), Some(TaskId(meta.id())));
                w.core_event(node, task, EventKind::TaskPoll);
            }
            return Next::Run(r, false);
        }
        match w.timers.next() {
            Some(at) => {
                if w.limits.time_limit.is_some_and(|limit| at > limit) {
                    return Next::TimeLimit;
                }
                w.now = w.now.max(at);
                FAST.with(|f| f.now.set(w.now.as_nanos()));
                if let Some(h) = &w.heartbeat {
                    h.set_now(w.now);
                }
                // A bucket of thousands of timers would otherwise regrow this vector
                // every time the clock moves.
                let mut wakers = std::mem::take(&mut w.spare_wakers);
                w.fire_timers(at, &mut wakers);
                Next::Wake(wakers)
            }
            None => Next::Deadlock,
        }
    });
    match next {
        Next::Run(r, killed) => {
            let mut polled = run_task(r, killed);
            if polled.parked_again() && polled.result.is_ok() {
                // The common case, a task that parked before parking again, needs no
                // bookkeeping: skip the borrow and leave `current` stale until the next
                // step clears it (no user code runs in between).
                return Step::Ran;
            }
            let panicked = polled.result.is_err();
            let (waker, wake) = with(|w| {
                let current = w.current;
                let wakers = w.after_poll(&mut polled);
                if let Some(c) = current.filter(|_| panicked && w.panic.is_none()) {
                    let (message, location) = crate::outcome::take_panic_info();
                    let task_name = w.task_name(c);
                    w.panic = Some(PanicRecord {
                        message,
                        location,
                        node: NodeId(c.node),
                        task: Some(TaskId(c.id)),
                        task_name,
                    });
                }
                wakers
            });
            drop(waker);
            if let Some(wake) = wake {
                wake.wake();
            }
            if let Err(payload) = polled.result {
                // Keep the payload alive until after the borrow: dropping it runs user code.
                drop(payload);
                return Step::Panicked;
            }
            Step::Ran
        }
        Next::Wake(mut wakers) => {
            for w in wakers.drain(..) {
                w.wake();
            }
            // Back for the next firing: a borrow per instant, not per timer.
            try_with(|w| w.spare_wakers = wakers);
            Step::Idle
        }
        Next::TimeLimit => Step::TimeLimit,
        Next::OutOfSteps(l) => Step::OutOfSteps(l),
        Next::Deadlock => Step::Deadlock,
    }
}

/// Polls a runnable whose `Current` is set: returns the poll's panic, if any, and
/// whether the task's future is gone (`Some(aborted)`).
fn run_task(r: Runnable<TaskMeta>, killed: bool) -> Polled {
    let want_waker = !killed && !r.metadata().mark_polled();
    let flags = if killed { POLL_REAP } else { 0 } | if want_waker { POLL_WANT_WAKER } else { 0 };
    // Every poll leaves the flags at zero, so the common poll (a task that was polled
    // before, alive) has nothing to write.
    if flags != 0 {
        FAST.with(|f| f.poll.set(flags));
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.run()));
    let flags = FAST.with(|f| f.poll.replace(0));
    Polled {
        result,
        flags,
        parked: if want_waker {
            PARKED.with(Cell::take)
        } else {
            None
        },
    }
}

/// What polling a task gave.
struct Polled {
    /// The poll's panic, if any.
    result: std::thread::Result<bool>,
    /// The `POLL_*` bits the poll left: whether the task's future is gone.
    flags: u8,
    /// The waker of a task that parked for the first time.
    parked: Option<Waker>,
}

impl Polled {
    /// `Some(aborted)` once the task's future is gone.
    fn done(&self) -> Option<bool> {
        if self.flags & POLL_ABORTED != 0 {
            Some(true)
        } else if self.flags & POLL_COMPLETED != 0 {
            Some(false)
        } else {
            None
        }
    }

    /// The common case, a task that was polled before and parks again: no bookkeeping.
    fn parked_again(&self) -> bool {
        self.flags & (POLL_ABORTED | POLL_COMPLETED) == 0 && self.parked.is_none()
    }
}

impl World {
    /// Bookkeeping after a poll of the current task: a finished task leaves the registry,
    /// a first-time parked one leaves its waker there. Returns wakers to drop or wake
    /// after the borrow.
    #[inline(always)]
    fn after_poll(&mut self, polled: &mut Polled) -> (Option<Waker>, Option<Waker>) {
        let current = self.current.take();
        if polled.parked_again() {
            // The common case: a task that parked before parks again.
            return (None, None);
        }
        let Some(c) = current else {
            return (None, None);
        };
        match (polled.done(), polled.parked.take()) {
            (Some(aborted), _) => (self.finish_task(c, aborted), None),
            (None, Some(waker)) => (None, self.register_waker(c, waker)),
            (None, None) => (None, None),
        }
    }
}

/// Kills every task and runs the reaper until nothing is left, so that all futures are
/// dropped while the world still exists (their destructors may call into it).
pub(crate) fn teardown() {
    loop {
        let mut wakers = Vec::new();
        let work = with(|w| {
            w.torn_down = true;
            // Every task still registered, killed or not: a killed one that somehow was
            // never woken must still be dropped here, inside the simulation, and not by
            // the world's destructor, where its destructors could not reach the world.
            for (_, e) in w.tasks.iter_mut() {
                e.killed = true;
                if let Some(wk) = &e.waker {
                    wakers.push(wk.clone());
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
            with(|w| w.current = Some(Current::of(r.metadata())));
            let mut polled = run_task(r, true);
            let wakers = with(|w| w.after_poll(&mut polled));
            drop(wakers);
        }
    }
}

/// Gets or creates the per-simulation state of type `T`: how upper crates such as sim-net
/// keep their state inside the world without the runtime knowing them.
pub fn extension<T: Default + 'static>() -> Rc<T> {
    with(|w| w.extension::<T>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_meta_packs_the_largest_id_and_site() {
        let meta = TaskMeta::new(MAX_TASKS - 1, MAX_SITES - 1, 7, 3);
        assert_eq!(meta.id(), MAX_TASKS - 1);
        assert_eq!(meta.site(), MAX_SITES - 1);
        let meta = TaskMeta::new(1 << 32 | 5, 9, 7, 3);
        assert_eq!(
            (meta.id(), meta.site(), meta.node, meta.epoch()),
            (1 << 32 | 5, 9, 7, 3)
        );
    }
}
