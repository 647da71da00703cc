//! Peer benchmark, our simulator and turmoil: `peer-bench-ours-turmoil <framework>
//! <workload> [reps]` runs one workload in this process and prints `RESULT` lines for
//! `../run.sh`. Frameworks: `ours` (default settings), `ours-untraced` (no per-poll and
//! per-message trace events), `turmoil`. Workloads: see `../README.md`.

// Benchmarks measure wall-clock time, which simulated code must never read; this binary
// is the harness around the simulations, not simulated code (clippy does not run on
// this excluded package anyway, the attribute documents the intent).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

#[path = "../../common.rs"]
mod common;
mod ours;
mod turmoil_bench;

use common::*;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// turmoil advances every host one 1 ms tick at a time, so its network workloads are
/// slow; these counts keep each turmoil run near a minute or less. Rates are per second,
/// so they compare with the full-size runs of the other frameworks. With 1,000 idle
/// hosts a tick costs seconds (`Topology::deliver_messages` scans all host pairs for
/// each host), so that run is one round trip.
const TURMOIL_PING_PONG_ROUND_TRIPS: u64 = PING_PONG_ROUND_TRIPS;
const TURMOIL_FAN_IN_ROUND_TRIPS: u64 = FAN_IN_ROUND_TRIPS;
const TURMOIL_IDLE_ROUND_TRIPS: u64 = 1;

fn main() {
    let mut args = std::env::args().skip(1);
    let (framework, workload) = match (args.next(), args.next()) {
        (Some(f), Some(w)) => (f, w),
        _ => {
            eprintln!("usage: peer-bench-ours-turmoil <ours|ours-untraced|turmoil> <workload> [reps]");
            std::process::exit(2);
        }
    };
    let reps = reps_arg(args.next());
    match framework.as_str() {
        "ours" => run_ours(true, &workload, reps),
        "ours-untraced" => run_ours(false, &workload, reps),
        "turmoil" => run_turmoil(&workload, reps),
        other => {
            eprintln!("unknown framework {other:?}");
            std::process::exit(2);
        }
    }
}

fn run_ours(traced: bool, workload: &str, reps: u32) {
    match workload {
        "timers" => report("timers", best_rate(reps, || ours::timers(traced))),
        "spawn" => {
            report("spawn", best_rate(reps, || ours::spawn_join(traced)));
            report("spawn-peak-mb", proc_status_bytes("VmHWM") as f64 / 1e6);
        }
        "live" => {
            let (heap, rss) = ours::live_tasks(traced);
            report("live-heap", heap);
            report("live-rss", rss);
        }
        "pingpong-rpc" => report(
            "pingpong-rpc",
            best_rate(reps, || ours::ping_pong_rpc(traced, 0)),
        ),
        "pingpong-conn" => report(
            "pingpong-conn",
            best_rate(reps, || ours::ping_pong_conn(traced)),
        ),
        "fanin" => report("fanin", best_rate(reps, || ours::fan_in(traced))),
        "idle" => idle(reps, |idle| ours::ping_pong_rpc(traced, idle)),
        other => unknown(other),
    }
}

fn run_turmoil(workload: &str, reps: u32) {
    match workload {
        "timers" => report("timers", best_rate(reps, turmoil_bench::timers)),
        "spawn" => {
            report("spawn", best_rate(reps, turmoil_bench::spawn_join));
            report("spawn-peak-mb", proc_status_bytes("VmHWM") as f64 / 1e6);
        }
        "live" => {
            let (heap, rss) = turmoil_bench::live_tasks();
            report("live-heap", heap);
            report("live-rss", rss);
        }
        // turmoil has no RPC layer: both variants are TCP request/response.
        "pingpong-rpc" | "pingpong-conn" => {
            if TURMOIL_PING_PONG_ROUND_TRIPS != PING_PONG_ROUND_TRIPS {
                note(&format!(
                    "turmoil {workload}: scaled to {TURMOIL_PING_PONG_ROUND_TRIPS} round trips"
                ));
            }
            report(
                workload,
                best_rate(reps, || {
                    turmoil_bench::ping_pong(TURMOIL_PING_PONG_ROUND_TRIPS, 0)
                }),
            )
        }
        "fanin" => {
            if TURMOIL_FAN_IN_ROUND_TRIPS != FAN_IN_ROUND_TRIPS {
                note(&format!(
                    "turmoil fanin: scaled to {FAN_IN_CLIENTS} clients x {TURMOIL_FAN_IN_ROUND_TRIPS} round trips"
                ));
            }
            report(
                "fanin",
                best_rate(reps, || {
                    turmoil_bench::fan_in(FAN_IN_CLIENTS, TURMOIL_FAN_IN_ROUND_TRIPS)
                }),
            )
        }
        "idle" => {
            note(&format!(
                "turmoil idle: scaled to {TURMOIL_IDLE_ROUND_TRIPS} round trip(s) (plus connection set-up), \
                 with and without the idle hosts: turmoil scans every host pair on every \
                 host's tick, so one simulated ms with 1,000 hosts costs seconds"
            ));
            idle(reps, |idle| {
                turmoil_bench::ping_pong(TURMOIL_IDLE_ROUND_TRIPS, idle)
            })
        }
        other => unknown(other),
    }
}

/// Workload 5: ping-pong without and with idle nodes, alternating so that drift in the
/// machine's load hits both alike; reports both rates and the slowdown in percent.
fn idle(reps: u32, mut ping_pong: impl FnMut(u64) -> f64) {
    let (mut base, mut with_idle) = (0.0f64, 0.0f64);
    for _ in 0..reps.max(1) {
        base = base.max(ping_pong(0));
        with_idle = with_idle.max(ping_pong(IDLE_NODES));
    }
    report("idle-base", base);
    report("idle", with_idle);
    report("idle-slowdown", (1.0 - with_idle / base) * 100.0);
}

fn unknown(workload: &str) {
    eprintln!("unknown workload {workload:?}");
    std::process::exit(2);
}
