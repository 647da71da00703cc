//! A run as a picture: one self-contained HTML page with a lane per node, requests as
//! spans, messages as arrows, fault windows shaded and a violation marked at its instant.
//!
//! The page is built from the run's trace (its JSON lines), so any run can be drawn: a
//! scenario's (`sim run --html`), a failing `#[sim_runtime::test]` seed (`SIM_HTML`), or
//! a user's own `Sim` with [`Sim::trace_jsonl`](crate::Sim::trace_jsonl). What the trace
//! cannot know is passed in: the run's summary, the scheduled fault windows with their
//! names, and a checker's violation with the events it points at.
//!
//! Map: this file holds the page's data ([`Timeline`]) and its building from events;
//! [`request`] the request-span event that user-facing code emits; `faults` pairs fault
//! events into windows; `page` writes the HTML (d3 for scales, axes and zoom, vendored in
//! `assets/` and inlined, so the page needs no network).

mod faults;
mod page;
pub mod request;

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;
use serde_json::Value;

pub use page::{html_page, PageAssets};
pub use request::{record_request, RequestResult};

/// Events of the scheduler itself: far too many to draw and never what a person looks
/// for in a timeline (they stay in the `--trace` output).
const SCHEDULER_EVENTS: [&str; 5] = [
    "task.poll",
    "task.spawn",
    "task.complete",
    "task.abort",
    "timer.fire",
];

/// Past this many messages the page keeps every n-th one (and says so): a browser draws
/// and hit-tests this many arrows at once without lag, and the file stays small.
pub const MAX_ARROWS: usize = 20_000;

/// Spans of one lane stack in at most this many rows; more concurrent requests share rows.
const MAX_ROWS: u32 = 48;

/// What the trace does not say about a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunInfo {
    /// The page's heading, e.g. `flash-sale check_then_decrement seed 0x1`.
    pub title: String,
    /// Free-form lines under the heading (variant, fault, schedule, replay line).
    pub details: Vec<(String, String)>,
    /// `pass`, or what failed.
    pub outcome: String,
    pub failed: bool,
}

/// A fault window the schedule knows by name (the trace knows only its effects).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScheduledWindow {
    pub label: String,
    pub start_ns: u64,
    /// `None` when the fault lasts to the end of the run.
    pub end_ns: Option<u64>,
}

/// A checker's violation: when, what, and the trace events (by `seq`) that lead to it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Violation {
    pub at_ns: u64,
    pub checker: String,
    pub message: String,
    pub seqs: Vec<u64>,
}

/// A node's lane.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Lane {
    pub node: u32,
    pub name: String,
    /// Rows its request spans stack in (0 when it has none).
    pub rows: u32,
}

/// A request from its start to its reply: `(lane, row, start_ns, end_ns, result, event)`,
/// where `result` indexes [`RequestResult::ALL`] and `event` indexes [`Timeline::events`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Span(pub u32, pub u32, pub u64, pub u64, pub u8, pub u32);

/// A message: `(from lane, to lane, sent_ns, delivered_ns or -1 if never, kind, send
/// event, deliver event or -1)`; `kind` indexes [`Messages::kinds`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Arrow(
    pub u32,
    pub u32,
    pub u64,
    pub i64,
    pub u32,
    pub u32,
    pub i64,
);

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Messages {
    pub kinds: Vec<String>,
    pub arrows: Vec<Arrow>,
    /// Messages in the run; `arrows` holds every `sampled_every`-th.
    pub total: u64,
    pub sampled_every: u64,
}

/// A fault's window across the lanes it hits (all lanes when `lanes` is empty).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultWindow {
    /// kill, pause, oom, partition, isolate, clog, hold, latency, or scheduled.
    pub kind: String,
    pub label: String,
    pub lanes: Vec<u32>,
    pub start_ns: u64,
    pub end_ns: u64,
    /// The events that open and close it, as indexes into [`Timeline::events`].
    pub events: Vec<u32>,
}

/// The violation as drawn: its instant, and the events it points at.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ViolationMark {
    pub at_ns: u64,
    pub checker: String,
    pub message: String,
    /// `(lane, t_ns, event)` for each event that leads to it.
    pub marks: Vec<(u32, u64, u32)>,
}

/// Everything the page draws; serialised into the page as its data.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timeline {
    pub run: RunInfo,
    pub end_ns: u64,
    pub lanes: Vec<Lane>,
    pub spans: Vec<Span>,
    pub messages: Messages,
    pub faults: Vec<FaultWindow>,
    pub violation: Option<ViolationMark>,
    /// Model operations and other named events as `(lane, t_ns, event)`: ticks on lanes.
    pub ticks: Vec<(u32, u64, u32)>,
    /// Every event the page shows when clicked, as its trace JSON.
    pub events: Vec<Value>,
}

/// Why a trace could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    #[error("trace line {line} is not an event: {source}")]
    BadLine {
        line: usize,
        source: serde_json::Error,
    },
}

/// One trace event as the builder reads it.
struct Ev {
    name: String,
    node: u32,
    t_ns: u64,
    seq: u64,
    value: Value,
}

impl Ev {
    fn parse(value: Value) -> Ev {
        let name = value["event"].as_str().unwrap_or("").to_string();
        let num = |k: &str| value[k].as_u64().unwrap_or(0);
        Ev {
            node: u32::try_from(num("node")).unwrap_or(u32::MAX),
            t_ns: num("t_ns"),
            seq: num("seq"),
            name,
            value,
        }
    }

    fn field(&self, k: &str) -> &Value {
        &self.value["fields"][k]
    }
}

impl Timeline {
    /// Builds the page's data from a run's trace, as written by
    /// [`Sim::trace_jsonl`](crate::Sim::trace_jsonl).
    pub fn from_jsonl(
        jsonl: &str,
        run: RunInfo,
        scheduled: &[ScheduledWindow],
        violation: Option<&Violation>,
    ) -> Result<Timeline, TimelineError> {
        let mut events = Vec::new();
        for (i, line) in jsonl.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value: Value =
                serde_json::from_str(line).map_err(|source| TimelineError::BadLine {
                    line: i + 1,
                    source,
                })?;
            events.push(Ev::parse(value));
        }
        Ok(Self::from_events(events, run, scheduled, violation))
    }

    fn from_events(
        all: Vec<Ev>,
        run: RunInfo,
        scheduled: &[ScheduledWindow],
        violation: Option<&Violation>,
    ) -> Timeline {
        let end_ns = all.iter().map(|e| e.t_ns).max().unwrap_or(0);
        let kept: Vec<Ev> = all
            .into_iter()
            .filter(|e| !SCHEDULER_EVENTS.contains(&e.name.as_str()))
            .collect();
        let lanes = Lanes::of(&kept);
        let messages = messages(&kept, &lanes);
        let mut spans = Vec::new();
        let mut ticks = Vec::new();
        for (i, e) in kept.iter().enumerate() {
            let lane = lanes.of_node(e.node);
            let idx = i as u32;
            match e.name.as_str() {
                request::NAME => {
                    let start = e.field("start_ns").as_u64().unwrap_or(e.t_ns);
                    let result = RequestResult::ALL
                        .iter()
                        .position(|r| e.field("result").as_str() == Some(r.as_str()))
                        .unwrap_or(0) as u8;
                    spans.push(Span(lane, 0, start.min(e.t_ns), e.t_ns, result, idx));
                }
                "net.send" | "net.deliver" | "net.duplicate" | "node.start" => {}
                _ => ticks.push((lane, e.t_ns, idx)),
            }
        }
        let mut lanes = lanes.list;
        stack_rows(&mut spans, &mut lanes);
        let mut faults = faults::windows(&kept, &|n| Lanes::index_in(&lanes, n), end_ns);
        faults.extend(scheduled.iter().map(|w| FaultWindow {
            kind: "scheduled".into(),
            label: w.label.clone(),
            lanes: Vec::new(),
            start_ns: w.start_ns,
            end_ns: w.end_ns.unwrap_or(end_ns).max(w.start_ns),
            events: Vec::new(),
        }));
        faults.sort_by_key(|f| (f.start_ns, f.end_ns));
        let violation = violation.map(|v| {
            let by_seq: BTreeMap<u64, usize> =
                kept.iter().enumerate().map(|(i, e)| (e.seq, i)).collect();
            let marks = v
                .seqs
                .iter()
                .filter_map(|s| by_seq.get(s))
                .map(|&i| {
                    let e = &kept[i];
                    (Lanes::index_in(&lanes, e.node), e.t_ns, i as u32)
                })
                .collect();
            ViolationMark {
                at_ns: v.at_ns,
                checker: v.checker.clone(),
                message: v.message.clone(),
                marks,
            }
        });
        Timeline {
            run,
            end_ns,
            lanes,
            spans,
            messages,
            faults,
            violation,
            ticks,
            events: kept.into_iter().map(|e| e.value).collect(),
        }
    }

    /// The page: self-contained HTML that draws this timeline.
    pub fn to_html(&self) -> String {
        html_page(
            &self.run.title,
            &serde_json::to_string(self).unwrap_or_else(|_| "null".into()),
            PageAssets::TIMELINE,
        )
    }
}

/// The lanes: one per node seen, in node order, named by its `node.start` event.
struct Lanes {
    list: Vec<Lane>,
}

impl Lanes {
    fn of(events: &[Ev]) -> Lanes {
        let mut names: BTreeMap<u32, String> = BTreeMap::new();
        for e in events {
            if e.name == "node.start" {
                let name = e.value["name"].as_str().unwrap_or("node").to_string();
                names.insert(e.node, name);
            } else {
                names.entry(e.node).or_insert_with(|| {
                    // The run's first node is the test's or scenario's own main task.
                    if e.node == 0 {
                        "main".into()
                    } else {
                        format!("node {}", e.node)
                    }
                });
            }
            // Messages name their endpoints' nodes, which may never emit anything.
            for k in ["src", "dst"] {
                if let Some(n) = e.field(k)[0].as_u64() {
                    let n = u32::try_from(n).unwrap_or(u32::MAX);
                    names.entry(n).or_insert_with(|| format!("node {n}"));
                }
            }
        }
        Lanes {
            list: names
                .into_iter()
                .map(|(node, name)| Lane {
                    node,
                    name,
                    rows: 0,
                })
                .collect(),
        }
    }

    fn of_node(&self, node: u32) -> u32 {
        Self::index_in(&self.list, node)
    }

    fn index_in(lanes: &[Lane], node: u32) -> u32 {
        lanes.partition_point(|l| l.node < node) as u32
    }
}

/// A message's endpoints, `(node, port)` each, and its kind.
type MessageKey = ((u64, u64), (u64, u64), String);

/// Pairs each delivery with its send (first in, first out per endpoint pair and kind, as
/// a connection delivers); a send never delivered is drawn as lost.
fn messages(events: &[Ev], lanes: &Lanes) -> Messages {
    let endpoint =
        |v: &Value| -> (u64, u64) { (v[0].as_u64().unwrap_or(0), v[1].as_u64().unwrap_or(0)) };
    let total = events.iter().filter(|e| e.name == "net.send").count() as u64;
    let every = total.div_ceil(MAX_ARROWS as u64).max(1);
    let mut kinds: Vec<String> = Vec::new();
    let mut kind_ids: BTreeMap<String, u32> = BTreeMap::new();
    let mut in_flight: BTreeMap<MessageKey, VecDeque<usize>> = BTreeMap::new();
    let mut arrows: Vec<Arrow> = Vec::new();
    let mut sent = 0u64;
    for (i, e) in events.iter().enumerate() {
        if e.name != "net.send" && e.name != "net.deliver" {
            continue;
        }
        let (src, dst) = (endpoint(e.field("src")), endpoint(e.field("dst")));
        let kind = e.field("kind").as_str().unwrap_or("").to_string();
        let key = (src, dst, kind.clone());
        if e.name == "net.send" {
            sent += 1;
            // Sampling keeps whole messages: a send left out leaves its delivery out too.
            let keep = (sent - 1) % every == 0;
            let slot = if keep {
                let next = kinds.len() as u32;
                let k = *kind_ids.entry(kind.clone()).or_insert_with(|| {
                    kinds.push(kind);
                    next
                });
                arrows.push(Arrow(
                    lanes.of_node(src.0 as u32),
                    lanes.of_node(dst.0 as u32),
                    e.t_ns,
                    -1,
                    k,
                    i as u32,
                    -1,
                ));
                arrows.len() - 1
            } else {
                usize::MAX
            };
            in_flight.entry(key).or_default().push_back(slot);
        } else if let Some(slot) = in_flight.get_mut(&key).and_then(VecDeque::pop_front) {
            if let Some(a) = arrows.get_mut(slot) {
                a.3 = i64::try_from(e.t_ns).unwrap_or(i64::MAX);
                a.6 = i as i64;
            }
        }
    }
    Messages {
        kinds,
        arrows,
        total,
        sampled_every: every,
    }
}

/// Stacks each lane's spans into rows, first fit by start time, so that concurrent
/// requests do not hide each other.
fn stack_rows(spans: &mut [Span], lanes: &mut [Lane]) {
    spans.sort_by_key(|s| (s.0, s.2, s.3, s.5));
    let mut row_ends: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for s in spans.iter_mut() {
        let ends = row_ends.entry(s.0).or_default();
        let row = match ends.iter().position(|&end| end <= s.2) {
            Some(r) => r,
            None if ends.len() < MAX_ROWS as usize => {
                ends.push(0);
                ends.len() - 1
            }
            // Full: the row that frees first.
            None => (0..ends.len()).min_by_key(|&r| ends[r]).unwrap_or(0),
        };
        ends[row] = ends[row].max(s.3);
        s.1 = row as u32;
    }
    for (lane, ends) in row_ends {
        if let Some(l) = lanes.get_mut(lane as usize) {
            l.rows = ends.len() as u32;
        }
    }
}

#[cfg(test)]
mod tests;
