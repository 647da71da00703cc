//! # kv: a Redis-like store
//!
//! Redis 7's commands, replies and error strings over a simulated network, with the
//! failure modes that matter to the services that use it: crashes with each persistence
//! mode's exact loss, a lagging replica and a failover that loses what it had not
//! received, `maxmemory`, pauses, slowness and error replies.
//!
//! Map of the module:
//! - [`command`]: `Command` and `Reply`, the error strings; [`parse`]: argv to `Command`.
//! - [`value`]: the value types, each tracking its size for `maxmemory`.
//! - [`state`]: the pure engine (keyspace, expiry on a `now` argument, eviction, WATCH and
//!   blocked-client registries, effects); `exec` (private): each command's semantics.
//! - [`session`]: one connection's MULTI/EXEC and blocking decisions, still pure.
//! - [`script`]: scripts as Rust closures run atomically (EVAL).
//! - [`persistence`]: AOF modes and the disk; `replica` (private): the replication stream.
//! - [`server`]: the node shell, `start`, and `KvServer`, the handle, with the fault
//!   verbs in pairs: `crash`/`restart` (the node's lifecycle), `pause`/`resume`,
//!   `slow`/`fast`, `fail`/`heal`, `crash_replica`/`restart_replica`, and `failover`.
//! - [`client`]: `KvClient` with typed methods and `KvError`.
//! - [`event`]: the trace events, one type each, for checkers' typed captures.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sim_models::kv::KvError> {
//! use sim_models::kv::{self, ClientConfig, KvClient};
//! let server = kv::start("redis", kv::Config::default());
//! let client = KvClient::new(&server, ClientConfig::default());
//! client.set("stock", "10").await?;
//! assert_eq!(client.decr("stock").await?, 9);
//! server.crash();
//! server.restart(); // reloads what the AOF had fsynced
//! # Ok(()) }
//! ```

pub mod client;
pub mod command;
pub mod event;
mod exec;
pub mod lua;
pub mod parse;
pub mod persistence;
pub mod pubsub;
mod replica;
pub mod script;
pub mod server;
pub mod session;
pub mod state;
pub mod stream;
mod stream_exec;
pub mod subscriber;
pub mod value;

use serde::{Deserialize, Serialize};
use sim_runtime::time::Duration;

pub use client::{ClientConfig, KvClient, KvError, ServerError, Target, Transaction};
pub use command::{
    errors, Command, Condition, ExpireFlags, Reply, ScoreBound, SetExpiry, ZAddFlags,
};
pub use event::{CmdEvent, CrashEvent, WriteEvent};
pub use parse::parse;
pub use persistence::Persistence;
pub use script::{Script, ScriptContext};
pub use server::{start, FailoverError, KvServer};
pub use session::{Session, Step};
pub use state::{ClientId, Dataset, Engine, EngineConfig, EvictionPolicy, Stats};
pub use value::Value;

/// A kv server's configuration. `Default` is fault-free and unlimited: port 6379, AOF
/// `everysec` (Redis' recommended AOF setting; crashes still lose up to a second, so
/// scenarios that need zero loss choose `AofAlways`), no replica, no `maxmemory`, and
/// commands that take no virtual time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub port: u16,
    pub persistence: Persistence,
    /// A replica node `{name}-replica` and how far it lags.
    pub replica: Option<ReplicaConfig>,
    /// `maxmemory` in bytes of the model's size estimate; `None` is unlimited.
    pub maxmemory: Option<usize>,
    pub eviction_policy: EvictionPolicy,
    /// Keys sampled per eviction (`maxmemory-samples`).
    pub eviction_samples: usize,
    /// Simulated CPU per command on the node's single core (Redis runs commands on one
    /// thread), so that load saturates the server: 10 µs is about 100k commands/s.
    pub command_cost: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 6379,
            persistence: Persistence::AofEverySec,
            replica: None,
            maxmemory: None,
            eviction_policy: EvictionPolicy::NoEviction,
            eviction_samples: 5,
            command_cost: Duration::ZERO,
        }
    }
}

/// The replica's knobs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplicaConfig {
    /// How long after the primary commits a write the replica applies it (on top of the
    /// network's latency, which it overlaps).
    pub replication_lag: Duration,
}
