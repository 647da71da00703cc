//! A bulkhead: at most `permits` callers inside at once, the rest waiting in FIFO order for
//! at most a bounded time before they are turned away. It keeps one kind of work (bcrypt
//! hashing) from taking every core, or every connection, that other work needs, and it
//! turns an overload into quick refusals (503) instead of an unbounded queue.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use futures::channel::oneshot;
use sim_runtime::time::{timeout, Duration};

/// The wait for a permit ran out: the caller should shed the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bulkhead full: no permit within the wait bound")]
pub struct BulkheadFull;

#[derive(Clone)]
pub struct Bulkhead {
    inner: Rc<RefCell<Inner>>,
}

struct Inner {
    permits: usize,
    in_use: usize,
    /// Waiters in arrival order; a permit is handed to the first that still listens.
    waiters: VecDeque<oneshot::Sender<()>>,
}

/// A permit; dropping it lets the next waiter in.
pub struct Permit {
    inner: Rc<RefCell<Inner>>,
}

impl Bulkhead {
    pub fn new(permits: usize) -> Self {
        Bulkhead {
            inner: Rc::new(RefCell::new(Inner {
                permits: permits.max(1),
                in_use: 0,
                waiters: VecDeque::new(),
            })),
        }
    }

    /// Callers waiting for a permit now.
    pub fn waiting(&self) -> usize {
        self.inner.borrow().waiters.len()
    }

    /// A permit, waiting at most `wait_max` for one.
    pub async fn acquire(&self, wait_max: Duration) -> Result<Permit, BulkheadFull> {
        let mut rx = {
            let mut i = self.inner.borrow_mut();
            if i.in_use < i.permits && i.waiters.is_empty() {
                i.in_use += 1;
                return Ok(self.permit());
            }
            let (tx, rx) = oneshot::channel();
            i.waiters.push_back(tx);
            rx
        };
        match timeout(wait_max, &mut rx).await {
            Ok(Ok(())) => Ok(self.permit()),
            // The bulkhead went away with its node: nothing to hand out.
            Ok(Err(_)) => Err(BulkheadFull),
            Err(_) => {
                // A permit handed over in the same instant the wait ran out is still ours.
                rx.close();
                match rx.try_recv() {
                    Ok(Some(())) => Ok(self.permit()),
                    _ => Err(BulkheadFull),
                }
            }
        }
    }

    fn permit(&self) -> Permit {
        Permit {
            inner: Rc::clone(&self.inner),
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut i = self.inner.borrow_mut();
        // Hand the permit straight to the first waiter still listening, so that a caller
        // arriving now cannot overtake the queue.
        while let Some(next) = i.waiters.pop_front() {
            if next.send(()).is_ok() {
                return;
            }
        }
        i.in_use -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_runtime::time::{now, sleep, Instant};
    use sim_runtime::Sim;

    #[test]
    fn one_permit_queues_in_order_and_sheds_past_the_wait_bound() {
        let r = Sim::new(1).run(|| async {
            let b = Bulkhead::new(1);
            let log = Rc::new(RefCell::new(Vec::new()));
            let mut tasks = Vec::new();
            for k in 0..4u64 {
                let (b, log) = (b.clone(), Rc::clone(&log));
                tasks.push(sim_runtime::spawn(async move {
                    sleep(Duration::from_millis(k)).await;
                    match b.acquire(Duration::from_millis(250)).await {
                        Ok(_permit) => {
                            sleep(Duration::from_millis(100)).await;
                            log.borrow_mut().push((k, true, now()));
                        }
                        Err(BulkheadFull) => log.borrow_mut().push((k, false, now())),
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
            let out = log.borrow().clone();
            out
        });
        let at = |ms: u64| Instant::START + Duration::from_millis(ms);
        assert_eq!(
            r.output.unwrap(),
            vec![
                (0, true, at(100)),
                (1, true, at(200)),
                // Waited from 3 ms; the permit would only come at 300 ms. Logged in
                // time order, so before 2 finishes.
                (3, false, at(253)),
                (2, true, at(300)),
            ]
        );
    }
}
