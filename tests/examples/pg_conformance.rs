//! A long differential run of the sql model against a real PostgreSQL 15: random
//! interleavings of two or three sessions (and, with `--single`, one-session statement
//! sequences), compared statement by statement; every divergence is printed shrunk, as
//! SQL per session for psql.
//!
//! ```text
//! eval "$(.ci/servers start)"
//! cargo run -p sim-tests --example pg_conformance -- --sequences 10000 --seed 1
//! ```
//!
//! Options: `--sequences N` (10,000), `--seed S` (1), `--workers W` (4 cases at a time
//! on the server), `--single` (one-session sequences instead of interleavings), `--case I`
//! (only case I of the seed, as a report names it: `interleaving seed=1 index=2815` is
//! `--seed 1 --case 2815`, printed as SQL per session). Exits with status 1 if any case diverged outside the
//! documented differences, 2 on a bad argument.

#[path = "../conformance/postgres/harness/mod.rs"]
mod harness;

use harness::{gen_interleave, gen_single, run_all};
use sim_tests::real_server::{self, Server};

const USAGE: &str = "usage: pg_conformance [--sequences N] [--seed S] [--workers W] [--single] \
                     [--case I]\n(the server is $SIM_PG_URL: eval \"$(.ci/servers start)\")";

struct Options {
    /// The case indexes to run.
    cases: std::ops::Range<u64>,
    seed: u64,
    workers: usize,
    single: bool,
}

/// A number in decimal or, after `0x`, in hex (seeds are printed both ways).
fn number(v: &str) -> Option<u64> {
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// `Ok(None)` when the user asked for the usage text.
fn parse(args: &[String]) -> Result<Option<Options>, String> {
    let mut o = Options {
        cases: 0..10_000,
        seed: 1,
        workers: 4,
        single: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            let v = it.next().ok_or_else(|| format!("{name} needs a number"))?;
            number(v).ok_or_else(|| format!("{name} {v}: not a number"))
        };
        match a.as_str() {
            "--sequences" => o.cases = 0..value("--sequences")?,
            "--seed" => o.seed = value("--seed")?,
            "--workers" => o.workers = (value("--workers")? as usize).max(1),
            "--case" => {
                let i = value("--case")?;
                o.cases = i..i + 1;
            }
            "--single" => o.single = true,
            "--help" | "-h" => return Ok(None),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Some(o))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let o = match parse(&args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{USAGE}");
            return;
        }
        Err(e) => {
            eprintln!("pg_conformance: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let Some(url) = real_server::url(Server::Postgres) else {
        std::process::exit(2);
    };
    // In chunks, so that progress shows on a long run.
    let chunk = 500;
    let mut total = harness::compare::Tally::default();
    let mut start = o.cases.start;
    while start < o.cases.end {
        let end = (start + chunk).min(o.cases.end);
        let cases: Vec<_> = (start..end)
            .map(|i| {
                if o.single {
                    gen_single::case(o.seed, i, 25)
                } else {
                    gen_interleave::case(o.seed, i)
                }
            })
            .collect();
        if o.cases.end - o.cases.start == 1 {
            // One case asked for by its index: show it, to run by hand in psql.
            println!("{}", cases[0].as_sql());
        }
        let tally = run_all(cases, &url, o.seed.wrapping_add(start), o.workers);
        for d in &tally.divergences {
            println!("DIVERGENCE {d}");
        }
        total.merge(tally);
        eprintln!(
            "{end}/{} cases, {} divergences so far",
            o.cases.end,
            total.divergences.len()
        );
        start = end;
    }
    println!("seed {}: {}", o.seed, total.figures());
    if !total.divergences.is_empty() {
        std::process::exit(1);
    }
}
