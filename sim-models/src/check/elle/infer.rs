//! From the history to the dependency graph: who appended each element, which
//! transactions count, the version order of each key (its longest read, which every other
//! read must be a prefix of), and the ww, wr and rw edges that order implies. The
//! anomalies seen on the way (aborted and intermediate reads, lost updates, reads no
//! order explains) are reported here; cycles are the business of [`super::cycles`].

use std::collections::BTreeMap;

use super::anomalies::Anomaly;
use super::graph::{Edge, EdgeKind, Graph};
use super::history::{Element, History, Key, Op, Outcome, TxnId};

pub(super) struct Inferred {
    pub graph: Graph,
    pub anomalies: Vec<Anomaly>,
    /// Transactions that are nodes of the graph.
    pub in_graph: Vec<bool>,
}

/// A committed read: who read which key, and what.
struct Read<'a> {
    reader: TxnId,
    key: Key,
    list: &'a [Element],
}

pub(super) fn infer(history: &History) -> Inferred {
    let writer = writers(history);
    let reads = committed_reads(history);
    let in_graph = graph_members(history, &writer, &reads);
    let mut anomalies = Vec::new();
    read_anomalies(history, &writer, &reads, &mut anomalies);
    lost_updates(history, &mut anomalies);
    let mut graph = Graph::new(history.txns.len());
    let mut by_key: BTreeMap<Key, Vec<&Read<'_>>> = BTreeMap::new();
    for r in &reads {
        by_key.entry(r.key).or_default().push(r);
    }
    for (key, reads) in by_key {
        match version_order(key, &reads) {
            Ok(order) => add_edges(key, order, &reads, &writer, &in_graph, &mut graph),
            Err(a) => anomalies.push(a),
        }
    }
    Inferred {
        graph,
        anomalies,
        in_graph,
    }
}

/// Who appended each element, with the outcome of that transaction.
fn writers(history: &History) -> BTreeMap<Element, TxnId> {
    let mut writer = BTreeMap::new();
    for (t, txn) in history.txns.iter().enumerate() {
        for op in &txn.ops {
            if let Op::Append { element, .. } = op {
                writer.entry(*element).or_insert(t);
            }
        }
    }
    writer
}

/// Reads by committed transactions that returned. Aborted transactions' reads prove
/// nothing, and those of unknown outcome are left out as Elle leaves them: the client
/// never learned whether they took effect.
fn committed_reads(history: &History) -> Vec<Read<'_>> {
    let mut reads = Vec::new();
    for (t, txn) in history.txns.iter().enumerate() {
        if txn.outcome != Outcome::Committed {
            continue;
        }
        for op in &txn.ops {
            if let Op::Read {
                key,
                list: Some(list),
            } = op
            {
                reads.push(Read {
                    reader: t,
                    key: *key,
                    list,
                });
            }
        }
    }
    reads
}

/// Committed transactions, and those of unknown outcome whose appends someone read
/// (so they did commit).
fn graph_members(
    history: &History,
    writer: &BTreeMap<Element, TxnId>,
    reads: &[Read<'_>],
) -> Vec<bool> {
    let mut member: Vec<bool> = history
        .txns
        .iter()
        .map(|t| t.outcome == Outcome::Committed)
        .collect();
    for r in reads {
        for e in r.list {
            if let Some(&w) = writer.get(e) {
                if history.txns[w].outcome == Outcome::Unknown {
                    member[w] = true;
                }
            }
        }
    }
    member
}

/// G1a, G1b and garbage reads.
fn read_anomalies(
    history: &History,
    writer: &BTreeMap<Element, TxnId>,
    reads: &[Read<'_>],
    anomalies: &mut Vec<Anomaly>,
) {
    for r in reads {
        for &element in r.list {
            match writer.get(&element) {
                None => anomalies.push(Anomaly::GarbageRead {
                    reader: r.reader,
                    key: r.key,
                    element,
                }),
                Some(&w) if history.txns[w].outcome == Outcome::Aborted => {
                    anomalies.push(Anomaly::AbortedRead {
                        reader: r.reader,
                        writer: w,
                        key: r.key,
                        element,
                    });
                }
                Some(_) => {}
            }
        }
        // The last element read: if its writer (another transaction) appended to the key
        // again after it, the read saw that writer half done.
        let Some(&last) = r.list.last() else {
            continue;
        };
        let Some(&w) = writer.get(&last) else {
            continue;
        };
        if w == r.reader {
            continue;
        }
        let appends = history.txns[w].ops.iter().filter_map(|op| match op {
            Op::Append { key, element } if *key == r.key => Some(*element),
            _ => None,
        });
        if let Some(later) = appends.skip_while(|e| *e != last).nth(1) {
            anomalies.push(Anomaly::IntermediateRead {
                reader: r.reader,
                writer: w,
                key: r.key,
                element: last,
                later,
            });
        }
    }
}

/// By (key, version read): the transactions that read it and then appended to the key,
/// with the element each appended first.
type ReadThenAppend<'a> = BTreeMap<(Key, &'a [Element]), Vec<(TxnId, Element)>>;

/// Committed transactions that read a key and then appended to it, grouped by the state
/// they read: two in one group both wrote over the same version, and one of the writes
/// was made without knowing of the other.
fn lost_updates(history: &History, anomalies: &mut Vec<Anomaly>) {
    let mut groups: ReadThenAppend<'_> = BTreeMap::new();
    for (t, txn) in history.txns.iter().enumerate() {
        if txn.outcome != Outcome::Committed {
            continue;
        }
        // The first read of each key before the transaction's first append to it.
        let mut read_first: BTreeMap<Key, Option<&[Element]>> = BTreeMap::new();
        for op in &txn.ops {
            match op {
                Op::Read {
                    key,
                    list: Some(list),
                } => {
                    read_first.entry(*key).or_insert(Some(list.as_slice()));
                }
                Op::Read { .. } => {}
                Op::Append { key, element } => {
                    // Only the first append after the read: later ones build on it.
                    if let Some(Some(list)) = read_first.insert(*key, None) {
                        groups.entry((*key, list)).or_default().push((t, *element));
                    }
                }
            }
        }
    }
    for ((key, read), appenders) in groups {
        if appenders.len() > 1 {
            anomalies.push(Anomaly::LostUpdate {
                key,
                read: read.to_vec(),
                appenders,
            });
        }
    }
}

/// The key's version order: its longest read, provided every read is a prefix of it.
fn version_order<'a>(key: Key, reads: &[&Read<'a>]) -> Result<&'a [Element], Anomaly> {
    let longest = reads
        .iter()
        .max_by_key(|r| r.list.len())
        .expect("a key is ordered only when read");
    for r in reads {
        if !longest.list.starts_with(r.list) {
            return Err(Anomaly::IncompatibleOrder {
                key,
                first: (longest.reader, longest.list.to_vec()),
                second: (r.reader, r.list.to_vec()),
            });
        }
    }
    Ok(longest.list)
}

fn add_edges(
    key: Key,
    order: &[Element],
    reads: &[&Read<'_>],
    writer: &BTreeMap<Element, TxnId>,
    in_graph: &[bool],
    graph: &mut Graph,
) {
    let member = |e: &Element| writer.get(e).copied().filter(|&w| in_graph[w]);
    for pair in order.windows(2) {
        if let (Some(a), Some(b)) = (member(&pair[0]), member(&pair[1])) {
            graph.add(Edge {
                from: a,
                to: b,
                kind: EdgeKind::Ww,
                key,
                element: pair[1],
            });
        }
    }
    for r in reads {
        let seen = r.list.len();
        if let Some(w) = r.list.last().and_then(member) {
            graph.add(Edge {
                from: w,
                to: r.reader,
                kind: EdgeKind::Wr,
                key,
                element: order[seen - 1],
            });
        }
        if let Some(&next) = order.get(seen) {
            if let Some(w) = member(&next) {
                graph.add(Edge {
                    from: r.reader,
                    to: w,
                    kind: EdgeKind::Rw,
                    key,
                    element: next,
                });
            }
        }
    }
}
