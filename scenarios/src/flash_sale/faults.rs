//! The flash sale's faults: one entry per row of the chaos document, each a
//! `FaultSchedule`, plus a swarm-generated fault space for exploration.
//!
//! Window faults carry their own duration (`down_ms`, `for_ms`) rather than being an
//! on/off pair, so that a shrunk schedule is always well-formed and "shorter windows" is
//! one field getting smaller.

use serde::{Deserialize, Serialize};
use sim_runtime::schedule::FaultSchedule;
use sim_runtime::time::Duration;
use sim_runtime::SimRng;

use crate::inject::Windowed;
use crate::scenario::{FaultInfo, SwarmShape};
use crate::shrink::{shorter, smaller_kills, ShrinkFault};

/// One fault of the flash-sale system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum FlashFault {
    /// The inventory worker is killed, and restarted `down_ms` later.
    WorkerCrash { down_ms: u64 },
    /// Redis answers `extra_ms` later (toxiproxy's latency toxic on the downstream) for
    /// `for_ms` (`None`: until the end of the run).
    RedisLatency { extra_ms: u64, for_ms: Option<u64> },
    /// Every Kafka broker is down for `for_ms`.
    KafkaDown { for_ms: u64 },
    /// The database refuses connections for `for_ms` (the node stays up).
    DbDown { for_ms: u64 },
    /// API instance `instance` is killed, and restarted `down_ms` later (`None`: never).
    ApiKill { instance: u32, down_ms: Option<u64> },
    /// The API instances and Redis cannot reach each other for `for_ms`.
    PartitionApiRedis { for_ms: u64 },
}

impl Windowed for FlashFault {
    fn duration(&self) -> Option<Duration> {
        self.duration()
    }
}

impl FlashFault {
    /// How long the fault lasts after it starts (`None`: to the end of the run).
    pub fn duration(&self) -> Option<Duration> {
        let ms = match self {
            FlashFault::WorkerCrash { down_ms } => Some(*down_ms),
            FlashFault::RedisLatency { for_ms, .. } => *for_ms,
            FlashFault::KafkaDown { for_ms } | FlashFault::DbDown { for_ms } => Some(*for_ms),
            FlashFault::ApiKill { down_ms, .. } => *down_ms,
            FlashFault::PartitionApiRedis { for_ms } => Some(*for_ms),
        };
        ms.map(Duration::from_millis)
    }

    pub fn kind(&self) -> &'static str {
        match self {
            FlashFault::WorkerCrash { .. } => "worker_crash",
            FlashFault::RedisLatency { .. } => "redis_latency",
            FlashFault::KafkaDown { .. } => "kafka_down",
            FlashFault::DbDown { .. } => "db_down",
            FlashFault::ApiKill { .. } => "api_kill",
            FlashFault::PartitionApiRedis { .. } => "partition_api_redis",
        }
    }
}

impl ShrinkFault for FlashFault {
    fn smaller(&self) -> Vec<Self> {
        match self {
            FlashFault::WorkerCrash { down_ms } => shorter(*down_ms, 100)
                .into_iter()
                .map(|d| FlashFault::WorkerCrash { down_ms: d })
                .collect(),
            FlashFault::RedisLatency { extra_ms, for_ms } => {
                let mut v: Vec<Self> = shorter(*extra_ms, 1)
                    .into_iter()
                    .map(|e| FlashFault::RedisLatency {
                        extra_ms: e,
                        for_ms: *for_ms,
                    })
                    .collect();
                match for_ms {
                    None => v.push(FlashFault::RedisLatency {
                        extra_ms: *extra_ms,
                        for_ms: Some(30_000),
                    }),
                    Some(f) => {
                        v.extend(
                            shorter(*f, 100)
                                .into_iter()
                                .map(|f| FlashFault::RedisLatency {
                                    extra_ms: *extra_ms,
                                    for_ms: Some(f),
                                }),
                        )
                    }
                }
                v
            }
            FlashFault::KafkaDown { for_ms } => shorter(*for_ms, 100)
                .into_iter()
                .map(|f| FlashFault::KafkaDown { for_ms: f })
                .collect(),
            FlashFault::DbDown { for_ms } => shorter(*for_ms, 100)
                .into_iter()
                .map(|f| FlashFault::DbDown { for_ms: f })
                .collect(),
            FlashFault::ApiKill { instance, down_ms } => smaller_kills(*instance, *down_ms)
                .into_iter()
                .map(|(instance, down_ms)| FlashFault::ApiKill { instance, down_ms })
                .collect(),
            FlashFault::PartitionApiRedis { for_ms } => shorter(*for_ms, 100)
                .into_iter()
                .map(|f| FlashFault::PartitionApiRedis { for_ms: f })
                .collect(),
        }
    }
}

/// The fault matrix: name, description, schedule. One entry per row of the document.
pub fn matrix() -> Vec<(FaultInfo, FaultSchedule<FlashFault>)> {
    let s = |ms: u64| Duration::from_millis(ms);
    let latency = |extra: u64| {
        FaultSchedule::new().at(
            s(0),
            FlashFault::RedisLatency {
                extra_ms: extra,
                for_ms: None,
            },
        )
    };
    vec![
        (FaultInfo { name: "none", description: "no faults: the baseline" }, FaultSchedule::new()),
        (
            FaultInfo { name: "worker_crash", description: "Test 1: inventory worker killed at T+5s, restarted at T+30s" },
            FaultSchedule::new().at(s(5_000), FlashFault::WorkerCrash { down_ms: 25_000 }),
        ),
        (FaultInfo { name: "redis_latency_0", description: "Test 2: Redis latency +0 ms (toxiproxy baseline)" }, latency(0)),
        (FaultInfo { name: "redis_latency_50", description: "Test 2: Redis latency +50 ms" }, latency(50)),
        (FaultInfo { name: "redis_latency_100", description: "Test 2: Redis latency +100 ms" }, latency(100)),
        (FaultInfo { name: "redis_latency_500", description: "Test 2: Redis latency +500 ms" }, latency(500)),
        (
            FaultInfo { name: "kafka_down", description: "Test 3: Kafka unavailable from T+2s for 20 s" },
            FaultSchedule::new().at(s(2_000), FlashFault::KafkaDown { for_ms: 20_000 }),
        ),
        (
            FaultInfo { name: "db_down", description: "database unavailable from T+3s for 20 s; the worker retries and the backlog drains" },
            FaultSchedule::new().at(s(3_000), FlashFault::DbDown { for_ms: 20_000 }),
        ),
        (
            FaultInfo { name: "api_kill", description: "API instance 0 killed at T+3s (not restarted); the load balancer skips it" },
            FaultSchedule::new().at(s(3_000), FlashFault::ApiKill { instance: 0, down_ms: None }),
        ),
        (
            FaultInfo { name: "partition_api_redis", description: "network partition between the API instances and Redis from T+3s for 10 s" },
            FaultSchedule::new().at(s(3_000), FlashFault::PartitionApiRedis { for_ms: 10_000 }),
        ),
    ]
}

/// Swarm faults start within the sale's busy first seconds (the document kills the worker
/// at T+5s); later faults only delay the drain.
pub const SWARM_HORIZON: Duration = Duration::from_secs(10);

/// Every fault kind, for swarm testing.
pub const KINDS: [&str; 6] = [
    "worker_crash",
    "redis_latency",
    "kafka_down",
    "db_down",
    "api_kill",
    "partition_api_redis",
];

/// Swarm faults: every kind, within [`SWARM_HORIZON`], 8 s apart on average at full rate.
pub const SWARM: SwarmShape = SwarmShape {
    kinds: &KINDS,
    horizon: SWARM_HORIZON,
    mean_gap: Duration::from_secs(8),
};

/// One fault of `kind` for a swarm schedule, drawn from `rng`.
pub fn draw(kind: &str, rng: &mut SimRng, api_instances: u32) -> FlashFault {
    match kind {
        "worker_crash" => FlashFault::WorkerCrash {
            down_ms: rng.range_inclusive(500, 20_000),
        },
        "redis_latency" => {
            let extra = *rng.pick(&[10u64, 50, 100, 250, 500]).expect("non-empty");
            FlashFault::RedisLatency {
                extra_ms: extra,
                for_ms: Some(rng.range_inclusive(500, 10_000)),
            }
        }
        "kafka_down" => FlashFault::KafkaDown {
            for_ms: rng.range_inclusive(500, 15_000),
        },
        "db_down" => FlashFault::DbDown {
            for_ms: rng.range_inclusive(500, 15_000),
        },
        "api_kill" => FlashFault::ApiKill {
            instance: rng.below(api_instances.max(1) as u64) as u32,
            down_ms: Some(rng.range_inclusive(500, 10_000)),
        },
        _ => FlashFault::PartitionApiRedis {
            for_ms: rng.range_inclusive(500, 8_000),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_smaller_worker_crash_is_shorter() {
        let f = FlashFault::WorkerCrash { down_ms: 25_000 };
        assert!(f.smaller().iter().all(|g| g.duration() < f.duration()));
    }
}
