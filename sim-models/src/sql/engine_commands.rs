//! The engine's side of [`Command`]s: sequences, advisory locks and the transactional
//! session settings, on the state of [`super::sequence`], [`super::advisory`] and
//! [`super::settings`]. A child of `engine` so that it reaches the sessions and the wait
//! queues as the engine's own code does.

use std::collections::{BTreeMap, BTreeSet};

use super::{Block, Ctx, Engine, SessionId, Stop, Submit};
use crate::sql::advisory::{holder_xid, AdvisoryKey};
use crate::sql::command::{AdvisoryCall, CallFunc, Command};
use crate::sql::error::SqlError;
use crate::sql::expr::{Expr, Func};
use crate::sql::mvcc::Xid;
use crate::sql::row::Row;
use crate::sql::settings;
use crate::sql::stmt::{CommandTag, Setting, StmtResult};
use crate::sql::value::Value;

/// One row of one column: what `SELECT f(...)` and `SHOW` answer.
fn one_value(tag: CommandTag, column: String, v: Value) -> StmtResult {
    let mut row = Row::new();
    row.set(column, v);
    StmtResult::rows(tag, vec![row])
}

/// A function's arguments, which binding made literals.
fn literal_args(func: CallFunc, args: &[Expr]) -> Result<Vec<Value>, SqlError> {
    args.iter()
        .map(|a| match a {
            Expr::Lit(v) => Ok(v.clone()),
            other => Err(SqlError::FeatureNotSupported {
                feature: format!("{other} as an argument of {}", func.name()),
            }),
        })
        .collect()
}

fn no_such_function(func: CallFunc, args: &[Value]) -> SqlError {
    let types: Vec<&str> = args.iter().map(Value::type_name).collect();
    SqlError::UndefinedFunction {
        name: format!("{}({})", func.name(), types.join(", ")),
    }
}

fn advisory_key(func: CallFunc, args: &[Value]) -> Result<AdvisoryKey, SqlError> {
    let int = |v: i64| i32::try_from(v).ok();
    match args {
        [Value::Int(k)] => Ok(AdvisoryKey::Big(*k)),
        [Value::Int(a), Value::Int(b)] => match (int(*a), int(*b)) {
            (Some(a), Some(b)) => Ok(AdvisoryKey::Pair(a, b)),
            _ => Err(no_such_function(func, args)),
        },
        _ => Err(no_such_function(func, args)),
    }
}

/// `void`, as PostgreSQL's text protocol sends it.
fn void() -> Value {
    Value::Text(String::new())
}

impl Engine {
    /// A command that is no data statement: runs at once, outside the transaction
    /// machinery.
    pub(super) fn submit_command(&mut self, s: SessionId, c: &Command) -> Submit {
        Submit::Done(self.command_now(s, c))
    }

    fn command_now(&mut self, s: SessionId, c: &Command) -> Result<StmtResult, SqlError> {
        let block = self.sessions[&s].block;
        let ddl = |what: &str| {
            if block == Block::Idle {
                Ok(())
            } else {
                Err(SqlError::ActiveTransaction {
                    statement: what.into(),
                })
            }
        };
        if block == Block::Failed {
            return Err(SqlError::InFailedTransaction);
        }
        match c {
            Command::CreateSequence { def, if_not_exists } => {
                ddl("CREATE SEQUENCE")?;
                if self.relation_exists(&def.name) {
                    return if *if_not_exists {
                        Ok(StmtResult::tag(CommandTag::CreateSequence))
                    } else {
                        Err(SqlError::DuplicateTable(def.name.clone()))
                    };
                }
                self.sequences.borrow_mut().create(def)?;
                Ok(StmtResult::tag(CommandTag::CreateSequence))
            }
            Command::DropSequence { names, if_exists } => {
                ddl("DROP SEQUENCE")?;
                if let Some(missing) = names.iter().find(|n| !self.sequences.borrow().exists(n)) {
                    if !*if_exists {
                        return Err(SqlError::UndefinedTable(missing.clone()));
                    }
                }
                // All or none: a sequence a column needs stops the whole statement.
                let mut sequences = self.sequences.borrow_mut();
                for n in names {
                    sequences.check_droppable(n)?;
                }
                for n in names {
                    sequences.drop_sequence(n)?;
                }
                Ok(StmtResult::tag(CommandTag::DropSequence))
            }
            Command::SetLocal(setting) => {
                self.set_setting(s, setting, true);
                Ok(StmtResult::tag(CommandTag::Set))
            }
            Command::Reset(name) => {
                for setting in settings::reset(name.as_deref(), &self.defaults)? {
                    self.set_setting(s, &setting, false);
                }
                Ok(StmtResult::tag(CommandTag::Reset))
            }
            Command::Show(name) => {
                let sess = &self.sessions[&s];
                let running = sess
                    .txn
                    .and_then(|x| self.txns.get(&x))
                    .map(|t| t.isolation);
                let v = settings::show(name, &sess.settings, running)?;
                // PostgreSQL's tag is a bare `SHOW`, with no row count.
                let mut r = one_value(CommandTag::Show, name.clone(), Value::Text(v));
                r.affected = 0;
                Ok(r)
            }
            Command::Call { .. } => Err(SqlError::ActiveTransaction {
                statement: c.to_string(),
            }),
        }
    }

    /// `SET` (or `SET LOCAL`) for session `s`: inside a transaction block it is undone
    /// when the transaction rolls back (a local one also when it commits); a local one
    /// outside a block does nothing, as in PostgreSQL (which warns).
    pub(super) fn set_setting(&mut self, s: SessionId, setting: &Setting, local: bool) {
        let Some(sess) = self.sessions.get_mut(&s) else {
            return;
        };
        match sess.txn.filter(|_| sess.block != Block::Idle) {
            Some(x) => {
                self.setting_frames
                    .set_in_transaction(x, s, &mut sess.settings, setting, local)
            }
            None if local => {}
            None => settings::apply(&mut sess.settings, setting),
        }
    }

    /// Runs a function call of a data command inside transaction `ctx.xid`.
    pub(in crate::sql) fn exec_command(
        &mut self,
        ctx: &Ctx,
        c: &Command,
    ) -> Result<StmtResult, Stop> {
        let Command::Call { func, args } = c else {
            return Err(Stop::Fail(SqlError::ActiveTransaction {
                statement: c.to_string(),
            }));
        };
        let s = self
            .sessions
            .iter()
            .find(|(_, x)| x.txn == Some(ctx.xid))
            .map(|(id, _)| *id)
            .ok_or(SqlError::AdminShutdown)?;
        let func = *func;
        let args = literal_args(func, args)?;
        let sequence = |f: Func| -> Result<StmtResult, Stop> {
            let v = ctx.calls.call(f, &args)?;
            Ok(one_value(CommandTag::Select, func.name(), v))
        };
        match func {
            CallFunc::Nextval => sequence(Func::Nextval),
            CallFunc::Currval => sequence(Func::Currval),
            CallFunc::Setval => sequence(Func::Setval),
            CallFunc::Lastval => sequence(Func::Lastval),
            CallFunc::Advisory(call) => self.advisory(ctx, s, func, call, &args),
        }
    }

    fn advisory(
        &mut self,
        ctx: &Ctx,
        s: SessionId,
        func: CallFunc,
        call: AdvisoryCall,
        args: &[Value],
    ) -> Result<StmtResult, Stop> {
        let answer = |v: Value| Ok(one_value(CommandTag::Select, func.name(), v));
        match call {
            AdvisoryCall::UnlockAll => {
                if !args.is_empty() {
                    return Err(no_such_function(func, args).into());
                }
                if self.advisory.unlock_all(s) {
                    self.wake_queue.push_back(holder_xid(s));
                }
                answer(void())
            }
            AdvisoryCall::Unlock { shared } => {
                let key = advisory_key(func, args)?;
                let released = self.advisory.unlock(key, s, shared);
                if released {
                    self.wake_queue.push_back(holder_xid(s));
                }
                answer(Value::Bool(released))
            }
            AdvisoryCall::Lock {
                try_only,
                xact,
                shared,
            } => {
                let key = advisory_key(func, args)?;
                let holder = xact.then_some(ctx.xid);
                match self.advisory.acquire(key, s, holder, shared) {
                    Ok(()) if try_only => answer(Value::Bool(true)),
                    Ok(()) => answer(void()),
                    Err(_) if try_only => answer(Value::Bool(false)),
                    Err(holders) => Err(Stop::Block(holders.into_iter().map(holder_xid).collect())),
                }
            }
        }
    }

    /// Transaction `xid` ended: its `_xact_` advisory locks go and its session's settings
    /// become what the transaction's end leaves.
    pub(super) fn commands_end_transaction(&mut self, xid: Xid, committed: bool) {
        for s in self.advisory.end_transaction(xid) {
            self.wake_queue.push_back(holder_xid(s));
        }
        if let Some((s, after)) = self.setting_frames.end(xid, committed) {
            if let Some(sess) = self.sessions.get_mut(&s) {
                sess.settings = after;
            }
        }
    }

    /// Session `s` ended (closed, or its connection died): its advisory locks go.
    pub(super) fn commands_end_session(&mut self, s: SessionId) {
        if !self.advisory.end_session(s).is_empty() {
            self.wake_queue.push_back(holder_xid(s));
        }
        self.sequences.borrow_mut().forget_session(s);
    }

    /// A crash: every session's state goes; sequences keep their values.
    pub(super) fn commands_crash(&mut self) {
        self.advisory.clear();
        self.sequences.borrow_mut().clear_sessions();
        self.setting_frames.clear();
    }

    /// Wait-for edges from the stand-in of each session that may hold advisory locks to
    /// its running transaction, so that a cycle through an advisory lock is found.
    pub(super) fn advisory_edges(&self, graph: &mut BTreeMap<Xid, BTreeSet<Xid>>) {
        if self.advisory.is_empty() {
            return;
        }
        for (id, sess) in &self.sessions {
            if let Some(x) = sess.txn {
                graph.entry(holder_xid(*id)).or_default().insert(x);
            }
        }
    }
}
