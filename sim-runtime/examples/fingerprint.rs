//! Runs a fixed simulated program under the seed given on the command line and prints
//! its trace fingerprint: `cargo run -p sim-runtime --example fingerprint -- 0x2a`.
//!
//! The determinism tests run this binary twice, in two processes (two address-space
//! layouts, two hash seeds for anything that wrongly used `RandomState`), and compare the
//! output with each other and with the same program run inside the test process.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;
use sim_runtime::time::{sleep, timeout, Duration};
use sim_runtime::trace::{self, TraceEvent};
use sim_runtime::{node, spawn_named, yield_now, Sim};

/// `example.step`: a worker finished a step.
#[derive(Clone, Debug, Serialize, TraceEvent)]
#[trace_event(name = "example.step")]
pub struct Step {
    pub worker: u32,
    pub step: u32,
}

/// Several nodes, each with tasks that sleep random amounts, yield, compute and append
/// to a shared log; one node is killed and restarted midway. Returns the log.
pub async fn program() -> Vec<String> {
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut nodes = Vec::new();
    for name in ["db", "cache", "api-1", "api-2"] {
        let log = log.clone();
        let id = node::node(name).cores(2).build(move || {
            let log = log.clone();
            async move {
                let me = node::current().name();
                // A stream of this node's life: a new one after the restart.
                let mut rng = sim_runtime::rng("worker");
                for worker in 0..3 {
                    let log = log.clone();
                    let me = me.clone();
                    let mut rng = rng.fork(&format!("{worker}"));
                    spawn_named("worker", async move {
                        for step in 0..5 {
                            sleep(Duration::from_micros(rng.range(1..2_000))).await;
                            if rng.chance(sim_runtime::Probability::of(0.3)) {
                                yield_now().await;
                            }
                            node::compute(Duration::from_micros(300)).await;
                            log.borrow_mut().push(format!("{me}/{worker}/{step}"));
                            trace::emit(&Step { worker, step });
                        }
                    })
                    .detach();
                }
                let _ = timeout(Duration::from_millis(50), async {
                    loop {
                        sleep(Duration::from_micros(rng.range(100..900))).await;
                    }
                })
                .await;
            }
        });
        nodes.push(id);
    }
    sleep(Duration::from_millis(4)).await;
    nodes[1].kill();
    sleep(Duration::from_millis(1)).await;
    nodes[1].restart();
    sleep(Duration::from_millis(100)).await;
    let out = log.borrow().clone();
    out
}

/// The fingerprint, event count and a digest of the program's output for `seed`.
pub fn run(seed: u64) -> String {
    let result = Sim::new(seed).run(program);
    assert!(result.report.is_pass(), "{}", result.report);
    let log = result.output.unwrap_or_default();
    format!(
        "seed={seed:#x} fingerprint={:#018x} events={} steps={} log_len={} log_head={}",
        result.report.fingerprint,
        result.report.events,
        result.report.steps,
        log.len(),
        log.iter().take(4).cloned().collect::<Vec<_>>().join(",")
    )
}

fn main() {
    let arg = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "0x5eed".to_string());
    let Some(seed) = sim_runtime::harness::parse_seed(&arg) else {
        eprintln!("usage: fingerprint <seed, decimal or 0x-hex>; got {arg:?}");
        std::process::exit(2);
    };
    println!("{}", run(seed));
}
