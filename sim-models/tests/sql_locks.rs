//! Row locks under concurrency: deadlocks resolved after `deadlock_timeout`, lock and
//! statement timeouts, FOR UPDATE as the cure for lost updates, and slow statements that
//! keep their locks.

mod sql_support;

use sim_models::sql::{Client, Config, IsolationLevel, Pool, SqlError, Transaction};
use sim_runtime::spawn;
use sim_runtime::time::{self, sleep, Duration, Instant};
use sim_runtime::Probability;
use sql_support::{config, db, pool, start, Barrier};

/// Takes `$1` from account `$2`.
const DEBIT: &str = "UPDATE accounts SET balance = balance - $1 WHERE id = $2";

/// `SELECT ... FOR UPDATE` of one account.
const LOCK_ACCOUNT: &str = "SELECT * FROM accounts WHERE id = $1 FOR UPDATE";

async fn begin_read_committed(c: &mut Client) -> Result<Transaction<'_>, SqlError> {
    c.build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()
        .await
}

/// Locks `first`, waits for the other task to lock its row, then touches `second`.
async fn transfer(
    pool: Pool,
    first: i64,
    second: i64,
    barrier: Barrier,
) -> (Result<(), SqlError>, Instant) {
    let r = async {
        let mut c = pool.acquire().await?;
        let mut tx = begin_read_committed(&mut c).await?;
        tx.query(LOCK_ACCOUNT, &[&first]).await?;
        barrier.wait().await;
        tx.execute(DEBIT, &[&1_i64, &second]).await?;
        tx.execute(DEBIT, &[&-1_i64, &first]).await?;
        tx.commit().await
    }
    .await;
    (r, time::now())
}

#[sim_runtime::test(seeds = 12)]
async fn opposite_lock_order_deadlocks_one_victim_and_the_other_commits() {
    let (server, pool) = db().await;
    let b = Barrier::new(2);
    let t1 = spawn(transfer(pool.clone(), 1, 2, b.clone()));
    let t2 = spawn(transfer(pool.clone(), 2, 1, b));
    let results = vec![t1.await.unwrap(), t2.await.unwrap()];
    let victims: Vec<_> = results.iter().filter(|(r, _)| r.is_err()).collect();
    assert_eq!(victims.len(), 1, "{results:?}");
    let (err, failed_at) = victims[0];
    assert_eq!(err.as_ref().unwrap_err().sqlstate(), Some("40P01"));
    // Detected only once a waiter had waited deadlock_timeout (1 s).
    assert!(
        failed_at.elapsed_since_start() >= Duration::from_secs(1),
        "detected at {failed_at}"
    );
    // The survivor's transfer moved one unit between the accounts.
    let mut balances: Vec<i64> = server
        .committed_rows("accounts")
        .unwrap()
        .iter()
        .map(|r| r.get("balance").unwrap())
        .collect();
    balances.sort();
    assert_eq!(balances, [99, 101]);
    assert_eq!(server.stats().deadlocks, 1);
}

/// `SELECT ... FOR UPDATE` of two accounts in one statement (in storage order).
const LOCK_EITHER: &str = "SELECT * FROM accounts WHERE id = $1 OR id = $2 FOR UPDATE";

/// Locks the rows with these ids in one statement (in storage order), in a transaction
/// that first locks `own`.
async fn lock_pair(
    pool: Pool,
    own: i64,
    pair: (i64, i64),
    barrier: Barrier,
) -> (Result<(), SqlError>, Instant) {
    let r = async {
        let mut c = pool.acquire().await?;
        let mut tx = begin_read_committed(&mut c).await?;
        tx.query(LOCK_ACCOUNT, &[&own]).await?;
        barrier.wait().await;
        tx.query(LOCK_EITHER, &[&pair.0, &pair.1]).await?;
        tx.commit().await
    }
    .await;
    (r, time::now())
}

#[sim_runtime::test(seeds = 12)]
async fn a_deadlock_formed_by_a_second_wait_is_still_detected() {
    // Both transactions first wait for a third one (their deadlock checks find no
    // cycle), then, once it commits, block on each other: each new wait gets its own
    // deadlock check, as in PostgreSQL.
    let (_server, pool) = db().await;
    {
        let mut c = pool.acquire().await.unwrap();
        for id in 11..=14_i64 {
            c.execute(
                "INSERT INTO accounts (id, balance) VALUES ($1, $2)",
                &[&id, &0_i64],
            )
            .await
            .unwrap();
        }
    }
    let b = Barrier::new(3);
    let third = {
        let (pool, b) = (pool.clone(), b.clone());
        spawn(async move {
            let mut c = pool.acquire().await.unwrap();
            let mut tx = begin_read_committed(&mut c).await.unwrap();
            tx.query(LOCK_EITHER, &[&11_i64, &12_i64]).await.unwrap();
            b.wait().await;
            sleep(Duration::from_secs(3)).await;
            tx.commit().await.unwrap();
        })
    };
    let t1 = spawn(lock_pair(pool.clone(), 13, (11, 14), b.clone()));
    let t2 = spawn(lock_pair(pool.clone(), 14, (12, 13), b));
    third.await.unwrap();
    let results = vec![t1.await.unwrap(), t2.await.unwrap()];
    let victims: Vec<_> = results.iter().filter(|(r, _)| r.is_err()).collect();
    assert_eq!(victims.len(), 1, "{results:?}");
    assert_eq!(victims[0].0.as_ref().unwrap_err().sqlstate(), Some("40P01"));
    assert!(victims[0].1.elapsed_since_start() >= Duration::from_secs(4));
}

#[sim_runtime::test(seeds = 12)]
async fn lock_timeout_cancels_a_waiting_statement_with_55p03() {
    let (_server, pool) = db().await;
    let b = Barrier::new(2);
    let holder = {
        let (pool, b) = (pool.clone(), b.clone());
        spawn(async move {
            let mut c = pool.acquire().await?;
            let mut tx = begin_read_committed(&mut c).await?;
            tx.execute(DEBIT, &[&5_i64, &1_i64]).await?;
            b.wait().await;
            sleep(Duration::from_millis(500)).await;
            tx.commit().await
        })
    };
    let mut c = pool.acquire().await.unwrap();
    c.execute("SET lock_timeout = '100ms'", &[]).await.unwrap();
    b.wait().await;
    let start = time::now();
    let e = c.execute(DEBIT, &[&1_i64, &1_i64]).await.unwrap_err();
    let waited = time::now().duration_since(start);
    assert_eq!(e.sqlstate(), Some("55P03"));
    assert_eq!(e.to_string(), "canceling statement due to lock timeout");
    assert!(waited >= Duration::from_millis(100) && waited < Duration::from_millis(200));
    // The session is usable afterwards.
    c.query_one("SELECT * FROM accounts WHERE id = $1", &[&2_i64])
        .await
        .unwrap();
    assert!(holder.await.unwrap().is_ok());
}

#[sim_runtime::test(seeds = 12)]
async fn statement_timeout_cancels_slow_and_blocked_statements_with_57014() {
    let (_server, pool) = db().await;
    let mut c = pool.acquire().await.unwrap();
    c.execute("SET statement_timeout = '300ms'", &[])
        .await
        .unwrap();
    let slow = c.execute("SELECT pg_sleep(5)", &[]).await;
    assert_eq!(slow.unwrap_err().sqlstate(), Some("57014"));
    // A statement blocked behind a lock is cancelled too, and its transaction rolled back.
    let mut other = pool.acquire().await.unwrap();
    let mut holder = begin_read_committed(&mut other).await.unwrap();
    holder.execute(DEBIT, &[&1_i64, &1_i64]).await.unwrap();
    let mut tx = begin_read_committed(&mut c).await.unwrap();
    tx.execute(DEBIT, &[&50_i64, &2_i64]).await.unwrap();
    let blocked = tx.execute(DEBIT, &[&1_i64, &1_i64]).await;
    assert_eq!(blocked.unwrap_err().sqlstate(), Some("57014"));
    // COMMIT of the failed block rolls back: the debit of account 2 is gone.
    assert_eq!(tx.commit().await.unwrap_err().sqlstate(), Some("25P02"));
    holder.commit().await.unwrap();
}

#[sim_runtime::test(seeds = 12)]
async fn select_for_update_prevents_the_lost_update() {
    let (server, pool) = db().await;
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let pool = pool.clone();
        tasks.push(spawn(async move {
            let mut c = pool.acquire().await.unwrap();
            let mut tx = begin_read_committed(&mut c).await.unwrap();
            let row = tx.query_one(LOCK_ACCOUNT, &[&1_i64]).await.unwrap();
            let b: i64 = row.get("balance").unwrap();
            sleep(Duration::from_millis(3)).await;
            tx.execute(
                "UPDATE accounts SET balance = $1 WHERE id = $2",
                &[&(b + 10), &1_i64],
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let balance: i64 = server.committed_rows("accounts").unwrap()[0]
        .get("balance")
        .unwrap();
    assert_eq!(balance, 150);
}

#[sim_runtime::test(seeds = 12)]
async fn injected_slow_queries_hold_their_locks() {
    let server = start(Config {
        slow_query_probability: Probability::ALWAYS,
        slow_query_duration: Duration::from_secs(2),
        ..config()
    })
    .await;
    let pool = pool(&server);
    let b = Barrier::new(2);
    let slow = {
        let (pool, b) = (pool.clone(), b.clone());
        spawn(async move {
            let mut c = pool.acquire().await.unwrap();
            b.wait().await;
            let start = time::now();
            c.execute(DEBIT, &[&1_i64, &1_i64]).await.unwrap();
            time::now().duration_since(start)
        })
    };
    let waiter = spawn(async move {
        let mut c = pool.acquire().await.unwrap();
        b.wait().await;
        // Let the slow update take the row lock first.
        sleep(Duration::from_millis(50)).await;
        let start = time::now();
        c.execute(DEBIT, &[&1_i64, &1_i64]).await.unwrap();
        time::now().duration_since(start)
    });
    let slow_took = slow.await.unwrap();
    let waiter_took = waiter.await.unwrap();
    assert!(slow_took >= Duration::from_secs(2));
    // The waiter queued behind the slow statement's lock, then ran slowly itself.
    assert!(
        waiter_took >= Duration::from_millis(1950) + Duration::from_secs(2),
        "{waiter_took:?}"
    );
}
