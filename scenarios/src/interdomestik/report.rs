//! Interdomestik's report: the document's "Performance Metrics" (before: a pool of 10,
//! after: 50) computed exactly for a seed under a registration load, with and without a
//! slow database, with what PostgreSQL itself saw (its sessions, the connections it
//! refused, its row-lock waits) to say why the larger pool does not help; and every
//! stress scenario of the fault matrix with the correct variant
//! and the buggy one it exposes: retries and deadlocks seen, breaker transitions,
//! rate-limit rejections, welcome emails. `sim report interdomestik --html` draws the slow
//! database's runs and each stress scenario over time, a line per variant.

use serde_json::json;
use sim_runtime::time::Instant;

use super::checkers;
use super::faults;
use super::run::{metrics_of, sample_of, RunData, RunMetrics};
use super::{Interdomestik, Options, Params, PoolSizing, Variant};
use crate::metrics::Sample;
use crate::report::{
    entry_variants, ms, pct, run_entry, verdicts_cell, ChaosPlot, ReportError, ScenarioReport,
    Section, Table,
};
use crate::scenario::ServiceVariant;

fn failing(d: &RunData) -> String {
    verdicts_cell(&checkers::check_all(&d.observations))
}

/// The load of the performance table: 100 members arriving at 50/s (every 2nd of them
/// then files a claim) and 10 agents' batches of 6, on `pool`, against a PostgreSQL
/// allowing `db_max_connections` sessions.
pub fn load_params(options: &Options, pool: PoolSizing, db_max_connections: usize) -> Params {
    Params {
        members: 100,
        spawn_rate_per_s: 50.0,
        agents: 10,
        pool,
        db_max_connections,
        ..options.params()
    }
}

/// One configuration of the performance table.
struct Config {
    label: &'static str,
    pool: PoolSizing,
    db_max_connections: usize,
    fault: &'static str,
}

/// The document's before and after, healthy and with a slow database; and the after
/// once more with PostgreSQL allowed enough sessions for both pools, which tells the
/// refused connections apart from what a larger pool does by itself.
const CONFIGS: [Config; 5] = [
    Config {
        label: "10 (before)",
        pool: PoolSizing::BEFORE,
        db_max_connections: 100,
        fault: "none",
    },
    Config {
        label: "10 (before)",
        pool: PoolSizing::BEFORE,
        db_max_connections: 100,
        fault: "db_slow",
    },
    Config {
        label: "50 (after)",
        pool: PoolSizing::AFTER,
        db_max_connections: 100,
        fault: "none",
    },
    Config {
        label: "50 (after)",
        pool: PoolSizing::AFTER,
        db_max_connections: 100,
        fault: "db_slow",
    },
    Config {
        label: "50 (after)",
        pool: PoolSizing::AFTER,
        db_max_connections: 200,
        fault: "db_slow",
    },
];

/// What the performance table's runs show, in words computed from them.
fn performance_findings(runs: &[(&Config, RunMetrics)], api_instances: u32, plans: u32) -> String {
    let find = |pool: u32, max: usize, fault: &str| {
        runs.iter()
            .find(|(c, _)| {
                c.pool.max_connections == pool && c.db_max_connections == max && c.fault == fault
            })
            .map(|(_, m)| m)
    };
    let (Some(before), Some(after), Some(roomy)) = (
        find(10, 100, "db_slow"),
        find(50, 100, "db_slow"),
        find(50, 200, "db_slow"),
    ) else {
        return String::new();
    };
    let asked = api_instances * PoolSizing::AFTER.max_connections;
    format!(
        "With the slow database, pool 50 lets the {api_instances} instances ask for {asked} \
         connections, and PostgreSQL's one admin session already holds one of its 100 \
         (max_connections, which the document leaves at its default): it peaked at {} \
         sessions and refused {} connections with 53300 (too many clients), which the \
         API answers 503: {} registrations failed against {} with pool 10. Those are the \
         errors. With max_connections raised to 200 nothing is refused ({} refused, peak \
         {}), and pool 50 is {} pool 10 ({:.1} stored/s against {:.1}, p95 {} against \
         {}): every registration updates its agent's row and one of {plans} plan rows, so those rows' locks decide the rate, not the connections. A \
         larger pool only moves the queue from the pool, where a waiting registration \
         holds nothing, into PostgreSQL's lock queue, where it holds a connection and \
         the agent row it locked first while it waits for the plan row: {} statements \
         waited for a row lock, against {} with pool 10.",
        after.db_sessions_peak,
        after.db_refused,
        after.failed_5xx + after.no_answer,
        before.failed_5xx + before.no_answer,
        roomy.db_refused,
        roomy.db_sessions_peak,
        if roomy.registered_per_s > before.registered_per_s {
            "faster than"
        } else {
            "no faster than"
        },
        roomy.registered_per_s,
        before.registered_per_s,
        ms(roomy.register.p95_ms),
        ms(before.register.p95_ms),
        roomy.lock_waits,
        before.lock_waits,
    )
}

pub fn build(seed: u64, options: &Options) -> Result<ScenarioReport, ReportError> {
    let mut sections = Vec::new();
    let mut data = serde_json::Map::new();

    let mut t = Table::new(&[
        "Pool",
        "max_connections",
        "Database",
        "Registrations",
        "Stored/s",
        "p95",
        "Errors",
        "Claims filed",
        "Pool waits",
        "Pool wait total",
        "Row-lock waits",
        "Sessions peak",
        "Refused (53300)",
        "Checkers",
    ]);
    let mut perf = serde_json::Map::new();
    let mut runs = Vec::new();
    let mut slow_db_runs = Vec::new();
    for c in &CONFIGS {
        let p = load_params(options, c.pool, c.db_max_connections);
        let d = run_entry::<Interdomestik>(seed, Variant::Correct, p, c.fault)?;
        let m = metrics_of(&d);
        if c.fault == "db_slow" {
            let line = format!(
                "pool {}, max_connections {}",
                c.pool.max_connections, c.db_max_connections
            );
            slow_db_runs.push((line, samples_of(&d)));
        }
        t.row(vec![
            c.label.into(),
            c.db_max_connections.to_string(),
            if c.fault == "none" {
                "healthy".into()
            } else {
                "200 ms slower for 3 s".into()
            },
            format!("{} of {}", m.registered, m.register.requests),
            format!("{:.1}", m.registered_per_s),
            ms(m.register.p95_ms),
            pct(m.register.error_pct),
            format!("{} of {}", m.claims_filed, m.claims),
            m.pool_waits.to_string(),
            ms(m.pool_wait_ms),
            m.lock_waits.to_string(),
            m.db_sessions_peak.to_string(),
            m.db_refused.to_string(),
            failing(&d),
        ]);
        perf.insert(
            format!(
                "{}/{}/{}",
                c.pool.max_connections, c.db_max_connections, c.fault
            ),
            serde_json::to_value(&m).unwrap_or_default(),
        );
        runs.push((c, m));
    }
    sections.push(Section {
        heading: PERFORMANCE.into(),
        text: format!(
            "100 members arriving at 50/s, each registering once (every 2nd then files a \
             claim with 2 documents), and 10 agents each registering a batch of 6 at once \
             (the 6th is past the limit of 5 per minute); {} API instances; idle timeout \
             20 s, connect timeout 10 s. Errors are 5xx answers and timeouts to \
             registrations; a pool wait is an acquisition that did not get a connection \
             at once; sessions and refusals are PostgreSQL's own. {}",
            options.api_instances,
            performance_findings(&runs, options.api_instances, options.params().plans)
        ),
        table: t,
    });
    data.insert("performance".into(), serde_json::Value::Object(perf));
    let mut plots = vec![plot(
        "db_slow, pool 10 against 50",
        PERFORMANCE,
        "db_slow",
        &slow_db_runs,
    )];

    let mut t = Table::new(&[
        "Scenario",
        "Variant",
        "Registered",
        "5xx / no answer",
        "Claims filed / 403",
        "p95",
        "Retries",
        "Deadlocks",
        "Breaker transitions",
        "429",
        "Emails sent / outbox left",
        "Checkers",
    ]);
    let mut chaos = serde_json::Map::new();
    let contrasts = [
        ("none", Variant::InconsistentLockOrder),
        ("none", Variant::RateLimitRace),
        ("db_down", Variant::TwoTransactions),
        ("email_down", Variant::EmailInTransaction),
        ("email_slow", Variant::EmailInTransaction),
    ];
    let base = options.params();
    for (info, _) in faults::matrix() {
        let mut entry_runs = Vec::new();
        for variant in entry_variants(info.name, Variant::Correct, &contrasts) {
            let d = run_entry::<Interdomestik>(seed, variant, base, info.name)?;
            let m = metrics_of(&d);
            entry_runs.push((variant.name().to_string(), samples_of(&d)));
            t.row(vec![
                info.name.into(),
                variant.name().into(),
                format!("{} of {}", m.registered, m.register.requests),
                format!("{} / {}", m.failed_5xx, m.no_answer),
                format!(
                    "{} of {} / {}",
                    m.claims_filed, m.claims, m.claims_refused_403
                ),
                ms(m.register.p95_ms),
                m.retries.to_string(),
                m.deadlocks.to_string(),
                m.breaker_transitions.to_string(),
                m.rejected_429.to_string(),
                format!(
                    "{} / {}",
                    m.welcome_emails + m.claim_receipts,
                    m.outbox_left
                ),
                failing(&d),
            ]);
            chaos.insert(
                format!("{}/{}", info.name, variant.name()),
                json!({"metrics": m, "breaker": d.breaker, "verdicts": checkers::check_all(&d.observations)}),
            );
        }
        if info.name != "none" {
            plots.push(plot(info.name, STRESS, info.name, &entry_runs));
        }
    }
    sections.push(Section {
        heading: STRESS.into(),
        text: format!(
            "Default size: {} members arriving at {}/s and {} agents' batches of {}; \
             pool {} per instance; faults at T+0.4s. Retries are transactions run again \
             after 40001 or 40P01; deadlocks are PostgreSQL's own count.",
            base.members,
            base.spawn_rate_per_s,
            base.agents,
            base.batch_per_agent,
            base.pool.max_connections
        ),
        table: t,
    });
    data.insert("chaos".into(), serde_json::Value::Object(chaos));

    Ok(ScenarioReport {
        title: "Interdomestik: production readiness stress test".into(),
        preamble: format!(
            "Every number below comes from simulation with seed {seed} and replays exactly."
        ),
        sections,
        data: serde_json::Value::Object(data),
        plots,
    })
}

const PERFORMANCE: &str = "Performance metrics: before (pool 10) and after (pool 50)";
const STRESS: &str = "Stress scenarios (fault matrix)";

/// Registrations and claims as their users saw them.
fn samples_of(d: &RunData) -> Vec<Sample> {
    let o = &d.observations;
    o.registrations
        .iter()
        .map(|r| &r.answer)
        .chain(o.claims.iter().map(|c| &c.answer))
        .map(sample_of)
        .collect()
}

/// Fault-matrix entry `fault` over time, a line per run (its name and requests), to the
/// last answer.
fn plot(test: &str, section: &str, fault: &str, runs: &[(String, Vec<Sample>)]) -> ChaosPlot {
    let end = runs
        .iter()
        .flat_map(|(_, samples)| samples.iter().map(|s| s.start + s.latency))
        .max()
        .unwrap_or(Instant::START);
    let lines: Vec<(&str, &[Sample])> = runs.iter().map(|(n, s)| (n.as_str(), &s[..])).collect();
    ChaosPlot::of_requests::<Interdomestik>(test, section, fault, &lines, end)
}
