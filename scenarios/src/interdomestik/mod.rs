//! # Interdomestik (seed document 004, "Production Readiness Stress Test Report")
//!
//! An insurance API (2+ instances behind a load balancer) where agents register members,
//! members register themselves with an agent's referral and registered members submit
//! claims with their documents. A registration creates the
//! member's account, its subscription to a plan, the agent-client link and a welcome
//! email in the outbox, in one PostgreSQL transaction retried with exponential backoff on
//! serialization failures (40001) and deadlocks (40P01), its rows locked in one global
//! order (the agent, then the plan). The welcome email goes out after the commit through
//! an external email service behind a circuit breaker; what it cannot send now, the
//! outbox relay sends later. A claim (the claim, its documents and its receipt email in
//! the outbox) is one transaction too, allowed only to a member with a subscription. A
//! rate limit of 5 requests per client per minute on each endpoint is kept in Redis by an
//! atomic script.
//!
//! The document's claims are the checkers in [`checkers`]; its stress scenarios the fault
//! matrix in [`faults`] (the database slow or down, the email service down or slow, an API
//! instance killed mid-registration, a registration burst); [`service`] is the API with
//! its correct and buggy variants; [`deps`] the database, the rate limiter and the email
//! service as the service sees them (the only file that touches the models); [`run`]
//! wires one seeded run and [`report`] fills the document's performance tables (pool 10
//! against pool 50) with exact numbers.

pub mod checkers;
pub mod deps;
pub mod faults;
pub mod report;
pub mod run;
pub mod service;

use serde::Serialize;
use sim_runtime::schedule::FaultSchedule;
use sim_runtime::time::Duration;
use sim_runtime::SimRng;

use crate::checker::Verdict;
use crate::patterns::{Backoff, BreakerConfig};
use crate::report::{ReportError, ScenarioReport};
use crate::scenario::{FaultInfo, FaultProblem, Scenario, SwarmShape};

crate::service_variants! {
    /// The service variants.
    pub enum Variant {
        Correct => ("correct", "registrations and claims each one transaction retried on 40001/40P01, rows locked agent then plan, emails after the commit behind a breaker with an outbox, claims only by subscribers, an atomic rate-limit script"),
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
    /// Every `claim_every`-th member files a claim once their registration is answered
    /// (0: none).
    pub claim_every: u32,
    /// Documents uploaded with each claim.
    pub documents_per_claim: u32,
    pub api_instances: u32,
    pub pool: PoolSizing,
    /// PostgreSQL's `max_connections`: every instance's pool, the admin connection and
    /// anything else share it (the default, 100; the document never changes it).
    pub db_max_connections: usize,
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
            claim_every: 2,
            documents_per_claim: 2,
            api_instances: 2,
            pool: PoolSizing::BEFORE,
            db_max_connections: 100,
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

/// Interdomestik's own options: the size of the load and of the deployment.
#[derive(clap::Args, Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Options {
    /// Members registering themselves, each once.
    #[arg(long, default_value_t = Params::default().members, value_parser = clap::value_parser!(u32).range(1..))]
    pub members: u32,
    /// Agents, each registering a batch of members at once.
    #[arg(long, default_value_t = Params::default().agents, value_parser = clap::value_parser!(u32).range(1..))]
    pub agents: u32,
    /// Members in each agent's batch.
    #[arg(long, default_value_t = Params::default().batch_per_agent)]
    pub batch: u32,
    /// Every n-th member files a claim once registered (0: no claims).
    #[arg(long, default_value_t = Params::default().claim_every)]
    pub claim_every: u32,
    /// API instances behind the load balancer.
    #[arg(long, default_value_t = Params::default().api_instances, value_parser = clap::value_parser!(u32).range(1..))]
    pub api_instances: u32,
    /// Connections of each instance's database pool (the document: 10 before, 50 after).
    #[arg(long, default_value_t = Params::default().pool.max_connections, value_parser = clap::value_parser!(u32).range(1..))]
    pub pool_size: u32,
    /// Members arriving per second.
    #[arg(long, value_parser = crate::options::positive_rate)]
    pub spawn_rate: Option<f64>,
}

impl Default for Options {
    fn default() -> Self {
        let p = Params::default();
        Options {
            members: p.members,
            agents: p.agents,
            batch: p.batch_per_agent,
            claim_every: p.claim_every,
            api_instances: p.api_instances,
            pool_size: p.pool.max_connections,
            spawn_rate: None,
        }
    }
}

impl Options {
    /// A run's parameters: these sizes, and the defaults for the rest.
    pub fn params(&self) -> Params {
        let defaults = Params::default();
        Params {
            members: self.members,
            agents: self.agents,
            batch_per_agent: self.batch,
            claim_every: self.claim_every,
            api_instances: self.api_instances,
            pool: PoolSizing {
                max_connections: self.pool_size,
                ..defaults.pool
            },
            spawn_rate_per_s: self.spawn_rate.unwrap_or(defaults.spawn_rate_per_s),
            ..defaults
        }
    }
}

/// The scenario as the `sim` program and the tests see it.
#[derive(Clone, Copy, Debug)]
pub struct Interdomestik;

impl Scenario for Interdomestik {
    const NAME: &'static str = "interdomestik";
    const DESCRIPTION: &'static str =
        "Interdomestik: registrations in one retried transaction with ordered locks, an email breaker with an outbox, a Redis rate limit";

    type Variant = Variant;
    type Fault = faults::InterFault;
    type Options = Options;
    type Metrics = run::RunMetrics;
    type Params = Params;

    fn matrix() -> Vec<(FaultInfo, FaultSchedule<faults::InterFault>)> {
        faults::matrix()
    }

    fn judge(d: &run::RunData) -> (Vec<Verdict>, run::RunMetrics) {
        (checkers::check_all(&d.observations), run::metrics_of(d))
    }

    fn check_fault(fault: &faults::InterFault, options: &Options) -> Result<(), FaultProblem> {
        match *fault {
            faults::InterFault::ApiKill { instance, .. } => {
                crate::inject::instance_exists("api_kill", instance, options.api_instances)
            }
            _ => Ok(()),
        }
    }

    const SWARM: SwarmShape = faults::SWARM;

    fn draw_fault(kind: &str, rng: &mut SimRng, options: &Options) -> faults::InterFault {
        faults::draw(kind, rng, options.api_instances)
    }

    fn params(options: &Options) -> Params {
        options.params()
    }

    fn report(seed: u64, options: &Options) -> Result<ScenarioReport, ReportError> {
        report::build(seed, options)
    }
}
