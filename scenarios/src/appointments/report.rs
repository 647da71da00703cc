//! The appointments backend's report: the document's key metrics, chaos tests, breaker
//! transitions and production-readiness checklist, filled with exact numbers from
//! simulation where the document has checkboxes and "Ready for Testing".

use serde_json::json;

use super::checkers::{self, Observations};
use super::faults;
use super::run::{metrics_of, RunData, RunMetrics};
use super::{Appointments, Options, Variant};
use crate::metrics::Summary;
use crate::report::{
    ms, pct, run_entry, variant_rows, verdicts_cell, ChaosPlot, ReportError, ScenarioReport,
    Section, Table,
};

/// The document's response-time SLO: every endpoint's p95 under 500 ms.
const SLO_P95_MS: f64 = 500.0;
/// The document's critical-error budget: 5xx under 0.1 % of requests.
const SLO_5XX_PCT: f64 = 0.1;

/// A breaker state as the document writes it (`HALF_OPEN`).
fn state_name(s: crate::patterns::BreakerState) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn yes_no(b: bool) -> String {
    if b { "Yes" } else { "No" }.into()
}

/// 5xx answers (and unanswered requests) per request, in percent.
fn server_error_pct(s: &Summary) -> f64 {
    s.error_pct
}

/// When bookings reached the database again after the last heal, in ms.
fn recovery_ms(o: &Observations) -> Option<u64> {
    o.bookings
        .iter()
        .find(|a| a.start >= o.healed_at && matches!(a.status, Some(201 | 409)))
        .map(|a| a.start.duration_since(o.healed_at).as_millis() as u64)
}

fn endpoint_row(name: &str, s: &Summary) -> Vec<String> {
    vec![
        name.into(),
        s.requests.to_string(),
        ms(s.p50_ms),
        ms(s.p95_ms),
        ms(s.p99_ms),
        yes_no(s.p95_ms < SLO_P95_MS),
        pct(server_error_pct(s)),
    ]
}

/// The chaos tests' heading, which their plots are placed under.
const CHAOS_TESTS: &str = "Chaos tests";

pub fn build(seed: u64, options: &Options) -> Result<ScenarioReport, ReportError> {
    let params = options.params();
    let mut sections = Vec::new();
    let mut data = serde_json::Map::new();

    // Key metrics under normal load.
    let normal = run_entry::<Appointments>(seed, Variant::Correct, params, "none")?;
    let m = metrics_of(&normal);
    let mut t = Table::new(&[
        "Endpoint",
        "Requests",
        "p50",
        "p95",
        "p99",
        "p95 < 500 ms",
        "5xx and timeouts",
    ]);
    t.row(endpoint_row("GET /doctors/{id}/slots", &m.free_slots));
    t.row(endpoint_row("POST /appointments", &m.book));
    sections.push(Section {
        heading: "Key metrics under normal load".into(),
        text: format!(
            "{} users arriving at {}/s, {} doctors with {} slots each, {} API instances; \
             correct variant, no faults. SLOs: p95 < {SLO_P95_MS} ms, 5xx < {SLO_5XX_PCT} %.",
            params.users,
            params.spawn_rate_per_s,
            params.doctors,
            params.slots_per_doctor,
            params.api_instances
        ),
        table: t,
    });
    data.insert(
        "normal".into(),
        serde_json::to_value(&m).unwrap_or_default(),
    );

    // The chaos tests, correct variant.
    let mut t = Table::new(&[
        "Chaos test",
        "Bookings p95",
        "503s (any request)",
        "500s",
        "Timeouts",
        "Bookings back after heal",
        "Double bookings",
        "Checkers",
    ]);
    let mut chaos: Vec<(String, RunData, RunMetrics)> = Vec::new();
    for (info, _) in faults::matrix() {
        let d = run_entry::<Appointments>(seed, Variant::Correct, params, info.name)?;
        let m = metrics_of(&d);
        let o = &d.observations;
        let verdicts = checkers::check_all(o);
        t.row(vec![
            info.name.into(),
            ms(m.book.p95_ms),
            o.unavailable.to_string(),
            o.server_errors.to_string(),
            o.timeouts.to_string(),
            if info.name == "none" {
                "no fault".into()
            } else {
                recovery_ms(o).map_or("no booking after heal".into(), |r| format!("{r} ms"))
            },
            m.double_booked_slots.to_string(),
            verdicts_cell(&verdicts),
        ]);
        data.insert(
            info.name.into(),
            serde_json::to_value(&m).unwrap_or_default(),
        );
        chaos.push((info.name.to_string(), d, m));
    }
    let plots: Vec<ChaosPlot> = chaos
        .iter()
        .filter(|(name, _, _)| name != "none")
        .map(|(name, d, _)| {
            ChaosPlot::of_requests::<Appointments>(
                name,
                CHAOS_TESTS,
                name,
                &[("bookings", &d.bookings), ("slot lists", &d.lists)],
                d.end,
            )
        })
        .collect();
    sections.push(Section {
        heading: CHAOS_TESTS.into(),
        text: "Each fault strikes at T+5s; correct variant. \"Bookings back after heal\" is \
               how long after the last fault healed a booking first reached the database \
               (201 or 409)."
            .into(),
        table: t,
    });

    // The breaker's transitions during the database failure.
    let mut t = Table::new(&["At", "Instance", "From", "To"]);
    if let Some((_, _, m)) = chaos.iter().find(|(name, _, _)| name == "db_down") {
        for c in &m.breaker {
            t.row(vec![
                format!("{:.3} s", c.at_ms as f64 / 1000.0),
                c.instance.clone(),
                state_name(c.from),
                state_name(c.to),
            ]);
        }
    }
    sections.push(Section {
        heading: "Circuit breaker state transitions (database failure)".into(),
        text: "The database fails at T+5s for 10 s. Each API instance's breaker opens after 5 \
               consecutive failures, answers 503 at once while open, lets probes through \
               (HALF_OPEN) after 3 s, and closes after 2 successful probes."
            .into(),
        table: t,
    });

    // Concurrent appointment creation: the unique constraint against SELECT-then-INSERT.
    let mut t = Table::new(&[
        "Variant",
        "Booked (201)",
        "Conflicts (409)",
        "Double-booked slots",
    ]);
    let variants = [Variant::Correct, Variant::SelectThenInsert];
    let concurrent = variant_rows(&mut t, &variants, |variant| {
        let d = run_entry::<Appointments>(seed, variant, params, "none")?;
        let m = metrics_of(&d);
        let booked = d.observations.acked.len();
        let cells = vec![
            booked.to_string(),
            m.conflicts.to_string(),
            m.double_booked_slots.to_string(),
        ];
        let value = json!({"booked": booked, "conflicts": m.conflicts,
                           "double_booked_slots": m.double_booked_slots});
        Ok((cells, value))
    })?;
    sections.push(Section {
        heading: "Concurrent appointment creation".into(),
        text: "Users pick among the three earliest free slots, so they collide; no faults.".into(),
        table: t,
    });
    data.insert("concurrent".into(), concurrent);

    // The document's production-readiness checklist.
    let run_of = |name: &str| chaos.iter().find(|(n, _, _)| n == name);
    let passes = |name: &str| {
        run_of(name)
            .is_some_and(|(_, d, _)| checkers::check_all(&d.observations).iter().all(|v| v.ok))
    };
    let normal_ok = m_ok(&metrics_of(&normal));
    let mut t = Table::new(&["Checklist item", "Met", "Evidence"]);
    t.row(vec![
        "Normal load test: all endpoints < 500 ms".into(),
        yes_no(normal_ok),
        "p95 of both endpoints, table 1".into(),
    ]);
    t.row(vec![
        "Chaos test: circuit breaker activates and recovers".into(),
        yes_no(passes("db_down")),
        "db_down: every checker, including recovery".into(),
    ]);
    t.row(vec![
        "Database failure: system returns 503, not 5xx errors".into(),
        yes_no(run_of("db_down").is_some_and(|(_, d, _)| d.observations.server_errors == 0)),
        "no 500 and no timeout during db_down".into(),
    ]);
    t.row(vec![
        "Redis failure: system operates at reduced performance".into(),
        yes_no(passes("redis_down")),
        "redis_down: reads fall back to the database".into(),
    ]);
    t.row(vec![
        "Concurrent appointments: no double-booking (409 conflicts)".into(),
        yes_no(chaos.iter().all(|(_, _, m)| m.double_booked_slots == 0)),
        "every chaos test of the correct variant".into(),
    ]);
    sections.push(Section {
        heading: "Production readiness checklist".into(),
        text: String::new(),
        table: t,
    });

    Ok(ScenarioReport {
        title: "Phase 11: load and chaos testing of the appointments backend".into(),
        preamble: format!(
            "Every number below comes from simulation with seed {seed} and replays exactly."
        ),
        sections,
        data: serde_json::Value::Object(data),
        plots,
    })
}

/// Whether a run meets the document's SLOs on both endpoints.
fn m_ok(m: &RunMetrics) -> bool {
    [&m.free_slots, &m.book]
        .iter()
        .all(|s| s.p95_ms < SLO_P95_MS && server_error_pct(s) < SLO_5XX_PCT)
}
