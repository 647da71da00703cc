//! Runs a case on the sql model: one simulation per case, a task per session fed through
//! a channel, and the driver stepping virtual time after each statement. A statement
//! whose reply has not come once the step's time has passed is waiting (for a lock: the
//! model has no other way to stall a statement, bar `pg_sleep`).

use std::cell::RefCell;
use std::rc::Rc;

use futures::channel::mpsc;
use futures::StreamExt;
use sim_models::sql::{self, Client, ClientConfig, SqlError, Value};
use sim_runtime::time::{self, Duration};
use sim_runtime::{spawn, Sim};

use super::case::{Case, StepTrace, Trace};
use super::outcome::{is_ordered, Answer};
use super::DEADLOCK_TIMEOUT_MS;

/// Virtual time each step is given: longer than every timeout the cases set, so a step
/// ends with each statement either answered or waiting for another session.
const STEP_TIME: Duration = Duration::from_secs(3);

/// A value in PostgreSQL's text format.
fn value_text(v: &Value) -> Option<String> {
    v.pg_text()
}

fn answer(result: Result<sql::StmtResult, SqlError>, ordered: bool) -> Answer {
    match result {
        Ok(r) => Answer::Rows {
            rows: r
                .rows
                .iter()
                .map(|row| row.iter().map(|(_, v)| value_text(v)).collect())
                .collect(),
            count: r.affected,
        }
        .normalized(ordered),
        Err(e) => Answer::Error(match e.sqlstate() {
            Some(code) => code.to_owned(),
            None => format!("client: {e}"),
        }),
    }
}

async fn run_text(client: &mut Client, sql: &str) -> Answer {
    let result = match client.to_sendable(sql, &[]) {
        Ok(stmt) => client.run(stmt).await,
        Err(e) => Err(e),
    };
    answer(result, is_ordered(sql))
}

type Done = Rc<RefCell<Vec<(usize, usize, Answer)>>>;

/// The sessions of a running case and what they answered since the last look.
struct Sessions {
    senders: Vec<mpsc::UnboundedSender<(usize, String)>>,
    waiting: Vec<bool>,
    done: Done,
}

impl Sessions {
    /// Sends a statement (the step's index identifies it), lets the step's time pass and
    /// reports what finished and what still waits.
    async fn step(&mut self, session: usize, index: usize, sql: &str) -> StepTrace {
        self.waiting[session] = true;
        let _ = self.senders[session].unbounded_send((index, sql.to_owned()));
        time::sleep(STEP_TIME).await;
        let mut finished = std::mem::take(&mut *self.done.borrow_mut());
        finished.sort_by_key(|(s, _, _)| *s);
        for (s, _, _) in &finished {
            self.waiting[*s] = false;
        }
        StepTrace {
            sent: true,
            finished,
            waiting: (0..self.waiting.len())
                .filter(|&s| self.waiting[s])
                .collect(),
        }
    }
}

/// Runs `case` on a fresh model server; `seed` drives the simulation's scheduling.
pub fn run(case: &Case, seed: u64) -> Trace {
    let case = case.clone();
    let result = Sim::new(seed)
        .time_limit(Duration::from_secs(24 * 3600))
        .run(move || async move {
            let config = sql::Config {
                deadlock_timeout: Duration::from_millis(DEADLOCK_TIMEOUT_MS),
                ..sql::Config::default()
            };
            let db = sql::start("postgres", config);
            db.ready().await;
            let done: Done = Rc::default();
            let mut senders = Vec::new();
            for session in 0..case.sessions {
                let mut client = Client::connect(db.addr(), &ClientConfig::default())
                    .await
                    .expect("the model accepts a connection");
                let (tx, mut rx) = mpsc::unbounded::<(usize, String)>();
                let done = done.clone();
                spawn(async move {
                    while let Some((index, sql)) = rx.next().await {
                        let a = run_text(&mut client, &sql).await;
                        done.borrow_mut().push((session, index, a));
                    }
                })
                .detach();
                senders.push(tx);
            }
            let mut sessions = Sessions {
                senders,
                waiting: vec![false; case.sessions],
                done,
            };
            let mut trace = Trace::default();
            for sql in &case.setup {
                let t = sessions.step(0, usize::MAX, sql).await;
                trace
                    .setup
                    .extend(t.finished.into_iter().map(|(_, _, a)| a));
            }
            for (i, step) in case.steps.iter().enumerate() {
                if sessions.waiting[step.session] {
                    trace.steps.push(StepTrace {
                        sent: false,
                        finished: Vec::new(),
                        waiting: (0..case.sessions)
                            .filter(|&s| sessions.waiting[s])
                            .collect(),
                    });
                    continue;
                }
                trace
                    .steps
                    .push(sessions.step(step.session, i, &step.sql).await);
            }
            finish(&mut sessions, case.sessions, &mut trace).await;
            for table in &case.tables {
                let t = sessions
                    .step(0, usize::MAX, &format!("SELECT * FROM {table}"))
                    .await;
                trace
                    .tables
                    .extend(t.finished.into_iter().map(|(_, _, a)| a));
            }
            trace
        });
    match result.output {
        Some(trace) => trace,
        None => panic!("the model's simulation failed: {}", result.report),
    }
}

/// Ends every session with ROLLBACK, in session order, a waiting session once it is
/// answered (the ROLLBACKs of the others release what it waits for).
async fn finish(sessions: &mut Sessions, count: usize, trace: &mut Trace) {
    let mut left: Vec<usize> = (0..count).collect();
    for _round in 0..=count {
        let mut still = Vec::new();
        for s in left {
            if sessions.waiting[s] {
                still.push(s);
            } else {
                trace
                    .finish
                    .push(sessions.step(s, usize::MAX, "ROLLBACK").await);
            }
        }
        left = still;
    }
}
