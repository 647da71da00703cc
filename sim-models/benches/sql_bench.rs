//! Throughput of the SQL model: transactions per second (wall clock) of a small
//! read-write mix through a pool of 10 connections, 20 clients, 1000 accounts:
//! 70% reads by key, 20% transfers (BEGIN; two UPDATEs; COMMIT) at READ COMMITTED,
//! 10% transfers at REPEATABLE READ with retry on 40001.
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

async fn transfer(pool: &Pool, iso: IsolationLevel, from: i64, to: i64) -> Result<(), SqlError> {
    let mut c = pool.acquire().await?;
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
fn workload(seed: u64) -> (u64, u64, Duration) {
    let r = Sim::new(seed).run(|| async {
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
                        match pool.acquire().await {
                            Ok(mut c) => c.get("accounts", a).await.map(|_| ()),
                            Err(e) => Err(e),
                        }
                    } else if dice < 9 {
                        transfer(&pool, IsolationLevel::ReadCommitted, a, b).await
                    } else {
                        loop {
                            match transfer(&pool, IsolationLevel::RepeatableRead, a, b).await {
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

// Wall-clock time is what a benchmark measures; it never reaches the simulation.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
fn main() {
    let runs = 3;
    let mut best = f64::MAX;
    let mut last = (0, 0, Duration::ZERO);
    for seed in 0..runs {
        let t0 = std::time::Instant::now();
        last = workload(seed);
        let wall = t0.elapsed().as_secs_f64();
        best = best.min(wall);
        println!(
            "sql_bench seed {seed}: {} transactions ({} errors) in {:.3} s wall = {:.0} tx/s; \
             {:.1} s virtual = {:.0} tx/s virtual",
            last.0,
            last.1,
            wall,
            last.0 as f64 / wall,
            last.2.as_secs_f64(),
            last.0 as f64 / last.2.as_secs_f64(),
        );
    }
    println!(
        "sql_bench: best {:.0} transactions/s wall clock ({} clients, pool of 10, 70% reads, \
         30% transfers)",
        last.0 as f64 / best,
        CLIENTS
    );
}
