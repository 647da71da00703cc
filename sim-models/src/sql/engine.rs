//! The database as a pure state machine: sessions, transactions, snapshots, commit and
//! abort, lock waits, deadlock checks, durability and crash recovery. No async, no network,
//! no clock of its own (the shell tells it the time with [`Engine::set_now`]).
//!
//! The protocol the shell follows for each statement of a session:
//! 1. [`Engine::submit`] returns [`Submit::Done`] with the result, or [`Submit::Blocked`]
//!    when the statement waits for another transaction (a row lock, or an in-progress
//!    insert of the same key). A blocked statement is re-run by the engine itself, with
//!    the same statement snapshot, when a transaction it waits for ends; its result then
//!    appears in [`Engine::take_completions`].
//! 2. While blocked, the shell may call [`Engine::check_deadlock`] (after
//!    `deadlock_timeout`) and [`Engine::cancel`] (lock or statement timeout).
//! 3. After a successful result (and any injected delay, during which locks stay held), the
//!    shell calls [`Engine::finish`], which commits the implicit transaction of a
//!    statement run outside `BEGIN`. Its error, if any, becomes the statement's result.
//!
//! After every call, the shell drains [`Engine::take_completions`] and delivers each
//! result to the session waiting for it, and [`Engine::take_reblocked`] to restart the
//! timers of waits that began anew.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

use serde::Serialize;
use sim_runtime::time::{Duration, Instant};

use super::calls::{Calls, Drawn};
use super::config::Config;
use super::error::SqlError;
use super::expr::{Expr, Func, Scope};
use super::locks::{in_cycle, LockTable, RowKey};
use super::mvcc::{ForeignKeyRef, RowId, Snapshot, Table, Xid};
use super::row::Row;
use super::schema::{ColumnDefault, ForeignKey, IndexDef, TableSchema, UniqueConstraint};
use super::ssi::Ssi;
use super::stmt::{CommandTag, IsolationLevel, Statement, StmtResult};
use super::value::Value;

#[path = "engine_commands.rs"]
mod commands;

/// A session (one client connection) of the engine.
pub type SessionId = u64;

/// The immediate outcome of [`Engine::submit`].
#[derive(Clone, Debug, PartialEq)]
pub enum Submit {
    Done(Result<StmtResult, SqlError>),
    /// The statement waits for these transactions (one of them to end); its result will
    /// be a completion.
    Blocked {
        waiting_for: BTreeSet<Xid>,
    },
}

/// The result of a statement that had been blocked.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    pub session: SessionId,
    pub result: Result<StmtResult, SqlError>,
}

/// Per-session settings (`SET`).
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub statement_timeout: Option<Duration>,
    pub lock_timeout: Option<Duration>,
    pub default_isolation: IsolationLevel,
}

/// Where a blocked statement stands: when its current wait began (each new wait restarts
/// `lock_timeout` and `deadlock_timeout`, as in PostgreSQL) and whether the deadlock check
/// of this wait ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitState {
    pub since: Instant,
    pub epoch: u64,
    pub deadlock_checked: bool,
}

/// What a crash took away.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CrashReport {
    /// Transactions running at the crash, rolled back.
    pub rolled_back: Vec<Xid>,
    /// Transactions whose COMMIT had been acknowledged but whose WAL was not yet flushed
    /// (only with `synchronous_commit = off`), rolled back.
    pub lost_commits: Vec<Xid>,
}

/// Counters for reports and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub commits: u64,
    pub aborts: u64,
    pub serialization_failures: u64,
    pub deadlocks: u64,
    pub lock_waits: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    /// No transaction block; statements run in implicit transactions.
    Idle,
    /// Between BEGIN and COMMIT/ROLLBACK.
    Explicit,
    /// A statement of the block failed; everything but COMMIT/ROLLBACK is refused.
    Failed,
}

#[derive(Clone, Debug)]
pub(super) struct Pending {
    pub(super) stmt: Statement,
    pub(super) snapshot: Snapshot,
    /// The sequence values the statement drew before it waited, for its re-run.
    pub(super) drawn: Vec<Drawn>,
    pub(super) on: BTreeSet<Xid>,
    pub(super) wait: WaitState,
}

#[derive(Clone, Debug)]
struct Session {
    block: Block,
    txn: Option<Xid>,
    settings: Settings,
    pending: Option<Pending>,
    /// A data statement ran and awaits `finish`.
    unfinished: bool,
}

/// One write, to undo on abort (or on a crash before the commit was durable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Undo {
    Insert(usize, RowId),
    Update(usize, RowId),
    Delete(usize, RowId),
}

#[derive(Clone, Debug)]
pub(super) struct Txn {
    pub(super) isolation: IsolationLevel,
    pub(super) snapshot: Option<Snapshot>,
    pub(super) undo: Vec<Undo>,
    pub(super) locks: Vec<RowKey>,
    /// When it began: what `now()` answers all along, as in PostgreSQL.
    pub(super) start: Instant,
    /// The SAVEPOINTs of its block, oldest first.
    savepoints: Vec<SavepointMark>,
    implicit: bool,
}

/// A SAVEPOINT: how much of the undo log and of the lock list predate it.
#[derive(Clone, Debug)]
struct SavepointMark {
    name: String,
    undo: usize,
    locks: usize,
}

#[derive(Clone, Debug)]
struct Unflushed {
    xid: Xid,
    undo: Vec<Undo>,
}

/// What a statement execution needs to know about its transaction.
#[derive(Clone, Debug)]
pub(crate) struct Ctx {
    pub(super) xid: Xid,
    pub(super) iso: IsolationLevel,
    pub(super) snap: Snapshot,
    /// The transaction's start (`now()`).
    pub(super) now: Instant,
    /// The session's sequence functions.
    pub(super) calls: Calls,
}

/// Why a statement stopped before producing a result.
#[derive(Clone, Debug)]
pub(super) enum Stop {
    Block(BTreeSet<Xid>),
    Fail(SqlError),
}

impl From<SqlError> for Stop {
    fn from(e: SqlError) -> Self {
        Stop::Fail(e)
    }
}

pub struct Engine {
    pub(super) tables: Vec<Table>,
    table_ids: BTreeMap<String, usize>,
    pub(super) txns: BTreeMap<Xid, Txn>,
    pub(super) locks: LockTable,
    pub(super) ssi: Ssi,
    next_xid: Xid,
    active_cache: Option<Rc<BTreeSet<Xid>>>,
    commit_seq: u64,
    unflushed: VecDeque<Unflushed>,
    unflushed_xids: BTreeSet<Xid>,
    sessions: BTreeMap<SessionId, Session>,
    next_session: SessionId,
    waiters: BTreeMap<Xid, Vec<SessionId>>,
    wake_queue: VecDeque<Xid>,
    completions: Vec<Completion>,
    reblocked: Vec<SessionId>,
    vacuum_queue: BTreeSet<RowKey>,
    wait_epoch: u64,
    now: Instant,
    max_connections: usize,
    synchronous_commit: bool,
    vacuum_every_commits: u64,
    /// `Config::test_fault_late_snapshot`.
    late_snapshot_fault: bool,
    defaults: Settings,
    pub(super) stats: Stats,
    sequences: Rc<RefCell<super::sequence::Sequences>>,
    advisory: super::advisory::AdvisoryLocks,
    setting_frames: super::settings::SettingFrames,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("tables", &self.table_ids.keys().collect::<Vec<_>>())
            .field("running", &self.txns.keys().collect::<Vec<_>>())
            .field("sessions", &self.sessions.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Engine {
    /// A fresh database with the configured tables.
    ///
    /// # Panics
    /// If a configured table is invalid or declared twice: that is a bug in the setup.
    pub fn new(config: &Config) -> Self {
        let mut engine = Engine {
            tables: Vec::new(),
            table_ids: BTreeMap::new(),
            txns: BTreeMap::new(),
            locks: LockTable::default(),
            ssi: Ssi::default(),
            next_xid: 1,
            active_cache: None,
            commit_seq: 0,
            unflushed: VecDeque::new(),
            unflushed_xids: BTreeSet::new(),
            sessions: BTreeMap::new(),
            next_session: 1,
            waiters: BTreeMap::new(),
            wake_queue: VecDeque::new(),
            completions: Vec::new(),
            reblocked: Vec::new(),
            vacuum_queue: BTreeSet::new(),
            wait_epoch: 0,
            now: Instant::START,
            max_connections: config.max_connections,
            synchronous_commit: config.synchronous_commit,
            vacuum_every_commits: config.vacuum_every_commits.max(1),
            late_snapshot_fault: config.test_fault_late_snapshot,
            defaults: Settings {
                statement_timeout: config.statement_timeout,
                lock_timeout: config.lock_timeout,
                default_isolation: config.default_isolation,
            },
            stats: Stats::default(),
            sequences: Default::default(),
            advisory: Default::default(),
            setting_frames: Default::default(),
        };
        for t in &config.tables {
            if let Err(e) = engine.create_table(t.clone(), false) {
                panic!("invalid table {} in the sql Config: {e}", t.name);
            }
        }
        engine
    }

    /// The shell's clock, used to stamp lock waits.
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    /// Switches `synchronous_commit` (server-wide here).
    pub fn set_synchronous_commit(&mut self, on: bool) {
        self.synchronous_commit = on;
        if on {
            self.flush_wal();
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Transactions running now.
    pub fn running_transactions(&self) -> usize {
        self.txns.len()
    }

    /// Opens a session, or refuses it with 53300 when `max_connections` are open.
    pub fn open_session(&mut self) -> Result<SessionId, SqlError> {
        if self.sessions.len() >= self.max_connections {
            return Err(SqlError::TooManyConnections);
        }
        let id = self.next_session;
        self.next_session += 1;
        self.sessions.insert(
            id,
            Session {
                block: Block::Idle,
                txn: None,
                settings: self.defaults.clone(),
                pending: None,
                unfinished: false,
            },
        );
        Ok(id)
    }

    /// Closes a session (the client went away): its transaction is rolled back.
    pub fn close_session(&mut self, s: SessionId) {
        self.drop_pending(s);
        if let Some(sess) = self.sessions.remove(&s) {
            if let Some(x) = sess.txn {
                self.abort_txn(x);
            }
        }
        self.commands_end_session(s);
        self.drain_wakes();
    }

    /// Closes every session, rolling back their transactions (the database stops
    /// accepting work, as on a fast shutdown). Durable state is kept.
    pub fn terminate_all_sessions(&mut self) {
        let all: Vec<SessionId> = self.sessions.keys().copied().collect();
        for s in all {
            self.close_session(s);
        }
        self.completions.clear();
        self.reblocked.clear();
    }

    pub fn settings(&self, s: SessionId) -> Option<&Settings> {
        self.sessions.get(&s).map(|x| &x.settings)
    }

    /// The transaction session `s` is in, if any.
    pub fn transaction_of(&self, s: SessionId) -> Option<Xid> {
        self.sessions.get(&s)?.txn
    }

    pub fn wait_state(&self, s: SessionId) -> Option<WaitState> {
        self.sessions.get(&s)?.pending.as_ref().map(|p| p.wait)
    }

    /// Results of blocked statements that finished since the last call.
    pub fn take_completions(&mut self) -> Vec<Completion> {
        std::mem::take(&mut self.completions)
    }

    /// Sessions whose blocked statement was re-run and blocked again, on a new wait (whose
    /// `lock_timeout` and deadlock check start afresh) since the last call.
    pub fn take_reblocked(&mut self) -> Vec<SessionId> {
        std::mem::take(&mut self.reblocked)
    }

    /// Runs one statement of session `s`. The engine reads the statement, and keeps a copy
    /// only if it blocks (to re-run it), so the shell still has it to trace.
    ///
    /// # Panics
    /// If the session still has a statement in flight: the shell must wait for it.
    pub fn submit(&mut self, s: SessionId, stmt: &Statement) -> Submit {
        let Some(sess) = self.sessions.get(&s) else {
            return Submit::Done(Err(SqlError::AdminShutdown));
        };
        assert!(
            sess.pending.is_none() && !sess.unfinished,
            "session {s} sent a statement while one was in flight"
        );
        let out = self.submit_inner(s, stmt);
        // Any error inside a transaction block aborts the transaction, as in PostgreSQL.
        if matches!(out, Submit::Done(Err(_)))
            && self
                .sessions
                .get(&s)
                .is_some_and(|x| x.block == Block::Explicit)
        {
            self.fail_statement(s);
        }
        self.drain_wakes();
        out
    }

    fn submit_inner(&mut self, s: SessionId, stmt: &Statement) -> Submit {
        let done = |tag| Submit::Done(Ok(StmtResult::tag(tag)));
        let sess = self.sessions.get_mut(&s).expect("checked by submit");
        match stmt {
            Statement::Invalid(e) => Submit::Done(Err(
                if sess.block == Block::Failed && !matches!(**e, SqlError::SyntaxError { .. }) {
                    SqlError::InFailedTransaction
                } else {
                    (**e).clone()
                },
            )),
            Statement::Begin(iso) => match sess.block {
                Block::Idle => {
                    sess.block = Block::Explicit;
                    let iso = iso.unwrap_or(sess.settings.default_isolation);
                    self.begin_txn(s, iso, false);
                    done(CommandTag::Begin)
                }
                // PostgreSQL warns "there is already a transaction in progress".
                Block::Explicit => done(CommandTag::Begin),
                Block::Failed => Submit::Done(Err(SqlError::InFailedTransaction)),
            },
            Statement::Commit => match sess.block {
                // PostgreSQL warns "there is no transaction in progress".
                Block::Idle => done(CommandTag::Commit),
                Block::Explicit => {
                    sess.block = Block::Idle;
                    let xid = sess.txn.take();
                    match xid.map(|x| self.commit_txn(x)) {
                        Some(Err(e)) => Submit::Done(Err(e)),
                        _ => done(CommandTag::Commit),
                    }
                }
                Block::Failed => {
                    sess.block = Block::Idle;
                    // Kept when it had savepoints (see `fail_statement`).
                    if let Some(x) = sess.txn.take() {
                        self.abort_txn(x);
                    }
                    done(CommandTag::Rollback)
                }
            },
            Statement::Rollback => {
                let xid = sess.txn.take();
                sess.block = Block::Idle;
                if let Some(x) = xid {
                    self.abort_txn(x);
                }
                done(CommandTag::Rollback)
            }
            Statement::Set(setting) => {
                if sess.block == Block::Failed {
                    return Submit::Done(Err(SqlError::InFailedTransaction));
                }
                self.set_setting(s, setting, false);
                done(CommandTag::Set)
            }
            Statement::Command(c) if !c.is_data() => self.submit_command(s, c),
            Statement::CreateTable {
                schema,
                if_not_exists,
            } => {
                if sess.block != Block::Idle {
                    return Submit::Done(Err(SqlError::ActiveTransaction {
                        statement: "CREATE TABLE".into(),
                    }));
                }
                Submit::Done(
                    self.create_table(schema.clone(), *if_not_exists)
                        .map(|_| StmtResult::tag(CommandTag::CreateTable)),
                )
            }
            Statement::CreateIndex {
                name,
                table,
                columns,
                unique,
                if_not_exists,
            } => {
                if sess.block != Block::Idle {
                    return Submit::Done(Err(SqlError::ActiveTransaction {
                        statement: "CREATE INDEX".into(),
                    }));
                }
                Submit::Done(
                    self.create_index(name, table, columns, *unique, *if_not_exists)
                        .map(|_| StmtResult::tag(CommandTag::CreateIndex)),
                )
            }
            // A failed block (whose transaction may be gone already) answers 25P02 first.
            Statement::Savepoint(name) => match (sess.block, sess.txn) {
                (Block::Failed, _) => Submit::Done(Err(SqlError::InFailedTransaction)),
                (Block::Idle, _) | (_, None) => {
                    Submit::Done(Err(SqlError::NoActiveTransaction("SAVEPOINT".into())))
                }
                (Block::Explicit, Some(x)) => {
                    let t = self.txns.get_mut(&x).expect("the block's transaction");
                    t.savepoints.push(SavepointMark {
                        name: name.clone(),
                        undo: t.undo.len(),
                        locks: t.locks.len(),
                    });
                    done(CommandTag::Savepoint)
                }
            },
            Statement::RollbackToSavepoint(name) => {
                if sess.block == Block::Idle {
                    return Submit::Done(Err(SqlError::NoActiveTransaction(
                        "ROLLBACK TO SAVEPOINT".into(),
                    )));
                }
                let found = sess.txn.and_then(|x| {
                    let t = self.txns.get_mut(&x)?;
                    let i = t.savepoints.iter().rposition(|p| p.name == *name)?;
                    // The savepoint stays; those after it go.
                    t.savepoints.truncate(i + 1);
                    Some((x, t.savepoints[i].clone()))
                });
                let Some((x, mark)) = found else {
                    return Submit::Done(Err(SqlError::UndefinedSavepoint(name.clone())));
                };
                sess.block = Block::Explicit;
                self.rollback_to(x, mark.undo, mark.locks);
                done(CommandTag::Rollback)
            }
            Statement::ReleaseSavepoint(name) => match (sess.block, sess.txn) {
                (Block::Failed, _) => Submit::Done(Err(SqlError::InFailedTransaction)),
                (Block::Idle, _) | (_, None) => Submit::Done(Err(SqlError::NoActiveTransaction(
                    "RELEASE SAVEPOINT".into(),
                ))),
                (Block::Explicit, Some(x)) => {
                    let t = self.txns.get_mut(&x).expect("the block's transaction");
                    match t.savepoints.iter().rposition(|p| p.name == *name) {
                        Some(i) => {
                            // It and every later one; their writes and locks stay.
                            t.savepoints.truncate(i);
                            done(CommandTag::Release)
                        }
                        None => Submit::Done(Err(SqlError::UndefinedSavepoint(name.clone()))),
                    }
                }
            },
            data => {
                if sess.block == Block::Failed {
                    return Submit::Done(Err(SqlError::InFailedTransaction));
                }
                let xid = match sess.txn {
                    Some(x) => x,
                    None => {
                        let iso = sess.settings.default_isolation;
                        self.begin_txn(s, iso, true)
                    }
                };
                let snap = self.statement_snapshot(xid);
                match self.run(s, xid, Cow::Borrowed(data), snap, Vec::new()) {
                    Some(r) => Submit::Done(r),
                    None => Submit::Blocked {
                        waiting_for: self.sessions[&s]
                            .pending
                            .as_ref()
                            .map(|p| p.on.clone())
                            .unwrap_or_default(),
                    },
                }
            }
        }
    }

    /// Ends the statement of `s` that produced a result: commits its implicit transaction.
    pub fn finish(&mut self, s: SessionId) -> Result<(), SqlError> {
        let Some(sess) = self.sessions.get_mut(&s) else {
            return Err(SqlError::AdminShutdown);
        };
        if !std::mem::take(&mut sess.unfinished) {
            return Ok(());
        }
        let implicit = sess
            .txn
            .is_some_and(|x| self.txns.get(&x).is_some_and(|t| t.implicit));
        if !implicit {
            return Ok(());
        }
        let xid = sess.txn.take().expect("implicit transaction present");
        let r = self.commit_txn(xid);
        self.drain_wakes();
        r
    }

    /// Cancels the statement in flight of `s` (blocked, or done but not finished), as a
    /// timeout does: the transaction is rolled back (the shell reports the error, 55P03 or
    /// 57014). Returns false if there was nothing to cancel.
    pub fn cancel(&mut self, s: SessionId) -> bool {
        let Some(sess) = self.sessions.get(&s) else {
            return false;
        };
        if sess.pending.is_none() && !sess.unfinished {
            return false;
        }
        self.drop_pending(s);
        self.fail_statement(s);
        self.drain_wakes();
        true
    }

    /// The deadlock check a waiter runs after `deadlock_timeout`: if its transaction is on
    /// a cycle of the wait-for graph, its statement fails with 40P01 (PostgreSQL aborts the
    /// transaction that detects the deadlock). Returns whether it did.
    pub fn check_deadlock(&mut self, s: SessionId) -> bool {
        let Some(sess) = self.sessions.get_mut(&s) else {
            return false;
        };
        let (Some(p), Some(me)) = (sess.pending.as_mut(), sess.txn) else {
            return false;
        };
        p.wait.deadlock_checked = true;
        let graph: BTreeMap<Xid, BTreeSet<Xid>> = self
            .sessions
            .values()
            .filter_map(|x| Some((x.txn?, x.pending.as_ref()?.on.clone())))
            .collect();
        let mut graph = graph;
        self.advisory_edges(&mut graph);
        if !in_cycle(&graph, me) {
            return false;
        }
        self.stats.deadlocks += 1;
        self.cancel(s)
    }

    /// Flushes the WAL: every acknowledged commit becomes durable. Returns how many
    /// commits this made durable.
    pub fn flush_wal(&mut self) -> usize {
        let n = self.unflushed.len();
        self.unflushed.clear();
        self.unflushed_xids.clear();
        n
    }

    /// Commits acknowledged but not yet durable.
    pub fn unflushed_commits(&self) -> usize {
        self.unflushed.len()
    }

    /// A crash and the recovery after it: all sessions are gone, running transactions are
    /// rolled back, and so are commits whose WAL was not flushed. What remains is exactly
    /// the durable committed state.
    pub fn crash(&mut self) -> CrashReport {
        let mut report = CrashReport::default();
        // Running transactions never wrote the same row (writes hold row locks until the
        // end), so their order does not matter; newest first mirrors undo order anyway.
        let running: Vec<Xid> = self.txns.keys().rev().copied().collect();
        for x in running {
            if let Some(t) = self.txns.remove(&x) {
                self.undo_writes(&t.undo);
                report.rolled_back.push(x);
            }
        }
        // Then unflushed commits, newest first: a later commit may have replaced a version
        // an earlier one created.
        while let Some(u) = self.unflushed.pop_back() {
            self.undo_writes(&u.undo);
            report.lost_commits.push(u.xid);
        }
        report.lost_commits.reverse();
        self.unflushed_xids.clear();
        self.locks.clear();
        self.ssi.clear();
        self.commands_crash();
        self.sessions.clear();
        self.waiters.clear();
        self.wake_queue.clear();
        self.completions.clear();
        self.reblocked.clear();
        self.active_cache = None;
        report
    }

    /// The rows of `table` as a new transaction would see them now (for tests and
    /// checkers; not a session operation).
    pub fn committed_rows(&self, table: &str) -> Result<Vec<Row>, SqlError> {
        let t = self.table_id(table)?;
        let table = &self.tables[t];
        let snap = Snapshot {
            xmax: self.next_xid,
            active: Rc::new(self.txns.keys().copied().collect()),
        };
        Ok(table
            .chains
            .keys()
            .filter_map(|&r| {
                let vi = table.visible(r, Xid::MAX, &snap)?;
                Some(table.row(table.chains[&r][vi].tuple.clone()))
            })
            .collect())
    }

    /// Stored row versions of `table`, dead ones included (to observe vacuum).
    pub fn version_count(&self, table: &str) -> Result<usize, SqlError> {
        Ok(self.tables[self.table_id(table)?].version_count())
    }

    pub(super) fn table_id(&self, name: &str) -> Result<usize, SqlError> {
        self.table_ids
            .get(name)
            .copied()
            .ok_or_else(|| SqlError::UndefinedTable(name.to_owned()))
    }

    /// Whether a table, index or constraint (whose index PostgreSQL names so) is called
    /// `name`: they share one namespace.
    fn relation_exists(&self, name: &str) -> bool {
        self.sequences.borrow().exists(name) || self.table_or_index_exists(name)
    }

    fn table_or_index_exists(&self, name: &str) -> bool {
        self.table_ids.contains_key(name)
            || self.tables.iter().any(|t| {
                t.indexes.iter().any(|i| i.name == name)
                    || t.schema.indexes.iter().any(|i| i.name == name)
            })
    }

    fn create_table(
        &mut self,
        mut schema: TableSchema,
        if_not_exists: bool,
    ) -> Result<(), SqlError> {
        if self.relation_exists(&schema.name) {
            return if if_not_exists {
                Ok(())
            } else {
                Err(SqlError::DuplicateTable(schema.name))
            };
        }
        schema.validate()?;
        // CHECK expressions, written as they are evaluated (plain column names).
        let checks = {
            let scope = Scope::single(&schema.name, &schema);
            schema
                .checks
                .iter()
                .map(|c| {
                    c.expr.no_agg("check constraints")?;
                    c.expr.bind(&scope, None)
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        for (c, e) in schema.checks.iter_mut().zip(checks) {
            c.expr = e;
        }
        let me = self.tables.len();
        let fks = schema
            .foreign_keys
            .iter()
            .map(|fk| self.resolve_foreign_key(me, &schema, fk))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, fk) in fks.iter().enumerate() {
            if fk.parent != me {
                self.tables[fk.parent].referenced_by.push((me, i));
            }
        }
        // A sequence a DEFAULT names must exist, as PostgreSQL reads its `regclass`
        // literal when it stores the default (42P01).
        for c in &schema.columns {
            if let Some(ColumnDefault::Expr(e)) = &c.default {
                e.visit(&mut |e| match e {
                    Expr::Func(Func::Nextval | Func::Currval | Func::Setval, args) => {
                        match args.first() {
                            Some(Expr::Lit(v)) => match super::calls::sequence_name(v) {
                                Some(n) if !self.sequences.borrow().exists(&n) => {
                                    Err(SqlError::UndefinedTable(n))
                                }
                                _ => Ok(()),
                            },
                            _ => Ok(()),
                        }
                    }
                    _ => Ok(()),
                })?;
            }
        }
        // Each serial or identity column's sequence, made last: nothing can fail after.
        let mut owned = Vec::new();
        for (i, c) in schema.columns.iter().enumerate() {
            if c.default.as_ref().is_some_and(|d| d.owns_sequence()) {
                let name =
                    self.sequences
                        .borrow_mut()
                        .create_owned(&schema.name, &c.name, |n| {
                            self.table_or_index_exists(n) || n == schema.name
                        })?;
                owned.push((i, name));
            }
        }
        self.table_ids.insert(schema.name.clone(), me);
        let mut table = Table::new(schema);
        for (i, name) in owned {
            table.sequences[i] = Some(name);
        }
        for (i, fk) in fks.iter().enumerate() {
            if fk.parent == me {
                table.referenced_by.push((me, i));
            }
        }
        table.foreign_keys = fks.into();
        self.tables.push(table);
        Ok(())
    }

    /// Checks a foreign key of `schema` (to become table `me`) and resolves it: the
    /// referenced table must exist (42P01) and the referenced columns be its primary key or
    /// one of its unique constraints (42830), of the same types (42804).
    fn resolve_foreign_key(
        &self,
        me: usize,
        schema: &TableSchema,
        fk: &ForeignKey,
    ) -> Result<ForeignKeyRef, SqlError> {
        let (parent, parent_schema) = if fk.table == schema.name {
            (me, schema)
        } else {
            let p = self.table_id(&fk.table)?;
            (p, &*self.tables[p].schema)
        };
        let ref_columns = if fk.ref_columns.is_empty() {
            &parent_schema.primary_key
        } else {
            &fk.ref_columns
        };
        if ref_columns.len() != fk.columns.len() {
            return Err(SqlError::InvalidForeignKey {
                message: "number of referencing and referenced columns for foreign key disagree"
                    .into(),
            });
        }
        let child: Vec<usize> = fk
            .columns
            .iter()
            .map(|c| schema.require_column(c))
            .collect::<Result<_, _>>()?;
        let referenced: Vec<usize> = ref_columns
            .iter()
            .map(|c| parent_schema.require_column(c))
            .collect::<Result<_, _>>()?;
        let no_unique = || SqlError::InvalidForeignKey {
            message: format!(
                "there is no unique constraint matching given keys for referenced table \"{}\"",
                parent_schema.name
            ),
        };
        let index_columns = parent_schema.unique_column_indexes();
        let parent_index = index_columns
            .iter()
            .position(|cols| {
                cols.len() == referenced.len() && cols.iter().all(|c| referenced.contains(c))
            })
            .ok_or_else(no_unique)?;
        // The child's columns in the order of the index's.
        let mut columns = Vec::with_capacity(child.len());
        for ic in &index_columns[parent_index] {
            let j = referenced
                .iter()
                .position(|r| r == ic)
                .ok_or_else(no_unique)?;
            let (c, p) = (&schema.columns[child[j]], &parent_schema.columns[*ic]);
            if c.ty != p.ty {
                return Err(SqlError::DatatypeMismatch {
                    detail: format!(
                        "foreign key constraint \"{}\" cannot be implemented: key columns \"{}\" \
                         and \"{}\" are of incompatible types: {} and {}",
                        fk.name, c.name, p.name, c.ty, p.ty
                    ),
                });
            }
            columns.push(child[j]);
        }
        Ok(ForeignKeyRef {
            name: fk.name.clone(),
            parent,
            parent_index,
            columns,
        })
    }

    /// `CREATE [UNIQUE] INDEX`: a unique one checks the rows there (those that are, or
    /// may become when a running transaction rolls back, a row's current version) and
    /// becomes a unique constraint; a plain one is only recorded.
    fn create_index(
        &mut self,
        name: &str,
        table: &str,
        columns: &[String],
        unique: bool,
        if_not_exists: bool,
    ) -> Result<(), SqlError> {
        let t = self.table_id(table)?;
        if self.relation_exists(name) {
            return if if_not_exists {
                Ok(())
            } else {
                Err(SqlError::DuplicateIndex(name.to_owned()))
            };
        }
        let cols: Vec<usize> = columns
            .iter()
            .map(|c| self.tables[t].schema.require_column(c))
            .collect::<Result<_, _>>()?;
        if !unique {
            let table = &mut self.tables[t];
            table.add_plain_index(name.to_owned(), cols);
            Rc::make_mut(&mut table.schema).indexes.push(IndexDef {
                name: name.to_owned(),
                columns: columns.to_vec(),
            });
            return Ok(());
        }
        let table = &self.tables[t];
        let mut seen: BTreeSet<Vec<Value>> = BTreeSet::new();
        for chain in table.chains.values() {
            let mut keys: Vec<Vec<Value>> = Vec::new();
            for v in chain {
                let current = v.xmax.is_none_or(|x| self.txns.contains_key(&x));
                if !current {
                    continue;
                }
                let key: Vec<Value> = cols.iter().map(|&c| v.tuple[c].clone()).collect();
                if !key.iter().any(Value::is_null) && !keys.contains(&key) {
                    keys.push(key);
                }
            }
            for key in keys {
                if seen.contains(&key) {
                    let vals: Vec<String> = key.iter().map(Value::to_string).collect();
                    return Err(SqlError::UniqueIndexViolated {
                        index: name.to_owned(),
                        key: format!("({})=({})", columns.join(", "), vals.join(", ")),
                    });
                }
                seen.insert(key);
            }
        }
        let table = &mut self.tables[t];
        table.add_unique_index(name.to_owned(), cols);
        Rc::make_mut(&mut table.schema)
            .unique
            .push(UniqueConstraint {
                name: name.to_owned(),
                columns: columns.to_vec(),
            });
        Ok(())
    }

    fn begin_txn(&mut self, s: SessionId, isolation: IsolationLevel, implicit: bool) -> Xid {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.txns.insert(
            xid,
            Txn {
                isolation,
                snapshot: None,
                undo: Vec::new(),
                locks: Vec::new(),
                start: self.now,
                savepoints: Vec::new(),
                implicit,
            },
        );
        self.active_cache = None;
        if let Some(sess) = self.sessions.get_mut(&s) {
            sess.txn = Some(xid);
        }
        xid
    }

    pub(super) fn take_snapshot(&mut self) -> Snapshot {
        let active = self
            .active_cache
            .get_or_insert_with(|| Rc::new(self.txns.keys().copied().collect()))
            .clone();
        Snapshot {
            xmax: self.next_xid,
            active,
        }
    }

    /// READ COMMITTED: a new snapshot per statement. REPEATABLE READ and SERIALIZABLE: the
    /// one taken at the transaction's first statement (not at BEGIN, as in PostgreSQL).
    fn statement_snapshot(&mut self, xid: Xid) -> Snapshot {
        let iso = self.txns[&xid].isolation;
        let late = self.late_snapshot_fault && iso == IsolationLevel::RepeatableRead;
        if !iso.uses_transaction_snapshot() || late {
            return self.take_snapshot();
        }
        if let Some(s) = &self.txns[&xid].snapshot {
            return s.clone();
        }
        let snap = self.take_snapshot();
        if iso == IsolationLevel::Serializable {
            self.ssi.register(xid, snap.clone());
        }
        if let Some(t) = self.txns.get_mut(&xid) {
            t.snapshot = Some(snap.clone());
        }
        snap
    }

    /// Executes (or re-executes) a data statement; `None` means it blocked and is parked.
    fn run(
        &mut self,
        s: SessionId,
        xid: Xid,
        stmt: Cow<'_, Statement>,
        snap: Snapshot,
        drawn: Vec<Drawn>,
    ) -> Option<Result<StmtResult, SqlError>> {
        let txn = &self.txns[&xid];
        let ctx = Ctx {
            xid,
            iso: txn.isolation,
            snap,
            now: txn.start,
            calls: Calls::new(self.sequences.clone(), s, drawn),
        };
        // A statement is atomic: if it blocks or fails, its own writes go (its locks
        // stay), so that a re-run starts from where it started.
        let mark = txn.undo.len();
        match self.exec(&ctx, &stmt) {
            Ok(r) => {
                if let Some(sess) = self.sessions.get_mut(&s) {
                    sess.unfinished = true;
                }
                Some(Ok(r))
            }
            Err(Stop::Block(on)) => {
                self.undo_since(xid, mark);
                let drawn = ctx.calls.drawn();
                self.park(s, stmt.into_owned(), ctx.snap, drawn, on);
                None
            }
            Err(Stop::Fail(e)) => {
                if matches!(e, SqlError::SerializationFailure { .. }) {
                    self.stats.serialization_failures += 1;
                }
                self.undo_since(xid, mark);
                self.fail_statement(s);
                Some(Err(e))
            }
        }
    }

    fn park(
        &mut self,
        s: SessionId,
        stmt: Statement,
        snapshot: Snapshot,
        drawn: Vec<Drawn>,
        on: BTreeSet<Xid>,
    ) {
        self.wait_epoch += 1;
        self.stats.lock_waits += 1;
        for x in &on {
            self.waiters.entry(*x).or_default().push(s);
        }
        self.reblocked.push(s);
        let wait = WaitState {
            since: self.now,
            epoch: self.wait_epoch,
            deadlock_checked: false,
        };
        if let Some(sess) = self.sessions.get_mut(&s) {
            sess.pending = Some(Pending {
                stmt,
                snapshot,
                drawn,
                on,
                wait,
            });
        }
    }

    /// Removes the blocked statement of `s` from every wait list.
    fn drop_pending(&mut self, s: SessionId) -> Option<Pending> {
        let p = self.sessions.get_mut(&s)?.pending.take()?;
        for x in &p.on {
            if let Some(list) = self.waiters.get_mut(x) {
                list.retain(|w| *w != s);
                if list.is_empty() {
                    self.waiters.remove(x);
                }
            }
        }
        Some(p)
    }

    /// A statement failed: PostgreSQL aborts the transaction at once (releasing its locks);
    /// an explicit block then refuses statements until ROLLBACK. With savepoints, only the
    /// subtransaction since the latest one is aborted at once (its writes undone, its row
    /// locks released, as PostgreSQL's AbortSubTransaction does): the rest of the
    /// transaction waits, failed, for ROLLBACK or ROLLBACK TO SAVEPOINT.
    fn fail_statement(&mut self, s: SessionId) {
        let Some(sess) = self.sessions.get_mut(&s) else {
            return;
        };
        sess.unfinished = false;
        let latest = sess
            .txn
            .filter(|_| sess.block != Block::Idle)
            .and_then(|x| Some((x, self.txns.get(&x)?.savepoints.last()?.clone())));
        if let Some((x, mark)) = latest {
            sess.block = Block::Failed;
            self.rollback_to(x, mark.undo, mark.locks);
            return;
        }
        let xid = sess.txn.take();
        if sess.block == Block::Explicit {
            sess.block = Block::Failed;
        }
        if let Some(x) = xid {
            self.abort_txn(x);
        }
    }

    fn commit_txn(&mut self, xid: Xid) -> Result<(), SqlError> {
        if self.ssi.pre_commit(xid).is_err() {
            self.stats.serialization_failures += 1;
            self.abort_txn(xid);
            return Err(SqlError::rw_dependencies());
        }
        let Some(txn) = self.txns.remove(&xid) else {
            return Ok(());
        };
        self.active_cache = None;
        for k in &txn.locks {
            self.locks.release(*k, xid);
        }
        self.commit_seq += 1;
        self.ssi.on_commit(xid, self.commit_seq);
        self.commands_end_transaction(xid, true);
        if !txn.undo.is_empty() {
            for u in &txn.undo {
                if let Undo::Update(t, r) | Undo::Delete(t, r) = *u {
                    self.vacuum_queue.insert((t, r));
                }
            }
            if self.synchronous_commit {
                // Flushing our commit record flushes every earlier record too.
                self.flush_wal();
            } else {
                self.unflushed_xids.insert(xid);
                self.unflushed.push_back(Unflushed {
                    xid,
                    undo: txn.undo,
                });
            }
        }
        self.stats.commits += 1;
        self.wake_queue.push_back(xid);
        self.ssi.cleanup();
        if self.stats.commits % self.vacuum_every_commits == 0 {
            self.vacuum();
        }
        Ok(())
    }

    fn abort_txn(&mut self, xid: Xid) {
        let Some(txn) = self.txns.remove(&xid) else {
            return;
        };
        self.active_cache = None;
        self.undo_writes(&txn.undo);
        for k in &txn.locks {
            self.locks.release(*k, xid);
        }
        self.ssi.on_abort(xid);
        self.ssi.cleanup();
        self.commands_end_transaction(xid, false);
        self.stats.aborts += 1;
        self.wake_queue.push_back(xid);
    }

    /// Undoes the writes of `xid` after its first `mark` (a statement that blocked or
    /// failed), keeping its locks.
    fn undo_since(&mut self, xid: Xid, mark: usize) {
        let Some(t) = self.txns.get_mut(&xid) else {
            return;
        };
        if t.undo.len() > mark {
            let undone = t.undo.split_off(mark);
            self.undo_writes(&undone);
        }
    }

    /// Rolls `xid` back to a savepoint: undoes its writes after the first `undo` and
    /// releases the row locks it took after the first `locks`; statements waiting for it
    /// try again (what they waited for may be gone).
    fn rollback_to(&mut self, xid: Xid, undo: usize, locks: usize) {
        let Some(t) = self.txns.get_mut(&xid) else {
            return;
        };
        let undone = t.undo.split_off(undo.min(t.undo.len()));
        let released = t.locks.split_off(locks.min(t.locks.len()));
        self.undo_writes(&undone);
        for k in &released {
            self.locks.release(*k, xid);
        }
        if !undone.is_empty() || !released.is_empty() {
            self.wake_queue.push_back(xid);
        }
    }

    fn undo_writes(&mut self, undo: &[Undo]) {
        for u in undo.iter().rev() {
            match *u {
                Undo::Insert(t, r) => self.tables[t].undo_insert(r),
                Undo::Update(t, r) => self.tables[t].undo_update(r),
                Undo::Delete(t, r) => self.tables[t].undo_delete(r),
            }
        }
    }

    /// Re-runs, in the order they started waiting, the statements waiting for
    /// transactions that ended; their results become completions.
    fn drain_wakes(&mut self) {
        while let Some(x) = self.wake_queue.pop_front() {
            let list = self.waiters.remove(&x).unwrap_or_default();
            for s in list {
                let waiting = self
                    .sessions
                    .get(&s)
                    .and_then(|se| se.pending.as_ref())
                    .is_some_and(|p| p.on.contains(&x));
                if !waiting {
                    continue;
                }
                let Some(p) = self.drop_pending(s) else {
                    continue;
                };
                let Some(xid) = self.sessions.get(&s).and_then(|se| se.txn) else {
                    continue;
                };
                if let Some(result) = self.run(s, xid, Cow::Owned(p.stmt), p.snapshot, p.drawn) {
                    self.completions.push(Completion { session: s, result });
                }
            }
        }
    }

    /// Prunes row versions that no snapshot can see any more.
    fn vacuum(&mut self) {
        let mut horizon = self.next_xid;
        for (x, t) in &self.txns {
            horizon = horizon.min(*x);
            if let Some(s) = &t.snapshot {
                horizon = horizon.min(s.xmin());
            }
        }
        for sess in self.sessions.values() {
            if let Some(p) = &sess.pending {
                horizon = horizon.min(p.snapshot.xmin());
            }
        }
        let unflushed = &self.unflushed_xids;
        let tables = &mut self.tables;
        let queue = std::mem::take(&mut self.vacuum_queue);
        for (t, r) in queue {
            if tables[t].prune(r, |x| x < horizon && !unflushed.contains(&x)) {
                self.vacuum_queue.insert((t, r));
            }
        }
    }
}
