//! The messages of a client connection.
//!
//! A connection is one server session: the server greets it (`Ready` or `Rejected`), then
//! answers each `Query` with the `Reply` of the same id, one statement at a time, as
//! PostgreSQL's simple query protocol does.

use super::engine::SessionId;
use super::error::SqlError;
use super::stmt::{Statement, StmtResult};

#[derive(Clone, Debug)]
pub enum ClientMsg {
    Query {
        id: u64,
        /// Boxed: a statement is far larger than the other messages.
        stmt: Box<Statement>,
    },
    /// A validation round trip (what a pool's connection test does).
    Ping { id: u64 },
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
