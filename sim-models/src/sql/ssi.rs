//! Serializable Snapshot Isolation: the rw-antidependency tracking PostgreSQL uses for
//! SERIALIZABLE (Cahill's algorithm with Ports and Grittner's refinements).
//!
//! A serializable transaction runs on one snapshot, as under REPEATABLE READ, and also
//! records what it read. An *rw-conflict* `R -> W` exists when `R` read something that a
//! concurrent `W` wrote (R did not see W's write). Every non-serializable history contains a
//! *dangerous structure* `T_in -> T_pivot -> T_out` of two such conflicts in which `T_out`
//! commits first; aborting one transaction of every dangerous structure (the pivot when it
//! has not committed, else `T_in`) prevents all anomalies, write skew included.
//!
//! Reads are recorded with PostgreSQL's granularity (its SIREAD locks), not as exact
//! predicates, because PostgreSQL's coarseness decides which transactions fail with 40001,
//! and a service's retry path must run in simulation whenever it runs in production:
//! - A read without a primary-key lookup is a sequential scan to PostgreSQL: it locks the
//!   whole relation, so any write of the table conflicts with it, whatever its WHERE, and
//!   the read itself conflicts with every concurrent version it passes over.
//! - A primary-key lookup is an index scan: PostgreSQL locks the heap tuples it fetched
//!   (any version of the key, whatever the rest of the WHERE) and the B-tree leaf page it
//!   visited. The model's tables are small enough to fit one leaf page, so any *index
//!   insertion* into the table (an inserted row, an update that changes an indexed
//!   column, a plain index's included) conflicts with every key lookup of it, while
//!   updates that keep every indexed column (PostgreSQL's HOT updates) and deletes of
//!   other keys do not.
//! - A SELECT `ORDER BY` the primary key (bigint columns, all ascending or all descending)
//!   with a LIMIT and no key lookup is PostgreSQL's index scan in key order that stops at
//!   the LIMIT: it locks the leaf page and the tuples of the index entries up to the last
//!   row the LIMIT took (those SKIP LOCKED passed over and those the rest of the WHERE
//!   rejected included), and meets only the concurrent versions there.
//! - A transaction's third tuple lock on a heap page becomes a lock on the page
//!   (`max_pred_locks_per_page` = 2). The model's tables are one heap page, and every
//!   tuple lock came with the index's page lock, so that is a relation lock here. (On a
//!   table of several heap pages PostgreSQL locks only the page: the model locks more.)
//!
//! These were checked on PostgreSQL 15's `pg_locks`.
//!
//! Every history this model commits is serializable (the granularity only adds aborts),
//! and any anomaly found under SERIALIZABLE here would be a bug in the model.
//!
//! Further differences from PostgreSQL:
//! - The read-only optimisations (safe snapshots, read-only `T_in` exemptions) are not
//!   implemented: they only avoid aborts, never allow an anomaly.
//! - A pivot that cannot be aborted at once (it is another session's transaction) is
//!   *doomed*, and fails with 40001 where PostgreSQL checks for that: at the first tuple
//!   a later scan of it meets (before the rest of the WHERE), at its next write, or at
//!   COMMIT. A statement that meets no tuple (`SELECT 1`, a read of an empty table, DDL)
//!   still succeeds, as in PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};

use super::mvcc::{RowId, Snapshot, Xid};
use super::value::Value;

/// One recorded read: a table and the SIREAD locks the statement took on it.
#[derive(Clone, Debug)]
pub struct ReadPredicate {
    pub table: usize,
    pub lock: ReadLock,
}

/// The SIREAD locks of one read, at PostgreSQL's granularity.
#[derive(Clone, Debug)]
pub enum ReadLock {
    /// A sequential scan: the whole relation.
    Relation,
    /// A scan of the primary key's index: its one leaf page (so every index insertion into
    /// the table conflicts) and the heap tuples it fetched, named by primary key (any
    /// version of those keys).
    Index { keys: Vec<Vec<Value>> },
}

impl ReadPredicate {
    pub fn relation(table: usize) -> Self {
        ReadPredicate {
            table,
            lock: ReadLock::Relation,
        }
    }

    /// A read through the primary key's index that fetched the tuples of `keys`.
    pub fn index(table: usize, keys: Vec<Vec<Value>>) -> Self {
        ReadPredicate {
            table,
            lock: ReadLock::Index { keys },
        }
    }

    /// Whether a tuple of the table falls under this read's SIREAD locks: every tuple for
    /// a relation-level read, the fetched keys' tuples for an index read, whatever the
    /// rest of the WHERE (PostgreSQL locks each tuple the index scan fetched).
    pub fn covers(&self, pk: &[usize], tuple: &[Value]) -> bool {
        match &self.lock {
            ReadLock::Relation => true,
            ReadLock::Index { keys } => keys.iter().any(|key| {
                pk.len() == key.len() && pk.iter().zip(key).all(|(&c, k)| &tuple[c] == k)
            }),
        }
    }

    /// Whether a write of the table conflicts with this read: it changes a covered tuple,
    /// or it inserts into the primary key's index (whose one leaf page an index read
    /// locked).
    pub fn covers_write(
        &self,
        pk: &[usize],
        old: Option<&[Value]>,
        new: Option<&[Value]>,
        index_insertion: bool,
    ) -> bool {
        (index_insertion && matches!(self.lock, ReadLock::Index { .. }))
            || old.is_some_and(|o| self.covers(pk, o))
            || new.is_some_and(|n| self.covers(pk, n))
    }
}

/// PostgreSQL's `max_pred_locks_per_page` (2): a transaction's third tuple lock on one
/// heap page becomes a lock on the page. The model's tables are one heap page, and every
/// tuple lock comes from an index read that also locked the index's leaf page, so the
/// promoted locks conflict with every write of the table: a relation lock.
const TUPLE_LOCKS_PER_PAGE: usize = 2;

#[derive(Clone, Debug)]
struct SsiTxn {
    snapshot: Snapshot,
    commit_seq: Option<u64>,
    reads: Vec<ReadPredicate>,
    /// The heap tuples (row, creating transaction) each table's reads locked, until they
    /// are promoted to a relation lock.
    tuples: BTreeMap<usize, BTreeSet<(RowId, Xid)>>,
    /// Transactions with an rw-conflict into this one (they read what it wrote).
    ins: BTreeSet<Xid>,
    /// Transactions this one has an rw-conflict out to (it read what they wrote).
    outs: BTreeSet<Xid>,
    doomed: bool,
    /// It wrote a tuple (PostgreSQL's `MyXactDidWrite`; a row lock is no write). One
    /// that commits without writing counts as read-only from then on.
    wrote: bool,
    /// It committed with an rw-conflict out to a transaction that had committed before
    /// it (PostgreSQL's `SXACT_FLAG_CONFLICT_OUT`): kept after that transaction is
    /// forgotten, so that a later reader of its writes still completes the structure.
    conflict_out_committed: bool,
}

/// The serializable transactions that may still take part in a dangerous structure.
#[derive(Clone, Debug, Default)]
pub struct Ssi {
    txns: BTreeMap<Xid, SsiTxn>,
}

/// The transaction that ran a check must abort with a serialization failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MustAbort;

/// What a conflict check decided about the transaction that ran it.
pub type Verdict = Result<(), MustAbort>;

impl Ssi {
    /// A serializable transaction took its snapshot.
    pub fn register(&mut self, xid: Xid, snapshot: Snapshot) {
        self.txns.insert(
            xid,
            SsiTxn {
                snapshot,
                commit_seq: None,
                reads: Vec::new(),
                tuples: BTreeMap::new(),
                ins: BTreeSet::new(),
                outs: BTreeSet::new(),
                doomed: false,
                wrote: false,
                conflict_out_committed: false,
            },
        );
    }

    pub fn is_tracked(&self, xid: Xid) -> bool {
        self.txns.contains_key(&xid)
    }

    pub fn is_doomed(&self, xid: Xid) -> bool {
        self.txns.get(&xid).is_some_and(|t| t.doomed)
    }

    /// Records a read of `xid` and the heap tuples it locked (visible versions, as (row,
    /// xmin), not those `xid` wrote itself: PostgreSQL does not lock its own tuples).
    pub fn record_read(&mut self, xid: Xid, read: ReadPredicate, tuples: &[(RowId, Xid)]) {
        let Some(t) = self.txns.get_mut(&xid) else {
            return;
        };
        let table = read.table;
        let relation = matches!(read.lock, ReadLock::Relation);
        t.reads.push(read);
        let promoted = t
            .tuples
            .get(&table)
            .is_some_and(|s| s.len() > TUPLE_LOCKS_PER_PAGE);
        if relation || promoted {
            return;
        }
        let locked = t.tuples.entry(table).or_default();
        locked.extend(tuples.iter().filter(|(_, xmin)| *xmin != xid));
        if locked.len() > TUPLE_LOCKS_PER_PAGE {
            t.reads.push(ReadPredicate::relation(table));
        }
    }

    /// Whether `xid` has read something covering `tuple` of `table`.
    pub fn has_read(&self, xid: Xid, table: usize, pk: &[usize], tuple: &[Value]) -> bool {
        self.txns.get(&xid).is_some_and(|t| {
            t.reads
                .iter()
                .any(|r| r.table == table && r.covers(pk, tuple))
        })
    }

    /// `a` committed before `b` took its snapshot.
    fn committed_before_snapshot(&self, a: Xid, b: Xid) -> bool {
        match (self.txns.get(&a), self.txns.get(&b)) {
            (Some(ta), Some(tb)) => ta.commit_seq.is_some() && tb.snapshot.sees(b, a),
            _ => true,
        }
    }

    fn concurrent(&self, a: Xid, b: Xid) -> bool {
        !self.committed_before_snapshot(a, b) && !self.committed_before_snapshot(b, a)
    }

    /// `a` committed, and before `b` (which may not have committed yet).
    fn committed_first(&self, a: Xid, b: Xid) -> bool {
        let seq = |x: Xid| self.txns.get(&x).and_then(|t| t.commit_seq);
        match (seq(a), seq(b)) {
            (Some(sa), Some(sb)) => sa < sb,
            (Some(_), None) => true,
            _ => false,
        }
    }

    /// Committed without writing: PostgreSQL flags such a transaction read-only at its
    /// commit ("implicit read-only transaction"), whether or not it was declared so.
    fn committed_read_only(&self, x: Xid) -> bool {
        self.txns
            .get(&x)
            .is_some_and(|t| t.commit_seq.is_some() && !t.wrote)
    }

    /// Checks `t_in -> pivot -> t_out`; returns the transaction to abort if it is
    /// dangerous.
    fn dangerous(&self, t_in: Xid, pivot: Xid, t_out: Xid) -> Option<Xid> {
        let first = self.committed_first(t_out, pivot)
            && (t_in == t_out || self.committed_first(t_out, t_in));
        if !first {
            return None;
        }
        // A read-only T_in that took its snapshot before T_out committed can be ordered
        // first, before T_out: no anomaly (Ports and Grittner's read-only rule, which
        // PostgreSQL's OnConflict_CheckForSerializationFailure applies to every committed
        // transaction that wrote nothing, row locks notwithstanding).
        if t_in != t_out
            && self.committed_read_only(t_in)
            && !self.committed_before_snapshot(t_out, t_in)
        {
            return None;
        }
        let uncommitted = |x: Xid| self.txns.get(&x).is_some_and(|t| t.commit_seq.is_none());
        if uncommitted(pivot) {
            Some(pivot)
        } else if uncommitted(t_in) {
            Some(t_in)
        } else {
            None
        }
    }

    /// Dooms `victim`; the verdict is an error if the victim is `actor` itself.
    fn doom(&mut self, victim: Xid, actor: Xid) -> Verdict {
        if let Some(t) = self.txns.get_mut(&victim) {
            t.doomed = true;
        }
        if victim == actor {
            Err(MustAbort)
        } else {
            Ok(())
        }
    }

    /// Records `reader -> writer` (if both are serializable and concurrent) and resolves
    /// any dangerous structure it completes. `actor` is the transaction whose statement
    /// found the conflict.
    pub fn add_conflict(&mut self, reader: Xid, writer: Xid, actor: Xid) -> Verdict {
        if reader == writer
            || !self.txns.contains_key(&reader)
            || !self.txns.contains_key(&writer)
            || !self.concurrent(reader, writer)
        {
            return Ok(());
        }
        let new = self
            .txns
            .get_mut(&reader)
            .is_some_and(|t| t.outs.insert(writer));
        if let Some(t) = self.txns.get_mut(&writer) {
            t.ins.insert(reader);
        }
        if !new {
            return Ok(());
        }
        let mut victims = Vec::new();
        // reader -> writer -> (a T_out committed before the writer, maybe forgotten):
        // PostgreSQL fails the reader of a committed writer flagged so.
        let w = &self.txns[&writer];
        if w.commit_seq.is_some() && w.conflict_out_committed {
            victims.push(reader);
        }
        // reader -> writer -> t_out
        for &t_out in &self.txns[&writer].outs {
            victims.extend(self.dangerous(reader, writer, t_out));
        }
        // t_in -> reader -> writer
        for &t_in in &self.txns[&reader].ins {
            victims.extend(self.dangerous(t_in, reader, writer));
        }
        self.doom_all(victims, actor)
    }

    fn doom_all(&mut self, victims: Vec<Xid>, actor: Xid) -> Verdict {
        let mut verdict = Ok(());
        for v in victims {
            if self.doom(v, actor).is_err() {
                verdict = Err(MustAbort);
            }
        }
        verdict
    }

    /// Before commit: a doomed transaction must abort instead.
    pub fn pre_commit(&self, xid: Xid) -> Verdict {
        if self.is_doomed(xid) {
            Err(MustAbort)
        } else {
            Ok(())
        }
    }

    /// `xid` committed as the `seq`-th commit: it may now be the `T_out` that commits
    /// first in a structure whose other members are still running.
    pub fn on_commit(&mut self, xid: Xid, seq: u64) {
        let Some(t) = self.txns.get_mut(&xid) else {
            return;
        };
        t.commit_seq = Some(seq);
        let out_committed = self.txns[&xid]
            .outs
            .iter()
            .any(|o| self.txns.get(o).is_some_and(|o| o.commit_seq.is_some()));
        if let Some(t) = self.txns.get_mut(&xid) {
            t.conflict_out_committed = out_committed;
        }
        let mut victims = Vec::new();
        for &pivot in &self.txns[&xid].ins {
            if let Some(p) = self.txns.get(&pivot) {
                for &t_in in &p.ins {
                    victims.extend(self.dangerous(t_in, pivot, xid));
                }
            }
        }
        // The committing transaction cannot be a victim (it has committed), so the
        // verdict is always Ok.
        let _ = self.doom_all(victims, xid);
    }

    pub fn on_abort(&mut self, xid: Xid) {
        if let Some(t) = self.txns.remove(&xid) {
            for x in t.ins.iter().chain(&t.outs) {
                if let Some(o) = self.txns.get_mut(x) {
                    o.ins.remove(&xid);
                    o.outs.remove(&xid);
                }
            }
        }
    }

    /// Forgets committed transactions that no running serializable transaction overlaps:
    /// they can take part in no new conflict, hence in no new dangerous structure.
    pub fn cleanup(&mut self) {
        // Most transactions are not serializable: nothing is tracked, nothing to scan.
        if self.txns.is_empty() {
            return;
        }
        let running: Vec<Xid> = self
            .txns
            .iter()
            .filter(|(_, t)| t.commit_seq.is_none())
            .map(|(x, _)| *x)
            .collect();
        let finished: Vec<Xid> = self
            .txns
            .iter()
            .filter(|(x, t)| {
                t.commit_seq.is_some()
                    && running
                        .iter()
                        .all(|r| self.committed_before_snapshot(**x, *r))
            })
            .map(|(x, _)| *x)
            .collect();
        for x in finished {
            self.on_abort(x);
        }
    }

    /// Conflicts a write by `writer` of `old` -> `new` in `table` creates with recorded
    /// reads of other serializable transactions; `index_insertion` when the write adds an
    /// entry to the primary key's index (see the module's docs).
    pub fn write_conflicts(
        &mut self,
        writer: Xid,
        table: usize,
        pk: &[usize],
        write: (Option<&[Value]>, Option<&[Value]>),
        index_insertion: bool,
    ) -> Verdict {
        let Some(w) = self.txns.get_mut(&writer) else {
            return Ok(());
        };
        w.wrote = true;
        let (old, new) = write;
        let readers: Vec<Xid> = self
            .txns
            .iter()
            .filter(|(x, t)| {
                **x != writer
                    && t.reads
                        .iter()
                        .any(|r| r.table == table && r.covers_write(pk, old, new, index_insertion))
            })
            .map(|(x, _)| *x)
            .collect();
        let mut verdict = Ok(());
        for r in readers {
            if self.add_conflict(r, writer, writer).is_err() {
                verdict = Err(MustAbort);
            }
        }
        verdict
    }

    pub fn clear(&mut self) {
        self.txns.clear();
    }

    pub fn len(&self) -> usize {
        self.txns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    fn snap(xmax: Xid, active: &[Xid]) -> Snapshot {
        Snapshot {
            xmax,
            active: Rc::new(active.iter().copied().collect()),
        }
    }

    #[test]
    fn write_skew_dooms_the_second_committer() {
        let mut ssi = Ssi::default();
        ssi.register(1, snap(3, &[1, 2]));
        ssi.register(2, snap(3, &[1, 2]));
        // Each read what the other wrote.
        assert!(ssi.add_conflict(2, 1, 1).is_ok());
        assert!(ssi.add_conflict(1, 2, 2).is_ok());
        assert!(ssi.pre_commit(1).is_ok());
        ssi.on_commit(1, 1);
        assert!(ssi.pre_commit(2).is_err(), "the pivot must not commit");
    }

    #[test]
    fn one_conflict_alone_is_harmless() {
        let mut ssi = Ssi::default();
        ssi.register(1, snap(3, &[1, 2]));
        ssi.register(2, snap(3, &[1, 2]));
        assert!(ssi.add_conflict(1, 2, 1).is_ok());
        ssi.on_commit(2, 1);
        assert!(ssi.pre_commit(1).is_ok());
    }

    #[test]
    fn non_concurrent_transactions_do_not_conflict() {
        let mut ssi = Ssi::default();
        ssi.register(1, snap(2, &[1]));
        ssi.on_commit(1, 1);
        // 2's snapshot was taken after 1 committed.
        ssi.register(2, snap(3, &[2]));
        assert!(ssi.add_conflict(2, 1, 2).is_ok());
        assert!(ssi.add_conflict(1, 2, 2).is_ok());
        assert!(ssi.pre_commit(2).is_ok());
        ssi.cleanup();
        assert_eq!(ssi.len(), 1, "1 overlaps no running transaction any more");
    }

    /// Case 1429 of the long conformance run: T_in locks a row FOR UPDATE (no write) and
    /// commits after T_out; PostgreSQL counts it read-only and lets the pivot's write of
    /// that row commit, since T_in's snapshot predates T_out's commit.
    #[test]
    fn a_committed_transaction_that_wrote_nothing_is_read_only() {
        let (t_out, pivot, t_in) = (1, 2, 3);
        for t_in_writes in [false, true] {
            let mut ssi = Ssi::default();
            ssi.register(t_out, snap(4, &[1, 2, 3]));
            ssi.register(pivot, snap(4, &[1, 2, 3]));
            ssi.register(t_in, snap(4, &[1, 2, 3]));
            assert!(ssi
                .write_conflicts(t_out, 0, &[0], (None, None), false)
                .is_ok());
            if t_in_writes {
                assert!(ssi
                    .write_conflicts(t_in, 1, &[0], (None, None), false)
                    .is_ok());
            }
            assert!(ssi.add_conflict(pivot, t_out, pivot).is_ok());
            ssi.on_commit(t_out, 1);
            ssi.on_commit(t_in, 2);
            let verdict = ssi.add_conflict(t_in, pivot, pivot);
            assert_eq!(verdict.is_err(), t_in_writes, "t_in wrote: {t_in_writes}");
        }
    }

    /// Case 5135 of the long conformance run: the pivot committed after its T_out, and
    /// T_out was forgotten (no running transaction overlaps it) before T_in read the
    /// pivot's write; PostgreSQL still fails T_in.
    #[test]
    fn a_forgotten_t_out_still_dooms_the_reader_of_its_pivot() {
        let (t_out, pivot, t_in) = (1, 2, 3);
        let mut ssi = Ssi::default();
        ssi.register(t_out, snap(4, &[1, 2]));
        ssi.register(pivot, snap(4, &[1, 2]));
        assert!(ssi.add_conflict(pivot, t_out, t_out).is_ok());
        ssi.on_commit(t_out, 1);
        // T_in's snapshot comes after T_out's commit, while the pivot runs.
        ssi.register(t_in, snap(4, &[2]));
        ssi.on_commit(pivot, 2);
        ssi.cleanup();
        assert!(
            !ssi.is_tracked(t_out),
            "T_out overlaps no running transaction"
        );
        assert!(ssi.add_conflict(t_in, pivot, t_in).is_err());
    }
}
