//! Faults as data: a `FaultSchedule<F>` is a list of (virtual time, fault) that the
//! runtime fires through the user's handler. `F` is the scenario's own serde enum, so a
//! schedule round-trips through JSON, can be edited by hand, and, with the `proptest`
//! feature (on by default), shrinks under proptest (fewer faults, earlier, shorter
//! windows).

use std::collections::BTreeMap;
use std::fmt;

#[cfg(feature = "proptest")]
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use crate::rng::{Probability, SimRng};
use crate::task;
use crate::time::{self, Duration, Instant};

/// One fault at one moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledFault<F> {
    /// Milliseconds of virtual time since the start of the run.
    pub at_ms: u64,
    pub fault: F,
}

impl<F> ScheduledFault<F> {
    pub fn at(&self) -> Instant {
        Instant::START + Duration::from_millis(self.at_ms)
    }
}

/// A list of faults and their times, kept sorted by time (stable for equal times).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "F: Deserialize<'de>", serialize = "F: Serialize"))]
pub struct FaultSchedule<F> {
    pub faults: Vec<ScheduledFault<F>>,
}

impl<F> Default for FaultSchedule<F> {
    fn default() -> Self {
        FaultSchedule { faults: Vec::new() }
    }
}

/// A schedule file that is not valid JSON for the scenario's fault type.
#[derive(Debug, thiserror::Error)]
#[error("malformed fault schedule: {0}")]
pub struct ScheduleError(#[from] serde_json::Error);

impl<F> FaultSchedule<F> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `fault` at `at` (from the start of the run).
    pub fn at(mut self, at: Duration, fault: F) -> Self {
        self.push(at, fault);
        self
    }

    pub fn push(&mut self, at: Duration, fault: F) {
        let at_ms = u64::try_from(at.as_millis()).unwrap_or(u64::MAX);
        let pos = self.faults.partition_point(|f| f.at_ms <= at_ms);
        self.faults.insert(pos, ScheduledFault { at_ms, fault });
    }

    pub fn len(&self) -> usize {
        self.faults.len()
    }

    pub fn is_empty(&self) -> bool {
        self.faults.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &ScheduledFault<F>> {
        self.faults.iter()
    }

    fn normalise(&mut self) {
        self.faults.sort_by_key(|f| f.at_ms);
    }
}

impl<F: Serialize> FaultSchedule<F> {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a fault schedule always serialises")
    }
}

impl<F: for<'de> Deserialize<'de>> FaultSchedule<F> {
    pub fn from_json(text: &str) -> Result<Self, ScheduleError> {
        let mut s: FaultSchedule<F> = serde_json::from_str(text)?;
        s.normalise();
        Ok(s)
    }
}

impl<F: fmt::Debug> fmt::Display for FaultSchedule<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.faults.is_empty() {
            return write!(f, "(no faults)");
        }
        for (i, sf) in self.faults.iter().enumerate() {
            if i > 0 {
                write!(f, "; ")?;
            }
            write!(f, "T+{}ms {:?}", sf.at_ms, sf.fault)?;
        }
        Ok(())
    }
}

impl<F: Clone + fmt::Debug + Serialize + 'static> FaultSchedule<F> {
    /// Spawns a task on the current node that fires each fault at its time through
    /// `handler`. Each firing is a `fault.inject` trace event. The handler may be async
    /// (a pause window that sleeps before resuming): each handler future runs as a task
    /// of its own, so a long one never delays the faults after it. The returned handle
    /// completes once every fault has been fired.
    pub fn install<H, Fut>(&self, mut handler: H) -> task::JoinHandle<()>
    where
        H: FnMut(F) -> Fut + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        let faults = self.faults.clone();
        task::spawn_named("fault-schedule", async move {
            for sf in faults {
                time::sleep_until_global(sf.at()).await;
                crate::trace::emit(&sf);
                task::spawn_named("fault", handler(sf.fault)).detach();
            }
        })
    }
}

/// A fault firing is the `fault.inject` event; a checker that needs the fault windows
/// captures `ScheduledFault<F>`.
impl<F: Clone + fmt::Debug + Serialize + 'static> crate::trace::TraceEvent for ScheduledFault<F> {
    const NAME: &'static str = "fault.inject";
    type Owned = ScheduledFault<F>;
    fn to_owned_event(&self) -> Self::Owned {
        self.clone()
    }
}

/// A proptest strategy for schedules of up to `max_faults` faults drawn from `fault`,
/// at times within `horizon`. Shrinking removes faults, moves them earlier, and shrinks
/// each fault as `fault`'s own strategy does (shorter windows, fewer targets).
#[cfg(feature = "proptest")]
pub fn schedule_strategy<F, S>(
    fault: S,
    horizon: Duration,
    max_faults: usize,
) -> impl Strategy<Value = FaultSchedule<F>>
where
    F: Clone + fmt::Debug + 'static,
    S: Strategy<Value = F> + 'static,
{
    let horizon_ms = u64::try_from(horizon.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    proptest::collection::vec((0..horizon_ms, fault), 0..=max_faults).prop_map(|items| {
        let mut faults: Vec<ScheduledFault<F>> = items
            .into_iter()
            .map(|(at_ms, fault)| ScheduledFault { at_ms, fault })
            .collect();
        faults.sort_by_key(|f| f.at_ms);
        FaultSchedule { faults }
    })
}

/// Swarm testing: per seed, whole fault kinds are switched off and the others get their
/// own rate, so that runs explore very different fault mixes (Groce et al., 2012).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Swarm {
    /// For each fault kind: `None` when off, or its rate.
    pub kinds: BTreeMap<String, Option<Probability>>,
}

impl Swarm {
    /// Draws a swarm over `kinds` from the seed's "swarm" stream. At least one kind is on.
    pub fn from_seed(seed: u64, kinds: &[&str]) -> Swarm {
        let mut rng = SimRng::new(seed).fork("sim-runtime.swarm");
        let mut map = BTreeMap::new();
        for k in kinds {
            let on = rng.chance(Probability::of(0.5));
            let rate = Probability::of(0.05 + 0.9 * rng.unit_f64());
            map.insert(k.to_string(), on.then_some(rate));
        }
        if !kinds.is_empty() && map.values().all(|v| v.is_none()) {
            let k = kinds[rng.index(kinds.len())];
            map.insert(k.to_string(), Some(Probability::of(0.5)));
        }
        Swarm { kinds: map }
    }

    /// The rate of `kind`, or `None` when switched off (or unknown).
    pub fn rate(&self, kind: &str) -> Option<Probability> {
        self.kinds.get(kind).copied().flatten()
    }

    pub fn is_on(&self, kind: &str) -> bool {
        self.rate(kind).is_some()
    }

    /// Generates a schedule: for each enabled kind, faults at exponential gaps whose mean
    /// shrinks as the rate grows, within `horizon`. `make` builds a fault of a kind.
    pub fn generate<F>(
        &self,
        seed: u64,
        horizon: Duration,
        mean_gap: Duration,
        mut make: impl FnMut(&str, &mut SimRng) -> F,
    ) -> FaultSchedule<F> {
        let mut schedule = FaultSchedule::new();
        for (kind, rate) in &self.kinds {
            let Some(rate) = rate else { continue };
            let mut rng = SimRng::new(seed).fork(&format!("sim-runtime.swarm.{kind}"));
            let mean = mean_gap.as_secs_f64() / rate.get().max(0.01);
            let mut t = rng.exponential(mean);
            while t < horizon.as_secs_f64() {
                let f = make(kind, &mut rng);
                schedule.push(Duration::from_secs_f64(t), f);
                t += rng.exponential(mean);
            }
        }
        schedule
    }
}

impl fmt::Display for Swarm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .kinds
            .iter()
            .map(|(k, r)| match r {
                Some(p) => format!("{k}={:.2}", p.get()),
                None => format!("{k}=off"),
            })
            .collect();
        write!(f, "swarm[{}]", parts.join(" "))
    }
}
