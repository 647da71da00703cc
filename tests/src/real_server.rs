//! The real servers the conformance suites compare the models against.
//!
//! `.ci/servers start` starts Redis 7 and PostgreSQL 15 on loopback and exports their
//! addresses as `SIM_REDIS_URL` and `SIM_PG_URL`; `.ci/run` does that before the tests. A
//! suite asks [`url`] for its server: outside CI a missing server skips the suite with a
//! printed reason (so `cargo test` works on a laptop without them), but under `CI=true` a
//! missing server is a failure, so that CI can never pass by comparing nothing.

use std::fmt;

/// A real server a conformance suite talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    Redis,
    Postgres,
}

impl Server {
    /// The environment variable that holds the server's address.
    pub fn env_var(self) -> &'static str {
        match self {
            Server::Redis => "SIM_REDIS_URL",
            Server::Postgres => "SIM_PG_URL",
        }
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Server::Redis => "Redis 7",
            Server::Postgres => "PostgreSQL 15",
        })
    }
}

/// Whether this process runs in CI, where every suite must run.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The server's address, or `None` (after printing why the suite is skipped) when it is not
/// configured outside CI.
///
/// # Panics
/// Under `CI=true` when the address is not set: a conformance suite that compares nothing
/// must not pass.
pub fn url(server: Server) -> Option<String> {
    match std::env::var(server.env_var()) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if in_ci() => panic!(
            "{server} is required under CI=true but {} is not set: .ci/run starts it with \
             `eval \"$(.ci/servers start)\"`",
            server.env_var()
        ),
        _ => {
            eprintln!(
                "skipped: {server} is not configured ({} is unset); run \
                 `eval \"$(.ci/servers start)\"` first to compare the model with it",
                server.env_var()
            );
            None
        }
    }
}

/// How many generated cases a suite runs: `default`, or `SIM_CONFORMANCE_CASES` when set
/// (for a longer run by hand).
pub fn cases(default: usize) -> usize {
    std::env::var("SIM_CONFORMANCE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
