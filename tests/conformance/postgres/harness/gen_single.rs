//! Random single-session statement sequences over a small schema with every kind of
//! constraint: mostly statements the model supports, with the errors a service meets
//! (23505, 23502, 23514, 23503, 22012, 42703, 42P01, 42601, 25P02) mixed in. A third
//! table holds the value types services use beside numbers and text: `numeric` (a
//! typed column that rounds and overflows with 22003, and a free one that is unique, so
//! `1.5` and `1.50` collide), `jsonb`, `uuid` keys, `timestamptz` and `timestamp`, read
//! back through their text output, operators, casts and aggregates.

use super::case::{Case, Step};
use super::rng::Gen;

pub const SCHEMA: [&str; 3] = [
    "CREATE TABLE parent (id bigint PRIMARY KEY, name text NOT NULL UNIQUE, \
     score bigint CHECK (score >= 0), ratio float8)",
    "CREATE TABLE child (id bigint PRIMARY KEY, parent_id bigint REFERENCES parent (id), \
     qty bigint NOT NULL DEFAULT 0, note text)",
    "CREATE TABLE item (id uuid PRIMARY KEY, price numeric(8, 2) NOT NULL, \
     weight numeric UNIQUE, doc jsonb, at timestamptz, local timestamp)",
];

const SEED_ROWS: [&str; 3] = [
    "INSERT INTO parent (id, name, score, ratio) VALUES (1, 'a', 5, 0.5), (2, 'b', 0, NULL), \
     (3, 'c', 12, 2.25)",
    "INSERT INTO child (id, parent_id, qty, note) VALUES (1, 1, 3, 'x'), (2, 3, 0, NULL)",
    "INSERT INTO item (id, price, weight, doc, at, local) VALUES \
     ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 12.5, 1.5, '{\"a\": 1, \"b\": \"x\"}', \
     '2024-01-01 10:00:00+00', '2024-01-01 10:00'), \
     ('00000000-0000-0000-0000-000000000001', 0.1, NULL, '[1, \"a\", null]', NULL, NULL)",
];

/// Each uuid in the spellings PostgreSQL reads.
const UUIDS: [[&str; 3]; 5] = [
    [
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
        "{a0eebc999c0b4ef8bb6d6bb9bd380a11}",
    ],
    [
        "00000000-0000-0000-0000-000000000001",
        "00000000000000000000000000000001",
        "{00000000-0000-0000-0000-000000000001}",
    ],
    [
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
        "ffffffffffffffffffffffffffffffff",
    ],
    [
        "123e4567-e89b-12d3-a456-426614174000",
        "123e4567e89b12d3a456426614174000",
        "123E4567-E89B12D3-A4564266-14174000",
    ],
    [
        "9f8e7d6c-5b4a-3921-8071-625344352617",
        "{9F8E7D6C-5B4A-3921-8071-625344352617}",
        "9f8e-7d6c-5b4a-3921-8071-6253-4435-2617",
    ],
];

const PRICES: [&str; 10] = [
    "12.5",
    "1.005",
    "0.1",
    "-3",
    "7",
    "2.25e1",
    "999999.995",
    "999999.99",
    "0.004",
    "'33.333'",
];
const WEIGHTS: [&str; 11] = [
    "NULL",
    "1.5",
    "1.50",
    "0",
    "-2.25",
    "0.001",
    "1234.5678",
    "3",
    "1e3",
    "0.1e-2",
    "'7.10'",
];
const DOCS: [&str; 10] = [
    "NULL",
    r#"'{"a": 1, "b": "x"}'"#,
    r#"'{"b": 2, "a": 1, "a": 3}'"#,
    r#"'{"c": [1, 2.50, {"d": null}], "a": 1}'"#,
    r#"'[1, "a", true, null]'"#,
    r#"'"str"'"#,
    "'1.0e1'",
    "'null'",
    r#"'{"aa": {}, "b": [], "a": {"x": [1, 2]}}'"#,
    r#"'{"a": "\u00e9\t\\ \"q\" é"}'"#,
];
const TIMES: [&str; 7] = [
    "NULL",
    "'2024-01-01 10:00:00+00'",
    "'2024-02-29 23:59:59.5+01'",
    "'2023-12-31T22:00:00Z'",
    "'2024-03-10 02:30:00-05:30'",
    "'2024-01-31'",
    "'2024-01-01 09:59:59.999999+00'",
];
const LOCAL_TIMES: [&str; 5] = [
    "NULL",
    "'2024-01-01 10:00'",
    "'2024-01-31 12:00:00.25'",
    "'1999-12-31 23:59:59'",
    "'2024-01-01 10:00:00+05'",
];
const INTERVALS: [&str; 9] = [
    "5 minutes",
    "90 minutes",
    "1 day",
    "1 month",
    "-2 hours",
    "1 year 2 months",
    "1 day 2 hours 3 minutes",
    "1.5 hours",
    "30 seconds ago",
];
const KEYS: [&str; 5] = ["a", "b", "c", "aa", "zz"];

fn uuid(g: &mut Gen) -> String {
    let spellings = g.pick(&UUIDS);
    format!("'{}'", g.pick(spellings))
}

/// Text that no input function reads, for one column of an INSERT: PostgreSQL reads a
/// statement's literals when it plans it, the model when it evaluates a row (the
/// documented typing difference), so a sequence has such a literal only where every
/// row evaluates it and nothing else in the statement fails.
const BAD_INPUTS: [(usize, &str); 4] = [
    (0, "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1'"),
    (3, "'{bad'"),
    (4, "'2023-02-29 10:00:00+00'"),
    (3, r#"'{"a": 1,}'"#),
];

fn insert_item(g: &mut Gen) -> String {
    let id = uuid(g);
    let id = if g.chance(20) {
        format!("{id}::uuid")
    } else {
        id
    };
    let price = g.pick(&PRICES).to_string();
    let weight = g.pick(&WEIGHTS).to_string();
    let doc = g.pick(&DOCS).to_string();
    let doc = if g.chance(20) && doc != "NULL" {
        format!("CAST({doc} AS jsonb)")
    } else {
        doc
    };
    let at = g.pick(&TIMES).to_string();
    let local = g.pick(&LOCAL_TIMES).to_string();
    let mut values = [id, price, weight, doc, at, local];
    if g.chance(10) {
        let (column, bad) = *g.pick(&BAD_INPUTS);
        values[column] = bad.to_string();
        // The other columns valid: only the bad literal fails.
        values[1] = "12.5".into();
    }
    let [id, price, weight, doc, at, local] = values;
    let conflict = match g.below(4) {
        0 => " ON CONFLICT (id) DO NOTHING",
        1 => " ON CONFLICT (id) DO UPDATE SET price = excluded.price + item.price",
        _ => "",
    };
    let ret = returning(g, "id, price, weight, doc");
    format!(
        "INSERT INTO item (id, price, weight, doc, at, local) \
         VALUES ({id}, {price}, {weight}, {doc}, {at}, {local}){conflict}{ret}"
    )
}

fn where_item(g: &mut Gen) -> String {
    match g.below(9) {
        0 | 1 => format!("id = {}", uuid(g)),
        2 => format!("price > {}", g.pick(&["0", "10", "1.005", "'7.5'"])),
        3 => format!("weight <= {}", g.pick(&["1.5", "0", "1e3", "2"])),
        4 => format!(
            "doc @> {}",
            g.pick(&[r#"'{"a": 1}'"#, r#"'[1]'"#, r#"'{"c": [2.5]}'"#])
        ),
        5 => format!("doc ? '{}'", g.pick(&KEYS)),
        6 => format!("at > {}", g.pick(&TIMES[1..])),
        7 => format!("id IN ({}, {})", uuid(g), uuid(g)),
        _ => format!("doc = {}", g.pick(&DOCS[1..8])),
    }
}

fn update_item(g: &mut Gen) -> String {
    let w = where_item(g);
    let ret = returning(g, "id, price, weight, at");
    let set = match g.below(8) {
        0 => format!("price = price * {}", g.pick(&["1.1", "2", "0.333", "-1"])),
        1 => format!("price = price / {}", g.pick(&["3", "0", "7.5", "0.01"])),
        2 => format!(
            "weight = weight + {}",
            g.pick(&["0.005", "1", "-1.5", "1.500"])
        ),
        3 => format!("doc = {}", g.pick(&DOCS)),
        4 => format!("at = at + interval '{}'", g.pick(&INTERVALS)),
        5 => format!("at = at - interval '{}'", g.pick(&INTERVALS)),
        6 => format!("local = local + interval '{}'", g.pick(&INTERVALS)),
        _ => format!("price = {}", g.pick(&PRICES)),
    };
    format!("UPDATE item SET {set} WHERE {w}{ret}")
}

fn select_item(g: &mut Gen) -> String {
    let cols = "id, price, weight, doc, at, local";
    match g.below(16) {
        0 => format!("SELECT {cols} FROM item ORDER BY id"),
        1 => format!("SELECT {cols} FROM item WHERE {}", where_item(g)),
        2 => format!(
            "SELECT id, price / {d}, price * weight, price - weight, price % {d} FROM item \
             ORDER BY id",
            d = g.pick(&["3", "7", "0.3", "weight"])
        ),
        3 => "SELECT sum(price), avg(price), min(price), max(weight), sum(weight), avg(weight), \
              count(weight) FROM item"
            .into(),
        4 => "SELECT avg(qty), sum(qty), avg(score) FROM child JOIN parent ON parent.id = child.parent_id"
            .into(),
        5 => "SELECT id FROM item ORDER BY price DESC, weight NULLS FIRST, id".into(),
        6 => format!(
            "SELECT id, doc -> '{k}', doc ->> '{k}', doc -> {i}, doc ->> {i}, doc #> '{{c,{i}}}', \
             doc #>> '{{a}}' FROM item ORDER BY id",
            k = g.pick(&KEYS),
            i = g.range(-2, 2)
        ),
        7 => format!(
            "SELECT id, at + interval '{a}', at - interval '{b}', local + interval '{a}' FROM item \
             ORDER BY id",
            a = g.pick(&INTERVALS),
            b = g.pick(&INTERVALS)
        ),
        8 => format!(
            "SELECT id, at - {t}::timestamptz, local - '2024-01-01 00:00'::timestamp FROM item \
             ORDER BY id",
            t = g.pick(&TIMES[1..6])
        ),
        9 => "SELECT price::text, price::float8, price::bigint, weight::numeric(6, 1), id::text, \
              doc::text, at::text, at::timestamp, local::timestamptz FROM item ORDER BY id"
            .into(),
        10 => "SELECT round(price, 1), round(weight), abs(weight), round(weight, 2), \
               greatest(price, weight), least(price, 3) FROM item ORDER BY id"
            .into(),
        11 => "SELECT id, doc FROM item ORDER BY doc, id".into(),
        12 => "SELECT id, at FROM item ORDER BY at DESC NULLS LAST, id".into(),
        13 => format!(
            "SELECT CAST({} AS numeric(5, 2)), count(*) FROM item",
            g.pick(&["price", "weight", "'123.456'", "'1234.5'", "1e-3", "-999.995"])
        ),
        14 => format!(
            "SELECT id FROM item WHERE local < {} ORDER BY id",
            g.pick(&LOCAL_TIMES[1..])
        ),
        _ => format!(
            "SELECT count(*) FROM item WHERE {}",
            where_item(g)
        ),
    }
}

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
    match g.below(130) {
        0..=17 => insert_parent(g),
        18..=29 => insert_child(g),
        30..=47 => update(g),
        48..=55 => delete(g),
        56..=79 => select(g),
        80..=84 => mistake(g),
        85..=99 => control(g),
        100..=107 => insert_item(g),
        108..=113 => update_item(g),
        114..=115 => format!("DELETE FROM item WHERE {}", where_item(g)),
        _ => select_item(g),
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
        tables: vec!["parent".into(), "child".into(), "item".into()],
    }
}
