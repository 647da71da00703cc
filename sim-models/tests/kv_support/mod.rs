//! Shared setup of the `kv_*` integration tests that run a server: starting one, clients
//! with a timeout, instants on the virtual clock, every command's event in order, and a
//! runner for the tests that compare two runs.

#![allow(dead_code)]

pub mod table;

use sim_models::kv::{self, ClientConfig, CmdEvent, Config, KvClient, KvServer, WriteEvent};
use sim_runtime::time::{Duration, Instant};
use sim_runtime::trace::{self, Capture};
use sim_runtime::Sim;

/// Starts the server "redis" and waits until it listens.
pub async fn start(config: Config) -> KvServer {
    let server = kv::start("redis", config);
    server.ready().await;
    server
}

/// A client of `server`'s current primary with a `timeout_ms` timeout per call.
pub fn client(server: &KvServer, timeout_ms: u64) -> KvClient {
    KvClient::new(
        server,
        ClientConfig {
            timeout: Duration::from_millis(timeout_ms),
        },
    )
}

/// `ms` milliseconds after the start of the simulation.
pub fn at_ms(ms: u64) -> Instant {
    Instant::START + Duration::from_millis(ms)
}

/// Every command the servers run from now on: the `kv.cmd` and `kv.cmd.write` captures.
pub struct Commands {
    reads: Capture<CmdEvent<'static>>,
    writes: Capture<CmdEvent<'static>>,
}

impl Commands {
    pub fn capture() -> Self {
        Commands {
            reads: trace::capture::<CmdEvent<'_>>(),
            writes: trace::capture::<WriteEvent<'_>>(),
        }
    }

    /// Both captures merged in trace order.
    pub fn all(&self) -> Vec<CmdEvent<'static>> {
        let mut all = self.reads.to_vec();
        all.extend(self.writes.to_vec());
        all.sort_by_key(|c| c.seq);
        all.into_iter().map(|c| c.event).collect()
    }

    /// The commands that wrote, in order.
    pub fn writes(&self) -> Vec<CmdEvent<'static>> {
        self.writes.values()
    }
}

/// Runs one simulation of `seed` and returns its output and trace fingerprint, failing
/// with the report if it did not pass: for the tests that compare two runs.
pub fn run_fingerprint<T: 'static, F, Fut>(seed: u64, main: F) -> (T, u64)
where
    F: FnOnce() -> Fut + 'static,
    Fut: std::future::Future<Output = T> + 'static,
{
    let r = Sim::new(seed).run(main);
    assert!(r.report.is_pass(), "{}", r.report);
    (
        r.output.expect("a passing run has an output"),
        r.report.fingerprint,
    )
}
