//! # Flux-Gate, the flash sale (seed document 002)
//!
//! API instances behind a load balancer decrement stock in Redis and hand orders to an
//! inventory worker through a Kafka topic; the worker writes them to PostgreSQL. The
//! document's chaos tests are the fault matrix in [`faults`]; its invariants are the
//! checkers in [`checkers`]; [`service`] is the service logic with its correct and buggy
//! variants; [`run`] wires one seeded run; [`report`] fills the document's tables. This
//! module holds the scenario's contract: its [`Variant`]s, its [`Options`] and the
//! [`Params`] they set.

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
use crate::patterns::Backoff;
use crate::report::{ReportError, ScenarioReport};
use crate::scenario::{FaultInfo, FaultProblem, Scenario, SwarmShape};

crate::service_variants! {
    /// The service variants.
    pub enum Variant {
        Correct => ("correct", "atomic reserve + Redis outbox + idempotent worker: never oversells, loses or duplicates"),
        CheckThenDecrement => ("check_then_decrement", "GET then SET of the stock: oversells under concurrency"),
        CommitBeforeWrite => ("commit_before_write", "worker commits offsets before the DB insert: a crash loses orders"),
        NoIdempotency => ("no_idempotency", "idempotency key ignored: a retry after a timeout orders twice"),
        KafkaDownNoCompensation => ("kafka_down_no_compensation", "the document's design: stock decremented, order lost when Kafka is down"),
    }
}

/// Sizes and timeouts of a run: [`Options`] set the sizes, the rest are the service's
/// settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    pub users: u32,
    pub items: u32,
    pub api_instances: u32,
    /// Users arriving per second.
    pub spawn_rate_per_s: f64,
    /// How long a user waits for the API before retrying with the same key.
    pub user_timeout: Duration,
    /// Attempts per user (the first included).
    pub user_attempts: u32,
    /// The API's timeout on each Redis command.
    pub redis_timeout: Duration,
    /// The producer's delivery timeout.
    pub kafka_timeout: Duration,
    pub worker_batch: usize,
    pub worker_retry: Backoff,
    /// How long after the last heal the backlog may take to drain (the liveness bound).
    pub drain_bound: Duration,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            users: 1000,
            items: 100,
            api_instances: 2,
            spawn_rate_per_s: 100.0,
            user_timeout: Duration::from_secs(2),
            user_attempts: 3,
            redis_timeout: Duration::from_millis(500),
            kafka_timeout: Duration::from_secs(1),
            worker_batch: 20,
            worker_retry: Backoff {
                base: Duration::from_millis(100),
                max: Duration::from_secs(2),
                attempts_max: None,
            },
            drain_bound: Duration::from_secs(60),
        }
    }
}

/// The flash sale's own options: the size of the sale.
#[derive(clap::Args, Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Options {
    /// Virtual users racing for the items.
    #[arg(long, default_value_t = Params::default().users, value_parser = clap::value_parser!(u32).range(1..))]
    pub users: u32,
    /// Items on sale.
    #[arg(long, default_value_t = Params::default().items, value_parser = clap::value_parser!(u32).range(1..))]
    pub items: u32,
    /// API instances behind the load balancer.
    #[arg(long, default_value_t = Params::default().api_instances, value_parser = clap::value_parser!(u32).range(1..))]
    pub api_instances: u32,
    /// Users arriving per second [default: 100 in a run, 10 in the report].
    #[arg(long, value_parser = crate::options::positive_rate)]
    pub spawn_rate: Option<f64>,
}

impl Default for Options {
    fn default() -> Self {
        let p = Params::default();
        Options {
            users: p.users,
            items: p.items,
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
            items: self.items,
            api_instances: self.api_instances,
            spawn_rate_per_s: self.spawn_rate.unwrap_or(defaults.spawn_rate_per_s),
            ..defaults
        }
    }
}

/// The scenario as the `sim` program and the tests see it.
#[derive(Clone, Copy, Debug)]
pub struct FlashSale;

impl Scenario for FlashSale {
    const NAME: &'static str = "flash-sale";
    const DESCRIPTION: &'static str =
        "Flux-Gate: 1,000 users race for 100 items through Redis, Kafka and PostgreSQL";

    type Variant = Variant;
    type Fault = faults::FlashFault;
    type Options = Options;
    type Metrics = run::RunMetrics;
    type Params = Params;

    fn matrix() -> Vec<(FaultInfo, FaultSchedule<faults::FlashFault>)> {
        faults::matrix()
    }

    fn judge(d: &run::RunData) -> (Vec<Verdict>, run::RunMetrics) {
        (checkers::check_all(&d.observations), run::metrics_of(d))
    }

    fn check_fault(fault: &faults::FlashFault, options: &Options) -> Result<(), FaultProblem> {
        match *fault {
            faults::FlashFault::ApiKill { instance, .. } => {
                crate::inject::instance_exists("api_kill", instance, options.api_instances)
            }
            _ => Ok(()),
        }
    }

    const SWARM: SwarmShape = faults::SWARM;

    fn draw_fault(kind: &str, rng: &mut SimRng, options: &Options) -> faults::FlashFault {
        faults::draw(kind, rng, options.api_instances)
    }

    fn params(options: &Options) -> Params {
        options.params()
    }

    fn report(seed: u64, options: &Options) -> Result<ScenarioReport, ReportError> {
        report::build(seed, options)
    }
}

#[cfg(test)]
mod tests {
    use clap::{Args, Command, FromArgMatches};

    use super::*;

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        let cmd = Options::augment_args(Command::new("flash-sale"));
        let m =
            cmd.try_get_matches_from(std::iter::once("flash-sale").chain(args.iter().copied()))?;
        Options::from_arg_matches(&m)
    }

    #[test]
    fn no_option_means_the_defaults() {
        assert_eq!(parse(&[]).unwrap(), Options::default());
        assert_eq!(Options::default().params(), Params::default());
    }

    #[test]
    fn options_print_back_as_the_arguments_that_give_them() {
        let options = Options {
            users: 200,
            items: 20,
            api_instances: 3,
            spawn_rate: Some(12.5),
        };
        let args = crate::options::args(&options);
        let mut pairs: Vec<String> = args.chunks(2).map(|p| p.join(" ")).collect();
        pairs.sort();
        assert_eq!(
            pairs,
            [
                "--api-instances 3",
                "--items 20",
                "--spawn-rate 12.5",
                "--users 200"
            ]
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(parse(&args).unwrap(), options);
        assert!(crate::options::args(&Options::default()).is_empty());
    }

    #[test]
    fn bad_option_values_are_refused() {
        for args in [
            &["--users", "0"][..],
            &["--items", "many"],
            &["--spawn-rate", "-1"],
            &["--spawn-rate", "inf"],
            &["--userz", "5"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn the_time_limit_grows_with_the_sale() {
        // 200 users arriving over 1,000 s of virtual time outlast a fixed 900 s limit.
        let options = Options {
            users: 200,
            items: 20,
            spawn_rate: Some(0.2),
            ..Options::default()
        };
        let plan = crate::scenario::Plan::<FlashSale>::parse("correct", "none")
            .unwrap()
            .with_options(options);
        let out = plan.run(1);
        assert!(out.report.is_pass(), "{}", out.report.outcome);
        assert!(
            out.report.time.as_nanos() > 1_000_000_000_000,
            "{}",
            out.report.time
        );
        assert_eq!(out.failure_summary(), None);
    }
}
