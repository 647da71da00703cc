//! # kv: a Redis-like store
//!
//! Redis 7's commands, replies and error strings over a simulated network, with the
//! failure modes that matter to the services that use it: crashes with each persistence
//! mode's exact loss, a lagging replica and a failover that loses what it had not
//! received, `maxmemory`, pauses, slowness and error replies.
//!
//! Map of the module:
//! - [`command`]: `Command` and `Reply`, the error strings; [`parse`]: argv to `Command`
//!   (the server parses raw argument vectors from `KvClient::call_argv` itself, so that
//!   unknown commands and arity errors doom a MULTI as in Redis, while other argument
//!   errors are queued and come back inside EXEC's array).
//! - [`number`]: doubles as Redis 7.0 reads (`strtod`, hex included) and prints (`%.17g`);
//!   [`long_double`]: INCRBYFLOAT's x87 `long double` arithmetic and `%.17Lf` printing.
//! - [`ext`]: the second list of commands (INCRBYFLOAT, LMOVE/BLMOVE, SPOP/SRANDMEMBER,
//!   ZRANGE in all its forms, ZPOP*/BZPOP*, ZREMRANGEBY*, ZCOUNT, ZMSCORE, SCAN and its
//!   kin, GETRANGE/SETRANGE, GETEX, COPY, RENAME...) as `Command::Ext`; `ext_exec`
//!   (private): their semantics.
//! - [`stream`]: stream values and their semantics; [`stream_command`]: the stream
//!   commands' arguments, parsed as far as Redis reads them before the key; `stream_exec`
//!   (private): the stream commands on the engine, in Redis' order of checks.
//! - [`value`]: the value types, each tracking its size for `maxmemory`.
//! - [`state`]: the pure engine (keyspace, expiry on a `now` argument, eviction, WATCH and
//!   blocked-client registries, effects); `exec` (private): each command's semantics.
//! - [`session`]: one connection's MULTI/EXEC and blocking decisions, still pure.
//! - [`script`]: scripts as Rust closures run atomically (EVAL).
//! - [`persistence`]: AOF modes and the disk; `replica` (private): the replication stream.
//! - [`server`]: the node shell, `start`, and `KvServer`, the handle, with the fault
//!   verbs in pairs: `crash`/`restart` (the node's lifecycle), `pause`/`resume`,
//!   `slow`/`fast`, `fail`/`heal`, `crash_replica`/`restart_replica`, and `failover`.
//! - [`client`]: `KvClient` with typed methods and `KvError`; [`history`]: the register
//!   operations a recorded client saw, for the linearizability checker.
//! - [`event`]: the trace events, one type each, for checkers' typed captures.
//!
//! ## Conformance with Redis 7.0
//!
//! `tests/conformance/redis` runs seeded command sequences on this model and on a real
//! Redis 7.0.15 and compares every reply (type, value, and errors by their whole text);
//! `cargo test` runs 1,000 sequences, the `redis_conformance` example as many as asked.
//! What is left different is deliberate:
//! - **Commands the model does not have** answer `ERR unknown command ...`, where Redis
//!   would run them (no Pub/Sub inside MULTI, no `ZADD INCR`, none of the commands not
//!   listed in [`Command`] or [`ext::ExtCommand`]; OBJECT is absent). The generator covers
//!   the commands the model has.
//! - **The clock** is virtual time plus [`Config::unix_time_at_start`] (0 by default,
//!   so the Unix epoch is the simulation's start): EXPIREAT-style times are Unix times on
//!   that clock. The conformance suite sets it to the real clock's time.
//! - **Expired keys are reclaimed at once**: before each command every key whose TTL has
//!   passed is deleted, so DBSIZE never counts one. Redis counts such a key until an access
//!   or its active expiry cycle (random sampling, ten times a second) reclaims it, which
//!   depends on wall-clock timing that a deterministic model should not imitate.
//! - **Set order**: SMEMBERS answers in member order; Redis' order is its hash table's
//!   (unspecified), so the suite compares sets as sets. Hashes answer HGETALL in insertion
//!   order, as Redis 7.0's listpack encoding of small hashes does (the model never converts
//!   a hash to a hash table, whose order Redis leaves unspecified).
//! - **Values are UTF-8 text**, not byte strings (see [`command`]): NUL, CR LF and any
//!   other character round-trip, but bytes that are not UTF-8 cannot be sent. GETRANGE that
//!   cuts a character answers the bytes read as UTF-8 with U+FFFD for the cut parts (what
//!   a client decoding Redis' reply as text sees); a SETRANGE that would split a character
//!   is refused with `errors::NOT_UTF8` (the suite counts it apart).
//! - **One database**, as a Redis started with `databases 1`: `COPY ... DB n` with n other
//!   than 0 answers `ERR DB index is out of range`.
//! - **SRANDMEMBER with a negative count** beyond 2^20 answers `ERR value is not an integer
//!   or out of range` (Redis builds the reply, and for -2^63+1 dies doing so).
//! - **Random members** (SPOP, SRANDMEMBER) come from the engine's seeded stream; the suite
//!   compares their shape and set membership, not which members.
//! - **SCAN** orders the keyspace by a fixed hash of the key (its cursor is where to
//!   resume), HSCAN/SSCAN/ZSCAN answer everything at once with cursor 0 (as Redis does for
//!   small encodings); the suite compares what a whole iteration returns, and that it ends
//!   at cursor 0.
//! - **Lua scripts** run on a real Lua 5.1 with Redis' error suffix
//!   (`script: <sha>, on @user_script:<line>.`); Rust closure scripts ([`Script`]) have no
//!   source and no SHA, so their errors carry no such suffix.
//!
//! - **Streams' nodes** hold up to 100 entries (`stream-node-max-entries`), which is what
//!   approximate trimming (`~`) removes whole; Redis also starts a node when the last one
//!   reaches 4 KiB (`stream-node-max-bytes`), which depends on its listpack encoding, so
//!   with large entries Redis' `~` may remove fewer entries than the model's. XINFO is
//!   absent.
//! - **Subcommands the model does not have** (`SCRIPT KILL`, `XGROUP HELP`, ...) are refused
//!   as unknown subcommands, as Redis refuses the ones it does not know.
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
pub mod ext;
mod ext_exec;
pub mod history;
pub mod long_double;
pub mod lua;
pub mod number;
pub mod parse;
pub mod persistence;
pub mod pubsub;
mod replica;
pub mod script;
pub mod server;
pub mod session;
pub mod state;
pub mod stream;
pub mod stream_command;
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
pub use history::KvHistory;
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
    /// The Unix time the server's clock shows when the simulation starts (its clock is
    /// virtual time plus this): EXPIREAT, PEXPIREAT, SET EXAT/PXAT and XADD's ids use
    /// it, as Redis uses the wall clock. Zero (the default) puts the Unix epoch at the
    /// simulation's start.
    pub unix_time_at_start: Duration,
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
            unix_time_at_start: Duration::ZERO,
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
