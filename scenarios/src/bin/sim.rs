//! `sim`: explore, run, replay and shrink the seed systems' chaos scenarios, and write
//! their resilience reports.
//!
//! Exit codes: 0 when everything passed, 1 when a run failed or exploration found a
//! failure, 2 for bad input (unknown scenario, variant or fault, a malformed seed or
//! schedule file).

// The progress bar and the seeds/s figure read the wall clock; no simulation sees it.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant as WallClock;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use scenarios::explore::{explore, SeedSpace};
use scenarios::scenario::{FaultChoice, RunOutput, RunSpec, Scenario, SpecError};

/// A simulation allocates and frees small objects all the time (messages, tasks, trace
/// fields); mimalloc does that faster than glibc's allocator. Allocation addresses never
/// reach a simulation's decisions, so the choice cannot change a run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sim",
    version,
    about = "Deterministic chaos testing of the seed systems, in virtual time"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The scenarios, their variants and their faults.
    List,
    /// Runs one seed and prints the outcome, verdicts, fingerprint and metrics.
    Run(RunArgs),
    /// Explores many seeds in parallel; stops at the first failure unless --all.
    Explore(ExploreArgs),
    /// Runs a seed again and prints its fingerprint (which must match the original).
    Replay(ReplayArgs),
    /// Shrinks a failing run's fault schedule to the smallest one that still fails.
    Shrink(ShrinkArgs),
    /// Writes the scenario's resilience report: the document's tables with exact numbers.
    Report(ReportArgs),
}

#[derive(Args, Clone)]
struct Target {
    /// The scenario (see `sim list`).
    scenario: String,
    /// Service variant: `correct` or one of the buggy ones.
    #[arg(long, default_value = "correct")]
    variant: String,
    /// A fault-matrix entry, or `swarm` for a schedule drawn from the seed.
    #[arg(long, default_value = "swarm")]
    fault: String,
    /// An explicit fault schedule (JSON, as written by `sim shrink`); overrides --fault.
    #[arg(long)]
    schedule: Option<std::path::PathBuf>,
    /// Virtual users.
    #[arg(long)]
    users: Option<u32>,
    /// Items on sale.
    #[arg(long)]
    items: Option<u32>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    target: Target,
    /// The seed, decimal or 0x-hex.
    #[arg(long)]
    seed: String,
    /// Writes the full trace as JSON lines.
    #[arg(long)]
    trace: Option<std::path::PathBuf>,
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
    /// Where the seed sequence starts (decimal or 0x-hex).
    #[arg(long)]
    seed_base: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// `i/n`: explore only every n-th seed starting at i (for CI matrices and batch jobs).
    #[arg(long, default_value = "0/1")]
    shard: String,
    /// Keep going after a failure and report them all.
    #[arg(long)]
    all: bool,
    /// One JSON line per seed on stdout instead of a progress bar.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ReplayArgs {
    #[command(flatten)]
    target: Target,
    #[arg(long)]
    seed: String,
    /// The fingerprint the original run printed; replay fails if it differs.
    #[arg(long)]
    expect: Option<String>,
}

#[derive(Args)]
struct ShrinkArgs {
    #[command(flatten)]
    target: Target,
    #[arg(long)]
    seed: String,
    /// Where to write the shrunk schedule.
    #[arg(long, default_value = "shrunk-schedule.json")]
    out: std::path::PathBuf,
}

#[derive(Args)]
struct ReportArgs {
    scenario: String,
    #[arg(long, default_value = "1")]
    seed: String,
    #[arg(long)]
    users: Option<u32>,
    #[arg(long)]
    items: Option<u32>,
    #[arg(long)]
    json: bool,
}

/// A user error: message and exit code 2.
struct UserError(String);

impl From<SpecError> for UserError {
    fn from(e: SpecError) -> Self {
        UserError(e.to_string())
    }
}

fn parse_seed(flag: &str, text: &str) -> Result<u64, UserError> {
    sim_runtime::harness::parse_seed(text).ok_or_else(|| {
        UserError(format!(
            "{flag} {text:?} is not a seed: expected a decimal or 0x-prefixed hex u64"
        ))
    })
}

fn find(name: &str) -> Result<&'static dyn Scenario, UserError> {
    scenarios::find(name).ok_or_else(|| SpecError::UnknownScenario(name.to_string()).into())
}

fn params(t: &Target) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    if let Some(u) = t.users {
        m.insert("users".into(), u.into());
    }
    if let Some(i) = t.items {
        m.insert("items".into(), i.into());
    }
    serde_json::Value::Object(m)
}

fn spec(t: &Target, seed: u64) -> Result<RunSpec, UserError> {
    let fault = match &t.schedule {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                UserError(format!("cannot read schedule file {}: {e}", path.display()))
            })?;
            let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                UserError(format!("malformed schedule file {}: {e}", path.display()))
            })?;
            FaultChoice::Schedule(value)
        }
        None if t.fault == "swarm" => FaultChoice::Swarm,
        None => FaultChoice::Named(t.fault.clone()),
    };
    Ok(RunSpec {
        seed,
        variant: t.variant.clone(),
        fault,
        params: params(t),
    })
}

/// The exact command that replays a run.
fn replay_line(scenario: &str, t: &Target, seed: u64) -> String {
    let mut s = format!("cargo run --release -p scenarios --bin sim -- replay {scenario} --variant {} --seed {seed:#x}", t.variant);
    match &t.schedule {
        Some(p) => s.push_str(&format!(" --schedule {}", p.display())),
        None => s.push_str(&format!(" --fault {}", t.fault)),
    }
    if let Some(u) = t.users {
        s.push_str(&format!(" --users {u}"));
    }
    if let Some(i) = t.items {
        s.push_str(&format!(" --items {i}"));
    }
    s
}

fn print_run(out: &RunOutput) {
    println!("seed:        {:#x}", out.spec.seed);
    println!("variant:     {}", out.spec.variant);
    println!("fault:       {}", out.spec.fault);
    if let Some(s) = &out.swarm {
        println!("swarm:       {s}");
    }
    println!("schedule:    {}", out.schedule);
    println!("outcome:     {}", out.report.outcome);
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
    println!("metrics:     {}", out.metrics);
}

fn cmd_list() -> Result<ExitCode, UserError> {
    for s in scenarios::registry() {
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
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_run(a: RunArgs) -> Result<ExitCode, UserError> {
    let sc = find(&a.target.scenario)?;
    let seed = parse_seed("--seed", &a.seed)?;
    let spec = spec(&a.target, seed)?;
    sc.validate(&spec)?;
    let out = match &a.trace {
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|e| {
                UserError(format!("cannot create trace file {}: {e}", path.display()))
            })?;
            sc.run_traced(&spec, Box::new(std::io::BufWriter::new(file)))?
        }
        None => sc.run(&spec)?,
    };
    if a.json {
        println!("{}", serde_json::to_string(&out).unwrap_or_default());
    } else {
        print_run(&out);
        if out.failed() {
            println!("replay:      {}", replay_line(sc.name(), &a.target, seed));
        }
    }
    Ok(if out.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn cmd_explore(a: ExploreArgs) -> Result<ExitCode, UserError> {
    let sc = find(&a.target.scenario)?;
    let base = match &a.seed_base {
        Some(b) => parse_seed("--seed-base", b)?,
        None => sim_runtime::harness::DEFAULT_SEED_BASE,
    };
    let shard = parse_shard(&a.shard)?;
    let template = spec(&a.target, 0)?;
    sc.validate(&template)?;
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let space = SeedSpace {
        base,
        count: a.seeds,
        shard,
    };
    let total = space.indices().count() as u64;
    if !a.json {
        eprintln!(
            "exploring {} seeds of {} (variant {}, fault {}) from seed base {base:#x}, shard {}/{}, {jobs} jobs",
            total, sc.name(), a.target.variant, a.target.fault, shard.0, shard.1
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
    let started = WallClock::now();
    let stdout = std::io::stdout();
    let result = explore(sc, &template, &space, jobs, a.all, |r| {
        if a.json {
            let mut lock = stdout.lock();
            let _ = writeln!(lock, "{}", serde_json::to_string(r).unwrap_or_default());
        } else {
            bar.inc(1);
            if r.failed {
                bar.set_message(format!("failure at seed {}", r.seed));
            }
        }
    })?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    if !a.json {
        eprintln!(
            "{} seeds in {secs:.2} s ({:.0} seeds/s)",
            result.runs,
            result.runs as f64 / secs.max(1e-9)
        );
    }
    if result.failures.is_empty() {
        if !a.json {
            println!("no failure in {} seeds", result.runs);
        }
        return Ok(ExitCode::SUCCESS);
    }
    for (index, out) in &result.failures {
        let line = replay_line(sc.name(), &a.target, out.spec.seed);
        if a.json {
            let _ = writeln!(
                stdout.lock(),
                "{}",
                serde_json::json!({"failure": out.failure_summary(), "index": index, "seed": format!("{:#x}", out.spec.seed), "replay": line})
            );
        } else {
            println!("FAILURE at seed {:#x} (index {index})", out.spec.seed);
            println!(
                "  violated:    {}",
                out.failure_summary().unwrap_or_default()
            );
            if let Some(s) = &out.swarm {
                println!("  swarm:       {s}");
            }
            println!("  schedule:    {}", out.schedule);
            println!("  fingerprint: {:#018x}", out.report.fingerprint);
            println!(
                "  replay:      {line} --expect {:#018x}",
                out.report.fingerprint
            );
        }
    }
    Ok(ExitCode::FAILURE)
}

fn parse_shard(text: &str) -> Result<(u64, u64), UserError> {
    let bad = || UserError(format!("--shard {text:?} must be i/n with 0 <= i < n"));
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

fn cmd_replay(a: ReplayArgs) -> Result<ExitCode, UserError> {
    let sc = find(&a.target.scenario)?;
    let seed = parse_seed("--seed", &a.seed)?;
    let expect = a
        .expect
        .as_deref()
        .map(|e| parse_seed("--expect", e))
        .transpose()?;
    let spec = spec(&a.target, seed)?;
    sc.validate(&spec)?;
    let out = sc.run(&spec)?;
    print_run(&out);
    if let Some(e) = expect {
        if e != out.report.fingerprint {
            println!(
                "fingerprint MISMATCH: expected {e:#018x}, got {:#018x}",
                out.report.fingerprint
            );
            return Ok(ExitCode::FAILURE);
        }
        println!("fingerprint matches");
    }
    Ok(if out.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn cmd_shrink(a: ShrinkArgs) -> Result<ExitCode, UserError> {
    let sc = find(&a.target.scenario)?;
    let seed = parse_seed("--seed", &a.seed)?;
    let spec = spec(&a.target, seed)?;
    sc.validate(&spec)?;
    match sc.shrink(&spec)? {
        None => {
            println!("seed {seed:#x} does not fail with that schedule; nothing to shrink");
            Ok(ExitCode::FAILURE)
        }
        Some((schedule, out)) => {
            let text = serde_json::to_string_pretty(&schedule).unwrap_or_default();
            std::fs::write(&a.out, format!("{text}\n"))
                .map_err(|e| UserError(format!("cannot write {}: {e}", a.out.display())))?;
            println!("shrunk schedule ({}):\n{text}", a.out.display());
            println!("still fails: {}", out.failure_summary().unwrap_or_default());
            let mut t = a.target.clone();
            t.schedule = Some(a.out.clone());
            println!(
                "run it with: {}",
                replay_line(sc.name(), &t, seed).replace(" replay ", " run ")
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn cmd_report(a: ReportArgs) -> Result<ExitCode, UserError> {
    let sc = find(&a.scenario)?;
    let seed = parse_seed("--seed", &a.seed)?;
    let t = Target {
        scenario: a.scenario.clone(),
        variant: "correct".into(),
        fault: "none".into(),
        schedule: None,
        users: a.users,
        items: a.items,
    };
    let report = sc.report(seed, &params(&t))?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", report.to_markdown());
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::List => cmd_list(),
        Command::Run(a) => cmd_run(a),
        Command::Explore(a) => cmd_explore(a),
        Command::Replay(a) => cmd_replay(a),
        Command::Shrink(a) => cmd_shrink(a),
        Command::Report(a) => cmd_report(a),
    };
    match result {
        Ok(code) => code,
        Err(UserError(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}
