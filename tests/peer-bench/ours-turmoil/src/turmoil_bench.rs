//! The workloads on turmoil (tokio tasks and timers inside turmoil hosts, turmoil's TCP).
//!
//! turmoil has no RPC layer, so both ping-pong variants are a TCP stream carrying 8-byte
//! requests and replies. Its latency is `min + (max - min) * Exp(curve)`, clamped at
//! `max`, in whole milliseconds; a curve of 1.6 gives the same 5.5 ms mean as madsim's
//! and ours' uniform 1 to 10 ms.

use std::future::pending;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use turmoil::net::{TcpListener, TcpStream};
use turmoil::{Builder, Sim};

use crate::common::*;

const SEED: u64 = 0x5eed;

fn sim<'a>() -> Sim<'a> {
    let sim = Builder::new()
        .simulation_duration(Duration::from_secs(100_000_000))
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_millis(LATENCY_MIN_MS))
        .max_message_latency(Duration::from_millis(LATENCY_MAX_MS))
        .rng_seed(SEED)
        .build();
    sim.set_message_latency_curve(1.6);
    sim
}

fn run_timed(mut sim: Sim<'_>) -> f64 {
    let (result, secs) = timed(|| sim.run());
    result.expect("turmoil simulation passed");
    secs
}

/// Workload 1: returns timer events per second.
pub fn timers() -> f64 {
    let secs = timed_build(|sim| {
        sim.client("main", async {
            let mut handles = Vec::with_capacity(TIMER_TASKS as usize);
            for t in 0..TIMER_TASKS {
                handles.push(tokio::spawn(async move {
                    for i in 0..SLEEPS_PER_TASK {
                        tokio::time::sleep(Duration::from_millis(sleep_ms(t, i))).await;
                    }
                }));
            }
            for h in handles {
                h.await?;
            }
            Ok(())
        });
    });
    (TIMER_TASKS * SLEEPS_PER_TASK) as f64 / secs
}

/// Builds a simulation with `setup` and runs it; both count in the time.
fn timed_build(setup: impl FnOnce(&mut Sim<'_>)) -> f64 {
    let (mut s, build_secs) = timed(sim);
    let (_, setup_secs) = timed(|| setup(&mut s));
    build_secs + setup_secs + run_timed(s)
}

/// Workload 2: returns spawns (and joins) per second.
pub fn spawn_join() -> f64 {
    let secs = timed_build(|sim| {
        sim.client("main", async {
            let mut handles = Vec::with_capacity(SPAWN_TASKS as usize);
            for i in 0..SPAWN_TASKS {
                handles.push(tokio::spawn(async move { i }));
            }
            for (i, h) in handles.into_iter().enumerate() {
                assert_eq!(h.await?, i as u64);
            }
            Ok(())
        });
    });
    SPAWN_TASKS as f64 / secs
}

/// Workload 2b: returns (allocated bytes, resident bytes) per live, blocked task.
pub fn live_tasks() -> (f64, f64) {
    let out = std::rc::Rc::new(std::cell::Cell::new((0.0, 0.0)));
    let out2 = out.clone();
    let mut s = sim();
    s.client("main", async move {
        let (heap0, rss0) = (live_bytes(), proc_status_bytes("VmRSS"));
        for _ in 0..LIVE_TASKS {
            drop(tokio::spawn(async {
                POLLED.fetch_add(1, Ordering::Relaxed);
                pending::<()>().await;
            }));
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(POLLED.load(Ordering::Relaxed), LIVE_TASKS, "all tasks polled");
        let (heap1, rss1) = (live_bytes(), proc_status_bytes("VmRSS"));
        out2.set((
            (heap1 - heap0) as f64 / LIVE_TASKS as f64,
            rss1.saturating_sub(rss0) as f64 / LIVE_TASKS as f64,
        ));
        Ok(())
    });
    s.run().expect("turmoil simulation passed");
    out.get()
}

async fn serve_connection(mut stream: TcpStream) {
    let mut buf = [0u8; 8];
    while stream.read_exact(&mut buf).await.is_ok() {
        let reply = u64::from_le_bytes(buf) + 1;
        if stream.write_all(&reply.to_le_bytes()).await.is_err() {
            break;
        }
    }
}

fn add_server(sim: &mut Sim<'_>) {
    sim.host("server", || async {
        let listener = TcpListener::bind(("0.0.0.0", SERVER_PORT)).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(serve_connection(stream));
        }
    });
}

fn add_idle_hosts(sim: &mut Sim<'_>, count: u64) {
    for i in 0..count {
        sim.host(format!("idle-{i}"), || async {
            let listener = TcpListener::bind(("0.0.0.0", IDLE_PORT)).await?;
            let _ = listener.accept().await;
            Ok(())
        });
    }
}

fn add_client(sim: &mut Sim<'_>, name: String, round_trips: u64) {
    sim.client(name, async move {
        // Let the server bind its port first.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let mut stream = TcpStream::connect(("server", SERVER_PORT)).await?;
        let mut buf = [0u8; 8];
        for i in 0..round_trips {
            stream.write_all(&i.to_le_bytes()).await?;
            stream.read_exact(&mut buf).await?;
            assert_eq!(u64::from_le_bytes(buf), i + 1);
        }
        Ok(())
    });
}

/// Workloads 3 and 5: `round_trips` over TCP, with `idle` idle hosts; messages per second.
pub fn ping_pong(round_trips: u64, idle: u64) -> f64 {
    let secs = timed_build(|sim| {
        add_server(sim);
        add_idle_hosts(sim, idle);
        add_client(sim, "client".into(), round_trips);
    });
    (2 * round_trips) as f64 / secs
}

/// Workload 4: `clients` clients of `round_trips` each; messages per second.
pub fn fan_in(clients: u64, round_trips: u64) -> f64 {
    let secs = timed_build(|sim| {
        add_server(sim);
        for c in 0..clients {
            add_client(sim, format!("client-{c}"), round_trips);
        }
    });
    (2 * clients * round_trips) as f64 / secs
}
