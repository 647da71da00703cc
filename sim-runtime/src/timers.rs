//! The timer store: every pending timer, grouped by the instant it is due.
//!
//! Simulated programs set many timers for the same instant (whole milliseconds), so the
//! store is a map from instant to a bucket, and a bucket is a plain vector of entries in
//! registration order. Firing walks each bucket front to back, so memory is read in
//! order instead of through a linked list, and the order of wakes (deadline, then
//! registration) is the same as a heap of (deadline, sequence) would give.
//!
//! A registration is named by its instant and its index in that instant's bucket. Such a
//! name is never reused: time only moves forward, timers are only set in the future, and
//! a bucket is dropped only once it has fired or every entry in it was cancelled (so no
//! holder of one of its names is left). That is why entries need no generation counter.

use std::collections::BTreeMap;
use std::task::Waker;

use crate::node::NodeId;
use crate::time::Instant;
use crate::trace::TaskId;

/// A timer registration: its index in the bucket of its deadline (the holder keeps the
/// deadline).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey(u32);

/// `Entry::task` of a timer set outside any task.
const NO_TASK: u64 = u64::MAX;

/// One registration. 32 bytes: with thousands of timers due at one instant, firing is a
/// sequential read of these.
struct Entry {
    /// `None` once cancelled: the entry stays as a tombstone so that indexes hold.
    waker: Option<Waker>,
    task: u64,
    node: NodeId,
}

struct Bucket {
    entries: Vec<Entry>,
    /// Entries not cancelled; at zero the bucket goes, so the first bucket always has a
    /// live timer and finding the next deadline is a map lookup.
    live: u32,
}

/// A fired timer: whom to wake, and what the trace records.
pub(crate) struct Fired {
    pub waker: Waker,
    pub task: Option<TaskId>,
    pub node: NodeId,
}

#[derive(Default)]
pub(crate) struct Timers {
    buckets: BTreeMap<Instant, Bucket>,
    /// Emptied vectors of fired buckets, reused so that a steady state allocates nothing.
    spare: Vec<Vec<Entry>>,
}

impl Timers {
    pub(crate) fn add(
        &mut self,
        deadline: Instant,
        waker: Waker,
        task: Option<TaskId>,
        node: NodeId,
    ) -> TimerKey {
        let entry = Entry {
            waker: Some(waker),
            task: task.map_or(NO_TASK, |t| t.0),
            node,
        };
        let bucket = match self.buckets.entry(deadline) {
            std::collections::btree_map::Entry::Occupied(b) => b.into_mut(),
            std::collections::btree_map::Entry::Vacant(slot) => slot.insert(Bucket {
                entries: self.spare.pop().unwrap_or_default(),
                live: 0,
            }),
        };
        let key = TimerKey(bucket.entries.len() as u32);
        bucket.entries.push(entry);
        bucket.live += 1;
        key
    }

    /// Points a pending registration at a new waker (a future polled from another task).
    pub(crate) fn update_waker(&mut self, deadline: Instant, key: TimerKey, waker: &Waker) {
        let slot = self
            .buckets
            .get_mut(&deadline)
            .and_then(|b| b.entries.get_mut(key.0 as usize))
            .and_then(|e| e.waker.as_mut());
        if let Some(w) = slot {
            if !w.will_wake(waker) {
                *w = waker.clone();
            }
        }
    }

    /// Cancels a registration; returns its waker so that the caller drops it outside the
    /// world's borrow.
    pub(crate) fn cancel(&mut self, deadline: Instant, key: TimerKey) -> Option<Waker> {
        let bucket = self.buckets.get_mut(&deadline)?;
        let waker = bucket.entries.get_mut(key.0 as usize)?.waker.take()?;
        bucket.live -= 1;
        if bucket.live == 0 {
            if let Some(b) = self.buckets.remove(&deadline) {
                self.recycle(b.entries);
            }
        }
        Some(waker)
    }

    /// The earliest deadline with a live timer.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.buckets.first_key_value().map(|(at, _)| *at)
    }

    /// Removes every live timer due at or before `at` and hands them to `fired`, in
    /// deadline then registration order.
    pub(crate) fn fire_until(&mut self, at: Instant, mut fired: impl FnMut(Fired)) {
        while let Some(first) = self.buckets.first_entry() {
            if *first.key() > at {
                break;
            }
            let mut entries = first.remove().entries;
            for e in entries.drain(..) {
                if let Some(waker) = e.waker {
                    fired(Fired {
                        waker,
                        task: (e.task != NO_TASK).then_some(TaskId(e.task)),
                        node: e.node,
                    });
                }
            }
            self.recycle(entries);
        }
    }

    fn recycle(&mut self, entries: Vec<Entry>) {
        debug_assert!(entries.iter().all(|e| e.waker.is_none()));
        // A few spares cover the buckets alive at once in a steady state; huge vectors
        // from a one-off burst are not worth keeping.
        if self.spare.len() < 64 && entries.capacity() <= 1 << 16 {
            let mut entries = entries;
            entries.clear();
            self.spare.push(entries);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;

    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }

    fn waker() -> Waker {
        Waker::from(Arc::new(Noop))
    }

    fn fired_nodes(t: &mut Timers, at: u64) -> Vec<u32> {
        let mut out = Vec::new();
        t.fire_until(Instant::from_nanos(at), |f| out.push(f.node.0));
        out
    }

    #[test]
    fn fires_in_deadline_then_registration_order() {
        let mut t = Timers::default();
        for (at, node) in [(20, 1), (10, 2), (20, 3), (10, 4), (30, 5)] {
            t.add(Instant::from_nanos(at), waker(), None, NodeId(node));
        }
        assert_eq!(t.next(), Some(Instant::from_nanos(10)));
        assert_eq!(fired_nodes(&mut t, 20), vec![2, 4, 1, 3]);
        assert_eq!(t.next(), Some(Instant::from_nanos(30)));
    }

    #[test]
    fn a_cancelled_timer_never_fires_and_an_emptied_bucket_is_not_next() {
        let mut t = Timers::default();
        let at = Instant::from_nanos(10);
        let a = t.add(at, waker(), None, NodeId(1));
        let b = t.add(at, waker(), None, NodeId(2));
        t.add(Instant::from_nanos(50), waker(), None, NodeId(3));
        assert!(t.cancel(at, a).is_some());
        assert!(t.cancel(at, a).is_none(), "a second cancel finds nothing");
        assert_eq!(t.next(), Some(at));
        assert!(t.cancel(at, b).is_some());
        assert_eq!(t.next(), Some(Instant::from_nanos(50)));
        assert_eq!(fired_nodes(&mut t, 50), vec![3]);
        assert_eq!(t.next(), None);
    }
}
