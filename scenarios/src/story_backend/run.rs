//! One seeded run of the story backend: start PostgreSQL and Redis, the API instances
//! (each with its cores and memory budget, restarted by an orchestrator when killed) and
//! a health monitor; fire the fault schedule; run the users; once they are done and every
//! fault has healed, wait until a read and a write succeed again, then read the database
//! back for the checkers.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde::Serialize;
use sim_net::Addr;
use sim_runtime::node::{compute, reserve_memory, spawn_on_node};
use sim_runtime::schedule::FaultSchedule;
use sim_runtime::time::{self, now, sleep, Duration, Instant};
use sim_runtime::trace::{self, TraceEvent};
use sim_runtime::{node, NodeId, SimRng};

use super::checkers::{AccessSeen, Acked, Observations, Probe, Window};
use super::deps::{self, DbCall, Deps, NewWrite, AUTHORS};
use super::faults::StoryFault;
use super::service::{Access, Api, ApiRequest, ApiResponse, Call, API_PORT};
use super::{Params, Variant};
use crate::deps::until_ok;
use crate::inject::{healed_at, revert_after, slow_links_for, Windowed};
use crate::metrics::{self, RequestOutcome, Sample};
use crate::patterns::{CircuitBreaker, LoadBalancer};
use crate::scenario::{Flow, RunBound};
use crate::workload::{self, WorkloadConfig};

/// What the main task hands back.
#[derive(Clone, Debug)]
pub struct RunData {
    pub observations: Observations,
    /// Every user request, by endpoint.
    pub requests: Vec<UserRequest>,
    /// What each instance's metrics exporter reported, when.
    pub gauges: Vec<(Instant, Gauges)>,
    /// When each database attempt started (the flusher's included).
    pub db_call_times: Vec<Instant>,
    /// When the orchestrator found an API instance dead.
    pub restarts: Vec<Restart>,
    pub end: Instant,
}

/// One user request as the user saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserRequest {
    pub endpoint: &'static str,
    pub sample: Sample,
}

/// An instance's gauges at one moment, as its metrics exporter reports them every
/// second (`story.gauges`): the connection pool, the process's memory, its CPU time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, TraceEvent)]
#[trace_event(name = "story.gauges")]
pub struct Gauges {
    pub instance: u32,
    pub pool_in_use: u32,
    pub pool_waiting: u32,
    pub memory_bytes: u64,
    /// CPU time used on the instance's host since it started (competing load included).
    pub cpu_busy_us: u64,
}

/// An API instance found dead and restarted (`story.restart`), as the orchestrator's
/// event log records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, TraceEvent)]
#[trace_event(name = "story.restart")]
pub struct Restart {
    pub instance: u32,
    pub found_dead_ms: u64,
}

/// Metrics for `sim run` and the report.
#[derive(Clone, Debug, Serialize)]
pub struct RunMetrics {
    pub all: metrics::Summary,
    pub read: metrics::Summary,
    pub write: metrics::Summary,
    /// Reads answered from the cache, in percent of reads answered by the API.
    pub cache_hit_pct: f64,
    /// Database attempts made for requests, and per request answered.
    pub db_calls: u64,
    pub db_calls_per_request: f64,
    pub acked_writes: u64,
    pub lost_writes: u64,
    pub restarts: u64,
    pub health_503: u64,
    pub recovered_after_ms: Option<u64>,
}

/// Cache hits among the reads of `access`, in percent.
pub fn cache_hit_pct<'a>(access: impl IntoIterator<Item = &'a AccessSeen>) -> f64 {
    let (mut reads, mut hits) = (0u64, 0u64);
    for a in access.into_iter().filter(|a| a.endpoint == "read") {
        reads += 1;
        hits += u64::from(a.cache == "hit");
    }
    if reads == 0 {
        0.0
    } else {
        100.0 * hits as f64 / reads as f64
    }
}

pub fn metrics_of(d: &RunData) -> RunMetrics {
    let o = &d.observations;
    let span = d.end.elapsed_since_start();
    let of = |read: bool| {
        d.requests
            .iter()
            .filter(move |r| (r.endpoint == "read") == read)
            .map(|r| &r.sample)
    };
    let all: Vec<Sample> = d.requests.iter().map(|r| r.sample).collect();
    let db_calls = o.db_calls.iter().filter(|&&r| r != 0).count() as u64;
    RunMetrics {
        all: metrics::summarise(&all, span),
        read: metrics::summarise(of(true), span),
        write: metrics::summarise(of(false), span),
        cache_hit_pct: cache_hit_pct(&o.access),
        db_calls,
        db_calls_per_request: db_calls as f64 / o.access.len().max(1) as f64,
        acked_writes: o.acked.len() as u64,
        lost_writes: o
            .acked
            .iter()
            .filter(|a| !o.stored.contains(&a.uid))
            .count() as u64,
        restarts: d.restarts.len() as u64,
        health_503: o.probes.iter().filter(|p| p.status == Some(503)).count() as u64,
        recovered_after_ms: o.recovered_after.map(|d| d.as_millis() as u64),
    }
}

/// A run is bounded by the last user's arrival, the load's length and a request that
/// waits out the user's timeout, the last heal, and the recovery and flush bounds.
impl Flow for Params {
    type Variant = Variant;
    type Fault = StoryFault;
    type Data = RunData;

    fn bound(&self) -> RunBound {
        RunBound {
            users: self.users,
            spawn_rate_per_s: self.spawn_rate_per_s,
            per_user: self.load_for + self.user_timeout * 2,
            settle: self.recovery_max + self.request_timeout * 2 + self.flush_every * 8,
        }
    }

    fn main_flow(
        self,
        variant: Variant,
        schedule: FaultSchedule<StoryFault>,
    ) -> impl std::future::Future<Output = RunData> + 'static {
        main_flow(variant, self, schedule)
    }
}

struct Topology {
    deps: Deps,
    params: Params,
    apis: Vec<NodeId>,
    /// Outages of the database and of Redis in force: overlapping outages of one store
    /// are one outage, which ends when the last of them does (without the count, the
    /// first to end would bring the store back inside the other's window).
    db_outages: Cell<u32>,
    redis_outages: Cell<u32>,
}

/// Counts an outage in; whether it is the first (the store goes down now).
fn outage_starts(count: &Cell<u32>) -> bool {
    count.set(count.get() + 1);
    count.get() == 1
}

/// Counts an outage out; whether it was the last (the store comes back now).
fn outage_ends(count: &Cell<u32>) -> bool {
    count.set(count.get() - 1);
    count.get() == 0
}

fn start_apis(variant: Variant, params: Params, deps: &Deps) -> Vec<NodeId> {
    (0..params.api_instances)
        .map(|i| {
            let deps = deps.clone();
            node::node(format!("api-{i}"))
                .cores(params.api_cores as usize)
                .memory_budget(params.memory_budget)
                .build(move || {
                    let deps = deps.clone();
                    async move {
                        let base_memory = reserve_memory(params.memory_base).await;
                        // Made on the instance's own node, so that each life of each
                        // instance draws its own jitter.
                        let api = Rc::new(Api {
                            instance: i,
                            variant,
                            params,
                            db: deps.db(&params, variant != Variant::NoPoolTimeout),
                            health: deps.health(params.health_timeout),
                            cache: deps.cache(params.redis_timeout, params.cache_ttl),
                            limiter: deps.rate_limit(
                                params.redis_timeout,
                                params.rate_limit,
                                params.rate_window,
                            ),
                            write_behind: deps.write_behind(params.redis_timeout),
                            breaker: CircuitBreaker::new("db", params.breaker),
                            rng: RefCell::new(sim_runtime::rng("retry")),
                            requests: Cell::new(0),
                            base_memory,
                        });
                        if variant == Variant::WriteBehindCache {
                            let flusher = Rc::clone(&api);
                            sim_runtime::spawn_named("flusher", flusher.flush_forever()).detach();
                        }
                        let db = api.db.clone();
                        sim_runtime::spawn_named("metrics-exporter", async move {
                            let here = node::current();
                            loop {
                                let s = db.status();
                                trace::emit(&Gauges {
                                    instance: i,
                                    pool_in_use: (s.open - s.idle) as u32,
                                    pool_waiting: s.waiting as u32,
                                    memory_bytes: node::memory_used(here),
                                    cpu_busy_us: node::cpu_busy(here).as_micros() as u64,
                                });
                                sleep(Duration::from_secs(1)).await;
                            }
                        })
                        .detach();
                        workload::serve(API_PORT, api, |api, req: ApiRequest| async move {
                            api.handle(req).await
                        })
                        .await;
                    }
                })
        })
        .collect()
}

/// The orchestrator: restarts an API instance `delay` after it is found dead (the
/// container's restart policy), until `stop`.
async fn supervise(apis: Vec<NodeId>, delay: Duration, stop: Rc<Cell<bool>>) {
    // The life each restart was scheduled for: a life killed again before this loop saw
    // it alive is a new death, and gets a restart of its own.
    let mut scheduled: Vec<Option<u32>> = vec![None; apis.len()];
    while !stop.get() {
        for (i, &api) in apis.iter().enumerate() {
            let life = api.incarnation();
            if !api.is_alive() && scheduled[i] != Some(life) {
                scheduled[i] = Some(life);
                trace::emit(&Restart {
                    instance: i as u32,
                    found_dead_ms: now().elapsed_since_start().as_millis() as u64,
                });
                sim_runtime::spawn_named("restart", async move {
                    sleep(delay).await;
                    api.restart();
                })
                .detach();
            }
        }
        sleep(Duration::from_millis(250)).await;
    }
}

async fn apply(topo: Rc<Topology>, fault: StoryFault) {
    let d = fault.duration();
    let until = now() + d.unwrap_or_default();
    match fault {
        StoryFault::DbDown { .. } => {
            if outage_starts(&topo.db_outages) {
                topo.deps.stores().db_down();
            }
            let t = Rc::clone(&topo);
            revert_after(d, move || {
                if outage_ends(&t.db_outages) {
                    t.deps.stores().db_up();
                }
            });
        }
        StoryFault::RedisDown { .. } => {
            if outage_starts(&topo.redis_outages) {
                topo.deps.stores().redis_down();
            }
            let t = Rc::clone(&topo);
            revert_after(d, move || {
                if outage_ends(&t.redis_outages) {
                    t.deps.stores().redis_up();
                }
            });
        }
        StoryFault::LatencySpike { extra_ms, .. } => {
            let (db, redis) = (topo.deps.db_node(), topo.deps.redis_node());
            let links = topo
                .apis
                .iter()
                .flat_map(|&api| [(db, api), (api, db), (redis, api), (api, redis)]);
            slow_links_for(links.collect(), Duration::from_millis(extra_ms), d);
        }
        StoryFault::SlowQueries { extra_ms, .. } => {
            topo.deps.queries_slow(Duration::from_millis(extra_ms));
            let deps = topo.deps.clone();
            revert_after(d, move || deps.queries_fast());
        }
        StoryFault::MemoryPressure {
            instance, percent, ..
        } => {
            // Schedules are checked against the instance count when they are loaded.
            let api = topo.apis[instance as usize];
            let bytes = topo.params.memory_budget / 100 * u64::from(percent);
            // The other process outlives the API's restarts: each new life meets it.
            let mut pressed = None;
            while now() < until {
                if api.is_alive() && pressed != Some(api.incarnation()) {
                    pressed = Some(api.incarnation());
                    spawn_on_node(api, "stress-vm", async move {
                        let _held = reserve_memory(bytes).await;
                        time::sleep_until(until).await;
                    })
                    .detach();
                }
                sleep(Duration::from_millis(100)).await;
            }
        }
        StoryFault::CpuSaturation { cores_taken, .. } => {
            for &api in &topo.apis {
                for _ in 0..cores_taken {
                    // A batch job on the same host: it wants a core all the time, in slices.
                    spawn_on_node(api, "competing-load", async move {
                        while now() < until {
                            compute(Duration::from_millis(50)).await;
                        }
                    })
                    .detach();
                }
            }
        }
    }
}

fn outcome(r: &Result<ApiResponse, sim_net::RpcError>) -> RequestOutcome {
    match r {
        Ok(resp) if resp.status() < 300 => RequestOutcome::Ok,
        Ok(resp) if resp.status() < 500 => RequestOutcome::Rejected,
        Ok(_) => RequestOutcome::Error,
        Err(sim_net::RpcError::Timeout) => RequestOutcome::Timeout,
        Err(_) => RequestOutcome::Error,
    }
}

/// What the users saw, gathered on their node.
#[derive(Default)]
struct Seen {
    requests: Vec<UserRequest>,
    acked: Vec<Acked>,
}

/// One user: reads stories, posts stories and comments, until the load ends.
struct User {
    i: u32,
    params: Params,
    lb: LoadBalancer,
    seen: Rc<RefCell<Seen>>,
}

impl User {
    fn next_call(&self, k: u32, rng: &mut SimRng) -> Call {
        let p = &self.params;
        let story = rng.range_inclusive(1, u64::from(p.stories_seeded.max(1))) as i64;
        let author = rng.range_inclusive(1, u64::from(AUTHORS)) as i64;
        if rng.chance(p.read_share) {
            Call::GetStory { id: story }
        } else if rng.chance(p.comment_share) {
            Call::Post(NewWrite::Comment {
                uid: format!("c-{}-{k}", self.i),
                story,
                author,
                body: format!("comment {k} of user {}", self.i),
            })
        } else {
            Call::Post(NewWrite::Story {
                uid: format!("s-{}-{k}", self.i),
                author,
                title: format!("Story {k} of user {}", self.i),
                body: format!("A story told by user {}", self.i),
            })
        }
    }

    async fn run(self, mut rng: SimRng) {
        let end = Instant::START + self.params.load_for;
        let mut k = 0;
        loop {
            let call = self.next_call(k, &mut rng);
            k += 1;
            let endpoint = call.endpoint();
            let uid = match &call {
                Call::Post(w) => Some(w.uid().to_string()),
                _ => None,
            };
            let start = now();
            let req = ApiRequest {
                client: format!("user-{}", self.i),
                call,
            };
            let r = self
                .lb
                .call::<ApiRequest, ApiResponse>(req, self.params.user_timeout)
                .await;
            {
                let mut seen = self.seen.borrow_mut();
                seen.requests.push(UserRequest {
                    endpoint,
                    sample: Sample {
                        start,
                        latency: now() - start,
                        outcome: outcome(&r),
                    },
                });
                if let (Ok(ApiResponse::Created), Some(uid)) = (&r, uid) {
                    seen.acked.push(Acked { uid, at: now() });
                }
            }
            if now() >= end {
                return;
            }
            let mean = self.params.think_time_mean.as_secs_f64();
            sleep(Duration::from_secs_f64(
                rng.exponential(mean).min(5.0 * mean),
            ))
            .await;
        }
    }
}

/// The health monitor: probes every instance's health endpoint directly (as a load
/// balancer's active check does) every `every`, until `stop`.
fn start_monitor(
    addrs: Vec<Addr>,
    every: Duration,
    stop: Rc<Cell<bool>>,
    probes: Rc<RefCell<Vec<Probe>>>,
) -> NodeId {
    node::node("monitor").build(move || {
        let (addrs, stop, probes) = (addrs.clone(), Rc::clone(&stop), Rc::clone(&probes));
        async move {
            while !stop.get() {
                for (i, &addr) in addrs.iter().enumerate() {
                    let probes = Rc::clone(&probes);
                    sim_runtime::spawn_named("probe", async move {
                        let at = now();
                        let req = ApiRequest {
                            client: "monitor".into(),
                            call: Call::Health,
                        };
                        let r = sim_net::call::<ApiRequest, ApiResponse>(
                            addr,
                            req,
                            Duration::from_secs(1),
                        )
                        .await;
                        probes.borrow_mut().push(Probe {
                            instance: i as u32,
                            at,
                            status: r.ok().map(|resp| resp.status()),
                        });
                    })
                    .detach();
                }
                sleep(every).await;
            }
        }
    })
}

/// Once every fault has healed: a read and a write through the load balancer until both
/// succeed, at most `max`; how long that took, and the write if it was acknowledged.
async fn recovery(lb: &LoadBalancer, params: &Params) -> (Option<Duration>, Vec<Acked>) {
    let start = now();
    let mut acked = Vec::new();
    let mut n = 0;
    while now() - start <= params.recovery_max {
        let read = ApiRequest {
            client: "prober".into(),
            call: Call::GetStory { id: 1 },
        };
        let uid = format!("probe-{n}");
        n += 1;
        let write = ApiRequest {
            client: "prober".into(),
            call: Call::Post(NewWrite::Story {
                uid: uid.clone(),
                author: 1,
                title: "probe".into(),
                body: "after the heal".into(),
            }),
        };
        let timeout = params.user_timeout;
        let read_ok = matches!(
            lb.call::<ApiRequest, ApiResponse>(read, timeout).await,
            Ok(ApiResponse::Story(_))
        );
        let write_ok = matches!(
            lb.call::<ApiRequest, ApiResponse>(write, timeout).await,
            Ok(ApiResponse::Created)
        );
        if write_ok {
            acked.push(Acked { uid, at: now() });
        }
        if read_ok && write_ok {
            return (Some(now() - start), acked);
        }
        sleep(Duration::from_millis(250)).await;
    }
    (None, acked)
}

/// The fault windows `kind` selects, each extended past its end by what it leaves
/// behind (statements slowed within the window finish later).
fn windows(schedule: &FaultSchedule<StoryFault>, kind: fn(&StoryFault) -> bool) -> Vec<Window> {
    schedule
        .iter()
        .filter(|f| kind(&f.fault))
        .map(|f| {
            let lingers = match f.fault {
                StoryFault::SlowQueries { extra_ms, .. } => Duration::from_millis(extra_ms),
                _ => Duration::ZERO,
            };
            Window {
                from: f.at(),
                to: f.at() + f.fault.duration().unwrap_or_default() + lingers,
            }
        })
        .collect()
}

async fn main_flow(
    variant: Variant,
    params: Params,
    schedule: FaultSchedule<StoryFault>,
) -> RunData {
    let access = trace::capture::<Access>();
    let db_calls = trace::capture::<DbCall>();
    let gauges = trace::capture::<Gauges>();
    let restarts = trace::capture::<Restart>();
    let deps = deps::start(&params).await;
    let apis = start_apis(variant, params, &deps);
    let addrs = workload::listening(&apis, API_PORT).await;
    let lb = LoadBalancer::new(addrs.clone(), Duration::from_secs(1));
    let stop = Rc::new(Cell::new(false));
    sim_runtime::spawn_named(
        "orchestrator",
        supervise(apis.clone(), params.restart_delay, Rc::clone(&stop)),
    )
    .detach();
    let probes = Rc::new(RefCell::new(Vec::new()));
    start_monitor(
        addrs,
        params.health_every,
        Rc::clone(&stop),
        Rc::clone(&probes),
    );
    let topo = Rc::new(Topology {
        deps,
        params,
        apis,
        db_outages: Cell::new(0),
        redis_outages: Cell::new(0),
    });
    let heal = healed_at(&schedule);
    let t = Rc::clone(&topo);
    schedule.install(move |f| apply(Rc::clone(&t), f)).detach();

    let seen = Rc::new(RefCell::new(Seen::default()));
    let config = WorkloadConfig::arrivals(params.users, params.spawn_rate_per_s);
    let (s, users_lb) = (Rc::clone(&seen), lb.clone());
    let users_done = workload::start_users_node(config, move |i, streams| {
        let user = User {
            i,
            params,
            lb: users_lb.clone(),
            seen: Rc::clone(&s),
        };
        user.run(streams.user(i))
    });
    let _ = users_done.await;
    // Slowed statements outlive their window: the heal is when the last one is done.
    let lingering = windows(&schedule, |_| true)
        .iter()
        .map(|w| w.to)
        .max()
        .unwrap_or(heal);
    time::sleep_until(heal.max(lingering)).await;
    let (recovered_after, probe_writes) = recovery(&lb, &params).await;
    // The write-behind variant's flushers get a few rounds to empty their list.
    sleep(params.flush_every * 4).await;
    let (stories, comments) = until_ok(|| topo.deps.stored_uids()).await;
    stop.set(true);

    let mut seen = seen.take();
    seen.acked.extend(probe_writes);
    let db_calls = db_calls.take();
    let db_call_times = db_calls.iter().map(|c| c.time).collect();
    let mut db_calls: Vec<u64> = db_calls.into_iter().map(|c| c.event.request).collect();
    db_calls.sort_unstable();
    let p = &params;
    let observations = Observations {
        acked: seen.acked,
        stored: stories.into_iter().chain(comments).collect(),
        access: access
            .take()
            .into_iter()
            .map(|a| AccessSeen {
                request: a.event.request,
                instance: a.event.instance,
                endpoint: a.event.endpoint.to_string(),
                status: a.event.status,
                cache: a.event.cache.to_string(),
                received: Instant::START + Duration::from_micros(a.event.received_us),
                took: Duration::from_micros(a.event.took_us),
            })
            .collect(),
        db_calls,
        probes: probes.take(),
        faults: windows(&schedule, |_| true),
        db_down: windows(&schedule, |f| matches!(f, StoryFault::DbDown { .. })),
        db_trouble: windows(&schedule, StoryFault::troubles_db),
        redis_down: windows(&schedule, |f| matches!(f, StoryFault::RedisDown { .. })),
        recovered_after,
        recovery_max: p.recovery_max,
        latency_bound: p.request_timeout,
        attempts_max: p.retry.attempts_max.unwrap_or(u32::MAX),
        health_grace: p.health_timeout * 2,
        db_grace: p.breaker.open_duration + p.retry_budget + p.acquire_timeout,
    };
    RunData {
        observations,
        requests: seen.requests,
        gauges: gauges
            .take()
            .into_iter()
            .map(|g| (g.time, g.event))
            .collect(),
        db_call_times,
        restarts: restarts.take().into_iter().map(|r| r.event).collect(),
        end: now(),
    }
}
