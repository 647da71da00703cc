//! Isolation anomalies, each a concurrent scenario of tasks racing through a pool to a
//! database node: the anomaly PostgreSQL allows at a level shows up there, and the error
//! it raises at the level that prevents it shows up instead.

mod sql_support;

use sim_models::sql::{text, CommandTag, IsolationLevel, Pool, SqlError, Statement, StmtEvent};
use sim_runtime::time::{sleep, Duration};
use sim_runtime::{spawn, trace};
use sql_support::{db, Barrier};

/// A deposit written as read-modify-write: read the balance, add in the application,
/// write it back.
async fn deposit(
    pool: Pool,
    iso: IsolationLevel,
    amount: i64,
    barrier: Barrier,
) -> Result<(), SqlError> {
    let mut c = pool.acquire().await?;
    let mut tx = c.build_transaction().isolation_level(iso).start().await?;
    let row = tx
        .query_one("SELECT balance FROM accounts WHERE id = $1", &[&1_i64])
        .await?;
    let balance: i64 = row.get("balance")?;
    // Both have read before either writes.
    barrier.wait().await;
    tx.execute(
        "UPDATE accounts SET balance = $1 WHERE id = $2",
        &[&(balance + amount), &1_i64],
    )
    .await?;
    tx.commit().await
}

async fn balance(pool: &Pool, id: i64) -> i64 {
    let mut c = pool.acquire().await.unwrap();
    c.query_one("SELECT balance FROM accounts WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get("balance")
        .unwrap()
}

/// Two deposits of 10 to account 1 racing at `iso`; their results and the final balance.
async fn race_deposits(iso: IsolationLevel) -> (Vec<Result<(), SqlError>>, i64) {
    let (_server, pool) = db().await;
    let b = Barrier::new(2);
    let t1 = spawn(deposit(pool.clone(), iso, 10, b.clone()));
    let t2 = spawn(deposit(pool.clone(), iso, 10, b));
    let results = vec![t1.await.unwrap(), t2.await.unwrap()];
    (results, balance(&pool, 1).await)
}

#[sim_runtime::test(seeds = 12)]
async fn read_committed_loses_an_update() {
    let (results, final_balance) = race_deposits(IsolationLevel::ReadCommitted).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(final_balance, 110, "one of two deposits is lost");
}

/// The loser of the race gets 40001 and only the winner's deposit counts.
async fn lost_update_raises_40001(iso: IsolationLevel) {
    let (results, final_balance) = race_deposits(iso).await;
    let failures: Vec<&SqlError> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(failures.len(), 1, "{iso}: {results:?}");
    assert_eq!(failures[0].sqlstate(), Some("40001"), "{iso}");
    assert_eq!(final_balance, 110, "{iso}: only the winner's deposit");
}

#[sim_runtime::test(seeds = 12)]
async fn repeatable_read_raises_40001_instead_of_losing_an_update() {
    lost_update_raises_40001(IsolationLevel::RepeatableRead).await;
}

#[sim_runtime::test(seeds = 12)]
async fn serializable_raises_40001_instead_of_losing_an_update() {
    lost_update_raises_40001(IsolationLevel::Serializable).await;
}

#[sim_runtime::test(seeds = 12)]
async fn retrying_serialization_failures_keeps_every_deposit() {
    let (_server, pool) = db().await;
    let b = Barrier::new(2);
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (pool, b) = (pool.clone(), b.clone());
        tasks.push(spawn(async move {
            let mut first = true;
            loop {
                // Only the first attempt waits at the barrier (the other may be done).
                let barrier = if first { b.clone() } else { Barrier::new(1) };
                first = false;
                match deposit(pool.clone(), IsolationLevel::RepeatableRead, 10, barrier).await {
                    Err(e) if e.is_retryable() => continue,
                    r => return r,
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(balance(&pool, 1).await, 120);
}

/// A doctor goes off call if another doctor is still on call.
async fn go_off_call(
    pool: Pool,
    iso: IsolationLevel,
    me: &'static str,
    barrier: Barrier,
) -> Result<(), SqlError> {
    let mut c = pool.acquire().await?;
    let mut tx = c.build_transaction().isolation_level(iso).start().await?;
    let on_call: i64 = tx
        .query_one("SELECT count(*) FROM doctors WHERE on_call = $1", &[&true])
        .await?
        .get("count")?;
    barrier.wait().await;
    if on_call >= 2 {
        tx.execute(
            "UPDATE doctors SET on_call = $1 WHERE name = $2",
            &[&false, &me],
        )
        .await?;
    }
    tx.commit().await
}

/// Alice and Bob each go off call at `iso`; their results and who is left on call.
async fn race_doctors(iso: IsolationLevel) -> (Vec<Result<(), SqlError>>, usize) {
    let (server, pool) = db().await;
    let b = Barrier::new(2);
    let t1 = spawn(go_off_call(pool.clone(), iso, "alice", b.clone()));
    let t2 = spawn(go_off_call(pool.clone(), iso, "bob", b));
    let results = vec![t1.await.unwrap(), t2.await.unwrap()];
    let on_call = server
        .committed_rows("doctors")
        .unwrap()
        .iter()
        .filter(|r| r.get::<_, bool>("on_call").unwrap())
        .count();
    (results, on_call)
}

#[sim_runtime::test(seeds = 12)]
async fn write_skew_of_two_doctors_happens_under_repeatable_read() {
    let (results, on_call) = race_doctors(IsolationLevel::RepeatableRead).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(on_call, 0, "write skew leaves nobody on call");
}

#[sim_runtime::test(seeds = 12)]
async fn write_skew_of_two_doctors_is_a_40001_under_serializable() {
    let (results, on_call) = race_doctors(IsolationLevel::Serializable).await;
    let failures: Vec<&SqlError> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(failures.len(), 1, "{results:?}");
    assert_eq!(failures[0].sqlstate(), Some("40001"));
    assert_eq!(on_call, 1);
}

/// Books `slot` for `patient` if no booking of it is visible, in the table without a
/// unique constraint.
async fn book_checked(
    pool: Pool,
    iso: IsolationLevel,
    id: i64,
    patient: &'static str,
    barrier: Barrier,
) -> Result<bool, SqlError> {
    let mut c = pool.acquire().await?;
    let mut tx = c.build_transaction().isolation_level(iso).start().await?;
    let taken: i64 = tx
        .query_one(
            "SELECT count(*) FROM bookings WHERE doctor = $1 AND slot = $2",
            &[&"house", &9_i64],
        )
        .await?
        .get("count")?;
    barrier.wait().await;
    if taken > 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.execute(
        "INSERT INTO bookings (id, doctor, slot, patient) VALUES ($1, $2, $3, $4)",
        &[&id, &"house", &9_i64, &patient],
    )
    .await?;
    tx.commit().await.map(|()| true)
}

/// Ann and Ben each book slot 9 at `iso` after checking it is free; their results and
/// how many bookings were made.
async fn race_bookings(iso: IsolationLevel) -> (Vec<Result<bool, SqlError>>, usize) {
    let (server, pool) = db().await;
    let b = Barrier::new(2);
    let t1 = spawn(book_checked(pool.clone(), iso, 1, "ann", b.clone()));
    let t2 = spawn(book_checked(pool.clone(), iso, 2, "ben", b));
    let results = vec![t1.await.unwrap(), t2.await.unwrap()];
    (results, server.committed_rows("bookings").unwrap().len())
}

#[sim_runtime::test(seeds = 12)]
async fn select_then_insert_double_books_under_repeatable_read() {
    let (results, booked) = race_bookings(IsolationLevel::RepeatableRead).await;
    assert_eq!(booked, 2, "double booking under RR: {results:?}");
}

#[sim_runtime::test(seeds = 12)]
async fn select_then_insert_books_once_under_serializable() {
    let (results, booked) = race_bookings(IsolationLevel::Serializable).await;
    assert_eq!(booked, 1, "{results:?}");
    let e = results
        .iter()
        .find_map(|r| r.as_ref().err())
        .expect("a loser");
    assert_eq!(e.sqlstate(), Some("40001"));
}

#[sim_runtime::test(seeds = 12)]
async fn no_dirty_read_at_any_level() {
    let (_server, pool) = db().await;
    // A writer that changes both accounts and rolls back after a while.
    let writer = {
        let pool = pool.clone();
        spawn(async move {
            let mut c = pool.acquire().await.unwrap();
            let mut tx = c
                .build_transaction()
                .isolation_level(IsolationLevel::ReadCommitted)
                .start()
                .await
                .unwrap();
            tx.execute("UPDATE accounts SET balance = $1", &[&999_i64])
                .await
                .unwrap();
            sleep(Duration::from_millis(200)).await;
            tx.rollback().await.unwrap();
        })
    };
    let mut readers = Vec::new();
    for iso in [
        IsolationLevel::ReadCommitted,
        IsolationLevel::RepeatableRead,
        IsolationLevel::Serializable,
    ] {
        let pool = pool.clone();
        readers.push(spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..20 {
                let mut c = pool.acquire().await.unwrap();
                let mut tx = c
                    .build_transaction()
                    .isolation_level(iso)
                    .start()
                    .await
                    .unwrap();
                for r in tx.query("SELECT * FROM accounts", &[]).await.unwrap() {
                    seen.push(r.get::<_, i64>("balance").unwrap());
                }
                let dirty: i64 = tx
                    .query_one(
                        "SELECT count(*) FROM accounts WHERE balance = $1",
                        &[&999_i64],
                    )
                    .await
                    .unwrap()
                    .get("count")
                    .unwrap();
                assert_eq!(dirty, 0, "{iso}");
                tx.commit().await.unwrap();
                drop(c);
                sleep(Duration::from_millis(15)).await;
            }
            seen
        }));
    }
    writer.await.unwrap();
    for r in readers {
        let seen = r.await.unwrap();
        assert_eq!(seen.len(), 40);
        assert!(seen.iter().all(|b| *b == 100), "dirty read: {seen:?}");
    }
}

/// Books slot 9 of dr. house for `patient` by checking first, in read committed.
async fn book_appointment(
    pool: Pool,
    table: &'static str,
    id: i64,
    barrier: Barrier,
) -> Result<(), SqlError> {
    let mut c = pool.acquire().await?;
    let mut tx = c
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()
        .await?;
    // A table name is no parameter: it is part of the text.
    let taken: i64 = tx
        .query_one(
            &format!("SELECT count(*) FROM {table} WHERE doctor = $1 AND slot = $2"),
            &[&"house", &9_i64],
        )
        .await?
        .get("count")?;
    barrier.wait().await;
    if taken > 0 {
        tx.rollback().await?;
        return Ok(());
    }
    tx.execute(
        &format!("INSERT INTO {table} (id, doctor, slot, patient) VALUES ($1, $2, $3, $4)"),
        &[&id, &"house", &9_i64, &format!("p{id}")],
    )
    .await?;
    tx.commit().await
}

#[sim_runtime::test(seeds = 12)]
async fn unique_constraint_turns_double_booking_into_23505() {
    let (server, pool) = db().await;
    let mut results = Vec::new();
    for table in ["bookings", "appointments"] {
        let b = Barrier::new(4);
        let tasks: Vec<_> = (1..=4)
            .map(|id| spawn(book_appointment(pool.clone(), table, id, b.clone())))
            .collect();
        let mut rs = Vec::new();
        for t in tasks {
            rs.push(t.await.unwrap());
        }
        results.push(rs);
    }
    let unguarded = server.committed_rows("bookings").unwrap().len();
    let guarded = server.committed_rows("appointments").unwrap().len();
    assert_eq!(unguarded, 4, "read committed double books");
    assert_eq!(guarded, 1, "the constraint keeps one booking");
    let errors = results.pop().unwrap();
    let codes: Vec<_> = errors
        .iter()
        .filter_map(|r| r.as_ref().err().and_then(SqlError::sqlstate))
        .collect();
    assert_eq!(codes, ["23505"; 3], "{errors:?}");
}

#[sim_runtime::test(seeds = 4)]
async fn statements_are_traced_with_their_results() {
    let stmts = trace::capture::<StmtEvent>();
    let log = trace::capture_prefix("sql.stmt");
    let (_server, pool) = db().await;
    let mut c = pool.acquire().await.unwrap();
    let texts: [(&str, &[&dyn sim_models::sql::ToSql]); 4] = [
        ("BEGIN ISOLATION LEVEL SERIALIZABLE", &[]),
        ("SELECT * FROM accounts WHERE id = $1", &[&1_i64]),
        ("SELECT * FROM nope", &[]),
        ("ROLLBACK", &[]),
    ];
    for (sql, params) in texts {
        let _ = c.execute(sql, params).await;
    }
    // The server traces the statement each text planned to, with its parameters bound.
    let planned: Vec<Statement> = texts
        .iter()
        .map(|(sql, params)| text::prepare(sql).unwrap().bind(params).unwrap())
        .collect();
    assert_eq!(
        planned[0],
        Statement::Begin(Some(IsolationLevel::Serializable))
    );
    assert_eq!(planned[3], Statement::Rollback);
    let events = stmts.values();
    let last = &events[events.len() - 4..];
    let traced: Vec<&Statement> = last.iter().map(|e| &e.stmt).collect();
    assert_eq!(traced, planned.iter().collect::<Vec<_>>());
    assert!(last
        .iter()
        .all(|e| e.server == "db" && e.session == c.session()));
    assert!(last[1].is_ok() && last[1].affected == 1);
    assert_eq!(last[1].tag, Some(CommandTag::Select));
    assert_eq!(last[2].sqlstate(), Some("42P01"));
    assert_eq!(last[2].error, Some(SqlError::UndefinedTable("nope".into())));
    assert_eq!(last[2].tag, None);
    // People read statements as SQL: the parameter is in place.
    assert_eq!(
        last[1].stmt.to_string(),
        "SELECT * FROM accounts WHERE (id = 1)"
    );
    // What the server emitted (borrowing) and what the capture kept have one shape: the
    // trace's JSON of each event is the capture's.
    let whole = log.snapshot();
    assert_eq!(whole.len(), events.len());
    for (e, typed) in whole.iter().zip(&events) {
        assert_eq!(e.fields_value(), serde_json::to_value(typed).unwrap());
    }
}
