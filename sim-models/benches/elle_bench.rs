//! Speed of the Elle-style checker (`sim_models::check::elle`): list-append histories
//! recorded from the SQL model (10 clients, 8 keys, up to 4 operations per transaction)
//! at READ COMMITTED (many anomalies, large cyclic components) and SERIALIZABLE (none),
//! each checked several times; prints transactions, dependencies, anomalies found and the
//! time per check.
//!
//! Run with `cargo bench -p sim-models --bench elle_bench`.

use sim_models::check::elle::{self, History, ListAppend};
use sim_models::sql::{self, IsolationLevel, Pool, PoolConfig};
use sim_runtime::time::Duration;
use sim_runtime::Sim;

fn record(isolation: IsolationLevel, txns_per_client: usize) -> History {
    let r = Sim::new(1)
        .time_limit(Duration::from_secs(3600))
        .run(move || async move {
            let db = sql::start("db", sql::Config::default());
            db.ready().await;
            let pool = Pool::new(db.addr(), PoolConfig::default());
            let workload = ListAppend {
                keys: 8,
                clients: 10,
                txns_per_client,
                isolation,
                ..ListAppend::default()
            };
            workload.setup(&pool).await.expect("setup");
            workload.run(&pool).await
        });
    r.output.expect("the recording run passes")
}

// The one place wall-clock time is allowed: measuring how fast the checker runs.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
fn measure(label: &str, history: &History) {
    const ROUNDS: u32 = 20;
    let start = std::time::Instant::now();
    let mut report = elle::check(history);
    for _ in 1..ROUNDS {
        report = elle::check(history);
    }
    let per_check = start.elapsed().as_secs_f64() / f64::from(ROUNDS);
    println!(
        "{label}: {} transactions ({} in the graph), {} dependencies, {} anomalies ({}): {:.2} ms per check",
        history.txns.len(),
        report.txns,
        report.edges,
        report.anomalies.len(),
        report
            .kinds()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        per_check * 1e3
    );
}

fn main() {
    for (label, isolation) in [
        ("READ COMMITTED", IsolationLevel::ReadCommitted),
        ("REPEATABLE READ", IsolationLevel::RepeatableRead),
        ("SERIALIZABLE", IsolationLevel::Serializable),
    ] {
        let history = record(isolation, 400);
        measure(label, &history);
    }
}
