//! A token-bucket rate limiter on virtual time (the "5 per minute" and 429 rules of the
//! seed systems), kept per client key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sim_runtime::time::{now, Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenBucketConfig {
    /// Tokens a new bucket holds, and the most it ever holds.
    pub capacity: u32,
    /// One token comes back every `refill_every`.
    pub refill_every: Duration,
}

impl TokenBucketConfig {
    /// `n` requests per `window`, bursting up to `n`.
    pub fn per(n: u32, window: Duration) -> Self {
        TokenBucketConfig {
            capacity: n,
            refill_every: window / n.max(1),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: u32,
    updated: Instant,
}

/// Token buckets per key.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    config: TokenBucketConfig,
    buckets: BTreeMap<String, Bucket>,
}

impl RateLimiter {
    pub fn new(config: TokenBucketConfig) -> Self {
        RateLimiter {
            config,
            buckets: BTreeMap::new(),
        }
    }

    /// Takes a token for `key`: `true` if allowed, `false` for a 429.
    pub fn allow(&mut self, key: &str) -> bool {
        let t = now();
        let cfg = self.config;
        let b = self.buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: cfg.capacity,
            updated: t,
        });
        let step = cfg.refill_every.as_nanos().max(1);
        let refilled = (t.duration_since(b.updated).as_nanos() / step) as u64;
        if refilled > 0 {
            b.tokens = (b.tokens as u64 + refilled).min(cfg.capacity as u64) as u32;
            b.updated += Duration::from_nanos((refilled as u128 * step) as u64);
        }
        if b.tokens > 0 {
            b.tokens -= 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_runtime::time::sleep;
    use sim_runtime::Sim;

    #[test]
    fn five_per_minute_then_429_then_refills() {
        let r = Sim::new(1).run(|| async {
            let mut rl = RateLimiter::new(TokenBucketConfig::per(5, Duration::from_secs(60)));
            let first: Vec<bool> = (0..7).map(|_| rl.allow("alice")).collect();
            let other = rl.allow("bob");
            sleep(Duration::from_secs(12)).await;
            let after = (rl.allow("alice"), rl.allow("alice"));
            (first, other, after)
        });
        let (first, other, after) = r.output.unwrap();
        assert_eq!(first, vec![true, true, true, true, true, false, false]);
        assert!(other, "buckets are per key");
        assert_eq!(after, (true, false), "one token per 12 s");
    }
}
