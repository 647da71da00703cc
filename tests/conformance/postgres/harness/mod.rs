//! The differential harness: a [`case::Case`] (a schema, then statements of one to three
//! sessions in a fixed order) runs on the sql model ([`model_side`], virtual time) and on
//! a real PostgreSQL 15 ([`real_side`], a thread per session); [`compare`] finds the
//! first difference in what each statement answered, which statement waited, and the
//! final contents, tells the documented differences ([`known`]) from divergences, and
//! shrinks a divergence to a minimal case printed as SQL per session. The cases come
//! from [`gen_single`], [`gen_interleave`] and [`scripted`].

#![allow(dead_code)]

pub mod case;
pub mod compare;
pub mod gen_interleave;
pub mod gen_single;
pub mod known;
pub mod model_side;
pub mod outcome;
pub mod real_side;
pub mod rng;
pub mod scripted;

use case::Case;
use compare::Tally;

/// `deadlock_timeout` on both sides: short, so that a run of many deadlocks stays quick
/// on the real server (whose waits take wall-clock time).
pub const DEADLOCK_TIMEOUT_MS: u64 = 20;

/// Runs `cases` on both sides, `workers` cases at a time on the real server (each case
/// has its own schema there; the model side is a simulation per case).
pub fn run_all(cases: Vec<Case>, url: &str, seed: u64, workers: usize) -> Tally {
    let queue = std::sync::Mutex::new(cases.into_iter().enumerate().collect::<Vec<_>>());
    let tally = std::sync::Mutex::new(Tally::default());
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            scope.spawn(|| loop {
                let next = queue.lock().expect("queue").pop();
                let Some((i, case)) = next else { break };
                let mut mine = Tally::default();
                mine.add(&case, url, seed.wrapping_add(i as u64));
                tally.lock().expect("tally").merge(mine);
            });
        }
    });
    tally.into_inner().expect("tally")
}
