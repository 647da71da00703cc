//! Random interleavings: two or three sessions each running small transactions over a few
//! rows, their statements merged in a random order, so that they lock, wait, deadlock,
//! fail to serialize and see (or not) each other's writes.

use super::case::{Case, Step};
use super::rng::Gen;

pub const SCHEMA: [&str; 2] = [
    "CREATE TABLE acct (id bigint PRIMARY KEY, bal bigint NOT NULL CHECK (bal >= 0))",
    "CREATE SEQUENCE ids START 10",
];

const SEED_ROWS: [&str; 1] = ["INSERT INTO acct (id, bal) VALUES (1, 10), (2, 10), (3, 10)"];

const LEVELS: [&str; 3] = ["READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"];

fn operation(g: &mut Gen) -> String {
    let id = g.range(1, 4);
    match g.below(15) {
        0 | 1 => format!("SELECT bal FROM acct WHERE id = {id}"),
        2 => format!("SELECT bal FROM acct WHERE id = {id} FOR UPDATE"),
        3 => format!("SELECT bal FROM acct WHERE id = {id} FOR SHARE"),
        4 => format!("SELECT bal FROM acct WHERE id = {id} FOR UPDATE NOWAIT"),
        5 => "SELECT id FROM acct ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED".into(),
        6..=8 => format!(
            "UPDATE acct SET bal = bal + {} WHERE id = {id}",
            g.range(-12, 5)
        ),
        9 => format!("INSERT INTO acct (id, bal) VALUES ({}, 1)", g.range(3, 5)),
        10 => format!("DELETE FROM acct WHERE id = {id}"),
        // A sequence's values are drawn once, whoever waits or rolls back.
        11 => format!(
            "INSERT INTO acct (id, bal) VALUES (nextval('ids'), {}) RETURNING id",
            g.range(0, 3)
        ),
        12 => format!("UPDATE acct SET bal = bal + nextval('ids') % 3 WHERE id = {id}"),
        13 => "SELECT nextval('ids'), 1 + 1".into(),
        _ => "SELECT sum(bal), count(*) FROM acct".into(),
    }
}

/// One session's transactions, statement by statement.
fn transactions(g: &mut Gen, level: &str) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..g.range(1, 2) {
        out.push(format!("BEGIN ISOLATION LEVEL {level}"));
        for _ in 0..g.range(1, 3) {
            out.push(operation(g));
        }
        out.push(if g.chance(85) { "COMMIT" } else { "ROLLBACK" }.into());
    }
    out
}

/// The `index`-th interleaving of the run seeded by `seed`.
pub fn case(seed: u64, index: u64) -> Case {
    let mut g = Gen::new(seed ^ index.wrapping_mul(0xd1b5_4a32_d192_ed03) ^ 0x1eaf);
    let sessions = g.range(2, 3) as usize;
    // One level for all (most anomalies need two transactions of the same level), now
    // and then a mix.
    let shared = *g.pick(&LEVELS);
    let mut queues: Vec<std::collections::VecDeque<String>> = (0..sessions)
        .map(|_| {
            let level = if g.chance(20) {
                *g.pick(&LEVELS)
            } else {
                shared
            };
            transactions(&mut g, level).into()
        })
        .collect();
    let mut steps = Vec::new();
    while queues.iter().any(|q| !q.is_empty()) {
        let s = g.below(sessions as u64) as usize;
        if let Some(sql) = queues[s].pop_front() {
            steps.push(Step { session: s, sql });
        }
    }
    Case {
        name: format!("interleaving seed={seed} index={index}"),
        sessions,
        setup: SCHEMA
            .iter()
            .chain(&SEED_ROWS)
            .map(|s| s.to_string())
            .collect(),
        steps,
        tables: vec!["acct".into()],
    }
}
