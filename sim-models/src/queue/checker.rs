//! Checks over a queue history, in the manner of Jepsen's Kafka workload: given what
//! producers sent and had acknowledged and what consumers polled, report
//!
//! - **lost** records: acknowledged (with an offset), never polled, although consumers
//!   read that partition past the acknowledged offset; `unseen` ones are acknowledged and
//!   never polled, but nobody read that far (lost too, if the run drained every partition);
//! - **duplicates**: one record stored at two offsets (a non-idempotent retry), or one
//!   stored record delivered more than once (at-least-once redelivery after a crash or
//!   rebalance, which is allowed but counted);
//! - **order** violations: one offset holding different records (a truncated log reused
//!   it), a consumer going backwards or skipping within a partition without a seek, or a
//!   producer's later send landing before an earlier acknowledged one.
//!
//! In a run, take a [`Checker`] before the clients start ([`Checker::capture`]: typed
//! captures of the events the checks read) and call [`Checker::check`] at the end. A
//! [`History`] can also be built by hand from [`Op`]s, for [`check`] or one of
//! [`check_loss`], [`check_duplicates`], [`check_order`].

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sim_runtime::time::Instant;
use sim_runtime::trace::{self, Capture};

use super::events::{AckEvent, PollEvent, PolledRecord, SeekEvent, SendEvent, SendFailedEvent};
use super::types::{RecordId, TopicPartition};

/// The events of a run the checks read, captured typed from the trace.
#[derive(Clone, Debug)]
pub struct Checker {
    sends: Capture<SendEvent<'static>>,
    acks: Capture<AckEvent<'static>>,
    failures: Capture<SendFailedEvent>,
    polls: Capture<PollEvent>,
    seeks: Capture<SeekEvent<'static>>,
}

impl Checker {
    /// Starts capturing, from now on, every send, acknowledgement, failed send, poll and
    /// seek. Call inside the simulation before the producers and consumers start.
    pub fn capture() -> Self {
        Checker {
            sends: trace::capture::<SendEvent<'_>>(),
            acks: trace::capture::<AckEvent<'_>>(),
            failures: trace::capture::<SendFailedEvent>(),
            polls: trace::capture::<PollEvent>(),
            seeks: trace::capture::<SeekEvent<'_>>(),
        }
    }

    /// The operations captured so far, in trace order.
    pub fn history(&self) -> History {
        let mut ops: Vec<(u64, Op)> = Vec::new();
        ops.extend(self.sends.events().iter().map(|c| {
            let e = &c.event;
            let op = Op::Send {
                at: c.time,
                producer: e.producer,
                id: e.id,
                tp: TopicPartition::new(e.topic.as_ref(), e.partition),
            };
            (c.seq, op)
        }));
        ops.extend(self.acks.events().iter().map(|c| {
            let op = Op::Ack {
                at: c.time,
                id: c.event.id,
                offset: c.event.offset,
            };
            (c.seq, op)
        }));
        ops.extend(self.failures.events().iter().map(|c| {
            let op = Op::SendFailed {
                at: c.time,
                id: c.event.id,
            };
            (c.seq, op)
        }));
        ops.extend(self.polls.events().iter().map(|c| {
            let op = Op::Poll {
                at: c.time,
                consumer: c.event.consumer.clone(),
                records: c.event.records.clone(),
            };
            (c.seq, op)
        }));
        ops.extend(self.seeks.events().iter().map(|c| {
            let e = &c.event;
            let op = Op::Seek {
                at: c.time,
                consumer: e.consumer.to_string(),
                tp: TopicPartition::new(e.topic.as_ref(), e.partition),
                offset: e.offset,
            };
            (c.seq, op)
        }));
        ops.sort_by_key(|(seq, _)| *seq);
        History {
            ops: ops.into_iter().map(|(_, op)| op).collect(),
        }
    }

    /// Runs every check over the operations captured so far.
    pub fn check(&self) -> CheckReport {
        check(&self.history())
    }
}

/// One observation in a history.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Op {
    /// A producer called `send`; the record goes to `tp`.
    Send {
        at: Instant,
        producer: u64,
        id: RecordId,
        tp: TopicPartition,
    },
    /// The send was acknowledged; `offset` is `None` with `acks=0`.
    Ack {
        at: Instant,
        id: RecordId,
        offset: Option<u64>,
    },
    /// The send failed for good (it may still have been written).
    SendFailed { at: Instant, id: RecordId },
    /// A consumer's `poll` returned these records, in this order.
    Poll {
        at: Instant,
        consumer: String,
        records: Vec<PolledRecord>,
    },
    /// A consumer's position in `tp` was set to `offset`.
    Seek {
        at: Instant,
        consumer: String,
        tp: TopicPartition,
        offset: u64,
    },
}

/// The operations of a run, in trace order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct History {
    pub ops: Vec<Op>,
}

impl History {
    pub fn new() -> Self {
        History::default()
    }

    pub fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// Every send with what became of it.
    fn sends(&self) -> BTreeMap<RecordId, SendInfo> {
        let mut sends: BTreeMap<RecordId, SendInfo> = BTreeMap::new();
        for op in &self.ops {
            match op {
                Op::Send {
                    at,
                    producer,
                    id,
                    tp,
                } => {
                    sends.insert(
                        *id,
                        SendInfo {
                            producer: *producer,
                            tp: tp.clone(),
                            sent_at: *at,
                            ack: None,
                        },
                    );
                }
                Op::Ack { at, id, offset } => {
                    if let Some(s) = sends.get_mut(id) {
                        s.ack = Some((*at, *offset));
                    }
                }
                _ => {}
            }
        }
        sends
    }

    /// Every polled record with how often it was delivered and to whom.
    fn polled(&self) -> BTreeMap<(TopicPartition, u64), Vec<(RecordId, String)>> {
        let mut out: BTreeMap<(TopicPartition, u64), Vec<(RecordId, String)>> = BTreeMap::new();
        for op in &self.ops {
            if let Op::Poll {
                consumer, records, ..
            } = op
            {
                for r in records {
                    out.entry((TopicPartition::new(r.topic.clone(), r.partition), r.offset))
                        .or_default()
                        .push((r.id, consumer.clone()));
                }
            }
        }
        out
    }
}

/// A send with the offset it was found at.
type Placed<'a> = (RecordId, &'a SendInfo, u64);

#[derive(Clone, Debug)]
struct SendInfo {
    producer: u64,
    tp: TopicPartition,
    sent_at: Instant,
    ack: Option<(Instant, Option<u64>)>,
}

/// An acknowledged record that consumers read past without seeing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lost {
    pub id: RecordId,
    pub tp: TopicPartition,
    /// The offset the acknowledgement named.
    pub offset: u64,
    pub acked_at: Instant,
    /// The record consumers found at that offset instead (a truncated log reused it).
    pub overwritten_by: Option<RecordId>,
}

/// An acknowledged record nobody polled, in a partition nobody read that far.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unseen {
    pub id: RecordId,
    pub tp: TopicPartition,
    pub offset: u64,
}

/// A record seen more than once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Duplicate {
    /// The same record at several offsets: written more than once (a retry without
    /// idempotence). Never allowed with an idempotent producer.
    StoredTwice {
        id: RecordId,
        offsets: Vec<(TopicPartition, u64)>,
    },
    /// One stored record handed to consumers more than once (redelivery: allowed by
    /// at-least-once, and what a crash before a commit causes).
    DeliveredTwice {
        id: RecordId,
        tp: TopicPartition,
        offset: u64,
        consumers: Vec<String>,
    },
}

/// A violation of per-partition order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum OrderViolation {
    /// One offset of a partition was seen (acknowledged or polled) holding different records.
    InconsistentOffset {
        tp: TopicPartition,
        offset: u64,
        ids: Vec<RecordId>,
    },
    /// A consumer's next record in a partition came from before its position, with no
    /// seek in between.
    NonMonotonicPoll {
        consumer: String,
        tp: TopicPartition,
        expected: u64,
        got: u64,
    },
    /// A consumer's next record in a partition came from after its position: records in
    /// between were skipped.
    PollSkip {
        consumer: String,
        tp: TopicPartition,
        expected: u64,
        got: u64,
    },
    /// A producer sent `later` after `earlier` was acknowledged, to the same partition,
    /// but `later` is stored at a lower offset.
    SendReorder {
        producer: u64,
        tp: TopicPartition,
        earlier: RecordId,
        earlier_offset: u64,
        later: RecordId,
        later_offset: u64,
    },
}

/// Everything the checks found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub sent: usize,
    pub acknowledged: usize,
    /// Distinct (partition, offset) pairs consumers polled.
    pub polled: usize,
    pub lost: Vec<Lost>,
    pub unseen: Vec<Unseen>,
    pub duplicates: Vec<Duplicate>,
    pub order: Vec<OrderViolation>,
}

impl CheckReport {
    /// No loss, nothing stored twice, no order violation. Redelivery and unseen records
    /// are allowed here; check them separately when the test demands it.
    pub fn is_valid(&self) -> bool {
        self.lost.is_empty() && self.stored_twice().is_empty() && self.order.is_empty()
    }

    pub fn stored_twice(&self) -> Vec<&Duplicate> {
        self.duplicates
            .iter()
            .filter(|d| matches!(d, Duplicate::StoredTwice { .. }))
            .collect()
    }

    pub fn delivered_twice(&self) -> Vec<&Duplicate> {
        self.duplicates
            .iter()
            .filter(|d| matches!(d, Duplicate::DeliveredTwice { .. }))
            .collect()
    }
}

/// Runs every check.
pub fn check(h: &History) -> CheckReport {
    let sends = h.sends();
    let (lost, unseen) = check_loss(h);
    CheckReport {
        sent: sends.len(),
        acknowledged: sends
            .values()
            .filter(|s| matches!(s.ack, Some((_, Some(_)))))
            .count(),
        polled: h.polled().len(),
        lost,
        unseen,
        duplicates: check_duplicates(h),
        order: check_order(h),
    }
}

/// Acknowledged records that were never polled: `lost` where consumers read the partition
/// at or past the acknowledged offset, `unseen` where they did not get that far.
pub fn check_loss(h: &History) -> (Vec<Lost>, Vec<Unseen>) {
    let sends = h.sends();
    let polled = h.polled();
    let seen: BTreeSet<RecordId> = polled.values().flatten().map(|(id, _)| *id).collect();
    let mut furthest: BTreeMap<&TopicPartition, u64> = BTreeMap::new();
    for (tp, offset) in polled.keys() {
        let f = furthest.entry(tp).or_insert(*offset);
        *f = (*f).max(*offset);
    }
    let mut lost = Vec::new();
    let mut unseen = Vec::new();
    for (id, s) in &sends {
        let Some((acked_at, Some(offset))) = s.ack else {
            continue;
        };
        if seen.contains(id) {
            continue;
        }
        if furthest.get(&s.tp).is_some_and(|f| *f >= offset) {
            let overwritten_by = polled
                .get(&(s.tp.clone(), offset))
                .and_then(|v| v.iter().map(|(i, _)| *i).find(|i| i != id));
            lost.push(Lost {
                id: *id,
                tp: s.tp.clone(),
                offset,
                acked_at,
                overwritten_by,
            });
        } else {
            unseen.push(Unseen {
                id: *id,
                tp: s.tp.clone(),
                offset,
            });
        }
    }
    (lost, unseen)
}

/// Records stored at more than one offset, and stored records delivered more than once.
pub fn check_duplicates(h: &History) -> Vec<Duplicate> {
    let polled = h.polled();
    let mut offsets_of: BTreeMap<RecordId, BTreeSet<(TopicPartition, u64)>> = BTreeMap::new();
    let mut out = Vec::new();
    for ((tp, offset), deliveries) in &polled {
        for (id, _) in deliveries {
            offsets_of
                .entry(*id)
                .or_default()
                .insert((tp.clone(), *offset));
        }
        let mut per_id: BTreeMap<RecordId, Vec<String>> = BTreeMap::new();
        for (id, consumer) in deliveries {
            per_id.entry(*id).or_default().push(consumer.clone());
        }
        for (id, consumers) in per_id {
            if consumers.len() > 1 {
                out.push(Duplicate::DeliveredTwice {
                    id,
                    tp: tp.clone(),
                    offset: *offset,
                    consumers,
                });
            }
        }
    }
    for (id, offsets) in offsets_of {
        if offsets.len() > 1 {
            out.push(Duplicate::StoredTwice {
                id,
                offsets: offsets.into_iter().collect(),
            });
        }
    }
    out
}

/// Offsets holding different records, consumers moving backwards or skipping without a
/// seek, and producers' causally later sends stored earlier.
pub fn check_order(h: &History) -> Vec<OrderViolation> {
    let mut out = Vec::new();
    let sends = h.sends();

    // One offset, one record: across acknowledgements and polls.
    let mut at_offset: BTreeMap<(TopicPartition, u64), BTreeSet<RecordId>> = BTreeMap::new();
    for (id, s) in &sends {
        if let Some((_, Some(offset))) = s.ack {
            at_offset
                .entry((s.tp.clone(), offset))
                .or_default()
                .insert(*id);
        }
    }
    for (key, deliveries) in h.polled() {
        at_offset
            .entry(key)
            .or_default()
            .extend(deliveries.iter().map(|(id, _)| *id));
    }
    for ((tp, offset), ids) in &at_offset {
        if ids.len() > 1 {
            out.push(OrderViolation::InconsistentOffset {
                tp: tp.clone(),
                offset: *offset,
                ids: ids.iter().copied().collect(),
            });
        }
    }

    // Each consumer reads each partition contiguously between seeks.
    let mut expected: BTreeMap<(String, TopicPartition), u64> = BTreeMap::new();
    for op in &h.ops {
        match op {
            Op::Seek {
                consumer,
                tp,
                offset,
                ..
            } => {
                expected.insert((consumer.clone(), tp.clone()), *offset);
            }
            Op::Poll {
                consumer, records, ..
            } => {
                for r in records {
                    let tp = TopicPartition::new(r.topic.clone(), r.partition);
                    let key = (consumer.clone(), tp.clone());
                    if let Some(e) = expected.get(&key).copied() {
                        if r.offset < e {
                            out.push(OrderViolation::NonMonotonicPoll {
                                consumer: consumer.clone(),
                                tp,
                                expected: e,
                                got: r.offset,
                            });
                        } else if r.offset > e {
                            out.push(OrderViolation::PollSkip {
                                consumer: consumer.clone(),
                                tp,
                                expected: e,
                                got: r.offset,
                            });
                        }
                    }
                    expected.insert(key, r.offset + 1);
                }
            }
            _ => {}
        }
    }

    // A producer's send that started after another's acknowledgement, to the same
    // partition, must be stored after it. Where a record was polled, its first polled
    // offset is the truth; otherwise the acknowledged one.
    let mut first_polled: BTreeMap<RecordId, u64> = BTreeMap::new();
    for ((_, offset), deliveries) in h.polled() {
        for (id, _) in deliveries {
            first_polled.entry(id).or_insert(offset);
        }
    }
    let mut by_stream: BTreeMap<(u64, TopicPartition), Vec<Placed<'_>>> = BTreeMap::new();
    for (id, s) in &sends {
        let offset = first_polled.get(id).copied().or(match s.ack {
            Some((_, Some(o))) => Some(o),
            _ => None,
        });
        if let Some(o) = offset {
            by_stream
                .entry((s.producer, s.tp.clone()))
                .or_default()
                .push((*id, s, o));
        }
    }
    for ((producer, tp), mut stream) in by_stream {
        // Acknowledged sends by ack time, to sweep against sends by start time.
        let mut acked: Vec<(Instant, RecordId, u64)> = stream
            .iter()
            .filter_map(|(id, s, o)| s.ack.map(|(at, _)| (at, *id, *o)))
            .collect();
        acked.sort();
        stream.sort_by_key(|(id, s, _)| (s.sent_at, *id));
        let mut i = 0;
        let mut max_before: Option<(u64, RecordId)> = None;
        for (id, s, offset) in &stream {
            while i < acked.len() && acked[i].0 < s.sent_at {
                let (_, aid, ao) = acked[i];
                if max_before.is_none_or(|(m, _)| ao > m) {
                    max_before = Some((ao, aid));
                }
                i += 1;
            }
            if let Some((m, earlier)) = max_before {
                if *offset <= m && earlier != *id {
                    out.push(OrderViolation::SendReorder {
                        producer,
                        tp: tp.clone(),
                        earlier,
                        earlier_offset: m,
                        later: *id,
                        later_offset: *offset,
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_runtime::time::Duration;

    fn t(ms: u64) -> Instant {
        Instant::START + Duration::from_millis(ms)
    }

    fn id(n: u64) -> RecordId {
        RecordId { producer: 1, n }
    }

    fn tp() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    fn send_ack(h: &mut History, n: u64, sent: u64, acked: u64, offset: u64) {
        h.push(Op::Send {
            at: t(sent),
            producer: 1,
            id: id(n),
            tp: tp(),
        });
        h.push(Op::Ack {
            at: t(acked),
            id: id(n),
            offset: Some(offset),
        });
    }

    fn poll(h: &mut History, at: u64, consumer: &str, recs: &[(u64, u64)]) {
        let records = recs
            .iter()
            .map(|(offset, n)| PolledRecord {
                topic: "t".into(),
                partition: 0,
                offset: *offset,
                id: id(*n),
            })
            .collect();
        h.push(Op::Poll {
            at: t(at),
            consumer: consumer.into(),
            records,
        });
    }

    fn seek(h: &mut History, at: u64, consumer: &str, offset: u64) {
        h.push(Op::Seek {
            at: t(at),
            consumer: consumer.into(),
            tp: tp(),
            offset,
        });
    }

    fn clean() -> History {
        let mut h = History::new();
        send_ack(&mut h, 0, 0, 1, 0);
        send_ack(&mut h, 1, 2, 3, 1);
        send_ack(&mut h, 2, 4, 5, 2);
        seek(&mut h, 6, "c1", 0);
        poll(&mut h, 7, "c1", &[(0, 0), (1, 1), (2, 2)]);
        h
    }

    #[test]
    fn a_clean_history_passes() {
        let r = check(&clean());
        assert!(r.is_valid(), "{r:?}");
        assert!(r.duplicates.is_empty() && r.unseen.is_empty());
        assert_eq!((r.sent, r.acknowledged, r.polled), (3, 3, 3));
    }

    #[test]
    fn planted_truncation_is_a_loss_and_an_inconsistent_offset() {
        let mut h = clean();
        // Acknowledged at offset 3 by an old leader; the new leader stored id 4 there.
        send_ack(&mut h, 3, 10, 11, 3);
        send_ack(&mut h, 4, 20, 21, 3);
        poll(&mut h, 22, "c1", &[(3, 4)]);
        let r = check(&h);
        assert!(!r.is_valid());
        assert_eq!(
            r.lost,
            vec![Lost {
                id: id(3),
                tp: tp(),
                offset: 3,
                acked_at: t(11),
                overwritten_by: Some(id(4))
            }]
        );
        assert!(r.order.contains(&OrderViolation::InconsistentOffset {
            tp: tp(),
            offset: 3,
            ids: vec![id(3), id(4)]
        }));
        assert!(r
            .order
            .iter()
            .any(|v| matches!(v, OrderViolation::SendReorder { later, .. } if *later == id(4))));
    }

    #[test]
    fn unread_records_are_unseen_not_lost() {
        let mut h = clean();
        send_ack(&mut h, 3, 10, 11, 3);
        let r = check(&h);
        assert!(r.is_valid());
        assert_eq!(
            r.unseen,
            vec![Unseen {
                id: id(3),
                tp: tp(),
                offset: 3
            }]
        );
    }

    #[test]
    fn retries_stored_twice_and_redeliveries_are_told_apart() {
        let mut h = clean();
        // id 3 written at 3 and 4 (lost ack, retry); c2 re-reads offset 3 after a crash.
        send_ack(&mut h, 3, 10, 15, 4);
        poll(&mut h, 16, "c1", &[(3, 3), (4, 3)]);
        seek(&mut h, 17, "c2", 3);
        poll(&mut h, 18, "c2", &[(3, 3)]);
        let r = check(&h);
        assert_eq!(
            r.stored_twice(),
            vec![&Duplicate::StoredTwice {
                id: id(3),
                offsets: vec![(tp(), 3), (tp(), 4)]
            }]
        );
        assert_eq!(
            r.delivered_twice(),
            vec![&Duplicate::DeliveredTwice {
                id: id(3),
                tp: tp(),
                offset: 3,
                consumers: vec!["c1".into(), "c2".into()]
            }]
        );
        assert!(!r.is_valid(), "stored twice is invalid");
    }

    #[test]
    fn consumers_must_not_go_back_or_skip_without_a_seek() {
        let mut h = clean();
        poll(&mut h, 8, "c1", &[(1, 1)]);
        let r = check_order(&h);
        assert_eq!(
            r,
            vec![OrderViolation::NonMonotonicPoll {
                consumer: "c1".into(),
                tp: tp(),
                expected: 3,
                got: 1
            }]
        );
        let mut h = clean();
        seek(&mut h, 8, "c1", 1);
        poll(&mut h, 9, "c1", &[(1, 1)]);
        assert!(check_order(&h).is_empty(), "a seek allows going back");
        let mut h = clean();
        send_ack(&mut h, 3, 10, 11, 3);
        send_ack(&mut h, 4, 12, 13, 4);
        poll(&mut h, 14, "c1", &[(4, 4)]);
        assert_eq!(
            check_order(&h),
            vec![OrderViolation::PollSkip {
                consumer: "c1".into(),
                tp: tp(),
                expected: 3,
                got: 4
            }]
        );
    }

    #[test]
    fn concurrent_sends_may_land_in_any_order() {
        let mut h = History::new();
        // Both in flight at once: no causal order between them.
        h.push(Op::Send {
            at: t(0),
            producer: 1,
            id: id(0),
            tp: tp(),
        });
        h.push(Op::Send {
            at: t(1),
            producer: 1,
            id: id(1),
            tp: tp(),
        });
        h.push(Op::Ack {
            at: t(2),
            id: id(1),
            offset: Some(0),
        });
        h.push(Op::Ack {
            at: t(3),
            id: id(0),
            offset: Some(1),
        });
        assert!(check_order(&h).is_empty());
    }

    #[test]
    fn acks_0_sends_are_not_promised() {
        let mut h = History::new();
        h.push(Op::Send {
            at: t(0),
            producer: 1,
            id: id(0),
            tp: tp(),
        });
        h.push(Op::Ack {
            at: t(0),
            id: id(0),
            offset: None,
        });
        poll(&mut h, 5, "c1", &[(0, 9)]);
        let r = check(&h);
        assert!(r.lost.is_empty() && r.unseen.is_empty());
        assert_eq!(r.acknowledged, 0);
    }
}
