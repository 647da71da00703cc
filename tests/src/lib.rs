//! Shared helpers of the integration tests.
//!
//! - [`real_server`]: where the conformance suites find the real Redis 7 and PostgreSQL 15
//!   that `.ci/servers` starts, and what they do when one is absent.
//! - [`browser`]: headless Chromium for the page tests.

pub mod browser;
pub mod real_server;
