//! A circuit breaker: CLOSED -> OPEN after consecutive failures, OPEN -> HALF_OPEN after a
//! cool-down, HALF_OPEN -> CLOSED after enough successful probes (or back to OPEN on a
//! failure). Transitions are trace events so checkers can follow the breaker.

use std::cell::RefCell;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use sim_runtime::time::{now, Duration, Instant};
use sim_runtime::trace::{self, TraceEvent};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failures_to_open: u32,
    /// How long it stays open before letting probes through.
    pub open_duration: Duration,
    /// Successful probes in half-open that close it again.
    pub successes_to_close: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures_to_open: 5,
            open_duration: Duration::from_secs(30),
            successes_to_close: 2,
        }
    }
}

/// The error of a call the breaker refused without trying.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker {0} is open")]
pub struct BreakerOpen(pub &'static str);

struct Inner {
    state: BreakerState,
    failures: u32,
    successes: u32,
    opened_at: Instant,
}

/// A shared circuit breaker (clones share the state).
#[derive(Clone)]
pub struct CircuitBreaker {
    name: &'static str,
    config: BreakerConfig,
    inner: Rc<RefCell<Inner>>,
}

/// A breaker changing state (`breaker.transition`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TraceEvent)]
#[trace_event(name = "breaker.transition")]
pub struct Transition {
    pub breaker: &'static str,
    pub from: BreakerState,
    pub to: BreakerState,
}

impl CircuitBreaker {
    pub fn new(name: &'static str, config: BreakerConfig) -> Self {
        let inner = Inner {
            state: BreakerState::Closed,
            failures: 0,
            successes: 0,
            opened_at: Instant::START,
        };
        CircuitBreaker {
            name,
            config,
            inner: Rc::new(RefCell::new(inner)),
        }
    }

    /// The state now (an open breaker whose cool-down passed reads as half-open).
    pub fn state(&self) -> BreakerState {
        self.refresh();
        self.inner.borrow().state
    }

    fn set(&self, inner: &mut Inner, to: BreakerState) {
        if inner.state != to {
            trace::emit(&Transition {
                breaker: self.name,
                from: inner.state,
                to,
            });
            inner.state = to;
        }
    }

    fn refresh(&self) {
        let mut inner = self.inner.borrow_mut();
        if inner.state == BreakerState::Open && now() >= inner.opened_at + self.config.open_duration
        {
            inner.successes = 0;
            self.set(&mut inner, BreakerState::HalfOpen);
        }
    }

    /// Asks to make a call: `Err` when open.
    pub fn try_acquire(&self) -> Result<(), BreakerOpen> {
        match self.state() {
            BreakerState::Open => Err(BreakerOpen(self.name)),
            _ => Ok(()),
        }
    }

    pub fn record_success(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.failures = 0;
        if inner.state == BreakerState::HalfOpen {
            inner.successes += 1;
            if inner.successes >= self.config.successes_to_close {
                self.set(&mut inner, BreakerState::Closed);
            }
        }
    }

    pub fn record_failure(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.failures += 1;
        let trip = match inner.state {
            BreakerState::HalfOpen => true,
            BreakerState::Closed => inner.failures >= self.config.failures_to_open,
            BreakerState::Open => false,
        };
        if trip {
            inner.opened_at = now();
            self.set(&mut inner, BreakerState::Open);
        }
    }

    /// Runs `op` through the breaker.
    pub async fn call<T, E, Fut>(
        &self,
        op: impl FnOnce() -> Fut,
    ) -> Result<Result<T, E>, BreakerOpen>
    where
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        self.try_acquire()?;
        let r = op().await;
        match &r {
            Ok(_) => self.record_success(),
            Err(_) => self.record_failure(),
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_runtime::time::sleep;
    use sim_runtime::Sim;

    #[test]
    fn goes_closed_open_half_open_closed() {
        let r = Sim::new(1).run(|| async {
            let b = CircuitBreaker::new(
                "db",
                BreakerConfig {
                    failures_to_open: 3,
                    open_duration: Duration::from_secs(10),
                    successes_to_close: 2,
                },
            );
            let mut seen = vec![b.state()];
            for _ in 0..3 {
                let _ = b.call(|| async { Err::<(), ()>(()) }).await;
            }
            seen.push(b.state());
            assert_eq!(
                b.call(|| async { Ok::<(), ()>(()) }).await,
                Err(BreakerOpen("db"))
            );
            sleep(Duration::from_secs(10)).await;
            seen.push(b.state());
            let _ = b.call(|| async { Ok::<(), ()>(()) }).await;
            seen.push(b.state());
            let _ = b.call(|| async { Ok::<(), ()>(()) }).await;
            seen.push(b.state());
            seen
        });
        use BreakerState::*;
        assert_eq!(
            r.output.unwrap(),
            vec![Closed, Open, HalfOpen, HalfOpen, Closed]
        );
    }

    #[test]
    fn a_failed_probe_reopens() {
        let r = Sim::new(1).run(|| async {
            let b = CircuitBreaker::new(
                "db",
                BreakerConfig {
                    failures_to_open: 1,
                    open_duration: Duration::from_secs(1),
                    successes_to_close: 1,
                },
            );
            b.record_failure();
            sleep(Duration::from_secs(1)).await;
            assert_eq!(b.state(), BreakerState::HalfOpen);
            b.record_failure();
            b.state()
        });
        assert_eq!(r.output.unwrap(), BreakerState::Open);
    }
}
