//! The HTML pages, checked in a real browser: a failing flash-sale seed's timeline shows
//! its lanes, fault windows and violation with no script error, the report page has one
//! plot per chaos test, and a snapshot pins the data a small run's page embeds. Each test
//! leaves the page and a screenshot in the test's output directory for a person to see.

use scenarios::flash_sale::{FlashSale, Options, Variant};
use scenarios::scenario::{Faults, Plan, Scenario};
use scenarios::timeline::run_with_timeline;

use crate::support::draw_page;

/// A small flash sale, oversold by `check_then_decrement` under swarm faults.
fn small_oversell() -> (Plan<FlashSale>, u64) {
    let options = Options {
        users: 120,
        items: 20,
        ..Options::default()
    };
    let plan =
        Plan::<FlashSale>::new(Variant::CheckThenDecrement, Faults::Swarm).with_options(options);
    let seed = (1..64)
        .find(|&s| {
            let out = plan.run(s);
            !out.schedule.is_empty()
                && out
                    .verdicts
                    .iter()
                    .any(|v| !v.ok && v.checker == "no_oversell")
        })
        .expect("an oversell with faults within 64 seeds");
    (plan, seed)
}

#[test]
fn a_failing_seeds_timeline_renders_lanes_faults_and_the_violation() {
    let (plan, seed) = small_oversell();
    let (out, _, timeline) = run_with_timeline(&plan, seed, Vec::new()).unwrap();
    assert!(out.failed());
    let violation = timeline.violation.as_ref().expect("the oversell is marked");
    assert_eq!(violation.checker, "no_oversell");
    assert!(
        violation.marks.len() > 20,
        "the stock writes and acknowledgements lead to it: {}",
        violation.marks.len()
    );
    assert!(!timeline.faults.is_empty());
    let Some(r) = draw_page(&timeline.to_html(), "flash_sale_oversell.html") else {
        return;
    };
    assert_eq!(r.body_data("rendered"), Some("true"));
    let lanes = timeline.lanes.len();
    assert_eq!(r.body_data("lanes"), Some(lanes.to_string().as_str()));
    assert_eq!(
        r.count_class("lane"),
        lanes + 1,
        "a label per node, and the schedule"
    );
    assert!(r.count_class("fault-window") >= timeline.faults.len());
    assert!(r.dom.contains("id=\"violation\""));
    assert!(r.dom.contains("no_oversell"));
    assert!(
        std::fs::metadata(crate::support::page_output("flash_sale_oversell.png"))
            .unwrap()
            .len()
            > 10_000,
        "a screenshot"
    );
}

#[test]
fn the_report_page_has_one_plot_per_chaos_test() {
    let options = Options {
        users: 150,
        items: 30,
        ..Options::default()
    };
    let report = FlashSale::report(1, &options).unwrap();
    // Worker crash, Redis latency, Kafka down, and the three other faults of the matrix.
    assert_eq!(report.plots.len(), 6);
    let Some(r) = draw_page(&report.to_html(), "flash_sale_report.html") else {
        return;
    };
    assert_eq!(r.body_data("plots"), Some("6"));
    assert_eq!(r.count_class("chaos-plot"), 6);
    assert_eq!(
        r.count_class("plot"),
        6 * 4,
        "throughput, p50, p99, error rate"
    );
    assert!(
        r.count_class("fault-window") >= 6 * 4,
        "each plot shades its faults"
    );
    assert_eq!(r.count_class("series"), 4 * (1 + 4 + 2 + 3));
}

#[test]
fn the_same_seed_twice_gives_the_same_page() {
    let (plan, seed) = small_oversell();
    let a = run_with_timeline(&plan, seed, Vec::new()).unwrap();
    let b = run_with_timeline(&plan, seed, Vec::new()).unwrap();
    assert_eq!(a.0.report.fingerprint, b.0.report.fingerprint);
    assert_eq!(a.2.to_html(), b.2.to_html());
}

#[test]
fn snapshot_of_a_small_runs_page_data() {
    let options = Options {
        users: 12,
        items: 3,
        ..Options::default()
    };
    let plan =
        Plan::<FlashSale>::new(Variant::CheckThenDecrement, Faults::Swarm).with_options(options);
    let (_, _, t) = run_with_timeline(&plan, 2, Vec::new()).unwrap();
    // What the page draws, without the raw events its clicks show.
    insta::assert_json_snapshot!(
        "flash_sale_small_page_data_seed_2",
        serde_json::json!({
            "run": t.run,
            "end_ns": t.end_ns,
            "lanes": t.lanes,
            "spans": t.spans,
            "faults": t.faults,
            "violation": t.violation,
            "message_kinds": t.messages.kinds,
            "messages": t.messages.total,
            "first_arrows": &t.messages.arrows[..t.messages.arrows.len().min(12)],
            "ticks": t.ticks.len(),
            "events": t.events.len(),
        })
    );
}
