//! Hand-written JSON for the queue's per-record events (`queue.send`, `queue.append`,
//! `queue.ack`, and `queue.poll` with a record list), byte for byte what serde writes for
//! [`SendEvent`], [`AppendEvent`], [`AckEvent`] and [`PollEvent`]: each fires once per
//! record, and serde's machinery cost several times what writing the few fields does.
//! The tests hold each writer to serde's output.

use sim_runtime::trace::{self, write_u64};

use super::events::{AckEvent, AppendEvent, SendEvent, ACK, APPEND, POLL, SEND};
#[cfg(test)]
use super::events::{PollEvent, PolledRecord};
use super::types::{Acks, Record, RecordId};
use crate::kv::json::write_str;

/// Emits `queue.send`.
pub(crate) fn emit_send(e: &SendEvent) {
    trace::emit_raw(SEND, |out| write_send(out, e));
}

/// Emits `queue.ack`.
pub(crate) fn emit_ack(e: &AckEvent) {
    trace::emit_raw(ACK, |out| write_ack(out, e));
}

/// Emits `queue.append`.
pub(crate) fn emit_append(e: &AppendEvent) {
    trace::emit_raw(APPEND, |out| write_append(out, e));
}

/// Emits `queue.poll` for the records a poll returns: a [`PollEvent`], written from the
/// records themselves rather than from a copy of each one's topic.
pub(crate) fn emit_poll<V>(consumer: &str, group: &str, records: &[Record<V>]) {
    trace::emit_raw(POLL, |out| {
        write_poll(
            out,
            consumer,
            group,
            records
                .iter()
                .map(|r| (r.topic.as_str(), r.partition, r.offset, r.id)),
        )
    });
}

/// A [`PollEvent`]'s JSON; each record is (topic, partition, offset, id).
fn write_poll<'a>(
    out: &mut Vec<u8>,
    consumer: &str,
    group: &str,
    records: impl Iterator<Item = (&'a str, u32, u64, RecordId)>,
) {
    out.extend_from_slice(b"{\"consumer\":");
    write_str(out, consumer);
    out.extend_from_slice(b",\"group\":");
    write_str(out, group);
    out.extend_from_slice(b",\"records\":[");
    for (i, (topic, partition, offset, id)) in records.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"topic\":");
        write_str(out, topic);
        out.extend_from_slice(b",\"partition\":");
        write_u64(out, partition.into());
        out.extend_from_slice(b",\"offset\":");
        write_u64(out, offset);
        out.extend_from_slice(b",\"id\":");
        write_id(out, id);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
}

/// The fields `queue.send` and `queue.ack` open with, in serde's order.
fn write_producer_head(
    out: &mut Vec<u8>,
    producer: u64,
    id: RecordId,
    topic: &str,
    partition: u64,
) {
    out.extend_from_slice(b"{\"producer\":");
    write_u64(out, producer);
    out.extend_from_slice(b",\"id\":");
    write_id(out, id);
    out.extend_from_slice(b",\"topic\":");
    write_str(out, topic);
    out.extend_from_slice(b",\"partition\":");
    write_u64(out, partition);
}

fn write_send(out: &mut Vec<u8>, e: &SendEvent) {
    write_producer_head(out, e.producer, e.id, &e.topic, e.partition.into());
    out.extend_from_slice(b",\"key\":");
    match &e.key {
        Some(k) => write_str(out, k),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"acks\":");
    out.extend_from_slice(match e.acks {
        Acks::Zero => b"\"0\"",
        Acks::One => b"\"1\"",
        Acks::All => b"\"all\"",
    });
    out.push(b'}');
}

fn write_ack(out: &mut Vec<u8>, e: &AckEvent) {
    write_producer_head(out, e.producer, e.id, &e.topic, e.partition.into());
    out.extend_from_slice(b",\"offset\":");
    match e.offset {
        Some(o) => write_u64(out, o),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"attempts\":");
    write_u64(out, e.attempts.into());
    out.push(b'}');
}

fn write_append(out: &mut Vec<u8>, e: &AppendEvent) {
    out.extend_from_slice(b"{\"broker\":");
    write_u64(out, e.broker.into());
    out.extend_from_slice(b",\"topic\":");
    write_str(out, &e.topic);
    out.extend_from_slice(b",\"partition\":");
    write_u64(out, e.partition.into());
    out.extend_from_slice(b",\"offset\":");
    write_u64(out, e.offset);
    out.extend_from_slice(b",\"id\":");
    write_id(out, e.id);
    out.extend_from_slice(b",\"leader_epoch\":");
    write_u64(out, e.leader_epoch.into());
    out.extend_from_slice(b",\"duplicate\":");
    out.extend_from_slice(if e.duplicate { b"true" } else { b"false" });
    out.push(b'}');
}

fn write_id(out: &mut Vec<u8>, id: RecordId) {
    out.extend_from_slice(b"{\"producer\":");
    write_u64(out, id.producer);
    out.extend_from_slice(b",\"n\":");
    write_u64(out, id.n);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        write(&mut out);
        String::from_utf8(out).unwrap()
    }

    const IDS: [RecordId; 2] = [
        RecordId { producer: 0, n: 0 },
        RecordId {
            producer: u64::MAX,
            n: 12_345,
        },
    ];

    #[test]
    fn writes_what_serde_writes() {
        for (i, id) in IDS.into_iter().enumerate() {
            let topic = ["orders", "we\"ird\\ \u{1} tópic"][i].to_string();
            for acks in [Acks::Zero, Acks::One, Acks::All] {
                for key in [None, Some("k-1".to_string()), Some("\"q\"\n".to_string())] {
                    let e = SendEvent {
                        producer: id.producer,
                        id,
                        topic: topic.clone(),
                        partition: u32::MAX,
                        key,
                        acks,
                    };
                    assert_eq!(
                        ours(|o| write_send(o, &e)),
                        serde_json::to_string(&e).unwrap()
                    );
                }
            }
            for offset in [None, Some(0), Some(u64::MAX)] {
                let e = AckEvent {
                    producer: 7,
                    id,
                    topic: topic.clone(),
                    partition: 2,
                    offset,
                    attempts: 3,
                };
                assert_eq!(
                    ours(|o| write_ack(o, &e)),
                    serde_json::to_string(&e).unwrap()
                );
            }
            for duplicate in [false, true] {
                let e = AppendEvent {
                    broker: u32::MAX,
                    topic: topic.clone(),
                    partition: 0,
                    offset: 99,
                    id,
                    leader_epoch: 4,
                    duplicate,
                };
                assert_eq!(
                    ours(|o| write_append(o, &e)),
                    serde_json::to_string(&e).unwrap()
                );
            }
            for n in 0..3 {
                let e = PollEvent {
                    consumer: format!("worker-{i}\t\"x\""),
                    group: topic.clone(),
                    records: (0..n)
                        .map(|k| PolledRecord {
                            topic: topic.clone(),
                            partition: u32::MAX - k,
                            offset: u64::MAX - u64::from(k),
                            id,
                        })
                        .collect(),
                };
                let records = e
                    .records
                    .iter()
                    .map(|r| (r.topic.as_str(), r.partition, r.offset, r.id));
                assert_eq!(
                    ours(|o| write_poll(o, &e.consumer, &e.group, records)),
                    serde_json::to_string(&e).unwrap()
                );
            }
        }
    }
}
