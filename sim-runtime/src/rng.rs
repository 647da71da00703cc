//! Seeded randomness: ChaCha8 streams derived from the run's `u64` seed.
//!
//! Every component takes its own named stream with [`SimRng::fork`], so adding a new
//! component (or a new draw in one) never shifts the draws of another: the network's
//! latencies stay the same when a model starts using randomness.
//!
//! Inside a simulation, [`crate::rng()`] forks by the calling node and its incarnation as
//! well as the name: a node-local consumer (a retry's jitter, a workload) gets a fresh
//! stream in each life of its node, as a restarted process reseeds, rather than
//! replaying what it drew before the crash. [`crate::rng_global`] forks by the name
//! alone, for streams that belong to the whole run rather than to one node's life.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use std::fmt;

use crate::hash::{hash_str, mix64};

/// A probability in `[0, 1]`. A newtype so that a latency in ms can never be passed
/// where a chance was meant.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Probability(f64);

/// A value outside `[0, 1]` (or NaN) given as a probability.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("probability must be within [0, 1], got {0}")]
pub struct InvalidProbability(pub f64);

impl Probability {
    pub const NEVER: Probability = Probability(0.0);
    pub const ALWAYS: Probability = Probability(1.0);

    pub fn new(p: f64) -> Result<Self, InvalidProbability> {
        if (0.0..=1.0).contains(&p) {
            Ok(Probability(p))
        } else {
            Err(InvalidProbability(p))
        }
    }

    /// For constants in code: panics on a value outside `[0, 1]`, which is a bug.
    pub fn of(p: f64) -> Self {
        Self::new(p).expect("probability constant out of range")
    }

    pub fn get(self) -> f64 {
        self.0
    }

    pub fn is_never(self) -> bool {
        self.0 == 0.0
    }
}

impl TryFrom<f64> for Probability {
    type Error = InvalidProbability;
    fn try_from(p: f64) -> Result<Self, Self::Error> {
        Probability::new(p)
    }
}

impl From<Probability> for f64 {
    fn from(p: Probability) -> f64 {
        p.0
    }
}

impl fmt::Display for Probability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Keeps [`SimRng::fork_indexed`]'s keys apart from the hashes of [`SimRng::fork`]'s
/// names (an index of 0 must not mean the same as some name).
const INDEX_SALT: u64 = 0x6a09_e667_f3bc_c908;

/// A deterministic random stream.
#[derive(Clone, Debug)]
pub struct SimRng {
    inner: ChaCha8Rng,
    seed: u64,
}

impl SimRng {
    pub fn new(seed: u64) -> Self {
        SimRng {
            inner: ChaCha8Rng::seed_from_u64(seed),
            seed,
        }
    }

    /// The seed this stream was made from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// An independent stream named `name`, derived from this stream's seed (not from its
    /// position), so forking never consumes draws and the order of forks does not matter.
    pub fn fork(&self, name: &str) -> SimRng {
        SimRng::new(mix64(self.seed ^ hash_str(name)))
    }

    /// An independent stream numbered `index` (a node's life, a worker's number),
    /// derived like [`SimRng::fork`] from this stream's seed alone.
    pub fn fork_indexed(&self, index: u64) -> SimRng {
        SimRng::new(mix64(self.seed ^ mix64(index ^ INDEX_SALT)))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    pub fn next_u32(&mut self) -> u32 {
        self.inner.next_u32()
    }

    /// A uniform integer in `0..n` (n > 0), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0) is empty");
        // Lemire's multiply-shift with rejection. The threshold (2^64 mod n) is below n,
        // so the division that computes it is only needed when `low < n`: rarely, since
        // it sits on the scheduler's every step.
        loop {
            let x = self.next_u64();
            let m = (x as u128) * (n as u128);
            let low = m as u64;
            if low >= n || low >= n.wrapping_neg() % n {
                return (m >> 64) as u64;
            }
        }
    }

    /// A uniform index in `0..len`.
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// A uniform integer in `lo..=hi`.
    pub fn range_inclusive(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "empty range {lo}..={hi}");
        if lo == 0 && hi == u64::MAX {
            return self.next_u64();
        }
        lo + self.below(hi - lo + 1)
    }

    /// A uniform integer in `range` (half-open).
    pub fn range(&mut self, range: std::ops::Range<u64>) -> u64 {
        assert!(range.start < range.end, "empty range {range:?}");
        range.start + self.below(range.end - range.start)
    }

    /// A uniform float in `[0, 1)` with 53 bits of precision.
    pub fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p`. Never draws for 0 or 1, so turning a fault off does
    /// not shift the stream.
    pub fn chance(&mut self, p: Probability) -> bool {
        if p.0 <= 0.0 {
            false
        } else if p.0 >= 1.0 {
            true
        } else {
            self.unit_f64() < p.0
        }
    }

    /// A uniformly picked element, or `None` for an empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            Some(&items[self.index(items.len())])
        }
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }

    /// An exponentially distributed float with the given mean (for arrival processes).
    pub fn exponential(&mut self, mean: f64) -> f64 {
        let u = 1.0 - self.unit_f64(); // in (0, 1]
        -mean * u.ln()
    }
}

/// Seed `n` of a sweep starting at `base`. Mixed, so neighbouring seeds share nothing.
pub fn derive_seed(base: u64, n: u64) -> u64 {
    mix64(base ^ mix64(n.wrapping_add(0x9e37_79b9_7f4a_7c15)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forks_are_independent_of_draw_position() {
        let mut a = SimRng::new(7);
        let fork_before = a.fork("net").next_u64();
        a.next_u64();
        let fork_after = a.fork("net").next_u64();
        assert_eq!(fork_before, fork_after);
        assert_ne!(a.fork("net").next_u64(), a.fork("kv").next_u64());
    }

    #[test]
    fn indexed_forks_differ_by_index_and_repeat_for_the_same_one() {
        let r = SimRng::new(7).fork("worker");
        let draws: Vec<u64> = (0..4).map(|i| r.fork_indexed(i).next_u64()).collect();
        assert_eq!(draws[1], r.fork_indexed(1).next_u64());
        for i in 0..4 {
            for j in 0..i {
                assert_ne!(draws[i], draws[j], "indices {j} and {i}");
            }
        }
        assert_ne!(r.fork_indexed(0).next_u64(), r.clone().next_u64());
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = SimRng::new(1);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let x = r.below(7) as usize;
            seen[x] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn probability_rejects_out_of_range() {
        assert!(Probability::new(1.5).is_err());
        assert!(Probability::new(f64::NAN).is_err());
        assert!(serde_json::from_str::<Probability>("2.0").is_err());
        assert_eq!(
            serde_json::from_str::<Probability>("0.25").unwrap().get(),
            0.25
        );
    }

    #[test]
    fn chance_matches_probability_roughly() {
        let mut r = SimRng::new(3);
        let hits = (0..10_000)
            .filter(|_| r.chance(Probability::of(0.3)))
            .count();
        assert!((2_800..3_200).contains(&hits), "{hits}");
    }

    #[test]
    fn derived_seeds_are_not_sequential() {
        let a = derive_seed(0, 0);
        let b = derive_seed(0, 1);
        assert_ne!(a.wrapping_add(1), b);
        assert_ne!(a, b);
    }
}
