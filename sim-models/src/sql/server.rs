//! The async shell around the engine: a simulated node that accepts connections, runs
//! each session's statements through the engine, parks blocked statements until the
//! engine completes them, enforces the timeouts, injects slowness, and flushes the WAL.
//! Plus [`start`] and [`SqlServer`], the handle a test holds, with the fault verbs.
//!
//! The engine lives outside the node (it stands for the data directory *and* the
//! postmaster's memory). Whatever kills the node (the `crash` verb, a fault schedule's
//! `node.kill()`, a restart), the server's lifecycle hook runs the engine's `crash`,
//! which drops everything that was not durable, and emits the one `sql.crash` event; a
//! restarted node serves what is left.
//!
//! Timing of one statement: `statement_latency` before it runs; the `slow` fault before a
//! control statement (a slow COMMIT holds its locks) or after a data statement (a slow
//! query holds its locks and its connection); injected slow queries and `pg_sleep` after
//! the statement too. `statement_timeout` counts from arrival and covers lock waits and
//! those delays.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};

use futures::channel::mpsc;
use futures::StreamExt;
use sim_net::{Addr, ConnSender};
use sim_runtime::node::{self, Lifecycle, NodeId};
use sim_runtime::task::{self, JoinHandle};
use sim_runtime::time::{self, Duration, Instant};
use sim_runtime::{trace, SimRng};

use super::config::Config;
use super::engine::{CrashReport, Engine, SessionId, Stats, Submit};
use super::error::SqlError;
use super::events::{
    CrashEvent, Fault, FaultEvent, SessionChange, SessionEventRef, StmtEventRef, WalFlushEvent,
};
use super::protocol::{ClientMsg, ServerMsg};
use super::row::Row;
use super::stmt::{Statement, StmtResult};

type Reply = Result<StmtResult, SqlError>;

/// What a blocked statement's task is told.
enum Wake {
    Done(Reply),
    /// Re-run and blocked again: a new wait, with new timers.
    Reblocked,
}

/// An open connection: a way to tell it the server is going away, and its task.
type OpenConn = (ConnSender<ServerMsg>, JoinHandle<()>);

/// State shared by the handle and the node's incarnations; survives crashes.
struct Shared {
    name: String,
    config: Config,
    node: Cell<Option<NodeId>>,
    engine: RefCell<Engine>,
    /// Blocked statements waiting for their completion, by session.
    waiters: RefCell<BTreeMap<SessionId, mpsc::UnboundedSender<Wake>>>,
    conns: RefCell<BTreeMap<SessionId, OpenConn>>,
    acceptor: RefCell<Option<JoinHandle<()>>>,
    slow: Cell<Option<Duration>>,
    refusing: Cell<bool>,
    /// The current incarnation has bound its port.
    listening: Cell<bool>,
    slow_rng: RefCell<SimRng>,
    last_crash: RefCell<Option<CrashReport>>,
}

impl Shared {
    fn node(&self) -> NodeId {
        self.node.get().expect("node set at start")
    }

    /// Delivers the results of statements the engine completed.
    fn dispatch(&self) {
        let (done, reblocked) = {
            let mut e = self.engine.borrow_mut();
            (e.take_completions(), e.take_reblocked())
        };
        let waiters = self.waiters.borrow();
        for c in done {
            if let Some(tx) = waiters.get(&c.session) {
                let _ = tx.unbounded_send(Wake::Done(c.result));
            }
        }
        for s in reblocked {
            if let Some(tx) = waiters.get(&s) {
                let _ = tx.unbounded_send(Wake::Reblocked);
            }
        }
    }

    fn emit_fault(&self, fault: Fault) {
        trace::emit(&FaultEvent {
            server: self.name.clone(),
            fault,
        });
    }

    fn emit_session(&self, change: SessionChange) {
        trace::emit(&SessionEventRef {
            server: &self.name,
            change,
        });
    }

    /// What the node's death does, however it died: the engine loses what was not
    /// durable, sessions and waits are gone, and the one `sql.crash` event says what was
    /// lost.
    fn on_killed(&self) {
        self.listening.set(false);
        let report = self.engine.borrow_mut().crash();
        self.waiters.borrow_mut().clear();
        self.conns.borrow_mut().clear();
        trace::emit(&CrashEvent {
            server: self.name.clone(),
            rolled_back: report.rolled_back.clone(),
            lost_commits: report.lost_commits.clone(),
        });
        *self.last_crash.borrow_mut() = Some(report);
    }

    fn with_engine<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> R {
        let r = {
            let mut e = self.engine.borrow_mut();
            e.set_now(time::now());
            f(&mut e)
        };
        self.dispatch();
        r
    }
}

/// Closes the engine session when the connection task ends, however it ends.
struct SessionGuard {
    shared: Rc<Shared>,
    session: SessionId,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.shared.waiters.borrow_mut().remove(&self.session);
        self.shared.conns.borrow_mut().remove(&self.session);
        if let Ok(mut e) = self.shared.engine.try_borrow_mut() {
            e.close_session(self.session);
        }
        self.shared.dispatch();
    }
}

fn is_data(stmt: &Statement) -> bool {
    if let Statement::Command(c) = stmt {
        return c.is_data();
    }
    matches!(
        stmt,
        Statement::Select(_)
            | Statement::Insert(_)
            | Statement::Update(_)
            | Statement::Delete(_)
            | Statement::Count(_)
            | Statement::Sleep(_)
            | Statement::Compute(_)
    )
}

/// Runs one statement of `session` to its reply.
async fn run_statement(shared: &Rc<Shared>, session: SessionId, stmt: &Statement) -> (Reply, bool) {
    let start = time::now();
    let latency = shared.config.statement_latency;
    if !latency.is_zero() {
        time::sleep(latency).await;
    }
    let data = is_data(stmt);
    let Some(settings) = shared.engine.borrow().settings(session).cloned() else {
        return (Err(SqlError::AdminShutdown), false);
    };
    let deadline = settings
        .statement_timeout
        .filter(|_| data)
        .map(|d| start + d);
    let slow = shared.slow.get().unwrap_or(Duration::ZERO);
    if !data && !slow.is_zero() {
        time::sleep(slow).await;
    }
    let mut after = if data { slow } else { Duration::ZERO };
    if let Statement::Sleep(d) = stmt {
        after += *d;
    }
    let p = shared.config.slow_query_probability;
    if data && !p.is_never() && shared.slow_rng.borrow_mut().chance(p) {
        after += shared.config.slow_query_duration;
    }
    let step = shared.with_engine(|e| e.submit(session, stmt));
    let (result, waited) = match step {
        Submit::Done(r) => (r, false),
        Submit::Blocked { .. } => (wait_blocked(shared, session, deadline).await, true),
    };
    let result = match result {
        Ok(r) => {
            if !after.is_zero() {
                let wake = time::now() + after;
                match deadline {
                    Some(dl) if dl < wake => {
                        time::sleep_until(dl).await;
                        shared.with_engine(|e| e.cancel(session));
                        return (Err(SqlError::QueryCanceled), waited);
                    }
                    _ => time::sleep_until(wake).await,
                }
            }
            shared.with_engine(|e| e.finish(session)).map(|()| r)
        }
        Err(e) => Err(e),
    };
    (result, waited)
}

/// Waits for a blocked statement's completion, running the deadlock check after
/// `deadlock_timeout` and cancelling it on `lock_timeout` or `statement_timeout`. Each new
/// wait (the statement re-ran and blocked again) restarts the lock timeout and the
/// deadlock check, as each lock wait does in PostgreSQL.
async fn wait_blocked(shared: &Rc<Shared>, session: SessionId, deadline: Option<Instant>) -> Reply {
    let (tx, mut rx) = mpsc::unbounded();
    shared.waiters.borrow_mut().insert(session, tx);
    let r = wait_loop(shared, session, deadline, &mut rx).await;
    shared.waiters.borrow_mut().remove(&session);
    r
}

async fn wait_loop(
    shared: &Rc<Shared>,
    session: SessionId,
    deadline: Option<Instant>,
    rx: &mut mpsc::UnboundedReceiver<Wake>,
) -> Reply {
    let lock_timeout = shared
        .engine
        .borrow()
        .settings(session)
        .and_then(|s| s.lock_timeout);
    let deadlock_timeout = shared.config.deadlock_timeout;
    loop {
        while let Ok(w) = rx.try_recv() {
            if let Wake::Done(r) = w {
                return r;
            }
        }
        let Some(ws) = shared.engine.borrow().wait_state(session) else {
            // Not waiting and no result: the session was ended under us.
            return Err(SqlError::AdminShutdown);
        };
        let lock_deadline = lock_timeout.map(|d| ws.since + d);
        let check_at = (!ws.deadlock_checked).then(|| ws.since + deadlock_timeout);
        let next = [deadline, lock_deadline, check_at]
            .into_iter()
            .flatten()
            .min();
        let woken = match next {
            Some(at) => time::timeout(at.duration_since(time::now()), rx.next())
                .await
                .ok(),
            None => Some(rx.next().await),
        };
        match woken {
            Some(Some(Wake::Done(r))) => return r,
            Some(Some(Wake::Reblocked)) => continue,
            Some(None) => return Err(SqlError::AdminShutdown),
            None => {
                let now = time::now();
                if deadline.is_some_and(|d| now >= d) {
                    shared.with_engine(|e| e.cancel(session));
                    return Err(SqlError::QueryCanceled);
                }
                if lock_deadline.is_some_and(|d| now >= d) {
                    shared.with_engine(|e| e.cancel(session));
                    return Err(SqlError::LockNotAvailable {
                        message: "canceling statement due to lock timeout".into(),
                    });
                }
                if check_at.is_some_and(|d| now >= d)
                    && shared.with_engine(|e| e.check_deadlock(session))
                {
                    return Err(SqlError::DeadlockDetected);
                }
            }
        }
    }
}

fn emit_stmt(
    shared: &Shared,
    session: SessionId,
    stmt: &Statement,
    reply: &Reply,
    waited: bool,
    start: Instant,
) {
    let (tag, affected, error) = match reply {
        Ok(r) => (Some(r.tag), r.affected, None),
        Err(e) => (None, 0, Some(e)),
    };
    trace::emit(&StmtEventRef {
        server: &shared.name,
        session,
        stmt,
        tag,
        affected,
        error,
        waited,
        duration_ns: time::now().duration_since(start).as_nanos() as u64,
    });
}

/// Serves one connection: one session, one statement at a time.
async fn serve_conn(
    shared: Rc<Shared>,
    mut conn: sim_net::Conn<ServerMsg, ClientMsg>,
    session: SessionId,
) {
    let _guard = SessionGuard {
        shared: shared.clone(),
        session,
    };
    if conn.send(ServerMsg::Ready { session }).is_err() {
        return;
    }
    while let Ok(msg) = conn.recv().await {
        match msg {
            ClientMsg::Query { id, stmt } => {
                let start = time::now();
                let (result, waited) = run_statement(&shared, session, &stmt).await;
                emit_stmt(&shared, session, &stmt, &result, waited, start);
                if conn.send(ServerMsg::Reply { id, result }).is_err() {
                    break;
                }
            }
            ClientMsg::Ping { id } => {
                if conn.send(ServerMsg::Pong { id }).is_err() {
                    break;
                }
            }
            ClientMsg::Terminate => break,
        }
    }
    shared.emit_session(SessionChange::Closed(session));
}

/// Accepts connections until the listener goes away.
async fn accept_loop(shared: Rc<Shared>) {
    // The node runs nothing but this server, and a killed or refusing server's listener
    // is gone before a new one binds: a taken port is a bug of this model.
    let mut listener = match sim_net::bind::<ClientMsg, ServerMsg>(shared.config.port) {
        Ok(l) => l,
        Err(e) => panic!(
            "sql server {}: cannot listen on port {}: {e}",
            shared.name, shared.config.port
        ),
    };
    shared.listening.set(true);
    while let Ok(conn) = listener.accept().await {
        let opened = shared.with_engine(|e| e.open_session());
        match opened {
            Ok(session) => {
                shared.emit_session(SessionChange::Opened(session));
                let sender = conn.sender();
                let h = task::spawn_named("sql-session", serve_conn(shared.clone(), conn, session));
                shared.conns.borrow_mut().insert(session, (sender, h));
            }
            Err(e) => {
                shared.emit_session(SessionChange::Rejected(e.clone()));
                let _ = conn.send(ServerMsg::Rejected(e));
            }
        }
    }
}

/// The node's main task, re-run on every restart.
async fn node_main(shared: Rc<Shared>) {
    if !shared.refusing.get() {
        let h = task::spawn_named("sql-accept", accept_loop(shared.clone()));
        *shared.acceptor.borrow_mut() = Some(h);
    }
    if !shared.config.synchronous_commit {
        // The WAL writer: asynchronous commits become durable at its next round.
        loop {
            time::sleep(shared.config.wal_writer_delay).await;
            let n = shared.engine.borrow_mut().flush_wal();
            if n > 0 {
                trace::emit(&WalFlushEvent {
                    server: shared.name.clone(),
                    commits: n as u64,
                });
            }
        }
    }
}

/// The handle of a simulated database server: its address, fault verbs and inspection.
#[derive(Clone)]
pub struct SqlServer {
    shared: Rc<Shared>,
}

impl std::fmt::Debug for SqlServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlServer")
            .field("name", &self.shared.name)
            .finish()
    }
}

/// Starts a database on a new node called `name`.
///
/// # Panics
/// If a configured table is invalid (a bug in the test setup).
pub fn start(name: &str, config: Config) -> SqlServer {
    let shared = Rc::new(Shared {
        name: name.to_owned(),
        engine: RefCell::new(Engine::new(&config)),
        config,
        node: Cell::new(None),
        waiters: RefCell::new(BTreeMap::new()),
        conns: RefCell::new(BTreeMap::new()),
        acceptor: RefCell::new(None),
        slow: Cell::new(None),
        refusing: Cell::new(false),
        listening: Cell::new(false),
        slow_rng: RefCell::new(sim_runtime::rng(&format!("sql.slow.{name}"))),
        last_crash: RefCell::new(None),
    });
    let for_node = shared.clone();
    let id = node::node(name).build(move || node_main(for_node.clone()));
    shared.node.set(Some(id));
    let weak: Weak<Shared> = Rc::downgrade(&shared);
    node::on_lifecycle(move |n, event| {
        let Some(shared) = weak.upgrade() else { return };
        if n == shared.node() && event == Lifecycle::Killed {
            shared.on_killed();
        }
    });
    SqlServer { shared }
}

impl SqlServer {
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    pub fn node(&self) -> NodeId {
        self.shared.node()
    }

    pub fn addr(&self) -> Addr {
        Addr::new(self.node(), self.shared.config.port)
    }

    /// Waits until the server accepts connections (after `start`, `restart`, `accept`).
    pub async fn ready(&self) {
        while !self.shared.listening.get() {
            time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Whether the server accepts connections now.
    pub fn is_accepting(&self) -> bool {
        self.shared.listening.get()
    }

    /// Kills the node: sessions and uncommitted work are lost, and with
    /// `synchronous_commit = off` so are the commits since the last WAL flush. Exactly
    /// `self.node().kill()`: what the death does is the lifecycle hook's.
    pub fn crash(&self) {
        self.node().kill();
    }

    /// Starts the node again (killing it first if it is up; recovery ran at the death).
    pub fn restart(&self) {
        self.node().restart();
    }

    /// Freezes the node: connections stay open, nothing is answered.
    pub fn pause(&self) {
        self.node().pause();
    }

    pub fn resume(&self) {
        self.node().resume();
    }

    /// Every statement takes `d` more (holding its locks and connection).
    pub fn slow(&self, d: Duration) {
        self.shared.emit_fault(Fault::Slow {
            delay_ns: d.as_nanos() as u64,
        });
        self.shared.slow.set(Some(d));
    }

    pub fn fast(&self) {
        self.shared.emit_fault(Fault::Fast);
        self.shared.slow.set(None);
    }

    /// The database goes down while the node stays up: open sessions are terminated (57P01,
    /// their transactions rolled back) and new connections are refused. Committed data is
    /// kept (a clean shutdown).
    pub fn refuse(&self) {
        self.shared.emit_fault(Fault::Refuse);
        self.shared.refusing.set(true);
        self.shared.listening.set(false);
        if let Some(mut h) = self.shared.acceptor.borrow_mut().take() {
            h.abort();
        }
        let conns = std::mem::take(&mut *self.shared.conns.borrow_mut());
        for (_, (sender, mut h)) in conns {
            let _ = sender.send(ServerMsg::Terminated(SqlError::AdminShutdown));
            h.abort();
        }
        self.shared.waiters.borrow_mut().clear();
        self.shared.engine.borrow_mut().terminate_all_sessions();
        self.shared.engine.borrow_mut().flush_wal();
    }

    /// The database accepts connections again.
    pub fn accept(&self) {
        self.shared.emit_fault(Fault::Accept);
        if !self.shared.refusing.replace(false) || !self.node().is_alive() {
            return;
        }
        let shared = self.shared.clone();
        let h = node::spawn_on_node(self.node(), "sql-accept", accept_loop(shared));
        *self.shared.acceptor.borrow_mut() = Some(h);
    }

    /// The rows of `table` as a new transaction would see them (for checkers).
    pub fn committed_rows(&self, table: &str) -> Result<Vec<Row>, SqlError> {
        self.shared.engine.borrow().committed_rows(table)
    }

    pub fn stats(&self) -> Stats {
        self.shared.engine.borrow().stats().clone()
    }

    /// Open sessions.
    pub fn sessions(&self) -> usize {
        self.shared.engine.borrow().session_count()
    }

    /// What the last crash took away.
    pub fn last_crash(&self) -> Option<CrashReport> {
        self.shared.last_crash.borrow().clone()
    }

    /// Acknowledged commits not yet durable (`synchronous_commit = off`).
    pub fn unflushed_commits(&self) -> usize {
        self.shared.engine.borrow().unflushed_commits()
    }
}
