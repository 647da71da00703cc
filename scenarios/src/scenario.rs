//! The contract between a system under test and everything that runs it (the `sim`
//! program, the tests). A [`Scenario`] declares its types (service variants, fault enum,
//! options, metrics), its fault matrix and swarm, and runs one seed. A [`Plan`] is
//! everything about a run but its seed, parsed and checked once: exploring runs one plan
//! with only the seed changing. [`crate::catalog`] erases the types for the `sim` program.

use std::fmt;
use std::future::Future;
use std::io::Write;
use std::sync::atomic::AtomicBool;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sim_runtime::harness::elide;
use sim_runtime::schedule::FaultSchedule;
use sim_runtime::time::{Duration, Instant};
use sim_runtime::{Report, Sim, SimRng, Swarm};

use crate::checker::Verdict;
use crate::explore::{self, Exploration, SeedResult, SeedSpace};
use crate::inject::{healed_at, Windowed};
use crate::report::{ReportError, ScenarioReport};
use crate::shrink::{self, ShrinkFault};

/// A variant of a scenario's service logic: the correct one, or a buggy one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct VariantInfo {
    pub name: &'static str,
    pub buggy: bool,
    pub description: &'static str,
}

/// One named entry of a scenario's fault matrix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FaultInfo {
    pub name: &'static str,
    pub description: &'static str,
}

/// A scenario's enum of service variants.
pub trait ServiceVariant: Copy + fmt::Debug + PartialEq + Send + Sync + 'static {
    /// Every variant, the correct one first.
    const ALL: &'static [Self];

    fn info(self) -> VariantInfo;

    /// The name users type (`--variant`).
    fn name(self) -> &'static str {
        self.info().name
    }
}

/// Declares a scenario's enum of service variants and its [`ServiceVariant`] impl from one
/// line per variant: the name users type and what it does. The first variant is the
/// correct one; every other is buggy.
#[macro_export]
macro_rules! service_variants {
    (
        $(#[$meta:meta])*
        $vis:vis enum $enum:ident {
            $correct:ident => ($correct_name:literal, $correct_description:literal),
            $($buggy:ident => ($name:literal, $description:literal),)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
        #[serde(rename_all = "snake_case")]
        $vis enum $enum {
            $correct,
            $($buggy,)+
        }

        impl $crate::scenario::ServiceVariant for $enum {
            const ALL: &'static [$enum] = &[$enum::$correct, $($enum::$buggy,)+];

            fn info(self) -> $crate::scenario::VariantInfo {
                let (name, description) = match self {
                    $enum::$correct => ($correct_name, $correct_description),
                    $($enum::$buggy => ($name, $description),)+
                };
                $crate::scenario::VariantInfo {
                    name,
                    buggy: self != $enum::$correct,
                    description,
                }
            }
        }
    };
}

/// A system under test.
pub trait Scenario: Sized + Sync + 'static {
    /// The name users type (`sim run flash-sale`).
    const NAME: &'static str;
    const DESCRIPTION: &'static str;

    type Variant: ServiceVariant;
    /// One fault of the system; a schedule of them is editable JSON and shrinks. Fields
    /// named `…_ms` hold milliseconds (schedules are checked against a horizon by name).
    type Fault: Clone
        + fmt::Debug
        + Serialize
        + DeserializeOwned
        + ShrinkFault
        + Windowed
        + Send
        + Sync;
    /// The scenario's own options (sizes, rates), as command-line arguments. Each field is
    /// one `--field-name` of a scalar, a list or a flag, so that a plan's options print back
    /// as arguments ([`crate::options::args`]); `Default` is what an absent flag means.
    type Options: clap::Args + Clone + fmt::Debug + Default + PartialEq + Serialize + Send + Sync;
    /// What a completed run measured, for `sim run` and reports.
    type Metrics: Clone + fmt::Debug + Serialize + Send;

    /// The fault matrix: one named schedule per row of the system's chaos document, a
    /// fault-free `none` among them.
    fn matrix() -> Vec<(FaultInfo, FaultSchedule<Self::Fault>)>;

    /// Why `fault` cannot run under `options` (an instance that does not exist), checked
    /// when a schedule is loaded. Times need no check here: every `…_ms` field is held
    /// within [`SCHEDULE_HORIZON_MS`] for all scenarios.
    fn check_fault(fault: &Self::Fault, options: &Self::Options) -> Result<(), FaultProblem> {
        let _ = (fault, options);
        Ok(())
    }

    /// Swarm testing: the fault kinds a seed switches on or off, and when their faults
    /// come.
    const SWARM: SwarmShape;

    /// One fault of `kind` (one of [`SwarmShape::kinds`]) drawn from `rng`, for a swarm.
    fn draw_fault(kind: &str, rng: &mut SimRng, options: &Self::Options) -> Self::Fault;

    /// A schedule drawn from the seed over every fault kind (swarm testing).
    fn swarm(seed: u64, options: &Self::Options) -> (Swarm, FaultSchedule<Self::Fault>) {
        let shape = Self::SWARM;
        crate::inject::swarm_of(
            seed,
            shape.kinds,
            shape.horizon,
            shape.mean_gap,
            |kind, rng| Self::draw_fault(kind, rng, options),
        )
    }

    /// A run's parameters under `options`; their [`Flow`] runs a seed.
    type Params: Flow<Variant = Self::Variant, Fault = Self::Fault>;

    fn params(options: &Self::Options) -> Self::Params;

    /// The checkers' verdicts on a completed run's data, and what it measured.
    fn judge(data: &<Self::Params as Flow>::Data) -> (Vec<Verdict>, Self::Metrics);

    /// Runs one seed under `schedule` and checks it; with `trace`, every event goes there
    /// as a JSON line.
    fn simulate(
        seed: u64,
        variant: Self::Variant,
        options: &Self::Options,
        schedule: FaultSchedule<Self::Fault>,
        trace: Option<Box<dyn Write>>,
    ) -> Simulated<Self::Metrics> {
        let (report, data) = simulate_flow(seed, variant, Self::params(options), schedule, trace);
        Simulated::judge(report, data.as_ref(), Self::judge)
    }

    /// The module trees whose declared `sometimes!` probes a sweep of this scenario
    /// should see hold (`sim explore --require-probes`): by default the scenario type's
    /// own module, where its service logic lives.
    fn probe_scope() -> Vec<&'static str> {
        let name = std::any::type_name::<Self>();
        vec![name.rsplit_once("::").map_or(name, |(module, _)| module)]
    }

    /// The resilience report (Markdown and JSON) from runs of the fault matrix.
    fn report(seed: u64, options: &Self::Options) -> Result<ScenarioReport, ReportError>;
}

/// Where a scenario's swarm faults come from: which kinds a seed may switch on, the start
/// of the run within which they strike, and their mean gap at a kind's full rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SwarmShape {
    pub kinds: &'static [&'static str],
    pub horizon: Duration,
    pub mean_gap: Duration,
}

/// What [`Scenario::simulate`] hands back.
#[derive(Clone, Debug)]
pub struct Simulated<M> {
    /// The runtime's view: outcome, time, fingerprint.
    pub report: Report,
    /// The checkers' verdicts; empty when the simulation itself did not complete.
    pub verdicts: Vec<Verdict>,
    /// `None` when the simulation itself did not complete.
    pub metrics: Option<M>,
}

impl<M> Simulated<M> {
    /// What a run gives back: `judge` checks and measures its data when the simulation
    /// completed; when it did not, there is nothing to judge.
    pub fn judge<D>(
        report: Report,
        data: Option<&D>,
        judge: impl FnOnce(&D) -> (Vec<Verdict>, M),
    ) -> Self {
        let (mut verdicts, metrics) = match data.map(judge) {
            Some((verdicts, metrics)) => (verdicts, Some(metrics)),
            None => (Vec::new(), None),
        };
        // An `always!` that did not hold is a violation like a checker's, named after the
        // probe; it comes after the scenario's own checkers, which say more.
        verdicts.extend(
            report
                .probes
                .violations()
                .into_iter()
                .map(|(checker, detail)| Verdict::fail(&checker, detail)),
        );
        Simulated {
            report,
            verdicts,
            metrics,
        }
    }
}

/// A scenario's seeded run, implemented by its parameters: the flow that starts the
/// system and its users and hands back what the checkers judge, and what bounds it.
pub trait Flow: Sized + 'static {
    type Variant: ServiceVariant;
    type Fault: Windowed + 'static;
    /// What a completed run hands back.
    type Data: 'static;

    /// How long the run may take before it counts as hung.
    fn bound(&self) -> RunBound;

    /// Whether `buggify!` sites may fire in a run of `variant`.
    fn buggify(_variant: Self::Variant) -> bool {
        false
    }

    /// The run itself.
    fn main_flow(
        self,
        variant: Self::Variant,
        schedule: FaultSchedule<Self::Fault>,
    ) -> impl Future<Output = Self::Data> + 'static;
}

/// What bounds a run in virtual time: the last user arrives after `users /
/// spawn_rate_per_s` and may then take `per_user`; every fault heals; then `settle` (a
/// drain or recovery bound) passes, with a minute to spare for the start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunBound {
    pub users: u32,
    pub spawn_rate_per_s: f64,
    pub per_user: Duration,
    pub settle: Duration,
}

impl RunBound {
    /// The virtual time a run under `schedule` may take before it counts as hung.
    pub fn time_limit<F: Windowed>(&self, schedule: &FaultSchedule<F>) -> Duration {
        let arrivals = Duration::from_secs_f64(f64::from(self.users) / self.spawn_rate_per_s);
        let busy = (Instant::START + arrivals + self.per_user).max(healed_at(schedule));
        (busy + self.settle + Duration::from_secs(60)).elapsed_since_start()
    }
}

/// Runs one seed of `variant` under `schedule` (seeded, within its time limit), every
/// event to `trace` as a JSON line when asked: the runtime's report and, when the
/// simulation completed, what the flow handed back.
pub fn simulate_flow<P: Flow>(
    seed: u64,
    variant: P::Variant,
    params: P,
    schedule: FaultSchedule<P::Fault>,
    trace: Option<Box<dyn Write>>,
) -> (Report, Option<P::Data>) {
    let sim = Sim::new(seed)
        .time_limit(params.bound().time_limit(&schedule))
        .buggify(P::buggify(variant));
    let sim = match trace {
        Some(out) => sim.trace_jsonl(out),
        None => sim,
    };
    let result = sim.run(move || params.main_flow(variant, schedule));
    (result.report, result.output)
}

/// Which faults a plan's runs get.
#[derive(Clone, Debug, PartialEq)]
pub enum Faults<F> {
    /// A fault-matrix entry (`none` for a fault-free run).
    Named {
        name: &'static str,
        schedule: FaultSchedule<F>,
    },
    /// A schedule drawn from each seed over every fault kind (swarm testing).
    Swarm,
    /// An explicit schedule: a file, the output of a shrink, a generator's.
    Schedule(FaultSchedule<F>),
}

impl<F> Faults<F> {
    /// The matrix entry's name, `swarm` or `schedule`.
    pub fn name(&self) -> &'static str {
        match self {
            Faults::Named { name, .. } => name,
            Faults::Swarm => "swarm",
            Faults::Schedule(_) => "schedule",
        }
    }
}

/// Everything that determines a run except its seed.
pub struct Plan<S: Scenario> {
    pub variant: S::Variant,
    pub faults: Faults<S::Fault>,
    pub options: S::Options,
}

impl<S: Scenario> Clone for Plan<S> {
    fn clone(&self) -> Self {
        Plan {
            variant: self.variant,
            faults: self.faults.clone(),
            options: self.options.clone(),
        }
    }
}

impl<S: Scenario> fmt::Debug for Plan<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("scenario", &S::NAME)
            .field("variant", &self.variant)
            .field("faults", &self.faults)
            .field("options", &self.options)
            .finish()
    }
}

/// The most runs a shrink spends: each is a whole simulation.
const SHRINK_RUNS_MAX: u32 = 400;

impl<S: Scenario> Plan<S> {
    /// A plan with the default options.
    pub fn new(variant: S::Variant, faults: Faults<S::Fault>) -> Self {
        Plan {
            variant,
            faults,
            options: S::Options::default(),
        }
    }

    pub fn with_options(self, options: S::Options) -> Self {
        Plan { options, ..self }
    }

    /// A plan from the names users type: a variant, and a fault-matrix entry or `swarm`.
    pub fn parse(variant: &str, fault: &str) -> Result<Self, SpecError> {
        let variant = parse_variant::<S>(variant)?;
        let faults = if fault == "swarm" {
            Faults::Swarm
        } else {
            let mut matrix = S::matrix();
            let Some(pos) = matrix.iter().position(|(info, _)| info.name == fault) else {
                let mut known: Vec<&str> = matrix.iter().map(|(info, _)| info.name).collect();
                known.push("swarm");
                return Err(SpecError::UnknownFault {
                    scenario: S::NAME,
                    fault: elide(fault),
                    known: known.join(", "),
                });
            };
            let (info, schedule) = matrix.swap_remove(pos);
            Faults::Named {
                name: info.name,
                schedule,
            }
        };
        Ok(Plan::new(variant, faults))
    }

    /// The schedule of one seed's run, and the swarm it came from.
    pub fn schedule(&self, seed: u64) -> (FaultSchedule<S::Fault>, Option<Swarm>) {
        match &self.faults {
            Faults::Named { schedule, .. } | Faults::Schedule(schedule) => (schedule.clone(), None),
            Faults::Swarm => {
                let (swarm, schedule) = S::swarm(seed, &self.options);
                (schedule, Some(swarm))
            }
        }
    }

    /// Runs one seed.
    pub fn run(&self, seed: u64) -> Output<S> {
        self.run_with(seed, None)
    }

    /// Runs one seed with its trace written as JSON lines to `out`.
    pub fn run_traced(&self, seed: u64, out: Box<dyn Write>) -> Output<S> {
        self.run_with(seed, Some(out))
    }

    fn run_with(&self, seed: u64, trace: Option<Box<dyn Write>>) -> Output<S> {
        let (schedule, swarm) = self.schedule(seed);
        let run = S::simulate(seed, self.variant, &self.options, schedule.clone(), trace);
        RunOutput {
            variant: self.variant.name(),
            fault: self.faults.name(),
            report: run.report,
            verdicts: run.verdicts,
            schedule,
            swarm,
            metrics: run.metrics,
        }
    }

    /// Runs the seeds of `space` on `jobs` threads until they run out, a failure is
    /// found (unless `collect_all`) or `stop` is set; see [`explore::explore`].
    pub fn explore(
        &self,
        space: &SeedSpace,
        jobs: usize,
        collect_all: bool,
        stop: &AtomicBool,
        on_result: impl FnMut(&SeedResult, Option<&Output<S>>),
    ) -> Exploration<S::Fault, S::Metrics> {
        let run = |seed| self.run(seed);
        explore::explore(run, space, jobs, collect_all, stop, on_result)
    }

    /// Shrinks the schedule of a failing seed to a smallest one that still fails the same
    /// way (the same checker fails, or, when the simulation itself failed, it fails again),
    /// and runs that once more. `None` when the seed does not fail.
    pub fn shrink(&self, seed: u64) -> Option<(FaultSchedule<S::Fault>, Output<S>)> {
        let first = self.run(seed);
        if !first.failed() {
            return None;
        }
        let checker = first
            .verdicts
            .iter()
            .find(|v| !v.ok)
            .map(|v| v.checker.clone());
        let shrunk = shrink::shrink(first.schedule, SHRINK_RUNS_MAX, |candidate| {
            let run = S::simulate(seed, self.variant, &self.options, candidate.clone(), None);
            match &checker {
                Some(c) => run.verdicts.iter().any(|v| !v.ok && &v.checker == c),
                None => !run.report.is_pass(),
            }
        });
        let plan = Plan {
            faults: Faults::Schedule(shrunk.schedule.clone()),
            ..self.clone()
        };
        Some((shrunk.schedule, plan.run(seed)))
    }
}

/// A variant by the name users type.
pub fn parse_variant<S: Scenario>(name: &str) -> Result<S::Variant, SpecError> {
    let all = <S::Variant as ServiceVariant>::ALL;
    all.iter()
        .copied()
        .find(|v| v.name() == name)
        .ok_or_else(|| SpecError::UnknownVariant {
            scenario: S::NAME,
            variant: elide(name),
            known: all.iter().map(|v| v.name()).collect::<Vec<_>>().join(", "),
        })
}

/// How far into a run a schedule may reach: no fault starts or lasts longer than this
/// (30 days of virtual time). Times past it are mistakes, and near `u64::MAX` they would
/// saturate the clock.
pub const SCHEDULE_HORIZON_MS: u64 = 30 * 24 * 3600 * 1000;

/// Why one fault of a schedule cannot run as written: the field at fault (a name within
/// the fault, `instance`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultProblem {
    pub field: String,
    pub detail: String,
}

/// A schedule from its JSON text, checked against the plan's `options` and sorted by
/// time; `origin` names where the text came from (a file) in the error, which also names
/// the field at fault (`faults[2].fault.instance`, counted in the file's order).
pub fn parse_schedule<S: Scenario>(
    origin: &str,
    json: &str,
    options: &S::Options,
) -> Result<FaultSchedule<S::Fault>, SpecError> {
    let bad = |field: Option<String>, e: serde_json::Error| SpecError::BadSchedule {
        origin: origin.to_string(),
        field: field.map(|f| elide(&f)),
        detail: elide(&e.to_string()),
    };
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let mut schedule: FaultSchedule<S::Fault> = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| {
            let field = e.path().to_string();
            bad((field != ".").then_some(field), e.into_inner())
        })?;
    // Text after the schedule is an error too.
    deserializer.end().map_err(|e| bad(None, e))?;
    check_schedule::<S>(origin, &schedule, options)?;
    schedule.faults.sort_by_key(|f| f.at_ms);
    Ok(schedule)
}

/// Checks that every fault of `schedule` can run as written under `options`: its times
/// (`at_ms` and every `…_ms` field of the fault) within [`SCHEDULE_HORIZON_MS`], and what
/// the scenario itself checks ([`Scenario::check_fault`]).
pub fn check_schedule<S: Scenario>(
    origin: &str,
    schedule: &FaultSchedule<S::Fault>,
    options: &S::Options,
) -> Result<(), SpecError> {
    for (i, f) in schedule.iter().enumerate() {
        let invalid = |field: String, detail: String| SpecError::InvalidSchedule {
            origin: origin.to_string(),
            field: format!("faults[{i}].{field}"),
            detail,
        };
        let past = |ms: u64| {
            format!("{ms} ms is past the {SCHEDULE_HORIZON_MS} ms (30 days) a schedule may reach")
        };
        if f.at_ms > SCHEDULE_HORIZON_MS {
            return Err(invalid("at_ms".into(), past(f.at_ms)));
        }
        if let Some((field, ms)) = millis_fields(&f.fault).find(|(_, ms)| *ms > SCHEDULE_HORIZON_MS)
        {
            return Err(invalid(format!("fault.{field}"), past(ms)));
        }
        S::check_fault(&f.fault, options)
            .map_err(|p| invalid(format!("fault.{}", p.field), p.detail))?;
    }
    Ok(())
}

/// A fault's fields named `…_ms`, which by convention hold milliseconds.
fn millis_fields<F: Serialize>(fault: &F) -> impl Iterator<Item = (String, u64)> {
    let fields = match serde_json::to_value(fault) {
        Ok(serde_json::Value::Object(fields)) => fields,
        _ => serde_json::Map::new(),
    };
    fields
        .into_iter()
        .filter(|(name, _)| name.ends_with("_ms"))
        .filter_map(|(name, v)| v.as_u64().map(|ms| (name, ms)))
}

/// What one run of a scenario's plan produced, typed.
pub type Output<S> = RunOutput<<S as Scenario>::Fault, <S as Scenario>::Metrics>;

/// What one run produced. `F` is the scenario's fault and `M` its metrics; both are JSON
/// values in the type-erased view of the `sim` program ([`crate::catalog::AnyRunOutput`]).
#[derive(Clone, Debug, Serialize)]
pub struct RunOutput<F, M> {
    pub variant: &'static str,
    /// The matrix entry's name, `swarm` or `schedule`.
    pub fault: &'static str,
    /// The runtime's view: seed, outcome, time, fingerprint.
    pub report: Report,
    pub verdicts: Vec<Verdict>,
    /// The schedule that ran (for replay and shrinking).
    pub schedule: FaultSchedule<F>,
    /// The swarm the schedule came from, when it did.
    pub swarm: Option<Swarm>,
    /// `None` when the simulation itself did not complete.
    pub metrics: Option<M>,
}

impl<F, M> RunOutput<F, M> {
    pub fn seed(&self) -> u64 {
        self.report.seed
    }

    /// A run fails when the simulation itself failed or any checker found a violation.
    pub fn failed(&self) -> bool {
        !self.report.is_pass() || self.verdicts.iter().any(|v| !v.ok)
    }

    /// The first violated invariant, or the runtime failure.
    pub fn failure_summary(&self) -> Option<String> {
        if !self.report.is_pass() {
            return Some(format!("run failed: {}", self.report.outcome));
        }
        self.verdicts
            .iter()
            .find(|v| !v.ok)
            .map(|v| format!("{}: {}", v.checker, v.detail))
    }
}

/// User-caused errors in the text of a plan: an unknown name, a schedule that does not
/// parse, options that do not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("unknown scenario {0:?}; `sim list` shows the scenarios")]
    UnknownScenario(String),
    #[error("unknown variant {variant:?} of {scenario}; known: {known}")]
    UnknownVariant {
        scenario: &'static str,
        variant: String,
        known: String,
    },
    #[error("unknown fault {fault:?} of {scenario}; known: {known}")]
    UnknownFault {
        scenario: &'static str,
        fault: String,
        known: String,
    },
    #[error("malformed schedule {origin}: {}{detail}", field.as_ref().map_or(String::new(), |f| format!("at {f}: ")))]
    BadSchedule {
        origin: String,
        /// The path of the field at fault (`faults[0].fault`), when there is one.
        field: Option<String>,
        detail: String,
    },
    #[error("invalid schedule {origin}: at {field}: {detail}")]
    InvalidSchedule {
        origin: String,
        /// The path of the field at fault (`faults[0].fault.instance`).
        field: String,
        detail: String,
    },
    #[error("bad options for {scenario}: {detail}")]
    BadOptions {
        scenario: &'static str,
        detail: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flash_sale::faults::FlashFault;
    use crate::flash_sale::{FlashSale, Variant};

    #[test]
    fn a_plan_parses_from_the_names_users_type() {
        let plan = Plan::<FlashSale>::parse("commit_before_write", "worker_crash").unwrap();
        assert_eq!(plan.variant, Variant::CommitBeforeWrite);
        let (_, crash) = FlashSale::matrix()
            .into_iter()
            .find(|(info, _)| info.name == "worker_crash")
            .unwrap();
        assert_eq!(
            plan.faults,
            Faults::Named {
                name: "worker_crash",
                schedule: crash
            }
        );
        let swarm = Plan::<FlashSale>::parse("correct", "swarm").unwrap();
        assert_eq!(swarm.faults, Faults::Swarm);
        assert_ne!(swarm.schedule(1), swarm.schedule(2), "drawn per seed");
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let e = Plan::<FlashSale>::parse("nope", "none").unwrap_err();
        assert!(
            matches!(&e, SpecError::UnknownVariant { known, .. } if known.starts_with("correct, check_then_decrement")),
            "{e}"
        );
        let e = Plan::<FlashSale>::parse("correct", "meteor").unwrap_err();
        assert!(
            matches!(&e, SpecError::UnknownFault { known, .. } if known.contains("worker_crash") && known.ends_with("swarm")),
            "{e}"
        );
    }

    #[test]
    fn a_schedule_parses_sorted_and_a_bad_one_names_its_origin_and_field() {
        let options = crate::flash_sale::Options::default();
        let s: FaultSchedule<FlashFault> = parse_schedule::<FlashSale>(
            "file s.json",
            r#"{"faults": [{"at_ms": 9, "fault": {"fault": "kafka_down", "for_ms": 5}},
                          {"at_ms": 2, "fault": {"fault": "db_down", "for_ms": 7}}]}"#,
            &options,
        )
        .unwrap();
        assert_eq!(
            s.iter().map(|f| f.at_ms).collect::<Vec<_>>(),
            [2, 9],
            "sorted by time"
        );
        let bad =
            |json: &str| parse_schedule::<FlashSale>("file s.json", json, &options).unwrap_err();
        let e = bad(r#"{"faults": [{"at_ms": 1, "fault": {"fault": "kafka_down"}}]}"#);
        assert!(
            matches!(&e, SpecError::BadSchedule { field: Some(f), .. } if f == "faults[0].fault"),
            "{e:?}"
        );
        assert!(
            e.to_string().starts_with(
                "malformed schedule file s.json: at faults[0].fault: missing field `for_ms`"
            ),
            "{e}"
        );
        let e = bad(r#"{"faults": []} and more"#);
        assert!(
            matches!(&e, SpecError::BadSchedule { field: None, .. }),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("malformed schedule file s.json: trailing characters"),
            "{e}"
        );
    }

    #[test]
    fn a_schedule_that_cannot_run_as_written_names_the_fault_and_the_field() {
        let options = crate::flash_sale::Options {
            api_instances: 2,
            ..Default::default()
        };
        let invalid = |json: &str| {
            let e = parse_schedule::<FlashSale>("file s.json", json, &options).unwrap_err();
            match &e {
                SpecError::InvalidSchedule { field, .. } => (field.clone(), e.to_string()),
                other => panic!("{other:?}"),
            }
        };
        // Counted in the file's order, not the sorted one.
        let (field, text) = invalid(
            r#"{"faults": [{"at_ms": 9, "fault": {"fault": "kafka_down", "for_ms": 5}},
                          {"at_ms": 2, "fault": {"fault": "api_kill", "instance": 2, "down_ms": null}}]}"#,
        );
        assert_eq!(field, "faults[1].fault.instance");
        assert_eq!(
            text,
            "invalid schedule file s.json: at faults[1].fault.instance: api_kill of \
             instance 2, but there are 2 API instances (0 to 1); --api-instances sets how many"
        );
        let (field, text) = invalid(
            r#"{"faults": [{"at_ms": 99999999999999, "fault": {"fault": "kafka_down", "for_ms": 5}}]}"#,
        );
        assert_eq!(field, "faults[0].at_ms");
        assert!(text.contains("99999999999999 ms is past the"), "{text}");
        let (field, _) = invalid(
            r#"{"faults": [{"at_ms": 1, "fault": {"fault": "redis_latency", "extra_ms": 18446744073709551615, "for_ms": 5}}]}"#,
        );
        assert_eq!(field, "faults[0].fault.extra_ms");
    }
}
