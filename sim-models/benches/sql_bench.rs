//! Throughput of the SQL model: transactions per second (wall clock) of a small
//! read-write mix through a pool of 10 connections, 20 clients, 1000 accounts:
//! 70% reads by key, 20% transfers (BEGIN; two UPDATEs; COMMIT) at READ COMMITTED,
//! 10% transfers at REPEATABLE READ with retry on 40001.
//!
//! The workload runs twice per seed: once as SQL text with `$n` parameters (what services
//! send) and once through the statement builder (the plan text is parsed into), so the
//! ratio between the two is what parsing and the plan cache cost.
//!
//! A second workload reads by a non-key column, as the appointments scenario does
//! (`SELECT id FROM slots WHERE doctor_id = $1 ORDER BY id` over 5,000 slots of 50
//! doctors), once with a plain index on the column and once without, so the ratio is what
//! the index saves.
//!
//! Run with `cargo bench -p sim-models --bench sql_bench`. It prints the wall-clock rate
//! (how fast the simulator runs the model) and the virtual-time rate (what the simulated
//! system achieved, bounded by the simulated network's latency).

use std::cell::Cell;
use std::rc::Rc;

use sim_models::sql::{
    self, col, ColumnType, Config, IsolationLevel, Pool, PoolConfig, SqlError, TableSchema, Update,
};
use sim_models::sql_row;
use sim_runtime::time::{self, Duration};
use sim_runtime::{spawn, Sim};

const ACCOUNTS: i64 = 1000;
const CLIENTS: u64 = 20;
const TXNS_PER_CLIENT: u64 = 1000;

/// How the workload speaks to the database.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Dialect {
    Text,
    Builder,
}

async fn transfer(
    pool: &Pool,
    dialect: Dialect,
    iso: IsolationLevel,
    from: i64,
    to: i64,
) -> Result<(), SqlError> {
    let mut c = pool.acquire().await?;
    if dialect == Dialect::Text {
        let mut tx = c.build_transaction().isolation_level(iso).start().await?;
        let debit = "UPDATE accounts SET balance = balance - 1 WHERE id = $1";
        let credit = "UPDATE accounts SET balance = balance + 1 WHERE id = $1";
        tx.execute(debit, &[&from]).await?;
        tx.execute(credit, &[&to]).await?;
        return tx.commit().await;
    }
    let mut tx = c.begin(iso).await?;
    tx.update(
        Update::table("accounts")
            .set("balance", col("balance").minus(1))
            .key(from),
    )
    .await?;
    tx.update(
        Update::table("accounts")
            .set("balance", col("balance").plus(1))
            .key(to),
    )
    .await?;
    tx.commit().await
}

/// Runs the whole workload; returns (transactions committed, errors, virtual time).
fn workload(seed: u64, dialect: Dialect) -> (u64, u64, Duration) {
    let r = Sim::new(seed).run(move || async move {
        let config = Config::default().table(
            TableSchema::new("accounts")
                .column("id", ColumnType::Int)
                .column("balance", ColumnType::Int)
                .primary_key(&["id"]),
        );
        let server = sql::start("db", config);
        server.ready().await;
        let pool = Pool::new(server.addr(), PoolConfig::default());
        {
            let mut c = pool.acquire().await.unwrap();
            for id in 0..ACCOUNTS {
                c.insert("accounts", sql_row! {"id" => id, "balance" => 1000})
                    .await
                    .unwrap();
            }
        }
        let committed = Rc::new(Cell::new(0u64));
        let errors = Rc::new(Cell::new(0u64));
        let start = time::now();
        let mut tasks = Vec::new();
        for k in 0..CLIENTS {
            let (pool, committed, errors) = (pool.clone(), committed.clone(), errors.clone());
            tasks.push(spawn(async move {
                let mut rng = sim_runtime::rng(&format!("bench-{k}"));
                for _ in 0..TXNS_PER_CLIENT {
                    let a = rng.below(ACCOUNTS as u64) as i64;
                    let b = (a + 1 + rng.below(ACCOUNTS as u64 - 1) as i64) % ACCOUNTS;
                    let dice = rng.below(10);
                    let r = if dice < 7 {
                        match (pool.acquire().await, dialect) {
                            (Ok(mut c), Dialect::Text) => c
                                .query_opt("SELECT * FROM accounts WHERE id = $1", &[&a])
                                .await
                                .map(|_| ()),
                            (Ok(mut c), Dialect::Builder) => c.get("accounts", a).await.map(|_| ()),
                            (Err(e), _) => Err(e),
                        }
                    } else if dice < 9 {
                        transfer(&pool, dialect, IsolationLevel::ReadCommitted, a, b).await
                    } else {
                        let iso = IsolationLevel::RepeatableRead;
                        loop {
                            match transfer(&pool, dialect, iso, a, b).await {
                                Err(e) if e.is_retryable() => errors.set(errors.get() + 1),
                                r => break r,
                            }
                        }
                    };
                    match r {
                        Ok(()) => committed.set(committed.get() + 1),
                        Err(_) => errors.set(errors.get() + 1),
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let total: i64 = server
            .committed_rows("accounts")
            .unwrap()
            .iter()
            .map(|r| r.get::<_, i64>("balance").unwrap())
            .sum();
        assert_eq!(total, ACCOUNTS * 1000, "transfers must conserve money");
        (
            committed.get(),
            errors.get(),
            time::now().duration_since(start),
        )
    });
    assert!(r.report.is_pass(), "{}", r.report);
    r.output.expect("output")
}

const SLOTS: i64 = 5000;
const DOCTORS: i64 = 50;
const LOOKUPS_PER_CLIENT: u64 = 200;

/// Lookups of a doctor's slots by 20 clients; returns the rows read in all.
fn lookups(seed: u64, indexed: bool) -> u64 {
    let r = Sim::new(seed).run(move || async move {
        let server = sql::start("db", Config::default());
        server.ready().await;
        let pool = Pool::new(server.addr(), PoolConfig::default());
        {
            let mut c = pool.acquire().await.unwrap();
            let create = "CREATE TABLE slots (id bigint PRIMARY KEY, doctor_id bigint NOT NULL)";
            c.execute(create, &[]).await.unwrap();
            if indexed {
                let index = "CREATE INDEX slots_doctor ON slots (doctor_id)";
                c.execute(index, &[]).await.unwrap();
            }
            let values: Vec<String> = (0..SLOTS)
                .map(|id| format!("({id}, {})", id % DOCTORS))
                .collect();
            let insert = format!(
                "INSERT INTO slots (id, doctor_id) VALUES {}",
                values.join(", ")
            );
            c.execute(insert.as_str(), &[]).await.unwrap();
        }
        let rows = Rc::new(Cell::new(0u64));
        let mut tasks = Vec::new();
        for k in 0..CLIENTS {
            let (pool, rows) = (pool.clone(), rows.clone());
            tasks.push(spawn(async move {
                let mut rng = sim_runtime::rng(&format!("lookup-{k}"));
                for _ in 0..LOOKUPS_PER_CLIENT {
                    let doctor = rng.below(DOCTORS as u64) as i64;
                    let mut c = pool.acquire().await.unwrap();
                    let q = "SELECT id FROM slots WHERE doctor_id = $1 ORDER BY id";
                    let found = c.query(q, &[&doctor]).await.unwrap();
                    rows.set(rows.get() + found.len() as u64);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        rows.get()
    });
    assert!(r.report.is_pass(), "{}", r.report);
    r.output.expect("output")
}

// Wall-clock time is what a benchmark measures; it never reaches the simulation.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
fn main() {
    let mut best = [f64::MAX; 2];
    for seed in 0..3 {
        for (i, indexed) in [true, false].into_iter().enumerate() {
            let t0 = std::time::Instant::now();
            let rows = lookups(seed, indexed);
            best[i] = best[i].min(t0.elapsed().as_secs_f64());
            assert_eq!(
                rows,
                CLIENTS * LOOKUPS_PER_CLIENT * (SLOTS / DOCTORS) as u64
            );
        }
    }
    let lookups = (CLIENTS * LOOKUPS_PER_CLIENT) as f64;
    println!(
        "sql_bench lookups by doctor_id ({SLOTS} rows, {DOCTORS} doctors): best {:.0} lookups/s \
         wall clock with a plain index, {:.0} without (x{:.1})",
        lookups / best[0],
        lookups / best[1],
        best[1] / best[0]
    );
    let runs = 3;
    let mut best = [f64::MAX; 2];
    let mut committed = [0u64; 2];
    for seed in 0..runs {
        for (i, dialect) in [Dialect::Text, Dialect::Builder].into_iter().enumerate() {
            let t0 = std::time::Instant::now();
            let last = workload(seed, dialect);
            let wall = t0.elapsed().as_secs_f64();
            best[i] = best[i].min(wall);
            committed[i] = last.0;
            println!(
                "sql_bench {dialect:?} seed {seed}: {} transactions ({} errors) in {:.3} s wall \
                 = {:.0} tx/s; {:.1} s virtual = {:.0} tx/s virtual",
                last.0,
                last.1,
                wall,
                last.0 as f64 / wall,
                last.2.as_secs_f64(),
                last.0 as f64 / last.2.as_secs_f64(),
            );
        }
    }
    let rate = |i: usize| committed[i] as f64 / best[i];
    println!(
        "sql_bench: best {:.0} transactions/s wall clock as SQL text, {:.0} through the builder \
         (text/builder time {:.3}); {} clients, pool of 10, 70% reads, 30% transfers",
        rate(0),
        rate(1),
        best[0] / best[1],
        CLIENTS
    );
}
