//! What a list-append history is made of: transactions of appends to and reads of lists
//! stored under integer keys, each with the outcome its client saw.
//!
//! Every appended element is unique across the history, so that a read's list names the
//! transaction behind each of its elements: that is what lets the checker infer the
//! version order without seeing the database's internals.

use std::fmt;

/// A key (a row's primary key in the SQL workload).
pub type Key = u64;
/// An appended element, unique in the history.
pub type Element = u64;
/// A transaction's index in [`History::txns`].
pub type TxnId = usize;

/// One micro-operation of a transaction, in the order the client issued it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Appended `element` to the list at `key` (or attempted to, in a transaction that
    /// did not commit).
    Append { key: Key, element: Element },
    /// Read the list at `key`: `None` when the read did not return (the transaction
    /// failed there).
    Read {
        key: Key,
        list: Option<Vec<Element>>,
    },
}

/// How a transaction ended, as its client knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Committed,
    /// Rolled back, or failed with an error that means it cannot have committed.
    Aborted,
    /// The COMMIT's answer was lost (a connection failure): it may have committed.
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Txn {
    /// Which client (task) ran it: the witness names it.
    pub client: usize,
    pub ops: Vec<Op>,
    pub outcome: Outcome,
}

/// A whole history: transactions in the order they started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub txns: Vec<Txn>,
}

impl History {
    pub fn new() -> Self {
        History::default()
    }

    /// Appends a transaction and returns its id.
    pub fn push(&mut self, client: usize, ops: Vec<Op>, outcome: Outcome) -> TxnId {
        self.txns.push(Txn {
            client,
            ops,
            outcome,
        });
        self.txns.len() - 1
    }

    /// How many transactions ended each way: (committed, aborted, unknown).
    pub fn outcome_counts(&self) -> (usize, usize, usize) {
        let count = |o| self.txns.iter().filter(|t| t.outcome == o).count();
        (
            count(Outcome::Committed),
            count(Outcome::Aborted),
            count(Outcome::Unknown),
        )
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Append { key, element } => write!(f, "append {element} to {key}"),
            Op::Read { key, list: None } => write!(f, "read {key} (no answer)"),
            Op::Read {
                key,
                list: Some(list),
            } => write!(f, "read {key} = {}", ListDisplay(list)),
        }
    }
}

impl fmt::Display for Txn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcome = match self.outcome {
            Outcome::Committed => "committed",
            Outcome::Aborted => "aborted",
            Outcome::Unknown => "unknown",
        };
        write!(f, "client {} {outcome}: ", self.client)?;
        for (i, op) in self.ops.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{op}")?;
        }
        Ok(())
    }
}

impl fmt::Display for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (id, t) in self.txns.iter().enumerate() {
            writeln!(f, "T{id} {t}")?;
        }
        Ok(())
    }
}

/// A list printed as `[1 4 7]`.
pub(crate) struct ListDisplay<'a>(pub &'a [Element]);

impl fmt::Display for ListDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, " ")?;
            }
            write!(f, "{e}")?;
        }
        write!(f, "]")
    }
}
