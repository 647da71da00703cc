//! # Flux-Gate, the flash sale (seed document 002)
//!
//! API instances behind a load balancer decrement stock in Redis and hand orders to an
//! inventory worker through a Kafka topic; the worker writes them to PostgreSQL. The
//! document's chaos tests are the fault matrix in [`faults`]; its invariants are the
//! checkers in [`checkers`]; [`service`] is the service logic with its correct and buggy
//! variants; [`run`] wires one seeded run; [`report`] fills the document's tables.

pub mod checkers;
pub mod deps;
pub mod faults;
pub mod report;
pub mod run;
pub mod service;

use serde::{Deserialize, Serialize};
use sim_runtime::time::Duration;

use crate::patterns::Backoff;
use crate::scenario::{
    check_name, FaultChoice, FaultInfo, RunOutput, RunSpec, Scenario, SpecError, VariantInfo,
};

/// The service variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    Correct,
    CheckThenDecrement,
    CommitBeforeWrite,
    NoIdempotency,
    KafkaDownNoCompensation,
}

impl Variant {
    pub const ALL: [Variant; 5] = [
        Variant::Correct,
        Variant::CheckThenDecrement,
        Variant::CommitBeforeWrite,
        Variant::NoIdempotency,
        Variant::KafkaDownNoCompensation,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Correct => "correct",
            Variant::CheckThenDecrement => "check_then_decrement",
            Variant::CommitBeforeWrite => "commit_before_write",
            Variant::NoIdempotency => "no_idempotency",
            Variant::KafkaDownNoCompensation => "kafka_down_no_compensation",
        }
    }

    pub fn parse(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }

    pub fn info(self) -> VariantInfo {
        let description = match self {
            Variant::Correct => "atomic reserve + Redis outbox + idempotent worker: never oversells, loses or duplicates",
            Variant::CheckThenDecrement => "GET then SET of the stock: oversells under concurrency",
            Variant::CommitBeforeWrite => "worker commits offsets before the DB insert: a crash loses orders",
            Variant::NoIdempotency => "idempotency key ignored: a retry after a timeout orders twice",
            Variant::KafkaDownNoCompensation => "the document's design: stock decremented, order lost when Kafka is down",
        };
        VariantInfo {
            name: self.name(),
            buggy: self != Variant::Correct,
            description,
        }
    }
}

/// Sizes and timeouts of a run. The user and item counts are the scenario's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
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

impl Params {
    /// Reads `{"users": .., "items": ..}` (and any other field) over the defaults.
    pub fn from_json(v: &serde_json::Value) -> Result<Params, SpecError> {
        if v.is_null() || v.as_object().is_some_and(|m| m.is_empty()) {
            return Ok(Params::default());
        }
        let p: Params =
            serde_json::from_value(v.clone()).map_err(|e| SpecError::BadParams(e.to_string()))?;
        if p.users == 0 || p.items == 0 || p.api_instances == 0 {
            return Err(SpecError::BadParams(
                "users, items and api_instances must be positive".into(),
            ));
        }
        Ok(p)
    }
}

/// The scenario as the `sim` program and the tests see it.
pub struct FlashSale;

impl Scenario for FlashSale {
    fn name(&self) -> &'static str {
        "flash-sale"
    }

    fn description(&self) -> &'static str {
        "Flux-Gate: 1,000 users race for 100 items through Redis, Kafka and PostgreSQL"
    }

    fn variants(&self) -> Vec<VariantInfo> {
        Variant::ALL.iter().map(|v| v.info()).collect()
    }

    fn faults(&self) -> Vec<FaultInfo> {
        faults::matrix().into_iter().map(|(i, _)| i).collect()
    }

    fn validate(&self, spec: &RunSpec) -> Result<(), SpecError> {
        let variants: Vec<&str> = Variant::ALL.iter().map(|v| v.name()).collect();
        check_name("flash-sale", "variant", &spec.variant, &variants)?;
        match &spec.fault {
            FaultChoice::Named(n) => {
                let names: Vec<&str> = faults::matrix().iter().map(|(i, _)| i.name).collect();
                check_name("flash-sale", "fault", n, &names)?;
            }
            FaultChoice::Swarm => {}
            FaultChoice::Schedule(v) => {
                run::parse_schedule(v)?;
            }
        }
        Params::from_json(&spec.params)?;
        Ok(())
    }

    fn run(&self, spec: &RunSpec) -> Result<RunOutput, SpecError> {
        run::run(spec, None)
    }

    fn run_traced(
        &self,
        spec: &RunSpec,
        out: Box<dyn std::io::Write>,
    ) -> Result<RunOutput, SpecError> {
        run::run(spec, Some(out))
    }

    fn shrink(&self, spec: &RunSpec) -> Result<Option<(serde_json::Value, RunOutput)>, SpecError> {
        run::shrink(spec)
    }

    fn report(
        &self,
        seed: u64,
        params: &serde_json::Value,
    ) -> Result<crate::report::ScenarioReport, SpecError> {
        report::build(seed, params)
    }
}
