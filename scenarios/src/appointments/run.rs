//! One seeded run of the appointments backend: start the database and the cache, the API
//! instances and the users; fire the fault schedule; once the users are done and every
//! fault has healed, read the appointments back for the checkers.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;
use sim_runtime::schedule::FaultSchedule;
use sim_runtime::time::{self, sleep, Duration, Instant};
use sim_runtime::trace;
use sim_runtime::{node, NodeId};

use super::checkers::{Acked, Attempt, ListSeen, Observations};
use super::deps::{self, Deps};
use super::faults::ApptFault;
use super::service::{Api, ApiRequest, ApiResponse, API_PORT};
use super::{Params, Variant};
use crate::deps::Stores;
use crate::inject::{down_for, healed_at, kill_for, partition_for, slow_links_for, Windowed};
use crate::metrics::{self, Recorder, RequestOutcome, Sample};
use crate::patterns::breaker::Transition;
use crate::patterns::{BreakerState, CircuitBreaker, LoadBalancer};
use crate::scenario::{Flow, RunBound};
use crate::workload::{self, WorkloadConfig};

/// What the main task hands back.
#[derive(Clone, Debug)]
pub struct RunData {
    pub observations: Observations,
    pub lists: Vec<Sample>,
    pub bookings: Vec<Sample>,
    pub breaker: Vec<BreakerChange>,
    pub end: Instant,
}

/// One breaker transition, on one API instance, at its virtual time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BreakerChange {
    pub at_ms: u64,
    pub instance: String,
    pub from: BreakerState,
    pub to: BreakerState,
}

/// Metrics per endpoint, for `sim run` and the report.
#[derive(Clone, Debug, Serialize)]
pub struct RunMetrics {
    pub free_slots: metrics::Summary,
    pub book: metrics::Summary,
    pub appointments: usize,
    pub conflicts: u64,
    pub double_booked_slots: usize,
    pub breaker: Vec<BreakerChange>,
}

pub fn metrics_of(d: &RunData) -> RunMetrics {
    let span = d.end.elapsed_since_start();
    RunMetrics {
        free_slots: metrics::summarise(&d.lists, span),
        book: metrics::summarise(&d.bookings, span),
        appointments: d.observations.stored.len(),
        double_booked_slots: {
            let mut slots: Vec<i64> = d.observations.stored.iter().map(|b| b.slot).collect();
            slots.sort_unstable();
            slots.windows(2).filter(|w| w[0] == w[1]).count()
        },
        breaker: d.breaker.clone(),
        conflicts: d
            .observations
            .bookings
            .iter()
            .filter(|a| a.status == Some(409))
            .count() as u64,
    }
}

/// A run is bounded by the last user's arrival and every attempt it may spend (two waits
/// and a pause after a 503 each), the last heal, and the recovery bound.
impl Flow for Params {
    type Variant = Variant;
    type Fault = ApptFault;
    type Data = RunData;

    fn bound(&self) -> RunBound {
        RunBound {
            users: self.users,
            spawn_rate_per_s: self.spawn_rate_per_s,
            per_user: (self.user_timeout * 2 + UNAVAILABLE_PAUSE) * self.user_attempts,
            settle: self.recovery_bound,
        }
    }

    fn main_flow(
        self,
        variant: Variant,
        schedule: FaultSchedule<ApptFault>,
    ) -> impl std::future::Future<Output = RunData> + 'static {
        main_flow(variant, self, schedule)
    }
}

/// How long a user waits after a 503 before trying again.
const UNAVAILABLE_PAUSE: Duration = Duration::from_secs(1);

struct Topology {
    deps: Deps,
    apis: Vec<NodeId>,
}

fn start_apis(variant: Variant, params: Params, deps: &Deps) -> Vec<NodeId> {
    (0..params.api_instances)
        .map(|i| {
            let deps = deps.clone();
            node::node(format!("api-{i}")).build(move || {
                let deps = deps.clone();
                async move {
                    // Made on the instance's own node, so that each instance and each of
                    // its lives draws its own cache generations.
                    let api = Api {
                        instance: i,
                        variant,
                        params,
                        db: deps.db(params.db_timeout),
                        cache: deps.cache(params.redis_timeout, sim_runtime::rng("cache")),
                        breaker: CircuitBreaker::new("db", params.breaker),
                    };
                    workload::serve(API_PORT, api, |api, req: ApiRequest| async move {
                        api.handle(req).await
                    })
                    .await;
                }
            })
        })
        .collect()
}

async fn apply(topo: Rc<Topology>, fault: ApptFault) {
    let d = fault.duration();
    match fault {
        ApptFault::DbDown { .. } => down_for(
            d,
            topo.deps.stores().clone(),
            Stores::db_down,
            Stores::db_up,
        ),
        ApptFault::RedisDown { .. } => down_for(
            d,
            topo.deps.stores().clone(),
            Stores::redis_down,
            Stores::redis_up,
        ),
        ApptFault::DbLatency { extra_ms, .. } => {
            let db = topo.deps.db_node();
            let links = topo.apis.iter().flat_map(|&api| [(db, api), (api, db)]);
            slow_links_for(links.collect(), Duration::from_millis(extra_ms), d);
        }
        ApptFault::PartitionApiDb { .. } => {
            partition_for(topo.apis.clone(), vec![topo.deps.db_node()], d);
        }
        // Schedules are checked against the instance count when they are loaded.
        ApptFault::ApiKill { instance, .. } => kill_for(topo.apis[instance as usize], d),
    }
}

/// What the users saw, gathered on their node.
#[derive(Default)]
struct Seen {
    acked: Vec<Acked>,
    lists: Vec<ListSeen>,
    bookings: Vec<Attempt>,
    server_errors: u64,
    unavailable: u64,
    timeouts: u64,
}

/// A user's script: pick a doctor, list the free slots, book one of the earliest few
/// (people want the soonest appointment, so users collide), and try again after a 409.
async fn user(
    i: u32,
    params: Params,
    mut rng: sim_runtime::SimRng,
    lb: LoadBalancer,
    lists: Recorder,
    bookings: Recorder,
    seen: Rc<RefCell<Seen>>,
) {
    let patient = format!("patient-{i}");
    let doctor = rng.below(u64::from(params.doctors)) as u32;
    let ask = |req: ApiRequest| {
        let lb = lb.clone();
        async move {
            let start = time::now();
            let r = lb
                .call::<ApiRequest, ApiResponse>(req, params.user_timeout)
                .await;
            (start, time::now(), r)
        }
    };
    let outcome = |rec: &Recorder, start, end, r: &Result<ApiResponse, sim_net::RpcError>| {
        let mut s = seen.borrow_mut();
        let o = match r {
            Ok(ApiResponse::Slots(_) | ApiResponse::Booked) => RequestOutcome::Ok,
            Ok(ApiResponse::Conflict) => RequestOutcome::Rejected,
            Ok(ApiResponse::Unavailable) => {
                s.unavailable += 1;
                RequestOutcome::Error
            }
            Ok(ApiResponse::Failed { .. }) => {
                s.server_errors += 1;
                RequestOutcome::Error
            }
            Err(sim_net::RpcError::Timeout) => {
                s.timeouts += 1;
                RequestOutcome::Timeout
            }
            Err(_) => RequestOutcome::Error,
        };
        rec.record(start, end, o);
    };
    for _ in 0..params.user_attempts {
        let (start, end, r) = ask(ApiRequest::FreeSlots { doctor }).await;
        outcome(&lists, start, end, &r);
        let free = match r {
            Ok(ApiResponse::Slots(free)) => free,
            Ok(ApiResponse::Unavailable) => {
                sleep(UNAVAILABLE_PAUSE).await;
                continue;
            }
            _ => continue,
        };
        seen.borrow_mut().lists.push(ListSeen {
            doctor,
            slots: free.clone(),
            start,
        });
        if free.is_empty() {
            return;
        }
        let slot = free[rng.below(free.len().min(3) as u64) as usize];
        let book = ApiRequest::Book {
            slot,
            doctor,
            patient: patient.clone(),
        };
        let (start, end, r) = ask(book).await;
        outcome(&bookings, start, end, &r);
        seen.borrow_mut().bookings.push(Attempt {
            start,
            status: r.as_ref().ok().map(ApiResponse::status),
        });
        match r {
            Ok(ApiResponse::Booked) => {
                seen.borrow_mut().acked.push(Acked {
                    slot,
                    doctor,
                    patient,
                    at: end,
                });
                return;
            }
            Ok(ApiResponse::Unavailable) => sleep(UNAVAILABLE_PAUSE).await,
            _ => {}
        }
    }
}

async fn main_flow(
    variant: Variant,
    params: Params,
    schedule: FaultSchedule<ApptFault>,
) -> RunData {
    let transitions = trace::capture::<Transition>();
    let deps = deps::start(&params).await;
    let apis = start_apis(variant, params, &deps);
    let topo = Rc::new(Topology { deps, apis });
    let addrs = workload::listening(&topo.apis, API_PORT).await;
    let heal = healed_at(&schedule);
    let t = Rc::clone(&topo);
    schedule.install(move |f| apply(Rc::clone(&t), f)).detach();

    let (lists, bookings) = (Recorder::default(), Recorder::default());
    let seen = Rc::new(RefCell::new(Seen::default()));
    let lb = LoadBalancer::new(addrs, Duration::from_secs(5));
    let config = WorkloadConfig::arrivals(params.users, params.spawn_rate_per_s);
    let (l, b, s) = (lists.clone(), bookings.clone(), Rc::clone(&seen));
    let users_done = workload::start_users_node(config, move |i, streams| {
        user(
            i,
            params,
            streams.user(i),
            lb.clone(),
            l.clone(),
            b.clone(),
            s.clone(),
        )
    });
    let _ = users_done.await;
    time::sleep_until(heal).await;
    let stored = loop {
        match topo.deps.final_appointments().await {
            Ok(rows) => break rows,
            Err(_) => sleep(Duration::from_millis(100)).await,
        }
    };
    let seen = seen.take();
    let observations = Observations {
        acked: seen.acked,
        lists: seen.lists,
        bookings: seen.bookings,
        server_errors: seen.server_errors,
        unavailable: seen.unavailable,
        timeouts: seen.timeouts,
        stored,
        healed_at: heal,
        recovery_bound: params.recovery_bound,
    };
    let breaker = transitions
        .take()
        .into_iter()
        .map(|t| BreakerChange {
            at_ms: t.time.elapsed_since_start().as_millis() as u64,
            instance: t.node.name(),
            from: t.event.from,
            to: t.event.to,
        })
        .collect();
    RunData {
        observations,
        breaker,
        lists: lists.samples(),
        bookings: bookings.samples(),
        end: time::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::checkers::check_all;
    use super::super::faults::matrix;
    use super::*;
    use crate::scenario::Scenario;

    fn run(variant: Variant, fault: &str, seed: u64) -> Vec<crate::checker::Verdict> {
        let (_, schedule) = matrix()
            .into_iter()
            .find(|(info, _)| info.name == fault)
            .expect("a matrix entry");
        let (report, data) =
            crate::scenario::simulate_flow(seed, variant, Params::default(), schedule, None);
        assert!(report.is_pass(), "{}", report.outcome);
        check_all(&data.expect("a completed run").observations)
    }

    fn failed(verdicts: &[crate::checker::Verdict]) -> Vec<&str> {
        verdicts
            .iter()
            .filter(|v| !v.ok)
            .map(|v| v.checker.as_str())
            .collect()
    }

    #[test]
    fn the_correct_service_passes_every_chaos_test() {
        for fault in [
            "none",
            "db_down",
            "redis_down",
            "db_latency",
            "partition_api_db",
            "api_kill",
        ] {
            let verdicts = run(Variant::Correct, fault, 1);
            assert!(failed(&verdicts).is_empty(), "{fault}: {verdicts:#?}");
        }
    }

    #[test]
    fn the_correct_service_survives_swarm_faults() {
        for seed in 0..40 {
            let options = super::super::Options::default();
            let (_, schedule) = super::super::Appointments::swarm(seed, &options);
            let (report, data) = crate::scenario::simulate_flow(
                seed,
                Variant::Correct,
                Params::default(),
                schedule.clone(),
                None,
            );
            assert!(report.is_pass(), "seed {seed}: {}", report.outcome);
            let verdicts = check_all(&data.expect("a completed run").observations);
            assert!(
                failed(&verdicts).is_empty(),
                "seed {seed} under {schedule:?}: {verdicts:#?}"
            );
        }
    }

    #[test]
    fn select_then_insert_double_books() {
        let found = (1..=5).any(|seed| {
            failed(&run(Variant::SelectThenInsert, "none", seed)).contains(&"no_double_booking")
        });
        assert!(found, "no double booking in five seeds");
    }

    #[test]
    fn a_breaker_stuck_open_never_lets_bookings_through_again() {
        let verdicts = run(Variant::BreakerStuckOpen, "db_down", 1);
        assert_eq!(failed(&verdicts), ["recovers"], "{verdicts:#?}");
    }

    #[test]
    fn a_cache_that_is_never_invalidated_shows_booked_slots() {
        let verdicts = run(Variant::StaleCache, "none", 1);
        assert_eq!(failed(&verdicts), ["fresh_lists"], "{verdicts:#?}");
    }
}
