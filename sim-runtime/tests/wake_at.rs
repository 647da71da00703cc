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

/// Parks a task, then has `wake_at_global` wake it 5 ms after the 1 ms mark; returns
/// the times at which it was polled.
async fn wake_later() -> Vec<Instant> {
    let (ready, slot) = (Rc::new(Cell::new(false)), Rc::new(RefCell::new(None)));
    let task = parked_task(ready.clone(), slot.clone());
    time::sleep(Duration::from_millis(1)).await;
    let waker = slot.borrow_mut().take().expect("the task parked");
    ready.set(true);
    time::wake_at_global(time::now() + Duration::from_millis(5), NodeId::MAIN, waker);
    task.await.unwrap()
}

#[sim_runtime::test]
async fn the_waker_is_woken_at_the_deadline_and_not_before() {
    assert_eq!(
        wake_later().await,
        vec![Instant::START, Instant::START + Duration::from_millis(6)],
        "parked at 0, woken 5 ms after the 1 ms mark"
    );
}

#[sim_runtime::test]
async fn a_deadline_already_passed_wakes_at_once() {
    let (ready, slot) = (Rc::new(Cell::new(false)), Rc::new(RefCell::new(None)));
    let task = parked_task(ready.clone(), slot.clone());
    time::sleep(Duration::from_millis(3)).await;
    let waker = slot.borrow_mut().take().expect("the task parked");
    ready.set(true);
    time::wake_at_global(Instant::START, NodeId::MAIN, waker);
    assert_eq!(
        task.await.unwrap().last(),
        Some(&(Instant::START + Duration::from_millis(3)))
    );
}

/// Two runs of one seed: `Sim::new` by hand, to compare their fingerprints.
#[test]
fn the_same_seed_gives_the_same_fingerprint() {
    let run = || {
        let r = Sim::new(7).run(wake_later);
        assert!(r.report.is_pass(), "{}", r.report);
        r.report.fingerprint
    };
    assert_eq!(run(), run());
}
