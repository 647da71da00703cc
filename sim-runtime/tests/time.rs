//! Virtual time: sleeps wake in deadline order, `timeout` gives `Elapsed`, `interval`
//! ticks on schedule, and per-node clock skew and drift change what a node reads.
//!
//! Behaviour under any seed runs as `#[sim_runtime::test]`; `Sim::new` only where a test
//! reads how a run ended.

use std::cell::RefCell;
use std::rc::Rc;

use sim_runtime::time::{
    interval, now, now_global, sleep, sleep_until, timeout, Duration, Elapsed, Instant,
};
use sim_runtime::{node, spawn, Outcome, Sim};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn at_ms(n: u64) -> Instant {
    Instant::from_nanos(n * 1_000_000)
}

#[sim_runtime::test(seeds = 8)]
async fn sleeps_wake_in_deadline_order_and_the_clock_jumps() {
    let delays = [30u64, 10, 50, 20, 40, 10];
    let woke = Rc::new(RefCell::new(Vec::new()));
    let handles: Vec<_> = delays
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let woke = woke.clone();
            let d = *d;
            spawn(async move {
                sleep(ms(d)).await;
                woke.borrow_mut().push((now(), i));
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    let woke = woke.borrow();
    let times: Vec<Instant> = woke.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        times,
        vec![
            at_ms(10),
            at_ms(10),
            at_ms(20),
            at_ms(30),
            at_ms(40),
            at_ms(50)
        ]
    );
    // Each task woke exactly at its own deadline.
    assert!(woke.iter().all(|(t, i)| *t == at_ms(delays[*i])));
    // No real time passes: the whole run is 50 ms of virtual time.
    assert_eq!(now(), at_ms(50));
}

#[sim_runtime::test]
async fn sleep_until_a_past_instant_returns_at_once() {
    sleep(ms(5)).await;
    sleep_until(at_ms(1)).await;
    sleep(Duration::ZERO).await;
    assert_eq!(now(), at_ms(5));
}

#[sim_runtime::test]
async fn timeout_gives_elapsed_when_the_deadline_passes_first() {
    let slow = timeout(ms(10), async {
        sleep(ms(50)).await;
        "slow"
    })
    .await;
    assert_eq!(slow, Err(Elapsed));
    assert_eq!(now(), at_ms(10));
    let fast = timeout(ms(10), async {
        sleep(ms(3)).await;
        "fast"
    })
    .await;
    assert_eq!(fast, Ok("fast"));
    assert_eq!(now(), at_ms(13));
    let ready = timeout(Duration::ZERO, async { "ready" }).await;
    assert_eq!(
        ready,
        Ok("ready"),
        "a ready future wins over an expired deadline"
    );
    assert_eq!(Elapsed.to_string(), "deadline elapsed");
}

#[sim_runtime::test]
async fn a_cancelled_timer_neither_wakes_nor_moves_the_clock() {
    // The inner sleep's timer (1 hour) is cancelled when the timeout drops it.
    let r = timeout(ms(5), sleep(Duration::from_secs(3600))).await;
    assert_eq!(r, Err(Elapsed));
    // Nothing else is pending: the next wake is this sleep, not the cancelled hour.
    sleep(ms(1)).await;
    assert_eq!(now(), at_ms(6));
}

#[test]
fn a_run_left_with_only_a_cancelled_timer_is_a_deadlock_at_the_last_real_event() {
    let stuck = Sim::new(3).run(|| async {
        let _ = timeout(ms(1), sleep(Duration::from_secs(3600))).await;
        std::future::pending::<()>().await;
    });
    assert!(matches!(stuck.report.outcome, Outcome::Deadlock { .. }));
    assert_eq!(stuck.report.time, at_ms(1));
}

#[sim_runtime::test]
async fn interval_ticks_every_period_and_skips_missed_ticks() {
    let mut ticker = interval(ms(10));
    assert_eq!(ticker.period(), ms(10));
    let mut ticks = Vec::new();
    for _ in 0..3 {
        ticks.push((ticker.tick().await, now()));
    }
    // Busy for 35 ms: the ticks at 40, 50 and 60 are late; the first is delivered at
    // once, the rest skipped, and the schedule keeps its phase.
    sleep(ms(35)).await;
    ticks.push((ticker.tick().await, now()));
    ticks.push((ticker.tick().await, now()));
    assert_eq!(
        ticks,
        vec![
            (at_ms(10), at_ms(10)),
            (at_ms(20), at_ms(20)),
            (at_ms(30), at_ms(30)),
            (at_ms(40), at_ms(65)),
            (at_ms(70), at_ms(70)),
        ]
    );
}

#[sim_runtime::test]
async fn clock_skew_shifts_what_a_node_reads() {
    let ahead = node::node("ahead")
        .clock_skew(5_000_000_000)
        .build(|| async {});
    let behind = node::node("behind")
        .clock_skew(-2_000_000)
        .build(|| async {});
    sleep(Duration::from_secs(1)).await;
    let read = |n| {
        node::spawn_on_node(n, "read", async {
            let local = now();
            // Sleeping until a local reading wakes at the matching true time.
            sleep_until(local + ms(10)).await;
            (local, now(), now_global())
        })
    };
    let a = read(ahead).await.unwrap();
    assert_eq!(a, (at_ms(6_000), at_ms(6_010), at_ms(1_010)));
    // The second reading starts when the first ended, at true time 1.010 s.
    let b = read(behind).await.unwrap();
    assert_eq!(b, (at_ms(1_008), at_ms(1_018), at_ms(1_020)));
    assert_eq!(now(), at_ms(1_020), "the main node has a perfect clock");
}

#[sim_runtime::test]
async fn clock_drift_makes_a_fast_clock_gain_time_and_sleep_short() {
    // 1000 ppm = 0.1 % fast.
    let fast = node::node("fast").clock_drift_ppm(1_000).build(|| async {});
    sleep(Duration::from_secs(10)).await;
    let (local, slept) = node::spawn_on_node(fast, "read", async {
        let local = now();
        let start = now_global();
        // One local second is a little less than a true second.
        sleep(Duration::from_secs(1)).await;
        (local, now_global() - start)
    })
    .await
    .unwrap();
    assert_eq!(local, at_ms(10_010));
    let slept = slept.as_nanos();
    assert!((999_000_000..=999_001_000).contains(&slept), "{slept}");
}

#[test]
fn instant_arithmetic_and_display() {
    let t = Instant::from_nanos(1_234_567_890);
    assert_eq!(t.to_string(), "1.234567s");
    assert_eq!(t + ms(1), Instant::from_nanos(1_235_567_890));
    assert_eq!(t - ms(2_000), Instant::START, "subtraction saturates");
    assert_eq!(t - Instant::from_nanos(234_567_890), Duration::from_secs(1));
    assert_eq!(Instant::START.duration_since(t), Duration::ZERO);
    assert_eq!(
        serde_json::to_string(&t).unwrap(),
        "1234567890",
        "serialised as nanoseconds"
    );
}
