//! The same seed gives the same trace, bit for bit, through every part of the queue:
//! replication, idempotent and non-idempotent producers, a consumer group with a crash
//! and a rebalance, and every broker fault verb.

use sim_models::queue::checker::{self, History};
use sim_models::queue::{
    start_cluster, Acks, Config, Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig,
};
use sim_runtime::node;
use sim_runtime::time::{self, Duration};
use sim_runtime::{trace, Sim};

fn workload(seed: u64) -> (u64, String) {
    let result = Sim::new(seed).run(|| async {
        let log = trace::capture_prefix("queue.");
        let config = Config {
            brokers: 3,
            min_insync_replicas: 2,
            broker_heartbeat_interval: Duration::from_millis(500),
            broker_session_timeout: Duration::from_secs(2),
            ..Config::default()
        };
        let cluster = start_cluster::<u64>("kafka", config);
        cluster.create_topic("orders", 3, 3).await.unwrap();
        let consumer_config = ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            session_timeout: Duration::from_secs(3),
            heartbeat_interval: Duration::from_millis(500),
            auto_commit_interval: Some(Duration::from_secs(1)),
            ..ConsumerConfig::default()
        };
        // A consumer on its own node, crashed and restarted below.
        let (c, cc) = (cluster.clone(), consumer_config.clone());
        let worker = node::node("worker").build(move || {
            let (cluster, config) = (c.clone(), cc.clone());
            async move {
                let consumer = Consumer::<u64>::join(cluster.addrs(), "g", &["orders"], config)
                    .await
                    .unwrap();
                loop {
                    let _ = consumer.poll(20, Duration::from_millis(300)).await;
                }
            }
        });
        let other = Consumer::<u64>::join(cluster.addrs(), "g", &["orders"], consumer_config)
            .await
            .unwrap();
        let idempotent = Producer::new(cluster.addrs(), ProducerConfig::default());
        let plain = Producer::new(
            cluster.addrs(),
            ProducerConfig {
                acks: Acks::One,
                idempotent: false,
                ..ProducerConfig::default()
            },
        );
        let producers = sim_runtime::spawn(async move {
            for i in 0..60u64 {
                let key = Some(format!("user-{}", i % 7));
                let _ = idempotent.send("orders", key, i).await;
                let _ = plain.send("orders", None, 1000 + i).await;
                time::sleep(Duration::from_millis(50)).await;
            }
        });
        time::sleep(Duration::from_millis(500)).await;
        cluster.broker(1).slow(Duration::from_millis(30));
        time::sleep(Duration::from_millis(500)).await;
        cluster.broker(1).fast();
        cluster.broker(2).pause();
        worker.kill();
        time::sleep(Duration::from_secs(1)).await;
        cluster.broker(2).resume();
        worker.restart();
        cluster.broker(0).crash();
        time::sleep(Duration::from_secs(1)).await;
        cluster.broker(0).restart();
        producers.await.unwrap();
        for _ in 0..10 {
            let _ = other.poll(50, Duration::from_millis(500)).await;
        }
        let report = checker::check(&History::from_log(&log));
        format!(
            "sent {} acked {} polled {} lost {} stored-twice {}",
            report.sent,
            report.acknowledged,
            report.polled,
            report.lost.len(),
            report.stored_twice().len()
        )
    });
    assert!(result.report.is_pass(), "{}", result.report);
    (result.report.fingerprint, result.output.unwrap())
}

#[test]
fn the_same_seed_gives_the_same_fingerprint() {
    for seed in [1, 2, 0x5eed] {
        let (a, summary_a) = workload(seed);
        let (b, summary_b) = workload(seed);
        assert_eq!(a, b, "seed {seed}: {summary_a} vs {summary_b}");
        assert_eq!(summary_a, summary_b);
    }
}
