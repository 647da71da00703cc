//! One seeded run of Medistream: start PostgreSQL, Redis and the SMS provider, the API
//! instances (each with its simulated cores) and the workers; fire the fault schedule
//! (floods and competing load run as clients and tasks of their own); run the patients;
//! once they are done and every fault has healed, let the queue drain and read back where
//! every job ended for the checkers.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;

use serde::Serialize;
use sim_runtime::node::{compute, spawn_on_node};
use sim_runtime::schedule::FaultSchedule;
use sim_runtime::time::{self, now, sleep, Duration, Instant};
use sim_runtime::trace;
use sim_runtime::{node, NodeId, SimRng};

use super::checkers::{AccessSeen, Observations, Window};
use super::deps::{self, Deps, Downstream, INVALID_PREFIX};
use super::faults::MediFault;
use super::jobs::{Depth, JobQueue};
use super::service::{Access, Api, ApiRequest, ApiResponse, Call, JobTransition, Worker, API_PORT};
use super::{Params, Variant};
use crate::deps::Stores;
use crate::inject::{down_for, healed_at, kill_for, Windowed};
use crate::metrics::{self, Recorder, RequestOutcome, Sample};
use crate::patterns::{Bulkhead, LoadBalancer};
use crate::scenario::SCHEDULE_HORIZON_MS;
use crate::scenario::{Flow, RunBound};
use crate::workload::{self, WorkloadConfig};

/// What the main task hands back.
#[derive(Clone, Debug)]
pub struct RunData {
    pub observations: Observations,
    pub signups: Vec<Sample>,
    pub logins: Vec<Sample>,
    /// The flood's signups, apart from the patients'.
    pub flood_signups: Vec<Sample>,
    /// When each patient's workflow ended with a booking.
    pub workflows: Vec<Instant>,
    pub depth: Vec<DepthSample>,
    pub jobs: Vec<JobChange>,
    pub end: Instant,
}

/// The queue's depth at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DepthSample {
    pub at_ms: u64,
    pub pending: u64,
    pub active: u64,
    pub retry: u64,
}

/// One job transition in a worker, at its virtual time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobChange {
    pub at_ms: u64,
    pub worker: String,
    pub job: String,
    pub to: &'static str,
    pub attempt: u32,
}

/// Metrics for `sim run` and the report.
#[derive(Clone, Debug, Serialize)]
pub struct RunMetrics {
    pub signup: metrics::Summary,
    pub login: metrics::Summary,
    pub book: metrics::Summary,
    pub read: metrics::Summary,
    /// Bookings that started during a signup flood.
    pub book_in_flood: metrics::Summary,
    pub flood_signup: metrics::Summary,
    pub workflows: u64,
    pub workflows_per_s: f64,
    /// Signups answered 503 or not in time, in percent of signups.
    pub signup_failure_pct: f64,
    pub jobs_enqueued: u64,
    pub jobs_completed: u64,
    pub jobs_dead: u64,
    /// Attempts that ended in a retry (or, without backoff, straight back in the queue).
    pub retries: u64,
    pub rejected_401: u64,
    pub rejected_429: u64,
    pub downstream_calls_for_rejected: u64,
}

pub fn metrics_of(d: &RunData) -> RunMetrics {
    let o = &d.observations;
    let span = d.end.elapsed_since_start();
    let in_flood: Vec<&Sample> = o
        .bookings
        .iter()
        .filter(|s| o.floods.iter().any(|f| f.contains(s.start)))
        .collect();
    let signup = metrics::summarise(&d.signups, span);
    let load = match (d.signups.first(), d.workflows.last()) {
        (Some(first), Some(last)) => last.duration_since(first.start),
        _ => Duration::ZERO,
    };
    let rejected: BTreeSet<u64> = o
        .access
        .iter()
        .filter(|a| a.status == 429 || (a.status == 401 && a.endpoint != "login"))
        .map(|a| a.request)
        .collect();
    RunMetrics {
        login: metrics::summarise(&d.logins, span),
        book: metrics::summarise(&o.bookings, span),
        read: metrics::summarise(&o.reads, span),
        book_in_flood: metrics::summarise(in_flood, span),
        flood_signup: metrics::summarise(&d.flood_signups, span),
        workflows: d.workflows.len() as u64,
        workflows_per_s: if load.is_zero() {
            0.0
        } else {
            d.workflows.len() as f64 / load.as_secs_f64()
        },
        signup_failure_pct: signup.error_pct,
        signup,
        jobs_enqueued: o.jobs_told.len() as u64,
        jobs_completed: o.queue.completed.len() as u64,
        jobs_dead: o.queue.archived.len() as u64,
        retries: d
            .jobs
            .iter()
            .filter(|j| j.to == "retry" || j.to == "requeued")
            .count() as u64,
        rejected_401: o.access.iter().filter(|a| a.status == 401).count() as u64,
        rejected_429: o.access.iter().filter(|a| a.status == 429).count() as u64,
        downstream_calls_for_rejected: o.downstream.iter().filter(|r| rejected.contains(r)).count()
            as u64,
    }
}

/// A run is bounded by the last patient's arrival and its workflow (each request may wait
/// out its timeout, a dawdler its token's expiry) or the load test's length, the last heal,
/// and the queue's drain bound.
impl Flow for Params {
    type Variant = Variant;
    type Fault = MediFault;
    type Data = RunData;

    fn bound(&self) -> RunBound {
        RunBound {
            users: self.users,
            spawn_rate_per_s: self.spawn_rate_per_s,
            per_user: self.token_ttl + self.user_timeout * 7 + self.load_for.unwrap_or_default(),
            settle: self.drain_max,
        }
    }

    fn main_flow(
        self,
        variant: Variant,
        schedule: FaultSchedule<MediFault>,
    ) -> impl std::future::Future<Output = RunData> + 'static {
        main_flow(variant, self, schedule)
    }
}

struct Topology {
    deps: Deps,
    params: Params,
    apis: Vec<NodeId>,
    workers: Vec<NodeId>,
    /// Where flood clients and the attacker run: nodes of their own, as other machines.
    flood: NodeId,
    attacker: NodeId,
    lb: LoadBalancer,
    flood_signups: Recorder,
    floods_started: Cell<u32>,
}

fn start_apis(variant: Variant, params: Params, deps: &Deps) -> Vec<NodeId> {
    (0..params.api_instances)
        .map(|i| {
            let deps = deps.clone();
            node::node(format!("api-{i}"))
                .cores(params.api_cores as usize)
                .build(move || {
                    let deps = deps.clone();
                    async move {
                        let api = Api {
                            instance: i,
                            variant,
                            params,
                            db: deps.db(params.db_timeout),
                            limiter: deps.rate_limit(
                                params.redis_timeout,
                                params.rate_limit,
                                params.rate_window,
                            ),
                            queue: JobQueue::new(deps.redis(params.redis_timeout)),
                            hashing: Bulkhead::new(params.api_cores as usize),
                            requests: Cell::new(0),
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

fn start_workers(variant: Variant, params: Params, deps: &Deps) -> Vec<NodeId> {
    (0..params.workers)
        .map(|i| {
            let deps = deps.clone();
            node::node(format!("worker-{i}")).build(move || {
                let worker = Rc::new(Worker {
                    variant,
                    params,
                    queue: JobQueue::new(deps.redis(params.redis_timeout)),
                    provider: deps.sms().addr(),
                    rng: RefCell::new(sim_runtime::rng("backoff")),
                });
                worker.run()
            })
        })
        .collect()
}

/// An idle node for clients that faults start.
fn client_node(name: &str) -> NodeId {
    node::node(name).build(futures::future::pending::<()>)
}

async fn apply(topo: Rc<Topology>, fault: MediFault) {
    let d = fault.duration();
    let until = d.map(|d| now() + d);
    let running = move || until.is_none_or(|u| now() < u);
    match fault {
        // Schedules are checked against the worker count when they are loaded.
        MediFault::WorkerCrash { worker, .. } => kill_for(topo.workers[worker as usize], d),
        MediFault::RedisDown { .. } => down_for(
            d,
            topo.deps.stores().clone(),
            Stores::redis_down,
            Stores::redis_up,
        ),
        MediFault::DbDown { .. } => down_for(
            d,
            topo.deps.stores().clone(),
            Stores::db_down,
            Stores::db_up,
        ),
        MediFault::CpuSaturation { cores_taken, .. } => {
            for &api in &topo.apis {
                for _ in 0..cores_taken {
                    // A batch job on the same host: it wants a core all the time, in slices.
                    spawn_on_node(api, "competing-load", async move {
                        while running() {
                            compute(Duration::from_millis(50)).await;
                        }
                    })
                    .detach();
                }
            }
        }
        MediFault::SignupFlood { clients, .. } => {
            let flood = topo.floods_started.get();
            topo.floods_started.set(flood + 1);
            for k in 0..clients {
                let topo = Rc::clone(&topo);
                spawn_on_node(topo.flood, "flood-client", async move {
                    let client = format!("flood-{flood}-{k}");
                    let mut n = 0u32;
                    while running() {
                        let call = Call::Signup {
                            email: format!("{client}-{n}@flood.test"),
                            password: format!("pw-{n}"),
                            phone: format!("+4470{k:06}"),
                        };
                        n += 1;
                        let (start, r) =
                            ask(&topo.lb, &client, call, topo.params.user_timeout).await;
                        let o = outcome(&r);
                        topo.flood_signups.record(start, now(), o);
                        if o != RequestOutcome::Ok {
                            // A refused client backs off a little before trying again.
                            sleep(Duration::from_millis(100)).await;
                        }
                    }
                })
                .detach();
            }
        }
        MediFault::MalformedTokenFlood { per_s, .. } => {
            let topo2 = Rc::clone(&topo);
            spawn_on_node(topo.attacker, "attacker", async move {
                let topo = topo2;
                let gap = Duration::from_secs(1) / per_s.max(1);
                let mut n = 0u64;
                while running() {
                    let token = bad_token(n, topo.params.users);
                    n += 1;
                    let topo = Rc::clone(&topo);
                    sim_runtime::spawn_named("attack", async move {
                        let call = Call::Book {
                            token,
                            doctor: 1,
                            starts_at: 0,
                        };
                        let _ = ask(&topo.lb, "attacker", call, topo.params.user_timeout).await;
                    })
                    .detach();
                    sleep(gap).await;
                }
            })
            .detach();
        }
    }
}

/// The attacker's tokens in turn: garbage, a real-looking token with a forged signature,
/// and one whose expiry lies in the past.
fn bad_token(n: u64, users: u32) -> String {
    let user = n % u64::from(users.max(1)) + 1;
    match n % 3 {
        0 => format!("eyJhbGciOiJub25lIn0.{n}"),
        1 => format!("{user}.99999999999.{n:016x}"),
        _ => format!("{user}.1000.{n:016x}"),
    }
}

/// Sends `call` as `client` through the load balancer.
async fn ask(
    lb: &LoadBalancer,
    client: &str,
    call: Call,
    timeout: Duration,
) -> (Instant, Result<ApiResponse, sim_net::RpcError>) {
    let start = now();
    let req = ApiRequest {
        client: client.to_string(),
        call,
    };
    (
        start,
        lb.call::<ApiRequest, ApiResponse>(req, timeout).await,
    )
}

fn outcome(r: &Result<ApiResponse, sim_net::RpcError>) -> RequestOutcome {
    match r {
        Ok(resp) if resp.status() < 300 => RequestOutcome::Ok,
        Ok(ApiResponse::Unavailable) => RequestOutcome::Error,
        Ok(_) => RequestOutcome::Rejected,
        Err(sim_net::RpcError::Timeout) => RequestOutcome::Timeout,
        Err(_) => RequestOutcome::Error,
    }
}

/// What the patients saw, gathered on their node.
#[derive(Default)]
struct Seen {
    jobs_told: Vec<String>,
    workflows: Vec<Instant>,
    timeouts: u64,
}

#[derive(Clone, Default)]
struct Recorders {
    signups: Recorder,
    logins: Recorder,
    bookings: Recorder,
    reads: Recorder,
}

/// One patient, with what they need to reach the API and to note what they saw.
struct Patient {
    i: u32,
    params: Params,
    lb: LoadBalancer,
    rec: Recorders,
    seen: Rc<RefCell<Seen>>,
}

impl Patient {
    async fn ask(&self, rec: &Recorder, call: Call) -> Option<ApiResponse> {
        let client = format!("patient-{}", self.i);
        let (start, r) = ask(&self.lb, &client, call, self.params.user_timeout).await;
        let o = outcome(&r);
        if o == RequestOutcome::Timeout {
            self.seen.borrow_mut().timeouts += 1;
        }
        rec.record(start, now(), o);
        r.ok()
    }

    async fn login(&self, email: &str, password: &str) -> Option<String> {
        let call = Call::Login {
            email: email.to_string(),
            password: password.to_string(),
        };
        match self.ask(&self.rec.logins, call).await? {
            ApiResponse::Token(t) => Some(t),
            _ => None,
        }
    }

    async fn book(&self, token: &str, doctor: i64, starts_at: i64) -> Option<ApiResponse> {
        let call = Call::Book {
            token: token.to_string(),
            doctor,
            starts_at,
        };
        self.ask(&self.rec.bookings, call).await
    }

    /// Sign up, log in, book, read the booking back: the document's workflow. A failed
    /// step ends the workflow (the load test counts it and moves on).
    async fn workflow(&self, k: u32, rng: &mut SimRng) {
        let p = &self.params;
        let email = format!("patient-{}-{k}@medistream.test", self.i);
        let password = format!("secret-{}-{k}", self.i);
        let phone = if rng.chance(p.invalid_phone) {
            format!("{INVALID_PREFIX}{:06}", self.i)
        } else {
            format!("+4477{:06}", self.i)
        };
        let signup = Call::Signup {
            email: email.clone(),
            password: password.clone(),
            phone,
        };
        if self.ask(&self.rec.signups, signup).await != Some(ApiResponse::SignedUp) {
            return;
        }
        let Some(mut token) = self.login(&email, &password).await else {
            return;
        };
        if rng.chance(p.dawdle) {
            // The patient leaves the tab open past the token's expiry.
            sleep(p.token_ttl + Duration::from_secs(1)).await;
        }
        let doctor = rng.below(8) as i64;
        let starts_at = 9 * 60 + 30 * rng.below(16) as i64;
        let mut booked = self.book(&token, doctor, starts_at).await;
        if booked == Some(ApiResponse::Unauthorized) {
            let Some(fresh) = self.login(&email, &password).await else {
                return;
            };
            token = fresh;
            booked = self.book(&token, doctor, starts_at).await;
        }
        let Some(ApiResponse::Booked { appointment, job }) = booked else {
            return;
        };
        {
            let mut seen = self.seen.borrow_mut();
            seen.workflows.push(now());
            seen.jobs_told.extend(job);
        }
        let read = Call::Read { token, appointment };
        let _ = self.ask(&self.rec.reads, read).await;
    }

    async fn run(self, mut rng: SimRng) {
        let mut k = 0;
        loop {
            self.workflow(k, &mut rng).await;
            k += 1;
            match self.params.load_for {
                Some(t) if now() < Instant::START + t => {
                    let mean = self.params.think_time_mean.as_secs_f64();
                    sleep(Duration::from_secs_f64(
                        rng.exponential(mean).min(5.0 * mean),
                    ))
                    .await;
                }
                _ => return,
            }
        }
    }
}

/// The fault windows of one kind in `schedule`.
fn windows(schedule: &FaultSchedule<MediFault>, kind: fn(&MediFault) -> bool) -> Vec<Window> {
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

async fn main_flow(
    variant: Variant,
    params: Params,
    schedule: FaultSchedule<MediFault>,
) -> RunData {
    let access = trace::capture::<Access>();
    let downstream = trace::capture::<Downstream>();
    let transitions = trace::capture::<JobTransition>();
    let deps = deps::start(&params).await;
    let apis = start_apis(variant, params, &deps);
    let workers = start_workers(variant, params, &deps);
    let addrs = workload::listening(&apis, API_PORT).await;
    let lb = LoadBalancer::new(addrs, Duration::from_secs(5));
    let topo = Rc::new(Topology {
        deps,
        params,
        apis,
        workers,
        flood: client_node("flood"),
        attacker: client_node("attacker"),
        lb: lb.clone(),
        flood_signups: Recorder::default(),
        floods_started: Cell::new(0),
    });
    let heal = healed_at(&schedule);
    let t = Rc::clone(&topo);
    schedule.install(move |f| apply(Rc::clone(&t), f)).detach();

    let inspector = JobQueue::new(topo.deps.redis(params.redis_timeout));
    let depth = Rc::new(RefCell::new(Vec::new()));
    if params.load_for.is_some() {
        let (q, depth) = (inspector.clone(), Rc::clone(&depth));
        sim_runtime::spawn_named("queue-depth", async move {
            loop {
                if let Ok(d) = q.depth().await {
                    depth.borrow_mut().push(sample_of(d));
                }
                sleep(Duration::from_secs(5)).await;
            }
        })
        .detach();
    }

    let rec = Recorders::default();
    let seen = Rc::new(RefCell::new(Seen::default()));
    let config = WorkloadConfig::arrivals(params.users, params.spawn_rate_per_s);
    let (r, s) = (rec.clone(), Rc::clone(&seen));
    let users_done = workload::start_users_node(config, move |i, streams| {
        let patient = Patient {
            i,
            params,
            lb: lb.clone(),
            rec: r.clone(),
            seen: Rc::clone(&s),
        };
        patient.run(streams.user(i))
    });
    let _ = users_done.await;
    time::sleep_until(heal).await;

    // Let the queue drain: retries come due and abandoned leases run out.
    let deadline = now() + params.drain_max;
    while now() < deadline {
        if inspector.depth().await.is_ok_and(|d| d.is_empty()) {
            break;
        }
        sleep(Duration::from_millis(250)).await;
    }
    let queue = loop {
        match inspector.state().await {
            Ok(q) => break q,
            Err(_) => sleep(Duration::from_millis(100)).await,
        }
    };

    let seen = seen.take();
    let mut downstream: Vec<u64> = downstream
        .take()
        .into_iter()
        .map(|d| d.event.request)
        .collect();
    downstream.sort_unstable();
    let observations = Observations {
        jobs_told: seen.jobs_told,
        queue,
        sms: topo.deps.sms().records(),
        access: access
            .take()
            .into_iter()
            .map(|a| AccessSeen {
                request: a.event.request,
                client: a.event.client,
                endpoint: a.event.endpoint.to_string(),
                status: a.event.status,
                received: Instant::START + Duration::from_micros(a.event.received_us),
            })
            .collect(),
        downstream,
        bookings: rec.bookings.samples(),
        reads: rec.reads.samples(),
        timeouts: seen.timeouts,
        floods: windows(&schedule, |f| matches!(f, MediFault::SignupFlood { .. })),
        redis_outages: windows(&schedule, |f| matches!(f, MediFault::RedisDown { .. })),
        db_outages: windows(&schedule, |f| matches!(f, MediFault::DbDown { .. })),
        worker_kills: schedule
            .iter()
            .filter(|f| matches!(f.fault, MediFault::WorkerCrash { .. }))
            .count() as u32,
        rate_limit: params.rate_limit,
        rate_window: params.rate_window,
        attempts_max: params.retry.attempts_max.unwrap_or(u32::MAX),
        booking_p95_bound: params.booking_p95_bound,
    };
    let jobs = transitions
        .take()
        .into_iter()
        .map(|t| JobChange {
            at_ms: t.time.elapsed_since_start().as_millis() as u64,
            worker: t.node.name(),
            job: t.event.job,
            to: t.event.to,
            attempt: t.event.attempt,
        })
        .collect();
    let depth = depth.borrow().clone();
    RunData {
        observations,
        signups: rec.signups.samples(),
        logins: rec.logins.samples(),
        flood_signups: topo.flood_signups.samples(),
        workflows: seen.workflows,
        depth,
        jobs,
        end: now(),
    }
}

fn sample_of(d: Depth) -> DepthSample {
    DepthSample {
        at_ms: now().elapsed_since_start().as_millis() as u64,
        pending: d.pending,
        active: d.active,
        retry: d.retry,
    }
}
