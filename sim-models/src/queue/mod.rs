//! A Kafka-like log (being written): the pure broker, controller and group state machines.

// The async shell that uses these pure parts lands in the next commit.
#![allow(dead_code)]

pub mod checker;
pub mod config;
pub(crate) mod controller;
pub mod error;
pub mod group;
pub(crate) mod log;
pub mod partitioner;
pub(crate) mod state;
pub mod types;

pub use config::Config;
pub use error::{AdminError, ConsumeError, ProduceError};
pub use group::Assignor;
pub use types::{Acks, BrokerId, Record, RecordId, RecordMeta, TopicPartition};
