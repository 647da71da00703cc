//! # queue: a Kafka-like log
//!
//! Topics with partitions, each an append-only log with dense offsets, kept by broker
//! nodes on sim-net; a producer with `acks` 0/1/all, retries and idempotence; consumer
//! groups with server-side assignment, heartbeats, session timeouts, commits and seeks;
//! replication with leaders, in-sync replica sets, `min.insync.replicas` and clean leader
//! election; and the failures of all of these, as Kafka documents them.
//!
//! ```text
//! Cluster::create_topic ─> controller ──metadata──> brokers ──replica fetch──> brokers
//!                              ^ heartbeats            ^ produce / fetch / group requests
//!                                                      │
//!                                          Producer, Consumer (on any node)
//! ```
//!
//! Map of the module:
//! - [`start`] starts a cluster and returns its handle, [`Cluster`]: topics, inspection,
//!   and the broker fault verbs in pairs (`crash`/`restart`, `pause`/`resume`,
//!   `slow`/`fast`).
//! - [`config`]: the cluster's [`Config`] (Default: one broker, no faults).
//! - [`types`]: topic-partitions, [`RecordId`]s, [`Record`]s, [`Acks`].
//! - `log` (private): one replica's log, leader epochs, idempotent producer state.
//! - `state` (private): the broker state machine (replication, high watermark, ISR,
//!   group coordination); `controller` (private): liveness and leader election.
//! - [`group`]: membership, session expiry, `range`/`roundrobin` assignment.
//! - `broker`, `cluster`: the async shells, and the lifecycle hook that decides what a
//!   broker's crash loses.
//! - [`producer`], [`consumer`]: the clients. [`partitioner`]: murmur2 as in Kafka.
//! - [`events`]: the typed `queue.*` trace events; [`checker`]: loss, duplicate and order
//!   checks over their captures, after Jepsen's Kafka workload.
//!
//! Record values are generic (`V: Clone + 'static`): the simulation moves typed values,
//! nothing is serialized. Every record also carries a simulation-only [`RecordId`] so
//! that checkers can follow it without looking at the value.
//!
//! What differs from Kafka, on purpose: one record per produce request (no batching or
//! linger), at most one request in flight per partition per producer, no transactions,
//! no retention or compaction, no log flush policy (a crash keeps every appended record,
//! as a process crash keeps the page cache), the controller cannot fail, and group
//! assignment is computed by the coordinator (as in KIP-848) rather than by a leader member.

pub mod checker;
pub mod config;
pub mod consumer;
pub mod error;
pub mod events;
pub mod group;
pub mod partitioner;
pub mod producer;
pub mod types;

mod broker;
mod cluster;
mod controller;
mod log;
mod protocol;
mod signal;
mod state;

pub use cluster::{start, Cluster};
pub use config::Config;
pub use consumer::{Consumer, ConsumerConfig, OffsetReset};
pub use error::{AdminError, ConsumeError, ProduceError};
pub use group::Assignor;
pub use producer::{Producer, ProducerConfig};
pub use state::OFFSETS_TOPIC;
pub use types::{Acks, BrokerId, ClusterAddrs, Record, RecordId, RecordMeta, TopicPartition};
