//! What the scenarios' end-to-end tests share: a fault-matrix entry by name, a buggy
//! variant found by exploration and its seed replayed, the correct variant run across
//! the fault matrix and swarm schedules, and a report's HTML page drawn in a browser.

use std::sync::atomic::AtomicBool;

use scenarios::explore::SeedSpace;
use scenarios::report::ScenarioReport;
use scenarios::scenario::{Faults, Plan, Scenario, ServiceVariant};

/// The fault-matrix entry named `fault` of scenario `S`.
pub fn named<S: Scenario>(fault: &str) -> Faults<S::Fault> {
    let correct = <S::Variant as ServiceVariant>::ALL[0];
    Plan::<S>::parse(correct.name(), fault)
        .expect("a fault-matrix entry")
        .faults
}

/// Explores the first `bound` seeds of `variant` under `faults` from the tests' base,
/// asserts the lowest failure breaks `checker`, and that its seed replays to the same
/// fingerprint and verdicts.
pub fn found_and_replayed<S: Scenario>(
    variant: S::Variant,
    checker: &str,
    faults: Faults<S::Fault>,
    bound: u64,
) {
    let plan = Plan::<S>::new(variant, faults);
    let space = SeedSpace {
        base: 0x5eed,
        count: bound,
        shard: (0, 1),
    };
    let found = plan.explore(&space, 2, false, &AtomicBool::new(false), |_, _| {});
    let (index, out) = found
        .lowest
        .as_ref()
        .unwrap_or_else(|| panic!("{} not caught in {bound} seeds", variant.name()));
    assert!(
        out.verdicts.iter().any(|v| !v.ok && v.checker == checker),
        "{} failed, but not {checker}: {:?} (seed index {index})",
        variant.name(),
        out.failure_summary()
    );
    let again = plan.run(out.seed());
    assert_eq!(
        again.report.fingerprint,
        out.report.fingerprint,
        "{} seed {:#x}",
        variant.name(),
        out.seed()
    );
    assert_eq!(again.verdicts, out.verdicts);
}

/// The correct variant passes every fault-matrix entry at seed 1 and swarm seeds
/// `0..swarm_seeds`.
pub fn correct_survives<S: Scenario>(swarm_seeds: u64) {
    let correct = <S::Variant as ServiceVariant>::ALL[0];
    for (info, _) in S::matrix() {
        let out = Plan::<S>::new(correct, named::<S>(info.name)).run(1);
        assert!(!out.failed(), "{}: {:?}", info.name, out.failure_summary());
    }
    let swarm = Plan::<S>::new(correct, Faults::Swarm);
    for seed in 0..swarm_seeds {
        let out = swarm.run(seed);
        assert!(
            !out.failed(),
            "swarm seed {seed}: {:?}",
            out.failure_summary()
        );
    }
}

/// Where a test leaves its page and screenshot for a person to look at.
pub fn page_output(name: &str) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pages");
    std::fs::create_dir_all(&dir).expect("the test output directory can be made");
    dir.join(name)
}

/// Asserts that every plot of `report` shades its faults and draws a line per run in each
/// panel, then, where Chromium is installed, that its page `name` draws them all with no
/// console output or script error.
pub fn report_page_draws_its_plots(report: &ScenarioReport, name: &str) {
    for plot in &report.plots {
        assert!(!plot.faults.is_empty(), "{}: fault windows", plot.test);
        assert!(
            report.sections.iter().any(|s| s.heading == plot.section),
            "{}: under a section of the report",
            plot.test
        );
        for panel in &plot.panels {
            assert!(!panel.lines.is_empty(), "{}: {}", plot.test, panel.title);
        }
    }
    let Some(r) = draw_page(&report.to_html(), name) else {
        return;
    };
    let panels: usize = report.plots.iter().map(|p| p.panels.len()).sum();
    assert_eq!(r.count_class("chaos-plot"), report.plots.len());
    assert_eq!(r.count_class("plot"), panels);
}

/// Writes `html` as page `name` and draws it in headless Chromium, leaving a screenshot
/// beside it; asserts an empty console and no script error. `None` where Chromium is
/// not installed (outside CI).
pub fn draw_page(html: &str, name: &str) -> Option<sim_tests::browser::Rendered> {
    let browser = sim_tests::browser::chromium()?;
    let page = page_output(name);
    std::fs::write(&page, html).expect("the page is written");
    let shot = page.with_extension("png");
    let r = sim_tests::browser::render(&browser, &page, &shot);
    eprintln!("page: {}\nscreenshot: {}", page.display(), shot.display());
    assert_eq!(r.console, Vec::<String>::new(), "no console output");
    assert!(
        r.dom.contains("<ul id=\"errors\" hidden=\"\">"),
        "no script error"
    );
    Some(r)
}
