//! # Interdomestik (seed document 004, "Production Readiness Stress Test Report")
//!
//! An insurance API (2+ instances behind a load balancer) where agents register members
//! and members register themselves with an agent's referral. A registration creates the
//! member's account, its subscription to a plan, the agent-client link and a welcome
//! email in the outbox, in one PostgreSQL transaction retried with exponential backoff on
//! serialization failures (40001) and deadlocks (40P01), its rows locked in one global
//! order (the agent, then the plan). The welcome email goes out after the commit through
//! an external email service behind a circuit breaker; what it cannot send now, the
//! outbox relay sends later. A rate limit of 5 registrations per client per minute is kept
//! in Redis by an atomic script.
//!
//! The document's claims are the checkers in [`checkers`]; its stress scenarios the fault
//! matrix in [`faults`] (the database slow or down, the email service down or slow, an API
//! instance killed mid-registration, a registration burst); [`service`] is the API with
//! its correct and buggy variants; [`deps`] the database, the rate limiter and the email
//! service as the service sees them (the only file that touches the models); [`run`]
//! wires one seeded run and [`report`] fills the document's performance tables (pool 10
//! against pool 50) with exact numbers.

pub mod checkers;

use sim_runtime::time::Duration;

use crate::patterns::{Backoff, BreakerConfig};

crate::service_variants! {
    /// The service variants.
    pub enum Variant {
        Correct => ("correct", "one transaction retried on 40001/40P01, rows locked agent then plan, email after the commit behind a breaker with an outbox, an atomic rate-limit script"),
        InconsistentLockOrder => ("inconsistent_lock_order", "self-registration locks the plan before the agent, agent registration the agent before the plan: concurrent registrations deadlock"),
        TwoTransactions => ("two_transactions", "the account and the subscription are written in separate transactions: a crash or outage between them leaves an account without a subscription"),
        EmailInTransaction => ("email_in_transaction", "the welcome email is sent inside the open transaction: an email outage holds connections and fails registrations while the database is healthy"),
        RateLimitRace => ("rate_limit_race", "the limiter reads the client's count, then adds to it in a second command: concurrent requests get more than 5 through in a minute"),
    }
}

/// The document's connection pool settings (`max`, `idle_timeout`, `connect_timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSizing {
    /// Connections per API instance: 10 before the change, 50 after.
    pub max_connections: u32,
    pub idle_timeout: Duration,
    /// For opening a connection, and (postgres.js has no other bound) for waiting on one.
    pub connect_timeout: Duration,
}

impl PoolSizing {
    /// The document's "before": `max: 10`.
    pub const BEFORE: PoolSizing = PoolSizing {
        max_connections: 10,
        idle_timeout: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(10),
    };

    /// The document's production configuration: `max: 50`.
    pub const AFTER: PoolSizing = PoolSizing {
        max_connections: 50,
        ..PoolSizing::BEFORE
    };
}

/// Sizes and settings of a run. The defaults are the document's concurrent-registration
/// test: agents registering members in batches while members register themselves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    /// Members registering themselves, each from their own address, with an agent's
    /// referral.
    pub members: u32,
    /// Members arriving per second.
    pub spawn_rate_per_s: f64,
    /// Agents, each registering a batch of members at once (a spreadsheet import).
    pub agents: u32,
    pub batch_per_agent: u32,
    /// Subscription plans; each registration counts a subscriber on one.
    pub plans: u32,
    pub api_instances: u32,
    pub pool: PoolSizing,
    /// The document's `withTransactionRetry`: 3 retries, 100 ms base, doubling.
    pub retry: Backoff,
    pub email_breaker: BreakerConfig,
    /// The API's timeout on one email service call.
    pub email_timeout: Duration,
    /// How often each instance's outbox relay looks for unsent welcome emails.
    pub relay_every: Duration,
    /// Registrations per client per `rate_window`.
    pub rate_limit: u32,
    pub rate_window: Duration,
    /// The API's timeout on each Redis command.
    pub redis_timeout: Duration,
    /// How long a user waits for an answer.
    pub user_timeout: Duration,
    /// After the last heal, how long the outbox may take to empty.
    pub drain_max: Duration,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            members: 20,
            spawn_rate_per_s: 20.0,
            agents: 4,
            batch_per_agent: 6,
            plans: 2,
            api_instances: 2,
            pool: PoolSizing::BEFORE,
            retry: Backoff {
                base: Duration::from_millis(100),
                max: Duration::from_millis(800),
                attempts_max: Some(4),
            },
            email_breaker: BreakerConfig {
                failures_to_open: 5,
                open_duration: Duration::from_secs(5),
                successes_to_close: 2,
            },
            email_timeout: Duration::from_secs(2),
            relay_every: Duration::from_secs(1),
            rate_limit: 5,
            rate_window: Duration::from_secs(60),
            redis_timeout: Duration::from_millis(300),
            user_timeout: Duration::from_secs(10),
            drain_max: Duration::from_secs(30),
        }
    }
}
