//! One partition replica's log: an append-only sequence of entries with dense offsets,
//! the high watermark, the leader-epoch cache and the idempotent producers' sequence
//! state. Pure data; the replication rules that move it live in `state`.
//!
//! This is what survives a broker crash (Kafka's log lives on disk), so it holds nothing
//! volatile: roles and follower progress are in `state`.

use std::collections::{BTreeMap, VecDeque};

use sim_runtime::time::Instant;

use super::types::{RecordId, TopicPartition};

/// How many recent batches per producer a partition remembers for de-duplication; Kafka
/// keeps five, which is also why it allows at most five requests in flight.
const PRODUCER_WINDOW: usize = 5;

/// An idempotent producer's stamp on a record: its id and a per-partition sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProducerStamp {
    pub producer_id: u64,
    pub seq: u32,
}

/// A committed consumer-group offset, stored as an entry of `__consumer_offsets`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub group: String,
    pub tp: TopicPartition,
    pub offset: u64,
}

/// What an entry carries: a user record, or (in the internal offsets topic) a commit.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Payload<V> {
    Record {
        id: RecordId,
        key: Option<String>,
        value: V,
    },
    Offset(OffsetEntry),
}

/// One log entry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry<V> {
    /// The leader epoch in which it was appended: how followers find where their log
    /// diverged from a new leader's.
    pub epoch: u32,
    pub stamp: Option<ProducerStamp>,
    pub timestamp: Instant,
    pub payload: Payload<V>,
}

/// The outcome of checking an idempotent producer's sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SeqCheck {
    /// The next expected number (or a producer this partition has not seen): append.
    Fresh,
    /// Already appended at `offset`: answer with that offset, append nothing.
    Duplicate { offset: u64 },
    /// A gap or a number older than the window: the producer must reset.
    OutOfOrder,
}

#[derive(Clone, Debug, Default)]
struct ProducerHistory {
    last_seq: u32,
    recent: VecDeque<(u32, u64)>,
}

/// A partition replica's log.
#[derive(Clone, Debug)]
pub(crate) struct PartitionLog<V> {
    entries: Vec<Entry<V>>,
    high_watermark: u64,
    /// `(epoch, start offset)`, increasing in both.
    epochs: Vec<(u32, u64)>,
    producers: BTreeMap<u64, ProducerHistory>,
}

impl<V> Default for PartitionLog<V> {
    fn default() -> Self {
        PartitionLog {
            entries: Vec::new(),
            high_watermark: 0,
            epochs: Vec::new(),
            producers: BTreeMap::new(),
        }
    }
}

impl<V: Clone> PartitionLog<V> {
    /// The log end offset: the offset the next entry gets.
    pub fn leo(&self) -> u64 {
        self.entries.len() as u64
    }

    /// The high watermark: every offset below it is on all in-sync replicas, and only
    /// those are visible to consumers.
    pub fn high_watermark(&self) -> u64 {
        self.high_watermark
    }

    /// Moves the high watermark, never past the log end.
    pub fn set_high_watermark(&mut self, hw: u64) {
        self.high_watermark = hw.min(self.leo());
    }

    /// Up to `max` entries from `offset` (empty past the end).
    pub fn entries_from(&self, offset: u64, max: usize) -> &[Entry<V>] {
        let start = (offset.min(self.leo())) as usize;
        let end = start.saturating_add(max).min(self.entries.len());
        &self.entries[start..end]
    }

    /// Up to `max` entries from `offset` below `end`.
    pub fn entries_between(&self, offset: u64, end: u64, max: usize) -> &[Entry<V>] {
        let end = end.min(self.leo()) as usize;
        let start = (offset as usize).min(end);
        &self.entries[start..end.min(start.saturating_add(max))]
    }

    /// Appends `entry` and returns its offset.
    pub fn append(&mut self, entry: Entry<V>) -> u64 {
        let offset = self.leo();
        self.note_epoch(entry.epoch, offset);
        if let Some(stamp) = entry.stamp {
            let h = self.producers.entry(stamp.producer_id).or_default();
            h.last_seq = stamp.seq;
            h.recent.push_back((stamp.seq, offset));
            if h.recent.len() > PRODUCER_WINDOW {
                h.recent.pop_front();
            }
        }
        self.entries.push(entry);
        offset
    }

    /// Records that `epoch` starts at the current end (a new leader does this before its
    /// first append, so that followers of older epochs can find their divergence point).
    pub fn assign_epoch(&mut self, epoch: u32) {
        let leo = self.leo();
        self.note_epoch(epoch, leo);
    }

    fn note_epoch(&mut self, epoch: u32, start: u64) {
        match self.epochs.last() {
            Some((last, _)) if *last >= epoch => {}
            _ => self.epochs.push((epoch, start)),
        }
    }

    /// The epoch of the last entry (what a follower sends as `last_fetched_epoch`).
    pub fn last_entry_epoch(&self) -> Option<u32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// The latest epoch this log knows of, with or without entries.
    #[cfg(test)]
    pub fn latest_epoch(&self) -> Option<u32> {
        self.epochs.last().map(|(e, _)| *e)
    }

    /// For a follower whose last entry has `epoch`: the largest epoch `<= epoch` this log
    /// knows and the offset where that epoch ends here (the start of the next epoch, or the
    /// log end). `(None, 0)` when this log has no epoch that old.
    pub fn end_offset_for_epoch(&self, epoch: u32) -> (Option<u32>, u64) {
        let idx = self.epochs.partition_point(|(e, _)| *e <= epoch);
        if idx == 0 {
            return (None, 0);
        }
        let found = self.epochs[idx - 1].0;
        let end = self.epochs.get(idx).map_or(self.leo(), |(_, start)| *start);
        (Some(found), end.min(self.leo()))
    }

    /// Removes every entry at or after `offset` (a follower dropping what a new leader
    /// never had). The high watermark and producer state follow.
    pub fn truncate_to(&mut self, offset: u64) {
        if offset >= self.leo() {
            return;
        }
        self.entries.truncate(offset as usize);
        self.epochs.retain(|(_, start)| *start < offset);
        self.high_watermark = self.high_watermark.min(offset);
        // Rebuild the producer windows from what is left: rare, and exact.
        self.producers.clear();
        for (i, e) in self.entries.iter().enumerate() {
            if let Some(stamp) = e.stamp {
                let h = self.producers.entry(stamp.producer_id).or_default();
                h.last_seq = stamp.seq;
                h.recent.push_back((stamp.seq, i as u64));
                if h.recent.len() > PRODUCER_WINDOW {
                    h.recent.pop_front();
                }
            }
        }
    }

    /// Checks an idempotent producer's sequence number against what this log holds.
    pub fn check_sequence(&self, stamp: ProducerStamp) -> SeqCheck {
        let Some(h) = self.producers.get(&stamp.producer_id) else {
            // A producer this partition has not seen must start at 0; anything else means
            // its earlier records were lost (e.g. truncated away).
            return if stamp.seq == 0 {
                SeqCheck::Fresh
            } else {
                SeqCheck::OutOfOrder
            };
        };
        if stamp.seq == h.last_seq.wrapping_add(1) {
            return SeqCheck::Fresh;
        }
        match h.recent.iter().find(|(s, _)| *s == stamp.seq) {
            Some((_, offset)) => SeqCheck::Duplicate { offset: *offset },
            None => SeqCheck::OutOfOrder,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(epoch: u32, n: u64) -> Entry<u32> {
        Entry {
            epoch,
            stamp: None,
            timestamp: Instant::START,
            payload: Payload::Record {
                id: RecordId { producer: 1, n },
                key: None,
                value: n as u32,
            },
        }
    }

    fn stamped(epoch: u32, seq: u32) -> Entry<u32> {
        Entry {
            stamp: Some(ProducerStamp {
                producer_id: 9,
                seq,
            }),
            ..rec(epoch, u64::from(seq))
        }
    }

    #[test]
    fn offsets_are_dense_and_reads_respect_bounds() {
        let mut log = PartitionLog::default();
        for i in 0..5 {
            assert_eq!(log.append(rec(0, i)), i);
        }
        assert_eq!(log.leo(), 5);
        assert_eq!(log.entries_from(3, 10).len(), 2);
        assert_eq!(log.entries_from(9, 10).len(), 0);
        assert_eq!(log.entries_between(1, 3, 10).len(), 2);
        log.set_high_watermark(99);
        assert_eq!(log.high_watermark(), 5, "never past the end");
    }

    #[test]
    fn end_offset_for_epoch_finds_divergence_points() {
        let mut log = PartitionLog::default();
        log.append(rec(0, 0));
        log.append(rec(0, 1));
        log.assign_epoch(2);
        log.append(rec(2, 2));
        assert_eq!(log.end_offset_for_epoch(0), (Some(0), 2));
        assert_eq!(
            log.end_offset_for_epoch(1),
            (Some(0), 2),
            "epoch 1 never led here"
        );
        assert_eq!(log.end_offset_for_epoch(2), (Some(2), 3));
        assert_eq!(log.end_offset_for_epoch(7), (Some(2), 3));
        let mut late = PartitionLog::<u32>::default();
        late.assign_epoch(3);
        assert_eq!(late.end_offset_for_epoch(1), (None, 0));
    }

    #[test]
    fn truncation_drops_entries_epochs_and_high_watermark() {
        let mut log = PartitionLog::default();
        log.append(rec(0, 0));
        log.append(rec(1, 1));
        log.append(rec(1, 2));
        log.set_high_watermark(3);
        log.truncate_to(1);
        assert_eq!(log.leo(), 1);
        assert_eq!(log.high_watermark(), 1);
        assert_eq!(log.latest_epoch(), Some(0));
        assert_eq!(log.append(rec(2, 9)), 1);
    }

    #[test]
    fn sequences_dedup_within_the_window_and_reject_gaps() {
        let mut log = PartitionLog::default();
        let s = |seq| ProducerStamp {
            producer_id: 9,
            seq,
        };
        assert_eq!(
            log.check_sequence(s(1)),
            SeqCheck::OutOfOrder,
            "new producers start at 0"
        );
        assert_eq!(log.check_sequence(s(0)), SeqCheck::Fresh);
        for seq in 0..7 {
            log.append(stamped(0, seq));
        }
        assert_eq!(log.check_sequence(s(7)), SeqCheck::Fresh);
        assert_eq!(log.check_sequence(s(6)), SeqCheck::Duplicate { offset: 6 });
        assert_eq!(log.check_sequence(s(2)), SeqCheck::Duplicate { offset: 2 });
        assert_eq!(
            log.check_sequence(s(1)),
            SeqCheck::OutOfOrder,
            "older than the window"
        );
        assert_eq!(log.check_sequence(s(9)), SeqCheck::OutOfOrder, "a gap");
        log.truncate_to(4);
        assert_eq!(
            log.check_sequence(s(4)),
            SeqCheck::Fresh,
            "rebuilt after truncation"
        );
    }
}
