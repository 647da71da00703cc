//! `sometimes!` probes over a sweep of the flash sale: the same 200 seeds as `sim explore
//! flash-sale --variant correct --fault swarm --seeds 200 --require-probes` reach every
//! probe of the flash sale, and a probe planted where no code path goes is listed by name
//! as never held.

use std::sync::atomic::AtomicBool;

use scenarios::checker::Verdict;
use scenarios::explore::SeedSpace;
use scenarios::flash_sale::{self, FlashSale};
use scenarios::report::{ReportError, ScenarioReport};
use scenarios::scenario::{FaultInfo, FaultProblem, Plan, Scenario, SwarmShape};
use sim_runtime::probe;
use sim_runtime::schedule::FaultSchedule;
use sim_runtime::SimRng;

/// The planted probe: in code that nothing calls.
mod planted {
    #[allow(dead_code)]
    pub fn never_called() {
        sim_runtime::sometimes!("planted.unreachable_path", true);
    }
}

/// The flash sale itself, with the planted probe's module added to its probe scope.
struct FlashSaleWithPlantedProbe;

impl Scenario for FlashSaleWithPlantedProbe {
    const NAME: &'static str = "flash-sale-planted";
    const DESCRIPTION: &'static str = "the flash sale, with a probe no run can reach";
    type Variant = flash_sale::Variant;
    type Fault = flash_sale::faults::FlashFault;
    type Options = flash_sale::Options;
    type Metrics = flash_sale::run::RunMetrics;
    type Params = flash_sale::Params;
    const SWARM: SwarmShape = FlashSale::SWARM;

    fn matrix() -> Vec<(FaultInfo, FaultSchedule<Self::Fault>)> {
        FlashSale::matrix()
    }

    fn check_fault(fault: &Self::Fault, options: &Self::Options) -> Result<(), FaultProblem> {
        FlashSale::check_fault(fault, options)
    }

    fn draw_fault(kind: &str, rng: &mut SimRng, options: &Self::Options) -> Self::Fault {
        FlashSale::draw_fault(kind, rng, options)
    }

    fn params(options: &Self::Options) -> Self::Params {
        FlashSale::params(options)
    }

    fn judge(data: &flash_sale::run::RunData) -> (Vec<Verdict>, Self::Metrics) {
        FlashSale::judge(data)
    }

    fn probe_scope() -> Vec<&'static str> {
        let mut scope = FlashSale::probe_scope();
        scope.push(module_path!());
        scope
    }

    fn report(seed: u64, options: &Self::Options) -> Result<ScenarioReport, ReportError> {
        FlashSale::report(seed, options)
    }
}

/// What `sim explore --seeds 200` runs: the harness's default seed base.
fn two_hundred_seeds() -> SeedSpace {
    SeedSpace {
        base: sim_runtime::harness::DEFAULT_SEED_BASE,
        count: 200,
        shard: (0, 1),
    }
}

#[test]
fn the_flash_sale_scope_is_its_module_and_holds_its_probes() {
    assert_eq!(FlashSale::probe_scope(), ["scenarios::flash_sale"]);
    let names: Vec<&str> = probe::declared()
        .into_iter()
        .filter(|s| s.within(&FlashSale::probe_scope()))
        .map(|s| s.name)
        .collect();
    for expected in [
        "flash_sale.relay.publish_failed_entry_kept",
        "flash_sale.worker.restarted_after_crash",
        "flash_sale.user.retry_after_timeout",
        "flash_sale.api.duplicate_answers_the_first_order",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    assert!(!names.contains(&"planted.unreachable_path"));
}

#[test]
fn a_swarm_sweep_reaches_every_flash_sale_probe_and_lists_the_planted_one() {
    let plan = Plan::<FlashSaleWithPlantedProbe>::parse("correct", "swarm").unwrap();
    let found = plan.explore(
        &two_hundred_seeds(),
        2,
        false,
        &AtomicBool::new(false),
        |_, _| {},
    );
    assert_eq!(found.runs, 200);
    assert!(found.lowest.is_none(), "the correct variant passes");
    // No `always!` failed, and each flash-sale `sometimes!` held in some seed.
    assert_eq!(found.probes.broken().count(), 0);
    let unfired = probe::unfired(&FlashSale::probe_scope(), &found.probes);
    assert!(unfired.is_empty(), "{}", probe::list(&unfired));
    // The planted one never did, and the failure says its name and place.
    let unfired = probe::unfired(&FlashSaleWithPlantedProbe::probe_scope(), &found.probes);
    let names: Vec<&str> = unfired.iter().map(|s| s.name).collect();
    assert_eq!(names, ["planted.unreachable_path"]);
    let listed = probe::list(&unfired);
    assert!(
        listed.starts_with("  sometimes!(planted.unreachable_path) at ")
            && listed.contains("probes.rs:"),
        "{listed}"
    );
    // The table shows every probe of the scope, the planted one at 0.
    let table = found
        .probes
        .table(&FlashSaleWithPlantedProbe::probe_scope(), found.runs);
    let planted = table
        .iter()
        .find(|r| r.name == "planted.unreachable_path")
        .unwrap();
    assert_eq!(
        (planted.runs, planted.runs_held, planted.evaluated),
        (200, 0, 0)
    );
}

#[test]
fn probe_counts_do_not_depend_on_the_thread_count() {
    let plan = Plan::<FlashSale>::parse("correct", "swarm").unwrap();
    let space = SeedSpace {
        count: 12,
        ..two_hundred_seeds()
    };
    let stop = AtomicBool::new(false);
    let one = plan.explore(&space, 1, false, &stop, |_, _| {});
    let two = plan.explore(&space, 2, false, &stop, |_, _| {});
    assert!(!one.probes.is_empty());
    assert_eq!(one.probes, two.probes);
}
