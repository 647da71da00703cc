//! # kv: a Redis-like store
//!
//! A pure state machine (`state` + `exec`, per-connection `session`) inside an async shell
//! on a simulated node, reached over sim-net by a client with a per-call timeout.

pub mod command;
mod exec;
pub mod parse;
pub mod script;
pub mod session;
pub mod state;
pub mod value;

pub use command::{
    errors, Command, Condition, ExpireFlags, Reply, ScoreBound, SetExpiry, ZAddFlags,
};
pub use parse::parse;
pub use script::{Script, ScriptContext};
pub use session::{Session, Step};
pub use state::{ClientId, Dataset, Engine, EngineConfig, EvictionPolicy, Stats};
pub use value::Value;
