//! Errors: the codes brokers answer with (Kafka's names) and the typed errors clients
//! return to service code once retries are exhausted. A network failure reaches them only
//! as a [`ConnectionFailure`], through one `From` per client error.

use sim_net::ConnectionFailure;
use thiserror::Error;

use super::types::TopicPartition;

/// A broker's error answer, as in Kafka's protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub(crate) enum ErrorCode {
    #[error("NOT_LEADER_OR_FOLLOWER")]
    NotLeaderOrFollower,
    #[error("UNKNOWN_TOPIC_OR_PARTITION")]
    UnknownTopicOrPartition,
    #[error("NOT_ENOUGH_REPLICAS")]
    NotEnoughReplicas,
    #[error("NOT_ENOUGH_REPLICAS_AFTER_APPEND")]
    NotEnoughReplicasAfterAppend,
    #[error("REQUEST_TIMED_OUT")]
    RequestTimedOut,
    #[error("OUT_OF_ORDER_SEQUENCE_NUMBER")]
    OutOfOrderSequence,
    #[error("OFFSET_OUT_OF_RANGE")]
    OffsetOutOfRange,
    #[error("NOT_COORDINATOR")]
    NotCoordinator,
    #[error("COORDINATOR_NOT_AVAILABLE")]
    CoordinatorNotAvailable,
    #[error("UNKNOWN_MEMBER_ID")]
    UnknownMemberId,
}

/// Why a `send` failed for good (after the producer's retries).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ProduceError {
    /// `delivery.timeout.ms` passed before an acknowledgement (or the last request timed
    /// out with no retries left). The record may or may not have been written.
    #[error("delivery timed out")]
    Timeout,
    /// The broker asked was not the partition's leader, and retries ran out.
    #[error("not the leader for the partition")]
    NotLeader,
    /// No broker could be reached (refused, reset or unreachable), and retries ran out.
    #[error("broker unavailable")]
    BrokerUnavailable,
    /// `acks=all` with fewer in-sync replicas than `min.insync.replicas`; nothing written.
    #[error("not enough in-sync replicas")]
    NotEnoughReplicas,
    /// Written on the leader, but the ISR shrank below `min.insync.replicas` before the
    /// acknowledgement; a retry may duplicate the record.
    #[error("not enough in-sync replicas after append")]
    NotEnoughReplicasAfterAppend,
    /// The topic does not exist (or has no partition with that number).
    #[error("unknown topic or partition")]
    UnknownTopic,
    /// The idempotent producer's sequence broke (its earlier records were lost).
    #[error("out of order sequence number")]
    OutOfOrderSequence,
}

impl From<ConnectionFailure> for ProduceError {
    fn from(f: ConnectionFailure) -> Self {
        match f {
            ConnectionFailure::Timeout => ProduceError::Timeout,
            ConnectionFailure::Refused
            | ConnectionFailure::Reset
            | ConnectionFailure::Unreachable => ProduceError::BrokerUnavailable,
        }
    }
}

/// Why a consumer call failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConsumeError {
    /// The group's coordinator could not be found or reached in time.
    #[error("group coordinator unavailable")]
    CoordinatorUnavailable,
    /// The commit was refused because the group rebalanced without this member (its
    /// session expired): its partitions may already be someone else's. Kafka's
    /// `CommitFailedException`.
    #[error("commit failed: the group rebalanced")]
    CommitFailed,
    /// A request timed out.
    #[error("request timed out")]
    Timeout,
    /// The topic does not exist.
    #[error("unknown topic")]
    UnknownTopic,
    /// `seek` on a partition this consumer does not own.
    #[error("partition {0} is not assigned to this consumer")]
    NotAssigned(TopicPartition),
}

/// The consumer's calls that can fail for good are those to its group coordinator (a
/// fetch that fails is retried inside `poll`), so a connection that fails means the
/// coordinator is unavailable, or the call timed out.
impl From<ConnectionFailure> for ConsumeError {
    fn from(f: ConnectionFailure) -> Self {
        match f {
            ConnectionFailure::Timeout => ConsumeError::Timeout,
            ConnectionFailure::Refused
            | ConnectionFailure::Reset
            | ConnectionFailure::Unreachable => ConsumeError::CoordinatorUnavailable,
        }
    }
}

/// Why a topic could not be created.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum AdminError {
    #[error("topic {0} already exists")]
    TopicExists(String),
    #[error("replication factor {replication} is larger than the {brokers} brokers")]
    InvalidReplicationFactor { replication: usize, brokers: usize },
    #[error("a topic needs at least one partition")]
    InvalidPartitions,
}
