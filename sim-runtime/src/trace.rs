//! The trace: every scheduling decision, timer, node fault and model operation as an
//! event, folded into a running 64-bit fingerprint.
//!
//! The fingerprint is the determinism oracle: the same seed must give the same value bit
//! for bit. Events are hashed field by field with [`StableHasher`] (never `RandomState`),
//! and custom events are hashed over their JSON encoding, written into reused buffers so
//! that the hot path does not allocate. The last events stay in a bounded ring for failure
//! reports; a full JSON-lines stream can be written on request.

use std::cell::RefCell;
use std::fmt;
use std::io::Write;
use std::rc::Rc;

use serde::Serialize;

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

/// One trace event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Position in the run's event stream, from 0.
    pub seq: u64,
    pub time: Instant,
    pub node: NodeId,
    pub task: Option<TaskId>,
    pub kind: EventKind,
    /// The custom event's fields as JSON (empty for core events).
    pub fields: Vec<u8>,
}

impl Event {
    /// The custom fields decoded into `T`.
    pub fn fields<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        if let EventKind::Message { .. } = self.kind {
            return serde_json::from_value(self.fields_value());
        }
        serde_json::from_slice(&self.fields)
    }

    /// The fields as a JSON value (`null` for core events).
    pub fn fields_value(&self) -> serde_json::Value {
        if let EventKind::Message { src, dst, kind, .. } = self.kind {
            return serde_json::json!({ "src": [src.0, src.1], "dst": [dst.0, dst.1], "kind": kind });
        }
        if self.fields.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&self.fields).unwrap_or(serde_json::Value::Null)
        }
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
        if let EventKind::Message { .. } = self.kind {
            write!(f, " {}", self.fields_value())?;
        } else if !self.fields.is_empty() {
            write!(f, " {}", String::from_utf8_lossy(&self.fields))?;
        }
        Ok(())
    }
}

/// Events collected for a checker: every event whose name starts with the prefix given to
/// [`capture`]. Cheap to clone; all clones see the same list.
#[derive(Clone, Default)]
pub struct EventLog {
    events: Rc<RefCell<Vec<Event>>>,
}

impl EventLog {
    pub fn snapshot(&self) -> Vec<Event> {
        self.events.borrow().clone()
    }

    pub fn len(&self) -> usize {
        self.events.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.borrow().is_empty()
    }

    /// Calls `f` on each collected event, in order.
    pub fn for_each(&self, mut f: impl FnMut(&Event)) {
        for e in self.events.borrow().iter() {
            f(e);
        }
    }
}

impl fmt::Debug for EventLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventLog({} events)", self.len())
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
    captures: Vec<(String, EventLog)>,
    record: Option<Vec<Event>>,
    compare: Option<(Rc<Vec<Event>>, Option<Divergence>)>,
    /// Whether any of `jsonl`, `captures`, `record` or `compare` is set: one test on
    /// the hot path when none is.
    listeners: bool,
    /// Whether the events of every step (spawns, polls, completions, timers) go anywhere
    /// beyond the fingerprint and the ring: a checker's capture of "kv." does not make
    /// them, so they keep the fast path (`push_plain`).
    plain_listened: bool,
    /// [`Trace::message_captured`]'s answers: (name address, length) -> captured. No
    /// name lives at address 0, so the zeroed entries match nothing.
    message_memo: [((usize, usize), bool); 4],
    scratch: Vec<u8>,
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
            captures: Vec::new(),
            record: None,
            compare: None,
            listeners: false,
            plain_listened: false,
            message_memo: [((0, 0), false); 4],
            scratch: Vec::new(),
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

    pub(crate) fn capture(&mut self, prefix: &str) -> EventLog {
        let log = EventLog::default();
        self.captures.push((prefix.to_string(), log.clone()));
        self.message_memo = [((0, 0), false); 4];
        self.listeners = true;
        self.plain_listened |= PLAIN_NAMES.iter().any(|n| n.starts_with(prefix));
        log
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
                !self.plain_listened && (self.captures.is_empty() || !self.message_captured(name))
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

    /// Whether a capture takes message events named `name`. Asked for every message, of
    /// a handful of names, while the captures rarely change: the answers are remembered
    /// by where the name is, so that the prefixes are not compared again each time.
    #[inline]
    fn message_captured(&mut self, name: &'static str) -> bool {
        let key = (name.as_ptr() as usize, name.len());
        for (k, captured) in &self.message_memo {
            if *k == key {
                return *captured;
            }
        }
        let captured = self
            .captures
            .iter()
            .any(|(p, _)| name.starts_with(p.as_str()));
        self.message_memo.rotate_right(1);
        self.message_memo[0] = (key, captured);
        captured
    }

    /// `push` for the events of every step (spawns, polls, completions, timers, messages)
    /// in the common case: no JSON fields, nobody listening, the ring full. Hashes and stores exactly what
    /// `push` would, with none of its branches.
    #[inline(always)]
    fn push_plain(&mut self, time: Instant, node: NodeId, task: Option<TaskId>, kind: EventKind) {
        let seq = self.count;
        self.count += 1;
        let h = &mut self.hasher;
        h.write_u64(time.as_nanos());
        h.write_u64(u64::from(node.0));
        h.write_u64(task.map_or(u64::MAX, |t| t.0));
        h.write_u64(kind.tag());
        kind.hash_payload(h);
        let slot = &mut self.ring[self.ring_head];
        slot.seq = seq;
        slot.time = time;
        slot.node = node;
        slot.task = task;
        slot.kind = kind;
        slot.fields.clear();
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
        h.write_u64(time.as_nanos());
        h.write_u64(u64::from(node.0));
        h.write_u64(task.map_or(u64::MAX, |t| t.0));
        h.write_u64(EventKind::TimerFire.tag());
        self.ring_head += 1;
        if self.ring_head == self.ring_capacity {
            self.ring_head = 0;
        }
    }

    /// Records a custom event whose fields serialise to JSON.
    pub(crate) fn custom<T: Serialize + ?Sized>(
        &mut self,
        time: Instant,
        node: NodeId,
        task: Option<TaskId>,
        name: &'static str,
        fields: &T,
    ) {
        self.scratch.clear();
        if let Err(e) = serde_json::to_writer(&mut self.scratch, fields) {
            // A field type that cannot be JSON is a bug in the caller; keep the event with
            // the error so the trace still shows it.
            self.scratch.clear();
            let _ = write!(self.scratch, "{{\"serialize_error\":{:?}}}", e.to_string());
        }
        self.push(time, node, task, EventKind::Custom { name });
    }

    #[inline(never)]
    fn push(&mut self, time: Instant, node: NodeId, task: Option<TaskId>, kind: EventKind) {
        let seq = self.count;
        self.count += 1;
        // Hash without building an `Event` first, so the hot path never allocates.
        let h = &mut self.hasher;
        h.write_u64(time.as_nanos());
        h.write_u64(u64::from(node.0));
        h.write_u64(task.map_or(u64::MAX, |t| t.0));
        h.write_u64(kind.tag());
        kind.hash_payload(h);
        if !self.scratch.is_empty() {
            h.write_bytes(&self.scratch);
        }
        let listened = self.listeners && self.is_listened(&kind);
        let fan_out_kind = listened.then(|| kind.clone());
        if self.ring_capacity > 0 {
            if self.ring.len() == self.ring_capacity {
                // Reuse the oldest slot's buffer so a full ring does not allocate.
                let slot = &mut self.ring[self.ring_head];
                slot.seq = seq;
                slot.time = time;
                slot.node = node;
                slot.task = task;
                slot.kind = kind;
                if !slot.fields.is_empty() || !self.scratch.is_empty() {
                    slot.fields.clear();
                    slot.fields.extend_from_slice(&self.scratch);
                }
                self.ring_head += 1;
                if self.ring_head == self.ring_capacity {
                    self.ring_head = 0;
                }
            } else {
                let fields = self.scratch.clone();
                self.ring.push(Event {
                    seq,
                    time,
                    node,
                    task,
                    kind,
                    fields,
                });
            }
        }
        if let Some(kind) = fan_out_kind {
            let fields = self.scratch.clone();
            self.fan_out(Event {
                seq,
                time,
                node,
                task,
                kind,
                fields,
            });
        }
    }

    /// Whether an event goes anywhere beyond the fingerprint and the ring.
    fn is_listened(&self, kind: &EventKind) -> bool {
        self.jsonl.is_some()
            || self.record.is_some()
            || self.compare.as_ref().is_some_and(|c| c.1.is_none())
            || self
                .captures
                .iter()
                .any(|(p, _)| kind.name().starts_with(p.as_str()))
    }

    fn fan_out(&mut self, event: Event) {
        if let Some(out) = self.jsonl.as_mut() {
            // Trace output failing (disk full) must not change the simulation; drop it.
            if writeln!(out, "{}", event.to_json()).is_err() {
                self.jsonl = None;
            }
        }
        for (prefix, log) in &self.captures {
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

    /// Records a custom event whose JSON fields the caller writes itself (hot paths).
    pub(crate) fn custom_raw(
        &mut self,
        time: Instant,
        node: NodeId,
        task: Option<TaskId>,
        name: &'static str,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        self.scratch.clear();
        write(&mut self.scratch);
        self.push(time, node, task, EventKind::Custom { name });
    }

    pub(crate) fn flush(&mut self) {
        if let Some(out) = self.jsonl.as_mut() {
            let _ = out.flush();
        }
    }
}

/// Adds a custom event to the running simulation's trace: a name and serde fields. The
/// event carries the current virtual time, node and task. Outside a simulation it does
/// nothing, so library code can trace unconditionally.
pub fn emit<T: Serialize + ?Sized>(name: &'static str, fields: &T) {
    world::try_with(|w| w.emit_custom(name, fields));
}

/// Like [`emit`], for hot paths (one event per network message): `write` appends the
/// fields as JSON text itself, skipping serde. It must write one valid JSON value.
pub fn emit_raw(name: &'static str, write: impl FnOnce(&mut Vec<u8>)) {
    world::try_with(|w| {
        let node = w.current_node();
        let task = w.current_task();
        let now = w.now;
        w.trace.custom_raw(now, node, task, name, write);
    });
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

/// Appends `n` in decimal (for [`emit_raw`] writers).
pub fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Byte by byte: the numbers are short, and a copy of a variable length is a call
    // to `memcpy`.
    out.reserve(buf.len() - i);
    for &d in &buf[i..] {
        out.push(d);
    }
}

/// Collects, from now on, every event whose name starts with `prefix` (`""` for all).
/// Checkers read the log after the run; service code never sees it.
pub fn capture(prefix: &str) -> EventLog {
    world::with(|w| w.trace.capture(prefix))
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
