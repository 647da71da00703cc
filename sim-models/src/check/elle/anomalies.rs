//! The anomalies the checker reports, each with its witness told in words, and the
//! report that gathers them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::graph::{Edge, EdgeKind};
use super::history::{Element, History, Key, ListDisplay, TxnId};

/// Adya's phenomena (and Elle's lost update), weakest isolation that forbids them last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AnomalyKind {
    /// Reads of one key that are not prefixes of one another: no version order explains
    /// them (no isolation level allows it).
    IncompatibleOrder,
    /// A read of an element no transaction appended.
    GarbageRead,
    /// A transaction's read that contradicts its own earlier operations on the key: it
    /// lacks the transaction's own appends at its end, or it is not an extension of the
    /// transaction's previous read (lists only grow).
    Internal,
    /// Dirty write: a cycle of ww edges.
    G0,
    /// Aborted read: a committed transaction read an aborted one's append.
    G1a,
    /// Intermediate read: a committed transaction read a state of a key another
    /// transaction went on to append to.
    G1b,
    /// Circular information flow: a cycle of ww and wr edges with at least one wr.
    G1c,
    /// Read skew: a cycle with exactly one rw edge.
    GSingle,
    /// Write skew and the like: a cycle with two or more rw edges (a cycle with exactly
    /// one is reported as [`AnomalyKind::GSingle`]).
    G2Item,
    /// Two committed transactions read the same version of a key and both appended to it.
    LostUpdate,
}

/// One anomaly and its witness.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Anomaly {
    /// G0, G1c, G-single or G2-item: the dependency cycle, its edges in order.
    Cycle { kind: AnomalyKind, cycle: Vec<Edge> },
    /// G1a.
    AbortedRead {
        reader: TxnId,
        writer: TxnId,
        key: Key,
        element: Element,
    },
    /// G1b: `reader`'s read of `key` ended with `element`, which `writer` followed with
    /// `later`.
    IntermediateRead {
        reader: TxnId,
        writer: TxnId,
        key: Key,
        element: Element,
        later: Element,
    },
    /// The transactions that read `key` as `read` and then appended the element given.
    LostUpdate {
        key: Key,
        read: Vec<Element>,
        appenders: Vec<(TxnId, Element)>,
    },
    /// Two reads of `key` neither of which is a prefix of the other.
    IncompatibleOrder {
        key: Key,
        first: (TxnId, Vec<Element>),
        second: (TxnId, Vec<Element>),
    },
    GarbageRead {
        reader: TxnId,
        key: Key,
        element: Element,
    },
    /// `txn` read `key` as `read` where it expected `expected_prefix` ... `expected_suffix`.
    Internal {
        txn: TxnId,
        key: Key,
        read: Vec<Element>,
        expected_prefix: Vec<Element>,
        expected_suffix: Vec<Element>,
    },
}

impl Anomaly {
    pub fn kind(&self) -> AnomalyKind {
        match self {
            Anomaly::Cycle { kind, .. } => *kind,
            Anomaly::AbortedRead { .. } => AnomalyKind::G1a,
            Anomaly::IntermediateRead { .. } => AnomalyKind::G1b,
            Anomaly::LostUpdate { .. } => AnomalyKind::LostUpdate,
            Anomaly::IncompatibleOrder { .. } => AnomalyKind::IncompatibleOrder,
            Anomaly::GarbageRead { .. } => AnomalyKind::GarbageRead,
            Anomaly::Internal { .. } => AnomalyKind::Internal,
        }
    }

    /// The transactions the witness names.
    pub fn txns(&self) -> BTreeSet<TxnId> {
        match self {
            Anomaly::Cycle { cycle, .. } => cycle.iter().map(|e| e.from).collect(),
            Anomaly::AbortedRead { reader, writer, .. }
            | Anomaly::IntermediateRead { reader, writer, .. } => [*reader, *writer].into(),
            Anomaly::LostUpdate { appenders, .. } => appenders.iter().map(|a| a.0).collect(),
            Anomaly::IncompatibleOrder { first, second, .. } => [first.0, second.0].into(),
            Anomaly::GarbageRead { reader, .. } => [*reader].into(),
            Anomaly::Internal { txn, .. } => [*txn].into(),
        }
    }
}

/// What [`super::check`] found.
#[derive(Clone, Debug)]
pub struct Report {
    pub anomalies: Vec<Anomaly>,
    /// Transactions in the graph (committed, or of unknown outcome and observed).
    pub txns: usize,
    pub edges: usize,
    /// The text of every transaction a witness names, to print with it.
    named: BTreeMap<TxnId, String>,
}

impl Report {
    pub(super) fn new(
        history: &History,
        anomalies: Vec<Anomaly>,
        txns: usize,
        edges: usize,
    ) -> Self {
        let named = anomalies
            .iter()
            .flat_map(Anomaly::txns)
            .map(|t| (t, history.txns[t].to_string()))
            .collect();
        Report {
            anomalies,
            txns,
            edges,
            named,
        }
    }

    /// No anomaly at all.
    pub fn is_valid(&self) -> bool {
        self.anomalies.is_empty()
    }

    /// The kinds found.
    pub fn kinds(&self) -> BTreeSet<AnomalyKind> {
        self.anomalies.iter().map(Anomaly::kind).collect()
    }

    pub fn has(&self, kind: AnomalyKind) -> bool {
        self.anomalies.iter().any(|a| a.kind() == kind)
    }

    pub fn of(&self, kind: AnomalyKind) -> impl Iterator<Item = &Anomaly> {
        self.anomalies.iter().filter(move |a| a.kind() == kind)
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AnomalyKind::IncompatibleOrder => "incompatible-order",
            AnomalyKind::GarbageRead => "garbage-read",
            AnomalyKind::Internal => "internal",
            AnomalyKind::G0 => "G0",
            AnomalyKind::G1a => "G1a",
            AnomalyKind::G1b => "G1b",
            AnomalyKind::G1c => "G1c",
            AnomalyKind::GSingle => "G-single",
            AnomalyKind::G2Item => "G2-item",
            AnomalyKind::LostUpdate => "lost-update",
        })
    }
}

/// One edge in words.
struct EdgeWords<'a>(&'a Edge);

impl fmt::Display for EdgeWords<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Edge {
            from,
            to,
            kind,
            key,
            element,
        } = *self.0;
        match kind {
            EdgeKind::Ww => write!(
                f,
                "T{from} -ww-> T{to}: T{to} appended {element} to key {key} right after T{from}'s append"
            ),
            EdgeKind::Wr => write!(
                f,
                "T{from} -wr-> T{to}: T{to} read key {key} up to {element}, which T{from} appended"
            ),
            EdgeKind::Rw => write!(
                f,
                "T{from} -rw-> T{to}: T{from} read key {key} without {element}, which T{to} appended next"
            ),
        }
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Anomaly::Cycle { kind, cycle } => {
                write!(f, "{kind}: the cycle ")?;
                for e in cycle {
                    write!(f, "T{} -{}({})-> ", e.from, e.kind, e.key)?;
                }
                if let Some(first) = cycle.first() {
                    write!(f, "T{}", first.from)?;
                }
                for e in cycle {
                    write!(f, "\n    {}", EdgeWords(e))?;
                }
                Ok(())
            }
            Anomaly::AbortedRead {
                reader,
                writer,
                key,
                element,
            } => write!(
                f,
                "G1a: T{reader} committed having read {element} in key {key}, appended by T{writer}, which aborted"
            ),
            Anomaly::IntermediateRead {
                reader,
                writer,
                key,
                element,
                later,
            } => write!(
                f,
                "G1b: T{reader} read key {key} up to {element}, an intermediate state of T{writer}, which went on to append {later}"
            ),
            Anomaly::LostUpdate {
                key,
                read,
                appenders,
            } => {
                write!(
                    f,
                    "lost-update: on key {key}, read as {} by",
                    ListDisplay(read)
                )?;
                for (i, (t, e)) in appenders.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "," };
                    write!(f, "{sep} T{t} (then appended {e})")?;
                }
                write!(f, ", all committed")
            }
            Anomaly::IncompatibleOrder { key, first, second } => write!(
                f,
                "incompatible-order: T{} read key {key} as {} and T{} as {}: neither is a prefix of the other",
                first.0,
                ListDisplay(&first.1),
                second.0,
                ListDisplay(&second.1)
            ),
            Anomaly::GarbageRead {
                reader,
                key,
                element,
            } => write!(
                f,
                "garbage-read: T{reader} read {element} in key {key}, which no transaction appended"
            ),
            Anomaly::Internal {
                txn,
                key,
                read,
                expected_prefix,
                expected_suffix,
            } => write!(
                f,
                "internal: T{txn} read key {key} as {}, but its own earlier operations make it {} ... {}",
                ListDisplay(read),
                ListDisplay(expected_prefix),
                ListDisplay(expected_suffix)
            ),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.anomalies.is_empty() {
            return write!(
                f,
                "{} transactions, {} dependencies: no anomaly",
                self.txns, self.edges
            );
        }
        writeln!(
            f,
            "{} transactions, {} dependencies: {} {} ({})",
            self.txns,
            self.edges,
            self.anomalies.len(),
            if self.anomalies.len() == 1 {
                "anomaly"
            } else {
                "anomalies"
            },
            self.kinds()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )?;
        for a in &self.anomalies {
            writeln!(f, "  {a}")?;
        }
        writeln!(f, "where")?;
        for (t, text) in &self.named {
            writeln!(f, "  T{t} {text}")?;
        }
        Ok(())
    }
}
