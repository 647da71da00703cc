//! Shared setup of the `queue_*` integration tests: cluster and client configurations
//! with the short timeouts the tests exercise, a producer of a range of values, a drain
//! of a consumer, and a wait for a condition in simulated time.

#![allow(dead_code)]

use sim_models::queue::{
    Acks, Cluster, Config, Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig, Record,
};
use sim_runtime::time::{self, Duration};

/// Three brokers that notice a dead peer within two seconds and drop a lagging follower
/// from the ISR after five.
pub fn replicated(min_isr: usize) -> Config {
    Config {
        brokers: 3,
        min_insync_replicas: min_isr,
        broker_heartbeat_interval: Duration::from_millis(500),
        broker_session_timeout: Duration::from_secs(2),
        replica_lag_time_max: Duration::from_secs(5),
        ..Config::default()
    }
}

/// A producer that retries quickly; idempotent with `acks=all`.
pub fn producer_config(acks: Acks) -> ProducerConfig {
    ProducerConfig {
        acks,
        idempotent: acks == Acks::All,
        request_timeout: Duration::from_secs(1),
        delivery_timeout: Duration::from_secs(30),
        ..ProducerConfig::default()
    }
}

/// A consumer that reads from the beginning, commits only when told, and is noticed
/// dead after three seconds.
pub fn group_config(client_id: &str) -> ConsumerConfig {
    ConsumerConfig {
        client_id: client_id.to_string(),
        auto_offset_reset: OffsetReset::Earliest,
        auto_commit_interval: None,
        session_timeout: Duration::from_secs(3),
        heartbeat_interval: Duration::from_millis(500),
        ..ConsumerConfig::default()
    }
}

/// A consumer that reads from the beginning and commits only when told, with a session
/// long enough that no test's pause expires it.
pub fn earliest() -> ConsumerConfig {
    ConsumerConfig {
        session_timeout: Duration::from_secs(10),
        heartbeat_interval: Duration::from_secs(1),
        ..group_config("consumer")
    }
}

/// A one-broker cluster with a one-partition topic `t` holding `values`.
pub async fn topic_with(values: std::ops::Range<u64>) -> Cluster<u64> {
    let cluster = sim_models::queue::start::<u64>("kafka", Config::default());
    cluster.create_topic("t", 1, 1).await.unwrap();
    produce(&cluster, "t", values).await;
    cluster
}

/// Sends `values` to `topic` one after another with the default (idempotent) producer.
pub async fn produce(cluster: &Cluster<u64>, topic: &str, values: std::ops::Range<u64>) {
    let producer = Producer::new(cluster.addrs(), ProducerConfig::default());
    for v in values {
        producer.send(topic, None, v).await.unwrap();
    }
}

/// Polls until `n` records arrived or `limit` of simulated time passed.
pub async fn drain<V: Clone + 'static>(
    c: &Consumer<V>,
    n: usize,
    limit: Duration,
) -> Vec<Record<V>> {
    let deadline = time::now() + limit;
    let mut out = Vec::new();
    while out.len() < n && time::now() < deadline {
        out.extend(c.poll(100, Duration::from_millis(500)).await.expect("poll"));
    }
    out
}

/// Joins group `g` as a new [`earliest`] consumer of topic `t` and drains it: the values
/// of the first `n` records, or of those that arrived within `limit`.
pub async fn read_all<V: Clone + 'static>(
    cluster: &Cluster<V>,
    n: usize,
    limit: Duration,
) -> Vec<V> {
    let consumer = Consumer::<V>::join(cluster.addrs(), "g", &["t"], earliest())
        .await
        .unwrap();
    values(&drain(&consumer, n, limit).await)
}

/// The values of `records`, in order.
pub fn values<V: Clone>(records: &[Record<V>]) -> Vec<V> {
    records.iter().map(|r| r.value.clone()).collect()
}

/// Waits until `done` holds, failing the test if `limit` of simulated time passes first.
pub async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = time::now() + limit;
    while !done() {
        assert!(
            time::now() < deadline,
            "condition not reached within {limit:?}"
        );
        time::sleep(Duration::from_millis(50)).await;
    }
}

/// Returns just after `leader` answered a fetch of `follower`'s: with a replica fetch
/// delay, the follower's next copy is then a whole delay away.
pub async fn after_follower_poll<V: Clone + 'static>(
    cluster: &Cluster<V>,
    leader: sim_models::queue::BrokerId,
    follower: sim_models::queue::BrokerId,
) {
    let answered = std::rc::Rc::new(std::cell::Cell::new(false));
    let (from, to, seen) = (
        cluster.broker_node(leader),
        cluster.broker_node(follower),
        std::rc::Rc::clone(&answered),
    );
    sim_net::add_rule(move |m| {
        if m.is_reply && m.src.node == from && m.dst.node == to {
            seen.set(true);
        }
        sim_net::Verdict::Pass
    });
    while !answered.get() {
        time::sleep(Duration::from_millis(1)).await;
    }
}
