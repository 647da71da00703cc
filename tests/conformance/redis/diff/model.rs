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
        // Blocking commands wait as long as they ask (up to 1 s in a sequence).
        let client = KvClient::new(
            &server,
            ClientConfig {
                timeout: Duration::from_secs(60),
            },
        );
        let mut replies = Vec::with_capacity(argvs.len());
        for argv in &argvs {
            let mut reply = call(&client, argv).await;
            // A whole SCAN iteration, as `super::scan_to_end` does on the real side.
            if let Some(at) = super::scan_cursor_at(argv) {
                let mut items = Vec::new();
                for _ in 0..10_000 {
                    let Reply::Array(parts) = &reply else { break };
                    let [Reply::Bulk(cursor), Reply::Array(batch)] = parts.as_slice() else {
                        break;
                    };
                    items.extend(batch.iter().cloned());
                    if cursor == "0" {
                        reply = Reply::Array(vec![Reply::bulk("0"), Reply::Array(items)]);
                        break;
                    }
                    let mut next = argv.clone();
                    next[at] = cursor.clone();
                    reply = call(&client, &next).await;
                }
            }
            replies.push(reply);
        }
        replies
    });
    assert!(r.report.is_pass(), "the model's run failed: {}", r.report);
    ModelRun {
        replies: r.output.expect("a passing run has an output"),
        fingerprint: r.report.fingerprint,
    }
}

async fn call(client: &KvClient, argv: &[String]) -> Reply {
    match client.call_argv(argv).await {
        Ok(r) => r,
        Err(KvError::Server(e)) => Reply::Error(e.0),
        Err(other) => Reply::Error(format!("MODEL-FAILURE {other}")),
    }
}
