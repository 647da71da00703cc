//! The scenarios by name, their types erased, for the `sim` program: it parses a plan from
//! the user's text once ([`AnyScenario::plan`]) and then runs, explores and shrinks it
//! without knowing the scenario's types. Schedules and metrics come back as JSON, the
//! program's output format.

use std::io::Write;
use std::sync::atomic::AtomicBool;

use clap::{ArgMatches, Command, FromArgMatches};
use serde_json::Value;
use sim_runtime::schedule::{FaultSchedule, ScheduledFault};
use sim_runtime::timeline::{Timeline, TimelineError};

use crate::explore::{Exploration, SeedResult, SeedSpace};
use crate::report::{ReportError, ScenarioReport};
use crate::scenario::{
    check_schedule, parse_schedule, FaultInfo, Faults, Output, Plan, RunOutput, Scenario,
    ServiceVariant, SpecError, VariantInfo,
};

/// A run's output with its schedule and metrics as JSON.
pub type AnyRunOutput = RunOutput<Value, Value>;

/// Where a plan's faults come from, as the user gave them.
#[derive(Clone, Copy, Debug)]
pub enum FaultText<'a> {
    /// A fault-matrix entry, or `swarm`.
    Named(&'a str),
    /// A schedule's JSON text; `origin` says where it came from (`file shrunk.json`).
    Schedule { origin: &'a str, json: &'a str },
}

/// A scenario as the `sim` program sees it.
pub trait AnyScenario: Sync {
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    fn variants(&self) -> Vec<VariantInfo>;
    fn faults(&self) -> Vec<FaultInfo>;
    /// The module trees whose `sometimes!` probes a sweep should reach.
    fn probe_scope(&self) -> Vec<&'static str>;
    /// `cmd` with the scenario's own options added.
    fn add_options(&self, cmd: Command) -> Command;
    /// Parses a plan: the variant's name, the faults and the options `matches` holds
    /// (from a command that [`AnyScenario::add_options`] built).
    fn plan(
        &self,
        variant: &str,
        faults: FaultText<'_>,
        matches: &ArgMatches,
    ) -> Result<Box<dyn AnyPlan>, SpecError>;
    /// The resilience report with the options `matches` holds.
    fn report_with(&self, seed: u64, matches: &ArgMatches) -> Result<ScenarioReport, AnyError>;
}

/// What [`AnyScenario::report_with`] can meet: bad options, or a run that did not complete.
#[derive(Debug, thiserror::Error)]
pub enum AnyError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Report(#[from] ReportError),
}

/// A plan as the `sim` program sees it.
pub trait AnyPlan: Send + Sync {
    fn variant(&self) -> &'static str;
    /// The matrix entry's name, `swarm` or `schedule`.
    fn fault(&self) -> &'static str;
    /// The options where they differ from the defaults, as arguments (for replay lines).
    fn option_args(&self) -> Vec<String>;
    fn options_json(&self) -> Value;
    fn run(&self, seed: u64, trace: Option<Box<dyn Write>>) -> AnyRunOutput;
    fn explore(
        &self,
        space: &SeedSpace,
        jobs: usize,
        collect_all: bool,
        stop: &AtomicBool,
        on_result: &mut dyn FnMut(&SeedResult, Option<&AnyRunOutput>),
    ) -> Exploration<Value, Value>;
    fn shrink(&self, seed: u64) -> Option<(FaultSchedule<Value>, AnyRunOutput)>;
    /// Runs one seed with its trace kept: the output, the trace as JSON lines, and the
    /// run's timeline page data (`details` head the page).
    fn run_with_timeline(
        &self,
        seed: u64,
        details: Vec<(String, String)>,
    ) -> Result<(AnyRunOutput, String, Timeline), TimelineError>;
}

fn options<S: Scenario>(matches: &ArgMatches) -> Result<S::Options, SpecError> {
    S::Options::from_arg_matches(matches).map_err(|e| SpecError::BadOptions {
        scenario: S::NAME,
        detail: sim_runtime::harness::elide(&e.to_string()),
    })
}

impl<S: Scenario> AnyScenario for S {
    fn name(&self) -> &'static str {
        S::NAME
    }

    fn description(&self) -> &'static str {
        S::DESCRIPTION
    }

    fn variants(&self) -> Vec<VariantInfo> {
        S::Variant::ALL.iter().map(|v| v.info()).collect()
    }

    fn faults(&self) -> Vec<FaultInfo> {
        S::matrix().into_iter().map(|(info, _)| info).collect()
    }

    fn probe_scope(&self) -> Vec<&'static str> {
        S::probe_scope()
    }

    fn add_options(&self, cmd: Command) -> Command {
        <S::Options as clap::Args>::augment_args(cmd)
    }

    fn plan(
        &self,
        variant: &str,
        faults: FaultText<'_>,
        matches: &ArgMatches,
    ) -> Result<Box<dyn AnyPlan>, SpecError> {
        let options = options::<S>(matches)?;
        let plan = match faults {
            FaultText::Named(name) => {
                let plan = Plan::<S>::parse(variant, name)?;
                // The matrix's entries fit the default options, not necessarily these.
                if let Faults::Named { schedule, .. } = &plan.faults {
                    let origin = format!("of fault-matrix entry {name}");
                    check_schedule::<S>(&origin, schedule, &options)?;
                }
                plan
            }
            FaultText::Schedule { origin, json } => Plan::<S>::new(
                crate::scenario::parse_variant::<S>(variant)?,
                Faults::Schedule(parse_schedule::<S>(origin, json, &options)?),
            ),
        };
        Ok(Box::new(plan.with_options(options)))
    }

    fn report_with(&self, seed: u64, matches: &ArgMatches) -> Result<ScenarioReport, AnyError> {
        Ok(S::report(seed, &options::<S>(matches)?)?)
    }
}

fn json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn erase<S: Scenario>(out: Output<S>) -> AnyRunOutput {
    RunOutput {
        variant: out.variant,
        fault: out.fault,
        report: out.report,
        verdicts: out.verdicts,
        schedule: erase_schedule(&out.schedule),
        swarm: out.swarm,
        metrics: out.metrics.as_ref().map(json),
    }
}

fn erase_schedule<F: serde::Serialize>(schedule: &FaultSchedule<F>) -> FaultSchedule<Value> {
    FaultSchedule {
        faults: schedule
            .iter()
            .map(|f| ScheduledFault {
                at_ms: f.at_ms,
                fault: json(&f.fault),
            })
            .collect(),
    }
}

impl<S: Scenario> AnyPlan for Plan<S> {
    fn variant(&self) -> &'static str {
        self.variant.name()
    }

    fn fault(&self) -> &'static str {
        self.faults.name()
    }

    fn option_args(&self) -> Vec<String> {
        crate::options::args(&self.options)
    }

    fn options_json(&self) -> Value {
        json(&self.options)
    }

    fn run(&self, seed: u64, trace: Option<Box<dyn Write>>) -> AnyRunOutput {
        erase::<S>(match trace {
            Some(out) => Plan::run_traced(self, seed, out),
            None => Plan::run(self, seed),
        })
    }

    fn explore(
        &self,
        space: &SeedSpace,
        jobs: usize,
        collect_all: bool,
        stop: &AtomicBool,
        on_result: &mut dyn FnMut(&SeedResult, Option<&AnyRunOutput>),
    ) -> Exploration<Value, Value> {
        // Failures are rare: erasing a copy of each costs nothing next to its run.
        let found = Plan::explore(self, space, jobs, collect_all, stop, |r, failure| {
            on_result(r, failure.map(|out| erase::<S>(out.clone())).as_ref())
        });
        Exploration {
            runs: found.runs,
            failed: found.failed,
            lowest: found.lowest.map(|(index, out)| (index, erase::<S>(out))),
            interrupted: found.interrupted,
            probes: found.probes,
        }
    }

    fn shrink(&self, seed: u64) -> Option<(FaultSchedule<Value>, AnyRunOutput)> {
        let (schedule, out) = Plan::shrink(self, seed)?;
        Some((erase_schedule(&schedule), erase::<S>(out)))
    }

    fn run_with_timeline(
        &self,
        seed: u64,
        details: Vec<(String, String)>,
    ) -> Result<(AnyRunOutput, String, Timeline), TimelineError> {
        let (out, jsonl, timeline) = crate::timeline::run_with_timeline(self, seed, details)?;
        Ok((erase::<S>(out), jsonl, timeline))
    }
}

/// Every scenario the `sim` program knows.
pub fn registry() -> Vec<&'static dyn AnyScenario> {
    vec![
        &crate::flash_sale::FlashSale,
        &crate::appointments::Appointments,
        &crate::medistream::Medistream,
        &crate::story_backend::StoryBackend,
        &crate::interdomestik::Interdomestik,
    ]
}

/// A scenario by name.
pub fn find(name: &str) -> Result<&'static dyn AnyScenario, SpecError> {
    registry()
        .into_iter()
        .find(|s| s.name() == name)
        .ok_or_else(|| SpecError::UnknownScenario(sim_runtime::harness::elide(name)))
}
