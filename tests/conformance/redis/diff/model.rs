//! The model side: a kv server and one client in a simulation, no faults, each argument
//! vector sent raw (`KvClient::call_argv`) so the server parses it as Redis would.

use sim_models::kv::{self, ClientConfig, Config, KvClient, KvError, Persistence, Reply};
use sim_runtime::time::Duration;
use sim_runtime::Sim;

/// The replies, and the run's trace fingerprint (for determinism checks).
pub struct ModelRun {
    pub replies: Vec<Reply>,
    pub fingerprint: u64,
}

/// Runs `argvs` in a simulation of `seed` whose server clock starts at `unix_ms`.
pub fn run(argvs: &[Vec<String>], unix_ms: i64, seed: u64) -> ModelRun {
    let argvs = argvs.to_vec();
    let start = Duration::from_millis(u64::try_from(unix_ms).expect("after 1970"));
    let r = Sim::new(seed).run(move || async move {
        let server = kv::start(
            "redis",
            Config {
                persistence: Persistence::None,
                unix_time_at_start: start,
                ..Config::default()
            },
        );
        server.ready().await;
        let client = KvClient::new(&server, ClientConfig::default());
        let mut replies = Vec::with_capacity(argvs.len());
        for argv in &argvs {
            replies.push(match client.call_argv(argv).await {
                Ok(r) => r,
                Err(KvError::Server(e)) => Reply::Error(e.0),
                Err(other) => Reply::Error(format!("MODEL-FAILURE {other}")),
            });
        }
        replies
    });
    assert!(r.report.is_pass(), "the model's run failed: {}", r.report);
    ModelRun {
        replies: r.output.expect("a passing run has an output"),
        fingerprint: r.report.fingerprint,
    }
}
