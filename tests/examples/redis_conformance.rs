//! The kv model against a real Redis 7, for longer runs than `cargo test` does:
//!
//! ```text
//! eval "$(.ci/servers start)"
//! cargo run -p sim-tests --example redis_conformance -- --sequences 10000 --seed 1
//! ```
//!
//! Prints the figures (sequences, commands, % identical) every 1,000 sequences and at the
//! end, then up to `--show` (default 10) diverging sequences, each shrunk to a few
//! commands with both replies. Exits with status 1 when any sequence diverged.

#[path = "../conformance/redis/diff/mod.rs"]
mod diff;

use diff::real::RealRedis;

struct Args {
    sequences: usize,
    seed: u64,
    show: usize,
    url: String,
}

fn number(flag: &str, v: Option<String>) -> u64 {
    let v = v.unwrap_or_else(|| usage(&format!("{flag} needs a value")));
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    parsed.unwrap_or_else(|_| usage(&format!("{flag} {v}: not a number")))
}

const USAGE: &str = "usage: redis_conformance [--sequences N] [--seed S] [--show K] \
                     [--url redis://...]\n(the URL defaults to $SIM_REDIS_URL)";

fn usage(why: &str) -> ! {
    eprintln!("{why}\n{USAGE}");
    std::process::exit(2)
}

fn args() -> Args {
    let mut a = Args {
        sequences: 10_000,
        seed: 1,
        show: 10,
        url: std::env::var("SIM_REDIS_URL").unwrap_or_default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--sequences" => a.sequences = number(&flag, it.next()) as usize,
            "--seed" => a.seed = number(&flag, it.next()),
            "--show" => a.show = number(&flag, it.next()) as usize,
            "--url" => a.url = it.next().unwrap_or_else(|| usage("--url needs a value")),
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if a.url.is_empty() {
        usage("no real Redis: set SIM_REDIS_URL (eval \"$(.ci/servers start)\") or pass --url");
    }
    a
}

fn main() {
    let a = args();
    let mut redis = RealRedis::open(&a.url);
    let (figures, divergences) = diff::campaign(&mut redis, a.seed, a.sequences, a.show, |f| {
        if f.sequences % 1000 == 0 {
            eprintln!("... {f}");
        }
    });
    println!("redis conformance, seed {}: {figures}", a.seed);
    for d in &divergences {
        println!("{d}");
    }
    if figures.diverging_sequences > 0 {
        std::process::exit(1);
    }
}
