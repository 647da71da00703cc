//! The flash-sale resilience report: the chaos document's tables, with exact numbers
//! from simulation in place of its estimates and its "TBD"s.

use serde_json::json;

use sim_runtime::time::Instant;

use super::run::{self, metrics_of};
use super::{checkers, FlashSale, Options, Params, Variant};
use crate::metrics::Sample;
use crate::report::{ms, pct, run_entry, ChaosPlot, ReportError, ScenarioReport, Section, Table};

fn yes_no(b: bool) -> String {
    if b {
        "Yes".into()
    } else {
        "No".into()
    }
}

/// Users arrive at 10 per second in the report (unless the caller says otherwise), so
/// that the sale is still going when the document's faults strike (T+2s, T+5s).
const REPORT_SPAWN_RATE: f64 = 10.0;

/// The chaos tests' headings, which their plots are placed under.
const TEST_1: &str = "Test 1: Worker Crash";
const TEST_2: &str = "Test 2: Redis Latency Injection";
const TEST_3: &str = "Test 3: Kafka Unavailable";
const TEST_REST: &str = "Order count and stock check after each chaos test";

pub fn build(seed: u64, options: &Options) -> Result<ScenarioReport, ReportError> {
    let params = Params {
        spawn_rate_per_s: options.spawn_rate.unwrap_or(REPORT_SPAWN_RATE),
        ..options.params()
    };
    let mut sections = Vec::new();
    let mut data = serde_json::Map::new();
    let mut plots = Vec::new();

    // Test 1: worker crash.
    let d = run_entry::<FlashSale>(seed, Variant::Correct, params, "worker_crash")?;
    let m = metrics_of(&d);
    let o = &d.observations;
    let during = m.phases.phases.get("2_during").cloned().unwrap_or_default();
    let lost = checkers::no_lost_ack(o);
    let oversold = (o.final_state.orders.len() as i64 - o.initial_stock).max(0);
    let mut t = Table::new(&["Metric", "Expected", "Simulated"]);
    t.row(vec![
        "API availability".into(),
        "100%".into(),
        pct(m.phases.phases["all"].availability_pct),
    ]);
    t.row(vec![
        "Data loss".into(),
        "0".into(),
        format!(
            "{}",
            o.acked.len()
                - o.acked
                    .keys()
                    .filter(|k| o
                        .final_state
                        .orders
                        .iter()
                        .any(|r| &r.idempotency_key == *k))
                    .count()
        ),
    ]);
    t.row(vec![
        "Overselling".into(),
        "0".into(),
        format!("{oversold}"),
    ]);
    t.row(vec![
        "Recovery time".into(),
        "< 30s".into(),
        m.recovery_ms.map_or("not recovered".into(), |r| {
            format!("{:.1} s after restart", r as f64 / 1000.0)
        }),
    ]);
    t.row(vec![
        "Total orders in DB".into(),
        format!("{}", params.items),
        format!("{}", o.final_state.orders.len()),
    ]);
    t.row(vec![
        "products.stock after recovery".into(),
        "0".into(),
        format!("{}", o.final_state.db_stock),
    ]);
    t.row(vec![
        "API availability while the worker is down".into(),
        "100%".into(),
        pct(during.availability_pct),
    ]);
    plots.push(ChaosPlot::of_requests::<FlashSale>(
        "Test 1: worker crash",
        TEST_1,
        "worker_crash",
        &[("correct", &d.samples)],
        d.end,
    ));
    sections.push(Section {
        heading: TEST_1.into(),
        text: format!(
            "Worker killed at T+5s, restarted at T+30s; {} users race for {} items; correct variant. Data loss check: {}.",
            params.users, params.items, lost.detail
        ),
        table: t,
    });
    data.insert(
        "worker_crash".into(),
        serde_json::to_value(&m).unwrap_or_default(),
    );

    // Test 2: Redis latency.
    let mut t = Table::new(&[
        "Latency Added",
        "API p50",
        "API p99",
        "Errors",
        "Orders in DB",
    ]);
    let mut latency_runs = Vec::new();
    for extra in [0u64, 50, 100, 500] {
        let name = format!("redis_latency_{extra}");
        let d = run_entry::<FlashSale>(seed, Variant::Correct, params, &name)?;
        let m = metrics_of(&d);
        let all = &m.phases.phases["all"];
        let timeout = params.user_timeout.as_secs_f64() * 1000.0;
        let show = |v: f64| {
            if v >= timeout {
                "timeout".to_string()
            } else {
                ms(v)
            }
        };
        t.row(vec![
            format!("{extra}ms"),
            show(all.p50_ms),
            show(all.p99_ms),
            pct(all.error_pct),
            format!("{}", m.orders_in_db),
        ]);
        data.insert(name, serde_json::to_value(&m).unwrap_or_default());
        latency_runs.push((format!("+{extra} ms"), d));
    }
    let runs: Vec<(&str, &[Sample])> = latency_runs
        .iter()
        .map(|(name, d)| (name.as_str(), d.samples.as_slice()))
        .collect();
    let end = latency_runs.iter().map(|(_, d)| d.end).max();
    plots.push(ChaosPlot::of_requests::<FlashSale>(
        "Test 2: Redis latency",
        TEST_2,
        // Every level's window is the same; the 500 ms entry's names the worst.
        "redis_latency_500",
        &runs,
        end.unwrap_or(Instant::START),
    ));
    sections.push(Section {
        heading: TEST_2.into(),
        text: format!(
            "Latency added to every Redis reply (toxiproxy's downstream latency toxic). The API's Redis timeout is {} ms; users time out after {} ms and retry with the same key.",
            params.redis_timeout.as_millis(),
            params.user_timeout.as_millis()
        ),
        table: t,
    });

    // Test 3: Kafka unavailable, the document's design against the correct variant.
    let mut t = Table::new(&[
        "Aspect",
        "Document's design (kafka_down_no_compensation)",
        "Correct variant (outbox)",
    ]);
    let doc = run_entry::<FlashSale>(seed, Variant::KafkaDownNoCompensation, params, "kafka_down")?;
    let fix = run_entry::<FlashSale>(seed, Variant::Correct, params, "kafka_down")?;
    let (md, mf) = (metrics_of(&doc), metrics_of(&fix));
    let dd = md
        .phases
        .phases
        .get("2_during")
        .cloned()
        .unwrap_or_default();
    let fd = mf
        .phases
        .phases
        .get("2_during")
        .cloned()
        .unwrap_or_default();
    let status = |s: &crate::metrics::Summary| {
        if s.errors + s.timeouts > 0 {
            format!(
                "500 for {} of {} requests",
                s.errors + s.timeouts,
                s.requests
            )
        } else {
            format!("200/409 for all {} requests", s.requests)
        }
    };
    t.row(vec![
        "HTTP status during the outage".into(),
        status(&dd),
        status(&fd),
    ]);
    let decremented = |d: &run::RunData| {
        (d.observations.initial_stock - d.observations.final_state.redis_stock) as usize
    };
    t.row(vec![
        "Stock decremented (Redis)".into(),
        format!("{}", decremented(&doc)),
        format!("{}", decremented(&fix)),
    ]);
    t.row(vec![
        "Orders persisted".into(),
        format!("{}", doc.observations.final_state.orders.len()),
        format!("{}", fix.observations.final_state.orders.len()),
    ]);
    let inconsistent = |d: &run::RunData| !checkers::conservation(&d.observations).ok;
    t.row(vec![
        "Inconsistency".into(),
        yes_no(inconsistent(&doc)),
        yes_no(inconsistent(&fix)),
    ]);
    t.row(vec![
        "Acknowledged orders lost".into(),
        format!("{}", no_lost_count(&doc)),
        format!("{}", no_lost_count(&fix)),
    ]);
    plots.push(ChaosPlot::of_requests::<FlashSale>(
        "Test 3: Kafka unavailable",
        TEST_3,
        "kafka_down",
        &[
            ("kafka_down_no_compensation", &doc.samples),
            ("correct", &fix.samples),
        ],
        doc.end.max(fix.end),
    ));
    sections.push(Section {
        heading: TEST_3.into(),
        text: "All brokers down from T+2s for 20 s.".into(),
        table: t,
    });
    data.insert("kafka_down".into(), json!({"document": md, "correct": mf}));

    // The remaining chaos tests: order count and stock check after each.
    let mut t = Table::new(&[
        "Chaos test",
        "Orders in DB",
        "Redis stock",
        "products.stock",
        "Acked lost",
        "Conservation",
        "Recovery",
        "Availability",
    ]);
    for name in ["none", "db_down", "api_kill", "partition_api_redis"] {
        let d = run_entry::<FlashSale>(seed, Variant::Correct, params, name)?;
        let m = metrics_of(&d);
        t.row(vec![
            name.into(),
            format!("{}", m.orders_in_db),
            format!("{}", m.redis_stock),
            format!("{}", m.db_stock),
            format!("{}", no_lost_count(&d)),
            if checkers::conservation(&d.observations).ok {
                "holds".into()
            } else {
                "VIOLATED".into()
            },
            m.recovery_ms.map_or("not drained".into(), |r| {
                format!("{:.1} s", r as f64 / 1000.0)
            }),
            pct(m.phases.phases["all"].availability_pct),
        ]);
        data.insert(name.into(), serde_json::to_value(&m).unwrap_or_default());
        if name != "none" {
            plots.push(ChaosPlot::of_requests::<FlashSale>(
                name,
                TEST_REST,
                name,
                &[("correct", &d.samples)],
                d.end,
            ));
        }
    }
    sections.push(Section {
        heading: TEST_REST.into(),
        text: "Correct variant. The document's verification queries, `SELECT COUNT(*) FROM orders` and `SELECT stock FROM products`, run after the backlog drains.".into(),
        table: t,
    });

    Ok(ScenarioReport {
        title: "Flux-Gate chaos testing, simulated".into(),
        preamble: format!(
            "Seed {seed:#x}; {} users arriving at {}/s race for {} items; {} API instances. Every number below is exact for this seed and reproduces bit for bit with `sim report flash-sale --seed {seed:#x}`.",
            params.users, params.spawn_rate_per_s, params.items, params.api_instances
        ),
        sections,
        data: serde_json::Value::Object(data),
        plots,
    })
}

fn no_lost_count(d: &run::RunData) -> usize {
    let o = &d.observations;
    o.acked
        .keys()
        .filter(|k| {
            !o.final_state
                .orders
                .iter()
                .any(|r| &r.idempotency_key == *k)
        })
        .count()
}
