//! Exploring seeds in parallel: each worker thread runs whole, independent simulations
//! (every simulation is single-threaded and owns its world), claiming seed indices from a
//! shared counter. The result does not depend on the thread count: the reported failure is
//! the lowest failing seed index, and workers stop claiming indices above it.

// Threads run separate simulations side by side; no simulated path ever sees them.
#![allow(clippy::disallowed_methods)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};

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
    pub fn indices(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.count).filter(move |k| k % self.shard.1 == self.shard.0)
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
    pub runs: u64,
    /// Failures as `(seed index, run)`, lowest index first (only the lowest one unless
    /// `collect_all`).
    pub failures: Vec<(u64, RunOutput<F, M>)>,
}

/// Explores `space` with `jobs` threads, running each seed through `run` (a plan's run,
/// the same for every seed). `on_result` sees every result (for progress bars and JSON
/// lines).
pub fn explore<F: Send, M: Send>(
    run: impl Fn(u64) -> RunOutput<F, M> + Sync,
    space: &SeedSpace,
    jobs: usize,
    collect_all: bool,
    mut on_result: impl FnMut(&SeedResult),
) -> Exploration<F, M> {
    let indices: Vec<u64> = space.indices().collect();
    let next = AtomicU64::new(0);
    let limit = AtomicU64::new(u64::MAX);
    let failures = Mutex::new(Vec::new());
    let (tx, rx) = mpsc::channel::<SeedResult>();
    let mut runs = 0u64;
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            let tx = tx.clone();
            let (run, next, limit, failures, indices) = (&run, &next, &limit, &failures, &indices);
            scope.spawn(move || loop {
                let pos = next.fetch_add(1, Ordering::SeqCst) as usize;
                let Some(&index) = indices.get(pos) else {
                    break;
                };
                if !collect_all && index > limit.load(Ordering::SeqCst) {
                    break;
                }
                let out = run(space.seed(index));
                let result = SeedResult::from(index, &out);
                if out.failed() {
                    limit.fetch_min(index, Ordering::SeqCst);
                    failures
                        .lock()
                        .expect("no worker panics while holding it")
                        .push((index, out));
                }
                if tx.send(result).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for r in rx {
            runs += 1;
            on_result(&r);
        }
    });
    let mut failures = failures.into_inner().expect("workers finished");
    failures.sort_by_key(|(i, _)| *i);
    if !collect_all {
        failures.truncate(1);
    }
    Exploration { runs, failures }
}
