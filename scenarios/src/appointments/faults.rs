//! The appointments backend's faults: the document's chaos tests (database failure, Redis
//! failure, high latency, the breaker's transitions under a database outage, concurrent
//! bookings under a partition and an instance kill), each a named schedule, plus a swarm
//! over every kind. Window faults carry their own duration, so a shrunk schedule is always
//! well-formed.

use serde::{Deserialize, Serialize};
use sim_runtime::schedule::FaultSchedule;
use sim_runtime::time::Duration;
use sim_runtime::SimRng;

use crate::inject::Windowed;
use crate::scenario::{FaultInfo, SwarmShape};
use crate::shrink::{shorter, smaller_kills, ShrinkFault};

/// One fault of the appointments system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum ApptFault {
    /// The database refuses connections (and drops open ones) for `for_ms`.
    DbDown { for_ms: u64 },
    /// Redis dies, losing its cache, and restarts `for_ms` later.
    RedisDown { for_ms: u64 },
    /// Every message between the API instances and the database takes `extra_ms` longer,
    /// each way, for `for_ms`.
    DbLatency { extra_ms: u64, for_ms: u64 },
    /// The API instances and the database cannot reach each other for `for_ms`.
    PartitionApiDb { for_ms: u64 },
    /// API instance `instance` is killed, and restarted `down_ms` later (`None`: never).
    ApiKill { instance: u32, down_ms: Option<u64> },
}

impl Windowed for ApptFault {
    /// How long the fault lasts after it starts (`None`: to the end of the run).
    fn duration(&self) -> Option<Duration> {
        let ms = match self {
            ApptFault::DbDown { for_ms }
            | ApptFault::RedisDown { for_ms }
            | ApptFault::DbLatency { for_ms, .. }
            | ApptFault::PartitionApiDb { for_ms } => Some(*for_ms),
            ApptFault::ApiKill { down_ms, .. } => *down_ms,
        };
        ms.map(Duration::from_millis)
    }
}

impl ShrinkFault for ApptFault {
    fn smaller(&self) -> Vec<Self> {
        match self {
            ApptFault::DbDown { for_ms } => shorter(*for_ms, 100)
                .into_iter()
                .map(|f| ApptFault::DbDown { for_ms: f })
                .collect(),
            ApptFault::RedisDown { for_ms } => shorter(*for_ms, 100)
                .into_iter()
                .map(|f| ApptFault::RedisDown { for_ms: f })
                .collect(),
            ApptFault::PartitionApiDb { for_ms } => shorter(*for_ms, 100)
                .into_iter()
                .map(|f| ApptFault::PartitionApiDb { for_ms: f })
                .collect(),
            ApptFault::DbLatency { extra_ms, for_ms } => {
                let mut v: Vec<Self> = shorter(*extra_ms, 1)
                    .into_iter()
                    .map(|e| ApptFault::DbLatency {
                        extra_ms: e,
                        for_ms: *for_ms,
                    })
                    .collect();
                v.extend(
                    shorter(*for_ms, 100)
                        .into_iter()
                        .map(|f| ApptFault::DbLatency {
                            extra_ms: *extra_ms,
                            for_ms: f,
                        }),
                );
                v
            }
            ApptFault::ApiKill { instance, down_ms } => smaller_kills(*instance, *down_ms)
                .into_iter()
                .map(|(instance, down_ms)| ApptFault::ApiKill { instance, down_ms })
                .collect(),
        }
    }
}

/// The fault matrix: one entry per chaos test of the document.
pub fn matrix() -> Vec<(FaultInfo, FaultSchedule<ApptFault>)> {
    let at = Duration::from_secs(5);
    let one = |f: ApptFault| FaultSchedule::new().at(at, f);
    vec![
        (FaultInfo { name: "none", description: "no faults: the normal-load baseline" }, FaultSchedule::new()),
        (
            FaultInfo { name: "db_down", description: "1 and 4: the database fails at T+5s for 10 s; the breaker opens, answers 503, probes and closes" },
            one(ApptFault::DbDown { for_ms: 10_000 }),
        ),
        (
            FaultInfo { name: "redis_down", description: "2: Redis dies at T+5s (its cache lost) and restarts 10 s later; reads fall back to the database" },
            one(ApptFault::RedisDown { for_ms: 10_000 }),
        ),
        (
            FaultInfo { name: "db_latency", description: "3: +800 ms each way on the API-database link from T+5s for 10 s; database waits are bounded" },
            one(ApptFault::DbLatency { extra_ms: 800, for_ms: 10_000 }),
        ),
        (
            FaultInfo { name: "partition_api_db", description: "the API instances are cut off from the database from T+5s for 10 s" },
            one(ApptFault::PartitionApiDb { for_ms: 10_000 }),
        ),
        (
            FaultInfo { name: "api_kill", description: "API instance 0 killed at T+5s, restarted 10 s later; the load balancer skips it" },
            one(ApptFault::ApiKill { instance: 0, down_ms: Some(10_000) }),
        ),
    ]
}

/// Swarm faults start within the first `SWARM_HORIZON` of the run, while users arrive.
pub const SWARM_HORIZON: Duration = Duration::from_secs(20);

/// Every fault kind, for swarm testing.
pub const KINDS: [&str; 5] = [
    "db_down",
    "redis_down",
    "db_latency",
    "partition_api_db",
    "api_kill",
];

/// Swarm faults: every kind, within [`SWARM_HORIZON`], 6 s apart on average at full rate.
pub const SWARM: SwarmShape = SwarmShape {
    kinds: &KINDS,
    horizon: SWARM_HORIZON,
    mean_gap: Duration::from_secs(6),
};

/// One fault of `kind` for a swarm schedule, drawn from `rng`.
pub fn draw(kind: &str, rng: &mut SimRng, api_instances: u32) -> ApptFault {
    match kind {
        "db_down" => ApptFault::DbDown {
            for_ms: rng.range_inclusive(500, 12_000),
        },
        "redis_down" => ApptFault::RedisDown {
            for_ms: rng.range_inclusive(500, 12_000),
        },
        "db_latency" => ApptFault::DbLatency {
            extra_ms: *rng.pick(&[50u64, 200, 500, 800, 1500]).expect("non-empty"),
            for_ms: rng.range_inclusive(500, 10_000),
        },
        "partition_api_db" => ApptFault::PartitionApiDb {
            for_ms: rng.range_inclusive(500, 10_000),
        },
        _ => ApptFault::ApiKill {
            instance: rng.below(u64::from(api_instances.max(1))) as u32,
            down_ms: Some(rng.range_inclusive(500, 10_000)),
        },
    }
}
