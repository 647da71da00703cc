//! The kv model's trace events, one type each; checkers read them with
//! `sim_runtime::trace::capture::<E>()`.
//!
//! | event | when |
//! |---|---|
//! | `kv.cmd` ([`CmdEvent`]) | a command ran and committed nothing (a read, an error, a no-op) |
//! | `kv.cmd.write` ([`WriteEvent`]) | a command ran and its effects were committed as a batch |
//! | `kv.start` ([`StartEvent`]) | a node's incarnation loaded its disk and serves |
//! | `kv.crash` ([`CrashEvent`]) | a node died, however it was killed, and what its disk lost |
//! | `kv.fsync` ([`FsyncEvent`]) | `appendfsync everysec` made the pending batches durable |
//! | `kv.fault` ([`FaultEvent`]) | a fault verb that is not a node's lifecycle (`slow`, `fail`, ...) |
//! | `kv.failover` ([`FailoverEvent`]) | the replica was promoted |
//! | `kv.repl.sync` ([`ReplSyncEvent`]) | the primary sent a replica a full copy |
//! | `kv.repl.full_sync` ([`FullSyncEvent`]) | the replica loaded that copy |
//! | `kv.repl.apply` ([`ReplApplyEvent`]) | the replica applied a batch |
//! | `kv.client.error` ([`ClientErrorEvent`]) | a client's call failed on the network |
//!
//! Node lifecycle changes other than a death (restart, pause, resume) are the runtime's
//! own `node.*` events; a restart is followed by the node's `kv.start`.
//!
//! The command events are emitted once per command, so they borrow the command and its
//! reply ([`Cow`] fields); a capture keeps `CmdEvent<'static>`, an owned copy.

use std::borrow::Cow;
use std::time::Duration;

use serde::Serialize;
use sim_net::{Addr, ConnectionFailure};
use sim_runtime::trace::TraceEvent;
use sim_runtime::Probability;

use super::command::{Command, Reply};

/// One command as the server ran it, and its reply: `kv.cmd` when it committed nothing,
/// `kv.cmd.write` (a [`WriteEvent`] around this) when its effects went into a batch.
/// Both are captured as `CmdEvent<'static>`, so that the two captures merge by `seq`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CmdEvent<'a> {
    pub server: Cow<'a, str>,
    pub node: Cow<'a, str>,
    /// The connection's client id (`CLIENT ID`).
    pub client: u64,
    pub cmd: Cow<'a, Command>,
    pub reply: Cow<'a, Reply>,
    /// The replication offset of the batch the command's effects went into; `None` for
    /// `kv.cmd`.
    pub offset: Option<u64>,
}

impl CmdEvent<'_> {
    pub fn into_owned(self) -> CmdEvent<'static> {
        CmdEvent {
            server: Cow::Owned(self.server.into_owned()),
            node: Cow::Owned(self.node.into_owned()),
            client: self.client,
            cmd: Cow::Owned(self.cmd.into_owned()),
            reply: Cow::Owned(self.reply.into_owned()),
            offset: self.offset,
        }
    }
}

impl TraceEvent for CmdEvent<'_> {
    const NAME: &'static str = "kv.cmd";
    type Owned = CmdEvent<'static>;
    fn to_owned_event(&self) -> CmdEvent<'static> {
        self.clone().into_owned()
    }
}

/// A command that wrote: its own name, so that a checker that follows writes captures
/// only those (most commands of a busy store read).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct WriteEvent<'a>(pub CmdEvent<'a>);

impl TraceEvent for WriteEvent<'_> {
    const NAME: &'static str = "kv.cmd.write";
    type Owned = CmdEvent<'static>;
    fn to_owned_event(&self) -> CmdEvent<'static> {
        self.0.to_owned_event()
    }
}

/// A node's role when its incarnation started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Primary,
    Replica,
}

/// A node's incarnation loaded its disk and is about to serve.
#[derive(Clone, Debug, PartialEq, Serialize, TraceEvent)]
#[trace_event(name = "kv.start")]
pub struct StartEvent {
    pub server: String,
    pub node: String,
    pub role: Role,
    /// Keys loaded from the disk.
    pub keys: usize,
    pub incarnation: u32,
}

/// A node died (the `crash` verbs, a fault schedule's `node.kill()`, a restart of a
/// running node, the OOM killer, a failover fencing the old primary): what its disk lost.
#[derive(Clone, Debug, PartialEq, Serialize, TraceEvent)]
#[trace_event(name = "kv.crash")]
pub struct CrashEvent {
    pub server: String,
    pub node: String,
    /// Batches written but not yet fsynced, gone with the host.
    pub lost_batches: usize,
    /// The offset of the last batch the disk kept: a restart resumes from there.
    pub durable_offset: u64,
}

/// `appendfsync everysec` fsynced.
#[derive(Clone, Debug, PartialEq, Serialize, TraceEvent)]
#[trace_event(name = "kv.fsync")]
pub struct FsyncEvent {
    pub server: String,
    pub node: String,
    /// Batches made durable.
    pub batches: usize,
    /// The offset of the last durable batch.
    pub offset: u64,
}

/// A fault that acts on the server rather than on a node's life.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Every command waits `delay` before it runs.
    Slow {
        delay: Duration,
    },
    Fast,
    /// Commands are answered with an error with this probability.
    Fail {
        probability: Probability,
    },
    Heal,
}

#[derive(Clone, Debug, PartialEq, Serialize, TraceEvent)]
#[trace_event(name = "kv.fault")]
pub struct FaultEvent {
    pub server: String,
    pub fault: Fault,
}

/// The replica was promoted; batches past `applied` up to `primary_offset` are lost.
#[derive(Clone, Debug, PartialEq, Serialize, TraceEvent)]
#[trace_event(name = "kv.failover")]
pub struct FailoverEvent {
    pub server: String,
    /// The old primary's node, fenced (killed) by the failover.
    pub from: String,
    /// The promoted replica's node.
    pub to: String,
    /// The offset the replica had applied.
    pub applied: u64,
    /// The offset the old primary had committed (0 when it was already down).
    pub primary_offset: u64,
}

/// The primary sent a connecting replica a full copy of its dataset.
#[derive(Clone, Debug, PartialEq, Serialize, TraceEvent)]
#[trace_event(name = "kv.repl.sync")]
pub struct ReplSyncEvent {
    pub server: String,
    pub replica: Addr,
    pub offset: u64,
}

/// The replica replaced its dataset with the primary's copy.
#[derive(Clone, Debug, PartialEq, Serialize, TraceEvent)]
#[trace_event(name = "kv.repl.full_sync")]
pub struct FullSyncEvent {
    pub server: String,
    pub offset: u64,
    pub keys: usize,
}

/// The replica applied a batch: once per replicated write, so it borrows the name.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReplApplyEvent<'a> {
    pub server: Cow<'a, str>,
    pub offset: u64,
}

impl TraceEvent for ReplApplyEvent<'_> {
    const NAME: &'static str = "kv.repl.apply";
    type Owned = ReplApplyEvent<'static>;
    fn to_owned_event(&self) -> ReplApplyEvent<'static> {
        ReplApplyEvent {
            server: Cow::Owned(self.server.clone().into_owned()),
            offset: self.offset,
        }
    }
}

/// A client's call failed on the network (the command may or may not have run).
#[derive(Clone, Debug, PartialEq, Serialize, TraceEvent)]
#[trace_event(name = "kv.client.error")]
pub struct ClientErrorEvent {
    /// Where the client was connecting (it may name no node at all).
    pub addr: Addr,
    pub failure: ConnectionFailure,
}
