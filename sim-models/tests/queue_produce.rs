//! Producer behaviour against a live cluster: per-partition order, keyed partitioning,
//! retries that duplicate without idempotence and do not with it, acks=0, typed errors.

mod queue_support;

use queue_support::{drain, earliest, read_all};
use sim_models::queue::checker::{CheckReport, Checker, Duplicate};
use sim_models::queue::{self, Acks, Config, Consumer, ProduceError, Producer, ProducerConfig};
use sim_runtime::time::{self, Duration};

#[sim_runtime::test]
async fn order_within_a_partition_is_preserved() {
    let checker = Checker::capture();
    let cluster = queue::start::<u64>("kafka", Config::default());
    cluster.create_topic("orders", 3, 1).await.unwrap();
    let producer = Producer::new(cluster.addrs(), ProducerConfig::default());
    // Four concurrent senders' worth of keys: each key's records go to one partition.
    let mut handles = Vec::new();
    for k in 0..4u64 {
        let p = producer.clone();
        handles.push(sim_runtime::spawn(async move {
            let mut partitions = Vec::new();
            for i in 0..25u64 {
                let meta = p
                    .send("orders", Some(format!("user-{k}")), k * 1000 + i)
                    .await
                    .unwrap();
                partitions.push(meta.partition);
            }
            partitions
        }));
    }
    for h in handles {
        let partitions = h.await.unwrap();
        assert!(
            partitions.windows(2).all(|w| w[0] == w[1]),
            "one key, one partition"
        );
    }
    let consumer = Consumer::<u64>::join(cluster.addrs(), "g", &["orders"], earliest())
        .await
        .unwrap();
    let records = drain(&consumer, 100, Duration::from_secs(30)).await;
    assert_eq!(records.len(), 100);
    for k in 0..4u64 {
        let mine: Vec<u64> = records
            .iter()
            .filter(|r| r.value / 1000 == k)
            .map(|r| r.value % 1000)
            .collect();
        assert_eq!(mine, (0..25).collect::<Vec<_>>(), "key {k} in send order");
    }
    let report = checker.check();
    assert!(report.is_valid(), "{report:?}");
    assert!(report.duplicates.is_empty() && report.unseen.is_empty());
    assert_eq!(report.acknowledged, 100);
}

/// Drops the next reply `from` sends to `to`: one lost acknowledgement.
fn lose_next_reply(from: sim_runtime::NodeId, to: sim_runtime::NodeId) {
    let mut armed = true;
    sim_net::add_rule(move |m| {
        if armed && m.is_reply && m.src.node == from && m.dst.node == to {
            armed = false;
            sim_net::Verdict::Drop
        } else {
            sim_net::Verdict::Pass
        }
    });
}

/// Sends record 0, loses the acknowledgement of record 1, sends record 2; returns the
/// values a consumer finds and the checker's report.
async fn lost_ack_run(config: ProducerConfig) -> (Vec<u64>, CheckReport) {
    let checker = Checker::capture();
    let cluster = queue::start::<u64>("kafka", Config::default());
    cluster.create_topic("t", 1, 1).await.unwrap();
    let producer = Producer::new(cluster.addrs(), config);
    producer.send("t", None, 0).await.unwrap();
    lose_next_reply(cluster.broker_node(0), sim_runtime::node::current());
    let meta = producer.send("t", None, 1).await.unwrap();
    producer.send("t", None, 2).await.unwrap();
    let found = read_all(&cluster, 4, Duration::from_secs(5)).await;
    // The acknowledged offset is where the retry landed (or, idempotent, the first copy).
    assert_eq!(meta.offset, Some(if found.len() == 4 { 2 } else { 1 }));
    (found, checker.check())
}

fn retrying(acks: Acks, idempotent: bool) -> ProducerConfig {
    ProducerConfig {
        acks,
        idempotent,
        request_timeout: Duration::from_secs(1),
        retry_backoff: Duration::from_millis(100),
        delivery_timeout: Duration::from_secs(10),
        ..ProducerConfig::default()
    }
}

/// A non-idempotent retry after a lost acknowledgement stores the record twice, and the
/// checker says so.
async fn assert_retry_duplicates(acks: Acks) {
    let (found, report) = lost_ack_run(retrying(acks, false)).await;
    assert_eq!(
        found,
        vec![0, 1, 1, 2],
        "acks {acks:?}: the retry wrote record 1 again"
    );
    assert_eq!(report.stored_twice().len(), 1, "{report:?}");
    assert!(
        matches!(report.stored_twice()[0], Duplicate::StoredTwice { offsets, .. } if offsets.len() == 2)
    );
    assert!(!report.is_valid());
}

#[sim_runtime::test]
async fn non_idempotent_retry_after_a_lost_ack_duplicates_the_record_with_acks_1() {
    assert_retry_duplicates(Acks::One).await;
}

#[sim_runtime::test]
async fn non_idempotent_retry_after_a_lost_ack_duplicates_the_record_with_acks_all() {
    assert_retry_duplicates(Acks::All).await;
}

#[sim_runtime::test]
async fn idempotent_retry_after_a_lost_ack_does_not_duplicate() {
    let (found, report) = lost_ack_run(retrying(Acks::All, true)).await;
    assert_eq!(found, vec![0, 1, 2]);
    assert!(report.duplicates.is_empty(), "{report:?}");
    assert!(report.is_valid());
}

#[sim_runtime::test]
async fn keyless_records_take_partitions_in_turn() {
    let cluster = queue::start::<u32>("kafka", Config::default());
    cluster.create_topic("t", 3, 1).await.unwrap();
    let producer = Producer::new(cluster.addrs(), ProducerConfig::default());
    let mut partitions = Vec::new();
    for i in 0..6 {
        partitions.push(producer.send("t", None, i).await.unwrap().partition);
    }
    assert_eq!(partitions, vec![0, 1, 2, 0, 1, 2]);
}

#[sim_runtime::test]
async fn failures_surface_as_typed_errors() {
    let cluster = queue::start::<u32>("kafka", Config::default());
    cluster.create_topic("t", 1, 1).await.unwrap();
    let quick = ProducerConfig {
        delivery_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_millis(500),
        ..ProducerConfig::default()
    };
    let producer = Producer::new(cluster.addrs(), quick.clone());
    assert_eq!(
        producer.send("nope", None, 1).await,
        Err(ProduceError::UnknownTopic)
    );
    producer.send("t", None, 1).await.unwrap();

    // A slow broker: one attempt and no retries times out; back to fast, it works.
    let once = Producer::new(
        cluster.addrs(),
        ProducerConfig {
            retries: 0,
            ..quick.clone()
        },
    );
    once.send("t", None, 2).await.unwrap();
    cluster.slow(0, Duration::from_secs(1));
    assert_eq!(once.send("t", None, 3).await, Err(ProduceError::Timeout));
    cluster.fast(0);
    once.send("t", None, 4).await.unwrap();

    // A crashed broker refuses connections at once; with retries the delivery timeout
    // ends the send.
    cluster.crash(0);
    assert_eq!(
        once.send("t", None, 5).await,
        Err(ProduceError::BrokerUnavailable)
    );
    let started = time::now();
    assert_eq!(
        producer.send("t", None, 6).await,
        Err(ProduceError::Timeout)
    );
    assert!(time::now() - started <= Duration::from_secs(2));

    // Restarted, it has its log back and takes writes again.
    cluster.restart(0);
    let meta = producer.send("t", None, 7).await.unwrap();
    assert!(
        meta.offset.unwrap() >= 3,
        "earlier records survived the crash: {meta:?}"
    );
}

#[sim_runtime::test]
async fn acks_0_does_not_wait_and_can_lose_records_silently() {
    let checker = Checker::capture();
    let cluster = queue::start::<u32>("kafka", Config::default());
    cluster.create_topic("t", 1, 1).await.unwrap();
    let config = ProducerConfig {
        acks: Acks::Zero,
        idempotent: false,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(cluster.addrs(), config);
    let meta = producer.send("t", None, 1).await.unwrap();
    assert_eq!(meta.offset, None, "nobody told the producer");
    time::sleep(Duration::from_millis(100)).await;
    cluster.crash(0);
    // Fire and forget into a dead broker: no error, and nothing stored.
    assert!(producer.send("t", None, 2).await.unwrap().offset.is_none());
    time::sleep(Duration::from_millis(100)).await;
    cluster.restart(0);
    let found = read_all(&cluster, 2, Duration::from_secs(15)).await;
    assert_eq!(found, vec![1]);
    // Unacknowledged records are not promised, so the checker reports no loss.
    let report = checker.check();
    assert!(report.is_valid() && report.unseen.is_empty(), "{report:?}");
}
