//! Medistream's report: the document's "Observed Results" computed exactly for a seed:
//! the signup load test (throughput against cores, p95, failures, bookings alongside),
//! bookings during a signup flood with and without the hashing bulkhead, the queue's depth
//! over time with its retries and dead letters, rejected tokens and rate limits, and the
//! planned partial-dependency failures.

use serde_json::json;

use super::checkers;
use super::faults;
use super::run::{metrics_of, RunData};
use super::{Medistream, Options, Params, Variant};
use crate::metrics::Sample;
use crate::report::{
    entry_variants, ms, pct, run_entry, variant_rows, verdicts_cell, ChaosPlot, Line, Panel,
    ReportError, ScenarioReport, Section, Table,
};
use crate::scenario::ServiceVariant;
use sim_runtime::time::{Duration, Instant};
use sim_runtime::Probability;

/// Virtual users of the load test. The document gives "200+"; 650, each thinking a second
/// on average between workflows, offer slightly more than the hashing plateau, so that
/// latency grows to the shedding bound and a few signups are shed, as the document saw.
pub const LOAD_USERS: u32 = 650;

/// Queue workers in the load test: enough to drain the confirmations of a minute at the
/// plateau within [`LOAD_DRAIN`], not to keep up while the load lasts (the document's
/// queue grows under load).
pub const LOAD_WORKERS: u32 = 8;

/// How long the queue may take to drain after the load test.
pub const LOAD_DRAIN: Duration = Duration::from_secs(60);

/// The document's load test: [`LOAD_USERS`] patients for a minute on `cores` cores per
/// API instance, each repeating the workflow with a second of think time on average.
pub fn load_params(options: &Options, cores: u32) -> Params {
    Params {
        users: LOAD_USERS,
        spawn_rate_per_s: 50.0,
        load_for: Some(Duration::from_secs(60)),
        api_cores: cores,
        workers: LOAD_WORKERS,
        drain_max: LOAD_DRAIN,
        dawdle: Probability::NEVER,
        ..options.params()
    }
}

fn failing(d: &RunData) -> String {
    verdicts_cell(&checkers::check_all(&d.observations))
}

/// The fault matrix's heading, which its plots are placed under.
const FAULT_MATRIX: &str = "Failure scenarios (fault matrix)";

/// A fault-matrix entry over time: the bookings of each variant run under it, and the
/// confirmation queue's depth (pending, in flight and waiting to retry).
fn fault_plot(fault: &str, runs: &[(&str, RunData)]) -> ChaosPlot {
    let bookings: Vec<(&str, &[Sample])> = runs
        .iter()
        .map(|(v, d)| (*v, d.observations.bookings.as_slice()))
        .collect();
    let end = runs
        .iter()
        .map(|(_, d)| d.end)
        .max()
        .unwrap_or(Instant::START);
    let depth = Panel {
        title: "confirmation queue depth".into(),
        unit: "jobs".into(),
        lines: runs
            .iter()
            .map(|(v, d)| Line {
                name: v.to_string(),
                points: d
                    .depth
                    .iter()
                    .map(|s| {
                        let t = s.at_ms as f64 / 1000.0;
                        (t, Some((s.pending + s.active + s.retry) as f64))
                    })
                    .collect(),
            })
            .collect(),
    };
    ChaosPlot::of_requests::<Medistream>(fault, FAULT_MATRIX, fault, &bookings, end)
        .with_panel(depth)
}

pub fn build(seed: u64, options: &Options) -> Result<ScenarioReport, ReportError> {
    let mut sections = Vec::new();
    let mut data = serde_json::Map::new();

    // 1. CPU saturation: the load test on 1, 2 and 4 cores per instance.
    let mut t = Table::new(&[
        "Cores per instance",
        "Plateau (cores / cost)",
        "Workflows/s",
        "Signup p95",
        "Signup failures",
        "Booking p95",
        "Checkers",
    ]);
    let base = options.params();
    let mut cpu = serde_json::Map::new();
    let mut at_default = None;
    // The document's plateau against 1, 2 and 4 cores, and the run's own size if other.
    let mut cores_list = vec![1, 2, 4];
    if !cores_list.contains(&base.api_cores) {
        cores_list.push(base.api_cores);
    }
    for cores in cores_list {
        let p = load_params(options, cores);
        let d = run_entry::<Medistream>(seed, Variant::Correct, p, "none")?;
        let m = metrics_of(&d);
        // Two hashes (signup and login) per workflow, on every instance's cores.
        let plateau = f64::from(cores * p.api_instances) / (2.0 * p.hash_cost.as_secs_f64());
        t.row(vec![
            cores.to_string(),
            format!("{plateau:.1}/s"),
            format!("{:.1}", m.workflows_per_s),
            ms(m.signup.p95_ms),
            pct(m.signup_failure_pct),
            ms(m.book.p95_ms),
            failing(&d),
        ]);
        cpu.insert(
            cores.to_string(),
            serde_json::to_value(&m).unwrap_or_default(),
        );
        if cores == base.api_cores {
            at_default = Some((m, d));
        }
    }
    sections.push(Section {
        heading: "1. CPU saturation (signup overload)".into(),
        text: format!(
            "{LOAD_USERS} virtual users arriving at 50/s, each repeating sign up, log in, book \
             and read for 60 s with 1 s of think time on average; {} API instances; bcrypt \
             costs {} ms of CPU per hash (signup and login each hash once), and a hash waits \
             at most {} ms for a core before it is shed with 503. From the document: 200+ \
             virtual users and the targets (~85 workflows/s, p95 ~3.2 s, ~1.8 % signup \
             failures, appointment creation functional). Derived: the hash cost, so that \
             the plateau of 2 instances x 4 cores / (2 hashes x cost) is the document's \
             throughput; the number of users and the think time, so that the offered load \
             slightly exceeds it. Throughput, latency and failures are then what the \
             simulated cores give, not set anywhere.",
            base.api_instances,
            base.hash_cost.as_secs_f64() * 1000.0,
            base.hash_wait_max.as_millis()
        ),
        table: t,
    });
    data.insert("cpu_saturation".into(), serde_json::Value::Object(cpu));

    // 1b. The document's observed figures against ours.
    if let Some((m, d)) = &at_default {
        let mut t = Table::new(&["Observed result", "Document", "Simulation"]);
        t.row(vec![
            "Throughput".into(),
            "~85 workflows/s".into(),
            format!("{:.1} workflows/s", m.workflows_per_s),
        ]);
        t.row(vec![
            "Signup p95 latency".into(),
            "~3.2 s".into(),
            ms(m.signup.p95_ms),
        ]);
        t.row(vec![
            "Signup failures".into(),
            "~1.8 %".into(),
            pct(m.signup_failure_pct),
        ]);
        t.row(vec![
            "Appointment creation".into(),
            "remained functional".into(),
            format!(
                "{} bookings, p95 {}, {} failed",
                m.book.requests,
                ms(m.book.p95_ms),
                pct(m.book.error_pct)
            ),
        ]);
        sections.push(Section {
            heading: format!("Observed results at {} cores per instance", base.api_cores),
            text: String::new(),
            table: t,
        });

        // 3. The queue under that load.
        let mut t = Table::new(&["At", "Pending", "Active", "Retry"]);
        for s in &d.depth {
            t.row(vec![
                format!("{} s", s.at_ms / 1000),
                s.pending.to_string(),
                s.active.to_string(),
                s.retry.to_string(),
            ]);
        }
        sections.push(Section {
            heading: "3. Redis queue depth over time (the load test)".into(),
            text: format!(
                "{} confirmations enqueued, {} done, {} dead-lettered, {} retries with \
                 exponential backoff and jitter; {}.",
                m.jobs_enqueued,
                m.jobs_completed,
                m.jobs_dead,
                m.retries,
                failing(d)
            ),
            table: t,
        });
        data.insert(
            "queue_depth".into(),
            serde_json::to_value(&d.depth).unwrap_or_default(),
        );
    }

    // The signup flood: the bulkhead against a shared pool.
    let mut t = Table::new(&[
        "Variant",
        "Flood signups",
        "Flood signup p95",
        "Bookings during flood",
        "Booking p95 during flood",
        "Bound",
        "Checkers",
    ]);
    let variants = [Variant::Correct, Variant::SharedPoolForSignup];
    let flood = variant_rows(&mut t, &variants, |variant| {
        let d = run_entry::<Medistream>(seed, variant, base, "signup_flood")?;
        let m = metrics_of(&d);
        let cells = vec![
            m.flood_signup.requests.to_string(),
            ms(m.flood_signup.p95_ms),
            m.book_in_flood.requests.to_string(),
            ms(m.book_in_flood.p95_ms),
            ms(base.booking_p95_bound.as_secs_f64() * 1000.0),
            failing(&d),
        ];
        Ok((cells, serde_json::to_value(&m).unwrap_or_default()))
    })?;
    sections.push(Section {
        heading: "Appointment latency during a signup flood".into(),
        text: "The signup_flood entry: 120 extra clients sign up as fast as they are answered \
               from T+1s for 3 s, while patients book."
            .into(),
        table: t,
    });
    data.insert("signup_flood".into(), flood);

    // Every failure scenario of the document, correct variant and one buggy contrast.
    let mut t = Table::new(&[
        "Scenario",
        "Variant",
        "Booking p95",
        "Booking max",
        "401",
        "429",
        "DB calls for rejected",
        "Jobs done / dead / retries",
        "Checkers",
    ]);
    let mut chaos = serde_json::Map::new();
    let contrasts = [
        ("malformed_token_flood", Variant::AuthAfterDb),
        ("worker_crash", Variant::PopThenCrashLosesJob),
        ("none", Variant::RetryWithoutBackoff),
    ];
    let mut plots = Vec::new();
    for (info, _) in faults::matrix() {
        let mut runs = Vec::new();
        for variant in entry_variants(info.name, Variant::Correct, &contrasts) {
            let d = run_entry::<Medistream>(seed, variant, base, info.name)?;
            let m = metrics_of(&d);
            t.row(vec![
                info.name.into(),
                variant.name().into(),
                ms(m.book.p95_ms),
                ms(m.book.max_ms),
                m.rejected_401.to_string(),
                m.rejected_429.to_string(),
                m.downstream_calls_for_rejected.to_string(),
                format!("{} / {} / {}", m.jobs_completed, m.jobs_dead, m.retries),
                failing(&d),
            ]);
            chaos.insert(
                format!("{}/{}", info.name, variant.name()),
                json!({"metrics": m, "verdicts": checkers::check_all(&d.observations)}),
            );
            runs.push((variant.name(), d));
        }
        if info.name != "none" {
            plots.push(fault_plot(info.name, &runs));
        }
    }
    sections.push(Section {
        heading: FAULT_MATRIX.into(),
        text: format!(
            "Default size ({} patients arriving at {}/s, each once); faults at T+1s. \
             Rejected tokens must cause no database call; 429 exactly past {} requests per \
             client per {} ms; Redis down turns confirmations off and keeps reads working; \
             PostgreSQL down is a quick 503.",
            base.users,
            base.spawn_rate_per_s,
            base.rate_limit,
            base.rate_window.as_millis()
        ),
        table: t,
    });
    data.insert("chaos".into(), serde_json::Value::Object(chaos));

    Ok(ScenarioReport {
        title: "Medistream: failure and resilience testing".into(),
        preamble: format!(
            "Every number below comes from simulation with seed {seed} and replays exactly."
        ),
        sections,
        data: serde_json::Value::Object(data),
        plots,
    })
}
