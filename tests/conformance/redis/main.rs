//! The kv model against a real Redis 7: generated command sequences run on both, every
//! reply compared (see [`diff`]). A longer run: `cargo run -p sim-tests --example
//! redis_conformance -- --sequences 10000 --seed 1`.

mod diff;

use sim_tests::real_server::{self, Server};

use diff::real::RealRedis;

#[test]
fn the_real_server_is_redis_7() {
    let Some(url) = real_server::url(Server::Redis) else {
        return;
    };
    let client = redis::Client::open(url.as_str()).expect("SIM_REDIS_URL is a redis:// URL");
    let mut conn = client.get_connection().expect("connect to the real Redis");
    let info: String = redis::cmd("INFO").arg("server").query(&mut conn).unwrap();
    assert!(
        info.lines().any(|l| l.starts_with("redis_version:7.")),
        "the conformance suite is written against Redis 7: {info}"
    );
}

/// The campaign's seed: `SIM_SEED` when set (decimal or 0x hex), else 1.
fn campaign_seed() -> u64 {
    match std::env::var("SIM_SEED") {
        Ok(s) => match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
            None => s.replace('_', "").parse(),
        }
        .expect("SIM_SEED is a decimal or 0x-hex u64"),
        Err(_) => 1,
    }
}

#[test]
fn generated_sequences_get_the_same_replies_from_the_model_and_redis() {
    let Some(url) = real_server::url(Server::Redis) else {
        return;
    };
    let seed = campaign_seed();
    let sequences = real_server::cases(1_000);
    let mut redis = RealRedis::open(&url);
    let (figures, divergences) = diff::campaign(&mut redis, seed, sequences, 40, |_| {});
    println!("redis conformance, seed {seed}: {figures}");
    for d in &divergences {
        println!("{d}");
    }
    assert!(
        divergences.is_empty(),
        "{} of {} sequences diverge (seed {seed}); the first ones, shrunk, are printed above",
        figures.diverging_sequences,
        figures.sequences
    );
}

/// The model side alone is deterministic: one generated sequence, run twice in a
/// simulation with the same seed, gives the same replies and trace fingerprint. Needs no
/// real server.
#[test]
fn the_model_side_of_a_sequence_is_deterministic() {
    let seed = diff::sequence_seed(1, 0);
    let argvs = diff::gen::render(&diff::gen::sequence(seed), 1_700_000_000_000);
    let first = diff::model::run(&argvs, 1_700_000_000_000, seed);
    let second = diff::model::run(&argvs, 1_700_000_000_000, seed);
    assert_eq!(first.replies, second.replies);
    assert_eq!(first.fingerprint, second.fingerprint);
    let other = diff::model::run(&argvs, 1_700_000_000_000, seed + 1);
    assert_eq!(
        first.replies, other.replies,
        "one client without faults: the replies do not depend on the simulation's seed"
    );
}
