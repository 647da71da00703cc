//! Retries with exponential backoff and full jitter (the AWS architecture blog's
//! recommendation: it spreads retry storms better than equal or no jitter).

use std::future::Future;

use serde::{Deserialize, Serialize};
use sim_runtime::time::{sleep, Duration};
use sim_runtime::SimRng;

/// A backoff policy: attempt n waits a uniform time in `[0, min(max, base * 2^n)]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    /// Attempts in all, the first included; `None` retries forever.
    pub attempts_max: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(50),
            max: Duration::from_secs(5),
            attempts_max: Some(5),
        }
    }
}

impl Backoff {
    /// The ceiling of the wait before retry number `attempt` (0 for the first retry).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u64.checked_shl(attempt.min(40)).unwrap_or(u64::MAX);
        let ns = (self.base.as_nanos() as u64).saturating_mul(factor);
        Duration::from_nanos(ns).min(self.max)
    }

    /// The jittered wait before retry number `attempt`.
    pub fn delay(&self, attempt: u32, rng: &mut SimRng) -> Duration {
        let ceiling = self.ceiling(attempt).as_nanos() as u64;
        Duration::from_nanos(rng.range_inclusive(0, ceiling))
    }

    pub fn allows(&self, attempts_made: u32) -> bool {
        self.attempts_max.is_none_or(|m| attempts_made < m)
    }
}

/// Runs `op` until it succeeds, `retryable` says an error is final, or the policy's
/// attempts run out; returns the last result.
pub async fn retry<T, E, F, Fut>(
    policy: Backoff,
    rng: &mut SimRng,
    retryable: impl Fn(&E) -> bool,
    mut op: F,
) -> Result<T, E>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 0u32;
    loop {
        match op(attempt).await {
            Ok(v) => return Ok(v),
            Err(e) => {
                attempt += 1;
                if !retryable(&e) || !policy.allows(attempt) {
                    return Err(e);
                }
                sleep(policy.delay(attempt - 1, rng)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_runtime::time::now;
    use sim_runtime::Sim;

    #[test]
    fn ceilings_double_up_to_the_max() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            attempts_max: None,
        };
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(1), Duration::from_millis(200));
        assert_eq!(b.ceiling(3), Duration::from_millis(800));
        assert_eq!(b.ceiling(4), Duration::from_secs(1));
        assert_eq!(b.ceiling(60), Duration::from_secs(1));
    }

    #[test]
    fn retries_until_success_and_waits_within_ceilings() {
        let r = Sim::new(1).run(|| async {
            let mut rng = sim_runtime::rng("retry");
            let policy = Backoff {
                base: Duration::from_millis(100),
                max: Duration::from_secs(10),
                attempts_max: Some(10),
            };
            let start = now();
            let out: Result<u32, &str> = retry(
                policy,
                &mut rng,
                |_| true,
                |n| async move {
                    if n < 3 {
                        Err("busy")
                    } else {
                        Ok(n)
                    }
                },
            )
            .await;
            (out, now() - start)
        });
        let (out, waited) = r.output.unwrap();
        assert_eq!(out, Ok(3));
        assert!(
            waited <= Duration::from_millis(100 + 200 + 400),
            "{waited:?}"
        );
    }

    #[test]
    fn gives_up_after_the_attempt_budget_and_on_final_errors() {
        let r = Sim::new(2).run(|| async {
            let mut rng = sim_runtime::rng("retry");
            let policy = Backoff {
                attempts_max: Some(3),
                ..Backoff::default()
            };
            let mut calls = 0;
            let out: Result<(), &str> = retry(
                policy,
                &mut rng,
                |_| true,
                |_| {
                    calls += 1;
                    async { Err("down") }
                },
            )
            .await;
            let mut final_calls = 0;
            let fin: Result<(), &str> = retry(
                policy,
                &mut rng,
                |e| *e != "fatal",
                |_| {
                    final_calls += 1;
                    async { Err("fatal") }
                },
            )
            .await;
            (out, calls, fin, final_calls)
        });
        assert_eq!(r.output.unwrap(), (Err("down"), 3, Err("fatal"), 1));
    }
}
