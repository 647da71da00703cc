//! The queue's trace events: their names and field types. Clients and brokers emit them;
//! the checkers in [`super::checker`] read them back, so both sides share these types.
//!
//! | event | emitted by | when |
//! |---|---|---|
//! | `queue.send` | producer | `send` called; the partition is chosen |
//! | `queue.retry` | producer | an attempt failed and will be retried |
//! | `queue.ack` | producer | the send succeeded (offset `null` with `acks=0`) |
//! | `queue.send_failed` | producer | the send failed for good |
//! | `queue.append` | leader | a produce appended (or, idempotent, de-duplicated) a record |
//! | `queue.replicate` / `queue.truncate` | follower | copied from / cut back to its leader |
//! | `queue.fetch` | leader | a consumer fetch returned records |
//! | `queue.poll` | consumer | `poll` returned records to the application |
//! | `queue.seek` | consumer | a position was set (committed offset, reset, or `seek`) |
//! | `queue.commit` | consumer | a commit finished (ok or not) |
//! | `queue.assign` | consumer | its partitions changed |
//! | `queue.group` | coordinator | a member joined, left or expired |
//! | `queue.controller` | controller | a broker was fenced/registered, a leader elected, an ISR changed |
//! | `queue.fault` | cluster handle | crash, restart, pause, resume, slow, fast |

use serde::{Deserialize, Serialize};

use super::types::{Acks, BrokerId, RecordId, TopicPartition};

pub const SEND: &str = "queue.send";
pub const RETRY: &str = "queue.retry";
pub const ACK: &str = "queue.ack";
pub const SEND_FAILED: &str = "queue.send_failed";
pub const APPEND: &str = "queue.append";
pub const REPLICATE: &str = "queue.replicate";
pub const TRUNCATE: &str = "queue.truncate";
pub const FETCH: &str = "queue.fetch";
pub const POLL: &str = "queue.poll";
pub const SEEK: &str = "queue.seek";
pub const COMMIT: &str = "queue.commit";
pub const ASSIGN: &str = "queue.assign";
pub const GROUP: &str = "queue.group";
pub const CONTROLLER: &str = "queue.controller";
pub const FAULT: &str = "queue.fault";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SendEvent {
    pub producer: u64,
    pub id: RecordId,
    pub topic: String,
    pub partition: u32,
    pub key: Option<String>,
    pub acks: Acks,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryEvent {
    pub producer: u64,
    pub id: RecordId,
    pub attempt: u32,
    pub error: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AckEvent {
    pub producer: u64,
    pub id: RecordId,
    pub topic: String,
    pub partition: u32,
    /// `None` with `acks=0`.
    pub offset: Option<u64>,
    pub attempts: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SendFailedEvent {
    pub producer: u64,
    pub id: RecordId,
    pub topic: String,
    pub partition: u32,
    pub error: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppendEvent {
    pub broker: BrokerId,
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub id: RecordId,
    pub leader_epoch: u32,
    /// An idempotent retry answered with the first append's offset.
    pub duplicate: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplicateEvent {
    pub broker: BrokerId,
    pub topic: String,
    pub partition: u32,
    pub from: u64,
    pub to: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FetchEvent {
    pub broker: BrokerId,
    pub topic: String,
    pub partition: u32,
    pub from: u64,
    pub count: usize,
}

/// One record as a consumer handed it to the application.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolledRecord {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub id: RecordId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PollEvent {
    /// The consumer instance (stable across its rejoins, unlike the member id).
    pub consumer: String,
    pub group: String,
    pub records: Vec<PolledRecord>,
}

/// Why a consumer's position was set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeekReason {
    /// The group's committed offset, on being assigned the partition.
    Committed,
    /// `auto.offset.reset` (no committed offset, or it was out of range).
    Reset,
    /// The application called `seek`.
    Seek,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeekEvent {
    pub consumer: String,
    pub group: String,
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub reason: SeekReason,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommitEvent {
    pub consumer: String,
    pub group: String,
    pub member: String,
    pub offsets: Vec<(TopicPartition, u64)>,
    pub auto: bool,
    /// `None` on success, else the error.
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssignEvent {
    pub consumer: String,
    pub group: String,
    pub member: String,
    pub epoch: u32,
    pub partitions: Vec<TopicPartition>,
    pub added: Vec<TopicPartition>,
    pub revoked: Vec<TopicPartition>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupEvent {
    pub broker: BrokerId,
    pub group: String,
    pub member: String,
    /// "join", "leave" or "expire".
    pub change: String,
    pub epoch: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultEvent {
    pub cluster: String,
    pub broker: BrokerId,
    /// "crash", "restart", "pause", "resume", "slow" or "fast".
    pub fault: String,
    pub delay_ms: Option<u64>,
}
