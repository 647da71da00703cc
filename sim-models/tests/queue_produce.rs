//! Producer behaviour against a live cluster: per-partition order, keyed partitioning,
//! retries that duplicate without idempotence and do not with it, acks=0, typed errors.

use sim_models::queue::checker::{self, Duplicate};
use sim_models::queue::{
    start_cluster, Acks, Config, Consumer, ConsumerConfig, OffsetReset, ProduceError, Producer,
    ProducerConfig, Record,
};
use sim_runtime::time::{self, Duration};
use sim_runtime::{trace, Sim};

fn earliest() -> ConsumerConfig {
    ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        auto_commit_interval: None,
        session_timeout: Duration::from_secs(10),
        heartbeat_interval: Duration::from_secs(1),
        ..ConsumerConfig::default()
    }
}

/// Polls until `n` records arrived or `limit` of simulated time passed.
async fn drain<V: Clone + 'static>(c: &Consumer<V>, n: usize, limit: Duration) -> Vec<Record<V>> {
    let deadline = time::now() + limit;
    let mut out = Vec::new();
    while out.len() < n && time::now() < deadline {
        out.extend(c.poll(100, Duration::from_millis(500)).await.expect("poll"));
    }
    out
}

#[test]
fn order_within_a_partition_is_preserved() {
    let result = Sim::new(1).run(|| async {
        let log = trace::capture_prefix("queue.");
        let cluster = start_cluster::<u64>("kafka", Config::default());
        cluster.create_topic("orders", 3, 1).await.unwrap();
        let producer = Producer::new(cluster.addrs(), ProducerConfig::default());
        // Two concurrent producers' worth of keys: each key's records go to one partition.
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
        let report = checker::check(&checker::History::from_log(&log));
        assert!(report.is_valid(), "{report:?}");
        assert!(report.duplicates.is_empty() && report.unseen.is_empty());
        assert_eq!(report.acknowledged, 100);
    });
    assert!(result.report.is_pass(), "{}", result.report);
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
fn lost_ack_run(config: ProducerConfig) -> (Vec<u64>, checker::CheckReport) {
    let result = Sim::new(7).run(move || async move {
        let log = trace::capture_prefix("queue.");
        let cluster = start_cluster::<u64>("kafka", Config::default());
        cluster.create_topic("t", 1, 1).await.unwrap();
        let producer = Producer::new(cluster.addrs(), config);
        producer.send("t", None, 0).await.unwrap();
        lose_next_reply(cluster.broker(0).node(), sim_runtime::node::current());
        let meta = producer.send("t", None, 1).await.unwrap();
        producer.send("t", None, 2).await.unwrap();
        let consumer = Consumer::<u64>::join(cluster.addrs(), "g", &["t"], earliest())
            .await
            .unwrap();
        let values: Vec<u64> = drain(&consumer, 4, Duration::from_secs(5))
            .await
            .iter()
            .map(|r| r.value)
            .collect();
        let report = checker::check(&checker::History::from_log(&log));
        // The acknowledged offset is where the retry landed (or, idempotent, the first copy).
        assert_eq!(meta.offset, Some(if values.len() == 4 { 2 } else { 1 }));
        (values, report)
    });
    assert!(result.report.is_pass(), "{}", result.report);
    result.output.unwrap()
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

#[test]
fn non_idempotent_retry_after_a_lost_ack_duplicates_the_record() {
    for acks in [Acks::One, Acks::All] {
        let (values, report) = lost_ack_run(retrying(acks, false));
        assert_eq!(
            values,
            vec![0, 1, 1, 2],
            "acks {acks:?}: the retry wrote record 1 again"
        );
        assert_eq!(report.stored_twice().len(), 1, "{report:?}");
        assert!(
            matches!(report.stored_twice()[0], Duplicate::StoredTwice { offsets, .. } if offsets.len() == 2)
        );
        assert!(!report.is_valid());
    }
}

#[test]
fn idempotent_retry_after_a_lost_ack_does_not_duplicate() {
    let (values, report) = lost_ack_run(retrying(Acks::All, true));
    assert_eq!(values, vec![0, 1, 2]);
    assert!(report.duplicates.is_empty(), "{report:?}");
    assert!(report.is_valid());
}

#[test]
fn keyless_records_take_partitions_in_turn() {
    let result = Sim::new(2).run(|| async {
        let cluster = start_cluster::<u32>("kafka", Config::default());
        cluster.create_topic("t", 3, 1).await.unwrap();
        let producer = Producer::new(cluster.addrs(), ProducerConfig::default());
        let mut partitions = Vec::new();
        for i in 0..6 {
            partitions.push(producer.send("t", None, i).await.unwrap().partition);
        }
        partitions
    });
    assert_eq!(result.output, Some(vec![0, 1, 2, 0, 1, 2]));
}

#[test]
fn failures_surface_as_typed_errors() {
    let result = Sim::new(3).run(|| async {
        let cluster = start_cluster::<u32>("kafka", Config::default());
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
        cluster.broker(0).slow(Duration::from_secs(1));
        assert_eq!(once.send("t", None, 3).await, Err(ProduceError::Timeout));
        cluster.broker(0).fast();
        once.send("t", None, 4).await.unwrap();

        // A crashed broker refuses connections at once; with retries the delivery
        // timeout ends the send.
        cluster.broker(0).crash();
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
        cluster.broker(0).restart();
        let meta = producer.send("t", None, 7).await.unwrap();
        assert!(
            meta.offset.unwrap() >= 3,
            "earlier records survived the crash: {meta:?}"
        );
    });
    assert!(result.report.is_pass(), "{}", result.report);
}

#[test]
fn acks_0_does_not_wait_and_can_lose_records_silently() {
    let result = Sim::new(4).run(|| async {
        let log = trace::capture_prefix("queue.");
        let cluster = start_cluster::<u32>("kafka", Config::default());
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
        cluster.broker(0).crash();
        // Fire and forget into a dead broker: no error, and nothing stored.
        assert!(producer.send("t", None, 2).await.unwrap().offset.is_none());
        time::sleep(Duration::from_millis(100)).await;
        cluster.broker(0).restart();
        let consumer = Consumer::<u32>::join(cluster.addrs(), "g", &["t"], earliest())
            .await
            .unwrap();
        let values: Vec<u32> = drain(&consumer, 2, Duration::from_secs(15))
            .await
            .iter()
            .map(|r| r.value)
            .collect();
        assert_eq!(values, vec![1]);
        // Unacknowledged records are not promised, so the checker reports no loss.
        let report = checker::check(&checker::History::from_log(&log));
        assert!(report.is_valid() && report.unseen.is_empty(), "{report:?}");
    });
    assert!(result.report.is_pass(), "{}", result.report);
}
