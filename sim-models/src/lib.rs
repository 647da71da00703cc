//! # sim-models: simulated dependencies, each a node on sim-net
//!
//! Each model is a pure, synchronous state machine (`state`) inside an async shell
//! (`server`) reached through a client over sim-net, so network faults apply to it. Every
//! model has a `Config` whose `Default` is fault-free, fault verbs in pairs and its own
//! trace events.
//!
//! - [`kv`]: a Redis-like store.
//! - [`sql`]: a PostgreSQL-like database with transactions and a connection pool.
//! - [`queue`]: a Kafka-like log with producers and consumer groups.
//! - [`check`]: checkers of recorded histories ([`check::elle`] for SQL transactions,
//!   [`check::linearizable`] for kv).

pub mod check;
mod fixed_hash;
pub mod kv;
pub mod queue;
pub mod sql;
