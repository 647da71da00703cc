//! The network's trace events, typed: a checker reads them with
//! `sim_runtime::trace::capture::<sim_net::events::NodeDown>()` and the like.
//!
//! Endpoints are [`Addr`]s and nodes are [`NodeId`]s, numbers in the trace; a node's
//! name is in its `node.start` event. Messages themselves (`net.send`, `net.deliver`,
//! `net.duplicate`) are the runtime's core `Message` kind, not one of these: there is one
//! per message, and the core kind costs a few words.

use std::borrow::Cow;

use serde::Serialize;
use sim_runtime::node::NodeId;
use sim_runtime::trace::TraceEvent;

use crate::config::LinkConfig;
use crate::Addr;

/// `net.bind`: a listener bound a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, TraceEvent)]
#[trace_event(name = "net.bind")]
pub struct Bind {
    pub addr: Addr,
}

/// `net.refused`: a connection attempt found its node down or nothing listening.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, TraceEvent)]
#[trace_event(name = "net.refused")]
pub struct Refused {
    pub addr: Addr,
}

/// `net.connect`: a connection's handshake left `local` for `remote`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, TraceEvent)]
#[trace_event(name = "net.connect")]
pub struct Connect {
    pub local: Addr,
    pub remote: Addr,
}

/// `net.node_down`: a node died; its connections were reset and what it had in flight
/// was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, TraceEvent)]
#[trace_event(name = "net.node_down")]
pub struct NodeDown {
    pub node: NodeId,
}

/// Why a message was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// A datagram across a partition.
    Partition,
    /// A datagram lost on its link.
    Loss,
    /// A per-message rule said so.
    Rule,
    /// A datagram whose sender died (or restarted) before it arrived.
    DeadSender,
    /// A datagram to a port with no socket.
    NoSocket,
}

/// `net.drop`: a message that will never arrive, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, TraceEvent)]
#[trace_event(name = "net.drop")]
pub struct Dropped {
    pub src: Addr,
    pub dst: Addr,
    /// The message's short type name, as in `net.send`.
    pub kind: &'static str,
    pub reason: DropReason,
}

/// Which network fault a [`Fault`] event reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Partition,
    PartitionOneway,
    Repair,
    RepairAll,
    Isolate,
    Rejoin,
    Clog,
    Unclog,
    Hold,
    Release,
}

/// `net.fault`: a partition, clog, hold or their undoing, between the nodes of `a` and
/// those of `b` (for one-way faults, from `a` to `b`; for faults of one node, `a` is that
/// node and `b` is empty). Borrows the node lists; a capture keeps `Fault<'static>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fault<'a> {
    pub fault: FaultKind,
    pub a: Cow<'a, [NodeId]>,
    pub b: Cow<'a, [NodeId]>,
}

impl TraceEvent for Fault<'_> {
    const NAME: &'static str = "net.fault";
    type Owned = Fault<'static>;
    fn to_owned_event(&self) -> Fault<'static> {
        Fault {
            fault: self.fault,
            a: Cow::Owned(self.a.to_vec()),
            b: Cow::Owned(self.b.to_vec()),
        }
    }
}

/// `net.link`: the `from` -> `to` direction of a link changed; both `None` for the
/// default link, `config` `None` when the link returned to the default.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, TraceEvent)]
#[trace_event(name = "net.link")]
pub struct LinkChange {
    pub from: Option<NodeId>,
    pub to: Option<NodeId>,
    pub config: Option<LinkConfig>,
}
