//! The messages of a client connection, and the `sql.*` trace events.
//!
//! A connection is one server session: the server greets it (`Ready` or `Rejected`), then
//! answers each `Query` with the `Reply` of the same id, one statement at a time, as
//! PostgreSQL's simple query protocol does.

use serde::{Deserialize, Serialize};

use super::engine::SessionId;
use super::error::SqlError;
use super::stmt::{CommandTag, Statement, StmtResult};

#[derive(Clone, Debug)]
pub enum ClientMsg {
    Query {
        id: u64,
        stmt: Statement,
    },
    /// A validation round trip (what a pool's connection test does).
    Ping {
        id: u64,
    },
    /// The client is closing the session.
    Terminate,
}

#[derive(Clone, Debug)]
pub enum ServerMsg {
    /// The session is open.
    Ready {
        session: SessionId,
    },
    /// The session could not open (53300, or the database is going down).
    Rejected(SqlError),
    Reply {
        id: u64,
        result: Result<StmtResult, SqlError>,
    },
    Pong {
        id: u64,
    },
    /// The server is ending the session (57P01), e.g. when it stops accepting work.
    Terminated(SqlError),
}

/// The `sql.stmt` trace event: one statement as the server ran it, and its result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StmtEvent {
    pub server: String,
    pub session: SessionId,
    pub stmt: String,
    pub tag: Option<CommandTag>,
    pub affected: u64,
    /// `None` on success.
    pub sqlstate: Option<String>,
    pub error: Option<String>,
    /// Whether the statement waited for another transaction.
    pub waited: bool,
    /// Virtual time from arrival to reply, in nanoseconds.
    pub duration_ns: u64,
}

impl StmtEvent {
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

/// The `sql.fault` trace event: a fault verb applied to a server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultEvent {
    pub server: String,
    pub fault: String,
}

/// The `sql.session` trace event: a session opened, was refused, or closed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionEvent {
    pub server: String,
    pub session: Option<SessionId>,
    pub event: String,
}
