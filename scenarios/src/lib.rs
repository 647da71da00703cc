//! # scenarios: the seed systems under test
//!
//! Service logic from the seed documents, run against the simulated dependencies, with
//! their fault matrices, checkers, metrics and reports, and the `sim` program.
//!
//! Map of the crate:
//! - [`scenario`]: the `Scenario` trait every system implements, the `Plan` of a run (all
//!   but the seed, parsed once) and what a run outputs.
//! - [`catalog`]: the scenarios by name, their types erased, for the `sim` program;
//!   [`options`]: a scenario's own options printed back as arguments.
//! - [`flash_sale`]: Flux-Gate (seed 002), the first system.
//! - [`appointments`]: the Phase 11 appointments backend (seed 003).
//! - [`medistream`]: Medistream (seed 000): CPU-bound signup, auth and rate limits, a
//!   Redis job queue with retries and dead letters.
//! - [`story_backend`]: the story backend (seed 001): pools, cache, breaker, health,
//!   OOM and CPU limits, and the RTO/RPO tables.
//! - [`interdomestik`]: Interdomestik (seed 004): registrations in one retried
//!   transaction with ordered locks, an email breaker with an outbox, a Redis rate limit.
//! - [`patterns`]: retry with backoff, circuit breaker, rate limiter, load balancer.
//! - [`deps`]: a failed dependency call as services see it, a pool of Redis connections.
//! - [`inject`]: fault plumbing (windows that end, slow links, instance checks).
//! - [`workload`]: virtual users with a spawn rate and think time.
//! - [`metrics`]: latency percentiles, error rates, throughput per phase.
//! - [`checker`]: verdicts; [`shrink`]: fault-schedule shrinking; [`explore`]: parallel
//!   seed exploration; [`report`]: Markdown/JSON tables.
//! - [`text`]: numbers appended to ids in place, for hot paths.
//! - [`timeline`]: a run's HTML timeline with its scheduled faults and violation.

pub mod appointments;
pub mod catalog;
pub mod checker;
#[cfg(test)]
mod contract_tests;
pub mod deps;
pub mod explore;
pub mod flash_sale;
pub mod inject;
pub mod interdomestik;
pub mod medistream;
pub mod metrics;
pub mod options;
pub mod patterns;
pub mod report;
pub mod scenario;
pub mod shrink;
pub mod story_backend;
pub mod text;
pub mod timeline;
pub mod workload;
