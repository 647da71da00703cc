//! Random single-session statement sequences over a small schema with every kind of
//! constraint: mostly statements the model supports, with the errors a service meets
//! (23505, 23502, 23514, 23503, 22012, 42703, 42P01, 42601, 25P02) mixed in.

use super::case::{Case, Step};
use super::rng::Gen;

pub const SCHEMA: [&str; 2] = [
    "CREATE TABLE parent (id bigint PRIMARY KEY, name text NOT NULL UNIQUE, \
     score bigint CHECK (score >= 0), ratio float8)",
    "CREATE TABLE child (id bigint PRIMARY KEY, parent_id bigint REFERENCES parent (id), \
     qty bigint NOT NULL DEFAULT 0, note text)",
];

const SEED_ROWS: [&str; 2] = [
    "INSERT INTO parent (id, name, score, ratio) VALUES (1, 'a', 5, 0.5), (2, 'b', 0, NULL), \
     (3, 'c', 12, 2.25)",
    "INSERT INTO child (id, parent_id, qty, note) VALUES (1, 1, 3, 'x'), (2, 3, 0, NULL)",
];

const NAMES: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

fn score(g: &mut Gen) -> String {
    if g.chance(10) {
        "NULL".into()
    } else {
        g.range(-2, 20).to_string()
    }
}

fn ratio(g: &mut Gen) -> String {
    g.pick(&["NULL", "0.5", "1.25", "2", "-3.5"]).to_string()
}

fn returning(g: &mut Gen, cols: &str) -> String {
    if g.chance(30) {
        format!(" RETURNING {cols}")
    } else {
        String::new()
    }
}

fn insert_parent(g: &mut Gen) -> String {
    let id = g.range(1, 8);
    let name = g.pick(&NAMES);
    let name = if g.chance(5) {
        "NULL".to_owned()
    } else {
        format!("'{name}'")
    };
    let conflict = match g.below(4) {
        0 => " ON CONFLICT (id) DO NOTHING",
        1 => " ON CONFLICT (id) DO UPDATE SET score = excluded.score",
        _ => "",
    };
    let (s, r) = (score(g), ratio(g));
    let ret = returning(g, "id, name, score");
    format!("INSERT INTO parent (id, name, score, ratio) VALUES ({id}, {name}, {s}, {r}){conflict}{ret}")
}

fn insert_child(g: &mut Gen) -> String {
    let id = g.range(1, 8);
    let parent = if g.chance(15) {
        "NULL".to_owned()
    } else {
        g.range(1, 8).to_string()
    };
    let ret = returning(g, "*");
    if g.chance(20) {
        format!("INSERT INTO child (id, parent_id) VALUES ({id}, {parent}){ret}")
    } else {
        let qty = if g.chance(8) {
            "NULL".to_owned()
        } else {
            g.range(0, 9).to_string()
        };
        let note = g.pick(&["NULL", "'n'", "'it''s'"]).to_string();
        format!("INSERT INTO child (id, parent_id, qty, note) VALUES ({id}, {parent}, {qty}, {note}){ret}")
    }
}

fn where_parent(g: &mut Gen) -> String {
    match g.below(5) {
        0 | 1 => format!("id = {}", g.range(1, 8)),
        2 => format!("score > {}", g.range(0, 12)),
        3 => format!("name = '{}'", g.pick(&NAMES)),
        _ => "score IS NULL".into(),
    }
}

fn update(g: &mut Gen) -> String {
    let w = where_parent(g);
    let ret = returning(g, "id, score");
    match g.below(5) {
        0 | 1 => format!(
            "UPDATE parent SET score = score + {} WHERE {w}{ret}",
            g.range(-6, 6)
        ),
        2 => format!(
            "UPDATE parent SET name = '{}' WHERE {w}{ret}",
            g.pick(&NAMES)
        ),
        3 => format!("UPDATE parent SET ratio = ratio * 2 WHERE {w}{ret}"),
        _ => format!(
            "UPDATE child SET parent_id = {}, qty = qty + 1 WHERE id = {}{}",
            g.range(1, 8),
            g.range(1, 8),
            returning(g, "id, parent_id, qty")
        ),
    }
}

fn delete(g: &mut Gen) -> String {
    if g.chance(50) {
        format!(
            "DELETE FROM parent WHERE {}{}",
            where_parent(g),
            returning(g, "id")
        )
    } else {
        format!("DELETE FROM child WHERE parent_id = {}", g.range(1, 8))
    }
}

fn select(g: &mut Gen) -> String {
    match g.below(10) {
        0 => format!("SELECT * FROM parent WHERE {}", where_parent(g)),
        1 => "SELECT id, name, score, ratio FROM parent ORDER BY id".into(),
        2 => format!(
            "SELECT id, score / {} FROM parent WHERE score IS NOT NULL ORDER BY id",
            g.range(0, 3)
        ),
        3 => "SELECT count(*), sum(score), min(name), max(ratio) FROM parent".into(),
        4 => {
            "SELECT parent_id, count(*), sum(qty) FROM child GROUP BY parent_id ORDER BY parent_id"
                .into()
        }
        5 => "SELECT p.name, c.qty FROM parent p JOIN child c ON c.parent_id = p.id ORDER BY c.id"
            .into(),
        6 => format!(
            "SELECT id FROM parent ORDER BY score DESC, id LIMIT {} OFFSET {}",
            g.range(0, 3),
            g.range(0, 2)
        ),
        7 => format!(
            "SELECT id, qty * 2 + 1 AS q FROM child WHERE qty >= {}",
            g.range(0, 4)
        ),
        8 => "SELECT * FROM child WHERE note IS NULL ORDER BY id".into(),
        _ => format!(
            "SELECT count(*) FROM child WHERE parent_id = {}",
            g.range(1, 8)
        ),
    }
}

fn mistake(g: &mut Gen) -> String {
    g.pick(&[
        "SELECT nope FROM parent",
        "SELECT * FROM nothere",
        "SELEC 1",
        "UPDATE parent SET nope = 1",
        "INSERT INTO nothere (id) VALUES (1)",
    ])
    .to_string()
}

fn control(g: &mut Gen) -> String {
    g.pick(&[
        "BEGIN",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT sp",
        "ROLLBACK TO SAVEPOINT sp",
        "RELEASE SAVEPOINT sp",
    ])
    .to_string()
}

/// One random statement.
pub fn statement(g: &mut Gen) -> String {
    match g.below(100) {
        0..=17 => insert_parent(g),
        18..=29 => insert_child(g),
        30..=47 => update(g),
        48..=55 => delete(g),
        56..=79 => select(g),
        80..=84 => mistake(g),
        _ => control(g),
    }
}

/// The `index`-th sequence of the run seeded by `seed`: the schema, seed rows, and
/// `length` random statements in one session.
pub fn case(seed: u64, index: u64, length: usize) -> Case {
    let mut g = Gen::new(seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let steps = (0..length)
        .map(|_| Step {
            session: 0,
            sql: statement(&mut g),
        })
        .collect();
    Case {
        name: format!("single seed={seed} index={index}"),
        sessions: 1,
        setup: SCHEMA
            .iter()
            .chain(&SEED_ROWS)
            .map(|s| s.to_string())
            .collect(),
        steps,
        tables: vec!["parent".into(), "child".into()],
    }
}
