//! Throughput of the kv model end to end: a GET/SET/INCR mix (40/40/20) from concurrent
//! clients through `KvClient`, over sim-net, to the server node and its engine, with the
//! default persistence (AOF everysec), in operations per second of wall-clock time.
//!
//! Run with `cargo bench -p sim-models --bench kv_bench`.

use std::cell::Cell;
use std::rc::Rc;

use sim_models::kv::{self, ClientConfig, Config, KvClient, ReplicaConfig};
use sim_runtime::time::Duration;
use sim_runtime::{Sim, SimConfig};

const CLIENTS: u64 = 16;
const OPS_PER_CLIENT: u64 = 5_000;
const KEYS: u64 = 1_000;

/// Runs the mix; returns (operations, simulated seconds, events traced).
fn run(config: Config, trace_polls: bool) -> (u64, f64, u64) {
    let sim = SimConfig {
        trace_polls,
        ..SimConfig::default()
    };
    let done = Rc::new(Cell::new(0u64));
    let counted = done.clone();
    let result = Sim::new(42).config(sim).run(move || async move {
        let server = kv::start("redis", config);
        server.ready().await;
        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            let client = KvClient::new(&server, ClientConfig::default());
            let done = counted.clone();
            tasks.push(sim_runtime::spawn(async move {
                for i in 0..OPS_PER_CLIENT {
                    let key = format!("key:{}", (c * 7919 + i * 31) % KEYS);
                    match i % 5 {
                        0 | 1 => drop(client.get(&key).await.unwrap()),
                        2 | 3 => client.set(&key, "value-0123456789").await.unwrap(),
                        _ => drop(client.incr(&format!("counter:{}", i % 10)).await.unwrap()),
                    }
                    done.set(done.get() + 1);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert!(result.report.is_pass(), "{}", result.report);
    (
        done.get(),
        result.report.time.elapsed_since_start().as_secs_f64(),
        result.report.events,
    )
}

// The one place wall-clock time is allowed: measuring how fast the simulator runs.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
fn measure(label: &str, config: Config, trace_polls: bool) {
    let start = std::time::Instant::now();
    let (ops, simulated, events) = run(config, trace_polls);
    let wall = start.elapsed().as_secs_f64();
    println!(
        "kv {label:<40} {ops} ops in {wall:.3} s wall = {:>9.0} ops/s ({:.0} events/s; {simulated:.2} s simulated)",
        ops as f64 / wall,
        events as f64 / wall,
    );
}

fn main() {
    measure("GET/SET/INCR, AOF everysec", Config::default(), true);
    measure(
        "GET/SET/INCR, AOF everysec, no poll events",
        Config::default(),
        false,
    );
    let replicated = Config {
        replica: Some(ReplicaConfig {
            replication_lag: Duration::from_millis(5),
        }),
        ..Config::default()
    };
    measure("GET/SET/INCR, AOF everysec + replica", replicated, true);
}
