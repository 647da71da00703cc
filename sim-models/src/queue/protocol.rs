//! The messages between clients, brokers and the controller. Typed values on sim-net
//! (nothing is serialized); one request enum per server so that each listens on one port.

use std::collections::BTreeSet;

use sim_runtime::time::Duration;

use super::controller::{AlterIsrError, ClusterMetadata, PartitionState};
use super::error::ErrorCode;
use super::group::{Assignment, Assignor};
use super::state::{IsrProposal, NewRecord, ReplicaFetch};
use super::types::{Acks, BrokerId, Record, TopicPartition};

/// A request to a broker.
#[derive(Clone, Debug)]
pub(crate) enum Request<V> {
    Metadata,
    Produce {
        tp: TopicPartition,
        acks: Acks,
        record: NewRecord<V>,
        timeout: Duration,
    },
    /// A consumer's fetch of several partitions led by this broker.
    Fetch {
        partitions: Vec<(TopicPartition, u64)>,
        max_wait: Duration,
        max_records: usize,
    },
    ReplicaFetch {
        follower: BrokerId,
        tp: TopicPartition,
        fetch_offset: u64,
        last_fetched_epoch: Option<u32>,
        max_wait: Duration,
    },
    ListOffsets {
        tp: TopicPartition,
    },
    FindCoordinator {
        group: String,
    },
    JoinGroup {
        group: String,
        member: String,
        topics: BTreeSet<String>,
        session_timeout: Duration,
        assignor: Assignor,
    },
    Heartbeat {
        group: String,
        member: String,
        owned: BTreeSet<TopicPartition>,
    },
    LeaveGroup {
        group: String,
        member: String,
    },
    OffsetCommit {
        group: String,
        member: Option<String>,
        offsets: Vec<(TopicPartition, u64)>,
    },
    OffsetFetch {
        group: String,
        partitions: Vec<TopicPartition>,
    },
}

/// One partition's part of a fetch answer.
pub(crate) type FetchedPartition<V> = (TopicPartition, Result<Vec<Record<V>>, ErrorCode>);

/// A broker's answer, one variant per request kind.
#[derive(Clone, Debug)]
pub(crate) enum Response<V> {
    Metadata(ClusterMetadata),
    Produce(Result<(u64, bool), ErrorCode>),
    Fetch(Vec<FetchedPartition<V>>),
    ReplicaFetch(Result<ReplicaFetch<V>, ErrorCode>),
    ListOffsets(Result<(u64, u64), ErrorCode>),
    Coordinator(Option<BrokerId>),
    Assignment(Result<Assignment, ErrorCode>),
    Left(Result<(), ErrorCode>),
    Committed(Result<(), ErrorCode>),
    Offsets(Result<Vec<(TopicPartition, Option<u64>)>, ErrorCode>),
}

/// A request to the controller.
#[derive(Clone, Debug)]
pub(crate) enum ControllerRequest {
    /// A broker's heartbeat, held until metadata newer than `known_version` exists or
    /// `max_wait` passes (`None`: answer with the metadata at once).
    Heartbeat {
        broker: BrokerId,
        incarnation: u32,
        known_version: Option<u64>,
        max_wait: Duration,
    },
    AlterIsr {
        broker: BrokerId,
        proposal: IsrProposal,
    },
}

#[derive(Clone, Debug)]
pub(crate) enum ControllerResponse {
    Metadata(Option<ClusterMetadata>),
    AlterIsr(Result<PartitionState, AlterIsrError>),
}
