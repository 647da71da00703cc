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
//! on the server), `--single` (one-session sequences instead of interleavings). Exits
//! with status 1 if any case diverged outside the documented differences.

#[path = "../conformance/postgres/harness/mod.rs"]
mod harness;

use harness::{gen_interleave, gen_single, run_all};
use sim_tests::real_server::{self, Server};

struct Options {
    sequences: u64,
    seed: u64,
    workers: usize,
    single: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        sequences: 10_000,
        seed: 1,
        workers: 4,
        single: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match a.as_str() {
            "--sequences" => o.sequences = value("--sequences")?,
            "--seed" => o.seed = value("--seed")?,
            "--workers" => o.workers = value("--workers")? as usize,
            "--single" => o.single = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let o = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("pg_conformance: {e}");
            std::process::exit(2);
        }
    };
    let Some(url) = real_server::url(Server::Postgres) else {
        std::process::exit(2);
    };
    // In chunks, so that progress shows on a long run.
    let chunk = 500;
    let mut total = harness::compare::Tally::default();
    let mut start = 0;
    while start < o.sequences {
        let end = (start + chunk).min(o.sequences);
        let cases = (start..end)
            .map(|i| {
                if o.single {
                    gen_single::case(o.seed, i, 25)
                } else {
                    gen_interleave::case(o.seed, i)
                }
            })
            .collect();
        let tally = run_all(cases, &url, o.seed.wrapping_add(start), o.workers);
        for d in &tally.divergences {
            println!("DIVERGENCE {d}");
        }
        total.merge(tally);
        eprintln!(
            "{end}/{} cases, {} divergences so far",
            o.sequences,
            total.divergences.len()
        );
        start = end;
    }
    println!("seed {}: {}", o.seed, total.figures());
    if !total.divergences.is_empty() {
        std::process::exit(1);
    }
}
