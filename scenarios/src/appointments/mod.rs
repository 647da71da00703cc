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
pub mod report;
pub mod run;
pub mod service;

use serde::Serialize;
use sim_runtime::schedule::FaultSchedule;
use sim_runtime::time::Duration;
use sim_runtime::SimRng;

use crate::checker::Verdict;
use crate::patterns::BreakerConfig;
use crate::report::{ReportError, ScenarioReport};
use crate::scenario::{FaultInfo, FaultProblem, Scenario, SwarmShape};

crate::service_variants! {
    /// The service variants.
    pub enum Variant {
        Correct => ("correct", "unique slot constraint (409 for the loser), a breaker that recovers, versioned cache invalidation"),
        SelectThenInsert => ("select_then_insert", "checks the slot with SELECT, then INSERTs, at READ COMMITTED with no constraint: double-books"),
        BreakerStuckOpen => ("breaker_stuck_open", "a successful HALF_OPEN probe is counted as a failure: the breaker never closes again"),
        StaleCache => ("stale_cache", "a booking does not invalidate the cached free-slot list: users see and try slots that are gone"),
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
            // The document's spike and stress tests run 100 and 200 users. What makes
            // slots contested is the arrival rate per doctor against the slots each has
            // (2.5 users/s for 60 slots, over a 30 s arrival window); more doctors at the
            // same rate repeat the same race and cost time per seed, which a swarm spends
            // better on more seeds. `--users 300 --doctors 4 --spawn-rate 10` doubles it.
            users: 150,
            doctors: 2,
            slots_per_doctor: 60,
            api_instances: 2,
            spawn_rate_per_s: 5.0,
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

/// The appointments backend's own options: the size of the clinic and of the load.
#[derive(clap::Args, Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Options {
    /// Virtual users, each booking one appointment.
    #[arg(long, default_value_t = Params::default().users, value_parser = clap::value_parser!(u32).range(1..))]
    pub users: u32,
    /// Doctors, each with their own slots.
    #[arg(long, default_value_t = Params::default().doctors, value_parser = clap::value_parser!(u32).range(1..))]
    pub doctors: u32,
    /// Slots per doctor.
    #[arg(long, default_value_t = Params::default().slots_per_doctor, value_parser = clap::value_parser!(u32).range(1..))]
    pub slots: u32,
    /// API instances behind the load balancer.
    #[arg(long, default_value_t = Params::default().api_instances, value_parser = clap::value_parser!(u32).range(1..))]
    pub api_instances: u32,
    /// Users arriving per second.
    #[arg(long, value_parser = crate::options::positive_rate)]
    pub spawn_rate: Option<f64>,
}

impl Default for Options {
    fn default() -> Self {
        let p = Params::default();
        Options {
            users: p.users,
            doctors: p.doctors,
            slots: p.slots_per_doctor,
            api_instances: p.api_instances,
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
            doctors: self.doctors,
            slots_per_doctor: self.slots,
            api_instances: self.api_instances,
            spawn_rate_per_s: self.spawn_rate.unwrap_or(defaults.spawn_rate_per_s),
            ..defaults
        }
    }
}

/// The scenario as the `sim` program and the tests see it.
#[derive(Clone, Copy, Debug)]
pub struct Appointments;

impl Scenario for Appointments {
    const NAME: &'static str = "appointments";
    const DESCRIPTION: &'static str =
        "Phase 11: users race to book doctors' slots through a cached API with a database breaker";

    type Variant = Variant;
    type Fault = faults::ApptFault;
    type Options = Options;
    type Metrics = run::RunMetrics;
    type Params = Params;

    fn matrix() -> Vec<(FaultInfo, FaultSchedule<faults::ApptFault>)> {
        faults::matrix()
    }

    fn judge(d: &run::RunData) -> (Vec<Verdict>, run::RunMetrics) {
        (checkers::check_all(&d.observations), run::metrics_of(d))
    }

    fn check_fault(fault: &faults::ApptFault, options: &Options) -> Result<(), FaultProblem> {
        match *fault {
            faults::ApptFault::ApiKill { instance, .. } => {
                crate::inject::instance_exists("api_kill", instance, options.api_instances)
            }
            _ => Ok(()),
        }
    }

    const SWARM: SwarmShape = faults::SWARM;

    fn draw_fault(kind: &str, rng: &mut SimRng, options: &Options) -> faults::ApptFault {
        faults::draw(kind, rng, options.api_instances)
    }

    fn params(options: &Options) -> Params {
        options.params()
    }

    fn report(seed: u64, options: &Options) -> Result<ScenarioReport, ReportError> {
        report::build(seed, options)
    }
}
