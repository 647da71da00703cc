//! # scenarios: the seed systems under test
//!
//! Service logic from the seed documents, run against the simulated dependencies, with
//! their fault matrices, checkers, metrics and reports, and the `sim` program.
//!
//! Map of the crate:
//! - [`scenario`]: the `Scenario` trait every system implements, `RunSpec`, `RunOutput`.
//! - [`flash_sale`]: Flux-Gate (seed 002), the first system.
//! - [`patterns`]: retry with backoff, circuit breaker, rate limiter, load balancer.
//! - [`workload`]: virtual users with a spawn rate and think time.
//! - [`metrics`]: latency percentiles, error rates, throughput per phase.
//! - [`checker`]: verdicts; [`shrink`]: fault-schedule shrinking; [`explore`]: parallel
//!   seed exploration; [`report`]: Markdown/JSON tables.
//! - [`text`]: numbers appended to strings without `format!`, for hot paths.

pub mod checker;
pub mod explore;
pub mod flash_sale;
pub mod metrics;
pub mod patterns;
pub mod report;
pub mod scenario;
pub mod shrink;
pub mod text;
pub mod workload;

use scenario::Scenario;

/// Every scenario the `sim` program knows.
pub fn registry() -> Vec<&'static dyn Scenario> {
    vec![&flash_sale::FlashSale]
}

/// A scenario by name.
pub fn find(name: &str) -> Option<&'static dyn Scenario> {
    registry().into_iter().find(|s| s.name() == name)
}
