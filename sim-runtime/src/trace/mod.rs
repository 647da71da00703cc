//! The trace: every scheduling decision, timer, node fault and model operation as an
//! event, folded into a running 64-bit fingerprint.
//!
//! The fingerprint is the determinism oracle: the same seed must give the same value bit
//! for bit. Events are hashed field by field with [`StableHasher`] (never `RandomState`).
//!
//! Events added above the runtime are typed values ([`TraceEvent`]: a `Serialize` type
//! with a stable name), emitted with [`emit`]. Each is serialised once into a compact
//! binary form ([`compact`]) in the ring slot it will occupy, and that form is what the
//! fingerprint hashes: no text, no escaping, no number formatting on the hot path. JSON
//! is made only when something reads an event: `--trace` output, a failure's tail, a
//! determinism diff. Checkers take typed copies with [`capture`]; tools that want
//! everything under a name take [`capture_prefix`].
//!
//! Map: this file holds the events, the public API and the recorder; [`compact`] the
//! compact form and its JSON rendering; `capture` the typed and by-name captures.

mod capture;
pub mod compact;

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::io::Write;
use std::rc::Rc;

use serde::Serialize;

pub use capture::{Capture, Captured, EventLog};
pub use compact::Fields;
pub use sim_runtime_macros::TraceEvent;

use crate::hash::StableHasher;
use crate::node::NodeId;
use crate::time::Instant;
use crate::world;

/// A task's identity for the whole run (never reused, unlike slab keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TaskId(pub u64);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    TaskSpawn {
        name: &'static str,
    },
    TaskPoll,
    TaskComplete,
    TaskAbort,
    TimerFire,
    NodeStart {
        name: String,
    },
    NodeKill,
    NodeRestart,
    NodePause,
    NodeResume,
    NodeOom {
        requested: u64,
        budget: u64,
    },
    /// An event added by an upper crate or user code.
    Custom {
        name: &'static str,
    },
    /// A message between two endpoints, (node, port) each: what a network traces for
    /// every send and delivery. A core kind rather than a custom one because there are so
    /// many: it is hashed and stored as a few words, with no JSON written, while
    /// [`Event::fields`] still reads it as `{"src": [n, p], "dst": [n, p], "kind": k}`.
    Message {
        name: &'static str,
        src: (u32, u16),
        dst: (u32, u16),
        // Not `kind`: that is the serde tag of this enum.
        #[serde(rename = "message")]
        kind: &'static str,
    },
}

impl EventKind {
    fn tag(&self) -> u64 {
        match self {
            EventKind::TaskSpawn { .. } => 1,
            EventKind::TaskPoll => 2,
            EventKind::TaskComplete => 3,
            EventKind::TaskAbort => 4,
            EventKind::TimerFire => 5,
            EventKind::NodeStart { .. } => 6,
            EventKind::NodeKill => 7,
            EventKind::NodeRestart => 8,
            EventKind::NodePause => 9,
            EventKind::NodeResume => 10,
            EventKind::NodeOom { .. } => 11,
            EventKind::Custom { .. } => 12,
            EventKind::Message { .. } => 13,
        }
    }

    /// Hashes what the kind carries beyond its tag. Inlined so that, for kinds with no
    /// payload, it disappears.
    #[inline(always)]
    fn hash_payload(&self, h: &mut StableHasher) {
        match self {
            EventKind::TaskSpawn { name } | EventKind::Custom { name } => h.write_str(name),
            EventKind::NodeStart { name } => h.write_str(name),
            EventKind::NodeOom { requested, budget } => {
                h.write_u64(*requested);
                h.write_u64(*budget);
            }
            EventKind::Message {
                name,
                src,
                dst,
                kind,
            } => {
                h.write_str(name);
                h.write_u64(u64::from(src.0) << 16 | u64::from(src.1));
                h.write_u64(u64::from(dst.0) << 16 | u64::from(dst.1));
                h.write_str(kind);
            }
            _ => {}
        }
    }

    /// The event's name: the custom name, or the core kind's.
    pub fn name(&self) -> &str {
        match self {
            EventKind::TaskSpawn { .. } => "task.spawn",
            EventKind::TaskPoll => "task.poll",
            EventKind::TaskComplete => "task.complete",
            EventKind::TaskAbort => "task.abort",
            EventKind::TimerFire => "timer.fire",
            EventKind::NodeStart { .. } => "node.start",
            EventKind::NodeKill => "node.kill",
            EventKind::NodeRestart => "node.restart",
            EventKind::NodePause => "node.pause",
            EventKind::NodeResume => "node.resume",
            EventKind::NodeOom { .. } => "node.oom",
            EventKind::Custom { name } | EventKind::Message { name, .. } => name,
        }
    }
}

/// A typed trace event: a value with a stable name that serialises with serde.
///
/// Derive it for an owned type (`#[derive(Clone, Debug, Serialize, TraceEvent)]` with
/// `#[trace_event(name = "worker.process")]`); implement it by hand for an event that
/// borrows what it reports, naming the owned type a [`capture`] keeps.
pub trait TraceEvent: Serialize {
    /// The event's name, dotted by component: `kv.cmd`, `net.partition`, `user.ack`.
    const NAME: &'static str;
    /// What a capture keeps of the event.
    type Owned: Clone + fmt::Debug + 'static;
    /// The owned copy a capture keeps (called only when a capture wants the event).
    fn to_owned_event(&self) -> Self::Owned;
}

/// One trace event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Position in the run's event stream, from 0.
    pub seq: u64,
    pub time: Instant,
    pub node: NodeId,
    pub task: Option<TaskId>,
    pub kind: EventKind,
    /// A custom event's fields in compact form (empty for core events).
    pub fields: Fields,
}

impl Event {
    /// The fields decoded into `T` (through their JSON form: for tools and tests; a
    /// checker takes typed events with [`capture`] instead).
    pub fn fields<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_value(self.fields_value())
    }

    /// The fields as a JSON value (`null` for core events).
    pub fn fields_value(&self) -> serde_json::Value {
        if let EventKind::Message { src, dst, kind, .. } = self.kind {
            return serde_json::json!({ "src": [src.0, src.1], "dst": [dst.0, dst.1], "kind": kind });
        }
        self.fields.to_json()
    }

    pub fn name(&self) -> &str {
        self.kind.name()
    }

    /// One JSON object per event, the format of `--trace out.jsonl`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut obj = serde_json::Map::new();
        obj.insert("seq".into(), self.seq.into());
        obj.insert("t_ns".into(), self.time.as_nanos().into());
        obj.insert("node".into(), self.node.0.into());
        if let Some(t) = self.task {
            obj.insert("task".into(), t.0.into());
        }
        obj.insert("event".into(), self.name().into());
        match &self.kind {
            EventKind::TaskSpawn { name } => {
                obj.insert("name".into(), (*name).into());
            }
            EventKind::NodeStart { name } => {
                obj.insert("name".into(), name.clone().into());
            }
            EventKind::NodeOom { requested, budget } => {
                obj.insert("requested".into(), (*requested).into());
                obj.insert("budget".into(), (*budget).into());
            }
            _ => {}
        }
        if !self.fields.is_empty() || matches!(self.kind, EventKind::Message { .. }) {
            obj.insert("fields".into(), self.fields_value());
        }
        serde_json::Value::Object(obj)
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {} n{}", self.seq, self.time, self.node.0)?;
        if let Some(t) = self.task {
            write!(f, " {t}")?;
        }
        write!(f, " {}", self.name())?;
        match &self.kind {
            EventKind::TaskSpawn { name } => write!(f, " {name}")?,
            EventKind::NodeStart { name } => write!(f, " {name}")?,
            EventKind::NodeOom { requested, budget } => {
                write!(f, " requested={requested} budget={budget}")?
            }
            _ => {}
        }
        if matches!(self.kind, EventKind::Message { .. }) || !self.fields.is_empty() {
            write!(f, " {}", self.fields_value())?;
        }
        Ok(())
    }
}

/// Where the first difference between two runs of one seed showed up.
#[derive(Clone, Debug)]
pub struct Divergence {
    pub first: Option<Event>,
    pub second: Option<Event>,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |e: &Option<Event>| {
            e.as_ref()
                .map_or("<end of trace>".to_string(), |e| e.to_string())
        };
        write!(
            f,
            "first run:  {}\nsecond run: {}",
            show(&self.first),
            show(&self.second)
        )
    }
}

pub(crate) struct Trace {
    hasher: StableHasher,
    count: u64,
    ring: Vec<Event>,
    ring_capacity: usize,
    ring_head: usize,
    jsonl: Option<Box<dyn Write>>,
    /// The first error writing `jsonl`; the output stops there, the run goes on.
    jsonl_error: Option<std::io::Error>,
    typed: Vec<capture::TypedSink>,
    by_prefix: Vec<(String, EventLog)>,
    record: Option<Vec<Event>>,
    compare: Option<(Rc<Vec<Event>>, Option<Divergence>)>,
    /// Whether any of `jsonl`, `by_prefix`, `record` or `compare` is set: one test on
    /// the hot path when none is.
    listeners: bool,
    /// Whether the events of every step (spawns, polls, completions, timers) go anywhere
    /// beyond the fingerprint and the ring: a checker's typed capture does not make them,
    /// so they keep the fast path (`push_plain`).
    plain_listened: bool,
    /// Where a custom event is encoded while the ring is still filling up.
    scratch: Fields,
}

/// What every event hashes first: when, where, which task, and what kind.
#[inline(always)]
fn hash_header(h: &mut StableHasher, time: Instant, node: NodeId, task: Option<TaskId>, tag: u64) {
    h.write_u64(time.as_nanos());
    h.write_u64(u64::from(node.0));
    h.write_u64(task.map_or(u64::MAX, |t| t.0));
    h.write_u64(tag);
}

/// The names of the fixed-name kinds that take the fast path.
const PLAIN_NAMES: [&str; 5] = [
    "task.spawn",
    "task.poll",
    "task.complete",
    "task.abort",
    "timer.fire",
];

impl Trace {
    pub(crate) fn new(ring_capacity: usize) -> Self {
        Trace {
            hasher: StableHasher::new(),
            count: 0,
            ring: Vec::with_capacity(ring_capacity.min(4096)),
            ring_capacity,
            ring_head: 0,
            jsonl: None,
            jsonl_error: None,
            typed: Vec::new(),
            by_prefix: Vec::new(),
            record: None,
            compare: None,
            listeners: false,
            plain_listened: false,
            scratch: Fields::default(),
        }
    }

    pub(crate) fn set_jsonl(&mut self, out: Box<dyn Write>) {
        self.jsonl = Some(out);
        self.listeners = true;
        self.plain_listened = true;
    }

    pub(crate) fn start_recording(&mut self) {
        self.record = Some(Vec::new());
        self.listeners = true;
        self.plain_listened = true;
    }

    pub(crate) fn take_recording(&mut self) -> Option<Vec<Event>> {
        self.record.take()
    }

    pub(crate) fn compare_with(&mut self, reference: Rc<Vec<Event>>) {
        self.compare = Some((reference, None));
        self.listeners = true;
        self.plain_listened = true;
    }

    pub(crate) fn divergence(&mut self) -> Option<Divergence> {
        let (reference, found) = self.compare.take()?;
        if found.is_some() {
            return found;
        }
        // Same prefix, but one run may be longer.
        if reference.len() as u64 != self.count {
            return Some(Divergence {
                first: reference.get(self.count as usize).cloned(),
                second: None,
            });
        }
        None
    }

    pub(crate) fn fingerprint(&self) -> u64 {
        self.hasher.finish()
    }

    pub(crate) fn event_count(&self) -> u64 {
        self.count
    }

    pub(crate) fn capture<E: TraceEvent>(&mut self) -> Capture<E::Owned> {
        let capture = Capture::<E::Owned>::default();
        self.typed.push(capture::TypedSink {
            name: E::NAME,
            list: Rc::clone(&capture.events) as Rc<dyn Any>,
        });
        capture
    }

    pub(crate) fn capture_prefix(&mut self, prefix: &str) -> EventLog {
        let log = EventLog::default();
        self.by_prefix.push((prefix.to_string(), log.clone()));
        self.listeners = true;
        self.plain_listened |= PLAIN_NAMES.iter().any(|n| n.starts_with(prefix));
        log
    }

    /// The first error writing the JSON-lines output, taken.
    pub(crate) fn take_jsonl_error(&mut self) -> Option<std::io::Error> {
        self.jsonl_error.take()
    }

    /// The retained tail, oldest first.
    pub(crate) fn tail(&self) -> Vec<Event> {
        let mut out = Vec::with_capacity(self.ring.len());
        out.extend_from_slice(&self.ring[self.ring_head..]);
        out.extend_from_slice(&self.ring[..self.ring_head]);
        out
    }

    /// Records a core event (no custom fields). Inlined so that, at call sites with a
    /// constant kind, the fast-path test folds away.
    #[inline(always)]
    pub(crate) fn core(
        &mut self,
        time: Instant,
        node: NodeId,
        task: Option<TaskId>,
        kind: EventKind,
    ) {
        let plain = match &kind {
            EventKind::TaskSpawn { .. }
            | EventKind::TaskPoll
            | EventKind::TaskComplete
            | EventKind::TaskAbort
            | EventKind::TimerFire => !self.plain_listened,
            EventKind::Message { name, .. } => {
                !self.plain_listened
                    && (self.by_prefix.is_empty()
                        || !self
                            .by_prefix
                            .iter()
                            .any(|(p, _)| name.starts_with(p.as_str())))
            }
            _ => false,
        };
        if plain && self.ring_capacity > 0 && self.ring.len() == self.ring_capacity {
            self.push_plain(time, node, task, kind);
        } else {
            self.scratch.clear();
            self.push(time, node, task, kind);
        }
    }

    /// `push` for the events of every step (spawns, polls, completions, timers, messages)
    /// in the common case: no fields, nobody listening, the ring full. Hashes and stores
    /// exactly what `push` would, with none of its branches.
    #[inline(always)]
    fn push_plain(&mut self, time: Instant, node: NodeId, task: Option<TaskId>, kind: EventKind) {
        let seq = self.count;
        self.count += 1;
        let h = &mut self.hasher;
        hash_header(h, time, node, task, kind.tag());
        kind.hash_payload(h);
        self.ring[self.ring_head].fields.clear();
        self.fill_oldest_slot(seq, time, node, task, kind);
    }

    /// Writes an event's header into the oldest slot of the full ring (its fields are
    /// already there, or cleared) and moves the head past it.
    #[inline(always)]
    fn fill_oldest_slot(
        &mut self,
        seq: u64,
        time: Instant,
        node: NodeId,
        task: Option<TaskId>,
        kind: EventKind,
    ) {
        let slot = &mut self.ring[self.ring_head];
        slot.seq = seq;
        slot.time = time;
        slot.node = node;
        slot.task = task;
        slot.kind = kind;
        self.skip_oldest_slot();
    }

    #[inline(always)]
    fn skip_oldest_slot(&mut self) {
        self.ring_head += 1;
        if self.ring_head == self.ring_capacity {
            self.ring_head = 0;
        }
    }

    /// Records a timer fire event that `later` more timer fire events follow back to
    /// back (the rest of its bucket). On the fast path (see [`Trace::core`]) with at least
    /// `ring_capacity` of them to come, its ring slot would be overwritten before anyone
    /// could read it: it is hashed and counted exactly as `core` would, and the slot is
    /// skipped. Firing thousands of timers at one instant then writes only the last few.
    #[inline(always)]
    pub(crate) fn timer_fire(
        &mut self,
        time: Instant,
        node: NodeId,
        task: Option<TaskId>,
        later: usize,
    ) {
        let overwritten = later >= self.ring_capacity
            && !self.plain_listened
            && self.ring_capacity > 0
            && self.ring.len() == self.ring_capacity;
        if !overwritten {
            self.core(time, node, task, EventKind::TimerFire);
            return;
        }
        self.count += 1;
        let h = &mut self.hasher;
        hash_header(h, time, node, task, EventKind::TimerFire.tag());
        self.skip_oldest_slot();
    }

    /// Records a typed event: encoded straight into the ring slot it takes (or the
    /// scratch buffer while the ring fills), hashed from there, and copied to the typed
    /// captures that want it.
    pub(crate) fn custom<E: TraceEvent + ?Sized>(
        &mut self,
        time: Instant,
        node: NodeId,
        task: Option<TaskId>,
        event: &E,
    ) {
        let in_ring = self.ring_capacity > 0 && self.ring.len() == self.ring_capacity;
        if in_ring {
            self.ring[self.ring_head].fields.encode(event);
        } else {
            self.scratch.encode(event);
        }
        if !self.typed.is_empty() {
            self.deliver_typed(time, node, task, event);
        }
        self.push_encoded(time, node, task, E::NAME, in_ring);
    }

    fn deliver_typed<E: TraceEvent + ?Sized>(
        &self,
        time: Instant,
        node: NodeId,
        task: Option<TaskId>,
        event: &E,
    ) {
        for sink in &self.typed {
            if sink.name != E::NAME {
                continue;
            }
            // Two event types sharing a name with different owned types would miss each
            // other's captures: names are unique per type by convention.
            if let Some(list) = sink.list.downcast_ref::<RefCell<Vec<Captured<E::Owned>>>>() {
                list.borrow_mut().push(Captured {
                    seq: self.count,
                    time,
                    node,
                    task,
                    event: event.to_owned_event(),
                });
            }
        }
    }

    /// Counts and hashes a custom event whose fields are already encoded, in the ring
    /// slot (`in_ring`) or in `scratch`, and stores it.
    fn push_encoded(
        &mut self,
        time: Instant,
        node: NodeId,
        task: Option<TaskId>,
        name: &'static str,
        in_ring: bool,
    ) {
        let seq = self.count;
        self.count += 1;
        let kind = || EventKind::Custom { name };
        let h = &mut self.hasher;
        hash_header(h, time, node, task, kind().tag());
        h.write_str(name);
        if in_ring {
            h.write_bytes(&self.ring[self.ring_head].fields.bytes);
            self.fill_oldest_slot(seq, time, node, task, kind());
        } else {
            h.write_bytes(&self.scratch.bytes);
            if self.ring_capacity > 0 {
                self.ring.push(Event {
                    seq,
                    time,
                    node,
                    task,
                    kind: kind(),
                    fields: self.scratch.clone(),
                });
            }
        }
        if self.listeners && self.is_listened(name) {
            let fields = if in_ring {
                let last = if self.ring_head == 0 {
                    self.ring_capacity - 1
                } else {
                    self.ring_head - 1
                };
                self.ring[last].fields.clone()
            } else {
                self.scratch.clone()
            };
            self.fan_out(Event {
                seq,
                time,
                node,
                task,
                kind: kind(),
                fields,
            });
        }
    }

    #[inline(never)]
    fn push(&mut self, time: Instant, node: NodeId, task: Option<TaskId>, kind: EventKind) {
        let seq = self.count;
        self.count += 1;
        // Hash without building an `Event` first, so the hot path never allocates.
        let h = &mut self.hasher;
        hash_header(h, time, node, task, kind.tag());
        kind.hash_payload(h);
        let listened = self.listeners && self.is_listened(kind.name());
        let fan_out_kind = listened.then(|| kind.clone());
        if self.ring_capacity > 0 {
            if self.ring.len() == self.ring_capacity {
                self.ring[self.ring_head].fields.clear();
                self.fill_oldest_slot(seq, time, node, task, kind);
            } else {
                self.ring.push(Event {
                    seq,
                    time,
                    node,
                    task,
                    kind,
                    fields: Fields::default(),
                });
            }
        }
        if let Some(kind) = fan_out_kind {
            self.fan_out(Event {
                seq,
                time,
                node,
                task,
                kind,
                fields: Fields::default(),
            });
        }
    }

    /// Whether an event goes anywhere beyond the fingerprint, the ring and the typed
    /// captures.
    fn is_listened(&self, name: &str) -> bool {
        self.jsonl.is_some()
            || self.record.is_some()
            || self.compare.as_ref().is_some_and(|c| c.1.is_none())
            || self
                .by_prefix
                .iter()
                .any(|(p, _)| name.starts_with(p.as_str()))
    }

    fn fan_out(&mut self, event: Event) {
        if let Some(out) = self.jsonl.as_mut() {
            // Trace output failing (disk full) must not change the simulation: the output
            // stops and the error is kept for the caller to report.
            if let Err(e) = writeln!(out, "{}", event.to_json()) {
                self.jsonl = None;
                self.jsonl_error = Some(e);
            }
        }
        for (prefix, log) in &self.by_prefix {
            if event.name().starts_with(prefix.as_str()) {
                log.events.borrow_mut().push(event.clone());
            }
        }
        if let Some((reference, found)) = self.compare.as_mut() {
            if found.is_none() {
                let expected = reference.get(event.seq as usize);
                if expected != Some(&event) {
                    *found = Some(Divergence {
                        first: expected.cloned(),
                        second: Some(event.clone()),
                    });
                }
            }
        }
        if let Some(rec) = self.record.as_mut() {
            rec.push(event);
        }
    }

    pub(crate) fn flush(&mut self) {
        if let Some(out) = self.jsonl.as_mut() {
            if let Err(e) = out.flush() {
                self.jsonl = None;
                self.jsonl_error = Some(e);
            }
        }
    }
}

/// Adds a typed event to the running simulation's trace, stamped with the current
/// virtual time, node and task. Outside a simulation it does nothing, so library code
/// can trace unconditionally.
pub fn emit<E: TraceEvent + ?Sized>(event: &E) {
    world::try_with(|w| {
        let node = w.current_node();
        let task = w.current_task();
        let now = w.now;
        w.trace.custom(now, node, task, event);
    });
}

/// An in-memory sink for [`Sim::trace_jsonl`](crate::Sim::trace_jsonl): clones share
/// the bytes, so the caller reads back what the run wrote (the timeline page does).
#[derive(Clone, Default)]
pub struct SharedBuffer(Rc<RefCell<Vec<u8>>>);

impl SharedBuffer {
    /// What was written, as text (the trace is UTF-8 JSON lines).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow()).into_owned()
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Adds a message event (see [`EventKind::Message`]): `name` says what happened to it
/// ("net.send"), `src` and `dst` are (node, port), and `kind` names its type.
pub fn emit_message(name: &'static str, src: (u32, u16), dst: (u32, u16), kind: &'static str) {
    world::try_with(|w| {
        let node = w.current_node();
        let task = w.current_task();
        let kind = EventKind::Message {
            name,
            src,
            dst,
            kind,
        };
        w.core_event(node, task, kind);
    });
}

/// Collects, from now on, a typed copy of every event of type `E`, with its time, node
/// and task. This is how checkers read a run; service code never sees the capture.
pub fn capture<E: TraceEvent>() -> Capture<E::Owned> {
    world::with(|w| w.trace.capture::<E>())
}

/// Collects, from now on, every event whose name starts with `prefix` (`""` for all),
/// whole: for tools that show events (a timeline, a test of the trace itself).
pub fn capture_prefix(prefix: &str) -> EventLog {
    world::with(|w| w.trace.capture_prefix(prefix))
}

/// The fingerprint of the events so far.
pub fn fingerprint() -> u64 {
    world::with(|w| w.trace.fingerprint())
}

/// The retained tail of the trace, oldest first.
pub fn tail() -> Vec<Event> {
    world::with(|w| w.trace.tail())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_the_names_of_the_fast_path_kinds() {
        // A capture is checked against these names; a kind renamed without them would
        // silently never reach a capture.
        let kinds = [
            EventKind::TaskSpawn { name: "x" },
            EventKind::TaskPoll,
            EventKind::TaskComplete,
            EventKind::TaskAbort,
            EventKind::TimerFire,
        ];
        let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
        assert_eq!(names, PLAIN_NAMES);
    }

    #[test]
    fn a_run_of_timer_fires_skipping_overwritten_slots_records_what_core_would() {
        // A ring of 4, filled first so that the fast path applies; then a bucket of 11
        // fires, of which the first 7 need no slot.
        let (mut plain, mut skipping) = (Trace::new(4), Trace::new(4));
        for t in [&mut plain, &mut skipping] {
            for i in 0..6 {
                t.core(Instant::from_nanos(i), NodeId(0), None, EventKind::TaskPoll);
            }
        }
        let at = Instant::from_nanos(10);
        for i in 0..11u64 {
            let task = Some(TaskId(i));
            plain.core(at, NodeId(1), task, EventKind::TimerFire);
            skipping.timer_fire(at, NodeId(1), task, (10 - i) as usize);
        }
        assert_eq!(plain.fingerprint(), skipping.fingerprint());
        assert_eq!(plain.event_count(), skipping.event_count());
        let seqs = |t: &Trace| t.tail().iter().map(|e| (e.seq, e.task)).collect::<Vec<_>>();
        assert_eq!(seqs(&plain), seqs(&skipping));
        assert_eq!(seqs(&skipping)[0], (13, Some(TaskId(7))));
    }
}
