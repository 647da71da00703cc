//! The `sql.*` trace events.
//!
//! Each event is a typed value: the trace serialises it once into its compact form, and
//! checkers read it back with `trace::capture::<StmtEvent>()` and the like. The events the
//! server emits for every statement and session borrow what they report (the statement,
//! the error, the server's name) so that tracing copies nothing; each names the owned
//! twin a capture keeps, which serialises to the same shape. Rare events (faults,
//! crashes, WAL flushes, pool timeouts) are owned values.
//!
//! A statement is traced structurally (its derived `Serialize`: variant, table, key,
//! row, ...), not as SQL text: text would be formatted on every statement although
//! only a person reading `--trace` output wants it, and the trace's JSON is rendered
//! from the compact form, so a text branch in `Serialize` for human-readable
//! serializers would never reach it. People get SQL text from `Display`
//! (`event.stmt.to_string()`).

use serde::{Deserialize, Serialize};
use sim_net::Addr;
use sim_runtime::trace::TraceEvent;

use super::engine::SessionId;
use super::error::SqlError;
use super::mvcc::Xid;
use super::stmt::{CommandTag, Statement};

/// `sql.stmt`: one statement as the server ran it, and its result. What a capture keeps.
#[derive(Clone, Debug, PartialEq, Serialize, TraceEvent)]
#[trace_event(name = "sql.stmt")]
pub struct StmtEvent {
    pub server: String,
    pub session: SessionId,
    pub stmt: Statement,
    /// `None` when the statement failed.
    pub tag: Option<CommandTag>,
    pub affected: u64,
    /// `None` on success.
    pub error: Option<SqlError>,
    /// Whether the statement waited for another transaction.
    pub waited: bool,
    /// Virtual time from arrival to reply, in nanoseconds.
    pub duration_ns: u64,
}

impl StmtEvent {
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }

    /// The error's SQLSTATE, `None` on success.
    pub fn sqlstate(&self) -> Option<&'static str> {
        self.error.as_ref().and_then(SqlError::sqlstate)
    }
}

/// [`StmtEvent`] as the server emits it, borrowing the statement and its error.
#[derive(Serialize)]
pub(crate) struct StmtEventRef<'a> {
    pub(crate) server: &'a str,
    pub(crate) session: SessionId,
    pub(crate) stmt: &'a Statement,
    pub(crate) tag: Option<CommandTag>,
    pub(crate) affected: u64,
    pub(crate) error: Option<&'a SqlError>,
    pub(crate) waited: bool,
    pub(crate) duration_ns: u64,
}

impl TraceEvent for StmtEventRef<'_> {
    const NAME: &'static str = StmtEvent::NAME;
    type Owned = StmtEvent;

    fn to_owned_event(&self) -> StmtEvent {
        StmtEvent {
            server: self.server.to_owned(),
            session: self.session,
            stmt: self.stmt.clone(),
            tag: self.tag,
            affected: self.affected,
            error: self.error.cloned(),
            waited: self.waited,
            duration_ns: self.duration_ns,
        }
    }
}

/// What happened to a session.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum SessionChange {
    Opened(SessionId),
    Closed(SessionId),
    /// A connection the server would not open a session for (53300).
    Rejected(SqlError),
}

/// `sql.session`: a session opened, closed, or was refused. What a capture keeps.
#[derive(Clone, Debug, PartialEq, Serialize, TraceEvent)]
#[trace_event(name = "sql.session")]
pub struct SessionEvent {
    pub server: String,
    pub change: SessionChange,
}

/// [`SessionEvent`] as the server emits it, borrowing the server's name.
#[derive(Serialize)]
pub(crate) struct SessionEventRef<'a> {
    pub(crate) server: &'a str,
    pub(crate) change: SessionChange,
}

impl TraceEvent for SessionEventRef<'_> {
    const NAME: &'static str = SessionEvent::NAME;
    type Owned = SessionEvent;

    fn to_owned_event(&self) -> SessionEvent {
        SessionEvent {
            server: self.server.to_owned(),
            change: self.change.clone(),
        }
    }
}

/// The server's own fault verbs (the node's lifecycle verbs, crash/restart and
/// pause/resume, are the runtime's `node.*` events).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// Every statement takes this much longer.
    Slow {
        delay_ns: u64,
    },
    Fast,
    /// The database goes down while its node stays up.
    Refuse,
    Accept,
}

/// `sql.fault`: one of the server's own fault verbs was applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TraceEvent)]
#[trace_event(name = "sql.fault")]
pub struct FaultEvent {
    pub server: String,
    pub fault: Fault,
}

/// `sql.crash`: the server's node died; what it took away. Emitted once per death,
/// however the node was killed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TraceEvent)]
#[trace_event(name = "sql.crash")]
pub struct CrashEvent {
    pub server: String,
    /// Transactions running at the crash, rolled back.
    pub rolled_back: Vec<Xid>,
    /// Acknowledged commits whose WAL was not yet flushed, rolled back.
    pub lost_commits: Vec<Xid>,
}

/// `sql.wal.flush`: the WAL writer made asynchronous commits durable
/// (`synchronous_commit = off`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TraceEvent)]
#[trace_event(name = "sql.wal.flush")]
pub struct WalFlushEvent {
    pub server: String,
    pub commits: u64,
}

/// `sql.pool.timeout`: a pool gave a caller no connection within its acquire timeout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TraceEvent)]
#[trace_event(name = "sql.pool.timeout")]
pub struct PoolTimeoutEvent {
    /// The server the pool connects to.
    pub addr: Addr,
    pub waited_ns: u64,
    /// The pool's size, all of it checked out.
    pub max_size: u64,
}
