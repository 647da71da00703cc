//! Fault windows from the trace: each fault event paired with the event that undoes it
//! (a kill with its node's restart, a partition with its repair, a slowed link with its
//! reset). A window still open when the run ends lasts to the end.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Ev, FaultWindow};

/// What opens a window and what closes it, for faults of one node.
const NODE_FAULTS: [(&str, &str, &[&str]); 3] = [
    ("node.kill", "kill", &["node.restart"]),
    ("node.oom", "oom", &["node.restart"]),
    ("node.pause", "pause", &["node.resume", "node.kill"]),
];

/// Network faults (`net.fault`'s `fault` field) and the ones that undo them.
const NET_FAULTS: [(&str, &[&str]); 5] = [
    ("partition", &["repair", "repair_all"]),
    ("partition_oneway", &["repair", "repair_all"]),
    ("isolate", &["rejoin", "repair_all"]),
    ("clog", &["unclog"]),
    ("hold", &["release"]),
];

struct Open {
    kind: &'static str,
    label: String,
    lanes: Vec<u32>,
    start_ns: u64,
    event: u32,
}

impl Open {
    fn close(self, end_ns: u64, event: Option<u32>) -> FaultWindow {
        let mut events = vec![self.event];
        events.extend(event);
        FaultWindow {
            kind: self.kind.into(),
            label: self.label,
            lanes: self.lanes,
            start_ns: self.start_ns,
            end_ns: end_ns.max(self.start_ns),
            events,
        }
    }
}

fn nodes(v: &Value) -> Vec<u32> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_u64)
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
                .collect()
        })
        .unwrap_or_default()
}

/// The fault windows of a run, `lane` mapping a node to its lane.
pub(super) fn windows(events: &[Ev], lane: &dyn Fn(u32) -> u32, end_ns: u64) -> Vec<FaultWindow> {
    // Keyed by what a closing event names: (family, nodes a, nodes b) or (node).
    let mut open: BTreeMap<(String, Vec<u32>, Vec<u32>), Vec<Open>> = BTreeMap::new();
    let mut done = Vec::new();
    let lanes_of = |ns: &[u32]| -> Vec<u32> { ns.iter().map(|&n| lane(n)).collect() };
    for (i, e) in events.iter().enumerate() {
        let idx = i as u32;
        let name = e.name.as_str();
        // A node's restart or resume closes what its kill, OOM or pause opened.
        for (opener, kind, closers) in NODE_FAULTS {
            if closers.contains(&name) {
                let key = (kind.to_string(), vec![e.node], Vec::new());
                for w in open.remove(&key).unwrap_or_default() {
                    done.push(w.close(e.t_ns, Some(idx)));
                }
            }
            if name == opener {
                let key = (kind.to_string(), vec![e.node], Vec::new());
                let label = match kind {
                    "oom" => format!(
                        "node {} out of memory ({} bytes asked, budget {})",
                        e.node, e.value["requested"], e.value["budget"]
                    ),
                    _ => format!("{kind} node {}", e.node),
                };
                open.entry(key).or_default().push(Open {
                    kind,
                    label,
                    lanes: lanes_of(&[e.node]),
                    start_ns: e.t_ns,
                    event: idx,
                });
            }
        }
        if name == "net.fault" {
            let fault = e.field("fault").as_str().unwrap_or("");
            let (a, b) = (nodes(e.field("a")), nodes(e.field("b")));
            for (kind, closers) in NET_FAULTS {
                if !closers.contains(&fault) {
                    continue;
                }
                let keys: Vec<_> = open
                    .keys()
                    .filter(|(k, ka, kb)| {
                        k == kind
                            && (fault == "repair_all"
                                || (ka == &a && kb == &b)
                                || (ka == &b && kb == &a)
                                || (fault == "rejoin" && ka == &a))
                    })
                    .cloned()
                    .collect();
                for key in keys {
                    for w in open.remove(&key).unwrap_or_default() {
                        done.push(w.close(e.t_ns, Some(idx)));
                    }
                }
            }
            if let Some((kind, _)) = NET_FAULTS.iter().find(|(k, _)| *k == fault) {
                let mut both = a.clone();
                both.extend(&b);
                let label = if b.is_empty() {
                    format!("{kind} {a:?}")
                } else {
                    format!("{kind} {a:?} / {b:?}")
                };
                open.entry((kind.to_string(), a, b))
                    .or_default()
                    .push(Open {
                        kind,
                        label,
                        lanes: lanes_of(&both),
                        start_ns: e.t_ns,
                        event: idx,
                    });
            }
        }
        if name == "net.link" {
            let (from, to) = (e.field("from").as_u64(), e.field("to").as_u64());
            let ends: Vec<u32> = [from, to]
                .into_iter()
                .flatten()
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
                .collect();
            let key = ("latency".to_string(), ends.clone(), Vec::new());
            for w in open.remove(&key).unwrap_or_default() {
                done.push(w.close(e.t_ns, Some(idx)));
            }
            let config = e.field("config");
            if !config.is_null() {
                // `None` ends mean every node: the default link.
                let end = |n: Option<u64>| n.map_or("*".to_string(), |n| n.to_string());
                let label = format!("link {} -> {}: {config}", end(from), end(to));
                open.entry(key).or_default().push(Open {
                    kind: "latency",
                    label,
                    lanes: lanes_of(&ends),
                    start_ns: e.t_ns,
                    event: idx,
                });
            }
        }
    }
    done.extend(open.into_values().flatten().map(|w| w.close(end_ns, None)));
    done
}
