//! The same seed gives the same network trace; latencies follow their distribution.

mod support;

use sim_net::{Addr, Latency, LinkConfig};
use sim_runtime::node;
use sim_runtime::time::{self, sleep, Duration};
use sim_runtime::{spawn, Probability, Sim};

use support::datagram_sink;

/// Eight clients call one server over a lossy long-tailed network; returns the sum of
/// the answers they got.
async fn chatty() -> u64 {
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
}

/// Compares runs of seeds: `Sim::new` by hand.
#[test]
fn same_seed_same_fingerprint() {
    let fingerprint = |seed| {
        let r = Sim::new(seed).run(chatty);
        assert!(r.report.is_pass(), "{}", r.report);
        r.report.fingerprint
    };
    assert_eq!(fingerprint(42), fingerprint(42));
    assert_ne!(
        fingerprint(42),
        fingerprint(43),
        "different seeds explore different timings"
    );
}

/// Measures one-way latencies of `n` datagrams on a link with `latency`, sorted.
async fn measured(latency: Latency, n: usize) -> Vec<Duration> {
    let (rx, got) = datagram_sink::<time::Instant>("rx", 1);
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
    let mut v: Vec<Duration> = got
        .borrow()
        .iter()
        .map(|(sent, arrived)| *arrived - *sent)
        .collect();
    v.sort();
    v
}

fn pct(v: &[Duration], p: f64) -> f64 {
    v[((v.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

#[sim_runtime::test(seeds = 4)]
async fn uniform_latency_percentiles_match() {
    let v = measured(
        Latency::Uniform {
            min: Duration::from_millis(1),
            max: Duration::from_millis(10),
        },
        20_000,
    )
    .await;
    assert_eq!(v.len(), 20_000);
    assert!(pct(&v, 0.0) >= 1.0 && pct(&v, 1.0) <= 10.0);
    assert!((pct(&v, 0.5) - 5.5).abs() < 0.2, "p50 {}", pct(&v, 0.5));
    assert!((pct(&v, 0.9) - 9.1).abs() < 0.2, "p90 {}", pct(&v, 0.9));
}

#[sim_runtime::test(seeds = 4)]
async fn long_tail_latency_percentiles_match() {
    let v = measured(
        Latency::LongTail {
            median: Duration::from_millis(5),
            p99: Duration::from_millis(100),
        },
        20_000,
    )
    .await;
    let (p50, p99) = (pct(&v, 0.5), pct(&v, 0.99));
    assert!((p50 - 5.0).abs() / 5.0 < 0.05, "p50 {p50}");
    assert!((p99 - 100.0).abs() / 100.0 < 0.15, "p99 {p99}");
}

#[sim_runtime::test]
async fn constant_latency_is_exact() {
    let v = measured(Latency::Constant(Duration::from_millis(3)), 100).await;
    assert_eq!(v.len(), 100);
    assert!(v.iter().all(|d| *d == Duration::from_millis(3)));
}
