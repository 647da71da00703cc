//! One seeded run of the flash sale: start the dependencies, the API instances, the
//! worker and the users; fire the fault schedule; wait for the faults to heal and the
//! backlog to drain; read the final state (which the checkers judge).

use std::rc::Rc;

use serde::Serialize;
use sim_runtime::schedule::FaultSchedule;
use sim_runtime::time::{self, sleep, Duration, Instant};
use sim_runtime::trace::{self, TraceEvent};
use sim_runtime::{node, NodeId};

use super::checkers::{Observations, Trail};
use super::deps::{self, Deps};
use super::faults::FlashFault;
use super::service::{self, Api, OrderRequest, OrderResponse, API_PORT};
use super::{Params, Variant};
use crate::inject::{down_for, healed_at, kill_for, partition_for, slow_links_for};
use crate::metrics::{self, Recorder, RequestOutcome, Sample};
use crate::patterns::LoadBalancer;
use crate::scenario::{Flow, RunBound};
use crate::workload::{self, WorkloadConfig};

/// How long the orders table must stay unchanged, with no backlog, to count as drained.
const SETTLE: Duration = Duration::from_secs(2);

/// How often the settle phase looks at the backlog and the orders table: a few looks
/// within `SETTLE` are enough to see a change, and each costs a Redis and two SQL calls.
const SETTLE_POLL: Duration = Duration::from_millis(250);

/// What the main task hands back: the observations and the request samples.
#[derive(Clone, Debug)]
pub struct RunData {
    pub observations: Observations,
    pub samples: Vec<Sample>,
    pub fault_window: Option<(Instant, Instant)>,
    pub end: Instant,
}

/// Metrics printed by `sim run` and used by the report.
#[derive(Clone, Debug, Serialize)]
pub struct RunMetrics {
    pub phases: metrics::Phases,
    pub orders_in_db: usize,
    pub acknowledged: usize,
    pub redis_stock: i64,
    pub db_stock: i64,
    pub recovery_ms: Option<u64>,
}

/// A run is bounded by the last user's arrival and every attempt it may spend (waiting out
/// its timeout at every instance the load balancer tries in turn), the last heal, and the
/// backlog's drain bound twice (to recover, then to settle). `buggify!` sites fire in the
/// buggy variants' runs.
impl Flow for Params {
    type Variant = Variant;
    type Fault = FlashFault;
    type Data = RunData;

    fn bound(&self) -> RunBound {
        RunBound {
            users: self.users,
            spawn_rate_per_s: self.spawn_rate_per_s,
            per_user: self.user_timeout * self.user_attempts * self.api_instances,
            settle: self.drain_bound * 2,
        }
    }

    fn buggify(variant: Variant) -> bool {
        variant != Variant::Correct
    }

    fn main_flow(
        self,
        variant: Variant,
        schedule: FaultSchedule<FlashFault>,
    ) -> impl std::future::Future<Output = RunData> + 'static {
        main_flow(variant, self, schedule)
    }
}

pub fn metrics_of(d: &RunData) -> RunMetrics {
    let (a, b) = d
        .fault_window
        .map_or((None, None), |(a, b)| (Some(a), Some(b)));
    RunMetrics {
        phases: metrics::by_phase(&d.samples, a, b, d.end),
        orders_in_db: d.observations.final_state.orders.len(),
        acknowledged: d.observations.acked.len(),
        redis_stock: d.observations.final_state.redis_stock,
        db_stock: d.observations.final_state.db_stock,
        recovery_ms: d.observations.recovery_time().map(|t| t.as_millis() as u64),
    }
}

/// The window from the first fault to the last heal, for per-phase metrics.
fn fault_window(schedule: &FaultSchedule<FlashFault>) -> Option<(Instant, Instant)> {
    let start = schedule.iter().map(|f| f.at()).min()?;
    let end = schedule
        .iter()
        .map(|f| f.at() + f.fault.duration().unwrap_or(Duration::from_secs(3600)))
        .max()?;
    Some((start, end))
}

struct Topology {
    deps: Deps,
    apis: Vec<NodeId>,
    worker: NodeId,
}

fn start_services(variant: Variant, params: Params, deps: &Deps) -> Topology {
    let mut apis = Vec::new();
    for i in 0..params.api_instances {
        let deps = deps.clone();
        let id = node::node(format!("api-{i}")).build(move || {
            let api = Api {
                instance: i,
                variant,
                redis: deps.redis_client(params.redis_timeout),
                kafka: deps.producer(params.kafka_timeout),
            };
            let relay = (variant != Variant::KafkaDownNoCompensation).then(|| {
                (
                    deps.redis_client(params.redis_timeout),
                    deps.producer(params.kafka_timeout),
                )
            });
            async move {
                if let Some((redis, kafka)) = relay {
                    let owner = format!("api-{i}-{}", node::current().incarnation());
                    sim_runtime::spawn_named(
                        "outbox-relay",
                        service::relay(owner, redis, kafka, Duration::from_millis(100)),
                    )
                    .detach();
                }
                workload::serve(API_PORT, api, |api, req: OrderRequest| async move {
                    api.handle(req).await
                })
                .await;
            }
        });
        apis.push(id);
    }
    let worker_deps = deps.clone();
    let worker = node::node("worker").build(move || {
        let deps = worker_deps.clone();
        async move {
            let consumer = deps.consumer().await;
            service::worker(variant, params, deps.db(), consumer).await;
        }
    });
    Topology {
        deps: deps.clone(),
        apis,
        worker,
    }
}

async fn apply(topo: Rc<Topology>, fault: FlashFault) {
    let d = fault.duration();
    match fault {
        FlashFault::WorkerCrash { .. } => kill_for(topo.worker, d),
        FlashFault::RedisLatency { extra_ms, .. } => {
            let redis = topo.deps.redis_node();
            let links = topo.apis.iter().map(|&api| (redis, api));
            slow_links_for(links.collect(), Duration::from_millis(extra_ms), d);
        }
        FlashFault::KafkaDown { .. } => {
            down_for(d, topo.deps.clone(), Deps::kafka_down, Deps::kafka_up)
        }
        FlashFault::DbDown { .. } => down_for(d, topo.deps.clone(), Deps::db_down, Deps::db_up),
        // Schedules are checked against the instance count when they are loaded.
        FlashFault::ApiKill { instance, .. } => kill_for(topo.apis[instance as usize], d),
        FlashFault::PartitionApiRedis { .. } => {
            partition_for(topo.apis.clone(), vec![topo.deps.redis_node()], d);
        }
    }
}

/// A user's success (`user.ack`): the order the API acknowledged for an idempotency
/// key, as the no-lost-ack checker reads it back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TraceEvent)]
#[trace_event(name = "user.ack")]
struct Ack {
    key: String,
    order: String,
}

/// A user's failed request (`user.error`), with the reason it was given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TraceEvent)]
#[trace_event(name = "user.error")]
struct UserError {
    reason: String,
}

async fn user(i: u32, params: Params, lb: LoadBalancer, recorder: Recorder) {
    let req = OrderRequest {
        user: i,
        idempotency_key: format!("u{i}-k"),
        product: deps::PRODUCT.to_string(),
    };
    for attempt in 0..params.user_attempts {
        // A retry with the same idempotency key after the previous attempt timed out.
        sim_runtime::sometimes!("flash_sale.user.retry_after_timeout", attempt > 0);
        let start = time::now();
        let r = lb
            .call::<OrderRequest, OrderResponse>(req.clone(), params.user_timeout)
            .await;
        let end = time::now();
        let outcome = match &r {
            Ok(OrderResponse::Accepted { order_id }) => {
                trace::emit(&Ack {
                    key: req.idempotency_key.clone(),
                    order: order_id.clone(),
                });
                RequestOutcome::Ok
            }
            Ok(OrderResponse::SoldOut) => RequestOutcome::Rejected,
            Ok(OrderResponse::Failed { reason }) => {
                trace::emit(&UserError {
                    reason: reason.clone(),
                });
                RequestOutcome::Error
            }
            Err(sim_net::RpcError::Timeout) => RequestOutcome::Timeout,
            Err(e) => {
                trace::emit(&UserError {
                    reason: e.to_string(),
                });
                RequestOutcome::Error
            }
        };
        recorder.record(start, end, outcome);
        // Users retry with the same key on a timeout; any answer is final.
        if outcome != RequestOutcome::Timeout {
            return;
        }
    }
}

async fn main_flow(
    variant: Variant,
    params: Params,
    schedule: FaultSchedule<FlashFault>,
) -> RunData {
    let acks = trace::capture::<Ack>();
    let deps = deps::start(&params).await;
    let stock_log = deps.capture_stock();
    let topo = Rc::new(start_services(variant, params, &deps));
    let addrs = workload::listening(&topo.apis, API_PORT).await;
    let heal = healed_at(&schedule);
    let window = fault_window(&schedule);
    let t = Rc::clone(&topo);
    schedule.install(move |f| apply(Rc::clone(&t), f)).detach();

    // Users run on their own node, which no fault touches.
    let recorder = Recorder::default();
    let lb = LoadBalancer::new(addrs, Duration::from_secs(5));
    let config = WorkloadConfig::arrivals(params.users, params.spawn_rate_per_s);
    let rec = recorder.clone();
    let users_done = workload::start_users_node(config, move |i, _streams| {
        user(i, params, lb.clone(), rec.clone())
    });
    // Recovery (the RTO): from the last heal until the backlog is first empty.
    time::sleep_until(heal).await;
    let healed_at = time::now();
    let mut recovered_at = None;
    while time::now() <= healed_at + params.drain_bound {
        if let Ok(0) = topo.deps.backlog().await {
            recovered_at = Some(time::now());
            break;
        }
        sleep(Duration::from_millis(100)).await;
    }
    let _ = users_done.await;
    // Before the final read, everything settles: no backlog, and the orders table has
    // stopped changing (committed offsets alone can run ahead of the writes, as in
    // commit_before_write). If it never settles, the backlog did not drain.
    let settle_deadline = time::now() + params.drain_bound;
    let mut settled = false;
    let mut quiet_since: Option<(Instant, u64)> = None;
    while time::now() <= settle_deadline {
        let backlog = topo.deps.backlog().await;
        let orders = topo.deps.order_count().await;
        match (backlog, orders, quiet_since) {
            (Ok(0), Ok(n), Some((since, m))) if n == m => {
                if time::now() >= since + SETTLE {
                    settled = true;
                    break;
                }
            }
            (Ok(0), Ok(n), _) => quiet_since = Some((time::now(), n)),
            _ => quiet_since = None,
        }
        sleep(SETTLE_POLL).await;
    }
    let drained_at = if settled { recovered_at } else { None };
    let final_state = topo.deps.final_state().await;
    let acks = acks.take();
    let writes = super::checkers::stock_writes(&stock_log.events());
    let trail = Trail {
        acks: acks.iter().map(|a| (a.seq, a.time)).collect(),
        stock_writes: writes.iter().map(|&(_, seq, t)| (seq, t)).collect(),
    };
    let acked = acks
        .into_iter()
        .map(|a| (a.event.key, a.event.order))
        .collect();
    let observations = Observations {
        initial_stock: params.items as i64,
        acked,
        stock_values: writes.iter().map(|&(v, _, _)| v).collect(),
        trail,
        final_state,
        healed_at,
        drained_at,
        drain_bound: params.drain_bound,
    };
    RunData {
        observations,
        samples: recorder.samples(),
        fault_window: window,
        end: time::now(),
    }
}
