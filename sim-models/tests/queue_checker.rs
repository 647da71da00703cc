//! The checker reads a live run's typed events: a clean run passes, and a bug planted in
//! the trace (an acknowledgement for a record no consumer finds at its offset, a second
//! copy of a stored record) is reported.

mod queue_support;

use std::borrow::Cow;

use queue_support::{drain, earliest, topic_with};
use sim_models::queue::checker::{Checker, Duplicate, Lost};
use sim_models::queue::events::{AckEvent, PollEvent, PolledRecord, SendEvent};
use sim_models::queue::{Acks, Cluster, Consumer, Record, RecordId};
use sim_runtime::time::Duration;
use sim_runtime::trace;

/// Five records sent and read back through a one-broker cluster, the checker capturing.
async fn clean_run() -> (Checker, Cluster<u64>, Vec<Record<u64>>) {
    let checker = Checker::capture();
    let cluster = topic_with(0..5).await;
    let consumer = Consumer::<u64>::join(cluster.addrs(), "g", &["t"], earliest())
        .await
        .unwrap();
    let records = drain(&consumer, 5, Duration::from_secs(10)).await;
    assert_eq!(records.len(), 5);
    let report = checker.check();
    assert!(report.is_valid(), "{report:#?}");
    assert_eq!((report.sent, report.acknowledged, report.polled), (5, 5, 5));
    (checker, cluster, records)
}

#[sim_runtime::test]
async fn an_acknowledged_record_missing_where_consumers_read_is_lost() {
    let (checker, _cluster, records) = clean_run().await;
    // A producer that says its record was acknowledged at offset 2, which consumers read
    // holding another record: what a leader's truncation of an `acks=1` write looks like.
    let planted = RecordId {
        producer: 999,
        n: 0,
    };
    trace::emit(&SendEvent {
        producer: 999,
        id: planted,
        topic: Cow::Borrowed("t"),
        partition: 0,
        key: None,
        acks: Acks::One,
    });
    trace::emit(&AckEvent {
        producer: 999,
        id: planted,
        topic: Cow::Borrowed("t"),
        partition: 0,
        offset: Some(2),
        attempts: 1,
    });
    let report = checker.check();
    assert!(!report.is_valid());
    assert_eq!(report.lost.len(), 1, "{report:#?}");
    let Lost {
        id,
        offset,
        overwritten_by,
        ..
    } = &report.lost[0];
    assert_eq!((*id, *offset), (planted, 2));
    assert_eq!(*overwritten_by, Some(records[2].id));
}

#[sim_runtime::test]
async fn a_record_delivered_at_a_second_offset_is_stored_twice() {
    let (checker, _cluster, records) = clean_run().await;
    // Another consumer polls record 1's id again at offset 5: it was written twice.
    let copy = &records[1];
    trace::emit(&PollEvent {
        consumer: "planted".to_string(),
        group: "g".to_string(),
        records: vec![PolledRecord {
            topic: copy.topic.clone(),
            partition: copy.partition,
            offset: 5,
            id: copy.id,
        }],
    });
    let report = checker.check();
    assert!(!report.is_valid());
    assert_eq!(
        report.stored_twice(),
        vec![&Duplicate::StoredTwice {
            id: copy.id,
            offsets: vec![(copy.topic_partition(), 1), (copy.topic_partition(), 5)],
        }]
    );
}
