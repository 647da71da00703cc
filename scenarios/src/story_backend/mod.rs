//! # The story backend (seed document 001, "Failure Scenarios Test Results")
//!
//! A story-sharing API: users read stories (with their comments) and post stories and
//! comments. Two or more API instances sit behind a load balancer over PostgreSQL (users,
//! stories, comments) reached through a connection pool, with a Redis cache that fails
//! open, a Redis rate limiter, a health endpoint that answers 503 while the database is
//! unreachable, retries with backoff and jitter, and a circuit breaker on the database.
//! A write is acknowledged only once it is committed in the database.
//!
//! The document's six failure scenarios (database down, Redis down, a 500 ms latency
//! spike, 10 s slow queries, memory pressure, CPU saturation) are the fault matrix in
//! [`faults`]; its expectations are the checkers in [`checkers`]; [`service`] is the API
//! with its correct and buggy variants; [`deps`] the database, cache, rate limiter and
//! write-behind list as the service sees them (the only file that touches the models);
//! [`run`] wires one seeded run and [`report`] fills the document's tables, RTO and RPO
//! included, with exact numbers.

pub mod checkers;
pub mod deps;
pub mod faults;
pub mod report;
pub mod run;
pub mod service;

use serde::Serialize;
use sim_runtime::schedule::FaultSchedule;
use sim_runtime::time::Duration;
use sim_runtime::{Probability, SimRng};

use crate::checker::Verdict;
use crate::patterns::{Backoff, BreakerConfig};
use crate::report::{ReportError, ScenarioReport};
use crate::scenario::{FaultInfo, FaultProblem, Scenario, SwarmShape};

crate::service_variants! {
    /// The service variants.
    pub enum Variant {
        Correct => ("correct", "bounded pool waits, fail-open cache and limiter, writes acknowledged once committed, capped retries with backoff behind a breaker"),
        NoPoolTimeout => ("no_pool_timeout", "acquiring a connection waits forever and nothing bounds the request: during slow queries requests outlive the 30 s timeout"),
        CacheFailClosed => ("cache_fail_closed", "a cache error fails the read with 500 although the database is up"),
        WriteBehindCache => ("write_behind_cache", "a write is acknowledged once in Redis and flushed to the database later: a Redis crash loses it"),
        RetryStorm => ("retry_storm", "database calls are retried at a fixed short interval with no cap: failures multiply the database load"),
    }
}

/// Sizes and settings of a run. The defaults keep a seed cheap; the report runs the
/// document's 100 (or 50) users for minutes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    /// Virtual users, each repeating requests (read, post, comment) until `load_for`.
    pub users: u32,
    /// Users arriving per second.
    pub spawn_rate_per_s: f64,
    /// How long after the start users keep sending requests.
    pub load_for: Duration,
    /// Mean pause between a user's requests.
    pub think_time_mean: Duration,
    /// A request is a read with this probability, else a write.
    pub read_share: Probability,
    /// A write is a comment with this probability, else a new story.
    pub comment_share: Probability,
    /// Stories in the database before the run, which reads pick from.
    pub stories_seeded: u32,
    pub api_instances: u32,
    /// Simulated cores of each API instance.
    pub api_cores: u32,
    /// CPU time of handling one request (routing, serialisation).
    pub request_cost: Duration,
    /// Connections in each instance's database pool.
    pub pool_size: usize,
    /// How long a request waits for a pooled connection before it is refused (503).
    pub acquire_timeout: Duration,
    /// Idle pooled connections older than this are closed.
    pub idle_timeout: Duration,
    /// The request timeout: the statement timeout of every query, and the bound on a
    /// request's whole time in the correct variant.
    pub request_timeout: Duration,
    /// The API's timeout on each Redis command (cache, rate limiter).
    pub redis_timeout: Duration,
    /// The health check's bound on its `SELECT 1` (connect and reply).
    pub health_timeout: Duration,
    /// Retries of a database call that failed for want of a connection or the network.
    pub retry: Backoff,
    /// No retry starts later than this after the request arrived, so that retries stay
    /// inside the request timeout.
    pub retry_budget: Duration,
    /// The buggy variant's fixed pause between retries.
    pub storm_pause: Duration,
    pub breaker: BreakerConfig,
    /// How long a cached story lives.
    pub cache_ttl: Duration,
    /// Requests per client per window before 429.
    pub rate_limit: u32,
    pub rate_window: Duration,
    /// Each API instance's memory limit (its container's), and what the process holds
    /// once started.
    pub memory_budget: u64,
    pub memory_base: u64,
    /// Memory a request holds for its response once its query returned.
    pub response_memory: u64,
    /// How long a killed API instance takes to be back (the orchestrator's restart).
    pub restart_delay: Duration,
    /// How often the write-behind variant flushes Redis to the database.
    pub flush_every: Duration,
    /// How long a user waits for an answer.
    pub user_timeout: Duration,
    /// How often the monitor probes each instance's health endpoint.
    pub health_every: Duration,
    /// How long after the last heal the service may take to answer again (liveness).
    pub recovery_max: Duration,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            users: 24,
            spawn_rate_per_s: 12.0,
            load_for: Duration::from_secs(4),
            think_time_mean: Duration::from_secs(1),
            read_share: Probability::of(0.7),
            comment_share: Probability::of(0.5),
            stories_seeded: 20,
            api_instances: 2,
            api_cores: 2,
            request_cost: Duration::from_millis(2),
            pool_size: 3,
            acquire_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            redis_timeout: Duration::from_millis(250),
            health_timeout: Duration::from_millis(500),
            retry: Backoff {
                base: Duration::from_millis(100),
                max: Duration::from_secs(2),
                attempts_max: Some(3),
            },
            retry_budget: Duration::from_secs(10),
            storm_pause: Duration::from_millis(50),
            breaker: BreakerConfig {
                failures_to_open: 5,
                open_duration: Duration::from_secs(5),
                successes_to_close: 2,
            },
            cache_ttl: Duration::from_secs(60),
            rate_limit: 50,
            rate_window: Duration::from_secs(1),
            memory_budget: 512 << 20,
            memory_base: 192 << 20,
            response_memory: 8 << 20,
            restart_delay: Duration::from_secs(2),
            flush_every: Duration::from_millis(500),
            user_timeout: Duration::from_secs(60),
            health_every: Duration::from_millis(500),
            recovery_max: Duration::from_secs(15),
        }
    }
}

/// The story backend's own options: the size of the load and of the API.
#[derive(clap::Args, Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Options {
    /// Virtual users, each sending requests for the load's duration.
    #[arg(long, default_value_t = Params::default().users, value_parser = clap::value_parser!(u32).range(1..))]
    pub users: u32,
    /// API instances behind the load balancer.
    #[arg(long, default_value_t = Params::default().api_instances, value_parser = clap::value_parser!(u32).range(1..))]
    pub api_instances: u32,
    /// Simulated cores of each API instance.
    #[arg(long, default_value_t = Params::default().api_cores, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub api_cores: u32,
    /// Connections in each API instance's database pool.
    #[arg(long, default_value_t = Params::default().pool_size as u32, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub pool_size: u32,
    /// Users arriving per second.
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
            pool_size: p.pool_size as u32,
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
            pool_size: self.pool_size as usize,
            spawn_rate_per_s: self.spawn_rate.unwrap_or(defaults.spawn_rate_per_s),
            ..defaults
        }
    }
}

/// The scenario as the `sim` program and the tests see it.
#[derive(Clone, Copy, Debug)]
pub struct StoryBackend;

impl Scenario for StoryBackend {
    const NAME: &'static str = "story-backend";
    const DESCRIPTION: &'static str =
        "A story-sharing API over PostgreSQL and a Redis cache: pools, breaker, retries, health, OOM and CPU limits";

    type Variant = Variant;
    type Fault = faults::StoryFault;
    type Options = Options;
    type Metrics = run::RunMetrics;
    type Params = Params;

    fn matrix() -> Vec<(FaultInfo, FaultSchedule<faults::StoryFault>)> {
        faults::matrix()
    }

    fn judge(d: &run::RunData) -> (Vec<Verdict>, run::RunMetrics) {
        (checkers::check_all(&d.observations), run::metrics_of(d))
    }

    fn check_fault(fault: &faults::StoryFault, options: &Options) -> Result<(), FaultProblem> {
        match *fault {
            faults::StoryFault::MemoryPressure { instance, .. } => {
                crate::inject::instance_exists("memory_pressure", instance, options.api_instances)
            }
            faults::StoryFault::CpuSaturation { cores_taken, .. }
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

    fn draw_fault(kind: &str, rng: &mut SimRng, options: &Options) -> faults::StoryFault {
        faults::draw(kind, rng, options.api_instances, options.api_cores)
    }

    fn params(options: &Options) -> Params {
        options.params()
    }

    fn report(seed: u64, options: &Options) -> Result<ScenarioReport, ReportError> {
        report::build(seed, options)
    }
}
