//! The cluster's configuration. `Default` is a single healthy broker with Kafka's own
//! defaults where Kafka has one; tests shorten the timeouts they exercise.

use serde::{Deserialize, Serialize};
use sim_runtime::time::Duration;

/// How a cluster is built and how its brokers and controller behave.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Number of brokers. One by default; three gives replication a meaning.
    pub brokers: usize,
    /// The port every broker listens on (`9092`).
    pub port: u16,
    /// The port of the controller node, which brokers heartbeat to.
    pub controller_port: u16,
    /// `min.insync.replicas`: with `acks=all`, writes are refused while the partition's ISR
    /// is smaller than this. Kafka's default is 1.
    pub min_insync_replicas: usize,
    /// `replica.lag.time.max.ms`: a follower that has not caught up with the leader's log
    /// end for this long leaves the ISR.
    pub replica_lag_time_max: Duration,
    /// `replica.fetch.wait.max.ms`: how long a leader holds a follower's fetch open when
    /// it has nothing new.
    pub replica_fetch_wait_max: Duration,
    /// Replica lag: when non-zero, a follower polls its leader every this long instead of
    /// keeping a fetch parked there. Zero in Kafka; raising it widens the window in which
    /// a record acknowledged with `acks=1` exists only on the leader.
    pub replica_fetch_delay: Duration,
    /// How often a broker heartbeats to the controller (it also fetches metadata then).
    pub broker_heartbeat_interval: Duration,
    /// `broker.session.timeout.ms`: a broker silent this long is fenced and loses its
    /// leaderships. A crashed leader stays unavailable for about this long.
    pub broker_session_timeout: Duration,
    /// Timeout of broker-to-broker and broker-to-controller requests.
    pub internal_request_timeout: Duration,
    /// Partitions of the internal `__consumer_offsets` topic.
    pub offsets_topic_partitions: u32,
    /// Replication factor of `__consumer_offsets` (capped at the number of brokers).
    pub offsets_topic_replication: usize,
    /// `unclean.leader.election.enable`: when no in-sync replica is alive, elect any live
    /// replica (losing what it lacks) instead of staying offline.
    pub unclean_leader_election: bool,
    /// Most entries one fetch returns per partition.
    pub fetch_max_entries: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            brokers: 1,
            port: 9092,
            controller_port: 9093,
            min_insync_replicas: 1,
            replica_lag_time_max: Duration::from_secs(30),
            replica_fetch_wait_max: Duration::from_millis(500),
            replica_fetch_delay: Duration::ZERO,
            broker_heartbeat_interval: Duration::from_secs(2),
            broker_session_timeout: Duration::from_secs(9),
            internal_request_timeout: Duration::from_secs(30),
            offsets_topic_partitions: 1,
            offsets_topic_replication: 3,
            unclean_leader_election: false,
            fetch_max_entries: 500,
        }
    }
}

impl Config {
    /// Three brokers, as a replicated cluster is usually run.
    pub fn three_brokers() -> Self {
        Config {
            brokers: 3,
            ..Config::default()
        }
    }
}
