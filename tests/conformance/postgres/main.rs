//! The sql model against a real PostgreSQL 15: the same statements on both sides, and
//! their answers, waits, errors and final contents compared (see [`harness`]).
//!
//! Figures are printed (`cargo test -p sim-tests --test conformance_postgres --
//! --nocapture`); any divergence outside the documented list fails the test with the
//! shrunk case as SQL per session. `SIM_PG_SEED` picks the generators' seed (1 by
//! default); the example `pg_conformance` runs longer sweeps.

mod harness;

use harness::{gen_interleave, gen_single, run_all, scripted};
use sim_tests::real_server::{self, Server};

fn seed() -> u64 {
    std::env::var("SIM_PG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

#[test]
fn the_real_server_is_postgres_15() {
    let Some(url) = real_server::url(Server::Postgres) else {
        return;
    };
    let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let row = client.query_one("SHOW server_version_num", &[]).unwrap();
    let version: String = row.get(0);
    assert!(
        version.starts_with("15"),
        "the conformance suite is written against PostgreSQL 15: {version}"
    );
}

#[test]
fn single_session_sequences_match_postgres() {
    let Some(url) = real_server::url(Server::Postgres) else {
        return;
    };
    let cases = (0..150).map(|i| gen_single::case(seed(), i, 25)).collect();
    let tally = run_all(cases, &url, seed(), 2);
    println!("single-session sequences: {tally}");
    assert!(tally.divergences.is_empty(), "{tally}");
}

#[test]
fn scripted_interleavings_match_postgres() {
    let Some(url) = real_server::url(Server::Postgres) else {
        return;
    };
    let tally = run_all(scripted::cases(), &url, seed(), 4);
    println!("scripted interleavings: {tally}");
    assert!(tally.divergences.is_empty(), "{tally}");
}

#[test]
fn random_interleavings_match_postgres() {
    let Some(url) = real_server::url(Server::Postgres) else {
        return;
    };
    let cases = (0..200).map(|i| gen_interleave::case(seed(), i)).collect();
    let tally = run_all(cases, &url, seed(), 4);
    println!("random interleavings: {tally}");
    assert!(tally.divergences.is_empty(), "{tally}");
}
