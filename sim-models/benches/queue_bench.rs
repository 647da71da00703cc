//! End-to-end throughput of the queue model: records produced, replicated, fetched and
//! consumed per second of wall-clock time, on one broker with `acks=1` and on three
//! brokers with `acks=all` and `min.insync.replicas=2`.
//!
//! Run with `cargo bench -p sim-models --bench queue_bench`.

use std::cell::Cell;
use std::rc::Rc;

use sim_models::queue::{
    self, Acks, Config, Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig,
};
use sim_runtime::time::Duration;
use sim_runtime::{Sim, SimConfig};

const RECORDS: u64 = 20_000;
const PRODUCERS: u64 = 8;
const PARTITIONS: u32 = 6;

/// Produces `RECORDS` records from `PRODUCERS` concurrent tasks and consumes them with a
/// two-member group; returns the simulated seconds it took and the events traced.
fn run(config: Config, acks: Acks) -> (f64, u64) {
    let replication = config.brokers;
    let sim = SimConfig {
        trace_polls: false,
        ..SimConfig::default()
    };
    let result = Sim::new(42).config(sim).run(move || async move {
        let cluster = queue::start::<u64>("kafka", config);
        cluster
            .create_topic("bench", PARTITIONS, replication)
            .await
            .unwrap();
        let producer_config = ProducerConfig {
            acks,
            idempotent: acks == Acks::All,
            ..ProducerConfig::default()
        };
        let mut tasks = Vec::new();
        for p in 0..PRODUCERS {
            let producer = Producer::new(cluster.addrs(), producer_config.clone());
            tasks.push(sim_runtime::spawn(async move {
                for i in 0..RECORDS / PRODUCERS {
                    let key = Some(format!("key-{}", (p * 7919 + i) % 1000));
                    producer.send("bench", key, i).await.unwrap();
                }
            }));
        }
        let consumed = Rc::new(Cell::new(0u64));
        let consumer_config = ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            auto_commit_interval: Some(Duration::from_secs(1)),
            ..ConsumerConfig::default()
        };
        for _ in 0..2 {
            let (cluster, consumed, config) = (
                cluster.clone(),
                Rc::clone(&consumed),
                consumer_config.clone(),
            );
            tasks.push(sim_runtime::spawn(async move {
                let consumer = Consumer::<u64>::join(cluster.addrs(), "bench", &["bench"], config)
                    .await
                    .unwrap();
                while consumed.get() < RECORDS {
                    let batch = consumer
                        .poll(500, Duration::from_millis(200))
                        .await
                        .unwrap();
                    consumed.set(consumed.get() + batch.len() as u64);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(consumed.get(), RECORDS);
    });
    assert!(result.report.is_pass(), "{}", result.report);
    let simulated = result.report.time.as_nanos() as f64 / 1e9;
    (simulated, result.report.events)
}

// Wall-clock time is what a benchmark measures; it never reaches simulated code.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
fn measure(name: &str, config: Config, acks: Acks) {
    let started = std::time::Instant::now();
    let (simulated, events) = run(config, acks);
    let wall = started.elapsed().as_secs_f64();
    println!(
        "{name}: {RECORDS} records produced and consumed in {wall:.3} s wall ({:.0} records/s), \
         {simulated:.2} s simulated, {events} trace events ({:.0} events/s)",
        RECORDS as f64 / wall,
        events as f64 / wall,
    );
}

fn main() {
    measure("1 broker, acks=1", Config::default(), Acks::One);
    measure(
        "3 brokers, acks=all, min ISR 2",
        Config {
            brokers: 3,
            min_insync_replicas: 2,
            ..Config::default()
        },
        Acks::All,
    );
}
