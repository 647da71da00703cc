//! The list-append workload over the SQL model: a table of lists kept as text
//! (`elle_lists`, a row per key), clients running short random transactions of appends
//! (`UPDATE ... SET v = v || ' 7'`) and reads at one isolation level, and the history they
//! saw. Each transaction is tried once: a failure is part of the history, not retried.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use sim_runtime::time::{sleep, Duration};
use sim_runtime::{spawn, SimRng};

use crate::sql::{IsolationLevel, Pool, SqlError};

use super::history::{Element, History, Key, Op, Outcome};

/// The table the workload keeps its lists in.
pub const TABLE: &str = "elle_lists";

const CREATE: &str = "CREATE TABLE elle_lists (k bigint PRIMARY KEY, v text NOT NULL)";
const SEED: &str = "INSERT INTO elle_lists (k, v) VALUES ($1, '')";
const READ: &str = "SELECT v FROM elle_lists WHERE k = $1";
const APPEND: &str = "UPDATE elle_lists SET v = v || $1 WHERE k = $2";

/// The shape of a run.
#[derive(Clone, Debug)]
pub struct ListAppend {
    /// Keys 0..keys; few keys make transactions meet.
    pub keys: u64,
    /// Concurrent clients, each a task running its transactions one after another.
    pub clients: usize,
    pub txns_per_client: usize,
    /// Each transaction has 1 to this many operations, each a read or an append (even odds)
    /// of a random key.
    pub max_ops: u64,
    pub isolation: IsolationLevel,
    /// A client pauses up to this long between statements, so that transactions overlap.
    pub think_max: Duration,
    /// After a transaction that did not commit, its client pauses this long, so that a
    /// server that is down does not use up the workload in failed attempts.
    pub failure_pause: Duration,
}

impl Default for ListAppend {
    fn default() -> Self {
        ListAppend {
            keys: 5,
            clients: 5,
            txns_per_client: 40,
            max_ops: 4,
            isolation: IsolationLevel::Serializable,
            think_max: Duration::from_millis(2),
            failure_pause: Duration::from_millis(10),
        }
    }
}

/// A planned operation.
#[derive(Clone, Copy)]
enum Step {
    Read(Key),
    Append(Key, Element),
}

impl ListAppend {
    pub fn isolation(mut self, isolation: IsolationLevel) -> Self {
        self.isolation = isolation;
        self
    }

    /// Creates the table with an empty list per key (outside any transaction, before the
    /// clients start).
    pub async fn setup(&self, pool: &Pool) -> Result<(), SqlError> {
        let mut c = pool.acquire().await?;
        c.execute(CREATE, &[]).await?;
        for k in 0..self.keys {
            c.execute(SEED, &[&key_param(k)]).await?;
        }
        Ok(())
    }

    /// Runs every client to its end and returns the history, transactions in the order
    /// they ended. Elements are numbered from 1 in the order clients draw them.
    pub async fn run(&self, pool: &Pool) -> History {
        let history = Rc::new(RefCell::new(History::new()));
        let next_element = Rc::new(Cell::new(1));
        let mut tasks = Vec::new();
        for client in 0..self.clients {
            let (config, pool) = (self.clone(), pool.clone());
            let (history, next_element) = (history.clone(), next_element.clone());
            tasks.push(spawn(async move {
                let mut rng = sim_runtime::rng(&format!("elle-client-{client}"));
                for _ in 0..config.txns_per_client {
                    let plan = config.plan(&mut rng, &next_element);
                    let (ops, outcome) = config.transaction(&pool, &plan, &mut rng).await;
                    history.borrow_mut().push(client, ops, outcome);
                    if outcome != Outcome::Committed {
                        sleep(config.failure_pause).await;
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("a workload client panicked");
        }
        history.take()
    }

    fn plan(&self, rng: &mut SimRng, next_element: &Cell<Element>) -> Vec<Step> {
        let n = 1 + rng.below(self.max_ops.max(1));
        (0..n)
            .map(|_| {
                let key = rng.below(self.keys.max(1));
                if rng.below(2) == 0 {
                    Step::Read(key)
                } else {
                    let e = next_element.get();
                    next_element.set(e + 1);
                    Step::Append(key, e)
                }
            })
            .collect()
    }

    /// One attempt at a planned transaction: the operations it got to, and its outcome.
    async fn transaction(
        &self,
        pool: &Pool,
        plan: &[Step],
        rng: &mut SimRng,
    ) -> (Vec<Op>, Outcome) {
        let mut ops = Vec::new();
        let Ok(mut conn) = pool.acquire().await else {
            return (ops, Outcome::Aborted);
        };
        let Ok(mut tx) = conn
            .build_transaction()
            .isolation_level(self.isolation)
            .start()
            .await
        else {
            return (ops, Outcome::Aborted);
        };
        for step in plan {
            let failed = match *step {
                Step::Read(key) => {
                    let list = match tx.query_opt(READ, &[&key_param(key)]).await {
                        Ok(row) => match row.map(|r| r.get::<_, String>("v")).transpose() {
                            Ok(text) => Some(parse_list(text.as_deref().unwrap_or(""))),
                            Err(_) => None,
                        },
                        Err(_) => None,
                    };
                    let failed = list.is_none();
                    ops.push(Op::Read { key, list });
                    failed
                }
                Step::Append(key, element) => {
                    // Recorded before it runs: a failed append of an aborted transaction
                    // must still be recognised if some read shows it (G1a).
                    ops.push(Op::Append { key, element });
                    let suffix = format!(" {element}");
                    // Every key has its row from the setup, so anything but 1 row is a
                    // failure the transaction cannot commit after.
                    !matches!(tx.execute(APPEND, &[&suffix, &key_param(key)]).await, Ok(1))
                }
            };
            if failed {
                // Best effort: if the connection is gone, the server rolls back anyway.
                let _ = tx.rollback().await;
                return (ops, Outcome::Aborted);
            }
            let pause = rng.below(self.think_max.as_micros() as u64 + 1);
            sleep(Duration::from_micros(pause)).await;
        }
        let outcome = match tx.commit().await {
            Ok(()) => Outcome::Committed,
            // The server answered, and its answer is a refusal: nothing was committed.
            Err(e) if e.sqlstate().is_some() && !e.is_connection_error() => Outcome::Aborted,
            // The answer was lost on the way: the commit may or may not have happened.
            Err(_) => Outcome::Unknown,
        };
        (ops, outcome)
    }
}

fn key_param(key: Key) -> i64 {
    i64::try_from(key).expect("keys are small")
}

/// The elements of a list as the workload writes it: each preceded by a space.
fn parse_list(text: &str) -> Vec<Element> {
    text.split_whitespace()
        .map(|e| e.parse().expect("the workload writes only numbers"))
        .collect()
}
