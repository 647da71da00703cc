//! # The appointments backend (seed document 003, "Phase 11")
//!
//! API instances behind a load balancer list free slots (through a Redis cache) and book
//! them in PostgreSQL, with a circuit breaker around the database; many users race for
//! the same slots. The document's chaos tests are the fault matrix in [`faults`]; its
//! success criteria are the checkers in [`checkers`]; [`service`] is the service logic
//! with its correct and buggy variants; [`deps`] the database and cache as the service
//! sees them; [`run`] wires one seeded run.

pub mod checkers;
pub mod deps;
pub mod faults;
pub mod run;
pub mod service;

use serde::Serialize;
use sim_runtime::time::Duration;

use crate::patterns::BreakerConfig;
use crate::scenario::{ServiceVariant, VariantInfo};

/// The service variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    Correct,
    SelectThenInsert,
    BreakerStuckOpen,
    StaleCache,
}

impl ServiceVariant for Variant {
    const ALL: &'static [Variant] = &[
        Variant::Correct,
        Variant::SelectThenInsert,
        Variant::BreakerStuckOpen,
        Variant::StaleCache,
    ];

    fn info(self) -> VariantInfo {
        let (name, description) = match self {
            Variant::Correct => ("correct", "unique slot constraint (409 for the loser), a breaker that recovers, versioned cache invalidation"),
            Variant::SelectThenInsert => ("select_then_insert", "checks the slot with SELECT, then INSERTs, at READ COMMITTED with no constraint: double-books"),
            Variant::BreakerStuckOpen => ("breaker_stuck_open", "a successful HALF_OPEN probe is counted as a failure: the breaker never closes again"),
            Variant::StaleCache => ("stale_cache", "a booking does not invalidate the cached free-slot list: users see and try slots that are gone"),
        };
        VariantInfo {
            name,
            buggy: self != Variant::Correct,
            description,
        }
    }
}

/// Sizes and settings of a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    pub users: u32,
    pub doctors: u32,
    pub slots_per_doctor: u32,
    pub api_instances: u32,
    /// Users arriving per second.
    pub spawn_rate_per_s: f64,
    /// How long a user waits for an answer.
    pub user_timeout: Duration,
    /// Booking attempts per user (list, pick, book), the first included.
    pub user_attempts: u32,
    /// The API's bound on one database round trip: acquiring a connection and each query.
    pub db_timeout: Duration,
    /// The API's timeout on each Redis command.
    pub redis_timeout: Duration,
    /// How long a cached free-slot list lives.
    pub cache_ttl: Duration,
    pub breaker: BreakerConfig,
    /// After the last heal, bookings must reach the database again within this.
    pub recovery_bound: Duration,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            users: 300,
            doctors: 4,
            slots_per_doctor: 60,
            api_instances: 2,
            spawn_rate_per_s: 10.0,
            user_timeout: Duration::from_secs(3),
            user_attempts: 3,
            db_timeout: Duration::from_millis(1000),
            redis_timeout: Duration::from_millis(200),
            cache_ttl: Duration::from_secs(30),
            breaker: BreakerConfig {
                failures_to_open: 5,
                open_duration: Duration::from_secs(3),
                successes_to_close: 2,
            },
            recovery_bound: Duration::from_secs(10),
        }
    }
}
