//! One seeded run of Interdomestik: start PostgreSQL, Redis and the email service, the API
//! instances (each with its pool, its limiter, its email breaker and its outbox relay);
//! fire the fault schedule (a burst runs as clients of its own); run the agents and the
//! members (some of whom file a claim once registered); once they are done and every
//! fault has healed, let the outbox drain and read back the accounts, the claims, the
//! database's deadlock count and the email service's deliveries for the checkers.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde::Serialize;
use sim_models::sql::{SessionChange, SessionEvent};
use sim_runtime::node::spawn_on_node;
use sim_runtime::schedule::FaultSchedule;
use sim_runtime::time::{self, now, sleep, Duration};
use sim_runtime::trace;
use sim_runtime::{node, NodeId};

use super::checkers::{Answer, ClaimSeen, Observations, RegistrationSeen, Window};
use super::deps::{self, Deps, PoolWaits};
use super::faults::InterFault;
use super::service::{
    Api, ApiRequest, ApiResponse, Call, Claim, Path, Registration, TxRetry, API_PORT,
};
use super::{Params, Variant};
use crate::deps::Stores;
use crate::inject::{down_for, healed_at, kill_for, revert_after, Windowed};
use crate::metrics::{self, RequestOutcome, Sample};
use crate::patterns::breaker::Transition;
use crate::patterns::{CircuitBreaker, LoadBalancer};
use crate::scenario::{Flow, RunBound, SCHEDULE_HORIZON_MS};
use crate::workload::{self, WorkloadConfig};

/// What the main task hands back.
#[derive(Clone, Debug)]
pub struct RunData {
    pub observations: Observations,
    /// Transactions run again after a conflict.
    pub retries: u64,
    pub breaker: Vec<BreakerChange>,
    /// Pool acquisitions that waited, and their total wait, over every instance.
    pub pool_waits: (u64, Duration),
    /// Emails still in the outbox at the end.
    pub outbox_left: i64,
    /// The most sessions PostgreSQL had open at once, and the connections it refused
    /// with 53300 (its `max_connections` reached): its own account, not the pools'.
    pub db_sessions_peak: u64,
    pub db_refused: u64,
    /// Statements that waited for a row lock (PostgreSQL's count).
    pub lock_waits: u64,
}

/// One email breaker transition, at its virtual time, on its instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BreakerChange {
    pub at_ms: u64,
    pub instance: String,
    pub from: crate::patterns::BreakerState,
    pub to: crate::patterns::BreakerState,
}

/// Metrics for `sim run` and the report.
#[derive(Clone, Debug, Serialize)]
pub struct RunMetrics {
    pub register: metrics::Summary,
    pub registered: u64,
    /// Registrations stored per second, from the first request to the last answer.
    pub registered_per_s: f64,
    pub rejected_429: u64,
    pub conflicts_409: u64,
    pub failed_5xx: u64,
    pub no_answer: u64,
    pub retries: u64,
    pub deadlocks: u64,
    pub breaker_transitions: u64,
    pub pool_waits: u64,
    pub pool_wait_ms: f64,
    pub db_sessions_peak: u64,
    /// Connections PostgreSQL refused with 53300.
    pub db_refused: u64,
    pub lock_waits: u64,
    pub welcome_emails: u64,
    pub claims: u64,
    pub claims_filed: u64,
    /// Claims refused for want of a subscription.
    pub claims_refused_403: u64,
    pub claims_failed: u64,
    pub claim_receipts: u64,
    pub outbox_left: i64,
}

pub(super) fn sample_of(a: &Answer) -> Sample {
    Sample {
        start: a.start,
        latency: a.end - a.start,
        outcome: match a.status {
            Some(201) => RequestOutcome::Ok,
            Some(s) if s < 500 => RequestOutcome::Rejected,
            Some(_) => RequestOutcome::Error,
            None => RequestOutcome::Timeout,
        },
    }
}

pub fn metrics_of(d: &RunData) -> RunMetrics {
    let o = &d.observations;
    let samples: Vec<Sample> = o
        .registrations
        .iter()
        .map(|r| sample_of(&r.answer))
        .collect();
    let count = |f: &dyn Fn(&Answer) -> bool| {
        o.registrations.iter().filter(|r| f(&r.answer)).count() as u64
    };
    let claims =
        |f: &dyn Fn(&Answer) -> bool| o.claims.iter().filter(|c| f(&c.answer)).count() as u64;
    let registered = count(&|r| r.status == Some(201));
    let span = match (
        o.registrations.iter().map(|r| r.answer.start).min(),
        o.registrations.iter().map(|r| r.answer.end).max(),
    ) {
        (Some(a), Some(b)) => b.duration_since(a),
        _ => Duration::ZERO,
    };
    RunMetrics {
        register: metrics::summarise(&samples, span),
        registered,
        registered_per_s: if span.is_zero() {
            0.0
        } else {
            registered as f64 / span.as_secs_f64()
        },
        rejected_429: count(&|r| r.status == Some(429)),
        conflicts_409: count(&|r| r.status == Some(409)),
        failed_5xx: count(&|r| r.status.is_some_and(|s| s >= 500)),
        no_answer: count(&|r| r.status.is_none()),
        retries: d.retries,
        deadlocks: o.deadlocks_detected,
        breaker_transitions: d.breaker.len() as u64,
        pool_waits: d.pool_waits.0,
        pool_wait_ms: d.pool_waits.1.as_secs_f64() * 1000.0,
        db_sessions_peak: d.db_sessions_peak,
        db_refused: d.db_refused,
        lock_waits: d.lock_waits,
        welcome_emails: o
            .welcome_delivered
            .values()
            .map(|&n| u64::from(n.min(1)))
            .sum(),
        claims: o.claims.len() as u64,
        claims_filed: claims(&|a| a.is(201)),
        claims_refused_403: claims(&|a| a.is(403)),
        claims_failed: claims(&|a| a.failed()),
        claim_receipts: o
            .receipts_delivered
            .values()
            .map(|&n| u64::from(n.min(1)))
            .sum(),
        outbox_left: d.outbox_left,
    }
}

/// A run is bounded by the last arrival and its registrations (each may wait out its
/// timeout, and a burst's clients send round after round), the last heal, and the
/// outbox's drain bound.
impl Flow for Params {
    type Variant = Variant;
    type Fault = InterFault;
    type Data = RunData;

    fn bound(&self) -> RunBound {
        RunBound {
            users: self.members + self.agents,
            spawn_rate_per_s: self.spawn_rate_per_s,
            per_user: self.user_timeout * 2,
            settle: self.drain_max + self.user_timeout,
        }
    }

    fn main_flow(
        self,
        variant: Variant,
        schedule: FaultSchedule<InterFault>,
    ) -> impl std::future::Future<Output = RunData> + 'static {
        main_flow(variant, self, schedule)
    }
}

fn start_apis(variant: Variant, params: Params, deps: &Deps, waits: &PoolWaits) -> Vec<NodeId> {
    (0..params.api_instances)
        .map(|i| {
            let (deps, waits) = (deps.clone(), waits.clone());
            node::node(format!("api-{i}")).build(move || {
                let api = Rc::new(Api {
                    instance: i,
                    variant,
                    params,
                    db: deps.db(params.pool, params.user_timeout, waits.clone()),
                    limiter: deps.rate_limit(
                        params.redis_timeout,
                        params.rate_limit,
                        params.rate_window,
                    ),
                    email: deps.email().addr(),
                    email_breaker: CircuitBreaker::new("email", params.email_breaker),
                    rng: RefCell::new(sim_runtime::rng("backoff")),
                    requests: Cell::new(0),
                });
                async move {
                    let relay = Rc::clone(&api);
                    sim_runtime::spawn_named(
                        "outbox-relay",
                        async move { relay.relay_forever().await },
                    )
                    .detach();
                    let server = sim_net::serve(API_PORT, move |req: ApiRequest| {
                        let api = Rc::clone(&api);
                        async move { api.handle(req).await }
                    });
                    if let Ok(h) = server {
                        let _ = h.await;
                    }
                }
            })
        })
        .collect()
}

struct Topology {
    deps: Deps,
    params: Params,
    apis: Vec<NodeId>,
    /// Where burst clients run: a node of its own, as other machines.
    burst: NodeId,
    lb: LoadBalancer,
    seen: Rc<RefCell<Vec<RegistrationSeen>>>,
    claims: Rc<RefCell<Vec<ClaimSeen>>>,
    bursts_started: Cell<u32>,
    /// Burst clients still sending or waiting for answers.
    bursting: Rc<Cell<u32>>,
}

/// Sends `call` as `client` through the load balancer; what came back.
async fn send(lb: &LoadBalancer, timeout: Duration, client: &str, call: Call) -> Answer {
    let start = now();
    let req = ApiRequest {
        client: client.to_string(),
        call,
    };
    let r = lb.call::<ApiRequest, ApiResponse>(req, timeout).await;
    let (status, reason) = match &r {
        Ok(resp) => (Some(resp.status()), resp.reason().to_string()),
        Err(e) => (None, e.to_string()),
    };
    Answer {
        start,
        end: now(),
        status,
        reason,
    }
}

/// Sends one registration as `client` and notes what came back.
async fn register(topo: &Topology, client: String, r: Registration) {
    let email = r.email.clone();
    let answer = send(
        &topo.lb,
        topo.params.user_timeout,
        &client,
        Call::Register(r),
    )
    .await;
    topo.seen.borrow_mut().push(RegistrationSeen {
        client,
        email,
        answer,
    });
}

/// Member `member` files claim `reference` with `documents` uploads, as `client`, and
/// notes what came back.
async fn file_claim(
    topo: &Topology,
    client: String,
    member: String,
    reference: String,
    documents: u32,
) {
    let claim = Claim {
        member: member.clone(),
        reference: reference.clone(),
        documents: (0..documents)
            .map(|k| format!("{reference}/document-{k}.pdf"))
            .collect(),
    };
    let answer = send(
        &topo.lb,
        topo.params.user_timeout,
        &client,
        Call::SubmitClaim(claim),
    )
    .await;
    topo.claims.borrow_mut().push(ClaimSeen {
        client,
        member,
        reference,
        documents,
        answer,
    });
}

/// Sends `registrations` at once as `client` and waits for every answer.
async fn batch(topo: &Rc<Topology>, client: &str, registrations: Vec<Registration>) {
    let mut tasks = Vec::with_capacity(registrations.len());
    for r in registrations {
        let topo = Rc::clone(topo);
        let client = client.to_string();
        tasks.push(sim_runtime::spawn_named("registration", async move {
            register(&topo, client, r).await
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

fn apply(topo: Rc<Topology>, fault: InterFault) {
    let d = fault.duration();
    match fault {
        InterFault::DbDown { .. } => down_for(
            d,
            topo.deps.stores().clone(),
            Stores::db_down,
            Stores::db_up,
        ),
        InterFault::DbSlow { extra_ms, .. } => {
            let db = topo.deps.stores().db.clone();
            db.slow(Duration::from_millis(extra_ms));
            revert_after(d, move || db.fast());
        }
        InterFault::EmailDown { .. } => {
            let email = topo.deps.email().clone();
            email.down();
            revert_after(d, move || email.up());
        }
        InterFault::EmailSlow { extra_ms, .. } => {
            let email = topo.deps.email().clone();
            email.slow(Duration::from_millis(extra_ms));
            revert_after(d, move || email.fast());
        }
        // Schedules are checked against the instance count when they are loaded.
        InterFault::ApiKill { instance, .. } => kill_for(topo.apis[instance as usize], d),
        InterFault::RegistrationBurst {
            clients,
            per_client,
            ..
        } => {
            let until = d.map(|d| now() + d);
            let burst = topo.bursts_started.get();
            topo.bursts_started.set(burst + 1);
            for k in 0..clients {
                let topo2 = Rc::clone(&topo);
                topo.bursting.set(topo.bursting.get() + 1);
                spawn_on_node(topo.burst, "burst-client", async move {
                    let topo = topo2;
                    let client = format!("burst-{burst}-{k}");
                    let p = topo.params;
                    let mut round = 0u32;
                    loop {
                        let calls = (0..per_client)
                            .map(|n| Registration {
                                path: Path::SelfService,
                                email: format!("{client}-{round}-{n}@burst.test"),
                                agent: i64::from((k + n) % p.agents.max(1)),
                                plan: i64::from(n % p.plans.max(1)),
                            })
                            .collect();
                        batch(&topo, &client, calls).await;
                        round += 1;
                        if until.is_none_or(|u| now() >= u) {
                            break;
                        }
                        // A script that gets 429s pauses a little before the next round.
                        sleep(Duration::from_millis(250)).await;
                    }
                    topo.bursting.set(topo.bursting.get() - 1);
                })
                .detach();
            }
        }
    }
}

/// What user `i` of the workload is: one of the agents, spread among the members.
enum Role {
    Agent(u32),
    Member(u32),
}

fn role(p: &Params, i: u32) -> Role {
    let total = p.members + p.agents;
    if p.agents == 0 {
        return Role::Member(i);
    }
    let step = (total / p.agents).max(1);
    if i % step == 0 && i / step < p.agents {
        Role::Agent(i / step)
    } else {
        let agents_before = i.div_ceil(step).min(p.agents);
        Role::Member(i - agents_before)
    }
}

/// User `i`'s registrations: an agent's batch at once, or a member's own.
async fn user(topo: Rc<Topology>, i: u32) {
    let p = topo.params;
    let plans = p.plans.max(1);
    match role(&p, i) {
        Role::Agent(a) => {
            let calls = (0..p.batch_per_agent)
                .map(|k| Registration {
                    path: Path::ByAgent,
                    email: format!("client-{a}-{k}@agent.test"),
                    agent: i64::from(a),
                    plan: i64::from(k % plans),
                })
                .collect();
            batch(&topo, &format!("agent-{a}"), calls).await;
        }
        Role::Member(m) => {
            let email = format!("member-{m}@interdomestik.test");
            let client = format!("member-{m}");
            let r = Registration {
                path: Path::SelfService,
                email: email.clone(),
                agent: i64::from(m % p.agents.max(1)),
                plan: i64::from(m % plans),
            };
            register(&topo, client.clone(), r).await;
            // Whatever the answer: a member who heard nothing may be registered all the
            // same, and tries.
            if p.claim_every > 0 && m % p.claim_every == 0 {
                let reference = format!("claim-{m}");
                file_claim(&topo, client, email, reference, p.documents_per_claim).await;
            }
        }
    }
}

/// The fault windows of the kinds `kind` picks in `schedule`.
fn windows(schedule: &FaultSchedule<InterFault>, kind: fn(&InterFault) -> bool) -> Vec<Window> {
    schedule
        .iter()
        .filter(|f| kind(&f.fault))
        .map(|f| Window {
            from: f.at(),
            to: f.at()
                + f.fault
                    .duration()
                    .unwrap_or(Duration::from_millis(SCHEDULE_HORIZON_MS)),
        })
        .collect()
}

/// How long after a database fault a failure is still put down to it.
const EXCUSE_AFTER: Duration = Duration::from_secs(2);

/// How long the load balancer keeps an instance that refused a connection out of its
/// rotation; a killed instance may be marked until this long after its restart, and a
/// failure until then is put down to the kill.
const LB_DOWN_FOR: Duration = Duration::from_secs(5);

async fn main_flow(
    variant: Variant,
    params: Params,
    schedule: FaultSchedule<InterFault>,
) -> RunData {
    let retries = trace::capture::<TxRetry>();
    let transitions = trace::capture::<Transition>();
    let sessions = trace::capture::<SessionEvent>();
    let deps = deps::start(&params).await;
    let waits = PoolWaits::default();
    let apis = start_apis(variant, params, &deps, &waits);
    let addrs = workload::listening(&apis, API_PORT).await;
    let lb = LoadBalancer::new(addrs, LB_DOWN_FOR);
    let topo = Rc::new(Topology {
        deps,
        params,
        apis,
        burst: node::node("burst").build(futures::future::pending::<()>),
        lb,
        seen: Rc::default(),
        claims: Rc::default(),
        bursts_started: Cell::new(0),
        bursting: Rc::new(Cell::new(0)),
    });
    let heal = healed_at(&schedule);
    let t = Rc::clone(&topo);
    schedule
        .install(move |f| {
            apply(Rc::clone(&t), f);
            async {}
        })
        .detach();

    let config = WorkloadConfig::arrivals(params.members + params.agents, params.spawn_rate_per_s);
    let t = Rc::clone(&topo);
    let users_done = workload::start_users_node(config, move |i, _| user(Rc::clone(&t), i));
    let _ = users_done.await;
    time::sleep_until(heal).await;
    while topo.bursting.get() > 0 {
        sleep(Duration::from_millis(100)).await;
    }

    // Let the relays send what the outbox still holds.
    let deadline = now() + params.drain_max;
    let mut outbox_left = -1;
    while now() < deadline {
        if let Ok(n) = topo.deps.outbox_len().await {
            outbox_left = n;
            if n == 0 {
                break;
            }
        }
        sleep(Duration::from_millis(250)).await;
    }
    let (accounts, claim_rows) = crate::deps::until_ok(|| topo.deps.final_rows()).await;

    let observations = Observations {
        registrations: topo.seen.take(),
        claims: topo.claims.take(),
        accounts,
        claim_rows,
        welcome_delivered: topo.deps.email().welcomes_delivered(),
        receipts_delivered: topo.deps.email().receipts_delivered(),
        deadlocks_detected: topo.deps.deadlocks_detected(),
        db_faults: windows(&schedule, |f| {
            matches!(f, InterFault::DbDown { .. } | InterFault::DbSlow { .. })
        }),
        api_kills: windows(&schedule, |f| matches!(f, InterFault::ApiKill { .. })),
        excuse_after: EXCUSE_AFTER,
        kill_excuse_after: LB_DOWN_FOR,
        rate_limit: params.rate_limit,
        rate_window: params.rate_window,
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
    let (db_sessions_peak, db_refused) = sessions_of(&sessions.take());
    RunData {
        observations,
        retries: retries.take().len() as u64,
        breaker,
        pool_waits: waits.get(),
        outbox_left,
        db_sessions_peak,
        db_refused,
        lock_waits: topo.deps.lock_waits(),
    }
}

/// The most sessions open at once, and the connections refused, from PostgreSQL's own
/// session events.
fn sessions_of(events: &[trace::Captured<SessionEvent>]) -> (u64, u64) {
    let (mut open, mut peak, mut refused) = (0u64, 0u64, 0u64);
    for e in events {
        match e.event.change {
            SessionChange::Opened(_) => {
                open += 1;
                peak = peak.max(open);
            }
            SessionChange::Closed(_) => open = open.saturating_sub(1),
            SessionChange::Rejected(_) => refused += 1,
        }
    }
    (peak, refused)
}
