//! Exploring seeds in parallel: each worker thread runs whole, independent simulations
//! (every simulation is single-threaded and owns its world), claiming seed positions from
//! a shared counter. The result does not depend on the thread count: the reported failure
//! is the lowest failing seed index, and workers stop claiming indices above it.
//!
//! Memory does not depend on the number of seeds: positions are computed, never listed,
//! and of all the failing runs only the lowest is kept whole; the caller sees the others
//! as they are found and streams them.

// Threads run separate simulations side by side; no simulated path ever sees them.
#![allow(clippy::disallowed_methods)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;

use sim_runtime::probe::ProbeTally;
use sim_runtime::rng::derive_seed;

use crate::scenario::RunOutput;

/// Which seeds to explore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedSpace {
    pub base: u64,
    pub count: u64,
    /// `(i, n)`: only indices `k` with `k % n == i`.
    pub shard: (u64, u64),
}

impl SeedSpace {
    /// How many seeds the shard holds.
    pub fn len(&self) -> u64 {
        let (i, n) = self.shard;
        if self.count <= i {
            0
        } else {
            (self.count - i - 1) / n + 1
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The seed index at `position` in the shard (`None` past its end).
    pub fn index(&self, position: u64) -> Option<u64> {
        let (i, n) = self.shard;
        // Below `len`, `i + position * n < count` cannot overflow.
        (position < self.len()).then(|| i + position * n)
    }

    /// The shard's seed indices in order.
    pub fn indices(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len()).filter_map(|p| self.index(p))
    }

    pub fn seed(&self, index: u64) -> u64 {
        derive_seed(self.base, index)
    }
}

/// One explored seed's result, as `--json` prints it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SeedResult {
    pub index: u64,
    pub seed: String,
    pub failed: bool,
    pub failure: Option<String>,
    pub fingerprint: String,
    pub virtual_ms: u64,
    pub swarm: Option<String>,
}

impl SeedResult {
    fn from<F, M>(index: u64, out: &RunOutput<F, M>) -> Self {
        SeedResult {
            index,
            seed: format!("{:#x}", out.seed()),
            failed: out.failed(),
            failure: out.failure_summary(),
            fingerprint: format!("{:#018x}", out.report.fingerprint),
            virtual_ms: out.report.time.as_nanos() / 1_000_000,
            swarm: out.swarm.as_ref().map(|s| s.to_string()),
        }
    }
}

/// What an exploration found.
#[derive(Clone, Debug)]
pub struct Exploration<F, M> {
    /// Seeds run.
    pub runs: u64,
    /// How many of them failed (only the lowest unless `collect_all`).
    pub failed: u64,
    /// The failure at the lowest seed index, with its whole run.
    pub lowest: Option<(u64, RunOutput<F, M>)>,
    /// `stop` ended the exploration before its seeds ran out. Every seed claimed before
    /// then finished, so the runs cover the shard's first `runs` positions (when nothing
    /// failed).
    pub interrupted: bool,
    /// The `sometimes!` and `always!` counts of every run, added up.
    pub probes: ProbeTally,
}

/// Explores `space` with `jobs` threads, running each seed through `run` (a plan's run,
/// the same for every seed), until the seeds run out, a failure is found (unless
/// `collect_all`), or `stop` is set. `on_result` sees every result as it arrives, with
/// the whole run when it failed (for progress bars, JSON lines and streamed failures).
pub fn explore<F: Send, M: Send>(
    run: impl Fn(u64) -> RunOutput<F, M> + Sync,
    space: &SeedSpace,
    jobs: usize,
    collect_all: bool,
    stop: &AtomicBool,
    mut on_result: impl FnMut(&SeedResult, Option<&RunOutput<F, M>>),
) -> Exploration<F, M> {
    let next = AtomicU64::new(0);
    let limit = AtomicU64::new(u64::MAX);
    type Message<F, M> = (SeedResult, Option<RunOutput<F, M>>, ProbeTally);
    let (tx, rx) = mpsc::channel::<Message<F, M>>();
    let mut found = Exploration {
        runs: 0,
        failed: 0,
        lowest: None,
        interrupted: false,
        probes: ProbeTally::default(),
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            let tx = tx.clone();
            let (run, next, limit) = (&run, &next, &limit);
            scope.spawn(move || loop {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Some(index) = space.index(next.fetch_add(1, Ordering::SeqCst)) else {
                    break;
                };
                if !collect_all && index > limit.load(Ordering::SeqCst) {
                    break;
                }
                let out = run(space.seed(index));
                let result = SeedResult::from(index, &out);
                let probes = out.report.probes.clone();
                let failure = out.failed().then(|| {
                    limit.fetch_min(index, Ordering::SeqCst);
                    out
                });
                if tx.send((result, failure, probes)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for (result, failure, probes) in rx {
            found.runs += 1;
            // Addition commutes: the sum does not depend on which thread ran which seed.
            found.probes.merge(&probes);
            on_result(&result, failure.as_ref());
            if let Some(out) = failure {
                found.failed += 1;
                if found.lowest.as_ref().is_none_or(|(i, _)| result.index < *i) {
                    found.lowest = Some((result.index, out));
                }
            }
        }
    });
    if !collect_all && found.lowest.is_some() {
        // Workers racing past the lowest failure may have found higher ones too; what is
        // reported must not depend on the thread count.
        found.failed = 1;
    }
    found.interrupted = stop.load(Ordering::SeqCst) && found.runs < space.len();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_counts_and_places_its_seeds_without_listing_them() {
        let space = |count, shard| SeedSpace {
            base: 0,
            count,
            shard,
        };
        for (count, shard) in [(10, (0, 1)), (10, (1, 3)), (10, (2, 3)), (2, (2, 3))] {
            let listed: Vec<u64> = (0..count).filter(|k| k % shard.1 == shard.0).collect();
            let s = space(count, shard);
            assert_eq!(s.len(), listed.len() as u64, "{count} {shard:?}");
            assert_eq!(s.indices().collect::<Vec<_>>(), listed);
        }
        let huge = space(u64::MAX, (3, 5));
        assert_eq!(huge.len(), (u64::MAX - 4) / 5 + 1);
        let last = huge.len() - 1;
        assert_eq!(huge.index(last), Some(3 + last * 5));
        assert!(huge.index(last).unwrap() < u64::MAX);
        assert_eq!(huge.index(huge.len()), None);
    }
}
