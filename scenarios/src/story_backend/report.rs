//! The story backend's report: the document's six "Results" tables and its RTO and RPO
//! tables, every TBD replaced by an exact number from simulation. Each scenario runs the
//! document's load (100 users, or 50 for slow queries, spawning 10 a second) through
//! [`BASELINE`] of baseline, the fault for [`FAULT_FOR`] and [`AFTER`] after it: the
//! document's 2 to 5 minutes of fault are shortened because every measure reaches its
//! steady state within seconds (the slowest, slow queries, cycles its 10 s statements six
//! times), and a report that takes minutes would not be run in CI. The buggy variants run
//! beside the scenario that exposes them, at its load: fewer users would not fill the
//! pool for the retry storm, nor leave writes parked in Redis when it crashes.
//!
//! RTO is the virtual time from a fault's end to the start of the first window of
//! [`RTO_WINDOW`] consecutive seconds, each at the baseline's success rate or better; RPO
//! is the acknowledged writes the database does not hold at the end. Both are one table
//! over every scenario, with the write-behind variant's row under the Redis failure.
//! `sim report story-backend --html` draws each scenario over time (requests, latency,
//! errors and database calls per second), with the buggy variant it exposes beside it.

use serde_json::json;
use sim_runtime::schedule::FaultSchedule;
use sim_runtime::time::{Duration, Instant};

use super::checkers::{self, Window};
use super::faults::StoryFault;
use super::run::{metrics_of, RunData};
use super::{Options, Params, Variant};
use crate::metrics::{self, Sample};
use crate::report::{
    ms, pct, schedule_windows, verdicts_cell, ChaosPlot, ReportError, ScenarioReport, Section,
    Table,
};
use crate::scenario::{simulate_flow, ServiceVariant};

/// Consecutive seconds at the baseline's success rate that count as recovered.
pub const RTO_WINDOW: u32 = 3;

/// When the faults strike: after the users have arrived and the cache is warm.
pub const BASELINE: Duration = Duration::from_secs(30);

/// The start of the run left out of the baseline, while users still arrive and the cache
/// fills.
pub const WARM_UP: Duration = Duration::from_secs(10);

/// How long each fault lasts.
pub const FAULT_FOR: Duration = Duration::from_secs(60);

/// How long the load goes on after a fault ends.
pub const AFTER: Duration = Duration::from_secs(30);

/// One of the document's scenarios: its heading, the fault as the document sets it up
/// (for [`FAULT_FOR`] rather than the document's `doc_minutes`), and its load.
pub struct DocScenario {
    pub heading: &'static str,
    pub fault: StoryFault,
    pub users: u32,
    pub doc_minutes: u64,
    /// The document's RTO target for this kind of failure, if it sets one.
    pub rto_target: Option<Duration>,
}

/// The document's six scenarios, each as its "Test Setup" describes it.
pub fn doc_scenarios() -> Vec<DocScenario> {
    let for_ms = FAULT_FOR.as_millis() as u64;
    let min = |m: u64| Some(Duration::from_secs(m * 60));
    vec![
        DocScenario {
            heading: "1. Database connection failure",
            fault: StoryFault::DbDown { for_ms },
            users: 100,
            doc_minutes: 2,
            rto_target: min(5),
        },
        DocScenario {
            heading: "2. Cache (Redis) failure",
            fault: StoryFault::RedisDown { for_ms },
            users: 100,
            doc_minutes: 2,
            rto_target: min(1),
        },
        DocScenario {
            heading: "3. Network latency spike (500 ms)",
            fault: StoryFault::LatencySpike {
                extra_ms: 500,
                for_ms,
            },
            users: 100,
            doc_minutes: 3,
            rto_target: min(5),
        },
        DocScenario {
            heading: "4. Slow queries (10 s)",
            fault: StoryFault::SlowQueries {
                extra_ms: 10_000,
                for_ms,
            },
            users: 50,
            doc_minutes: 5,
            rto_target: None,
        },
        DocScenario {
            heading: "5. Memory pressure (80 %)",
            fault: StoryFault::MemoryPressure {
                instance: 0,
                percent: 80,
                for_ms,
            },
            users: 100,
            doc_minutes: 3,
            rto_target: min(2),
        },
        DocScenario {
            heading: "6. CPU saturation",
            fault: StoryFault::CpuSaturation {
                cores_taken: 1,
                for_ms,
            },
            users: 100,
            doc_minutes: 3,
            rto_target: None,
        },
    ]
}

/// The document's load around `fault`: `users` spawning 10 a second, each sending a
/// request a second on average, through the baseline, the fault and the time after.
pub fn doc_params(options: &Options, fault: &StoryFault, users: u32) -> Params {
    Params {
        users,
        spawn_rate_per_s: 10.0,
        load_for: BASELINE + fault_window(fault) + AFTER,
        ..options.params()
    }
}

fn run(
    seed: u64,
    variant: Variant,
    params: Params,
    fault: &StoryFault,
) -> Result<RunData, ReportError> {
    let schedule = FaultSchedule::new().at(BASELINE, fault.clone());
    let (report, data) = simulate_flow(seed, variant, params, schedule, None);
    data.ok_or_else(|| ReportError {
        run: format!("{} under {}", variant.name(), fault.kind()),
        outcome: report.outcome.to_string(),
    })
}

/// One phase of a run: the requests that started in `[from, to)`.
struct Phase {
    from: Instant,
    to: Instant,
}

impl Phase {
    fn contains(&self, t: Instant) -> bool {
        self.from <= t && t < self.to
    }

    fn span(&self) -> Duration {
        self.to.duration_since(self.from)
    }
}

/// What one phase measured: the table's column.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PhaseFigures {
    pub requests: metrics::Summary,
    pub db_calls_per_s: f64,
    pub cache_hit_pct: f64,
    pub pool_in_use_pct: f64,
    pub pool_waiting_max: u32,
    pub memory_max_pct: f64,
    pub cpu_pct: f64,
    pub status_503: u64,
    pub status_500: u64,
    pub status_429: u64,
    pub oom_restarts: u64,
}

fn figures(d: &RunData, params: &Params, phase: &Phase) -> PhaseFigures {
    let o = &d.observations;
    let samples: Vec<&Sample> = d
        .requests
        .iter()
        .map(|r| &r.sample)
        .filter(|s| phase.contains(s.start))
        .collect();
    let access: Vec<_> = o
        .access
        .iter()
        .filter(|a| phase.contains(a.received))
        .collect();
    let gauges: Vec<_> = d
        .gauges
        .iter()
        .filter(|(t, _)| phase.contains(*t))
        .collect();
    let secs = phase.span().as_secs_f64().max(1e-9);
    let pool_size = params.pool_size.max(1) as f64;
    let pool_in_use_pct = if gauges.is_empty() {
        0.0
    } else {
        100.0
            * gauges
                .iter()
                .map(|(_, g)| f64::from(g.pool_in_use))
                .sum::<f64>()
            / (gauges.len() as f64 * pool_size)
    };
    // CPU: each instance's CPU time over the phase, against its cores' time.
    let mut cpu_used = 0.0;
    for i in 0..params.api_instances {
        let mine: Vec<_> = gauges.iter().filter(|(_, g)| g.instance == i).collect();
        if let (Some((t0, first)), Some((t1, last))) = (mine.first(), mine.last()) {
            let span = t1.duration_since(*t0).as_secs_f64();
            if span > 0.0 {
                let busy = last.cpu_busy_us.saturating_sub(first.cpu_busy_us) as f64 / 1e6;
                cpu_used += busy / (span * f64::from(params.api_cores));
            }
        }
    }
    PhaseFigures {
        requests: metrics::summarise(samples, phase.span()),
        db_calls_per_s: d
            .db_call_times
            .iter()
            .filter(|t| phase.contains(**t))
            .count() as f64
            / secs,
        cache_hit_pct: super::run::cache_hit_pct(access.iter().copied()),
        pool_in_use_pct,
        pool_waiting_max: gauges
            .iter()
            .map(|(_, g)| g.pool_waiting)
            .max()
            .unwrap_or(0),
        memory_max_pct: gauges
            .iter()
            .map(|(_, g)| 100.0 * g.memory_bytes as f64 / params.memory_budget as f64)
            .fold(0.0, f64::max),
        cpu_pct: 100.0 * cpu_used / f64::from(params.api_instances.max(1)),
        status_503: access.iter().filter(|a| a.status == 503).count() as u64,
        status_500: access.iter().filter(|a| a.status == 500).count() as u64,
        status_429: access.iter().filter(|a| a.status == 429).count() as u64,
        oom_restarts: d
            .restarts
            .iter()
            .filter(|r| phase.contains(Instant::START + Duration::from_millis(r.found_dead_ms)))
            .count() as u64,
    }
}

/// Success (an answer that is not a server error or a timeout) per second of requests
/// started in `[from, from + secs)`.
fn success_by_second(samples: &[&Sample], from: Instant, secs: u64) -> Vec<Option<f64>> {
    let mut counts = vec![(0u64, 0u64); secs as usize];
    for s in samples {
        if s.start < from {
            continue;
        }
        let k = s.start.duration_since(from).as_secs();
        if let Some(c) = counts.get_mut(k as usize) {
            c.0 += 1;
            c.1 += u64::from(s.outcome.is_available());
        }
    }
    counts
        .into_iter()
        .map(|(n, ok)| (n > 0).then(|| ok as f64 / n as f64))
        .collect()
}

/// The RTO: from `fault_end`, the start of the first [`RTO_WINDOW`] seconds each at the
/// baseline's success rate or better; `None` when no such window came before the load
/// ended.
pub fn rto(
    samples: &[&Sample],
    baseline: Window,
    fault_end: Instant,
    until: Instant,
) -> Option<Duration> {
    let base: Vec<&Sample> = samples
        .iter()
        .copied()
        .filter(|s| baseline.contains(s.start))
        .collect();
    let ok = base.iter().filter(|s| s.outcome.is_available()).count();
    let rate = ok as f64 / base.len().max(1) as f64;
    let secs = until.duration_since(fault_end).as_secs();
    let by_second = success_by_second(samples, fault_end, secs);
    let window = RTO_WINDOW as usize;
    (0..by_second.len().saturating_sub(window - 1))
        .find(|&k| {
            by_second[k..k + window]
                .iter()
                .all(|r| r.is_some_and(|r| r >= rate))
        })
        .map(|k| Duration::from_secs(k as u64))
}

fn secs(d: Option<Duration>) -> String {
    match d {
        Some(d) => format!("{} s", d.as_secs()),
        None => "not recovered".into(),
    }
}

/// A scenario's run, measured: the phases' figures and its RTO.
struct Measured {
    data: RunData,
    phases: [PhaseFigures; 3],
    rto: Option<Duration>,
}

fn measure(d: RunData, params: &Params, fault: &StoryFault) -> Measured {
    let start = Instant::START + BASELINE;
    let end = start + fault_window(fault);
    let load_end = Instant::START + params.load_for;
    let warm = Instant::START + WARM_UP;
    let phases = [
        Phase {
            from: warm,
            to: start,
        },
        Phase {
            from: start,
            to: end,
        },
        Phase {
            from: end,
            to: load_end,
        },
    ];
    let samples: Vec<&Sample> = d.requests.iter().map(|r| &r.sample).collect();
    let rto = rto(
        &samples,
        Window {
            from: warm,
            to: start,
        },
        end,
        load_end,
    );
    let figures = phases.map(|p| figures(&d, params, &p));
    Measured {
        data: d,
        phases: figures,
        rto,
    }
}

fn fault_window(fault: &StoryFault) -> Duration {
    crate::inject::Windowed::duration(fault).unwrap_or_default()
}

fn phase_rows(t: &mut Table, m: &Measured) {
    let row = |label: &str, cell: &dyn Fn(&PhaseFigures) -> String| {
        let mut r = vec![label.to_string()];
        r.extend(m.phases.iter().map(cell));
        r
    };
    t.row(row("Error rate", &|f| pct(f.requests.error_pct)));
    t.row(row("Response time p50 / p95 / p99", &|f| {
        format!(
            "{} / {} / {}",
            ms(f.requests.p50_ms),
            ms(f.requests.p95_ms),
            ms(f.requests.p99_ms)
        )
    }));
    t.row(row("Requests/s", &|f| {
        format!("{:.1}", f.requests.throughput_per_s)
    }));
    t.row(row("503 / 500 answers", &|f| {
        format!("{} / {}", f.status_503, f.status_500)
    }));
    // The limiter keeps its counters in Redis: no 429 while Redis is down is the limiter
    // failing open.
    t.row(row("429 answers (Redis rate limiter)", &|f| {
        f.status_429.to_string()
    }));
    t.row(row("Timeouts (60 s client)", &|f| {
        f.requests.timeouts.to_string()
    }));
    t.row(row("Database load (calls/s)", &|f| {
        format!("{:.1}", f.db_calls_per_s)
    }));
    t.row(row("Cache hit rate", &|f| pct(f.cache_hit_pct)));
    t.row(row("Connection pool in use", &|f| pct(f.pool_in_use_pct)));
    t.row(row("Queue length (max waiting for a connection)", &|f| {
        f.pool_waiting_max.to_string()
    }));
    t.row(row("Memory usage (max, of the budget)", &|f| {
        pct(f.memory_max_pct)
    }));
    t.row(row("Swap usage", &|_| "0 MB (no swap)".into()));
    t.row(row("CPU usage (API hosts)", &|f| pct(f.cpu_pct)));
    t.row(row("OOM kills", &|f| f.oom_restarts.to_string()));
    let mut rto = vec![
        "Recovery time (RTO)".to_string(),
        "n/a".into(),
        "n/a".into(),
    ];
    rto.push(secs(m.rto));
    t.row(rto);
}

/// One row of the recovery table: a scenario's run, its RTO and its lost writes.
struct Recovery {
    scenario: &'static str,
    variant: Variant,
    rto_target: Option<Duration>,
    rto: Option<Duration>,
    acked: u64,
    lost: u64,
    /// How long before the first Redis crash the oldest lost write was acknowledged.
    lost_span: Duration,
}

pub fn build(seed: u64, options: &Options) -> Result<ScenarioReport, ReportError> {
    let mut sections = Vec::new();
    let mut data = serde_json::Map::new();
    let mut recoveries = Vec::new();
    let scenarios = doc_scenarios();
    // Per scenario, each run's requests and database calls, for its plot.
    let mut plotted: Vec<Vec<PlottedRun>> = vec![Vec::new(); scenarios.len()];
    for (k, s) in scenarios.iter().enumerate() {
        let params = doc_params(options, &s.fault, s.users);
        let m = measure(
            run(seed, Variant::Correct, params, &s.fault)?,
            &params,
            &s.fault,
        );
        let verdicts = checkers::check_all(&m.data.observations);
        let metrics = metrics_of(&m.data);
        let mut t = Table::new(&[
            "Metric",
            "Before failure",
            "During failure",
            "After recovery",
        ]);
        phase_rows(&mut t, &m);
        let start = BASELINE.as_secs();
        // What the document asks of the Redis failure beyond its table.
        let redis_note = if matches!(s.fault, StoryFault::RedisDown { .. }) {
            format!(
                " The cache fails open (reads go to the database) and so does the rate \
                 limiter, whose counters live in Redis ({} requests per client per second): \
                 {} requests refused (429) while Redis was down.",
                params.rate_limit, m.phases[1].status_429
            )
        } else {
            String::new()
        };
        sections.push(Section {
            heading: s.heading.into(),
            text: format!(
                "{} users spawning 10/s, each sending a request a second on average (70 % \
                 reads); {} API instances with {} cores and a pool of {} connections each; \
                 the fault `{}` from T+{start}s to T+{}s (the document's {} min, shortened), \
                 then {} s of load; before is T+{}s to T+{start}s. Health probes answered \
                 503: {}; API instances found dead and restarted: {}; acknowledged writes: \
                 {}, lost: {}; checkers: {}.{redis_note}",
                s.users,
                params.api_instances,
                params.api_cores,
                params.pool_size,
                serde_json::to_string(&s.fault).unwrap_or_default(),
                (BASELINE + fault_window(&s.fault)).as_secs(),
                s.doc_minutes,
                AFTER.as_secs(),
                WARM_UP.as_secs(),
                metrics.health_503,
                metrics.restarts,
                metrics.acked_writes,
                metrics.lost_writes,
                verdicts_cell(&verdicts)
            ),
            table: t,
        });
        plotted[k].push(PlottedRun::of(Variant::Correct, &m.data));
        let (lost, lost_span) = loss_span(&m.data);
        recoveries.push(Recovery {
            scenario: s.fault.kind(),
            variant: Variant::Correct,
            rto_target: s.rto_target,
            rto: m.rto,
            acked: metrics.acked_writes,
            lost,
            lost_span,
        });
        data.insert(
            s.fault.kind().into(),
            json!({"phases": m.phases, "rto_s": m.rto.map(|d| d.as_secs()), "metrics": metrics,
                   "verdicts": verdicts}),
        );
    }

    // The buggy variants, each beside the scenario that exposes it.
    let mut t = Table::new(&[
        "Scenario",
        "Variant",
        "Error rate during",
        "p99 during",
        "Max latency",
        "Database load during (calls/s)",
        "Lost writes",
        "Checkers",
    ]);
    let contrasts = [
        (3, Variant::NoPoolTimeout),
        (1, Variant::CacheFailClosed),
        (1, Variant::WriteBehindCache),
        (2, Variant::RetryStorm),
    ];
    let mut buggy = serde_json::Map::new();
    for (k, variant) in contrasts {
        let s = &scenarios[k];
        let params = doc_params(options, &s.fault, s.users);
        let m = measure(run(seed, variant, params, &s.fault)?, &params, &s.fault);
        let metrics = metrics_of(&m.data);
        let verdicts = checkers::check_all(&m.data.observations);
        plotted[k].push(PlottedRun::of(variant, &m.data));
        if variant == Variant::WriteBehindCache {
            let (lost, lost_span) = loss_span(&m.data);
            recoveries.push(Recovery {
                scenario: s.fault.kind(),
                variant,
                rto_target: s.rto_target,
                rto: m.rto,
                acked: metrics.acked_writes,
                lost,
                lost_span,
            });
        }
        t.row(vec![
            s.fault.kind().into(),
            variant.name().into(),
            pct(m.phases[1].requests.error_pct),
            ms(m.phases[1].requests.p99_ms),
            ms(metrics.all.max_ms),
            format!("{:.1}", m.phases[1].db_calls_per_s),
            metrics.lost_writes.to_string(),
            verdicts_cell(&verdicts),
        ]);
        buggy.insert(
            format!("{}/{}", s.fault.kind(), variant.name()),
            json!({"phases": m.phases, "metrics": metrics, "verdicts": verdicts}),
        );
    }
    sections.push(Section {
        heading: "The buggy variants under the scenario that exposes each".into(),
        text: "The same runs with one realistic mistake each; the checkers name what broke.".into(),
        table: t,
    });
    data.insert("buggy".into(), serde_json::Value::Object(buggy));

    // Recovery: RTO and RPO over every scenario.
    let mut t = Table::new(&[
        "Scenario",
        "Variant",
        "Target RTO",
        "Actual RTO",
        "RTO met?",
        "Acknowledged writes",
        "Actual RPO (acknowledged writes lost)",
        "RPO met?",
    ]);
    for r in &recoveries {
        let rpo = if r.lost == 0 {
            "0".to_string()
        } else {
            format!(
                "{}, the oldest acknowledged {} ms before the crash",
                r.lost,
                r.lost_span.as_millis()
            )
        };
        t.row(vec![
            r.scenario.into(),
            r.variant.name().into(),
            r.rto_target
                .map_or("none set".into(), |d| format!("< {} min", d.as_secs() / 60)),
            secs(r.rto),
            match r.rto_target {
                Some(target) => yes_no(r.rto.is_some_and(|d| d < target)),
                None => yes_no(r.rto.is_some()),
            },
            r.acked.to_string(),
            rpo,
            yes_no(r.lost == 0),
        ]);
    }
    sections.push(Section {
        heading: "Recovery time and recovery point objectives (RTO, RPO)".into(),
        text: format!(
            "RTO: from the fault's end to the start of the first {RTO_WINDOW} consecutive \
             seconds each at the baseline's success rate (T+{}s to T+{}s) or better; with no \
             target in the document, met means recovered before the load ended. RPO: \
             acknowledged writes (201) the database does not hold at the end of the run; \
             the document's targets (user data < 15 min, transactions < 5 min) allow no loss \
             of an acknowledged write here, since the correct variant acknowledges a write \
             only once committed. Session data: no session store, requests carry their \
             client. The write-behind variant acknowledges writes parked in Redis, which \
             the Redis failure takes with it.",
            WARM_UP.as_secs(),
            BASELINE.as_secs()
        ),
        table: t,
    });
    data.insert(
        "recovery".into(),
        json!(recoveries
            .iter()
            .map(
                |r| json!({"scenario": r.scenario, "variant": r.variant.name(),
                            "rto_s": r.rto.map(|d| d.as_secs()), "acked": r.acked,
                            "lost": r.lost})
            )
            .collect::<Vec<_>>()),
    );

    let plots = scenarios
        .iter()
        .zip(&plotted)
        .map(|(s, runs)| {
            let end = runs.iter().map(|r| r.end).max().unwrap_or(Instant::START);
            let schedule = FaultSchedule::new().at(BASELINE, s.fault.clone());
            let requests: Vec<(&str, &[Sample])> =
                runs.iter().map(|r| (r.variant, &r.samples[..])).collect();
            let db_calls: Vec<(&str, &[Instant])> =
                runs.iter().map(|r| (r.variant, &r.db_calls[..])).collect();
            ChaosPlot::of_requests_in(
                s.fault.kind(),
                s.heading,
                schedule_windows(&schedule),
                &requests,
                end,
            )
            .with_rate_panel("database load", "calls/s", &db_calls)
        })
        .collect();

    Ok(ScenarioReport {
        title: "Story backend: failure scenarios test results".into(),
        preamble: format!(
            "Every number below comes from simulation with seed {seed} and replays exactly."
        ),
        sections,
        data: serde_json::Value::Object(data),
        plots,
    })
}

/// One run of a scenario as its plot draws it: a line per variant.
#[derive(Clone)]
struct PlottedRun {
    variant: &'static str,
    samples: Vec<Sample>,
    db_calls: Vec<Instant>,
    end: Instant,
}

impl PlottedRun {
    fn of(variant: Variant, d: &RunData) -> Self {
        PlottedRun {
            variant: variant.name(),
            samples: d.requests.iter().map(|r| r.sample).collect(),
            db_calls: d.db_call_times.clone(),
            end: d.end,
        }
    }
}

/// Acknowledged writes lost, and how long before the first Redis crash the oldest of
/// them was acknowledged.
fn loss_span(d: &RunData) -> (u64, Duration) {
    let o = &d.observations;
    let lost: Vec<_> = o
        .acked
        .iter()
        .filter(|a| !o.stored.contains(&a.uid))
        .collect();
    let crash = o.redis_down.iter().map(|w| w.from).min();
    let oldest = lost.iter().map(|a| a.at).min();
    let span = match (crash, oldest) {
        (Some(c), Some(a)) if a < c => c.duration_since(a),
        _ => Duration::ZERO,
    };
    (lost.len() as u64, span)
}

fn yes_no(ok: bool) -> String {
    if ok { "yes" } else { "no" }.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::at_ms as at;
    use crate::metrics::RequestOutcome;

    fn sample(ms: u64, ok: bool) -> Sample {
        Sample {
            start: at(ms),
            latency: Duration::from_millis(5),
            outcome: if ok {
                RequestOutcome::Ok
            } else {
                RequestOutcome::Error
            },
        }
    }

    #[test]
    fn rto_is_the_start_of_the_first_window_back_at_the_baseline_rate() {
        // Baseline 0-10 s all good; fault ends at 10 s; seconds 10 and 11 fail, 12 is
        // good, 13 fails, then 14, 15, 16 are good: recovered from 14 s, RTO 4 s.
        let mut v = Vec::new();
        for s in 0..20u64 {
            let ok = !matches!(s, 10 | 11 | 13);
            v.push(sample(s * 1000 + 100, ok));
            v.push(sample(s * 1000 + 600, true));
        }
        let refs: Vec<&Sample> = v.iter().collect();
        let base = Window {
            from: at(0),
            to: at(10_000),
        };
        assert_eq!(
            rto(&refs, base, at(10_000), at(20_000)),
            Some(Duration::from_secs(4))
        );
        // Never three good seconds in a row before the load ends: not recovered.
        assert_eq!(rto(&refs, base, at(10_000), at(16_000)), None);
    }
}
