//! The same seed gives the same trace, bit for bit, through every part of the queue:
//! replication, idempotent and non-idempotent producers, a consumer group with a crash
//! and a rebalance, and every broker fault verb. And a broker's crash is its node's
//! death: `Cluster::crash` and `node.kill()` on the broker's node trace identically.

mod queue_support;

use queue_support::replicated;
use sim_models::queue::checker::Checker;
use sim_models::queue::events::CrashEvent;
use sim_models::queue::{
    self, Acks, Cluster, Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig,
};
use sim_runtime::node;
use sim_runtime::time::{self, Duration};
use sim_runtime::{trace, Sim};

/// How the workload crashes and restarts a broker.
#[derive(Clone, Copy)]
enum Kill {
    /// The cluster's verbs.
    Verbs,
    /// `node.kill()` and `node.restart()` on the broker's node, as a fault schedule would.
    Node,
}

fn crash(cluster: &Cluster<u64>, b: u32, how: Kill) {
    match how {
        Kill::Verbs => cluster.crash(b),
        Kill::Node => cluster.broker_node(b).kill(),
    }
}

fn restart(cluster: &Cluster<u64>, b: u32, how: Kill) {
    match how {
        Kill::Verbs => cluster.restart(b),
        Kill::Node => cluster.broker_node(b).restart(),
    }
}

/// Runs the workload under `seed`; returns the fingerprint, the checker's summary and
/// the crash events.
fn workload(seed: u64, how: Kill) -> (u64, String, Vec<CrashEvent>) {
    let result = Sim::new(seed).run(move || async move {
        let checker = Checker::capture();
        let crashes = trace::capture::<CrashEvent>();
        let cluster = queue::start::<u64>("kafka", replicated(2));
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
        cluster.slow(1, Duration::from_millis(30));
        time::sleep(Duration::from_millis(500)).await;
        cluster.fast(1);
        cluster.pause(2);
        worker.kill();
        time::sleep(Duration::from_secs(1)).await;
        cluster.resume(2);
        worker.restart();
        crash(&cluster, 0, how);
        time::sleep(Duration::from_secs(1)).await;
        restart(&cluster, 0, how);
        producers.await.unwrap();
        for _ in 0..10 {
            let _ = other.poll(50, Duration::from_millis(500)).await;
        }
        let report = checker.check();
        let summary = format!(
            "sent {} acked {} polled {} lost {} stored-twice {}",
            report.sent,
            report.acknowledged,
            report.polled,
            report.lost.len(),
            report.stored_twice().len()
        );
        (summary, crashes.values())
    });
    assert!(result.report.is_pass(), "{}", result.report);
    let (summary, crashes) = result.output.unwrap();
    (result.report.fingerprint, summary, crashes)
}

#[test]
fn the_same_seed_gives_the_same_fingerprint() {
    for seed in [1, 2, 0x5eed] {
        let (a, summary_a, _) = workload(seed, Kill::Verbs);
        let (b, summary_b, _) = workload(seed, Kill::Verbs);
        assert_eq!(a, b, "seed {seed}: {summary_a} vs {summary_b}");
        assert_eq!(summary_a, summary_b);
    }
}

#[test]
fn a_crash_verb_and_a_node_kill_trace_identically() {
    for seed in [3, 4] {
        let (verbs, summary, crashes) = workload(seed, Kill::Verbs);
        let (node, _, node_crashes) = workload(seed, Kill::Node);
        assert_eq!(verbs, node, "seed {seed}: {summary}");
        assert_eq!(crashes, node_crashes);
        // One crash event, for broker 0, naming what it held in memory.
        assert_eq!(crashes.len(), 1, "{crashes:?}");
        assert_eq!(
            (crashes[0].cluster.as_str(), crashes[0].broker),
            ("kafka", 0)
        );
        assert!(!crashes[0].leaderships.is_empty(), "{crashes:?}");
    }
}
