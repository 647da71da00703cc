//! # sim-net: messages between simulated nodes
//!
//! Endpoints are `(node, port)`; messages are typed Rust values (no serialization).
//! Connections are ordered and reliable, datagrams are neither; both suffer the link's
//! latency distribution, and every fault a real network has: partitions (also one-way),
//! clogged nodes, held links, loss, duplication, reordering, and crash semantics (refused
//! at once, reset on a peer's death, timeouts across partitions).
//!
//! Failures: operations on endpoints return [`NetError`] (refused, reset, timed out,
//! unreachable, address in use, closed). A client of a server (RPC, and every model's
//! client) reports the same trouble as [`ConnectionFailure`], through its one
//! `From<NetError>`: no other code maps network errors, so a crash reads the same whether
//! the service called Redis, PostgreSQL or a peer.
//!
//! Trace: every message is a core `net.send` / `net.deliver` event naming its endpoints
//! and its kind (the short type name, fixed when the endpoint is made); drops, faults,
//! connections and node deaths are typed events in [`events`].
//!
//! Map of the crate:
//! - [`config`]: `Latency` and `LinkConfig` (Default: 1 to 5 ms, no loss).
//! - `state` (private): the per-simulation network; lazy, timer-driven delivery.
//! - [`conn`]: `bind`, `connect`, `Conn` send/recv.
//! - [`datagram`]: `Socket` send_to/recv_from.
//! - [`rpc`]: `call` and `serve`, failing with `RpcError` (= `ConnectionFailure`).
//! - [`fault`]: partition/repair, clog/unclog, hold/release, isolate/rejoin, link changes.
//! - [`rule`]: per-message rules (pass, delay, drop, duplicate).
//! - [`events`]: the typed trace events.
//! - `kind` (private): message kinds, the short type names.

pub mod config;
pub mod conn;
pub mod datagram;
pub mod events;
pub mod fault;
mod kind;
pub mod rpc;
pub mod rule;
mod state;

use std::fmt;

use serde::{Deserialize, Serialize};
use sim_runtime::node::{self, NodeId};

pub use config::{Latency, LinkConfig};
pub use conn::{bind, connect, Conn, ConnSender, Listener};
pub use datagram::{bind_datagram, Socket};
pub use fault::*;
pub use rpc::{call, serve, RpcError};
pub use rule::{MessageInfo, RuleId, Verdict};

/// A network address: a node and a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Addr {
    pub node: NodeId,
    pub port: u16,
}

impl Addr {
    pub fn new(node: NodeId, port: u16) -> Self {
        Addr { node, port }
    }

    pub(crate) fn pair(self) -> (u32, u16) {
        (self.node.0, self.port)
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.node, self.port)
    }
}

/// Resolves a node name ("redis", "api-2") to an address. Panics on an unknown name,
/// which is a bug in the test's wiring.
pub fn addr(name: &str, port: u16) -> Addr {
    try_addr(name, port).unwrap_or_else(|| panic!("no node named {name:?}"))
}

/// Resolves a node name, or `None`.
pub fn try_addr(name: &str, port: u16) -> Option<Addr> {
    node::lookup(name).map(|n| Addr::new(n, port))
}

/// Why a network operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error("connection refused")]
    Refused,
    #[error("connection reset by peer")]
    Reset,
    #[error("timed out")]
    Timeout,
    #[error("destination unreachable")]
    Unreachable,
    #[error("address already in use")]
    AddrInUse,
    #[error("connection closed")]
    Closed,
}

/// How a conversation with a server failed, as its client sees it. RPC and every model's
/// client report network trouble as this, through the one mapping from [`NetError`]
/// below, so that a crash reads the same whether the service called Redis, PostgreSQL
/// or a peer.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    thiserror::Error,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum ConnectionFailure {
    /// Nothing listens there, or the node is down: fails at once.
    #[error("connection refused")]
    Refused,
    /// The server crashed or closed the connection while the conversation went on.
    #[error("connection reset by peer")]
    Reset,
    /// No answer in time: a partition, a paused or slow server, a lost message.
    #[error("timed out")]
    Timeout,
    /// No route to the address (it names no node).
    #[error("destination unreachable")]
    Unreachable,
}

impl From<NetError> for ConnectionFailure {
    fn from(e: NetError) -> Self {
        match e {
            // A client never binds, so it never sees AddrInUse; were it to, nothing was
            // sent, which is what Refused means.
            NetError::Refused | NetError::AddrInUse => ConnectionFailure::Refused,
            NetError::Reset | NetError::Closed => ConnectionFailure::Reset,
            NetError::Timeout => ConnectionFailure::Timeout,
            NetError::Unreachable => ConnectionFailure::Unreachable,
        }
    }
}
