//! `sim`: explore, run, replay and shrink the seed systems' chaos scenarios, and write
//! their resilience reports.
//!
//! Each command takes a scenario as a subcommand, `sim run flash-sale …`, so that the
//! scenario's own options (`--users`, `--items` for the flash sale) are parsed with it;
//! `sim list` and `sim run flash-sale --help` show them. The text is parsed once into a
//! plan (`scenarios::catalog`); every seed then runs that plan.
//!
//! Exit codes: 0 when everything passed, 1 when a run failed or exploration found a
//! failure, 2 for bad input (unknown scenario, variant, fault or option, a bad option
//! value, a malformed seed or schedule file).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{ArgMatches, Args, Command, FromArgMatches};
use indicatif::{ProgressBar, ProgressStyle};

use scenarios::catalog::{self, AnyPlan, AnyRunOutput, AnyScenario, FaultText};
use scenarios::explore::SeedSpace;
use scenarios::options::shell_word;
use scenarios::report::{Section, Table};
use sim_runtime::harness::elide;
use sim_runtime::probe;

/// A simulation allocates and frees small objects all the time (messages, tasks, trace
/// fields); mimalloc does that faster than glibc's allocator. Allocation addresses never
/// reach a simulation's decisions, so the choice cannot change a run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How a printed command line starts.
const SIM: &str = "cargo run --release -p scenarios --bin sim --";

/// What every command that runs a plan takes besides the scenario's own options.
#[derive(Args, Clone)]
struct Target {
    /// Service variant: `correct` or one of the buggy ones (see `sim list`).
    #[arg(long, default_value = "correct")]
    variant: String,
    /// A fault-matrix entry, or `swarm` for a schedule drawn from the seed.
    #[arg(long, default_value = "swarm", conflicts_with = "schedule")]
    fault: String,
    /// An explicit fault schedule (JSON, as written by `sim shrink`).
    #[arg(long)]
    schedule: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    target: Target,
    /// The seed, decimal or 0x-hex.
    #[arg(long, value_parser = seed)]
    seed: u64,
    /// Writes the full trace as JSON lines.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Writes the run's timeline as one self-contained HTML page.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Prints the run as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ExploreArgs {
    #[command(flatten)]
    target: Target,
    /// How many seeds.
    #[arg(long, default_value_t = 1000)]
    seeds: u64,
    /// Where the seed sequence starts (decimal or 0x-hex) [default: the test harness's].
    #[arg(long, value_parser = seed)]
    seed_base: Option<u64>,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = jobs)]
    jobs: Option<usize>,
    /// `i/n`: explore only every n-th seed starting at i (for CI matrices and batch jobs).
    #[arg(long, default_value = "0/1", value_parser = shard)]
    shard: (u64, u64),
    /// Keep going after a failure and report them all.
    #[arg(long)]
    all: bool,
    /// One JSON line per seed on stdout instead of a progress bar.
    #[arg(long)]
    json: bool,
    /// Fails (exit 1) when a declared `sometimes!` probe of the scenario held in no seed,
    /// and lists them.
    #[arg(long)]
    require_probes: bool,
}

#[derive(Args)]
struct ReplayArgs {
    #[command(flatten)]
    target: Target,
    /// The seed, decimal or 0x-hex.
    #[arg(long, value_parser = seed)]
    seed: u64,
    /// The fingerprint the original run printed; replay fails if it differs.
    #[arg(long, value_parser = fingerprint)]
    expect: Option<u64>,
    /// Writes the run's timeline as one self-contained HTML page.
    #[arg(long)]
    html: Option<PathBuf>,
}

#[derive(Args)]
struct ShrinkArgs {
    #[command(flatten)]
    target: Target,
    /// The failing seed, decimal or 0x-hex.
    #[arg(long, value_parser = seed)]
    seed: u64,
    /// Where to write the shrunk schedule.
    #[arg(long, default_value = "shrunk-schedule.json")]
    out: PathBuf,
}

#[derive(Args)]
struct ReportArgs {
    /// The seed of every run of the report.
    #[arg(long, value_parser = seed, default_value = "1")]
    seed: u64,
    /// Prints the report as JSON instead of Markdown.
    #[arg(long)]
    json: bool,
    /// Also writes the report as one self-contained HTML page, with plots over virtual
    /// time for each chaos test.
    #[arg(long)]
    html: Option<PathBuf>,
}

/// Adds a command's own arguments to a command.
type AddArgs = fn(Command) -> Command;

/// The commands that take a scenario, their help and their own arguments.
const COMMANDS: [(&str, &str, AddArgs); 5] = [
    (
        "run",
        "Runs one seed and prints the outcome, verdicts, fingerprint and metrics",
        RunArgs::augment_args,
    ),
    (
        "explore",
        "Explores many seeds in parallel; stops at the first failure unless --all",
        ExploreArgs::augment_args,
    ),
    (
        "replay",
        "Runs a seed again and prints its fingerprint (which must match the original)",
        ReplayArgs::augment_args,
    ),
    (
        "shrink",
        "Shrinks a failing run's fault schedule to the smallest one that still fails",
        ShrinkArgs::augment_args,
    ),
    (
        "report",
        "Writes the scenario's resilience report: the document's tables with exact numbers",
        ReportArgs::augment_args,
    ),
];

/// The command line: each command has one subcommand per scenario, which holds the
/// command's arguments and the scenario's options.
fn cli() -> Command {
    let mut cli = Command::new("sim")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Deterministic chaos testing of the seed systems, in virtual time")
        .subcommand_required(true)
        .subcommand(
            Command::new("list").about("The scenarios, their variants, faults and options"),
        );
    for (name, about, args) in COMMANDS {
        let mut command = Command::new(name)
            .about(about)
            .subcommand_required(true)
            // An unknown scenario comes back as an external subcommand, for our own
            // message.
            .allow_external_subcommands(true)
            .subcommand_value_name("SCENARIO")
            .subcommand_help_heading("Scenarios")
            .disable_help_subcommand(true);
        for s in catalog::registry() {
            // The description goes last: an options struct's doc comment would replace it.
            let scenario = s.add_options(args(Command::new(s.name())));
            command = command.subcommand(scenario.about(s.description()).long_about(None));
        }
        cli = cli.subcommand(command);
    }
    cli
}

fn seed(text: &str) -> Result<u64, String> {
    sim_runtime::harness::parse_seed(text)
        .ok_or_else(|| "not a seed: expected a decimal or 0x-prefixed hex u64".to_string())
}

fn fingerprint(text: &str) -> Result<u64, String> {
    sim_runtime::harness::parse_seed(text).ok_or_else(|| {
        "not a fingerprint: expected the 0x-prefixed hex value a run printed".to_string()
    })
}

fn jobs(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("at least 1 worker thread is needed".to_string()),
        Ok(n) => Ok(n),
        Err(_) => Err("expected a number of worker threads, 1 or more".to_string()),
    }
}

fn shard(text: &str) -> Result<(u64, u64), String> {
    let bad = || "expected i/n with 0 <= i < n".to_string();
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let (i, n) = (
        i.trim().parse::<u64>().map_err(|_| bad())?,
        n.trim().parse::<u64>().map_err(|_| bad())?,
    );
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// A user error: message and exit code 2.
struct UserError(String);

impl<E: std::error::Error> From<E> for UserError {
    fn from(e: E) -> Self {
        UserError(e.to_string())
    }
}

/// Parses the plan `target` and the scenario's options in `matches` describe.
fn plan(
    sc: &dyn AnyScenario,
    t: &Target,
    matches: &ArgMatches,
) -> Result<Box<dyn AnyPlan>, UserError> {
    let plan = match &t.schedule {
        Some(path) => {
            let json = std::fs::read_to_string(path).map_err(|e| {
                UserError(format!("cannot read schedule file {}: {e}", path.display()))
            })?;
            let origin = format!("file {}", path.display());
            sc.plan(
                &t.variant,
                FaultText::Schedule {
                    origin: &origin,
                    json: &json,
                },
                matches,
            )?
        }
        None => sc.plan(&t.variant, FaultText::Named(&t.fault), matches)?,
    };
    Ok(plan)
}

/// The exact command that `command`s a plan's seed again (`schedule`: the file it came
/// from, when it did).
fn command_line(
    command: &str,
    sc: &dyn AnyScenario,
    plan: &dyn AnyPlan,
    seed: u64,
    schedule: Option<&Path>,
) -> String {
    let mut words = vec![
        command.to_string(),
        sc.name().to_string(),
        "--variant".into(),
        plan.variant().to_string(),
        "--seed".into(),
        format!("{seed:#x}"),
    ];
    match schedule {
        Some(path) => words.extend(["--schedule".into(), path.display().to_string()]),
        None => words.extend(["--fault".into(), plan.fault().to_string()]),
    }
    words.extend(plan.option_args());
    let words: Vec<String> = words.iter().map(|w| shell_word(w)).collect();
    format!("{SIM} {}", words.join(" "))
}

fn print_run(out: &AnyRunOutput) {
    println!("seed:        {:#x}", out.seed());
    println!("variant:     {}", out.variant);
    println!("fault:       {}", out.fault);
    if let Some(s) = &out.swarm {
        println!("swarm:       {s}");
    }
    println!("schedule:    {}", compact(&out.schedule));
    // The run's verdict, not only the simulation's: a run that completed and broke an
    // invariant failed.
    match out.failure_summary() {
        Some(failure) => println!("outcome:     FAIL: {failure}"),
        None => println!("outcome:     pass"),
    }
    println!("virtual time {}", out.report.time);
    println!("fingerprint: {:#018x}", out.report.fingerprint);
    println!("checkers:");
    for v in &out.verdicts {
        println!(
            "  [{}] {:<14} {}",
            if v.ok { "ok" } else { "FAIL" },
            v.checker,
            v.detail
        );
    }
    println!("metrics:     {}", compact(&out.metrics));
}

fn compact<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn exit(failed: bool) -> ExitCode {
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn cmd_list() -> Result<ExitCode, UserError> {
    for s in catalog::registry() {
        println!("{}: {}", s.name(), s.description());
        println!("  variants:");
        for v in s.variants() {
            println!(
                "    {:<28} {}{}",
                v.name,
                if v.buggy { "[buggy] " } else { "" },
                v.description
            );
        }
        println!("  faults:");
        for f in s.faults() {
            println!("    {:<28} {}", f.name, f.description);
        }
        println!(
            "    {:<28} a schedule drawn from the seed over every fault kind (swarm testing)",
            "swarm"
        );
        println!("  options:");
        for arg in s.add_options(Command::new(s.name())).get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let value = arg
                .get_value_names()
                .and_then(|v| v.first())
                .map_or(String::new(), |v| format!(" <{v}>"));
            let default: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            let default = if default.is_empty() {
                String::new()
            } else {
                format!(" [default: {}]", default.join(", "))
            };
            let help = arg.get_help().map_or(String::new(), |h| h.to_string());
            println!("    {:<28} {help}{default}", format!("--{long}{value}"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The first error writing the trace file, shared with the writer the run owns.
#[derive(Clone, Default)]
struct TraceWriteError(std::rc::Rc<std::cell::RefCell<Option<std::io::Error>>>);

/// A writer that keeps its first error where the caller can read it after the run: the
/// simulation stops writing a failing trace but must not change course because of it.
struct KeepFirstError<W> {
    inner: W,
    error: TraceWriteError,
}

impl<W: Write> KeepFirstError<W> {
    fn keep<T>(&mut self, r: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &r {
            let mut slot = self.error.0.borrow_mut();
            if slot.is_none() {
                *slot = Some(std::io::Error::new(e.kind(), e.to_string()));
            }
        }
        r
    }
}

impl<W: Write> Write for KeepFirstError<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = self.inner.write(buf);
        self.keep(r)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.inner.flush();
        self.keep(r)
    }
}

fn cmd_run(sc: &dyn AnyScenario, m: &ArgMatches) -> Result<ExitCode, UserError> {
    let a = RunArgs::from_arg_matches(m)?;
    let plan = plan(sc, &a.target, m)?;
    let out = match &a.html {
        Some(html) => {
            let (out, jsonl) = run_with_page(sc, &*plan, a.seed, &a.target, html)?;
            if let Some(path) = &a.trace {
                std::fs::write(path, jsonl).map_err(|e| {
                    UserError(format!("cannot write trace file {}: {e}", path.display()))
                })?;
            }
            out
        }
        None => run_traced(&*plan, a.seed, a.trace.as_deref())?,
    };
    if a.json {
        let mut json = serde_json::to_value(&out).unwrap_or_default();
        if let Some(fields) = json.as_object_mut() {
            fields.insert("options".into(), plan.options_json());
        }
        println!("{json}");
    } else {
        print_run(&out);
        if out.failed() {
            let line = command_line("replay", sc, &*plan, a.seed, a.target.schedule.as_deref());
            println!("replay:      {line}");
        }
    }
    Ok(exit(out.failed()))
}

/// Runs `seed`, its trace written to `trace` as JSON lines when asked.
fn run_traced(
    plan: &dyn AnyPlan,
    seed: u64,
    trace: Option<&Path>,
) -> Result<AnyRunOutput, UserError> {
    let written = TraceWriteError::default();
    let sink = match trace {
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|e| {
                UserError(format!("cannot create trace file {}: {e}", path.display()))
            })?;
            let out = KeepFirstError {
                inner: std::io::BufWriter::new(file),
                error: written.clone(),
            };
            Some(Box::new(out) as Box<dyn Write>)
        }
        None => None,
    };
    let out = plan.run(seed, sink);
    if let (Some(path), Some(e)) = (trace, written.0.borrow_mut().take()) {
        // The run itself is complete and printed nothing yet: a trace that was asked for
        // and not written is the user's to know about before any result.
        return Err(UserError(format!(
            "cannot write trace file {}: {e} (the run's events are incomplete there)",
            path.display()
        )));
    }
    Ok(out)
}

/// Runs `seed` with its trace kept and writes its timeline page to `html`: the output
/// and the trace's JSON lines.
fn run_with_page(
    sc: &dyn AnyScenario,
    plan: &dyn AnyPlan,
    seed: u64,
    target: &Target,
    html: &Path,
) -> Result<(AnyRunOutput, String), UserError> {
    let cannot = |e: &dyn std::fmt::Display| {
        UserError(format!(
            "cannot write timeline page {}: {e}",
            html.display()
        ))
    };
    // A place the page cannot go is said before the run.
    std::fs::File::create(html).map_err(|e| cannot(&e))?;
    let replay = command_line("replay", sc, plan, seed, target.schedule.as_deref());
    let (out, jsonl, timeline) = plan
        .run_with_timeline(seed, vec![("replay".into(), replay)])
        .map_err(|e| cannot(&e))?;
    std::fs::write(html, timeline.to_html()).map_err(|e| cannot(&e))?;
    Ok((out, jsonl))
}

/// Set by the first SIGINT during `sim explore`: workers finish the seeds in flight, claim
/// no more, and the summary says what was covered and found.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn stop_on_interrupt() {
    // Without a handler the program would die at once, printing nothing of what it found.
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            // A second SIGINT means now.
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: finishing the seeds in flight (interrupt again to quit at once)");
    });
}

/// Prints one failure found by exploration, with the line that replays it.
fn print_failure(
    sc: &dyn AnyScenario,
    plan: &dyn AnyPlan,
    a: &ExploreArgs,
    index: u64,
    out: &AnyRunOutput,
) {
    let line = format!(
        "{} --expect {:#018x}",
        command_line("replay", sc, plan, out.seed(), a.target.schedule.as_deref()),
        out.report.fingerprint
    );
    if a.json {
        let json = serde_json::json!({
            "failure": out.failure_summary(),
            "index": index,
            "seed": format!("{:#x}", out.seed()),
            "replay": line,
        });
        let _ = writeln!(std::io::stdout().lock(), "{json}");
        return;
    }
    println!("FAILURE at seed {:#x} (index {index})", out.seed());
    println!(
        "  violated:    {}",
        out.failure_summary().unwrap_or_default()
    );
    if let Some(s) = &out.swarm {
        println!("  swarm:       {s}");
    }
    println!("  schedule:    {}", compact(&out.schedule));
    println!("  fingerprint: {:#018x}", out.report.fingerprint);
    println!("  replay:      {line}");
}

// The seeds/s figure reads the wall clock, outside every simulation: the one place in the
// program that may.
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
fn cmd_explore(sc: &dyn AnyScenario, m: &ArgMatches) -> Result<ExitCode, UserError> {
    let a = ExploreArgs::from_arg_matches(m)?;
    let plan = plan(sc, &a.target, m)?;
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let base = a
        .seed_base
        .unwrap_or(sim_runtime::harness::DEFAULT_SEED_BASE);
    let space = SeedSpace {
        base,
        count: a.seeds,
        shard: a.shard,
    };
    let total = space.len();
    stop_on_interrupt();
    if !a.json {
        eprintln!(
            "exploring {total} seeds of {} (variant {}, fault {}) from seed base {:#x}, shard {}/{}, {jobs} jobs",
            sc.name(), plan.variant(), plan.fault(), base, a.shard.0, a.shard.1
        );
    }
    let bar = if a.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} seeds {per_sec} eta {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let stdout = std::io::stdout();
    let result = plan.explore(&space, jobs, a.all, &INTERRUPTED, &mut |r, failure| {
        if a.json {
            let _ = writeln!(stdout.lock(), "{}", compact(r));
        } else {
            bar.inc(1);
            if r.failed {
                bar.set_message(format!("failure at seed {}", r.seed));
            }
        }
        // With --all, failures are printed as they are found and not kept: memory must
        // not grow with their number. Without it, only the lowest is printed, at the end,
        // so that what is reported does not depend on the thread count.
        if let (true, Some(out)) = (a.all, failure) {
            bar.suspend(|| print_failure(sc, &*plan, &a, r.index, out));
        }
    });
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    if !a.all {
        if let Some((index, out)) = &result.lowest {
            print_failure(sc, &*plan, &a, *index, out);
        }
    }
    let lowest = result
        .lowest
        .as_ref()
        .map(|(index, out)| (*index, out.seed()));
    let scope = sc.probe_scope();
    let probes = result.probes.table(&scope, result.runs);
    // Only a sweep that ran to its end can say a probe never fires in it.
    let unfired = if a.require_probes && lowest.is_none() && !result.interrupted {
        probe::unfired(&scope, &result.probes)
    } else {
        Vec::new()
    };
    if a.json {
        let summary = serde_json::json!({"summary": {
            "seeds": total,
            "runs": result.runs,
            "failed": result.failed,
            "lowest_failure": lowest.map(|(index, seed)| serde_json::json!({
                "index": index,
                "seed": format!("{seed:#x}"),
            })),
            "interrupted": result.interrupted,
            "wall_seconds": secs,
            "probes": probes,
            "unfired_probes": unfired.iter().map(|s| s.name).collect::<Vec<_>>(),
        }});
        let _ = writeln!(stdout.lock(), "{summary}");
    } else {
        eprintln!(
            "{} seeds in {secs:.2} s ({:.0} seeds/s)",
            result.runs,
            result.runs as f64 / secs.max(1e-9)
        );
        if result.interrupted {
            println!(
                "interrupted: {} of {total} seeds ran{}",
                result.runs,
                covered(&space, result.runs, lowest.is_some())
            );
        }
        match lowest {
            None if result.interrupted => println!("no failure in the seeds that ran"),
            None => println!("no failure in {} seeds", result.runs),
            Some((index, seed)) if a.all => println!(
                "{} failing seeds in {}; the lowest is seed {seed:#x} (index {index})",
                result.failed, result.runs
            ),
            Some(_) => {}
        }
        if !probes.is_empty() {
            println!("probes over {} runs:", result.runs);
            for row in &probes {
                println!("  {row}");
            }
        }
        if !unfired.is_empty() {
            println!(
                "--require-probes: {} declared sometimes! probes never held in {} seeds:\n{}",
                unfired.len(),
                result.runs,
                probe::list(&unfired)
            );
        }
    }
    Ok(if lowest.is_some() || !unfired.is_empty() {
        ExitCode::FAILURE
    } else if result.interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

/// Which seed indices an interrupted exploration covered: the shard's first `runs`
/// positions, since every claimed seed finishes (unless a failure stopped the claiming).
fn covered(space: &SeedSpace, runs: u64, stopped_by_failure: bool) -> String {
    match (
        stopped_by_failure,
        runs.checked_sub(1).and_then(|p| space.index(p)),
    ) {
        (false, Some(last)) => format!(
            " (every seed index from {} to {last} of shard {}/{})",
            space.shard.0, space.shard.0, space.shard.1
        ),
        _ => String::new(),
    }
}

fn cmd_replay(sc: &dyn AnyScenario, m: &ArgMatches) -> Result<ExitCode, UserError> {
    let a = ReplayArgs::from_arg_matches(m)?;
    let plan = plan(sc, &a.target, m)?;
    let out = match &a.html {
        Some(html) => run_with_page(sc, &*plan, a.seed, &a.target, html)?.0,
        None => plan.run(a.seed, None),
    };
    print_run(&out);
    if let Some(e) = a.expect {
        if e != out.report.fingerprint {
            println!(
                "fingerprint MISMATCH: expected {e:#018x}, got {:#018x}",
                out.report.fingerprint
            );
            return Ok(ExitCode::FAILURE);
        }
        // The replay reproduced the run exactly; whether that run passed is the other
        // half of the answer, and a reproduced failure still exits 1.
        if out.failed() {
            println!("fingerprint matches: the failure reproduced exactly");
        } else {
            println!("fingerprint matches");
        }
    }
    Ok(exit(out.failed()))
}

fn cmd_shrink(sc: &dyn AnyScenario, m: &ArgMatches) -> Result<ExitCode, UserError> {
    let a = ShrinkArgs::from_arg_matches(m)?;
    let plan = plan(sc, &a.target, m)?;
    // Shrinking takes many runs: a place the result cannot go is said before them.
    let dir = match a.out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    if !dir.is_dir() {
        return Err(UserError(format!(
            "cannot write {}: the directory {} does not exist",
            a.out.display(),
            dir.display()
        )));
    }
    let Some((schedule, out)) = plan.shrink(a.seed) else {
        println!(
            "seed {:#x} does not fail with that schedule; nothing to shrink",
            a.seed
        );
        return Ok(ExitCode::FAILURE);
    };
    let text = serde_json::to_string_pretty(&schedule).unwrap_or_default();
    std::fs::write(&a.out, format!("{text}\n"))
        .map_err(|e| UserError(format!("cannot write {}: {e}", a.out.display())))?;
    println!("shrunk schedule ({}):\n{text}", a.out.display());
    println!("still fails: {}", out.failure_summary().unwrap_or_default());
    println!(
        "run it with: {}",
        command_line("run", sc, &*plan, a.seed, Some(&a.out))
    );
    Ok(ExitCode::SUCCESS)
}

fn cmd_report(sc: &dyn AnyScenario, m: &ArgMatches) -> Result<ExitCode, UserError> {
    let a = ReportArgs::from_arg_matches(m)?;
    // A report takes many runs: a place the page cannot go is said before them.
    let cannot = |path: &Path, e: std::io::Error| {
        UserError(format!("cannot write report page {}: {e}", path.display()))
    };
    if let Some(path) = &a.html {
        std::fs::File::create(path).map_err(|e| cannot(path, e))?;
    }
    let (report, probes, runs) = probe::collect(|| sc.report_with(a.seed, m));
    let report = match report {
        Ok(report) => report,
        Err(catalog::AnyError::Spec(e)) => return Err(e.into()),
        // Not the user's doing: a run of the scenario itself failed.
        Err(e @ catalog::AnyError::Report(_)) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    // The report's own runs, and which of the scenario's probes they reached.
    let rows = probes.table(&sc.probe_scope(), runs);
    if a.json {
        let mut json = serde_json::to_value(&report).unwrap_or_default();
        if let Some(fields) = json.as_object_mut() {
            fields.insert(
                "probes".into(),
                serde_json::to_value(&rows).unwrap_or_default(),
            );
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
    }
    // The probe counts are a section of what people read; JSON has them as a field.
    let mut shown = report;
    if !rows.is_empty() {
        shown.sections.push(probe_section(&rows));
    }
    if !a.json {
        print!("{}", shown.to_markdown());
    }
    if let Some(path) = &a.html {
        std::fs::write(path, shown.to_html()).map_err(|e| cannot(path, e))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The report's probe section in Markdown: each probe of the scenario and how often the
/// report's runs saw it hold (an `always!` that failed says so).
/// The report's probes as one more section, for the Markdown and the HTML page.
fn probe_section(rows: &[probe::ProbeRow]) -> Section {
    let mut table = Table::new(&["probe", "kind", "held", "did not hold"]);
    for r in rows {
        let kind = match r.kind {
            probe::ProbeKind::Sometimes => "sometimes",
            probe::ProbeKind::Always => "always",
        };
        table.row(vec![
            r.name.to_string(),
            kind.to_string(),
            r.held.to_string(),
            (r.evaluated - r.held).to_string(),
        ]);
    }
    Section {
        heading: "Probes".into(),
        text: "The scenario's `sometimes!` and `always!` probes over the report's runs: \
               how many evaluations held and how many did not (for an `always!`, a failure)."
            .into(),
        table,
    }
}

fn dispatch(matches: &ArgMatches) -> Result<ExitCode, UserError> {
    let Some((command, m)) = matches.subcommand() else {
        return Err(UserError("a command is required; see `sim --help`".into()));
    };
    if command == "list" {
        return cmd_list();
    }
    let Some((scenario, m)) = m.subcommand() else {
        return Err(UserError(format!(
            "`sim {command}` needs a scenario; see `sim list`"
        )));
    };
    let sc = catalog::find(scenario)?;
    match command {
        "run" => cmd_run(sc, m),
        "explore" => cmd_explore(sc, m),
        "replay" => cmd_replay(sc, m),
        "shrink" => cmd_shrink(sc, m),
        "report" => cmd_report(sc, m),
        _ => Err(UserError(format!("unknown command {command:?}"))),
    }
}

/// Prints a command-line error as clap would, but with a long value (an argument can be
/// 128 KB) quoted in part.
fn print_clap_error(e: &clap::Error) {
    use clap::error::{ContextKind, ContextValue};
    let long = [ContextKind::InvalidValue, ContextKind::InvalidArg]
        .into_iter()
        .filter_map(|kind| match e.get(kind) {
            Some(ContextValue::String(v)) if elide(v) != *v => Some(v.clone()),
            _ => None,
        })
        .collect::<Vec<_>>();
    if long.is_empty() {
        let _ = e.print();
        return;
    }
    let mut text = e.render().to_string();
    for value in long {
        text = text.replace(&value, &elide(&value));
    }
    eprint!("{text}");
}

fn main() -> ExitCode {
    let matches = match cli().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            print_clap_error(&e);
            return ExitCode::from(code);
        }
    };
    match dispatch(&matches) {
        Ok(code) => code,
        Err(UserError(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        // Catches a scenario option that clashes with a command's own argument.
        cli().debug_assert();
    }
}
