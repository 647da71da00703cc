//! Shrinking a failing fault schedule to a smallest one that still fails: greedy delta
//! debugging over the schedule's structure. Each pass tries, in order, removing a fault,
//! shrinking a fault (shorter windows, milder values, as the fault type offers), and
//! moving a fault earlier; any change that still fails is kept, until a fixpoint. Every
//! candidate is a full deterministic run, so the result is exact for that seed.

use sim_runtime::schedule::{FaultSchedule, ScheduledFault};

/// A fault type that knows its smaller neighbours (shorter windows, fewer targets).
pub trait ShrinkFault: Clone {
    fn smaller(&self) -> Vec<Self>;
}

/// Shorter versions of a window of `x` ms for a fault's `smaller`: half of it, and a
/// tenth less, never below `floor`.
pub fn shorter(x: u64, floor: u64) -> Vec<u64> {
    let mut v = Vec::new();
    if x / 2 >= floor && x / 2 < x {
        v.push(x / 2);
    }
    if x > floor + x / 10 && x / 10 > 0 {
        v.push(x - x / 10);
    }
    v
}

/// Smaller versions of "kill instance `instance`, restart it `down_ms` later (`None`:
/// never)": the first instance, then a restart after 30 s, or a shorter downtime.
pub fn smaller_kills(instance: u32, down_ms: Option<u64>) -> Vec<(u32, Option<u64>)> {
    let mut v = Vec::new();
    if instance > 0 {
        v.push((0, down_ms));
    }
    match down_ms {
        None => v.push((instance, Some(30_000))),
        Some(d) => v.extend(shorter(d, 100).into_iter().map(|d| (instance, Some(d)))),
    }
    v
}

/// The result of a shrink: the smallest failing schedule and how many runs it took.
#[derive(Clone, Debug)]
pub struct Shrunk<F> {
    pub schedule: FaultSchedule<F>,
    pub runs: u32,
}

/// Shrinks `schedule` while `fails` keeps returning true, spending at most `budget` runs.
pub fn shrink<F: ShrinkFault>(
    schedule: FaultSchedule<F>,
    budget: u32,
    mut fails: impl FnMut(&FaultSchedule<F>) -> bool,
) -> Shrunk<F> {
    let mut s = Shrinker {
        best: schedule,
        runs: 0,
        budget,
        fails: &mut fails,
    };
    loop {
        let mut progressed = false;
        // 1. Remove faults: halves first (fast on long schedules), then one at a time.
        let n = s.best.faults.len();
        if n > 1 {
            for half in [0..n / 2, n / 2..n] {
                let cand = FaultSchedule {
                    faults: s.best.faults[half].to_vec(),
                };
                if s.attempt(cand) {
                    progressed = true;
                    break;
                }
            }
        }
        let mut i = 0;
        while i < s.best.faults.len() {
            let mut cand = s.best.clone();
            cand.faults.remove(i);
            if s.attempt(cand) {
                progressed = true;
            } else {
                i += 1;
            }
        }
        // 2. Shrink each fault (shorter windows, milder values).
        for i in 0..s.best.faults.len() {
            for smaller in s.best.faults[i].fault.smaller() {
                let mut cand = s.best.clone();
                cand.faults[i] = ScheduledFault {
                    at_ms: cand.faults[i].at_ms,
                    fault: smaller,
                };
                if s.attempt(cand) {
                    progressed = true;
                    break;
                }
            }
        }
        // 3. Move each fault earlier: bisect for the earliest time that still fails.
        for i in 0..s.best.faults.len() {
            let original = s.best.faults[i].at_ms;
            let at = |t: u64, best: &FaultSchedule<F>| {
                let mut cand = best.clone();
                cand.faults[i].at_ms = t;
                cand
            };
            if original == 0 {
                continue;
            }
            if s.attempt(at(0, &s.best)) {
                progressed = true;
                continue;
            }
            let (mut lo, mut hi) = (0u64, original);
            while hi > lo + 1 {
                let mid = lo + (hi - lo) / 2;
                if s.attempt(at(mid, &s.best)) {
                    hi = mid;
                    progressed = true;
                } else {
                    lo = mid;
                }
                if s.exhausted() {
                    break;
                }
            }
        }
        s.best.faults.sort_by_key(|f| f.at_ms);
        if !progressed || s.exhausted() {
            return Shrunk {
                schedule: s.best,
                runs: s.runs,
            };
        }
    }
}

struct Shrinker<'a, F, P> {
    best: FaultSchedule<F>,
    runs: u32,
    budget: u32,
    fails: &'a mut P,
}

impl<F: Clone, P: FnMut(&FaultSchedule<F>) -> bool> Shrinker<'_, F, P> {
    fn exhausted(&self) -> bool {
        self.runs >= self.budget
    }

    /// Runs a candidate; keeps it when it still fails.
    fn attempt(&mut self, cand: FaultSchedule<F>) -> bool {
        if self.exhausted() {
            return false;
        }
        self.runs += 1;
        if (self.fails)(&cand) {
            self.best = cand;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Window(u64);

    impl ShrinkFault for Window {
        fn smaller(&self) -> Vec<Self> {
            if self.0 > 1 {
                vec![Window(self.0 / 2), Window(self.0 - 1)]
            } else {
                vec![]
            }
        }
    }

    #[test]
    fn shrinks_to_the_one_fault_that_matters() {
        let mut s = FaultSchedule::new();
        for i in 0..20u64 {
            s.push(
                sim_runtime::time::Duration::from_millis(i * 1000),
                Window(100 + i),
            );
        }
        // Fails iff some window of at least 10 starts at or after 7 s.
        let out = shrink(s, 10_000, |c| {
            c.faults.iter().any(|f| f.at_ms >= 7000 && f.fault.0 >= 10)
        });
        assert_eq!(out.schedule.faults.len(), 1);
        assert_eq!(out.schedule.faults[0].fault, Window(10));
        assert_eq!(out.schedule.faults[0].at_ms, 7000);
    }
}
