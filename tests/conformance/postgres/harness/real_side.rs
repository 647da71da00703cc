//! Runs a case on the real PostgreSQL: each session a connection on its own thread (a
//! blocked statement blocks its thread), a monitor connection that asks
//! `pg_blocking_pids` whether a session waits for a lock, and each case in a schema of
//! its own so that cases are independent and may run side by side.
//!
//! A step ends when every session with a statement in flight has either answered or
//! waits for a lock, and stays so for `SETTLE_MS` (longer than the deadlock, lock and
//! statement timeouts the cases set, so that those fire within the step that caused
//! them, as they do in the model's virtual time).

// Real threads and wall-clock time are the point here: this side drives a real server.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use postgres::{Client, NoTls, SimpleQueryMessage};

use super::case::{Case, StepTrace, Trace};
use super::outcome::{is_ordered, Answer};
use super::DEADLOCK_TIMEOUT_MS;

/// How long a step waits, once every statement in flight has answered or waits for a
/// lock, before it takes that as the step's outcome.
const SETTLE_MS: u64 = 6 * DEADLOCK_TIMEOUT_MS;
/// A statement neither answering nor waiting for a lock for this long is reported as
/// waiting (a `pg_sleep` longer than any case uses).
const STALL_MS: u64 = 5_000;

static SCHEMAS: AtomicU64 = AtomicU64::new(0);

fn simple(client: &mut Client, sql: &str, ordered: bool) -> Answer {
    match client.simple_query(sql) {
        Ok(messages) => {
            let mut rows = Vec::new();
            let mut count = 0;
            for m in messages {
                match m {
                    SimpleQueryMessage::Row(r) => rows.push(
                        (0..r.len())
                            .map(|i| r.get(i).map(str::to_owned))
                            .collect::<Vec<_>>(),
                    ),
                    SimpleQueryMessage::CommandComplete(n) => count = n,
                    _ => {}
                }
            }
            Answer::Rows { rows, count }.normalized(ordered)
        }
        Err(e) => Answer::Error(match e.code() {
            Some(code) => code.code().to_owned(),
            None => format!("client: {e}"),
        }),
    }
}

struct Session {
    pid: i32,
    tx: mpsc::Sender<(usize, String)>,
}

struct Run {
    sessions: Vec<Session>,
    done: mpsc::Receiver<(usize, usize, Answer)>,
    waiting: Vec<bool>,
    monitor: Client,
}

impl Run {
    fn lock_waiting(&mut self, session: usize) -> bool {
        let pid = self.sessions[session].pid;
        self.monitor
            .query_one("SELECT cardinality(pg_blocking_pids($1)) > 0", &[&pid])
            .map(|r| r.get::<_, bool>(0))
            .unwrap_or(false)
    }

    /// PostgreSQL sends a failed statement's error before its backend has rolled back, so
    /// the client may hold the error while the backend still holds the transaction's locks
    /// and SSI conflicts (case 8212 of the long run: another session's next statement met
    /// them and failed with 40001). Waits until the backend is no longer active.
    fn wait_rolled_back(&mut self, session: usize) {
        let pid = self.sessions[session].pid;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(STALL_MS) {
            let active = self
                .monitor
                .query_one(
                    "SELECT coalesce(bool_or(state = 'active'), false) \
                     FROM pg_stat_activity WHERE pid = $1",
                    &[&pid],
                )
                .map(|r| r.get::<_, bool>(0))
                .unwrap_or(false);
            if !active {
                return;
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    fn drain(&mut self, finished: &mut Vec<(usize, usize, Answer)>) -> bool {
        let mut any = false;
        while let Ok((s, i, a)) = self.done.try_recv() {
            if matches!(a, Answer::Error(_)) {
                self.wait_rolled_back(s);
            }
            self.waiting[s] = false;
            finished.push((s, i, a));
            any = true;
        }
        any
    }

    fn step(&mut self, session: usize, index: usize, sql: &str) -> StepTrace {
        self.waiting[session] = true;
        self.sessions[session]
            .tx
            .send((index, sql.to_owned()))
            .expect("the session's thread is alive");
        let mut finished = Vec::new();
        loop {
            // Until every statement in flight has answered or waits for a lock.
            let start = Instant::now();
            loop {
                self.drain(&mut finished);
                let in_flight: Vec<usize> = (0..self.waiting.len())
                    .filter(|&s| self.waiting[s])
                    .collect();
                let undecided = in_flight.into_iter().any(|s| !self.lock_waiting(s));
                if !undecided || start.elapsed() > Duration::from_millis(STALL_MS) {
                    break;
                }
                thread::sleep(Duration::from_millis(1));
            }
            if !self.waiting.iter().any(|w| *w) {
                break;
            }
            // Let the deadlock check, lock_timeout and statement_timeout fire.
            thread::sleep(Duration::from_millis(SETTLE_MS));
            if !self.drain(&mut finished) {
                break;
            }
        }
        finished.sort_by_key(|(s, _, _)| *s);
        StepTrace {
            sent: true,
            finished,
            waiting: (0..self.waiting.len())
                .filter(|&s| self.waiting[s])
                .collect(),
        }
    }
}

fn connect(url: &str, schema: &str) -> Client {
    let mut c = Client::connect(url, NoTls).expect("connect to PostgreSQL");
    c.batch_execute(&format!(
        "SET search_path = {schema}; SET deadlock_timeout = '{DEADLOCK_TIMEOUT_MS}ms'; \
         SET client_min_messages = error"
    ))
    .expect("session settings");
    c
}

/// Runs `case` on the server at `url`.
pub fn run(case: &Case, url: &str) -> Trace {
    let schema = format!(
        "conf_{}_{}",
        std::process::id(),
        SCHEMAS.fetch_add(1, Ordering::Relaxed)
    );
    let mut monitor = Client::connect(url, NoTls).expect("connect to PostgreSQL");
    monitor
        .batch_execute(&format!(
            "SET client_min_messages = error; DROP SCHEMA IF EXISTS {schema} CASCADE; \
             CREATE SCHEMA {schema}"
        ))
        .expect("create the case's schema");
    let (done_tx, done) = mpsc::channel();
    let mut sessions = Vec::new();
    let mut threads = Vec::new();
    for s in 0..case.sessions {
        let mut client = connect(url, &schema);
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .expect("backend pid")
            .get(0);
        let (tx, rx) = mpsc::channel::<(usize, String)>();
        let done_tx = done_tx.clone();
        threads.push(thread::spawn(move || {
            for (index, sql) in rx {
                let a = simple(&mut client, &sql, is_ordered(&sql));
                if done_tx.send((s, index, a)).is_err() {
                    break;
                }
            }
        }));
        sessions.push(Session { pid, tx });
    }
    let mut run = Run {
        sessions,
        done,
        waiting: vec![false; case.sessions],
        monitor,
    };
    let mut trace = Trace::default();
    for sql in &case.setup {
        let t = run.step(0, usize::MAX, sql);
        trace
            .setup
            .extend(t.finished.into_iter().map(|(_, _, a)| a));
    }
    for (i, step) in case.steps.iter().enumerate() {
        if run.waiting[step.session] {
            trace.steps.push(StepTrace {
                sent: false,
                finished: Vec::new(),
                waiting: (0..case.sessions).filter(|&s| run.waiting[s]).collect(),
            });
            continue;
        }
        trace.steps.push(run.step(step.session, i, &step.sql));
    }
    // Every session ends with ROLLBACK, a waiting one once the others' release it.
    let mut left: Vec<usize> = (0..case.sessions).collect();
    for _round in 0..=case.sessions {
        let mut still = Vec::new();
        for s in left {
            if run.waiting[s] {
                still.push(s);
            } else {
                trace.finish.push(run.step(s, usize::MAX, "ROLLBACK"));
            }
        }
        left = still;
    }
    for table in &case.tables {
        let t = run.step(0, usize::MAX, &format!("SELECT * FROM {table}"));
        trace
            .tables
            .extend(t.finished.into_iter().map(|(_, _, a)| a));
    }
    // Closing the senders ends the threads; a session still blocked (a divergence
    // elsewhere) is terminated so that its thread returns.
    for s in 0..case.sessions {
        if run.waiting[s] {
            let pid = run.sessions[s].pid;
            let _ = run
                .monitor
                .execute("SELECT pg_terminate_backend($1)", &[&pid]);
        }
    }
    let Run {
        sessions,
        mut monitor,
        ..
    } = run;
    drop(sessions);
    for t in threads {
        let _ = t.join();
    }
    let _ = monitor.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
    trace
}
