//! Isolation anomalies, each a concurrent scenario of tasks racing through a pool to a
//! database node: the anomaly PostgreSQL allows at a level shows up there, and the error
//! it raises at the level that prevents it shows up instead.

mod sql_support;

use sim_models::sql::{
    col, Count, Insert, IsolationLevel, Pool, Select, SqlError, Statement, Update,
};
use sim_models::sql_row;
use sim_runtime::spawn;
use sim_runtime::time::{sleep, Duration};
use sql_support::{config, pool, run, start, Barrier, SEEDS};

/// A deposit written as read-modify-write: read the balance, add in the application,
/// write it back.
async fn deposit(
    pool: Pool,
    iso: IsolationLevel,
    amount: i64,
    barrier: Barrier,
) -> Result<(), SqlError> {
    let mut c = pool.acquire().await?;
    let mut tx = c.begin(iso).await?;
    let row = tx.get("accounts", 1).await?.expect("account 1");
    let balance: i64 = row.get("balance")?;
    // Both have read before either writes.
    barrier.wait().await;
    tx.update(
        Update::table("accounts")
            .set("balance", balance + amount)
            .key(1),
    )
    .await?;
    tx.commit().await
}

async fn balance(pool: &Pool, id: i64) -> i64 {
    let mut c = pool.acquire().await.unwrap();
    c.get("accounts", id)
        .await
        .unwrap()
        .unwrap()
        .get("balance")
        .unwrap()
}

fn race_deposits(seed: u64, iso: IsolationLevel) -> (Vec<Result<(), SqlError>>, i64) {
    run(seed, move || async move {
        let server = start(config()).await;
        let pool = pool(&server);
        let b = Barrier::new(2);
        let t1 = spawn(deposit(pool.clone(), iso, 10, b.clone()));
        let t2 = spawn(deposit(pool.clone(), iso, 10, b));
        let results = vec![t1.await.unwrap(), t2.await.unwrap()];
        (results, balance(&pool, 1).await)
    })
}

#[test]
fn read_committed_loses_an_update_repeatable_read_raises_40001() {
    for seed in 0..SEEDS {
        let (results, final_balance) = race_deposits(seed, IsolationLevel::ReadCommitted);
        assert!(
            results.iter().all(Result::is_ok),
            "seed {seed}: {results:?}"
        );
        assert_eq!(
            final_balance, 110,
            "seed {seed}: one of two deposits is lost"
        );

        for iso in [IsolationLevel::RepeatableRead, IsolationLevel::Serializable] {
            let (results, final_balance) = race_deposits(seed, iso);
            let failures: Vec<&SqlError> =
                results.iter().filter_map(|r| r.as_ref().err()).collect();
            assert_eq!(failures.len(), 1, "seed {seed} {iso}: {results:?}");
            assert_eq!(failures[0].sqlstate(), Some("40001"), "seed {seed} {iso}");
            assert_eq!(
                final_balance, 110,
                "seed {seed} {iso}: only the winner's deposit"
            );
        }
    }
}

#[test]
fn retrying_serialization_failures_keeps_every_deposit() {
    for seed in 0..SEEDS {
        let final_balance = run(seed, move || async move {
            let server = start(config()).await;
            let pool = pool(&server);
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
                        match deposit(pool.clone(), IsolationLevel::RepeatableRead, 10, barrier)
                            .await
                        {
                            Err(e) if e.is_retryable() => continue,
                            r => return r,
                        }
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap().unwrap();
            }
            balance(&pool, 1).await
        });
        assert_eq!(final_balance, 120, "seed {seed}");
    }
}

/// A doctor goes off call if another doctor is still on call.
async fn go_off_call(
    pool: Pool,
    iso: IsolationLevel,
    me: &'static str,
    barrier: Barrier,
) -> Result<(), SqlError> {
    let mut c = pool.acquire().await?;
    let mut tx = c.begin(iso).await?;
    let on_call = tx
        .count(Count::from("doctors").filter(col("on_call").eq(true)))
        .await?;
    barrier.wait().await;
    if on_call >= 2 {
        tx.update(Update::table("doctors").set("on_call", false).key(me))
            .await?;
    }
    tx.commit().await
}

fn race_doctors(seed: u64, iso: IsolationLevel) -> (Vec<Result<(), SqlError>>, usize) {
    run(seed, move || async move {
        let server = start(config()).await;
        let pool = pool(&server);
        let b = Barrier::new(2);
        let t1 = spawn(go_off_call(pool.clone(), iso, "alice", b.clone()));
        let t2 = spawn(go_off_call(pool.clone(), iso, "bob", b));
        let results = vec![t1.await.unwrap(), t2.await.unwrap()];
        let on_call = server
            .committed_rows("doctors")
            .unwrap()
            .iter()
            .filter(|r| r.get::<bool>("on_call").unwrap())
            .count();
        (results, on_call)
    })
}

#[test]
fn write_skew_of_two_doctors_happens_under_repeatable_read_not_serializable() {
    for seed in 0..SEEDS {
        let (results, on_call) = race_doctors(seed, IsolationLevel::RepeatableRead);
        assert!(
            results.iter().all(Result::is_ok),
            "seed {seed}: {results:?}"
        );
        assert_eq!(on_call, 0, "seed {seed}: write skew leaves nobody on call");

        let (results, on_call) = race_doctors(seed, IsolationLevel::Serializable);
        let failures: Vec<&SqlError> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(failures.len(), 1, "seed {seed}: {results:?}");
        assert_eq!(failures[0].sqlstate(), Some("40001"));
        assert_eq!(on_call, 1, "seed {seed}");
    }
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
    let mut tx = c.begin(iso).await?;
    let taken = tx
        .count(Count::from("bookings").filter(col("doctor").eq("house").and(col("slot").eq(9))))
        .await?;
    barrier.wait().await;
    if taken > 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.insert(
        "bookings",
        sql_row! {"id" => id, "doctor" => "house", "slot" => 9, "patient" => patient},
    )
    .await?;
    tx.commit().await.map(|()| true)
}

#[test]
fn select_then_insert_double_books_under_repeatable_read_not_serializable() {
    for seed in 0..SEEDS {
        for iso in [IsolationLevel::RepeatableRead, IsolationLevel::Serializable] {
            let (results, booked) = run(seed, move || async move {
                let server = start(config()).await;
                let pool = pool(&server);
                let b = Barrier::new(2);
                let t1 = spawn(book_checked(pool.clone(), iso, 1, "ann", b.clone()));
                let t2 = spawn(book_checked(pool.clone(), iso, 2, "ben", b));
                let results = vec![t1.await.unwrap(), t2.await.unwrap()];
                (results, server.committed_rows("bookings").unwrap().len())
            });
            if iso == IsolationLevel::RepeatableRead {
                assert_eq!(
                    booked, 2,
                    "seed {seed}: double booking under RR: {results:?}"
                );
            } else {
                assert_eq!(booked, 1, "seed {seed}: {results:?}");
                let e = results
                    .iter()
                    .find_map(|r| r.as_ref().err())
                    .expect("a loser");
                assert_eq!(e.sqlstate(), Some("40001"));
            }
        }
    }
}

#[test]
fn no_dirty_read_at_any_level() {
    for seed in 0..SEEDS {
        run(seed, move || async move {
            let server = start(config()).await;
            let pool = pool(&server);
            // A writer that changes both accounts and rolls back after a while.
            let writer = {
                let pool = pool.clone();
                spawn(async move {
                    let mut c = pool.acquire().await.unwrap();
                    let mut tx = c.begin(IsolationLevel::ReadCommitted).await.unwrap();
                    tx.update(Update::table("accounts").set("balance", 999))
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
                        let mut tx = c.begin(iso).await.unwrap();
                        for r in tx.query(Select::from("accounts")).await.unwrap() {
                            seen.push(r.get::<i64>("balance").unwrap());
                        }
                        let dirty = tx
                            .count(Count::from("accounts").filter(col("balance").eq(999)))
                            .await
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
        });
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
    let mut tx = c.begin(IsolationLevel::ReadCommitted).await?;
    let taken = tx
        .count(Count::from(table).filter(col("doctor").eq("house").and(col("slot").eq(9))))
        .await?;
    barrier.wait().await;
    if taken > 0 {
        tx.rollback().await?;
        return Ok(());
    }
    tx.execute(Insert::into(
        table,
        sql_row! {"id" => id, "doctor" => "house", "slot" => 9, "patient" => format!("p{id}")},
    ))
    .await?;
    tx.commit().await
}

#[test]
fn unique_constraint_turns_double_booking_into_23505() {
    for seed in 0..SEEDS {
        let (unguarded, guarded, errors) = run(seed, move || async move {
            let server = start(config()).await;
            let pool = pool(&server);
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
            (unguarded, guarded, results.pop().unwrap())
        });
        assert_eq!(unguarded, 4, "seed {seed}: read committed double books");
        assert_eq!(guarded, 1, "seed {seed}: the constraint keeps one booking");
        let codes: Vec<_> = errors
            .iter()
            .filter_map(|r| r.as_ref().err().and_then(SqlError::sqlstate))
            .collect();
        assert_eq!(codes, ["23505"; 3], "seed {seed}: {errors:?}");
    }
}

#[test]
fn statements_are_traced_with_their_results() {
    let events = run(7, || async {
        let log = sim_runtime::trace::capture_prefix("sql.stmt");
        let server = start(config()).await;
        let pool = pool(&server);
        let mut c = pool.acquire().await.unwrap();
        let _ = c
            .execute(Statement::Begin(IsolationLevel::Serializable))
            .await;
        let _ = c.execute(Select::from("accounts").key(1)).await;
        let _ = c.execute(Select::from("nope")).await;
        let _ = c.execute(Statement::Rollback).await;
        log.snapshot()
            .iter()
            .map(|e| e.fields::<sim_models::sql::StmtEvent>().unwrap())
            .collect::<Vec<_>>()
    });
    let texts: Vec<&str> = events.iter().map(|e| e.stmt.as_str()).collect();
    assert_eq!(
        &texts[texts.len() - 4..],
        [
            "BEGIN ISOLATION LEVEL SERIALIZABLE",
            "SELECT * FROM accounts WHERE pk = (1)",
            "SELECT * FROM nope",
            "ROLLBACK"
        ]
    );
    let last = &events[events.len() - 4..];
    assert!(last[1].is_ok() && last[1].affected == 1);
    assert_eq!(last[2].sqlstate.as_deref(), Some("42P01"));
}
