//! `time::wake_at_global`: a timer that wakes another task's waker at an instant.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use sim_runtime::node::NodeId;
use sim_runtime::time::{self, Duration, Instant};
use sim_runtime::{spawn, Sim};

/// A task that parks until `ready` is set, leaving its waker in `slot`; returns the
/// times at which it was polled.
fn parked_task(
    ready: Rc<Cell<bool>>,
    slot: Rc<RefCell<Option<Waker>>>,
) -> sim_runtime::JoinHandle<Vec<Instant>> {
    spawn(async move {
        let mut polls = Vec::new();
        poll_fn(|cx| {
            polls.push(time::now());
            if ready.get() {
                Poll::Ready(())
            } else {
                *slot.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        polls
    })
}

fn wake_later(seed: u64) -> (Vec<Instant>, u64) {
    let r = Sim::new(seed).run(|| async {
        let (ready, slot) = (Rc::new(Cell::new(false)), Rc::new(RefCell::new(None)));
        let task = parked_task(ready.clone(), slot.clone());
        time::sleep(Duration::from_millis(1)).await;
        let waker = slot.borrow_mut().take().expect("the task parked");
        ready.set(true);
        time::wake_at_global(time::now() + Duration::from_millis(5), NodeId::MAIN, waker);
        task.await.unwrap()
    });
    assert!(r.report.is_pass(), "{}", r.report);
    (r.output.unwrap(), r.report.fingerprint)
}

#[test]
fn the_waker_is_woken_at_the_deadline_and_not_before() {
    let (polls, _) = wake_later(1);
    assert_eq!(
        polls,
        vec![Instant::START, Instant::START + Duration::from_millis(6)],
        "parked at 0, woken 5 ms after the 1 ms mark"
    );
}

#[test]
fn a_deadline_already_passed_wakes_at_once() {
    let r = Sim::new(2).run(|| async {
        let (ready, slot) = (Rc::new(Cell::new(false)), Rc::new(RefCell::new(None)));
        let task = parked_task(ready.clone(), slot.clone());
        time::sleep(Duration::from_millis(3)).await;
        let waker = slot.borrow_mut().take().expect("the task parked");
        ready.set(true);
        time::wake_at_global(Instant::START, NodeId::MAIN, waker);
        task.await.unwrap()
    });
    assert!(r.report.is_pass(), "{}", r.report);
    assert_eq!(
        r.output.unwrap().last(),
        Some(&(Instant::START + Duration::from_millis(3)))
    );
}

#[test]
fn the_same_seed_gives_the_same_fingerprint() {
    assert_eq!(wake_later(7).1, wake_later(7).1);
}
