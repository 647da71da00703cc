//! The runtime's benchmark workloads, the same ones issue 2 compares against madsim and
//! turmoil: 10,000 tasks each doing 100 sleeps of 1 to 7 ms (1M timer events), spawn and
//! join of 1M trivial tasks, and the memory a live task costs.
//!
//! Run in release mode: `cargo run --release -p sim-runtime --example rt_workloads`.
//! Wall-clock time is what a benchmark measures, so this file opts out of the
//! `std::time::Instant` ban locally; nothing here feeds wall time into a simulation.
//!
//! Memory is read from the process's resident set (`/proc/self/statm`), not from a
//! counting allocator: a `GlobalAlloc` needs `unsafe`, which the workspace forbids. The
//! resident set includes the allocator's own overhead, so it is the honest figure.

use std::cell::Cell;
use std::rc::Rc;

use sim_runtime::time::{sleep, Duration};
use sim_runtime::{Sim, SimConfig};

const TIMER_TASKS: u64 = 10_000;
const SLEEPS_PER_TASK: u64 = 100;
const SPAWNS: u64 = 1_000_000;
const LIVE_TASKS: u64 = 1_000_000;

/// How long a workload took.
#[derive(Clone, Copy)]
struct Took {
    wall: f64,
    /// CPU time of this thread where Linux reports it (`/proc/thread-self/schedstat`):
    /// on a shared, busy machine it leaves out the time other processes had the CPU.
    cpu: Option<f64>,
}

impl Took {
    /// "N M/s" for `count` events, on CPU time and on wall-clock time.
    fn rates(self, count: u64) -> String {
        let m = |secs: f64| count as f64 / secs / 1e6;
        match self.cpu {
            Some(cpu) => format!(
                "{:.2} M/s on CPU time ({:.2} M/s wall)",
                m(cpu),
                m(self.wall)
            ),
            None => format!("{:.2} M/s wall", m(self.wall)),
        }
    }
}

#[allow(clippy::disallowed_types, clippy::disallowed_methods)] // wall-clock benchmark
fn timed<T>(f: impl FnOnce() -> T) -> (T, Took) {
    let cpu_before = cpu_nanos();
    let start = std::time::Instant::now();
    let out = f();
    let wall = start.elapsed().as_secs_f64();
    let cpu = match (cpu_before, cpu_nanos()) {
        (Some(a), Some(b)) => Some((b - a) as f64 / 1e9),
        _ => None,
    };
    (out, Took { wall, cpu })
}

/// Nanoseconds this thread has spent on a CPU (Linux).
fn cpu_nanos() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

fn config() -> SimConfig {
    SimConfig {
        time_limit: None,
        step_limit: None,
        ..SimConfig::default()
    }
}

/// Resident memory in bytes (Linux), or 0 where `/proc` is missing.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Peak resident memory in bytes (Linux `VmHWM`), or 0.
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn timers(seed: u64) -> (Took, u64) {
    let (result, secs) = timed(|| {
        Sim::new(seed).config(config()).run(|| async {
            let handles: Vec<_> = (0..TIMER_TASKS)
                .map(|_| {
                    sim_runtime::spawn(async {
                        let mut rng = sim_runtime::rng("bench");
                        for _ in 0..SLEEPS_PER_TASK {
                            sleep(Duration::from_millis(rng.range_inclusive(1, 7))).await;
                        }
                    })
                })
                .collect();
            for h in handles {
                h.await.expect("bench task");
            }
        })
    });
    assert!(result.report.is_pass(), "{}", result.report);
    (secs, result.report.fingerprint)
}

fn spawns(seed: u64) -> (Took, u64) {
    let (result, secs) = timed(|| {
        Sim::new(seed).config(config()).run(|| async {
            let handles: Vec<_> = (0..SPAWNS)
                .map(|i| sim_runtime::spawn(async move { i }))
                .collect();
            let mut sum = 0;
            for h in handles {
                sum += h.await.expect("bench task");
            }
            sum
        })
    });
    assert!(result.report.is_pass(), "{}", result.report);
    assert_eq!(result.output, Some(SPAWNS * (SPAWNS - 1) / 2));
    (secs, result.report.fingerprint)
}

/// Bytes of resident memory per task that is alive and parked (polled once, pending).
fn bytes_per_live_task(sleeping: bool) -> f64 {
    let measured = Rc::new(Cell::new(0.0));
    let out = measured.clone();
    let result = Sim::new(1).config(config()).run(move || async move {
        let before = rss_bytes();
        for _ in 0..LIVE_TASKS {
            if sleeping {
                sim_runtime::spawn(sleep(Duration::from_secs(3600))).detach();
            } else {
                sim_runtime::spawn(std::future::pending::<()>()).detach();
            }
        }
        // Let every task run its first poll and park.
        sleep(Duration::from_millis(1)).await;
        let after = rss_bytes();
        out.set(after.saturating_sub(before) as f64 / LIVE_TASKS as f64);
    });
    assert!(result.report.is_pass(), "{}", result.report);
    measured.get()
}

fn run(workload: &str) {
    match workload {
        "timers" => {
            let (took, fp) = timers(42);
            println!(
                "timers: {} timer events ({TIMER_TASKS} tasks x {SLEEPS_PER_TASK} sleeps, \
                 fingerprint {fp:#018x})",
                took.rates(TIMER_TASKS * SLEEPS_PER_TASK)
            );
        }
        "spawn" => {
            let (took, fp) = spawns(42);
            println!(
                "spawn+join: {} tasks ({SPAWNS} tasks, fingerprint {fp:#018x}), peak RSS {:.0} MB",
                took.rates(SPAWNS),
                peak_rss_bytes() as f64 / 1e6
            );
        }
        "memory" => println!(
            "memory: {:.0} bytes per live pending task ({LIVE_TASKS} tasks)",
            bytes_per_live_task(false)
        ),
        "memory-sleeping" => println!(
            "memory: {:.0} bytes per live sleeping task (task plus its timer)",
            bytes_per_live_task(true)
        ),
        other => panic!("unknown workload {other:?}: timers, spawn, memory, memory-sleeping"),
    }
}

/// With no argument, runs each workload in a fresh process of its own, so that one
/// workload's freed memory does not hide the next one's resident-set growth.
fn main() {
    let workloads = ["timers", "spawn", "memory", "memory-sleeping"];
    match std::env::args().nth(1) {
        Some(w) => run(&w),
        None => {
            let exe = std::env::current_exe().expect("own path");
            for w in workloads {
                let status = std::process::Command::new(&exe)
                    .arg(w)
                    .status()
                    .expect("run workload");
                assert!(status.success(), "workload {w} failed");
            }
        }
    }
}
