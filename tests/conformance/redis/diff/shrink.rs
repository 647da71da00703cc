//! Shrinking a diverging sequence: drop commands (halves, then quarters... then single
//! ones) while the rest still diverges, so that what is printed is short enough to
//! replay by hand in redis-cli.

use super::gen::Step;
use super::real::RealRedis;
use super::{run_both, Outcome};

/// The smallest sub-sequence of `steps` found that still diverges, with its outcome.
pub fn shrink(conn: &mut RealRedis, mut steps: Vec<Step>, seed: u64) -> Outcome {
    let mut best = run_both(conn, &steps, seed);
    assert!(
        !best.differing.is_empty(),
        "shrink is given a diverging sequence; it did not diverge when run again"
    );
    let mut chunk = steps.len().div_ceil(2);
    while chunk >= 1 {
        let mut start = 0;
        let mut removed_any = false;
        while start < steps.len() {
            let end = (start + chunk).min(steps.len());
            let mut candidate = steps.clone();
            candidate.drain(start..end);
            // Dropping a MULTI could leave a blocking command with no timeout outside
            // it, which would wait forever on the real server.
            if !candidate.is_empty() && !super::gen::may_block_forever(&candidate) {
                let outcome = run_both(conn, &candidate, seed);
                if !outcome.differing.is_empty() {
                    steps = candidate;
                    best = outcome;
                    removed_any = true;
                    continue;
                }
            }
            start = end;
        }
        if chunk == 1 && !removed_any {
            break;
        }
        if chunk > 1 {
            chunk = chunk.div_ceil(2).min(chunk - 1).max(1);
        }
    }
    best
}
