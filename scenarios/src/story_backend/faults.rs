//! The story backend's faults: the document's six failure scenarios (the database down,
//! Redis down, a network latency spike, slow queries, memory pressure, CPU saturation),
//! each a named schedule, plus a swarm over every kind. Window faults carry their own
//! duration, so a shrunk schedule is always well-formed.

use serde::{Deserialize, Serialize};
use sim_runtime::schedule::FaultSchedule;
use sim_runtime::time::Duration;
use sim_runtime::SimRng;

use crate::inject::Windowed;
use crate::scenario::{FaultInfo, SwarmShape};
use crate::shrink::{shorter, ShrinkFault};

/// One fault of the story backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum StoryFault {
    /// PostgreSQL stops for `for_ms` (`docker-compose stop postgres`): open sessions end,
    /// connections are refused; committed data is kept.
    DbDown { for_ms: u64 },
    /// Redis stops for `for_ms`, losing what it held (a cache runs without persistence).
    RedisDown { for_ms: u64 },
    /// Every message between the API instances and their dependencies (PostgreSQL,
    /// Redis) takes `extra_ms` longer each way for `for_ms` (`tc qdisc ... netem delay`).
    LatencySpike { extra_ms: u64, for_ms: u64 },
    /// Every statement the database starts within `for_ms` takes `extra_ms` longer,
    /// holding its connection (an expensive query saturating the database).
    SlowQueries { extra_ms: u64, for_ms: u64 },
    /// Another process on API instance `instance`'s host takes `percent` of the memory
    /// the API process left free, for `for_ms` (`stress-ng --vm-bytes`).
    MemoryPressure {
        instance: u32,
        percent: u32,
        for_ms: u64,
    },
    /// A competing process keeps `cores_taken` cores of every API instance busy for
    /// `for_ms` (`stress-ng --cpu`).
    CpuSaturation { cores_taken: u32, for_ms: u64 },
}

impl Windowed for StoryFault {
    /// How long the fault lasts after it starts.
    fn duration(&self) -> Option<Duration> {
        let ms = match self {
            StoryFault::DbDown { for_ms }
            | StoryFault::RedisDown { for_ms }
            | StoryFault::LatencySpike { for_ms, .. }
            | StoryFault::SlowQueries { for_ms, .. }
            | StoryFault::MemoryPressure { for_ms, .. }
            | StoryFault::CpuSaturation { for_ms, .. } => *for_ms,
        };
        Some(Duration::from_millis(ms))
    }
}

impl StoryFault {
    /// The fault's kind, as the matrix and the swarm name it.
    pub fn kind(&self) -> &'static str {
        match self {
            StoryFault::DbDown { .. } => "db_down",
            StoryFault::RedisDown { .. } => "redis_down",
            StoryFault::LatencySpike { .. } => "latency_spike",
            StoryFault::SlowQueries { .. } => "slow_queries",
            StoryFault::MemoryPressure { .. } => "memory_pressure",
            StoryFault::CpuSaturation { .. } => "cpu_saturation",
        }
    }

    /// Whether the fault makes the database unreachable or slow for the API, so that
    /// database calls may fail or wait.
    pub fn troubles_db(&self) -> bool {
        matches!(
            self,
            StoryFault::DbDown { .. }
                | StoryFault::LatencySpike { .. }
                | StoryFault::SlowQueries { .. }
        )
    }
}

/// Smaller values of a fault's intensity `x` (never below `floor`).
fn milder(x: u64, floor: u64) -> Vec<u64> {
    shorter(x, floor)
}

impl ShrinkFault for StoryFault {
    fn smaller(&self) -> Vec<Self> {
        let windows = |for_ms: u64, make: &dyn Fn(u64) -> StoryFault| {
            shorter(for_ms, 100)
                .into_iter()
                .map(make)
                .collect::<Vec<_>>()
        };
        match *self {
            StoryFault::DbDown { for_ms } => windows(for_ms, &|f| StoryFault::DbDown { for_ms: f }),
            StoryFault::RedisDown { for_ms } => {
                windows(for_ms, &|f| StoryFault::RedisDown { for_ms: f })
            }
            StoryFault::LatencySpike { extra_ms, for_ms } => {
                let mut v: Vec<Self> = milder(extra_ms, 1)
                    .into_iter()
                    .map(|e| StoryFault::LatencySpike {
                        extra_ms: e,
                        for_ms,
                    })
                    .collect();
                v.extend(windows(for_ms, &|f| StoryFault::LatencySpike {
                    extra_ms,
                    for_ms: f,
                }));
                v
            }
            StoryFault::SlowQueries { extra_ms, for_ms } => {
                let mut v: Vec<Self> = milder(extra_ms, 1)
                    .into_iter()
                    .map(|e| StoryFault::SlowQueries {
                        extra_ms: e,
                        for_ms,
                    })
                    .collect();
                v.extend(windows(for_ms, &|f| StoryFault::SlowQueries {
                    extra_ms,
                    for_ms: f,
                }));
                v
            }
            StoryFault::MemoryPressure {
                instance,
                percent,
                for_ms,
            } => {
                let mut v = Vec::new();
                if instance > 0 {
                    v.push(StoryFault::MemoryPressure {
                        instance: 0,
                        percent,
                        for_ms,
                    });
                }
                v.extend(milder(u64::from(percent), 1).into_iter().map(|p| {
                    StoryFault::MemoryPressure {
                        instance,
                        percent: p as u32,
                        for_ms,
                    }
                }));
                v.extend(windows(for_ms, &|f| StoryFault::MemoryPressure {
                    instance,
                    percent,
                    for_ms: f,
                }));
                v
            }
            StoryFault::CpuSaturation {
                cores_taken,
                for_ms,
            } => {
                let mut v: Vec<Self> = milder(u64::from(cores_taken), 1)
                    .into_iter()
                    .map(|c| StoryFault::CpuSaturation {
                        cores_taken: c as u32,
                        for_ms,
                    })
                    .collect();
                v.extend(windows(for_ms, &|f| StoryFault::CpuSaturation {
                    cores_taken,
                    for_ms: f,
                }));
                v
            }
        }
    }
}

/// When the matrix's faults strike: while users are still arriving.
pub const FAULT_AT: Duration = Duration::from_secs(1);

/// The fault matrix: one entry per failure scenario of the document, at the default size
/// (the report runs the document's own durations).
pub fn matrix() -> Vec<(FaultInfo, FaultSchedule<StoryFault>)> {
    let one = |f: StoryFault| FaultSchedule::new().at(FAULT_AT, f);
    vec![
        (FaultInfo { name: "none", description: "no faults: the baseline" }, FaultSchedule::new()),
        (
            FaultInfo { name: "db_down", description: "1: PostgreSQL stops at T+1s for 3 s; health answers 503, the breaker opens, requests get a quick 503" },
            one(StoryFault::DbDown { for_ms: 3_000 }),
        ),
        (
            FaultInfo { name: "redis_down", description: "2: Redis stops at T+1s for 3 s; the cache and the rate limiter fail open, reads go to the database" },
            one(StoryFault::RedisDown { for_ms: 3_000 }),
        ),
        (
            FaultInfo { name: "latency_spike", description: "3: +500 ms each way between the API and its dependencies from T+1s for 3 s" },
            one(StoryFault::LatencySpike { extra_ms: 500, for_ms: 3_000 }),
        ),
        (
            FaultInfo { name: "slow_queries", description: "4: statements take 10 s more from T+1s for 40 s; the pool is exhausted, waits for it are bounded" },
            one(StoryFault::SlowQueries { extra_ms: 10_000, for_ms: 40_000 }),
        ),
        (
            FaultInfo { name: "memory_pressure", description: "5: another process takes 80 % of API instance 0's free memory from T+1s for 3 s; the instance is OOM-killed and restarted" },
            one(StoryFault::MemoryPressure { instance: 0, percent: 80, for_ms: 3_000 }),
        ),
        (
            FaultInfo { name: "cpu_saturation", description: "6: a competing load takes 1 of each API instance's 2 cores from T+1s for 3 s" },
            one(StoryFault::CpuSaturation { cores_taken: 1, for_ms: 3_000 }),
        ),
    ]
}

/// Swarm faults start within the first `SWARM_HORIZON` of the run, while users send.
pub const SWARM_HORIZON: Duration = Duration::from_secs(4);

/// Every fault kind, for swarm testing.
pub const KINDS: [&str; 6] = [
    "db_down",
    "redis_down",
    "latency_spike",
    "slow_queries",
    "memory_pressure",
    "cpu_saturation",
];

/// Swarm faults: every kind, within [`SWARM_HORIZON`], 2 s apart on average at full rate.
pub const SWARM: SwarmShape = SwarmShape {
    kinds: &KINDS,
    horizon: SWARM_HORIZON,
    mean_gap: Duration::from_secs(2),
};

/// One fault of `kind` for a swarm schedule, drawn from `rng`.
pub fn draw(kind: &str, rng: &mut SimRng, api_instances: u32, api_cores: u32) -> StoryFault {
    match kind {
        "db_down" => StoryFault::DbDown {
            for_ms: rng.range_inclusive(200, 4_000),
        },
        "redis_down" => StoryFault::RedisDown {
            for_ms: rng.range_inclusive(200, 4_000),
        },
        "latency_spike" => StoryFault::LatencySpike {
            extra_ms: *rng.pick(&[100u64, 250, 500, 1_000]).expect("non-empty"),
            for_ms: rng.range_inclusive(500, 4_000),
        },
        "slow_queries" => StoryFault::SlowQueries {
            extra_ms: rng.range_inclusive(1_000, 10_000),
            for_ms: rng.range_inclusive(1_000, 40_000),
        },
        "memory_pressure" => StoryFault::MemoryPressure {
            instance: rng.below(u64::from(api_instances.max(1))) as u32,
            percent: rng.range_inclusive(50, 95) as u32,
            for_ms: rng.range_inclusive(500, 4_000),
        },
        _ => StoryFault::CpuSaturation {
            cores_taken: rng.range_inclusive(1, u64::from(api_cores.max(1))) as u32,
            for_ms: rng.range_inclusive(500, 4_000),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_names_each_kind_once_beside_the_baseline() {
        let names: Vec<&str> = matrix().iter().map(|(i, _)| i.name).collect();
        let mut expected = vec!["none"];
        expected.extend(KINDS);
        assert_eq!(names, expected);
        for (info, schedule) in matrix().iter().skip(1) {
            assert_eq!(schedule.faults.len(), 1);
            assert_eq!(schedule.faults[0].fault.kind(), info.name);
        }
    }

    #[test]
    fn swarm_draws_stay_within_the_topology() {
        let mut rng = SimRng::new(3);
        for _ in 0..200 {
            for kind in KINDS {
                let f = draw(kind, &mut rng, 2, 2);
                assert_eq!(f.kind(), kind);
                match f {
                    StoryFault::MemoryPressure {
                        instance, percent, ..
                    } => assert!(instance < 2 && (50..=95).contains(&percent)),
                    StoryFault::CpuSaturation { cores_taken, .. } => {
                        assert!((1..=2).contains(&cores_taken))
                    }
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn every_fault_shrinks_to_something_smaller_of_the_same_kind() {
        for (_, schedule) in matrix().iter().skip(1) {
            let f = &schedule.faults[0].fault;
            let smaller = f.smaller();
            assert!(!smaller.is_empty(), "{f:?}");
            assert!(smaller.iter().all(|g| g != f && g.kind() == f.kind()));
        }
    }
}
