//! SQL text end to end: services speak PostgreSQL with `$n` parameters through a client
//! shaped like tokio-postgres, and the model answers as PostgreSQL 15 would.

use std::cell::RefCell;
use std::rc::Rc;

use sim_models::sql::{self, IsolationLevel, Pool, PoolConfig, SqlError, SqlServer};
use sim_runtime::time::{sleep, Duration};
use sim_runtime::{spawn, Sim};

const SCHEMA: [&str; 4] = [
    "CREATE TABLE slots (
        doctor text NOT NULL,
        slot integer NOT NULL,
        free boolean NOT NULL DEFAULT true,
        PRIMARY KEY (doctor, slot)
    )",
    "CREATE TABLE appointments (
        id bigserial PRIMARY KEY,
        doctor text NOT NULL,
        slot integer NOT NULL,
        patient text NOT NULL,
        booked_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (doctor, slot)
    )",
    "CREATE TABLE products (id text PRIMARY KEY, stock bigint NOT NULL CHECK (stock >= 0))",
    "CREATE TABLE jobs (id bigint PRIMARY KEY, state text NOT NULL, worker text)",
];

/// A database with the schema above, created through SQL text as a migration would.
async fn database() -> (SqlServer, Pool) {
    let db = sql::start("postgres", sql::Config::default());
    db.ready().await;
    let pool = Pool::new(db.addr(), PoolConfig::default());
    let mut c = pool.acquire().await.expect("connect");
    for ddl in SCHEMA {
        c.execute(ddl, &[]).await.expect(ddl);
    }
    for slot in 0..4_i64 {
        c.execute(
            "INSERT INTO slots (doctor, slot) VALUES ($1, $2)",
            &[&"house", &slot],
        )
        .await
        .expect("seed slot");
    }
    c.execute("INSERT INTO products (id, stock) VALUES ('tee', 3)", &[])
        .await
        .expect("seed product");
    drop(c);
    (db, pool)
}

#[sim_runtime::test(seeds = 8)]
async fn a_unique_constraint_lets_exactly_one_patient_book_a_slot() {
    let (_db, pool) = database().await;
    let outcomes = Rc::new(RefCell::new(Vec::new()));
    let mut patients = Vec::new();
    for patient in ["ada", "bob", "cy"] {
        let (pool, outcomes) = (pool.clone(), outcomes.clone());
        patients.push(spawn(async move {
            let mut c = pool.acquire().await.expect("connect");
            let booked = c
                .query_one(
                    "INSERT INTO appointments (doctor, slot, patient) VALUES ($1, $2, $3) \
                     RETURNING id, booked_at",
                    &[&"house", &2_i64, &patient],
                )
                .await;
            let outcome = booked.map_err(|e| e.sqlstate());
            outcomes.borrow_mut().push(outcome);
        }));
    }
    for p in patients {
        p.await.unwrap();
    }
    let outcomes = outcomes.take();
    let won: Vec<_> = outcomes.iter().filter(|o| o.is_ok()).collect();
    assert_eq!(won.len(), 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .filter(|o| o.is_err())
            .all(|o| *o == Err(Some("23505"))),
        "{outcomes:?}"
    );
    let row = won[0].as_ref().unwrap();
    assert_eq!(
        row.get::<_, i64>("id").unwrap(),
        row.get::<_, i64>(0).unwrap()
    );
    let mut c = pool.acquire().await.unwrap();
    let n = c
        .query_one(
            "SELECT count(*) FROM appointments WHERE doctor = $1 AND slot = $2",
            &[&"house", &2_i64],
        )
        .await
        .unwrap();
    assert_eq!(n.get::<_, i64>("count").unwrap(), 1);
}

#[sim_runtime::test(seeds = 8)]
async fn a_guarded_decrement_never_oversells() {
    let (_db, pool) = database().await;
    let sold = Rc::new(RefCell::new(0));
    let mut buyers = Vec::new();
    for _ in 0..10 {
        let (pool, sold) = (pool.clone(), sold.clone());
        buyers.push(spawn(async move {
            let mut c = pool.acquire().await.expect("connect");
            let left = c
                .query_opt(
                    "UPDATE products SET stock = stock - 1 WHERE id = $1 AND stock > 0 \
                     RETURNING stock",
                    &[&"tee"],
                )
                .await
                .expect("update");
            if left.is_some() {
                *sold.borrow_mut() += 1;
            }
        }));
    }
    for b in buyers {
        b.await.unwrap();
    }
    assert_eq!(*sold.borrow(), 3);
    let mut c = pool.acquire().await.unwrap();
    let stock: i64 = c
        .query_one("SELECT stock FROM products WHERE id = 'tee'", &[])
        .await
        .unwrap()
        .get("stock")
        .unwrap();
    assert_eq!(stock, 0);
    // The CHECK holds the line even for an unguarded decrement.
    let e = c
        .execute(
            "UPDATE products SET stock = stock - 1 WHERE id = 'tee'",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(e.sqlstate(), Some("23514"), "{e}");
}

#[sim_runtime::test(seeds = 4)]
async fn transactions_commit_roll_back_and_return_to_savepoints() {
    let (_db, pool) = database().await;
    let mut c = pool.acquire().await.unwrap();
    let free = "SELECT slot FROM slots WHERE doctor = $1 AND free ORDER BY slot";
    {
        let mut tx = c
            .build_transaction()
            .isolation_level(IsolationLevel::Serializable)
            .start()
            .await
            .unwrap();
        tx.execute("UPDATE slots SET free = false WHERE slot = $1", &[&0_i64])
            .await
            .unwrap();
        tx.rollback().await.unwrap();
    }
    let rows = c.query(free, &[&"house"]).await.unwrap();
    assert_eq!(rows.len(), 4, "rolled back");
    {
        let mut tx = c.transaction().await.unwrap();
        tx.execute("UPDATE slots SET free = false WHERE slot = 0", &[])
            .await
            .unwrap();
        tx.execute("SAVEPOINT more", &[]).await.unwrap();
        tx.execute("UPDATE slots SET free = false WHERE slot = 1", &[])
            .await
            .unwrap();
        let e = tx
            .execute("UPDATE products SET stock = -1", &[])
            .await
            .unwrap_err();
        assert_eq!(e.sqlstate(), Some("23514"));
        tx.execute("ROLLBACK TO SAVEPOINT more", &[]).await.unwrap();
        tx.commit().await.unwrap();
    }
    let slots: Vec<i64> = c
        .query(free, &[&"house"])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0).unwrap())
        .collect();
    assert_eq!(
        slots,
        [1, 2, 3],
        "slot 0 committed, slot 1 rolled back to the savepoint"
    );
}

#[sim_runtime::test(seeds = 8)]
async fn workers_claim_different_jobs_with_skip_locked() {
    let (_db, pool) = database().await;
    let mut c = pool.acquire().await.unwrap();
    let insert = c
        .prepare("INSERT INTO jobs (id, state) VALUES ($1, 'ready')")
        .await
        .unwrap();
    for id in 1..=4_i64 {
        c.execute(&insert, &[&id]).await.unwrap();
    }
    drop(c);
    let claimed = Rc::new(RefCell::new(Vec::new()));
    let mut workers = Vec::new();
    for worker in ["w1", "w2", "w3"] {
        let (pool, claimed) = (pool.clone(), claimed.clone());
        workers.push(spawn(async move {
            let mut c = pool.acquire().await.unwrap();
            let mut tx = c.transaction().await.unwrap();
            let job = tx
                .query_opt(
                    "SELECT id FROM jobs WHERE state = 'ready' ORDER BY id LIMIT 1 \
                     FOR UPDATE SKIP LOCKED",
                    &[],
                )
                .await
                .unwrap();
            let Some(job) = job else { return };
            let id: i64 = job.get("id").unwrap();
            // Hold the lock a while, as a worker does while it works.
            sleep(Duration::from_millis(5)).await;
            tx.execute(
                "UPDATE jobs SET state = 'done', worker = $2 WHERE id = $1",
                &[&id, &worker],
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
            claimed.borrow_mut().push(id);
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let mut claimed = claimed.borrow().clone();
    claimed.sort_unstable();
    assert_eq!(claimed, [1, 2, 3], "each worker its own job, lowest first");
}

#[sim_runtime::test(seeds = 2)]
async fn aggregates_joins_and_row_access() {
    let (_db, pool) = database().await;
    let mut c = pool.acquire().await.unwrap();
    for (slot, patient) in [(0_i64, "ada"), (1, "bob"), (3, "ada")] {
        c.execute(
            "INSERT INTO appointments (doctor, slot, patient) VALUES ('house', $1, $2)",
            &[&slot, &patient],
        )
        .await
        .unwrap();
    }
    let per_patient: Vec<(String, i64, i64)> = c
        .query(
            "SELECT patient, count(*) AS visits, max(slot) AS last FROM appointments \
             GROUP BY patient ORDER BY visits DESC, patient",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0).unwrap(), r.get(1).unwrap(), r.get("last").unwrap()))
        .collect();
    assert_eq!(
        per_patient,
        [("ada".to_string(), 2, 3), ("bob".to_string(), 1, 1)]
    );
    let joined: Vec<(i64, bool)> = c
        .query(
            "SELECT s.slot, s.free FROM slots s JOIN appointments a \
             ON a.doctor = s.doctor AND a.slot = s.slot WHERE a.patient = $1 ORDER BY s.slot",
            &[&"ada"],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("slot").unwrap(), r.get("free").unwrap()))
        .collect();
    assert_eq!(joined, [(0, true), (3, true)]);
    let none = c
        .query_opt("SELECT * FROM appointments WHERE patient = 'zed'", &[])
        .await
        .unwrap();
    assert!(none.is_none());
    let e = c
        .query_one("SELECT * FROM appointments WHERE patient = 'ada'", &[])
        .await
        .unwrap_err();
    assert!(matches!(e, SqlError::RowCount { got: 2, .. }), "{e}");
    let e = c.query("SELECT * FROM nowhere", &[]).await.unwrap_err();
    assert_eq!(e.sqlstate(), Some("42P01"));
    let e = c.query("SELECT nope FROM slots", &[]).await.unwrap_err();
    assert_eq!(e.sqlstate(), Some("42703"));
    let e = c
        .query("SELECT * FROM slots WHERE slot = $1", &[])
        .await
        .unwrap_err();
    assert_eq!(e.sqlstate(), Some("08P01"));
}

#[test]
fn the_same_seed_gives_the_same_trace_through_sql_text() {
    let run = || {
        Sim::new(0x5eed)
            .run(|| async {
                let (_db, pool) = database().await;
                let mut c = pool.acquire().await.unwrap();
                c.execute(
                    "UPDATE products SET stock = stock - 1 WHERE id = $1",
                    &[&"tee"],
                )
                .await
                .unwrap();
            })
            .report
    };
    let (a, b) = (run(), run());
    assert!(a.is_pass(), "{a}");
    assert_eq!(a.fingerprint, b.fingerprint);
}

#[sim_runtime::test(seeds = 2)]
async fn a_plain_begin_takes_the_sessions_default_isolation() {
    let (_db, pool) = database().await;
    let mut reader = pool.acquire().await.unwrap();
    let mut writer = pool.acquire().await.unwrap();
    reader
        .execute("SET default_transaction_isolation = 'repeatable read'", &[])
        .await
        .unwrap();
    let stock = "SELECT stock FROM products WHERE id = 'tee'";
    let mut tx = reader.transaction().await.unwrap();
    let before: i64 = tx.query_one(stock, &[]).await.unwrap().get(0).unwrap();
    writer
        .execute(
            "UPDATE products SET stock = stock - 1 WHERE id = 'tee'",
            &[],
        )
        .await
        .unwrap();
    let again: i64 = tx.query_one(stock, &[]).await.unwrap().get(0).unwrap();
    assert_eq!(
        again, before,
        "one snapshot for the whole transaction: REPEATABLE READ"
    );
    tx.commit().await.unwrap();
    let after: i64 = reader.query_one(stock, &[]).await.unwrap().get(0).unwrap();
    assert_eq!(after, before - 1);
}

mod never_a_panic {
    //! Whatever text a service sends, the model answers with a result or an SQLSTATE:
    //! random token soups of SQL words, names, values and parameters are planned and, when
    //! they plan, run against a database with the schema above.

    use proptest::prelude::*;
    use sim_models::sql::text::prepare;
    use sim_models::sql::{Engine, Submit};

    const TOKENS: &[&str] = &[
        "SELECT",
        "INSERT",
        "INTO",
        "VALUES",
        "UPDATE",
        "SET",
        "DELETE",
        "FROM",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "IN",
        "IS",
        "NULL",
        "LIKE",
        "ORDER",
        "BY",
        "GROUP",
        "HAVING",
        "LIMIT",
        "OFFSET",
        "FOR",
        "SHARE",
        "SKIP",
        "LOCKED",
        "NOWAIT",
        "JOIN",
        "LEFT",
        "ON",
        "RETURNING",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT",
        "TO",
        "RELEASE",
        "CONFLICT",
        "DO",
        "NOTHING",
        "DEFAULT",
        "count",
        "sum",
        "min",
        "max",
        "avg",
        "coalesce",
        "lower",
        "now()",
        "(",
        ")",
        ",",
        "*",
        "=",
        "<",
        ">",
        "<=",
        "<>",
        "+",
        "-",
        "/",
        "%",
        "||",
        "::",
        "text",
        "bigint",
        "boolean",
        ";",
        "products",
        "slots",
        "appointments",
        "jobs",
        "id",
        "stock",
        "doctor",
        "slot",
        "free",
        "patient",
        "state",
        "s",
        "a",
        "s.slot",
        "a.slot",
        "EXCLUDED.stock",
        "$1",
        "$2",
        "0",
        "1",
        "-1",
        "9223372036854775807",
        "1.5",
        "0.1",
        "'tee'",
        "'house'",
        "'%e'",
        "true",
        "false",
    ];

    fn soup() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(TOKENS), 1..24).prop_map(|t| t.join(" "))
    }

    /// An expression over the schema's columns, well formed but of any type.
    fn expr() -> impl Strategy<Value = String> {
        let leaf = prop::sample::select(
            &[
                "id",
                "stock",
                "doctor",
                "slot",
                "free",
                "patient",
                "state",
                "s.slot",
                "a.slot",
                "$1",
                "$2",
                "0",
                "1",
                "-1",
                "9223372036854775807",
                "1.5",
                "'tee'",
                "'%e'",
                "NULL",
                "true",
                "now()",
            ][..],
        )
        .prop_map(String::from);
        leaf.prop_recursive(3, 12, 3, |inner| {
            let op = prop::sample::select(
                &[
                    "=", "<", ">=", "<>", "+", "-", "*", "/", "%", "||", "AND", "OR", "LIKE",
                ][..],
            );
            prop_oneof![
                (inner.clone(), op, inner.clone()).prop_map(|(a, o, b)| format!("({a} {o} {b})")),
                inner.clone().prop_map(|a| format!("NOT ({a})")),
                inner.clone().prop_map(|a| format!("({a}) IS NULL")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) IN ({b}, 1)")),
                (
                    prop::sample::select(&["coalesce", "lower", "abs", "greatest", "length"][..]),
                    inner.clone()
                )
                    .prop_map(|(f, a)| format!("{f}({a})")),
                inner.prop_map(|a| format!("({a})::bigint")),
            ]
        })
    }

    /// Statements of every kind over the schema, with random expressions in them.
    fn statement() -> impl Strategy<Value = String> {
        let table = prop::sample::select(&["products", "slots", "appointments", "jobs"][..]);
        let agg = prop::sample::select(
            &[
                "count(*)",
                "sum(slot)",
                "min(doctor)",
                "max(stock)",
                "avg(id)",
            ][..],
        );
        prop_oneof![
            (table.clone(), expr(), expr(), 0..3_u8).prop_map(|(t, a, b, l)| format!(
                "SELECT {a} AS x FROM {t} WHERE {b} ORDER BY 1 LIMIT {l}"
            )),
            (agg, expr()).prop_map(|(g, h)| format!(
                "SELECT doctor, {g} FROM slots GROUP BY doctor HAVING {h}"
            )),
            expr().prop_map(|e| format!(
                "SELECT s.slot, a.patient FROM slots s LEFT JOIN appointments a ON {e}"
            )),
            (expr(), expr()).prop_map(|(a, b)| format!(
                "UPDATE products SET stock = {a} WHERE {b} RETURNING stock, {a}"
            )),
            (expr(), expr()).prop_map(|(a, b)| format!(
                "INSERT INTO jobs (id, state) VALUES ($1, $2), (2, 'x') ON CONFLICT (id) \
                 DO UPDATE SET state = {a} WHERE {b} RETURNING *"
            )),
            expr().prop_map(|e| format!("DELETE FROM slots WHERE {e} RETURNING slot")),
            expr().prop_map(|e| format!("SELECT id FROM jobs WHERE {e} FOR UPDATE SKIP LOCKED")),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
        #[test]
        fn planning_and_running_any_text_gives_a_result_or_an_sqlstate(
            sql in prop_oneof![soup(), statement()],
        ) {
            let Ok(prepared) = prepare(&sql) else { return Ok(()) };
            let two: [&dyn sim_models::sql::ToSql; 2] = [&1_i64, &"tee"];
            let params = &two[..prepared.param_count().min(2)];
            let Ok(stmt) = prepared.bind(params) else { return Ok(()) };
            let mut engine = Engine::new(&sim_models::sql::Config::default());
            let s = engine.open_session().unwrap();
            let rows = [
                "INSERT INTO products (id, stock) VALUES ('tee', 3), ('cap', 0)",
                "INSERT INTO slots (doctor, slot, free) VALUES ('house', 0, true), ('house', 1, false), ('grey', 0, true)",
                "INSERT INTO appointments (doctor, slot, patient) VALUES ('house', 1, 'ada')",
                "INSERT INTO jobs (id, state) VALUES (1, 'ready'), (2, 'done')",
            ];
            for setup in super::SCHEMA.iter().chain(&rows) {
                let setup = prepare(setup).unwrap().bind(&[]).unwrap();
                prop_assert!(matches!(engine.submit(s, &setup), Submit::Done(Ok(_))));
                prop_assert!(engine.finish(s).is_ok());
            }
            match engine.submit(s, &stmt) {
                Submit::Done(Err(e)) => prop_assert!(e.sqlstate().is_some(), "{sql}: {e:?}"),
                Submit::Done(Ok(_)) | Submit::Blocked { .. } => {}
            }
        }
    }
}
