//! # sql: a PostgreSQL-like database
//!
//! A database server node running a pure state machine ([`engine::Engine`]) inside an
//! async shell, reached over sim-net through connections from a client-side pool. It
//! offers PostgreSQL 15's semantics for everything it offers, so that an anomaly found
//! in simulation is one PostgreSQL would allow:
//!
//! - MVCC snapshots; READ COMMITTED (a snapshot per statement; writers wait for row locks
//!   and re-check the latest row version), REPEATABLE READ (a snapshot per transaction;
//!   40001 on concurrent update), SERIALIZABLE (SSI, see [`ssi`]).
//! - Row locks (FOR UPDATE / FOR SHARE, NOWAIT, SKIP LOCKED), `lock_timeout` (55P03),
//!   deadlock detection after `deadlock_timeout` (40P01), unique constraints (23505),
//!   `statement_timeout` (57014), injected slow queries.
//! - SQL text with `$n` parameters ([`text`]): SELECT with joins, GROUP BY, aggregates,
//!   ORDER BY, LIMIT/OFFSET; INSERT (several rows, ON CONFLICT, RETURNING); UPDATE and
//!   DELETE with RETURNING; CREATE TABLE with keys, CHECK, DEFAULT, serial and foreign
//!   keys; CREATE INDEX; savepoints. What PostgreSQL would answer differently is refused
//!   with 0A000 naming the construct.
//!
//! Map of the module:
//! - [`text`]: SQL text parsed (sqlparser's PostgreSQL dialect) and planned onto
//!   statements, plans kept by text; [`params`]: `ToSql`/`FromSql`.
//! - [`value`], [`row`], [`schema`], [`expr`], [`stmt`], [`error`]: the data model and the
//!   statements the engine runs (also a builder for those who prefer it); statements,
//!   expressions, rows and values print as SQL (`Display`).
//! - [`mvcc`]: versioned storage and snapshots; [`locks`]: row locks and the wait-for
//!   graph; [`ssi`]: serializable snapshot isolation; [`engine`] and `exec`: the state
//!   machine.
//! - [`config`]: `Config` with a fault-free `Default`.
//! - [`protocol`]: connection messages; [`events`]: the typed trace events; [`server`]:
//!   [`start`], the node, and the [`SqlServer`] handle with its fault verbs in pairs
//!   (`crash`/`restart` and `pause`/`resume`, the node's lifecycle; `slow`/`fast`,
//!   `refuse`/`accept`); [`client`]: one connection, shaped like tokio-postgres's;
//!   [`pool`]: the connection pool.
//!
//! Trace events (see [`events`]; checkers read them with `trace::capture::<StmtEvent>()`
//! and the like): `sql.stmt` (every statement and its result), `sql.session`,
//! `sql.fault`, `sql.crash` (once per death of the node, however it was killed),
//! `sql.wal.flush`, `sql.pool.timeout`. Network errors reach clients as
//! [`SqlError::Connection`] of the one [`ConnectionFailure`] mapping of sim-net.
//!
//! ```
//! # sim_runtime::Sim::new(1).run(|| async {
//! use sim_models::sql::{self, Pool, PoolConfig};
//! let db = sql::start("postgres", sql::Config::default());
//! db.ready().await;
//! let pool = Pool::new(db.addr(), PoolConfig::default());
//! let mut c = pool.acquire().await.unwrap();
//! c.execute("CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint NOT NULL)", &[]).await.unwrap();
//! c.execute("INSERT INTO accounts (id, balance) VALUES ($1, $2)", &[&1_i64, &100_i64]).await.unwrap();
//! let row = c.query_one("SELECT balance FROM accounts WHERE id = $1", &[&1_i64]).await.unwrap();
//! assert_eq!(row.get::<_, i64>("balance").unwrap(), 100);
//! # });
//! ```

pub mod client;
pub mod config;
pub mod engine;
pub mod error;
pub mod events;
mod exec;
pub mod expr;
pub mod locks;
pub mod mvcc;
pub mod params;
pub mod pool;
pub mod protocol;
pub mod row;
pub mod schema;
pub mod server;
pub mod ssi;
pub mod stmt;
pub mod text;
pub mod value;

pub use client::{Client, ClientConfig, ToStatement, Transaction, TransactionBuilder};
pub use config::Config;
pub use engine::{Completion, CrashReport, Engine, SessionId, Settings, Stats, Submit, WaitState};
pub use error::{ConnectionFailure, SqlError};
pub use events::{
    CrashEvent, Fault, FaultEvent, PoolTimeoutEvent, SessionChange, SessionEvent, StmtEvent,
    WalFlushEvent,
};
pub use expr::{col, excluded, lit, BinOp, Expr};
pub use params::{FromSql, ToSql};
pub use pool::{Pool, PoolConfig, PoolStatus, PooledConn};
pub use row::{Row, RowIndex};
pub use schema::{Column, TableSchema, UniqueConstraint};
pub use server::{start, SqlServer};
pub use stmt::{
    CommandTag, Count, Delete, Insert, IsolationLevel, LockMode, LockWait, OnConflict, RowLocking,
    Select, Setting, Statement, StmtResult, Update, Where,
};
pub use text::Prepared;
pub use value::{ColumnType, FromValue, Value};

#[cfg(test)]
mod engine_tests;
