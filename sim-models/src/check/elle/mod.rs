//! # elle: transactional anomalies in list-append histories, in the manner of Elle
//!
//! Clients append unique elements to lists stored under keys and read them back inside
//! transactions. Because every element is unique and lists only grow, each read names the
//! transactions it saw and in which order, so the checker can infer, without looking
//! inside the database:
//!
//! 1. the **version order** of each key (its longest committed read, which every other
//!    read must be a prefix of, else *incompatible-order*);
//! 2. the **dependency graph** between committed transactions: ww (appended next),
//!    wr (read up to an append), rw (read before the next append);
//! 3. the **anomalies**: internal (a read contradicting the transaction's own earlier
//!    operations on the key), G1a (read an aborted append), G1b (read a state another
//!    transaction went on to change), lost update (two transactions appended after
//!    reading the same version), and cycles found with Tarjan's strongly connected
//!    components then a shortest cycle of each kind inside each: G0 (ww only), G1c (ww
//!    and wr), G-single (exactly one rw), G2-item (two or more rw).
//!
//! Each anomaly comes with its witness in words: the transactions (by id, with their
//! operations), keys, elements and edge kinds of the cycle.
//!
//! - [`history`]: what a history is; build one by hand or with [`workload`].
//! - [`workload`]: the list-append workload over the SQL model, at a chosen isolation
//!   level, recording what each client saw.
//! - [`check`]: the checker; [`anomalies`]: what it reports.
//!
//! ```
//! # sim_runtime::Sim::new(1).run(|| async {
//! use sim_models::check::elle::{self, AnomalyKind, ListAppend};
//! use sim_models::sql::{self, IsolationLevel, Pool, PoolConfig};
//! let db = sql::start("postgres", sql::Config::default());
//! db.ready().await;
//! let pool = Pool::new(db.addr(), PoolConfig::default());
//! let workload = ListAppend::default().isolation(IsolationLevel::Serializable);
//! workload.setup(&pool).await.unwrap();
//! let history = workload.run(&pool).await;
//! let report = elle::check(&history);
//! assert!(report.is_valid(), "{report}");
//! # });
//! ```

pub mod anomalies;
mod cycles;
pub mod graph;
pub mod history;
mod infer;
pub mod workload;

pub use anomalies::{Anomaly, AnomalyKind, Report};
pub use graph::{Edge, EdgeKind};
pub use history::{Element, History, Key, Op, Outcome, Txn, TxnId};
pub use workload::ListAppend;

/// Checks a list-append history: every anomaly found, with its witness.
pub fn check(history: &History) -> Report {
    let inferred = infer::infer(history);
    let mut anomalies = inferred.anomalies;
    anomalies.extend(cycles::find(&inferred.graph));
    anomalies.sort_by_key(Anomaly::kind);
    let members = inferred.in_graph.iter().filter(|m| **m).count();
    Report::new(history, anomalies, members, inferred.graph.edge_count())
}
