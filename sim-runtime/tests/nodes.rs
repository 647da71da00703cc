//! Nodes: kill, restart, pause and resume; CPU cores (`compute`) and memory budgets;
//! random streams per node life.
//!
//! Behaviour under any seed runs as `#[sim_runtime::test]`; `Sim::new` only where a test
//! reads how a run ended or compares two runs of one seed.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use sim_runtime::node::{self, Lifecycle, NodeState};
use sim_runtime::time::{now, sleep, sleep_until, Duration, Instant};
use sim_runtime::trace::{self, EventKind};
use sim_runtime::{spawn, yield_now, Outcome, Sim};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn at_ms(n: u64) -> Instant {
    Instant::from_nanos(n * 1_000_000)
}

/// Records the virtual time at which it is dropped.
struct DropClock(Rc<Cell<Option<Instant>>>);

impl Drop for DropClock {
    fn drop(&mut self) {
        self.0.set(Some(sim_runtime::time::now_global()));
    }
}

#[sim_runtime::test(seeds = 8)]
async fn a_killed_nodes_tasks_are_never_polled_again_even_when_their_timers_fire() {
    let polls = Rc::new(Cell::new(0u32));
    let dropped_at = Rc::new(Cell::new(None));
    let (p, d) = (polls.clone(), dropped_at.clone());
    let n = node::node("cache").build(move || {
        let (p, d) = (p.clone(), d.clone());
        async move {
            let _guard = DropClock(d);
            // A short ticker and, in another task, a long timer that fires well after
            // the kill.
            let p2 = p.clone();
            spawn(async move {
                sleep(ms(500)).await;
                p2.set(p2.get() + 1000);
            })
            .detach();
            loop {
                sleep(ms(10)).await;
                p.set(p.get() + 1);
            }
        }
    });
    // Core events (polls, kills) have no typed form: the whole log is read.
    let events = trace::capture_prefix("");
    sleep_until(at_ms(35)).await;
    n.kill();
    let polls_at_kill = polls.get();
    assert_eq!(polls_at_kill, 3);
    assert_eq!(n.state(), NodeState::Killed);
    // The destructors run at the kill's instant, before anyone else is polled.
    yield_now().await;
    assert_eq!(
        dropped_at.get(),
        Some(at_ms(35)),
        "destructor ran at the kill"
    );
    // Well past both timers: nothing of the node ran.
    sleep(Duration::from_secs(2)).await;
    assert_eq!(polls.get(), polls_at_kill, "a killed task was polled again");
    // The trace agrees: after the kill, no poll of a task of the node.
    let log = events.snapshot();
    let kill = log
        .iter()
        .position(|e| e.kind == EventKind::NodeKill)
        .expect("kill event");
    assert!(
        !log[kill..]
            .iter()
            .any(|e| e.node == n && e.kind == EventKind::TaskPoll),
        "a poll of the killed node after its kill"
    );
    let aborts = log[kill..]
        .iter()
        .filter(|e| e.node == n && e.kind == EventKind::TaskAbort)
        .count();
    assert_eq!(aborts, 2, "both tasks of the node were dropped");
}

#[sim_runtime::test]
async fn killing_a_node_drops_even_tasks_that_never_ran() {
    let dropped_at = Rc::new(Cell::new(None));
    let n = node::node("idle").build(|| async {});
    let guard = DropClock(dropped_at.clone());
    node::spawn_on_node(n, "never-polled", async move {
        let _guard = guard;
    })
    .detach();
    n.kill();
    yield_now().await;
    assert_eq!(dropped_at.get(), Some(Instant::START));
}

#[sim_runtime::test]
async fn restart_runs_the_factory_again_with_a_new_incarnation() {
    let starts = Rc::new(RefCell::new(Vec::new()));
    let s = starts.clone();
    let n = node::node("svc").build(move || {
        let s = s.clone();
        async move {
            s.borrow_mut().push((node::current().incarnation(), now()));
            std::future::pending::<()>().await;
        }
    });
    sleep(ms(5)).await;
    assert_eq!(n.incarnation(), 0);
    n.kill();
    assert!(!n.is_alive());
    sleep(ms(5)).await;
    n.restart();
    sleep(ms(1)).await;
    assert_eq!(n.incarnation(), 1);
    assert!(n.is_alive());
    // Restarting a running node kills it first.
    n.restart();
    sleep(ms(1)).await;
    assert_eq!(node::lookup("svc"), Some(n));
    assert_eq!(n.name(), "svc");
    assert_eq!(
        *starts.borrow(),
        vec![(0, at_ms(0)), (1, at_ms(10)), (2, at_ms(11))]
    );
}

/// A node that draws from `rng("jitter")` and `rng_global("jitter")` when it starts,
/// run for three lives; then a second node that draws the same way. Returns the draws.
async fn draws_per_life() -> Vec<(u64, u64)> {
    let draws = Rc::new(RefCell::new(Vec::new()));
    let factory = |d: Rc<RefCell<Vec<(u64, u64)>>>| {
        move || {
            let d = d.clone();
            async move {
                let local = sim_runtime::rng("jitter").next_u64();
                let global = sim_runtime::rng_global("jitter").next_u64();
                d.borrow_mut().push((local, global));
            }
        }
    };
    let n = node::node("svc").build(factory(draws.clone()));
    sleep(ms(1)).await;
    for _ in 0..2 {
        n.restart();
        sleep(ms(1)).await;
    }
    node::node("other").build(factory(draws.clone()));
    sleep(ms(1)).await;
    let out = draws.borrow().clone();
    out
}

#[sim_runtime::test]
async fn a_restarted_node_draws_afresh_from_rng_and_the_same_from_rng_global() {
    let draws = draws_per_life().await;
    assert_eq!(draws.len(), 4, "three lives of one node, one of another");
    let local: Vec<u64> = draws.iter().map(|d| d.0).collect();
    for i in 0..local.len() {
        for j in 0..i {
            assert_ne!(
                local[i], local[j],
                "lives {j} and {i} drew alike: {local:?}"
            );
        }
    }
    assert!(
        draws.iter().all(|d| d.1 == draws[0].1),
        "rng_global is one stream for the whole run: {draws:?}"
    );
}

/// Two runs of one seed, compared: `Sim::new` by hand.
#[test]
fn two_runs_of_one_seed_draw_alike_in_every_life() {
    let run = || {
        let r = Sim::new(11).run(draws_per_life);
        assert!(r.report.is_pass(), "{}", r.report);
        (r.output, r.report.fingerprint)
    };
    assert_eq!(run(), run());
}

#[sim_runtime::test]
async fn lifecycle_hooks_see_every_change() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    node::on_lifecycle(move |id, change| s.borrow_mut().push((id, change)));
    let n = node::node("x").build(std::future::pending::<()>);
    n.pause();
    n.resume();
    n.kill();
    n.restart();
    assert_eq!(
        *seen.borrow(),
        vec![
            (n, Lifecycle::Paused),
            (n, Lifecycle::Resumed),
            (n, Lifecycle::Killed),
            (n, Lifecycle::Restarted)
        ]
    );
}

/// Seeds vary which of two tasks woken at the same instant runs first, including the
/// case where the node's task is already queued when the pause happens.
#[sim_runtime::test(seeds = 16)]
async fn pause_holds_a_nodes_tasks_and_timers_until_resume() {
    let ticks = Rc::new(RefCell::new(Vec::new()));
    let t = ticks.clone();
    let n = node::node("worker").build(move || {
        let t = t.clone();
        async move {
            loop {
                sleep(ms(1)).await;
                t.borrow_mut().push(now());
            }
        }
    });
    sleep_until(at_ms(10)).await;
    n.pause();
    assert_eq!(n.state(), NodeState::Paused);
    let before = ticks.borrow().len();
    sleep(ms(50)).await;
    assert_eq!(ticks.borrow().len(), before, "a paused node ran");
    n.resume();
    // The timer that came due during the pause fires at once on resume.
    yield_now().await;
    yield_now().await;
    sleep(ms(3)).await;
    n.kill();
    let ticks = ticks.borrow();
    assert!(
        ticks.iter().all(|t| *t <= at_ms(10) || *t >= at_ms(60)),
        "tick during the pause: {ticks:?}"
    );
    assert!(ticks.contains(&at_ms(60)), "held tick delivered at resume");
    assert!(ticks.contains(&at_ms(62)), "ticking resumed: {ticks:?}");
}

#[sim_runtime::test]
async fn a_task_spawned_on_a_paused_node_waits_for_resume() {
    let n = node::node("p").build(|| async {});
    n.pause();
    let h = node::spawn_on_node(n, "job", async { now() });
    sleep(ms(20)).await;
    assert!(!h.is_finished());
    n.resume();
    assert_eq!(h.await.unwrap(), at_ms(20));
}

#[sim_runtime::test]
async fn aborting_a_task_of_a_paused_node_does_not_wait_for_resume() {
    let dropped_at = Rc::new(Cell::new(None));
    let guard = DropClock(dropped_at.clone());
    let n = node::node("p").build(|| async {});
    let mut h = node::spawn_on_node(n, "job", async move {
        let _guard = guard;
        sleep(ms(5)).await;
    });
    sleep(ms(1)).await;
    n.pause();
    // The job's timer fires during the pause: its wake is held.
    sleep(ms(10)).await;
    h.abort();
    assert_eq!(h.await, Err(sim_runtime::JoinError::Aborted));
    assert_eq!(n.state(), NodeState::Paused);
    assert_eq!(dropped_at.get(), Some(at_ms(11)));
    assert_eq!(now(), at_ms(11));
}

#[sim_runtime::test]
async fn a_task_that_kills_its_own_node_in_its_first_poll_is_dropped_at_once() {
    let dropped_at = Rc::new(Cell::new(None));
    let hog_dropped_at = Rc::new(Cell::new(None));
    let (d, h) = (dropped_at.clone(), hog_dropped_at.clone());
    let n = node::node("greedy").memory_budget(100).build(move || {
        let guard = DropClock(d.clone());
        let hog_guard = DropClock(h.clone());
        async move {
            let _guard = guard;
            sleep(ms(3)).await;
            // A second task whose very first poll trips the OOM killer.
            node::spawn_on_node(node::current(), "hog", async move {
                let _guard = hog_guard;
                let _ = node::reserve_memory(1_000).await;
                unreachable!("the reservation never completes");
            })
            .detach();
            std::future::pending::<()>().await;
        }
    });
    sleep(ms(4)).await;
    assert_eq!(
        (n.state(), dropped_at.get(), hog_dropped_at.get()),
        (NodeState::Killed, Some(at_ms(3)), Some(at_ms(3)))
    );
}

/// Reads the deadlock report: `Sim::new` by hand.
#[test]
fn a_node_that_killed_itself_leaves_nothing_to_report_as_blocked() {
    let stuck = Sim::new(6).run(|| async {
        node::node("suicidal").build(|| async {
            node::current().kill();
            std::future::pending::<()>().await;
        });
        std::future::pending::<()>().await;
    });
    let Outcome::Deadlock { blocked } = &stuck.report.outcome else {
        panic!("{}", stuck.report.outcome);
    };
    assert!(blocked.iter().all(|b| b.node == "main"), "{blocked:?}");
}

#[sim_runtime::test]
async fn exceeding_the_memory_budget_kills_the_node() {
    let progress = Rc::new(Cell::new(0));
    let p = progress.clone();
    let n = node::node("redis").memory_budget(1_000).build(move || {
        let p = p.clone();
        async move {
            let a = node::reserve_memory(600).await;
            p.set(1);
            {
                let b = node::reserve_memory(300).await;
                p.set(2);
                drop(b);
            }
            sleep(ms(5)).await;
            // 600 + 500 > 1000: the OOM killer strikes.
            let c = node::reserve_memory(500).await;
            p.set(3);
            drop((a, c));
        }
    });
    // The node's core events (no typed form), by name.
    let events = trace::capture_prefix("node.");
    sleep(ms(1)).await;
    assert_eq!(node::memory_used(n), 600);
    sleep(ms(10)).await;
    assert_eq!(n.state(), NodeState::Killed);
    assert_eq!(
        node::memory_used(n),
        0,
        "a killed node's memory is released"
    );
    let kinds: Vec<EventKind> = events.snapshot().into_iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&EventKind::NodeOom {
        requested: 500,
        budget: 1_000
    }));
    assert!(kinds.contains(&EventKind::NodeKill));
    assert_eq!(
        progress.get(),
        2,
        "code after the failed reservation never ran"
    );
}

/// Open-loop load on a node (`bcrypt-{i}`) with `cores` cores: requests arrive as a Poisson process at
/// `rate` per second, each occupying a core for `cost`. Returns completions per second
/// in the steady-state window and the mean latency there.
async fn cpu_load(i: usize, cores: usize, cost: Duration, rate: f64) -> (f64, Duration) {
    let warmup = Duration::from_secs(2);
    let window = Duration::from_secs(10);
    let done = Rc::new(RefCell::new(Vec::<(Instant, Duration)>::new()));
    let d = done.clone();
    let n = node::node(format!("bcrypt-{i}"))
        .cores(cores)
        .build(move || {
            let d = d.clone();
            async move {
                let mut rng = sim_runtime::rng("arrivals");
                let end = Instant::START + warmup + window;
                while now() < end {
                    let gap = rng.exponential(1.0 / rate);
                    sleep(Duration::from_secs_f64(gap)).await;
                    let d = d.clone();
                    spawn(async move {
                        let start = now();
                        node::compute(cost).await;
                        d.borrow_mut().push((now(), now() - start));
                    })
                    .detach();
                }
            }
        });
    sleep(warmup + window).await;
    n.kill();
    let from = Instant::START + warmup;
    let in_window: Vec<Duration> = done
        .borrow()
        .iter()
        .filter(|(t, _)| *t > from)
        .map(|(_, l)| *l)
        .collect();
    let throughput = in_window.len() as f64 / window.as_secs_f64();
    let mean = in_window.iter().sum::<Duration>() / in_window.len().max(1) as u32;
    (throughput, mean)
}

/// Five nodes, one per offered load, side by side in one run.
#[sim_runtime::test(seeds = 4)]
async fn cpu_throughput_plateaus_at_cores_over_cost_and_latency_grows_with_load() {
    let cores = 4;
    let cost = ms(10);
    let capacity = cores as f64 / cost.as_secs_f64(); // 400 requests per second
    let loads = [0.25, 0.5, 0.9, 1.5, 3.0];
    let runs: Vec<_> = loads
        .iter()
        .enumerate()
        .map(|(i, l)| spawn(cpu_load(i, cores, cost, capacity * l)))
        .collect();
    let mut results: Vec<(f64, Duration)> = Vec::new();
    for r in runs {
        results.push(r.await.unwrap());
    }
    // Below capacity the node keeps up with what is offered (Poisson noise aside: about
    // 1,000 arrivals in the window, so 3 % is one standard deviation).
    let (light, light_latency) = results[0];
    assert!((light / (capacity * 0.25) - 1.0).abs() < 0.15, "{light}");
    assert!(
        light_latency >= cost && light_latency < cost * 2,
        "{light_latency:?}"
    );
    // Past capacity, throughput is flat at cores / cost, within 1 %.
    for (load, (throughput, _)) in loads.iter().zip(&results).skip(3) {
        assert!(
            (throughput / capacity - 1.0).abs() < 0.01,
            "offered {load}x capacity: {throughput}/s, expected {capacity}/s"
        );
    }
    // Latency grows with load: queueing near capacity, unbounded past it.
    for pair in results.windows(2) {
        assert!(pair[1].1 > pair[0].1, "latency did not grow: {results:?}");
    }
    assert!(
        results[3].1 > cost * 50,
        "past capacity the queue grows: {results:?}"
    );
}

#[sim_runtime::test]
async fn cpu_busy_counts_the_compute_time_of_a_node() {
    let n = node::node("c").cores(2).build(|| async {
        for _ in 0..3 {
            node::compute(ms(10)).await;
        }
    });
    sleep(ms(100)).await;
    assert_eq!(node::cpu_busy(n), ms(30));
}

#[sim_runtime::test]
async fn compute_requests_queue_fifo_on_the_cores() {
    let finished = Rc::new(RefCell::new(Vec::new()));
    let f = finished.clone();
    let _n = node::node("cpu").cores(2).build(move || {
        let f = f.clone();
        async move {
            let mut hs = Vec::new();
            for _ in 0..5 {
                let f = f.clone();
                hs.push(spawn(async move {
                    node::compute(ms(10)).await;
                    f.borrow_mut().push(now());
                }));
                // Arrivals in order, all at time zero.
                yield_now().await;
            }
            for h in hs {
                h.await.unwrap();
            }
        }
    });
    sleep(ms(100)).await;
    // Two cores: requests finish at 10, 10, 20, 20, 30 ms.
    let mut times = finished.borrow().clone();
    times.sort();
    assert_eq!(
        times,
        vec![at_ms(10), at_ms(10), at_ms(20), at_ms(20), at_ms(30)]
    );
}

#[test]
fn the_main_node_cannot_be_killed() {
    let result = Sim::new(8).run(|| async {
        node::current().kill();
    });
    let Outcome::Panic { message, .. } = &result.report.outcome else {
        panic!("expected a panic, got {}", result.report.outcome);
    };
    assert!(message.contains("main node cannot be killed"), "{message}");
}
