//! Determinism: a mixed workload at every isolation level, through a pool, across every
//! fault verb, gives the same trace fingerprint and the same results when a seed is run
//! twice, and different runs for different seeds.

mod sql_support;

use sim_models::sql::{ClientConfig, IsolationLevel, Pool, PoolConfig, SqlError};
use sim_runtime::time::{sleep, Duration};
use sim_runtime::{spawn, Sim};
use sql_support::{config, start};

async fn one_op(pool: &Pool, op: u64, n: i64) -> Result<String, SqlError> {
    let mut c = pool.acquire().await?;
    match op {
        0 => {
            // A transfer at repeatable read.
            let (from, to): (i64, i64) = if n % 2 == 0 { (1, 2) } else { (2, 1) };
            let mut tx = c
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .start()
                .await?;
            let b: i64 = tx
                .query_opt("SELECT balance FROM accounts WHERE id = $1", &[&from])
                .await?
                .expect("exists")
                .get("balance")?;
            tx.execute(
                "UPDATE accounts SET balance = $1 WHERE id = $2",
                &[&(b - 1), &from],
            )
            .await?;
            tx.execute(
                "UPDATE accounts SET balance = balance + 1 WHERE id = $1",
                &[&to],
            )
            .await?;
            tx.commit().await?;
            Ok(format!("transfer {from}->{to}"))
        }
        1 => {
            // A serializable booking checked by SELECT.
            let slot = n % 5;
            let mut tx = c
                .build_transaction()
                .isolation_level(IsolationLevel::Serializable)
                .start()
                .await?;
            let taken: i64 = tx
                .query_one("SELECT count(*) FROM bookings WHERE slot = $1", &[&slot])
                .await?
                .get("count")?;
            if taken == 0 {
                tx.execute(
                    "INSERT INTO bookings (id, doctor, slot, patient) VALUES ($1, $2, $3, $4)",
                    &[&n, &"house", &slot, &"p"],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(format!("book {slot}: {taken}"))
        }
        2 => {
            // A unique-constrained appointment.
            let slot = n % 7;
            c.execute(
                "INSERT INTO appointments (id, doctor, slot, patient) VALUES ($1, $2, $3, $4)",
                &[&n, &"house", &slot, &"p"],
            )
            .await?;
            Ok(format!("appointment {slot}"))
        }
        3 => {
            // An upsert counter.
            let r = c
                .query_opt(
                    "INSERT INTO accounts (id, balance) VALUES ($1, $2) \
                     ON CONFLICT (id) DO UPDATE SET balance = accounts.balance + EXCLUDED.balance \
                     RETURNING *",
                    &[&10_i64, &1_i64],
                )
                .await?;
            Ok(format!(
                "counter {:?}",
                r.map(|r| r.get::<_, i64>("balance"))
            ))
        }
        _ => {
            // A job claim with SKIP LOCKED.
            let mut tx = c
                .build_transaction()
                .isolation_level(IsolationLevel::ReadCommitted)
                .start()
                .await?;
            let rows = tx
                .query(
                    "SELECT * FROM appointments LIMIT 1 FOR UPDATE SKIP LOCKED",
                    &[],
                )
                .await?;
            sleep(Duration::from_millis(2)).await;
            tx.commit().await?;
            Ok(format!("claimed {}", rows.len()))
        }
    }
}

async fn workload() -> (Vec<String>, Vec<String>) {
    let server = start(config()).await;
    let pool = Pool::new(
        server.addr(),
        PoolConfig {
            max_size: 4,
            acquire_timeout: Duration::from_millis(200),
            client: ClientConfig {
                query_timeout: Some(Duration::from_millis(500)),
                ..ClientConfig::default()
            },
            ..PoolConfig::default()
        },
    );
    let faults = {
        let server = server.clone();
        spawn(async move {
            sleep(Duration::from_millis(100)).await;
            server.pause();
            sleep(Duration::from_millis(50)).await;
            server.resume();
            sleep(Duration::from_millis(150)).await;
            server.crash();
            sleep(Duration::from_millis(100)).await;
            server.restart();
            sleep(Duration::from_millis(100)).await;
            server.slow(Duration::from_millis(30));
            sleep(Duration::from_millis(100)).await;
            server.fast();
            server.refuse();
            sleep(Duration::from_millis(50)).await;
            server.accept();
        })
    };
    let mut clients = Vec::new();
    for k in 0..6i64 {
        let pool = pool.clone();
        clients.push(spawn(async move {
            let mut rng = sim_runtime::rng(&format!("client-{k}"));
            let mut log = Vec::new();
            for i in 0..30i64 {
                let op = rng.below(5);
                let n = k * 100 + i;
                let r = one_op(&pool, op, n).await;
                let backoff = if r.is_err() { 25 } else { 0 };
                log.push(match r {
                    Ok(s) => s,
                    Err(e) => format!("error {:?}: {e}", e.sqlstate()),
                });
                sleep(Duration::from_millis(backoff + rng.below(20))).await;
            }
            log
        }));
    }
    let mut results = Vec::new();
    for c in clients {
        results.extend(c.await.unwrap());
    }
    faults.await.unwrap();
    let mut state = Vec::new();
    for t in ["accounts", "bookings", "appointments"] {
        for r in server.committed_rows(t).unwrap() {
            state.push(format!("{t}: {r}"));
        }
    }
    (results, state)
}

/// One run of the workload: its results and its trace fingerprint.
fn run_fingerprint(seed: u64) -> ((Vec<String>, Vec<String>), u64) {
    let r = Sim::new(seed).run(workload);
    assert!(r.report.is_pass(), "{}", r.report);
    (
        r.output.expect("a passing run has an output"),
        r.report.fingerprint,
    )
}

#[test]
fn same_seed_same_trace_and_results() {
    let mut prints = Vec::new();
    for seed in [1u64, 2, 3, 0x5eed] {
        let (a, fa) = run_fingerprint(seed);
        let (b, fb) = run_fingerprint(seed);
        assert_eq!(fa, fb, "seed {seed}: fingerprints differ");
        assert_eq!(a, b, "seed {seed}: results differ");
        // The workload did meet the faults and the isolation errors it is about.
        let all = a.0.join("\n");
        assert!(all.contains("transfer"), "seed {seed}");
        assert!(all.contains("error"), "seed {seed}: no fault was felt");
        prints.push(fa);
    }
    prints.sort();
    prints.dedup();
    assert_eq!(
        prints.len(),
        4,
        "different seeds should explore different runs"
    );
}
