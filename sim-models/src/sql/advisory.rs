//! Advisory locks (`pg_advisory_lock` and family): locks on application-chosen keys,
//! held by a session until it unlocks them or ends (session level), or until the
//! transaction ends (`_xact_`). Shared ones coexist with each other; an exclusive one
//! conflicts with every lock of another session. A session's own locks never conflict
//! with each other, and each acquisition counts (two locks need two unlocks), as in
//! PostgreSQL.
//!
//! A request that must wait blocks as a row lock does: the engine parks the statement on
//! the holders' [`holder_xid`]s, wakes it when they release, and the wait takes part in
//! `lock_timeout`, `statement_timeout` and deadlock detection.

use std::collections::{BTreeMap, BTreeSet};

use super::mvcc::Xid;

/// A lock's key: the bigint form and the (integer, integer) form are separate spaces
/// (PostgreSQL's `objsubid` 1 and 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AdvisoryKey {
    Big(i64),
    Pair(i32, i32),
}

/// The wait-for graph names a session that holds advisory locks by this stand-in
/// transaction id (far above any real one), so that a session-level lock, which outlives
/// transactions, can be waited for; the engine adds an edge from it to the session's
/// running transaction.
pub fn holder_xid(session: u64) -> Xid {
    Xid::MAX - 1 - session
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Hold {
    session: u64,
    /// The transaction of an `_xact_` lock; `None` for a session-level one.
    xact: Option<Xid>,
    shared: bool,
    count: u32,
}

#[derive(Clone, Debug, Default)]
pub struct AdvisoryLocks {
    held: BTreeMap<AdvisoryKey, Vec<Hold>>,
}

impl AdvisoryLocks {
    /// Takes the lock for `session` (for transaction `xact`, or the session when
    /// `None`), or returns the other sessions holding it in a conflicting mode.
    pub fn acquire(
        &mut self,
        key: AdvisoryKey,
        session: u64,
        xact: Option<Xid>,
        shared: bool,
    ) -> Result<(), BTreeSet<u64>> {
        let holds = self.held.entry(key).or_default();
        let blockers: BTreeSet<u64> = holds
            .iter()
            .filter(|h| h.session != session && !(shared && h.shared))
            .map(|h| h.session)
            .collect();
        if !blockers.is_empty() {
            if holds.is_empty() {
                self.held.remove(&key);
            }
            return Err(blockers);
        }
        match holds
            .iter_mut()
            .find(|h| h.session == session && h.xact == xact && h.shared == shared)
        {
            Some(h) => h.count += 1,
            None => holds.push(Hold {
                session,
                xact,
                shared,
                count: 1,
            }),
        }
        Ok(())
    }

    /// `pg_advisory_unlock[_shared]`: one session-level acquisition goes; false (and
    /// PostgreSQL's warning) if the session held none in that mode.
    pub fn unlock(&mut self, key: AdvisoryKey, session: u64, shared: bool) -> bool {
        let Some(holds) = self.held.get_mut(&key) else {
            return false;
        };
        let Some(i) = holds
            .iter()
            .position(|h| h.session == session && h.xact.is_none() && h.shared == shared)
        else {
            return false;
        };
        holds[i].count -= 1;
        if holds[i].count == 0 {
            holds.remove(i);
        }
        if holds.is_empty() {
            self.held.remove(&key);
        }
        true
    }

    /// Releases the holds `gone` picks; the sessions that held them.
    fn release_where(&mut self, mut gone: impl FnMut(&Hold) -> bool) -> BTreeSet<u64> {
        let mut sessions = BTreeSet::new();
        self.held.retain(|_, holds| {
            holds.retain(|h| {
                let g = gone(h);
                if g {
                    sessions.insert(h.session);
                }
                !g
            });
            !holds.is_empty()
        });
        sessions
    }

    /// `pg_advisory_unlock_all`: the session-level locks of `session`.
    pub fn unlock_all(&mut self, session: u64) -> bool {
        !self
            .release_where(|h| h.session == session && h.xact.is_none())
            .is_empty()
    }

    /// The end of transaction `xact`: its `_xact_` locks; the sessions that held them.
    pub fn end_transaction(&mut self, xact: Xid) -> BTreeSet<u64> {
        if self.held.is_empty() {
            return BTreeSet::new();
        }
        self.release_where(|h| h.xact == Some(xact))
    }

    /// The session ended (or its connection died): every lock it held.
    pub fn end_session(&mut self, session: u64) -> BTreeSet<u64> {
        self.release_where(|h| h.session == session)
    }

    pub fn clear(&mut self) {
        self.held.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_locks_coexist_exclusive_ones_conflict() {
        let mut l = AdvisoryLocks::default();
        let k = AdvisoryKey::Big(7);
        assert!(l.acquire(k, 1, None, true).is_ok());
        assert!(l.acquire(k, 2, None, true).is_ok());
        assert_eq!(l.acquire(k, 3, None, false), Err(BTreeSet::from([1, 2])));
        assert!(l.acquire(k, 1, Some(5), false).is_err(), "2 shares it");
        assert!(l.unlock(k, 2, true));
        assert!(
            l.acquire(k, 1, Some(5), false).is_ok(),
            "its own shared lock is no conflict"
        );
        assert!(
            !l.unlock(k, 1, false),
            "the exclusive one is transaction-level"
        );
        assert_eq!(l.end_transaction(5), BTreeSet::from([1]));
        assert!(
            l.acquire(AdvisoryKey::Pair(0, 7), 3, None, false).is_ok(),
            "another key space"
        );
    }

    #[test]
    fn each_acquisition_needs_its_unlock_and_sessions_release_all() {
        let mut l = AdvisoryLocks::default();
        let k = AdvisoryKey::Big(1);
        l.acquire(k, 1, None, false).unwrap();
        l.acquire(k, 1, None, false).unwrap();
        assert!(l.unlock(k, 1, false));
        assert!(l.acquire(k, 2, None, false).is_err());
        assert!(l.unlock(k, 1, false));
        assert!(!l.unlock(k, 1, false));
        l.acquire(k, 2, None, false).unwrap();
        l.acquire(AdvisoryKey::Big(2), 2, Some(9), false).unwrap();
        assert_eq!(l.end_session(2), BTreeSet::from([2]));
        assert!(l.is_empty());
    }
}
