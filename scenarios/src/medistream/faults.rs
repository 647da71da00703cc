//! Medistream's faults: the document's failure scenarios (CPU saturation, a signup flood,
//! malformed tokens, Redis or PostgreSQL unavailable) and its planned chaos experiment
//! (killing worker processes under load), each a named schedule, plus a swarm over every
//! kind. Window faults carry their own duration, so a shrunk schedule is always
//! well-formed.

use serde::{Deserialize, Serialize};
use sim_runtime::schedule::FaultSchedule;
use sim_runtime::time::Duration;
use sim_runtime::SimRng;

use crate::inject::Windowed;
use crate::scenario::{FaultInfo, SwarmShape};
use crate::shrink::{shorter, smaller_kills, ShrinkFault};

/// One fault of Medistream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum MediFault {
    /// Worker `worker` is killed (mid-job, as likely as not) and restarted `down_ms` later
    /// (`None`: never).
    WorkerCrash { worker: u32, down_ms: Option<u64> },
    /// Redis dies and restarts `for_ms` later (with its AOF: nothing acknowledged is lost).
    RedisDown { for_ms: u64 },
    /// PostgreSQL refuses connections (and drops open ones) for `for_ms`.
    DbDown { for_ms: u64 },
    /// A competing process keeps `cores_taken` cores of every API instance busy for
    /// `for_ms`.
    CpuSaturation { cores_taken: u32, for_ms: u64 },
    /// `clients` extra clients sign up as fast as they are answered, for `for_ms`.
    SignupFlood { clients: u32, for_ms: u64 },
    /// One client sends `per_s` requests a second with malformed, tampered or expired
    /// tokens, for `for_ms`.
    MalformedTokenFlood { per_s: u32, for_ms: u64 },
}

impl Windowed for MediFault {
    /// How long the fault lasts after it starts (`None`: to the end of the run).
    fn duration(&self) -> Option<Duration> {
        let ms = match self {
            MediFault::WorkerCrash { down_ms, .. } => *down_ms,
            MediFault::RedisDown { for_ms }
            | MediFault::DbDown { for_ms }
            | MediFault::CpuSaturation { for_ms, .. }
            | MediFault::SignupFlood { for_ms, .. }
            | MediFault::MalformedTokenFlood { for_ms, .. } => Some(*for_ms),
        };
        ms.map(Duration::from_millis)
    }
}

/// Smaller values of a fault's intensity (`x`), keeping its window.
fn milder(x: u32, floor: u32) -> Vec<u32> {
    shorter(u64::from(x), u64::from(floor))
        .into_iter()
        .map(|v| v as u32)
        .collect()
}

impl ShrinkFault for MediFault {
    fn smaller(&self) -> Vec<Self> {
        let windows = |for_ms: u64, make: &dyn Fn(u64) -> MediFault| {
            shorter(for_ms, 100)
                .into_iter()
                .map(make)
                .collect::<Vec<_>>()
        };
        match *self {
            MediFault::WorkerCrash { worker, down_ms } => smaller_kills(worker, down_ms)
                .into_iter()
                .map(|(worker, down_ms)| MediFault::WorkerCrash { worker, down_ms })
                .collect(),
            MediFault::RedisDown { for_ms } => {
                windows(for_ms, &|f| MediFault::RedisDown { for_ms: f })
            }
            MediFault::DbDown { for_ms } => windows(for_ms, &|f| MediFault::DbDown { for_ms: f }),
            MediFault::CpuSaturation {
                cores_taken,
                for_ms,
            } => {
                let mut v: Vec<Self> = milder(cores_taken, 1)
                    .into_iter()
                    .map(|c| MediFault::CpuSaturation {
                        cores_taken: c,
                        for_ms,
                    })
                    .collect();
                v.extend(windows(for_ms, &|f| MediFault::CpuSaturation {
                    cores_taken,
                    for_ms: f,
                }));
                v
            }
            MediFault::SignupFlood { clients, for_ms } => {
                let mut v: Vec<Self> = milder(clients, 1)
                    .into_iter()
                    .map(|c| MediFault::SignupFlood { clients: c, for_ms })
                    .collect();
                v.extend(windows(for_ms, &|f| MediFault::SignupFlood {
                    clients,
                    for_ms: f,
                }));
                v
            }
            MediFault::MalformedTokenFlood { per_s, for_ms } => {
                let mut v: Vec<Self> = milder(per_s, 1)
                    .into_iter()
                    .map(|p| MediFault::MalformedTokenFlood { per_s: p, for_ms })
                    .collect();
                v.extend(windows(for_ms, &|f| MediFault::MalformedTokenFlood {
                    per_s,
                    for_ms: f,
                }));
                v
            }
        }
    }
}

/// When the matrix's faults strike: while patients are still arriving.
pub const FAULT_AT: Duration = Duration::from_secs(1);

/// The fault matrix: one entry per failure scenario of the document.
pub fn matrix() -> Vec<(FaultInfo, FaultSchedule<MediFault>)> {
    let one = |f: MediFault| FaultSchedule::new().at(FAULT_AT, f);
    vec![
        (FaultInfo { name: "none", description: "no faults: the baseline" }, FaultSchedule::new()),
        (
            FaultInfo { name: "worker_crash", description: "future experiments: worker 0 killed at T+1s under load, restarted 3 s later; its leased jobs go back to the queue" },
            one(MediFault::WorkerCrash { worker: 0, down_ms: Some(3_000) }),
        ),
        (
            FaultInfo { name: "redis_down", description: "6: Redis unavailable from T+1s for 3 s; the API fails fast, confirmations are off, reads keep working" },
            one(MediFault::RedisDown { for_ms: 3_000 }),
        ),
        (
            FaultInfo { name: "db_down", description: "6: PostgreSQL unavailable from T+1s for 3 s; the API answers 503 at once, tokens are still checked" },
            one(MediFault::DbDown { for_ms: 3_000 }),
        ),
        (
            FaultInfo { name: "cpu_saturation", description: "1: a competing load takes 3 of each API instance's 4 cores from T+1s for 3 s" },
            one(MediFault::CpuSaturation { cores_taken: 3, for_ms: 3_000 }),
        ),
        (
            FaultInfo { name: "signup_flood", description: "1: 120 extra clients sign up as fast as they can from T+1s for 3 s; bookings stay fast" },
            one(MediFault::SignupFlood { clients: 120, for_ms: 3_000 }),
        ),
        (
            FaultInfo { name: "malformed_token_flood", description: "4 and 5: one client sends 60 requests/s with bad tokens from T+1s for 3 s: 401 at once, 429 past its limit" },
            one(MediFault::MalformedTokenFlood { per_s: 60, for_ms: 3_000 }),
        ),
    ]
}

/// Swarm faults start within the first `SWARM_HORIZON` of the run, while patients arrive.
pub const SWARM_HORIZON: Duration = Duration::from_secs(4);

/// Every fault kind, for swarm testing.
pub const KINDS: [&str; 6] = [
    "worker_crash",
    "redis_down",
    "db_down",
    "cpu_saturation",
    "signup_flood",
    "malformed_token_flood",
];

/// Swarm faults: every kind, within [`SWARM_HORIZON`], 2 s apart on average at full rate.
pub const SWARM: SwarmShape = SwarmShape {
    kinds: &KINDS,
    horizon: SWARM_HORIZON,
    mean_gap: Duration::from_secs(2),
};

/// One fault of `kind` for a swarm schedule, drawn from `rng`.
pub fn draw(kind: &str, rng: &mut SimRng, workers: u32, api_cores: u32) -> MediFault {
    match kind {
        "worker_crash" => MediFault::WorkerCrash {
            worker: rng.below(u64::from(workers.max(1))) as u32,
            down_ms: Some(rng.range_inclusive(200, 5_000)),
        },
        "redis_down" => MediFault::RedisDown {
            for_ms: rng.range_inclusive(200, 4_000),
        },
        "db_down" => MediFault::DbDown {
            for_ms: rng.range_inclusive(200, 4_000),
        },
        "cpu_saturation" => MediFault::CpuSaturation {
            cores_taken: rng.range_inclusive(1, u64::from(api_cores.max(1))) as u32,
            for_ms: rng.range_inclusive(500, 4_000),
        },
        "signup_flood" => MediFault::SignupFlood {
            clients: rng.range_inclusive(20, 120) as u32,
            for_ms: rng.range_inclusive(1_000, 4_000),
        },
        _ => MediFault::MalformedTokenFlood {
            per_s: rng.range_inclusive(10, 80) as u32,
            for_ms: rng.range_inclusive(500, 4_000),
        },
    }
}
