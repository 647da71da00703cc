//! The same seed gives the same network trace; latencies follow their distribution.

use std::cell::RefCell;
use std::rc::Rc;

use sim_net::{Addr, Latency, LinkConfig};
use sim_runtime::node;
use sim_runtime::time::{self, sleep, Duration};
use sim_runtime::{spawn, Probability, Sim};

fn chatty(seed: u64) -> u64 {
    let r = Sim::new(seed).run(|| async {
        let server = node::node("server").build(|| async {
            sim_net::serve(1, |x: u64| async move {
                sleep(Duration::from_micros(x % 500)).await;
                x * 2
            })
            .unwrap()
            .await
            .ok();
        });
        sim_net::set_default_link(
            LinkConfig::default()
                .with_latency(Latency::LongTail {
                    median: Duration::from_millis(2),
                    p99: Duration::from_millis(40),
                })
                .with_loss(Probability::of(0.05)),
        );
        sleep(Duration::from_millis(1)).await;
        let mut hs = Vec::new();
        for c in 0..8u64 {
            hs.push(spawn(async move {
                let mut sum = 0;
                for i in 0..50 {
                    if let Ok(v) = sim_net::call::<u64, u64>(
                        Addr::new(server, 1),
                        c * 100 + i,
                        Duration::from_millis(100),
                    )
                    .await
                    {
                        sum += v;
                    }
                }
                sum
            }));
        }
        let mut total = 0;
        for h in hs {
            total += h.await.unwrap();
        }
        total
    });
    assert!(r.report.is_pass(), "{}", r.report);
    r.report.fingerprint
}

#[test]
fn same_seed_same_fingerprint() {
    assert_eq!(chatty(42), chatty(42));
    assert_ne!(
        chatty(42),
        chatty(43),
        "different seeds explore different timings"
    );
}

/// Measures one-way latencies of `n` datagrams on a link with `latency`.
fn measured(latency: Latency, n: usize) -> Vec<Duration> {
    let r = Sim::new(99).run(move || async move {
        let got = Rc::new(RefCell::new(Vec::new()));
        let sink = got.clone();
        let rx = node::node("rx").build(move || {
            let sink = sink.clone();
            async move {
                let mut s = sim_net::bind_datagram::<time::Instant>(1).unwrap();
                while let Ok((_, sent)) = s.recv_from().await {
                    sink.borrow_mut().push(time::now() - sent);
                }
            }
        });
        sleep(Duration::from_millis(1)).await;
        sim_net::set_link(
            node::current(),
            rx,
            LinkConfig::default().with_latency(latency),
        );
        let s = sim_net::bind_datagram::<time::Instant>(2).unwrap();
        for _ in 0..n {
            s.send_to(Addr::new(rx, 1), time::now());
            sleep(Duration::from_micros(100)).await;
        }
        sleep(Duration::from_secs(10)).await;
        let mut v = got.borrow().clone();
        v.sort();
        v
    });
    r.output.unwrap()
}

fn pct(v: &[Duration], p: f64) -> f64 {
    v[((v.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

#[test]
fn uniform_latency_percentiles_match() {
    let v = measured(
        Latency::Uniform {
            min: Duration::from_millis(1),
            max: Duration::from_millis(10),
        },
        20_000,
    );
    assert_eq!(v.len(), 20_000);
    assert!(pct(&v, 0.0) >= 1.0 && pct(&v, 1.0) <= 10.0);
    assert!((pct(&v, 0.5) - 5.5).abs() < 0.2, "p50 {}", pct(&v, 0.5));
    assert!((pct(&v, 0.9) - 9.1).abs() < 0.2, "p90 {}", pct(&v, 0.9));
}

#[test]
fn long_tail_latency_percentiles_match() {
    let v = measured(
        Latency::LongTail {
            median: Duration::from_millis(5),
            p99: Duration::from_millis(100),
        },
        20_000,
    );
    let (p50, p99) = (pct(&v, 0.5), pct(&v, 0.99));
    assert!((p50 - 5.0).abs() / 5.0 < 0.05, "p50 {p50}");
    assert!((p99 - 100.0).abs() / 100.0 < 0.15, "p99 {p99}");
}

#[test]
fn constant_latency_is_exact() {
    let v = measured(Latency::Constant(Duration::from_millis(3)), 100);
    assert!(v.iter().all(|d| *d == Duration::from_millis(3)));
}

#[test]
fn message_events_are_valid_json_naming_both_ends_and_the_kind() {
    let r = Sim::new(5).run(|| async {
        let log = sim_runtime::trace::capture_prefix("net.send");
        let server = node::node("server").build(|| async {
            sim_net::serve(1, |x: u64| async move { x })
                .unwrap()
                .await
                .ok();
        });
        sleep(Duration::from_millis(1)).await;
        sim_net::call::<u64, u64>(Addr::new(server, 1), 7, Duration::from_secs(1))
            .await
            .unwrap();
        (server, log.snapshot())
    });
    let (server, events) = r.output.unwrap();
    let first: serde_json::Value = events[0].fields().expect("valid JSON");
    assert_eq!(first["dst"], serde_json::json!([server.0, 1]));
    assert_eq!(first["src"][0], serde_json::json!(0));
    assert_eq!(first["kind"], "u64");
    assert_eq!(events.len(), 2, "request and reply");
}
