//! Peer benchmark, madsim: `peer-bench-madsim <workload> [reps]` runs one workload in
//! this process and prints `RESULT` lines for `../run.sh`. Build with
//! `RUSTFLAGS="--cfg madsim"` (run.sh does), or madsim is plain tokio.
//!
//! The RPC ping-pong uses madsim's `Endpoint::call` / `add_rpc_handler`; the raw variant
//! uses `Endpoint::send_to` / `recv_from` with tags. madsim's default latency (uniform 1
//! to 10 ms) is the reference that the other frameworks are set to.

// Benchmarks measure wall-clock time, which simulated code must never read; this binary
// is the harness around the simulations, not simulated code.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

#[path = "../../common.rs"]
mod common;

use std::future::pending;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use madsim::net::rpc::Request;
use madsim::net::{Endpoint, TcpListener};
use madsim::runtime::{Handle, NodeHandle, Runtime};
use serde::{Deserialize, Serialize};

use common::*;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const SEED: u64 = 0x5eed;

#[derive(Serialize, Deserialize)]
struct Ping(u64);

impl Request for Ping {
    type Response = u64;
    const ID: u64 = 1;
}

fn runtime() -> Runtime {
    let mut config = madsim::Config::default();
    config.net.send_latency =
        Duration::from_millis(LATENCY_MIN_MS)..Duration::from_millis(LATENCY_MAX_MS);
    Runtime::with_seed_and_config(SEED, config)
}

fn ip(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
}

fn node(name: String, n: u32) -> NodeHandle {
    Handle::current().create_node().name(name).ip(ip(n)).build()
}

/// Workload 1: returns timer events per second.
fn timers() -> f64 {
    let ((), secs) = timed(|| {
        runtime().block_on(async {
            let mut handles = Vec::with_capacity(TIMER_TASKS as usize);
            for t in 0..TIMER_TASKS {
                handles.push(madsim::task::spawn(async move {
                    for i in 0..SLEEPS_PER_TASK {
                        madsim::time::sleep(Duration::from_millis(sleep_ms(t, i))).await;
                    }
                }));
            }
            for h in handles {
                h.await.expect("timer task");
            }
        })
    });
    (TIMER_TASKS * SLEEPS_PER_TASK) as f64 / secs
}

/// Workload 2: returns spawns (and joins) per second.
fn spawn_join() -> f64 {
    let ((), secs) = timed(|| {
        runtime().block_on(async {
            let mut handles = Vec::with_capacity(SPAWN_TASKS as usize);
            for i in 0..SPAWN_TASKS {
                handles.push(madsim::task::spawn(async move { i }));
            }
            for (i, h) in handles.into_iter().enumerate() {
                assert_eq!(h.await.expect("spawned task"), i as u64);
            }
        })
    });
    SPAWN_TASKS as f64 / secs
}

/// Workload 2b: returns (allocated bytes, resident bytes) per live, blocked task.
fn live_tasks() -> (f64, f64) {
    runtime().block_on(async {
        let (heap0, rss0) = (live_bytes(), proc_status_bytes("VmRSS"));
        for _ in 0..LIVE_TASKS {
            drop(madsim::task::spawn(async {
                POLLED.fetch_add(1, Ordering::Relaxed);
                pending::<()>().await;
            }));
        }
        madsim::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(POLLED.load(Ordering::Relaxed), LIVE_TASKS, "all tasks polled");
        let (heap1, rss1) = (live_bytes(), proc_status_bytes("VmRSS"));
        (
            (heap1 - heap0) as f64 / LIVE_TASKS as f64,
            rss1.saturating_sub(rss0) as f64 / LIVE_TASKS as f64,
        )
    })
}

/// Node numbers: 1 is the server, 2.. the clients, 10_000.. the idle nodes.
const SERVER: u32 = 1;
const IDLE_BASE: u32 = 10_000;

fn server_addr() -> SocketAddr {
    SocketAddr::new(ip(SERVER), SERVER_PORT)
}

fn start_rpc_server() {
    let server = node("server".into(), SERVER);
    server.spawn(async {
        let ep = Endpoint::bind(server_addr()).await.expect("bind");
        // The handler task keeps its own clone of the endpoint.
        ep.add_rpc_handler(|Ping(x)| async move { x + 1 });
    });
}

fn start_idle_nodes(count: u64) {
    for i in 0..count as u32 {
        let n = node(format!("idle-{i}"), IDLE_BASE + i);
        n.spawn(async move {
            let listener = TcpListener::bind(SocketAddr::new(ip(IDLE_BASE + i), IDLE_PORT))
                .await
                .expect("idle node binds its port");
            let _ = listener.accept().await;
        });
    }
}

async fn rpc_client(n: u32, round_trips: u64) {
    let client = node(format!("client-{n}"), n);
    client
        .spawn(async move {
            madsim::time::sleep(Duration::from_millis(1)).await;
            let ep = Endpoint::bind(SocketAddr::new(ip(n), 1)).await.expect("bind");
            for i in 0..round_trips {
                let r = ep.call(server_addr(), Ping(i)).await.expect("call");
                assert_eq!(r, i + 1);
            }
        })
        .await
        .expect("client task");
}

/// Workloads 3 and 5: `call` ping-pong with `idle` idle nodes; messages per second.
fn ping_pong_rpc(idle: u64) -> f64 {
    let ((), secs) = timed(|| {
        runtime().block_on(async move {
            start_rpc_server();
            start_idle_nodes(idle);
            rpc_client(2, PING_PONG_ROUND_TRIPS).await;
        })
    });
    (2 * PING_PONG_ROUND_TRIPS) as f64 / secs
}

/// Workload 3, raw variant: tagged `send_to` / `recv_from`; messages per second.
fn ping_pong_raw() -> f64 {
    let ((), secs) = timed(|| {
        runtime().block_on(async move {
            let server = node("server".into(), SERVER);
            server.spawn(async {
                let ep = Endpoint::bind(server_addr()).await.expect("bind");
                let mut buf = [0u8; 8];
                loop {
                    let (_, from) = ep.recv_from(1, &mut buf).await.expect("recv");
                    let reply = u64::from_le_bytes(buf) + 1;
                    ep.send_to(from, 2, &reply.to_le_bytes()).await.expect("send");
                }
            });
            let client = node("client".into(), 2);
            client
                .spawn(async move {
                    madsim::time::sleep(Duration::from_millis(1)).await;
                    let ep = Endpoint::bind(SocketAddr::new(ip(2), 1)).await.expect("bind");
                    let mut buf = [0u8; 8];
                    for i in 0..PING_PONG_ROUND_TRIPS {
                        ep.send_to(server_addr(), 1, &i.to_le_bytes())
                            .await
                            .expect("send");
                        ep.recv_from(2, &mut buf).await.expect("recv");
                        assert_eq!(u64::from_le_bytes(buf), i + 1);
                    }
                })
                .await
                .expect("client task");
        })
    });
    (2 * PING_PONG_ROUND_TRIPS) as f64 / secs
}

/// Workload 4: many clients, one server; messages per second.
fn fan_in() -> f64 {
    let ((), secs) = timed(|| {
        runtime().block_on(async move {
            start_rpc_server();
            let clients: Vec<_> = (0..FAN_IN_CLIENTS as u32)
                .map(|c| madsim::task::spawn(rpc_client(2 + c, FAN_IN_ROUND_TRIPS)))
                .collect();
            for c in clients {
                c.await.expect("client");
            }
        })
    });
    (2 * FAN_IN_CLIENTS * FAN_IN_ROUND_TRIPS) as f64 / secs
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(workload) = args.next() else {
        eprintln!("usage: peer-bench-madsim <workload> [reps]");
        std::process::exit(2);
    };
    let reps = reps_arg(args.next());
    match workload.as_str() {
        "timers" => report("timers", best_rate(reps, timers)),
        "spawn" => {
            report("spawn", best_rate(reps, spawn_join));
            report("spawn-peak-mb", proc_status_bytes("VmHWM") as f64 / 1e6);
        }
        "live" => {
            let (heap, rss) = live_tasks();
            report("live-heap", heap);
            report("live-rss", rss);
        }
        "pingpong-rpc" => report("pingpong-rpc", best_rate(reps, || ping_pong_rpc(0))),
        "pingpong-conn" => report("pingpong-conn", best_rate(reps, ping_pong_raw)),
        "fanin" => report("fanin", best_rate(reps, fan_in)),
        "idle" => {
            let (mut base, mut with_idle) = (0.0f64, 0.0f64);
            for _ in 0..reps.max(1) {
                base = base.max(ping_pong_rpc(0));
                with_idle = with_idle.max(ping_pong_rpc(IDLE_NODES));
            }
            report("idle-base", base);
            report("idle", with_idle);
            report("idle-slowdown", (1.0 - with_idle / base) * 100.0);
        }
        other => {
            eprintln!("unknown workload {other:?}");
            std::process::exit(2);
        }
    }
}
