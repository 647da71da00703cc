//! The workloads on our simulator (sim-runtime + sim-net), with default settings
//! (`traced`) or with per-poll and per-message trace events switched off (`untraced`),
//! which shows what the trace costs.

use std::future::pending;
use std::sync::atomic::Ordering;

use sim_net::{Addr, Latency, LinkConfig};
use sim_runtime::node::{self, node};
use sim_runtime::time::{sleep, Duration};
use sim_runtime::{spawn, Sim, SimConfig};

use crate::common::*;

const SEED: u64 = 0x5eed;
/// Far above any round trip here (at most 20 ms): a timeout must never fire.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);

fn sim(traced: bool) -> Sim {
    Sim::new(SEED).config(SimConfig {
        trace_polls: traced,
        ..SimConfig::default()
    })
}

fn setup_net(traced: bool) {
    sim_net::set_default_link(LinkConfig::default().with_latency(Latency::Uniform {
        min: Duration::from_millis(LATENCY_MIN_MS),
        max: Duration::from_millis(LATENCY_MAX_MS),
    }));
    sim_net::set_message_tracing(traced);
}

/// Runs a simulation and checks that it passed; returns the wall-clock seconds.
fn run_timed<Fut>(traced: bool, main: impl FnOnce() -> Fut) -> f64
where
    Fut: std::future::Future<Output = ()> + 'static,
{
    let (result, secs) = timed(|| sim(traced).run(main));
    assert!(
        result.report.is_pass(),
        "simulation failed: {:?}",
        result.report.outcome
    );
    secs
}

/// Workload 1: returns timer events per second.
pub fn timers(traced: bool) -> f64 {
    let secs = run_timed(traced, || async {
        let mut handles = Vec::with_capacity(TIMER_TASKS as usize);
        for t in 0..TIMER_TASKS {
            handles.push(spawn(async move {
                for i in 0..SLEEPS_PER_TASK {
                    sleep(Duration::from_millis(sleep_ms(t, i))).await;
                }
            }));
        }
        for h in handles {
            h.await.expect("timer task");
        }
    });
    (TIMER_TASKS * SLEEPS_PER_TASK) as f64 / secs
}

/// Workload 2: returns spawns (and joins) per second.
pub fn spawn_join(traced: bool) -> f64 {
    let secs = run_timed(traced, || async {
        let mut handles = Vec::with_capacity(SPAWN_TASKS as usize);
        for i in 0..SPAWN_TASKS {
            handles.push(spawn(async move { i }));
        }
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.await.expect("spawned task"), i as u64);
        }
    });
    SPAWN_TASKS as f64 / secs
}

/// Workload 2b: returns (allocated bytes, resident bytes) per live, blocked task.
pub fn live_tasks(traced: bool) -> (f64, f64) {
    let result = sim(traced).run(|| async {
        let (heap0, rss0) = (live_bytes(), proc_status_bytes("VmRSS"));
        for _ in 0..LIVE_TASKS {
            // Dropping the handle detaches the task: only the runtime's own cost remains.
            drop(spawn(async {
                POLLED.fetch_add(1, Ordering::Relaxed);
                pending::<()>().await;
            }));
        }
        // Every runnable task is polled before the clock moves.
        sleep(Duration::from_secs(10)).await;
        assert_eq!(POLLED.load(Ordering::Relaxed), LIVE_TASKS, "all tasks polled");
        let (heap1, rss1) = (live_bytes(), proc_status_bytes("VmRSS"));
        (
            (heap1 - heap0) as f64 / LIVE_TASKS as f64,
            rss1.saturating_sub(rss0) as f64 / LIVE_TASKS as f64,
        )
    });
    result.output.expect("live-task run passed")
}

fn start_idle_nodes(count: u64) {
    for i in 0..count {
        node(format!("idle-{i}")).build(|| async {
            let mut listener =
                sim_net::bind::<u64, u64>(IDLE_PORT).expect("idle node binds its port");
            let _ = listener.accept().await;
        });
    }
}

fn start_rpc_server() -> Addr {
    let server = node("server").build(|| async {
        let accept = sim_net::serve(SERVER_PORT, |x: u64| async move { x + 1 })
            .expect("server binds its port");
        let _ = accept.await;
    });
    Addr::new(server, SERVER_PORT)
}

/// Sequential calls from a fresh client node to `addr`.
async fn rpc_client(name: String, addr: Addr, round_trips: u64) {
    let client = node(name).build(|| async {});
    node::spawn_on_node(client, "pinger", async move {
        // Let the server bind its port first.
        sleep(Duration::from_millis(1)).await;
        for i in 0..round_trips {
            let r: u64 = sim_net::call(addr, i, CALL_TIMEOUT)
                .await
                .expect("call succeeds on a healthy network");
            assert_eq!(r, i + 1);
        }
    })
    .await
    .expect("client task");
}

/// Workload 3 (and 5 with `idle` nodes): `serve` + `call`; returns messages per second.
pub fn ping_pong_rpc(traced: bool, idle: u64) -> f64 {
    let secs = run_timed(traced, move || async move {
        setup_net(traced);
        let addr = start_rpc_server();
        start_idle_nodes(idle);
        rpc_client("client".into(), addr, PING_PONG_ROUND_TRIPS).await;
    });
    (2 * PING_PONG_ROUND_TRIPS) as f64 / secs
}

/// Workload 3, raw variant: one `Conn`, `send` then `recv`; returns messages per second.
pub fn ping_pong_conn(traced: bool) -> f64 {
    let secs = run_timed(traced, move || async move {
        setup_net(traced);
        let server = node("server").build(|| async {
            let mut listener = sim_net::bind::<u64, u64>(SERVER_PORT).expect("bind");
            let mut conn = listener.accept().await.expect("accept");
            while let Ok(x) = conn.recv().await {
                if conn.send(x + 1).is_err() {
                    break;
                }
            }
        });
        let client = node("client").build(|| async {});
        let addr = Addr::new(server, SERVER_PORT);
        node::spawn_on_node(client, "pinger", async move {
            sleep(Duration::from_millis(1)).await;
            let mut conn = sim_net::connect::<u64, u64>(addr, CALL_TIMEOUT)
                .await
                .expect("connect");
            for i in 0..PING_PONG_ROUND_TRIPS {
                conn.send(i).expect("send");
                assert_eq!(conn.recv().await.expect("recv"), i + 1);
            }
        })
        .await
        .expect("client task");
    });
    (2 * PING_PONG_ROUND_TRIPS) as f64 / secs
}

/// Workload 4: many clients, one server; returns messages per second.
pub fn fan_in(traced: bool) -> f64 {
    let secs = run_timed(traced, move || async move {
        setup_net(traced);
        let addr = start_rpc_server();
        let clients: Vec<_> = (0..FAN_IN_CLIENTS)
            .map(|c| spawn(rpc_client(format!("client-{c}"), addr, FAN_IN_ROUND_TRIPS)))
            .collect();
        for c in clients {
            c.await.expect("client");
        }
    });
    (2 * FAN_IN_CLIENTS * FAN_IN_ROUND_TRIPS) as f64 / secs
}
