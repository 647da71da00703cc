//! The timer store: every pending timer, grouped by the instant it is due.
//!
//! Simulated programs set many timers for the same instant (whole milliseconds), so the
//! store keeps buckets per instant, and a bucket is a plain vector of entries in
//! registration order. Firing walks each bucket front to back, so memory is read in
//! order instead of through a linked list, and the order of wakes (deadline, then
//! registration) is the same as a heap of (deadline, sequence) would give.
//!
//! Buckets live in slots of a vector; a binary heap of (instant, bucket sequence, slot)
//! orders them. Adding a timer asks a small cache of recently used deadlines (a program
//! that sets many timers sets them at a handful of instants); when the cache has no
//! bucket for the instant, a new bucket starts, even if an older one for the same
//! instant exists. That keeps the order: adds go only to the newest bucket of an
//! instant, so every entry of an older bucket was registered before any of a newer
//! one, and the heap fires buckets of one instant oldest first. Most deadlines are
//! unique (a message's arrival, a call's timeout), and a heap push and pop cost far
//! less than a search tree's insert and remove. A bucket whose entries were all
//! cancelled leaves its heap item behind, recognised as stale by its sequence and
//! dropped when it reaches the top. A slot keeps its vector when its bucket goes, so a
//! steady state allocates nothing.
//!
//! A registration is named by its slot and its index in that slot's bucket. Such a name
//! is never reused while someone holds it: time only moves forward, timers are only set
//! in the future, and a bucket's slot is freed only once the bucket has fired or every
//! entry in it was cancelled (so no holder of one of its names is left). That is why
//! entries need no generation counter.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::num::NonZeroU64;
use std::task::Waker;

use crate::node::NodeId;
use crate::time::Instant;
use crate::trace::TaskId;

/// A timer registration: its slot and its index in the slot's bucket, packed in one
/// non-zero word so that an `Option<TimerKey>` (what every `Sleep` holds) stays 8 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey(NonZeroU64);

impl TimerKey {
    fn new(slot: u32, index: u32) -> Self {
        let packed = (u64::from(slot) + 1) << 32 | u64::from(index);
        TimerKey(NonZeroU64::new(packed).expect("slot + 1 is never zero"))
    }

    fn slot(self) -> usize {
        (self.0.get() >> 32) as usize - 1
    }

    fn index(self) -> usize {
        self.0.get() as u32 as usize
    }
}

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

#[derive(Default)]
struct Bucket {
    /// The instant this bucket is due (meaningless while the slot is free).
    at: Instant,
    /// When the bucket was started, among all buckets: orders buckets of one instant,
    /// and tells this bucket's heap item from a stale one of the slot's earlier bucket.
    seq: u64,
    entries: Vec<Entry>,
    /// Entries not cancelled; zero exactly when the slot is free (a bucket goes when
    /// its last entry is cancelled).
    live: u32,
}

/// A bucket's item in the heap: when it is due, its sequence, and its slot.
#[derive(Clone, Copy, Debug)]
struct Due {
    at: Instant,
    seq: u64,
    slot: u32,
}

impl Due {
    /// Deadline, then sequence, as one number. Sequences are unique, so the slot never
    /// decides; and one wide comparison has no branch, where a field-by-field one has
    /// two, which a heap's sifts mispredict about half the time.
    #[inline(always)]
    fn key(&self) -> u128 {
        u128::from(self.at.as_nanos()) << 64 | u128::from(self.seq)
    }
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    #[inline(always)]
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// A fired timer: whom to wake, and what the trace records.
pub(crate) struct Fired {
    pub waker: Waker,
    pub task: Option<TaskId>,
    pub node: NodeId,
    /// How many timers of the same instant fire right after this one.
    pub later: usize,
}

/// Size of the cache of recent deadlines; a power of two.
const RECENT: usize = 16;

#[derive(Default)]
pub(crate) struct Timers {
    /// (deadline, bucket sequence, slot) of every bucket with a live timer, earliest
    /// first; plus stale items of buckets whose timers were all cancelled.
    order: BinaryHeap<Reverse<Due>>,
    next_seq: u64,
    slots: Vec<Bucket>,
    /// Slots whose bucket is gone, reused before the vector grows.
    free: Vec<u32>,
    /// Slot of a recently used deadline, indexed by its millisecond (a guess: checked
    /// against the slot's bucket before use).
    recent: [u32; RECENT],
}

impl Timers {
    fn recent_index(deadline: Instant) -> usize {
        (deadline.as_nanos() / 1_000_000) as usize % RECENT
    }

    /// The slot of the newest live bucket due at `deadline`, if the cache knows it.
    fn find(&self, deadline: Instant) -> Option<u32> {
        let guess = self.recent[Self::recent_index(deadline)];
        match self.slots.get(guess as usize) {
            Some(b) if b.live > 0 && b.at == deadline => Some(guess),
            _ => None,
        }
    }

    #[inline]
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
        let slot = match self.find(deadline) {
            Some(slot) => slot,
            None => self.new_bucket(deadline),
        };
        self.recent[Self::recent_index(deadline)] = slot;
        let bucket = &mut self.slots[slot as usize];
        let key = TimerKey::new(slot, bucket.entries.len() as u32);
        bucket.entries.push(entry);
        bucket.live += 1;
        key
    }

    fn new_bucket(&mut self, deadline: Instant) -> u32 {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(Bucket::default());
            (self.slots.len() - 1) as u32
        });
        let seq = self.next_seq;
        self.next_seq += 1;
        let bucket = &mut self.slots[slot as usize];
        bucket.at = deadline;
        bucket.seq = seq;
        self.order.push(Reverse(Due {
            at: deadline,
            seq,
            slot,
        }));
        slot
    }

    /// Whether a heap item names its slot's current, live bucket.
    fn is_current(&self, seq: u64, slot: u32) -> bool {
        let b = &self.slots[slot as usize];
        b.live > 0 && b.seq == seq
    }

    /// Drops stale items off the top of the heap, so that the top is a live bucket.
    fn drop_stale(&mut self) {
        while let Some(&Reverse(Due { seq, slot, .. })) = self.order.peek() {
            if self.is_current(seq, slot) {
                break;
            }
            self.order.pop();
        }
    }

    /// The live entry a registration names, if it is still pending.
    fn entry_mut(&mut self, deadline: Instant, key: TimerKey) -> Option<&mut Entry> {
        let bucket = self
            .slots
            .get_mut(key.slot())
            .filter(|b| b.live > 0 && b.at == deadline)?;
        bucket.entries.get_mut(key.index())
    }

    /// Points a pending registration at a new waker (a future polled from another task).
    pub(crate) fn update_waker(&mut self, deadline: Instant, key: TimerKey, waker: &Waker) {
        let slot = self.entry_mut(deadline, key).and_then(|e| e.waker.as_mut());
        if let Some(w) = slot {
            if !w.will_wake(waker) {
                *w = waker.clone();
            }
        }
    }

    /// Cancels a registration; returns its waker so that the caller drops it outside the
    /// world's borrow.
    pub(crate) fn cancel(&mut self, deadline: Instant, key: TimerKey) -> Option<Waker> {
        let waker = self.entry_mut(deadline, key)?.waker.take()?;
        let bucket = &mut self.slots[key.slot()];
        bucket.live -= 1;
        if bucket.live == 0 {
            // Its heap item stays until it reaches the top (see `drop_stale`).
            self.release(key.slot() as u32);
        }
        Some(waker)
    }

    /// The earliest deadline with a live timer.
    pub(crate) fn next(&mut self) -> Option<Instant> {
        self.drop_stale();
        self.order.peek().map(|Reverse(d)| d.at)
    }

    /// Removes every live timer due at or before `at` and hands them to `fired`, in
    /// deadline then registration order.
    pub(crate) fn fire_until(&mut self, at: Instant, mut fired: impl FnMut(Fired)) {
        while let Some(&Reverse(Due { at: due, seq, slot })) = self.order.peek() {
            if due > at {
                break;
            }
            self.order.pop();
            if !self.is_current(seq, slot) {
                continue;
            }
            let bucket = &mut self.slots[slot as usize];
            let mut later = std::mem::take(&mut bucket.live) as usize;
            for e in bucket.entries.drain(..) {
                if let Some(waker) = e.waker {
                    later -= 1;
                    fired(Fired {
                        waker,
                        task: (e.task != NO_TASK).then_some(TaskId(e.task)),
                        node: e.node,
                        later,
                    });
                }
            }
            self.release(slot);
        }
    }

    /// Frees a slot whose bucket went (fired, or every entry cancelled).
    fn release(&mut self, slot: u32) {
        let bucket = &mut self.slots[slot as usize];
        debug_assert!(bucket.entries.iter().all(|e| e.waker.is_none()));
        bucket.entries.clear();
        // A huge vector from a one-off burst is not worth keeping.
        if bucket.entries.capacity() > 1 << 16 {
            bucket.entries = Vec::new();
        }
        self.free.push(slot);
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

    #[test]
    fn deadlines_sharing_a_cache_line_keep_their_own_buckets() {
        // 1 ms and 17 ms share a cache index; 1 ms + 1 ns shares its millisecond.
        let mut t = Timers::default();
        let ms = 1_000_000;
        for (at, node) in [(ms, 1), (17 * ms, 2), (ms + 1, 3), (ms, 4), (17 * ms, 5)] {
            t.add(Instant::from_nanos(at), waker(), None, NodeId(node));
        }
        assert_eq!(fired_nodes(&mut t, ms), vec![1, 4]);
        assert_eq!(fired_nodes(&mut t, ms + 1), vec![3]);
        assert_eq!(fired_nodes(&mut t, 17 * ms), vec![2, 5]);
        assert_eq!(t.next(), None);
    }

    #[test]
    fn a_cancelled_buckets_stale_heap_item_neither_fires_nor_hides_the_slots_new_bucket() {
        let mut t = Timers::default();
        let (early, mid, late) = (
            Instant::from_nanos(10),
            Instant::from_nanos(20),
            Instant::from_nanos(30),
        );
        let gone = t.add(early, waker(), None, NodeId(1));
        t.add(late, waker(), None, NodeId(3));
        assert!(t.cancel(early, gone).is_some());
        // The freed slot now holds `mid`; `early`'s heap item is stale.
        t.add(mid, waker(), None, NodeId(2));
        assert_eq!(t.next(), Some(mid));
        assert_eq!(fired_nodes(&mut t, 30), vec![2, 3]);
        assert_eq!(t.next(), None);
    }

    #[test]
    fn a_freed_slot_reused_for_another_deadline_does_not_answer_to_old_names() {
        let mut t = Timers::default();
        let (early, late) = (Instant::from_nanos(10), Instant::from_nanos(20));
        let old = t.add(early, waker(), None, NodeId(1));
        t.fire_until(early, |_| {});
        // The slot is free again and now holds `late`'s bucket.
        let new = t.add(late, waker(), None, NodeId(2));
        assert_eq!(old, new, "same slot, same index");
        assert!(t.cancel(early, old).is_none(), "the old name finds nothing");
        assert_eq!(t.next(), Some(late));
        assert!(t.cancel(late, new).is_some());
        assert_eq!(t.next(), None);
    }
}
