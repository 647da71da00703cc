//! The executor: spawn and join, abort and detach, interleavings chosen by the seed, and
//! the ways a run can end (pass, panic, deadlock, time limit, step limit).
//!
//! Behaviour under any seed runs as `#[sim_runtime::test]`; `Sim::new` only where a test
//! reads how a run ended (its outcome, its end time, its teardown) or compares runs.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use sim_runtime::time::{now, sleep, Duration, Instant};
use sim_runtime::{node, spawn, spawn_named, yield_now, JoinError, Outcome, Sim};

/// Sets a flag when dropped, so a test can see exactly when a future was destroyed.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// `tasks` tasks each append their id `rounds` times, yielding in between: the order of
/// the log is the interleaving the scheduler chose.
async fn interleaving(tasks: u32, rounds: usize) -> Vec<u32> {
    let log = Rc::new(RefCell::new(Vec::new()));
    let handles: Vec<_> = (0..tasks)
        .map(|id| {
            let log = log.clone();
            spawn(async move {
                for _ in 0..rounds {
                    log.borrow_mut().push(id);
                    yield_now().await;
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    let out = log.borrow().clone();
    out
}

/// The interleaving of three tasks of five rounds under `seed`.
fn interleaving_of_seed(seed: u64) -> Vec<u32> {
    let result = Sim::new(seed).run(|| interleaving(3, 5));
    assert!(result.report.is_pass(), "{}", result.report);
    result.output.unwrap()
}

#[sim_runtime::test]
async fn spawn_and_join_return_the_output() {
    let a = spawn(async { 20 });
    let b = spawn(async {
        sleep(Duration::from_millis(3)).await;
        22
    });
    assert_eq!(a.await.unwrap() + b.await.unwrap(), 42);
    assert_eq!(now(), Instant::from_nanos(3_000_000));
}

#[test]
fn the_same_seed_gives_the_same_interleaving_and_fingerprint() {
    assert_eq!(interleaving_of_seed(7), interleaving_of_seed(7));
    let run = || Sim::new(99).run(|| interleaving(4, 4));
    let (a, b) = (run(), run());
    assert_eq!(a.report.fingerprint, b.report.fingerprint);
    assert_eq!(a.report.events, b.report.events);
    assert_eq!(a.output, b.output);
}

#[test]
fn different_seeds_give_observably_different_interleavings() {
    let orders: Vec<Vec<u32>> = (0..8).map(interleaving_of_seed).collect();
    // Every order is a real interleaving: each task appended five times.
    for o in &orders {
        for id in 0..3 {
            assert_eq!(o.iter().filter(|x| **x == id).count(), 5);
        }
    }
    let distinct: std::collections::BTreeSet<_> = orders.iter().collect();
    assert!(
        distinct.len() >= 6,
        "8 seeds gave only {} distinct interleavings: {orders:?}",
        distinct.len()
    );
    // Nor is any seed simply first-come-first-served.
    let fifo: Vec<u32> = (0..5).flat_map(|_| 0..3).collect();
    assert!(orders.iter().any(|o| *o != fifo));
}

#[sim_runtime::test]
async fn yield_now_lets_other_tasks_run_first() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let h = spawn(async move { r.set(true) });
    // The spawned task is runnable; yielding repeatedly must let it run eventually
    // without any virtual time passing.
    while !ran.get() {
        yield_now().await;
    }
    h.await.unwrap();
    assert_eq!(now(), Instant::START);
}

#[sim_runtime::test]
async fn abort_drops_the_future_and_join_reports_aborted() {
    let dropped = Rc::new(Cell::new(false));
    let finished = Rc::new(Cell::new(false));
    let (d, f) = (DropFlag(dropped.clone()), finished.clone());
    let mut h = spawn(async move {
        let _guard = d;
        sleep(Duration::from_secs(1)).await;
        f.set(true);
    });
    sleep(Duration::from_millis(10)).await;
    assert!(!h.is_finished());
    h.abort();
    let joined = h.await;
    assert_eq!(joined, Err(JoinError::Aborted));
    assert!(
        dropped.get(),
        "the aborted task's future was dropped by the time join returned"
    );
    // Its timer fires at 1s; the task must not run then.
    sleep(Duration::from_secs(2)).await;
    assert!(!finished.get(), "an aborted task was polled again");
}

#[sim_runtime::test]
async fn abort_before_the_first_poll_never_runs_the_task() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let mut h = spawn(async move { r.set(true) });
    h.abort();
    assert_eq!(h.await, Err(JoinError::Aborted));
    yield_now().await;
    assert!(!ran.get());
}

#[sim_runtime::test]
async fn abort_after_completion_still_returns_the_output() {
    let mut h = spawn(async { 7 });
    sleep(Duration::from_millis(1)).await;
    assert!(h.is_finished());
    h.abort();
    assert_eq!(h.await, Ok(7));
}

#[sim_runtime::test]
async fn detached_and_dropped_handles_let_the_task_run_on() {
    let count = Rc::new(Cell::new(0));
    let c1 = count.clone();
    spawn(async move {
        sleep(Duration::from_millis(5)).await;
        c1.set(c1.get() + 1);
    })
    .detach();
    let c2 = count.clone();
    drop(spawn(async move {
        sleep(Duration::from_millis(6)).await;
        c2.set(c2.get() + 10);
    }));
    sleep(Duration::from_millis(10)).await;
    assert_eq!(count.get(), 11);
}

#[sim_runtime::test]
async fn joining_a_task_of_a_killed_node_reports_killed() {
    let n = node::node("worker").build(|| async {});
    let h = node::spawn_on_node(n, "long-job", async {
        sleep(Duration::from_secs(10)).await;
        1
    });
    sleep(Duration::from_millis(1)).await;
    n.kill();
    assert_eq!(h.await, Err(JoinError::Killed));
}

#[test]
fn a_panic_ends_the_run_with_message_node_task_and_location() {
    let result = Sim::new(11).run(|| async {
        let n = node::node("api").build(|| async {
            spawn_named("handler", async {
                sleep(Duration::from_millis(5)).await;
                panic!("invariant broken: balance {}", -3);
            })
            .detach();
        });
        let _ = n;
        sleep(Duration::from_secs(1)).await;
    });
    match &result.report.outcome {
        Outcome::Panic {
            message,
            node,
            task,
            task_name,
            location,
        } => {
            assert_eq!(message, "invariant broken: balance -3");
            assert_eq!(node, "api");
            assert_eq!(task_name, "handler");
            assert!(task.is_some());
            let location = location.as_deref().unwrap_or_default();
            assert!(location.contains("executor.rs"), "location {location}");
        }
        other => panic!("expected a panic outcome, got {other}"),
    }
    assert_eq!(result.report.time, Instant::from_nanos(5_000_000));
    assert!(result.output.is_none());
    let text = result.report.to_string();
    assert!(text.contains("panic on node api"), "{text}");
    assert!(text.contains("invariant broken"), "{text}");
    // A failure carries the last events.
    assert!(!result.report.last_events.is_empty());
}

#[test]
fn a_deadlock_names_every_blocked_task_with_its_node() {
    let result = Sim::new(12).run(|| async {
        let db = node::node("db").build(|| async {
            spawn_named("wal-writer", std::future::pending::<()>()).detach();
        });
        let (tx, rx) = futures::channel::oneshot::channel::<u32>();
        let h = node::spawn_on_node(db, "lock-waiter", async move { rx.await.ok() });
        sleep(Duration::from_millis(2)).await;
        // Nothing can ever complete `h`: no task is runnable and no timer is set.
        h.await.unwrap();
        // Keep the sender alive across the wait so the receiver never sees it dropped.
        drop(tx);
    });
    let Outcome::Deadlock { blocked } = &result.report.outcome else {
        panic!("expected a deadlock, got {}", result.report.outcome);
    };
    let named: Vec<(&str, &str)> = blocked
        .iter()
        .map(|b| (b.name.as_str(), b.node.as_str()))
        .collect();
    assert!(named.contains(&("wal-writer", "db")), "{named:?}");
    assert!(named.contains(&("lock-waiter", "db")), "{named:?}");
    assert!(named.contains(&("main", "main")), "{named:?}");
    for b in blocked {
        assert!(
            b.spawned_at.contains(".rs:"),
            "spawn location {}",
            b.spawned_at
        );
    }
    let text = result.report.outcome.to_string();
    assert!(text.contains("deadlock"), "{text}");
    assert!(
        text.contains("wal-writer") && text.contains("lock-waiter"),
        "{text}"
    );
    assert_eq!(result.report.time, Instant::from_nanos(2_000_000));
}

#[test]
fn a_deadlock_also_names_a_task_that_a_paused_node_holds_before_its_first_poll() {
    // Tasks enter the registry when they first park; one that never ran is still listed.
    let result = Sim::new(13).run(|| async {
        let db = node::node("db").build(std::future::pending::<()>);
        db.pause();
        let h = node::spawn_on_node(db, "never-ran", async {});
        h.await.unwrap();
    });
    let Outcome::Deadlock { blocked } = &result.report.outcome else {
        panic!("expected a deadlock, got {}", result.report.outcome);
    };
    let names: Vec<&str> = blocked.iter().map(|b| b.name.as_str()).collect();
    assert!(names.contains(&"never-ran"), "{names:?}");
}

#[sim_runtime::test]
async fn a_task_that_aborts_itself_in_its_first_poll_is_never_polled_again() {
    let slot: Rc<RefCell<Option<sim_runtime::task::JoinHandle<()>>>> = Rc::default();
    let polls = Rc::new(Cell::new(0u32));
    let dropped = Rc::new(Cell::new(false));
    let (s, p, d) = (slot.clone(), polls.clone(), DropFlag(dropped.clone()));
    let h = spawn(async move {
        let _guard = d;
        p.set(p.get() + 1);
        if let Some(me) = s.borrow_mut().as_mut() {
            me.abort();
        }
        sleep(Duration::from_secs(1)).await;
        p.set(p.get() + 1);
    });
    *slot.borrow_mut() = Some(h);
    // Dropped at once, not when its timer would have woken it.
    sleep(Duration::from_millis(1)).await;
    assert!(dropped.get(), "the future was dropped at once");
    sleep(Duration::from_secs(2)).await;
    assert_eq!(polls.get(), 1, "its timer must not run it again");
}

#[test]
fn a_time_limit_stops_a_run_that_sleeps_too_long() {
    let result = Sim::new(13)
        .time_limit(Duration::from_secs(5))
        .run(|| async {
            sleep(Duration::from_secs(3)).await;
            sleep(Duration::from_secs(3)).await;
        });
    assert_eq!(
        result.report.outcome,
        Outcome::TimeLimit {
            limit: Instant::from_nanos(5_000_000_000)
        }
    );
    // The clock stopped at the last timer before the limit.
    assert_eq!(result.report.time, Instant::from_nanos(3_000_000_000));
}

#[test]
fn a_step_limit_stops_a_busy_loop() {
    let result = Sim::new(14).step_limit(1_000).run(|| async {
        let spinner = spawn(async {
            loop {
                yield_now().await;
            }
        });
        spinner.await.unwrap();
    });
    assert_eq!(result.report.outcome, Outcome::StepLimit { limit: 1_000 });
    assert_eq!(result.report.steps, 1_000);
    assert!(result.report.to_string().contains("step limit"));
}

#[test]
fn teardown_drops_every_remaining_task_inside_the_simulation() {
    let flags: Vec<Rc<Cell<bool>>> = (0..3).map(|_| Rc::new(Cell::new(false))).collect();
    let f = flags.clone();
    let result = Sim::new(15).run(move || async move {
        for flag in f {
            let guard = DropFlag(flag);
            spawn(async move {
                let _guard = guard;
                sleep(Duration::from_secs(100)).await;
            })
            .detach();
        }
        sleep(Duration::from_millis(1)).await;
    });
    assert!(result.report.is_pass());
    assert!(
        flags.iter().all(|f| f.get()),
        "every leftover task was dropped"
    );
}
