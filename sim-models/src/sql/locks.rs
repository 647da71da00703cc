//! Row locks held until the end of their transaction, and deadlock detection on the
//! wait-for graph.
//!
//! As in PostgreSQL, a transaction that cannot get a row lock waits for the *transaction*
//! holding it to end and then tries again (re-checking the row). Waiters are woken in the
//! order they started waiting; a compatible request (FOR SHARE next to FOR SHARE) does not
//! queue behind a waiter, as in PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};

use super::mvcc::{RowId, Xid};
use super::stmt::LockMode;

/// A row in a table: (table number, row id).
pub type RowKey = (usize, RowId);

/// Whether two lock modes held by different transactions conflict (PostgreSQL's table of
/// row-level lock conflicts).
pub fn conflicts(a: LockMode, b: LockMode) -> bool {
    use LockMode::*;
    let (weak, strong) = if a <= b { (a, b) } else { (b, a) };
    match strong {
        Update => true,
        NoKeyUpdate => weak != KeyShare,
        Share | KeyShare => false,
    }
}

#[derive(Clone, Debug, Default)]
pub struct LockTable {
    held: BTreeMap<RowKey, Vec<(Xid, LockMode)>>,
}

/// The result of a lock request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acquire {
    /// Newly granted (the caller records it for release).
    Granted,
    /// Already held in this or a stronger mode (or upgraded in place).
    AlreadyHeld,
    /// Held by these other transactions in conflicting modes.
    Conflict(BTreeSet<Xid>),
}

impl LockTable {
    pub fn acquire(&mut self, key: RowKey, me: Xid, mode: LockMode) -> Acquire {
        let holders = self.held.entry(key).or_default();
        let blockers: BTreeSet<Xid> = holders
            .iter()
            .filter(|(x, m)| *x != me && conflicts(*m, mode))
            .map(|(x, _)| *x)
            .collect();
        if !blockers.is_empty() {
            return Acquire::Conflict(blockers);
        }
        match holders.iter_mut().find(|(x, _)| *x == me) {
            Some((_, held)) => {
                if mode > *held {
                    *held = mode;
                }
                Acquire::AlreadyHeld
            }
            None => {
                holders.push((me, mode));
                Acquire::Granted
            }
        }
    }

    pub fn release(&mut self, key: RowKey, me: Xid) {
        if let Some(holders) = self.held.get_mut(&key) {
            holders.retain(|(x, _)| *x != me);
            if holders.is_empty() {
                self.held.remove(&key);
            }
        }
    }

    pub fn holders(&self, key: RowKey) -> &[(Xid, LockMode)] {
        self.held.get(&key).map_or(&[], Vec::as_slice)
    }

    pub fn clear(&mut self) {
        self.held.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

/// Whether following wait-for edges from `start` leads back to `start`.
pub fn in_cycle(waits_for: &BTreeMap<Xid, BTreeSet<Xid>>, start: Xid) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<Xid> = waits_for
        .get(&start)
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default();
    while let Some(x) = stack.pop() {
        if x == start {
            return true;
        }
        if seen.insert(x) {
            if let Some(next) = waits_for.get(&x) {
                stack.extend(next.iter().copied());
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_locks_coexist_update_conflicts() {
        let mut t = LockTable::default();
        let k = (0, 1);
        assert_eq!(t.acquire(k, 1, LockMode::Share), Acquire::Granted);
        assert_eq!(t.acquire(k, 2, LockMode::Share), Acquire::Granted);
        assert_eq!(
            t.acquire(k, 3, LockMode::Update),
            Acquire::Conflict([1, 2].into())
        );
        // Upgrading while another shares the row must wait for it.
        assert_eq!(
            t.acquire(k, 1, LockMode::Update),
            Acquire::Conflict([2].into())
        );
        t.release(k, 2);
        assert_eq!(t.acquire(k, 1, LockMode::Update), Acquire::AlreadyHeld);
        assert_eq!(
            t.acquire(k, 3, LockMode::Share),
            Acquire::Conflict([1].into())
        );
        t.release(k, 1);
        assert!(t.holders(k).is_empty());
    }

    #[test]
    fn the_four_modes_conflict_as_in_postgres() {
        use LockMode::*;
        let modes = [KeyShare, Share, NoKeyUpdate, Update];
        // PostgreSQL's documentation, "Conflicting Row-Level Locks": row = requested.
        let table = [
            [false, false, false, true],
            [false, false, true, true],
            [false, true, true, true],
            [true, true, true, true],
        ];
        for (i, a) in modes.iter().enumerate() {
            for (j, b) in modes.iter().enumerate() {
                assert_eq!(conflicts(*a, *b), table[i][j], "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn cycles_are_found_only_through_the_start() {
        let mut g = BTreeMap::new();
        g.insert(1, BTreeSet::from([2]));
        g.insert(2, BTreeSet::from([3]));
        g.insert(3, BTreeSet::from([2]));
        assert!(!in_cycle(&g, 1), "1 waits on a cycle but is not in it");
        assert!(in_cycle(&g, 2));
        g.insert(3, BTreeSet::from([1]));
        assert!(in_cycle(&g, 1));
    }
}
