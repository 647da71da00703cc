//! The shared vocabulary of the queue model: broker ids, topic-partitions, record
//! identities, acknowledgement levels and the records clients see.

use std::fmt;

use serde::{Deserialize, Serialize};
use sim_net::Addr;
use sim_runtime::time::Instant;

/// A broker's index in its cluster: `0..Config::brokers`.
pub type BrokerId = u32;

/// One partition of one topic: the unit of ordering, replication and assignment.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: u32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: u32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A record's identity for checkers: which producer sent it and its position among that
/// producer's `send` calls.
///
/// Kafka has no such field. The simulation stamps every `send` with one (as Jepsen's
/// workload makes every value unique) so that a checker can follow a record from send to
/// acknowledgement to poll without looking inside the value. It is not the idempotence
/// sequence number: a retried send keeps its id, a second `send` of the same value gets a
/// new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordId {
    pub producer: u64,
    pub n: u64,
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}#{}", self.producer, self.n)
    }
}

/// How many replicas must have a record before the leader acknowledges it (`acks`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Acks {
    /// `acks=0`: the producer does not wait for any answer; the record may be lost
    /// silently and `send` returns no offset.
    #[serde(rename = "0")]
    Zero,
    /// `acks=1`: the leader acknowledges once the record is in its own log. A leader crash
    /// before followers copy it loses the record although it was acknowledged.
    #[serde(rename = "1")]
    One,
    /// `acks=all` (-1): the leader acknowledges once every in-sync replica has the record,
    /// and refuses writes while the ISR is smaller than `min.insync.replicas`.
    #[serde(rename = "all")]
    All,
}

/// A record as a consumer sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Record<V> {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub key: Option<String>,
    pub value: V,
    /// The simulation-only identity stamped by the producer (see [`RecordId`]).
    pub id: RecordId,
    /// When the leader appended it (simulated time, the broker's `LogAppendTime`).
    pub timestamp: Instant,
}

impl<V> Record<V> {
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(self.topic.clone(), self.partition)
    }
}

/// Where an acknowledged record landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordMeta {
    pub partition: u32,
    /// The record's offset; `None` with `acks=0`, where Kafka reports -1 because nobody
    /// told the producer.
    pub offset: Option<u64>,
    pub id: RecordId,
}

/// A cluster's broker addresses, in broker id order, typed by the cluster's record value.
///
/// Clients bootstrap from it. The type parameter ties a producer or consumer to the
/// cluster it talks to, so that a `Producer<i32>` cannot be pointed at a cluster of `u32`
/// records (typed messages on sim-net would only find out at run time).
pub struct ClusterAddrs<V> {
    addrs: Vec<Addr>,
    _values: std::marker::PhantomData<fn() -> V>,
}

impl<V> ClusterAddrs<V> {
    /// Addresses of every broker, in broker id order.
    pub fn new(addrs: Vec<Addr>) -> Self {
        ClusterAddrs {
            addrs,
            _values: std::marker::PhantomData,
        }
    }

    pub fn addrs(&self) -> &[Addr] {
        &self.addrs
    }
}

impl<V> Clone for ClusterAddrs<V> {
    fn clone(&self) -> Self {
        ClusterAddrs::new(self.addrs.clone())
    }
}

impl<V> fmt::Debug for ClusterAddrs<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.addrs.iter().map(|a| a.to_string()))
            .finish()
    }
}
