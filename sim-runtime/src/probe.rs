//! `sometimes!` and `always!`: coverage probes, as FoundationDB's code probes and
//! Antithesis' assertions.
//!
//! `sometimes!(name, cond)` marks a condition that some run of a sweep should see true (a
//! fault path taken, a retry after a timeout); `always!(name, cond)` one that must hold
//! every time it is evaluated. Each run counts its probes in its own world
//! ([`ProbeTally`] in the run's [`Report`](crate::Report)); a sweep adds the tallies up,
//! and asks [`unfired`] which declared `sometimes!` never held.
//!
//! Why a link-time registry: "declared but never fired" needs to know the probes of code
//! that no run reached, so registering a probe on its first evaluation cannot list them.
//! Every probe's call site is a `static` in a [`linkme`] distributed slice, which the
//! linker gathers into one array whatever runs. linkme rather than `inventory`: no
//! constructor runs before `main` and no allocation (the slice is plain static data), and
//! it has no dependencies beyond its own proc macro.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde::Serialize;

use crate::time::Instant;
use crate::world;

#[doc(hidden)]
pub use linkme;

/// What a probe asks of its condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// True in at least one run of a sweep.
    Sometimes,
    /// True every time it is evaluated.
    Always,
}

/// A probe's call site, known to the program whether or not it ever runs.
#[derive(Debug)]
pub struct ProbeSite {
    pub name: &'static str,
    pub kind: ProbeKind,
    /// `module_path!()` of the call site: which scenario or crate the probe belongs to.
    pub module: &'static str,
    pub file: &'static str,
    pub line: u32,
}

impl ProbeSite {
    /// Whether the probe lies in one of the module trees `scope` names (`a::b` holds
    /// `a::b` and `a::b::c`, not `a::bc`).
    pub fn within(&self, scope: &[&str]) -> bool {
        scope.iter().any(|prefix| {
            self.module == *prefix
                || self
                    .module
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with("::"))
        })
    }
}

/// Every probe call site linked into the program.
#[linkme::distributed_slice]
pub static PROBE_SITES: [ProbeSite];

/// The declared probes, sorted by name then place (the linker's order is its own), one
/// per name: sites that share a name count as one probe.
pub fn declared() -> Vec<&'static ProbeSite> {
    let mut sites: Vec<&'static ProbeSite> = PROBE_SITES.iter().collect();
    sites.sort_by_key(|s| (s.name, s.file, s.line));
    sites.dedup_by_key(|s| s.name);
    sites
}

/// An `always!` that did not hold: when and where first.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ProbeBreak {
    pub at: Instant,
    pub node: String,
    /// `file:line` of the probe.
    pub site: String,
}

/// One probe's counts, for one run or added up over many.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProbeCount {
    pub kind: ProbeKind,
    /// Runs in which the probe was evaluated.
    pub runs: u64,
    /// Runs in which its condition held at least once.
    pub runs_held: u64,
    /// Runs in which its condition failed at least once.
    pub runs_failed: u64,
    /// Evaluations, and how many of them held.
    pub evaluated: u64,
    pub held: u64,
    /// The first failure of an `always!` (over many runs, the earliest in virtual time).
    pub first_break: Option<ProbeBreak>,
}

impl ProbeCount {
    fn new(kind: ProbeKind) -> Self {
        ProbeCount {
            kind,
            runs: 1,
            runs_held: 0,
            runs_failed: 0,
            evaluated: 0,
            held: 0,
            first_break: None,
        }
    }

    /// Whether it is an `always!` that failed.
    pub fn broken(&self) -> bool {
        self.kind == ProbeKind::Always && self.runs_failed > 0
    }
}

/// Probe counts by name: one run's (in its report), or a sweep's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ProbeTally {
    pub probes: BTreeMap<&'static str, ProbeCount>,
}

impl ProbeTally {
    pub fn is_empty(&self) -> bool {
        self.probes.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&ProbeCount> {
        self.probes.get(name)
    }

    /// Adds another tally (another run's, another shard's) to this one.
    pub fn merge(&mut self, other: &ProbeTally) {
        for (name, c) in &other.probes {
            match self.probes.get_mut(*name) {
                None => {
                    self.probes.insert(*name, c.clone());
                }
                Some(mine) => {
                    mine.runs += c.runs;
                    mine.runs_held += c.runs_held;
                    mine.runs_failed += c.runs_failed;
                    mine.evaluated += c.evaluated;
                    mine.held += c.held;
                    // The earliest break, not the first merged: a sweep's threads merge
                    // in no fixed order, and its sum must not depend on them.
                    if let Some(theirs) = &c.first_break {
                        if mine.first_break.as_ref().is_none_or(|m| theirs < m) {
                            mine.first_break = Some(theirs.clone());
                        }
                    }
                }
            }
        }
    }

    /// The `always!` probes that failed, with their first failure.
    pub fn broken(&self) -> impl Iterator<Item = (&'static str, &ProbeCount)> + '_ {
        self.probes
            .iter()
            .filter(|(_, c)| c.broken())
            .map(|(n, c)| (*n, c))
    }

    /// One line per `always!` that failed: its name and its first failure in words.
    pub fn violations(&self) -> Vec<(String, String)> {
        self.broken()
            .map(|(name, c)| {
                let detail = match &c.first_break {
                    Some(b) => format!(
                        "always!({name}) did not hold {} of {} times, first at {} on node {} ({})",
                        c.evaluated - c.held,
                        c.evaluated,
                        b.at,
                        b.node,
                        b.site
                    ),
                    None => format!("always!({name}) did not hold"),
                };
                (format!("always:{name}"), detail)
            })
            .collect()
    }

    /// A table of every declared probe within `scope`, fired or not: name, kind, runs in
    /// which it held (or failed, for `always!`) out of `runs`, and evaluations.
    pub fn table(&self, scope: &[&str], runs: u64) -> Vec<ProbeRow> {
        declared()
            .into_iter()
            .filter(|s| s.within(scope))
            .map(|s| {
                let c = self.probes.get(s.name);
                ProbeRow {
                    name: s.name,
                    kind: s.kind,
                    runs,
                    runs_held: c.map_or(0, |c| c.runs_held),
                    runs_failed: c.map_or(0, |c| c.runs_failed),
                    evaluated: c.map_or(0, |c| c.evaluated),
                    held: c.map_or(0, |c| c.held),
                }
            })
            .collect()
    }
}

/// A line of [`ProbeTally::table`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProbeRow {
    pub name: &'static str,
    pub kind: ProbeKind,
    pub runs: u64,
    pub runs_held: u64,
    pub runs_failed: u64,
    pub evaluated: u64,
    pub held: u64,
}

impl std::fmt::Display for ProbeRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            ProbeKind::Sometimes => "sometimes",
            ProbeKind::Always => "always",
        };
        write!(
            f,
            "{kind:<9} {:<48} held in {} of {} runs ({} of {} evaluations)",
            self.name, self.runs_held, self.runs, self.held, self.evaluated
        )?;
        // A `sometimes!` that is false is no failure; an `always!` that is false is.
        if self.kind == ProbeKind::Always && self.runs_failed > 0 {
            write!(f, ", FAILED in {} runs", self.runs_failed)?;
        }
        Ok(())
    }
}

/// The declared `sometimes!` probes within `scope` that held in no run of `tally`.
pub fn unfired(scope: &[&str], tally: &ProbeTally) -> Vec<&'static ProbeSite> {
    declared()
        .into_iter()
        .filter(|s| s.kind == ProbeKind::Sometimes && s.within(scope))
        .filter(|s| tally.get(s.name).is_none_or(|c| c.runs_held == 0))
        .collect()
}

/// The names of `sites`, one per line with their place, for a failure message.
pub fn list(sites: &[&ProbeSite]) -> String {
    sites
        .iter()
        .map(|s| format!("  sometimes!({}) at {}:{}", s.name, s.file, s.line))
        .collect::<Vec<_>>()
        .join("\n")
}

thread_local! {
    /// What [`collect`] gathers on this thread, when it does: the counts, and how many
    /// runs gave them.
    static COLLECTING: RefCell<Option<(ProbeTally, u64)>> = const { RefCell::new(None) };
}

/// Runs `f` and adds up the probe counts of every simulation that ran on this thread
/// meanwhile, and counts those runs: for code that runs simulations without handing their
/// reports back (a scenario's resilience report runs a whole fault matrix).
pub fn collect<R>(f: impl FnOnce() -> R) -> (R, ProbeTally, u64) {
    let outer = COLLECTING.with(|c| c.replace(Some((ProbeTally::default(), 0))));
    let r = f();
    let (mine, runs) = COLLECTING.with(|c| c.replace(outer)).unwrap_or_default();
    // A collection inside another one counts for both.
    COLLECTING.with(|c| {
        if let Some((outer, outer_runs)) = c.borrow_mut().as_mut() {
            outer.merge(&mine);
            *outer_runs += runs;
        }
    });
    (r, mine, runs)
}

/// Called by every finished run with its counts.
pub(crate) fn finished(tally: &ProbeTally) {
    COLLECTING.with(|c| {
        if let Some((all, runs)) = c.borrow_mut().as_mut() {
            all.merge(tally);
            *runs += 1;
        }
    });
}

/// The probes of the running simulation.
#[derive(Default)]
pub(crate) struct ProbeState {
    tally: ProbeTally,
}

impl ProbeState {
    pub(crate) fn take(&mut self) -> ProbeTally {
        std::mem::take(&mut self.tally)
    }
}

/// Records one evaluation of a probe. Use the [`sometimes!`](crate::sometimes!) and
/// [`always!`](crate::always!) macros, which declare the site. Outside a simulation:
/// nothing (there is no run to count it in).
pub fn record(site: &'static ProbeSite, held: bool) {
    world::try_with(|w| {
        let broken = (!held && site.kind == ProbeKind::Always).then(|| ProbeBreak {
            at: w.now,
            node: w.node_name(w.current_node()).to_string(),
            site: format!("{}:{}", site.file, site.line),
        });
        let c = w
            .probes
            .tally
            .probes
            .entry(site.name)
            .or_insert_with(|| ProbeCount::new(site.kind));
        c.evaluated += 1;
        if held {
            c.held += 1;
            c.runs_held = 1;
        } else {
            c.runs_failed = 1;
        }
        if c.first_break.is_none() {
            c.first_break = broken;
        }
    });
}

/// Declares a probe site in the program's registry, and evaluates to a reference to it.
#[doc(hidden)]
#[macro_export]
macro_rules! __probe_site {
    ($name:expr, $kind:ident) => {{
        #[$crate::probe::linkme::distributed_slice($crate::probe::PROBE_SITES)]
        #[linkme(crate = $crate::probe::linkme)]
        static SITE: $crate::probe::ProbeSite = $crate::probe::ProbeSite {
            name: $name,
            kind: $crate::probe::ProbeKind::$kind,
            module: module_path!(),
            file: file!(),
            line: line!(),
        };
        &SITE
    }};
}

/// `sometimes!("name", cond)`: `cond` should hold in some run of a sweep. Counted in the
/// run's report; `sim explore --require-probes` and `SIM_REQUIRE_PROBES=1` fail a sweep
/// in which a declared `sometimes!` never held. The name is a string literal.
#[macro_export]
macro_rules! sometimes {
    ($name:literal, $cond:expr) => {
        $crate::probe::record($crate::__probe_site!($name, Sometimes), $cond)
    };
}

/// `always!("name", cond)`: `cond` must hold every time. A failure does not stop the run:
/// it fails it at the end, as a checker's violation named `always:name`.
#[macro_export]
macro_rules! always {
    ($name:literal, $cond:expr) => {
        $crate::probe::record($crate::__probe_site!($name, Always), $cond)
    };
}
