//! # Medistream (seed document 000, "Failure & Resilience Testing")
//!
//! A clinic API: patients sign up (bcrypt hashing that costs CPU time on the API node's
//! simulated cores), log in for a signed token, and book appointments; each booking
//! enqueues a confirmation job on an Asynq-like queue in Redis that workers deliver
//! through an SMS provider. Requests pass a per-client rate limit kept in Redis, then the
//! token check, before any database or queue work.
//!
//! The document's failure scenarios are the fault matrix in [`faults`] (CPU saturation,
//! a signup flood, malformed tokens, Redis or PostgreSQL down, a worker killed mid-job);
//! its expectations are the checkers in [`checkers`]; [`service`] is the API and the
//! worker with their correct and buggy variants; [`deps`] the database, the rate limiter
//! and the SMS provider as the service sees them, [`jobs`] the job queue on Redis' lists
//! and sorted sets (these two are the only files that touch the models); [`run`] wires one
//! seeded run and [`report`] fills the document's "Observed Results" with exact numbers.

pub mod checkers;
pub mod deps;
pub mod faults;
pub mod jobs;
pub mod report;
pub mod run;
pub mod service;

use serde::Serialize;
use sim_runtime::schedule::FaultSchedule;
use sim_runtime::time::Duration;
use sim_runtime::{Probability, SimRng};

use crate::checker::Verdict;
use crate::patterns::Backoff;
use crate::report::{ReportError, ScenarioReport};
use crate::scenario::{FaultInfo, FaultProblem, Scenario, SwarmShape};

crate::service_variants! {
    /// The service variants.
    pub enum Variant {
        Correct => ("correct", "leased jobs with backoff and a dead-letter set, tokens checked first, hashing behind a bulkhead"),
        PopThenCrashLosesJob => ("pop_then_crash_loses_job", "a worker pops a job with no lease: a crash before it finishes loses the job"),
        AuthAfterDb => ("auth_after_db", "the user is looked up before the token is checked: rejected tokens cause database work"),
        RetryWithoutBackoff => ("retry_without_backoff", "a failed job is requeued at once with no cap: a poison job loops for ever"),
        SharedPoolForSignup => ("shared_pool_for_signup", "signup hashing has no bound on concurrent hashes: appointments queue behind a signup flood"),
    }
}

/// Sizes and settings of a run. The defaults keep a seed cheap; the report runs the
/// document's 200+ virtual users for a minute.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    /// Patients, each running the workflow (sign up, log in, book, read the booking).
    pub users: u32,
    /// Patients arriving per second.
    pub spawn_rate_per_s: f64,
    /// With `Some(t)`, each patient repeats the workflow (with think time) until `t` after
    /// the start: the document's load test. With `None`, once.
    pub load_for: Option<Duration>,
    /// Mean pause between a patient's workflows in a load test.
    pub think_time_mean: Duration,
    pub api_instances: u32,
    /// Simulated cores of each API instance.
    pub api_cores: u32,
    /// CPU time of one bcrypt hash (signup) or comparison (login). Derived from the
    /// document's ~85 workflows/s: 2 instances x 4 cores / (2 hashes x 45.6 ms) is a
    /// plateau of 87.7 workflows/s, of which a saturated run reaches about 85 (a bcrypt
    /// of cost 10 takes 40 to 100 ms on a server core).
    pub hash_cost: Duration,
    /// CPU time of handling any request (parsing, the token's signature).
    pub request_cost: Duration,
    /// How long a signup or login waits for a hashing slot before it is shed with 503.
    pub hash_wait_max: Duration,
    pub workers: u32,
    /// Jobs each worker processes at once.
    pub worker_concurrency: u32,
    /// How long a worker sleeps when the queue is empty.
    pub poll_interval: Duration,
    /// How long a dequeued job is leased to its worker before it counts as abandoned.
    pub lease: Duration,
    /// Retries of a failing job (Asynq's MaxRetry), and their backoff.
    pub retry: Backoff,
    /// Each SMS provider call fails transiently with this probability.
    pub transient_failure: Probability,
    /// A patient registers an invalid phone number with this probability: the provider
    /// refuses that confirmation for ever (a poison job).
    pub invalid_phone: Probability,
    /// A patient waits past their token's expiry before booking with this probability.
    pub dawdle: Probability,
    /// Requests per client per window before 429.
    pub rate_limit: u32,
    pub rate_window: Duration,
    pub token_ttl: Duration,
    /// How long a patient waits for an answer.
    pub user_timeout: Duration,
    /// The API's bound on a database wait (a connection, a statement).
    pub db_timeout: Duration,
    /// The API's and the workers' timeout on each Redis command.
    pub redis_timeout: Duration,
    /// The workers' timeout on an SMS provider call.
    pub provider_timeout: Duration,
    /// The bound on booking latency (p95) while a signup flood runs.
    pub booking_p95_bound: Duration,
    /// How long after the load and the last heal the queue may take to drain.
    pub drain_max: Duration,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            users: 24,
            spawn_rate_per_s: 6.0,
            load_for: None,
            think_time_mean: Duration::from_secs(1),
            api_instances: 2,
            api_cores: 4,
            hash_cost: Duration::from_micros(45_600),
            request_cost: Duration::from_micros(500),
            hash_wait_max: Duration::from_secs(3),
            workers: 2,
            worker_concurrency: 2,
            poll_interval: Duration::from_millis(500),
            lease: Duration::from_secs(5),
            retry: Backoff {
                base: Duration::from_millis(500),
                max: Duration::from_secs(4),
                attempts_max: Some(4),
            },
            transient_failure: Probability::of(0.2),
            invalid_phone: Probability::of(0.1),
            dawdle: Probability::of(0.1),
            rate_limit: 10,
            rate_window: Duration::from_secs(1),
            token_ttl: Duration::from_secs(15),
            user_timeout: Duration::from_secs(10),
            db_timeout: Duration::from_secs(1),
            redis_timeout: Duration::from_millis(300),
            provider_timeout: Duration::from_secs(1),
            booking_p95_bound: Duration::from_millis(500),
            drain_max: Duration::from_secs(20),
        }
    }
}

/// Medistream's own options: the size of the load and of the API.
#[derive(clap::Args, Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Options {
    /// Patients, each signing up, logging in and booking once.
    #[arg(long, default_value_t = Params::default().users, value_parser = clap::value_parser!(u32).range(1..))]
    pub users: u32,
    /// API instances behind the load balancer.
    #[arg(long, default_value_t = Params::default().api_instances, value_parser = clap::value_parser!(u32).range(1..))]
    pub api_instances: u32,
    /// Simulated cores of each API instance.
    #[arg(long, default_value_t = Params::default().api_cores, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub api_cores: u32,
    /// Queue workers.
    #[arg(long, default_value_t = Params::default().workers, value_parser = clap::value_parser!(u32).range(1..))]
    pub workers: u32,
    /// Patients arriving per second.
    #[arg(long, value_parser = crate::options::positive_rate)]
    pub spawn_rate: Option<f64>,
}

impl Default for Options {
    fn default() -> Self {
        let p = Params::default();
        Options {
            users: p.users,
            api_instances: p.api_instances,
            api_cores: p.api_cores,
            workers: p.workers,
            spawn_rate: None,
        }
    }
}

impl Options {
    /// A run's parameters: these sizes, and the defaults for the rest.
    pub fn params(&self) -> Params {
        let defaults = Params::default();
        Params {
            users: self.users,
            api_instances: self.api_instances,
            api_cores: self.api_cores,
            workers: self.workers,
            spawn_rate_per_s: self.spawn_rate.unwrap_or(defaults.spawn_rate_per_s),
            ..defaults
        }
    }
}

/// The scenario as the `sim` program and the tests see it.
#[derive(Clone, Copy, Debug)]
pub struct Medistream;

impl Scenario for Medistream {
    const NAME: &'static str = "medistream";
    const DESCRIPTION: &'static str =
        "Medistream: CPU-bound signup, token auth and rate limits, a Redis job queue with retries and dead letters";

    type Variant = Variant;
    type Fault = faults::MediFault;
    type Options = Options;
    type Metrics = run::RunMetrics;
    type Params = Params;

    fn matrix() -> Vec<(FaultInfo, FaultSchedule<faults::MediFault>)> {
        faults::matrix()
    }

    fn judge(d: &run::RunData) -> (Vec<Verdict>, run::RunMetrics) {
        (checkers::check_all(&d.observations), run::metrics_of(d))
    }

    fn check_fault(fault: &faults::MediFault, options: &Options) -> Result<(), FaultProblem> {
        match *fault {
            faults::MediFault::WorkerCrash { worker, .. } => crate::inject::member_exists(
                "worker_crash",
                "worker",
                ("workers", "--workers"),
                worker,
                options.workers,
            ),
            faults::MediFault::CpuSaturation { cores_taken, .. }
                if cores_taken > options.api_cores =>
            {
                Err(FaultProblem {
                    field: "cores_taken".into(),
                    detail: format!(
                        "a competing load on {cores_taken} cores, but API instances have {}; \
                         --api-cores sets how many",
                        options.api_cores
                    ),
                })
            }
            _ => Ok(()),
        }
    }

    const SWARM: SwarmShape = faults::SWARM;

    fn draw_fault(kind: &str, rng: &mut SimRng, options: &Options) -> faults::MediFault {
        faults::draw(kind, rng, options.workers, options.api_cores)
    }

    fn params(options: &Options) -> Params {
        options.params()
    }

    fn report(seed: u64, options: &Options) -> Result<ScenarioReport, ReportError> {
        report::build(seed, options)
    }
}
