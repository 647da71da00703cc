//! The queue's trace events, typed. Clients, brokers and the cluster emit them with
//! `trace::emit`; checkers take typed copies with `trace::capture::<E>()` (see
//! [`super::checker::Checker`]).
//!
//! | event | type | emitted by | when |
//! |---|---|---|---|
//! | `queue.send` | [`SendEvent`] | producer | `send` called; the partition is chosen |
//! | `queue.retry` | [`RetryEvent`] | producer | an attempt failed and will be retried |
//! | `queue.ack` | [`AckEvent`] | producer | the send succeeded (offset `null` with `acks=0`) |
//! | `queue.send_failed` | [`SendFailedEvent`] | producer | the send failed for good |
//! | `queue.append` | [`AppendEvent`] | leader | a produce appended (or, idempotent, de-duplicated) a record |
//! | `queue.replicate` | [`ReplicateEvent`] | follower | copied records from its leader |
//! | `queue.truncate` | [`TruncateEvent`] | follower | cut its log back to its leader's |
//! | `queue.fetch` | [`FetchEvent`] | leader | a consumer fetch returned records |
//! | `queue.poll` | [`PollEvent`] | consumer | `poll` returned records to the application |
//! | `queue.seek` | [`SeekEvent`] | consumer | a position was set (committed offset, reset, or `seek`) |
//! | `queue.commit` | [`CommitEvent`] | consumer | a commit finished (ok or not) |
//! | `queue.assign` | [`AssignEvent`] | consumer | its partitions changed |
//! | `queue.group` | [`GroupEvent`] | coordinator | a member joined, left or expired |
//! | `queue.controller` | (internal) | controller | a broker was fenced/registered, a leader elected, an ISR changed |
//! | `queue.crash` | [`CrashEvent`] | cluster | a broker's node died, however it was killed |
//! | `queue.fault` | [`FaultEvent`] | cluster | a broker restarted, paused, resumed, or was made slow or fast |
//!
//! The events a busy run emits for every record or request (`send`, `ack`, `append`,
//! `fetch`, `replicate`, `truncate`, `seek`, `commit`) borrow their strings ([`Cow`]) from
//! what the emitter holds, so that tracing copies nothing; a capture keeps the same type
//! with owned strings (`SendEvent<'static>`). `queue.poll` is emitted from the records
//! themselves and captured as a [`PollEvent`].

use std::borrow::Cow;

use serde::Serialize;
use sim_runtime::trace::TraceEvent;

use super::types::{Acks, BrokerId, Record, RecordId, TopicPartition};

/// A borrowed field's owned copy, for a capture.
trait ToStatic {
    type Static;
    fn to_static(&self) -> Self::Static;
}

impl ToStatic for Cow<'_, str> {
    type Static = Cow<'static, str>;
    fn to_static(&self) -> Cow<'static, str> {
        Cow::Owned(self.as_ref().to_owned())
    }
}

impl ToStatic for Option<Cow<'_, str>> {
    type Static = Option<Cow<'static, str>>;
    fn to_static(&self) -> Option<Cow<'static, str>> {
        self.as_ref().map(ToStatic::to_static)
    }
}

impl<T: Clone + 'static> ToStatic for Cow<'_, [T]> {
    type Static = Cow<'static, [T]>;
    fn to_static(&self) -> Cow<'static, [T]> {
        Cow::Owned(self.to_vec())
    }
}

/// Implements `TraceEvent` for an event `$ty<'a>` that borrows its `$borrowed` fields: a
/// capture keeps a `$ty<'static>`, those fields copied, the `$copied` ones cloned.
macro_rules! borrowing_event {
    ($ty:ident, $name:literal, borrowed: [$($borrowed:ident),*], copied: [$($copied:ident),*]) => {
        impl TraceEvent for $ty<'_> {
            const NAME: &'static str = $name;
            type Owned = $ty<'static>;
            fn to_owned_event(&self) -> $ty<'static> {
                $ty {
                    $($borrowed: self.$borrowed.to_static(),)*
                    $($copied: self.$copied.clone(),)*
                }
            }
        }
    };
}

/// `queue.send`: a producer's `send`, once the partition is chosen.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SendEvent<'a> {
    pub producer: u64,
    pub id: RecordId,
    pub topic: Cow<'a, str>,
    pub partition: u32,
    pub key: Option<Cow<'a, str>>,
    pub acks: Acks,
}

borrowing_event!(
    SendEvent,
    "queue.send",
    borrowed: [topic, key],
    copied: [producer, id, partition, acks]
);

/// `queue.retry`: an attempt failed and the producer tries again.
#[derive(Clone, Debug, PartialEq, Serialize, TraceEvent)]
#[trace_event(name = "queue.retry")]
pub struct RetryEvent {
    pub producer: u64,
    pub id: RecordId,
    pub attempt: u32,
    pub error: String,
}

/// `queue.ack`: the send succeeded.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AckEvent<'a> {
    pub producer: u64,
    pub id: RecordId,
    pub topic: Cow<'a, str>,
    pub partition: u32,
    /// `None` with `acks=0`.
    pub offset: Option<u64>,
    pub attempts: u32,
}

borrowing_event!(
    AckEvent,
    "queue.ack",
    borrowed: [topic],
    copied: [producer, id, partition, offset, attempts]
);

/// `queue.send_failed`: the send failed for good (the record may still have been written).
#[derive(Clone, Debug, PartialEq, Serialize, TraceEvent)]
#[trace_event(name = "queue.send_failed")]
pub struct SendFailedEvent {
    pub producer: u64,
    pub id: RecordId,
    pub topic: String,
    pub partition: u32,
    pub error: String,
}

/// `queue.append`: a leader appended a produced record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AppendEvent<'a> {
    pub broker: BrokerId,
    pub topic: Cow<'a, str>,
    pub partition: u32,
    pub offset: u64,
    pub id: RecordId,
    pub leader_epoch: u32,
    /// An idempotent retry answered with the first append's offset.
    pub duplicate: bool,
}

borrowing_event!(
    AppendEvent,
    "queue.append",
    borrowed: [topic],
    copied: [broker, partition, offset, id, leader_epoch, duplicate]
);

/// `queue.replicate`: a follower copied offsets `from..to` from its leader.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReplicateEvent<'a> {
    pub broker: BrokerId,
    pub topic: Cow<'a, str>,
    pub partition: u32,
    pub from: u64,
    pub to: u64,
}

borrowing_event!(
    ReplicateEvent,
    "queue.replicate",
    borrowed: [topic],
    copied: [broker, partition, from, to]
);

/// `queue.truncate`: a follower whose log diverged from its leader's cut it from `from`
/// back to `to`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TruncateEvent<'a> {
    pub broker: BrokerId,
    pub topic: Cow<'a, str>,
    pub partition: u32,
    pub from: u64,
    pub to: u64,
}

borrowing_event!(
    TruncateEvent,
    "queue.truncate",
    borrowed: [topic],
    copied: [broker, partition, from, to]
);

/// `queue.fetch`: a leader answered a consumer's fetch with `count` records from `from`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FetchEvent<'a> {
    pub broker: BrokerId,
    pub topic: Cow<'a, str>,
    pub partition: u32,
    pub from: u64,
    pub count: usize,
}

borrowing_event!(
    FetchEvent,
    "queue.fetch",
    borrowed: [topic],
    copied: [broker, partition, from, count]
);

/// One record as a consumer handed it to the application.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolledRecord {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub id: RecordId,
}

/// `queue.poll`: the records one `poll` returned, as a capture keeps them. The consumer
/// emits a [`PollView`] of the same shape, which borrows the records.
#[derive(Clone, Debug, PartialEq, Serialize, TraceEvent)]
#[trace_event(name = "queue.poll")]
pub struct PollEvent {
    /// The consumer instance (stable across its rejoins, unlike the member id).
    pub consumer: String,
    pub group: String,
    pub records: Vec<PolledRecord>,
}

/// `queue.poll` as the consumer emits it: [`PollEvent`]'s fields, read from the polled
/// records themselves.
#[derive(Serialize)]
pub(crate) struct PollView<'a, V> {
    pub consumer: &'a str,
    pub group: &'a str,
    #[serde(serialize_with = "polled_records")]
    pub records: &'a [Record<V>],
}

/// Each record as a [`PolledRecord`] would serialise.
fn polled_records<V, S: serde::Serializer>(
    records: &&[Record<V>],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Polled<'a> {
        topic: &'a str,
        partition: u32,
        offset: u64,
        id: RecordId,
    }
    serializer.collect_seq(records.iter().map(|r| Polled {
        topic: &r.topic,
        partition: r.partition,
        offset: r.offset,
        id: r.id,
    }))
}

impl<V> TraceEvent for PollView<'_, V> {
    const NAME: &'static str = <PollEvent as TraceEvent>::NAME;
    type Owned = PollEvent;
    fn to_owned_event(&self) -> PollEvent {
        PollEvent {
            consumer: self.consumer.to_owned(),
            group: self.group.to_owned(),
            records: self
                .records
                .iter()
                .map(|r| PolledRecord {
                    topic: r.topic.clone(),
                    partition: r.partition,
                    offset: r.offset,
                    id: r.id,
                })
                .collect(),
        }
    }
}

/// Why a consumer's position was set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeekReason {
    /// The group's committed offset, on being assigned the partition.
    Committed,
    /// `auto.offset.reset` (no committed offset, or it was out of range).
    Reset,
    /// The application called `seek`.
    Seek,
}

/// `queue.seek`: a consumer's position in a partition was set.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeekEvent<'a> {
    pub consumer: Cow<'a, str>,
    pub group: Cow<'a, str>,
    pub topic: Cow<'a, str>,
    pub partition: u32,
    pub offset: u64,
    pub reason: SeekReason,
}

borrowing_event!(
    SeekEvent,
    "queue.seek",
    borrowed: [consumer, group, topic],
    copied: [partition, offset, reason]
);

/// `queue.commit`: a consumer's commit finished.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommitEvent<'a> {
    pub consumer: Cow<'a, str>,
    pub group: Cow<'a, str>,
    pub member: Cow<'a, str>,
    pub offsets: Cow<'a, [(TopicPartition, u64)]>,
    pub auto: bool,
    /// `None` on success, else the error.
    pub error: Option<String>,
}

borrowing_event!(
    CommitEvent,
    "queue.commit",
    borrowed: [consumer, group, member, offsets],
    copied: [auto, error]
);

/// `queue.assign`: a consumer's partitions changed.
#[derive(Clone, Debug, PartialEq, Serialize, TraceEvent)]
#[trace_event(name = "queue.assign")]
pub struct AssignEvent {
    pub consumer: String,
    pub group: String,
    pub member: String,
    pub epoch: u32,
    pub partitions: Vec<TopicPartition>,
    pub added: Vec<TopicPartition>,
    pub revoked: Vec<TopicPartition>,
}

/// How a group's membership changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupChange {
    Join,
    Leave,
    /// The member's session timed out.
    Expire,
}

/// `queue.group`: a coordinator's group gained or lost a member.
#[derive(Clone, Debug, PartialEq, Serialize, TraceEvent)]
#[trace_event(name = "queue.group")]
pub struct GroupEvent {
    pub broker: BrokerId,
    pub group: String,
    pub member: String,
    pub change: GroupChange,
    pub epoch: u32,
}

/// `queue.crash`: a broker's node died (the cluster's `crash`, or `node.kill()` from
/// anywhere). Its logs survive, as on disk; what it held only in memory is listed.
#[derive(Clone, Debug, PartialEq, Serialize, TraceEvent)]
#[trace_event(name = "queue.crash")]
pub struct CrashEvent {
    pub cluster: String,
    pub broker: BrokerId,
    /// The partitions it led: they stay offline until the controller fences it.
    pub leaderships: Vec<TopicPartition>,
    /// The groups it coordinated: their members must find the next coordinator.
    pub groups: Vec<String>,
}

/// A broker fault other than a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BrokerFault {
    Restart,
    Pause,
    Resume,
    Slow,
    Fast,
}

/// `queue.fault`: a broker restarted, paused or resumed (however its node was told to),
/// or was made slow or fast again.
#[derive(Clone, Debug, PartialEq, Serialize, TraceEvent)]
#[trace_event(name = "queue.fault")]
pub struct FaultEvent {
    pub cluster: String,
    pub broker: BrokerId,
    pub fault: BrokerFault,
    /// The delay of `slow`.
    pub delay_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_runtime::time::Instant;
    use sim_runtime::{trace, Sim};

    #[test]
    fn a_poll_view_traces_and_captures_as_its_poll_event() {
        let records = vec![
            Record {
                topic: "orders".to_string(),
                partition: 2,
                offset: 7,
                key: Some("k".to_string()),
                value: 5u8,
                id: RecordId { producer: 1, n: 3 },
                timestamp: Instant::START,
            };
            2
        ];
        let event = PollEvent {
            consumer: "c.1".to_string(),
            group: "g".to_string(),
            records: vec![
                PolledRecord {
                    topic: "orders".to_string(),
                    partition: 2,
                    offset: 7,
                    id: RecordId { producer: 1, n: 3 },
                };
                2
            ],
        };
        let result = Sim::new(1).run(move || {
            let (records, event) = (records.clone(), event.clone());
            async move {
                let log = trace::capture_prefix("queue.poll");
                let typed = trace::capture::<PollEvent>();
                trace::emit(&PollView {
                    consumer: "c.1",
                    group: "g",
                    records: &records,
                });
                trace::emit(&event);
                let fields: Vec<_> = log.snapshot().into_iter().map(|e| e.fields).collect();
                assert_eq!(fields.len(), 2);
                assert_eq!(fields[0], fields[1], "one compact form");
                assert_eq!(typed.values(), vec![event.clone(), event]);
            }
        });
        assert!(result.report.is_pass(), "{}", result.report);
    }
}
