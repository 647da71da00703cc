//! From the history to the dependency graph: who appended each element, which
//! transactions count, the version order of each key (its longest read, which every other
//! read must be a prefix of), and the ww, wr and rw edges that order implies. The
//! anomalies seen on the way (aborted and intermediate reads, lost updates, reads no
//! order explains) are reported here; cycles are the business of [`super::cycles`].

use std::collections::BTreeMap;

use indexmap::IndexMap;

use crate::fixed_hash::FixedState;

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
    let mut by_key: BTreeMap<Key, Vec<&Read<'_>>> = BTreeMap::new();
    for r in &reads {
        by_key.entry(r.key).or_default().push(r);
    }
    let mut in_graph: Vec<bool> = history
        .txns
        .iter()
        .map(|t| t.outcome == Outcome::Committed)
        .collect();
    let mut anomalies = Vec::new();
    let mut orders = Vec::new();
    for (key, mut reads) in by_key {
        // Shortest first (ties in history order), so that each element is blamed on the
        // first read that shows it.
        reads.sort_by_key(|r| r.list.len());
        match version_order(key, &reads) {
            Ok(order) => {
                // Every read is a prefix of the order: checking the order's elements once
                // checks every read's, at a cost linear in the key's appends.
                let seen = Seen { key, list: order };
                seen.check(history, &writer, &reads, &mut in_graph, &mut anomalies);
                orders.push((key, order, reads));
            }
            Err(a) => {
                anomalies.push(a);
                for r in &reads {
                    let seen = Seen { key, list: r.list };
                    seen.check(history, &writer, &[r], &mut in_graph, &mut anomalies);
                }
            }
        }
    }
    intermediate_reads(history, &writer, &reads, &mut anomalies);
    lost_updates(history, &mut anomalies);
    internal(history, &mut anomalies);
    let mut graph = Graph::new(history.txns.len());
    for (key, order, reads) in orders {
        add_edges(key, order, &reads, &writer, &in_graph, &mut graph);
    }
    Inferred {
        graph,
        anomalies,
        in_graph,
    }
}

/// Who appended each element (the first to, should a buggy history append one twice).
type Writers = IndexMap<Element, TxnId, FixedState>;

fn writers(history: &History) -> Writers {
    let mut writer = Writers::default();
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

/// A list some committed transaction read.
struct Seen<'a> {
    key: Key,
    list: &'a [Element],
}

impl Seen<'_> {
    /// Garbage and aborted reads (G1a) among the list's elements, each blamed on the
    /// shortest of `readers` (sorted by length) that shows it; and a transaction of
    /// unknown outcome whose append was read did commit, so it joins the graph.
    fn check(
        &self,
        history: &History,
        writer: &Writers,
        readers: &[&Read<'_>],
        in_graph: &mut [bool],
        anomalies: &mut Vec<Anomaly>,
    ) {
        let mut blame = 0;
        for (i, &element) in self.list.iter().enumerate() {
            while readers[blame].list.len() <= i {
                blame += 1;
            }
            let reader = readers[blame].reader;
            let Some(&w) = writer.get(&element) else {
                anomalies.push(Anomaly::GarbageRead {
                    reader,
                    key: self.key,
                    element,
                });
                continue;
            };
            match history.txns[w].outcome {
                Outcome::Aborted => anomalies.push(Anomaly::AbortedRead {
                    reader,
                    writer: w,
                    key: self.key,
                    element,
                }),
                Outcome::Unknown => in_graph[w] = true,
                Outcome::Committed => {}
            }
        }
    }
}

/// G1b: a read whose last element's writer (another transaction) appended to the key
/// again after it saw that writer half done.
fn intermediate_reads(
    history: &History,
    writer: &Writers,
    reads: &[Read<'_>],
    anomalies: &mut Vec<Anomaly>,
) {
    for r in reads {
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
/// The version's length comes first so that most comparisons need not walk the lists.
type ReadThenAppend<'a> = BTreeMap<(Key, usize, &'a [Element]), Vec<(TxnId, Element)>>;

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
                        groups
                            .entry((*key, list.len(), list))
                            .or_default()
                            .push((t, *element));
                    }
                }
            }
        }
    }
    for ((key, _, read), appenders) in groups {
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
    writer: &Writers,
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

/// Each committed transaction's reads against its own operations on the key: a read
/// extends the transaction's previous read of the key, and ends with the appends the
/// transaction made to it since (at every isolation level: a transaction sees its own
/// writes, and its row lock keeps others from appending after them).
fn internal(history: &History, anomalies: &mut Vec<Anomaly>) {
    for (t, txn) in history.txns.iter().enumerate() {
        if txn.outcome != Outcome::Committed {
            continue;
        }
        // Per key: the previous read, and the appends since it.
        let mut state: BTreeMap<Key, (&[Element], Vec<Element>)> = BTreeMap::new();
        for op in &txn.ops {
            match op {
                Op::Append { key, element } => state.entry(*key).or_default().1.push(*element),
                Op::Read {
                    key,
                    list: Some(list),
                } => {
                    let (before, since) = state.entry(*key).or_default();
                    if !list.starts_with(before) || !list.ends_with(since) {
                        anomalies.push(Anomaly::Internal {
                            txn: t,
                            key: *key,
                            read: list.clone(),
                            expected_prefix: before.to_vec(),
                            expected_suffix: since.clone(),
                        });
                    }
                    *before = list;
                    since.clear();
                }
                Op::Read { .. } => {}
            }
        }
    }
}
