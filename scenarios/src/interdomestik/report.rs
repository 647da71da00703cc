//! Interdomestik's report: the document's "Performance Metrics" (before: a pool of 10,
//! after: 50) computed exactly for a seed under a registration load, with and without a
//! slow database; and every stress scenario of the fault matrix with the correct variant
//! and the buggy one it exposes: retries and deadlocks seen, breaker transitions,
//! rate-limit rejections, welcome emails.

use serde_json::json;

use super::checkers;
use super::faults;
use super::run::{metrics_of, RunData};
use super::{Interdomestik, Options, Params, PoolSizing, Variant};
use crate::report::{
    entry_variants, ms, pct, run_entry, verdicts_cell, ReportError, ScenarioReport, Section, Table,
};
use crate::scenario::ServiceVariant;

fn failing(d: &RunData) -> String {
    verdicts_cell(&checkers::check_all(&d.observations))
}

/// The load of the performance table: 100 members arriving at 50/s and 10 agents'
/// batches of 6, on `pool`.
pub fn load_params(options: &Options, pool: PoolSizing) -> Params {
    Params {
        members: 100,
        spawn_rate_per_s: 50.0,
        agents: 10,
        pool,
        ..options.params()
    }
}

pub fn build(seed: u64, options: &Options) -> Result<ScenarioReport, ReportError> {
    let mut sections = Vec::new();
    let mut data = serde_json::Map::new();

    let mut t = Table::new(&[
        "Pool",
        "Database",
        "Registrations",
        "Stored/s",
        "p95",
        "Errors",
        "Pool waits",
        "Pool wait total",
        "Checkers",
    ]);
    let mut perf = serde_json::Map::new();
    for (label, pool) in [
        ("10 (before)", PoolSizing::BEFORE),
        ("50 (after)", PoolSizing::AFTER),
    ] {
        for fault in ["none", "db_slow"] {
            let p = load_params(options, pool);
            let d = run_entry::<Interdomestik>(seed, Variant::Correct, p, fault)?;
            let m = metrics_of(&d);
            t.row(vec![
                label.into(),
                if fault == "none" {
                    "healthy".into()
                } else {
                    "200 ms slower for 3 s".into()
                },
                format!("{} of {}", m.registered, m.register.requests),
                format!("{:.1}", m.registered_per_s),
                ms(m.register.p95_ms),
                pct(m.register.error_pct),
                m.pool_waits.to_string(),
                ms(m.pool_wait_ms),
                failing(&d),
            ]);
            perf.insert(
                format!("{}/{fault}", pool.max_connections),
                serde_json::to_value(&m).unwrap_or_default(),
            );
        }
    }
    sections.push(Section {
        heading: "Performance metrics: before (pool 10) and after (pool 50)".into(),
        text: "100 members arriving at 50/s, each registering once, and 10 agents each \
               registering a batch of 6 at once (the 6th is past the limit of 5 per \
               minute); 2 API instances; idle timeout 20 s, connect timeout 10 s. \
               Errors are 5xx answers and timeouts; a pool wait is an acquisition that \
               did not get a connection at once."
            .into(),
        table: t,
    });
    data.insert("performance".into(), serde_json::Value::Object(perf));

    let mut t = Table::new(&[
        "Scenario",
        "Variant",
        "Registered",
        "5xx / no answer",
        "p95",
        "Retries",
        "Deadlocks",
        "Breaker transitions",
        "429",
        "Welcomed / outbox left",
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
        for variant in entry_variants(info.name, Variant::Correct, &contrasts) {
            let d = run_entry::<Interdomestik>(seed, variant, base, info.name)?;
            let m = metrics_of(&d);
            t.row(vec![
                info.name.into(),
                variant.name().into(),
                format!("{} of {}", m.registered, m.register.requests),
                format!("{} / {}", m.failed_5xx, m.no_answer),
                ms(m.register.p95_ms),
                m.retries.to_string(),
                m.deadlocks.to_string(),
                m.breaker_transitions.to_string(),
                m.rejected_429.to_string(),
                format!("{} / {}", m.welcome_emails, m.outbox_left),
                failing(&d),
            ]);
            chaos.insert(
                format!("{}/{}", info.name, variant.name()),
                json!({"metrics": m, "breaker": d.breaker, "verdicts": checkers::check_all(&d.observations)}),
            );
        }
    }
    sections.push(Section {
        heading: "Stress scenarios (fault matrix)".into(),
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
        plots: Vec::new(),
    })
}
