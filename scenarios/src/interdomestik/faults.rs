//! Interdomestik's faults: the document's stress scenarios (database connection
//! exhaustion as a slow database, external service failures as the email service down or
//! slow, concurrent registrations as a burst) and the failures it claims to survive (the
//! database down, an API instance killed mid-registration), each a named schedule, plus a
//! swarm over every kind. Window faults carry their own duration, so a shrunk schedule is
//! always well-formed.

use serde::{Deserialize, Serialize};
use sim_runtime::schedule::FaultSchedule;
use sim_runtime::time::Duration;
use sim_runtime::SimRng;

use crate::inject::Windowed;
use crate::scenario::{FaultInfo, SwarmShape};
use crate::shrink::{shorter, smaller_kills, ShrinkFault};

/// One fault of Interdomestik.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum InterFault {
    /// PostgreSQL refuses connections (and drops open ones) for `for_ms`.
    DbDown { for_ms: u64 },
    /// Every statement takes `extra_ms` more (holding its locks and connection) for
    /// `for_ms`.
    DbSlow { extra_ms: u64, for_ms: u64 },
    /// The email service hangs (answers nothing) for `for_ms`.
    EmailDown { for_ms: u64 },
    /// Every email takes `extra_ms` more for `for_ms`.
    EmailSlow { extra_ms: u64, for_ms: u64 },
    /// API instance `instance` is killed (mid-registration, as likely as not) and
    /// restarted `down_ms` later (`None`: never).
    ApiKill { instance: u32, down_ms: Option<u64> },
    /// `clients` extra clients each send `per_client` registrations at once, and again
    /// as soon as all are answered, for `for_ms`.
    RegistrationBurst {
        clients: u32,
        per_client: u32,
        for_ms: u64,
    },
}

impl Windowed for InterFault {
    /// How long the fault lasts after it starts (`None`: to the end of the run).
    fn duration(&self) -> Option<Duration> {
        let ms = match self {
            InterFault::ApiKill { down_ms, .. } => *down_ms,
            InterFault::DbDown { for_ms }
            | InterFault::DbSlow { for_ms, .. }
            | InterFault::EmailDown { for_ms }
            | InterFault::EmailSlow { for_ms, .. }
            | InterFault::RegistrationBurst { for_ms, .. } => Some(*for_ms),
        };
        ms.map(Duration::from_millis)
    }
}

impl ShrinkFault for InterFault {
    fn smaller(&self) -> Vec<Self> {
        let windows = |for_ms: u64, make: &dyn Fn(u64) -> InterFault| {
            shorter(for_ms, 100)
                .into_iter()
                .map(make)
                .collect::<Vec<_>>()
        };
        match *self {
            InterFault::DbDown { for_ms } => windows(for_ms, &|f| InterFault::DbDown { for_ms: f }),
            InterFault::EmailDown { for_ms } => {
                windows(for_ms, &|f| InterFault::EmailDown { for_ms: f })
            }
            InterFault::DbSlow { extra_ms, for_ms } => {
                let mut v: Vec<Self> = shorter(extra_ms, 10)
                    .into_iter()
                    .map(|e| InterFault::DbSlow {
                        extra_ms: e,
                        for_ms,
                    })
                    .collect();
                v.extend(windows(for_ms, &|f| InterFault::DbSlow {
                    extra_ms,
                    for_ms: f,
                }));
                v
            }
            InterFault::EmailSlow { extra_ms, for_ms } => {
                let mut v: Vec<Self> = shorter(extra_ms, 10)
                    .into_iter()
                    .map(|e| InterFault::EmailSlow {
                        extra_ms: e,
                        for_ms,
                    })
                    .collect();
                v.extend(windows(for_ms, &|f| InterFault::EmailSlow {
                    extra_ms,
                    for_ms: f,
                }));
                v
            }
            InterFault::ApiKill { instance, down_ms } => smaller_kills(instance, down_ms)
                .into_iter()
                .map(|(instance, down_ms)| InterFault::ApiKill { instance, down_ms })
                .collect(),
            InterFault::RegistrationBurst {
                clients,
                per_client,
                for_ms,
            } => {
                let mut v: Vec<Self> = shorter(u64::from(clients), 1)
                    .into_iter()
                    .map(|c| InterFault::RegistrationBurst {
                        clients: c as u32,
                        per_client,
                        for_ms,
                    })
                    .collect();
                v.extend(shorter(u64::from(per_client), 1).into_iter().map(|p| {
                    InterFault::RegistrationBurst {
                        clients,
                        per_client: p as u32,
                        for_ms,
                    }
                }));
                v.extend(windows(for_ms, &|f| InterFault::RegistrationBurst {
                    clients,
                    per_client,
                    for_ms: f,
                }));
                v
            }
        }
    }
}

/// When the matrix's faults strike: while the first registrations are in flight.
pub const FAULT_AT: Duration = Duration::from_millis(400);

/// The fault matrix: one entry per stress scenario of the document.
pub fn matrix() -> Vec<(FaultInfo, FaultSchedule<InterFault>)> {
    let one = |f: InterFault| FaultSchedule::new().at(FAULT_AT, f);
    vec![
        (FaultInfo { name: "none", description: "no faults: 20 members and 4 agents' batches of 6 register concurrently" }, FaultSchedule::new()),
        (
            FaultInfo { name: "db_slow", description: "1: connection exhaustion: every statement 200 ms slower from T+0.4s for 3 s; registrations queue for connections" },
            one(InterFault::DbSlow { extra_ms: 200, for_ms: 3_000 }),
        ),
        (
            FaultInfo { name: "db_down", description: "database resilience: PostgreSQL down from T+0.4s for 2 s; registrations fail cleanly, none half-written" },
            one(InterFault::DbDown { for_ms: 2_000 }),
        ),
        (
            FaultInfo { name: "email_down", description: "5: the email service hangs from T+0.4s for 5 s; the breaker opens, registrations go on, the outbox sends later" },
            one(InterFault::EmailDown { for_ms: 5_000 }),
        ),
        (
            FaultInfo { name: "email_slow", description: "5: every email 1.5 s slower from T+0.4s for 5 s" },
            one(InterFault::EmailSlow { extra_ms: 1_500, for_ms: 5_000 }),
        ),
        (
            FaultInfo { name: "api_kill", description: "2 and 3: API instance 0 killed mid-registration at T+0.4s, restarted 2 s later" },
            one(InterFault::ApiKill { instance: 0, down_ms: Some(2_000) }),
        ),
        (
            FaultInfo { name: "registration_burst", description: "2 and 3: 10 clients each send 8 registrations at once, again and again for 3 s; 5 per minute get through" },
            one(InterFault::RegistrationBurst { clients: 10, per_client: 8, for_ms: 3_000 }),
        ),
    ]
}

/// Swarm faults start within the first `SWARM_HORIZON` of the run, while members and
/// agents register.
pub const SWARM_HORIZON: Duration = Duration::from_secs(2);

/// Every fault kind, for swarm testing.
pub const KINDS: [&str; 6] = [
    "db_down",
    "db_slow",
    "email_down",
    "email_slow",
    "api_kill",
    "registration_burst",
];

/// Swarm faults: every kind, within [`SWARM_HORIZON`], 1 s apart on average at full rate.
pub const SWARM: SwarmShape = SwarmShape {
    kinds: &KINDS,
    horizon: SWARM_HORIZON,
    mean_gap: Duration::from_secs(1),
};

/// One fault of `kind` for a swarm schedule, drawn from `rng`.
pub fn draw(kind: &str, rng: &mut SimRng, api_instances: u32) -> InterFault {
    match kind {
        "db_down" => InterFault::DbDown {
            for_ms: rng.range_inclusive(100, 3_000),
        },
        "db_slow" => InterFault::DbSlow {
            extra_ms: rng.range_inclusive(10, 500),
            for_ms: rng.range_inclusive(200, 4_000),
        },
        "email_down" => InterFault::EmailDown {
            for_ms: rng.range_inclusive(200, 8_000),
        },
        "email_slow" => InterFault::EmailSlow {
            extra_ms: rng.range_inclusive(100, 3_000),
            for_ms: rng.range_inclusive(200, 8_000),
        },
        "api_kill" => InterFault::ApiKill {
            instance: rng.below(u64::from(api_instances.max(1))) as u32,
            down_ms: Some(rng.range_inclusive(100, 5_000)),
        },
        _ => InterFault::RegistrationBurst {
            clients: rng.range_inclusive(1, 12) as u32,
            per_client: rng.range_inclusive(2, 10) as u32,
            for_ms: rng.range_inclusive(100, 3_000),
        },
    }
}
