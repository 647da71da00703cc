//! Statements (the typed requests a session sends) and their results.
//!
//! There is no SQL parser: service code builds statements with small builders, and each
//! statement prints as the SQL it stands for, which is what the `sql.stmt` trace shows.
//!
//! ```
//! use sim_models::sql::{col, Select, Update, Statement};
//! let s: Statement = Select::from("slots").filter(col("doctor").eq("house")).for_update().into();
//! assert_eq!(s.to_string(), "SELECT * FROM slots WHERE (doctor = 'house') FOR UPDATE");
//! let u: Statement = Update::table("accounts").set("balance", col("balance").minus(10)).key(1).into();
//! assert_eq!(u.to_string(), "UPDATE accounts SET balance = (balance - 10) WHERE pk = (1)");
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use sim_runtime::time::Duration;

use super::expr::Expr;
use super::row::Row;
use super::schema::TableSchema;
use super::text::{FmtSink, Sink};
use super::value::Value;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IsolationLevel {
    /// PostgreSQL's default; READ UNCOMMITTED behaves the same in PostgreSQL.
    #[default]
    ReadCommitted,
    RepeatableRead,
    Serializable,
}

impl IsolationLevel {
    /// Whether the transaction keeps one snapshot (RR and SERIALIZABLE).
    pub fn uses_transaction_snapshot(self) -> bool {
        self != IsolationLevel::ReadCommitted
    }
}

impl IsolationLevel {
    /// The level as SQL names it.
    pub fn name(self) -> &'static str {
        match self {
            IsolationLevel::ReadCommitted => "READ COMMITTED",
            IsolationLevel::RepeatableRead => "REPEATABLE READ",
            IsolationLevel::Serializable => "SERIALIZABLE",
        }
    }
}

impl fmt::Display for IsolationLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Row lock strength. `FOR UPDATE` conflicts with everything; `FOR SHARE` only with
/// `FOR UPDATE` and with UPDATE/DELETE (which take `FOR UPDATE`-strength locks here: the
/// weaker `FOR NO KEY UPDATE`/`FOR KEY SHARE` pair is not modelled, and without foreign
/// keys the difference is not observable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LockMode {
    Share,
    Update,
}

/// What a row lock does when the row is locked by another transaction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockWait {
    #[default]
    Wait,
    /// Fail at once with 55P03.
    NoWait,
    /// Leave the row out of the result.
    SkipLocked,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowLocking {
    pub mode: LockMode,
    pub wait: LockWait,
}

/// Which rows a statement is about: a primary key lookup, a predicate, or both.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Where {
    /// The full primary key (in key column order); uses the primary key index.
    pub key: Option<Vec<Value>>,
    pub filter: Option<Expr>,
}

impl Where {
    pub(crate) fn write_sql<S: Sink>(&self, out: &mut S) -> fmt::Result {
        if let Some(k) = &self.key {
            out.raw(" WHERE pk = (")?;
            out.joined(k, |out, v| v.write_sql(out))?;
            out.raw(")")?;
        }
        if let Some(e) = &self.filter {
            out.raw(if self.key.is_some() {
                " AND "
            } else {
                " WHERE "
            })?;
            e.write_sql(out)?;
        }
        Ok(())
    }
}

impl fmt::Display for Where {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_sql(&mut FmtSink(f))
    }
}

macro_rules! where_builders {
    () => {
        /// Restricts to the row with this (single-column) primary key.
        pub fn key(mut self, key: impl Into<Value>) -> Self {
            self.filter.key = Some(vec![key.into()]);
            self
        }
        /// Restricts to the row with this composite primary key, in key column order.
        pub fn key_parts(mut self, key: Vec<Value>) -> Self {
            self.filter.key = Some(key);
            self
        }
        /// Adds a predicate (ANDed with an existing one).
        pub fn filter(mut self, e: Expr) -> Self {
            self.filter.filter = Some(match self.filter.filter.take() {
                Some(old) => old.and(e),
                None => e,
            });
            self
        }
    };
}

/// `SELECT * FROM table WHERE ... [FOR UPDATE|FOR SHARE [NOWAIT|SKIP LOCKED]] [LIMIT n]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Select {
    pub table: String,
    pub filter: Where,
    pub lock: Option<RowLocking>,
    pub limit: Option<usize>,
}

impl Select {
    pub fn from(table: impl Into<String>) -> Self {
        Select {
            table: table.into(),
            filter: Where::default(),
            lock: None,
            limit: None,
        }
    }
    where_builders!();
    pub fn for_update(mut self) -> Self {
        self.lock = Some(RowLocking {
            mode: LockMode::Update,
            wait: LockWait::Wait,
        });
        self
    }
    pub fn for_share(mut self) -> Self {
        self.lock = Some(RowLocking {
            mode: LockMode::Share,
            wait: LockWait::Wait,
        });
        self
    }
    /// Only after `for_update`/`for_share`.
    pub fn nowait(mut self) -> Self {
        if let Some(l) = self.lock.as_mut() {
            l.wait = LockWait::NoWait;
        }
        self
    }
    /// Only after `for_update`/`for_share`.
    pub fn skip_locked(mut self) -> Self {
        if let Some(l) = self.lock.as_mut() {
            l.wait = LockWait::SkipLocked;
        }
        self
    }
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }
}

/// What an insert does when it meets a unique constraint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum OnConflict {
    /// Plain INSERT: 23505.
    #[default]
    Error,
    /// `ON CONFLICT [(cols)] DO NOTHING`.
    DoNothing { target: Option<Vec<String>> },
    /// `ON CONFLICT (cols) DO UPDATE SET ... [WHERE ...]`.
    DoUpdate {
        target: Vec<String>,
        set: Vec<(String, Expr)>,
        filter: Option<Expr>,
    },
}

/// `INSERT INTO table VALUES (row) [ON CONFLICT ...] RETURNING *` (one row per statement).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Insert {
    pub table: String,
    pub row: Row,
    pub on_conflict: OnConflict,
}

impl Insert {
    pub fn into(table: impl Into<String>, row: Row) -> Self {
        Insert {
            table: table.into(),
            row,
            on_conflict: OnConflict::Error,
        }
    }
    pub fn on_conflict_do_nothing(mut self) -> Self {
        self.on_conflict = OnConflict::DoNothing { target: None };
        self
    }
    /// `ON CONFLICT (target) DO UPDATE SET col = expr, ...`; use `excluded("col")` for the
    /// proposed values.
    pub fn on_conflict_do_update(mut self, target: &[&str], set: Vec<(&str, Expr)>) -> Self {
        self.on_conflict = OnConflict::DoUpdate {
            target: target.iter().map(|c| (*c).to_owned()).collect(),
            set: set.into_iter().map(|(c, e)| (c.to_owned(), e)).collect(),
            filter: None,
        };
        self
    }
    /// The `WHERE` of `DO UPDATE`: rows not matching it are locked but left unchanged.
    pub fn on_conflict_where(mut self, e: Expr) -> Self {
        if let OnConflict::DoUpdate { filter, .. } = &mut self.on_conflict {
            *filter = Some(e);
        }
        self
    }
}

/// `UPDATE table SET ... WHERE ... RETURNING *`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub table: String,
    pub filter: Where,
    pub set: Vec<(String, Expr)>,
}

impl Update {
    pub fn table(table: impl Into<String>) -> Self {
        Update {
            table: table.into(),
            filter: Where::default(),
            set: Vec::new(),
        }
    }
    where_builders!();
    pub fn set(mut self, column: impl Into<String>, e: impl Into<Expr>) -> Self {
        self.set.push((column.into(), e.into()));
        self
    }
}

/// `DELETE FROM table WHERE ... RETURNING *`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delete {
    pub table: String,
    pub filter: Where,
}

impl Delete {
    pub fn from(table: impl Into<String>) -> Self {
        Delete {
            table: table.into(),
            filter: Where::default(),
        }
    }
    where_builders!();
}

/// `SELECT count(*) FROM table WHERE ...`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Count {
    pub table: String,
    pub filter: Where,
}

impl Count {
    pub fn from(table: impl Into<String>) -> Self {
        Count {
            table: table.into(),
            filter: Where::default(),
        }
    }
    where_builders!();
}

/// Session settings (`SET name = value`). They apply to the session at once and are not
/// undone by ROLLBACK (this model has no `SET LOCAL`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Setting {
    /// `None` is 0: no timeout.
    StatementTimeout(Option<Duration>),
    LockTimeout(Option<Duration>),
    DefaultIsolation(IsolationLevel),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Statement {
    Begin(IsolationLevel),
    Commit,
    Rollback,
    Set(Setting),
    /// DDL is not transactional here: it runs outside transaction blocks only and is
    /// durable at once.
    CreateTable {
        schema: TableSchema,
        if_not_exists: bool,
    },
    Select(Select),
    Insert(Insert),
    Update(Update),
    Delete(Delete),
    Count(Count),
    /// `SELECT pg_sleep(d)`: a statement that takes `d` of virtual time.
    Sleep(Duration),
}

impl Statement {
    /// The table a data statement is about.
    pub fn table(&self) -> Option<&str> {
        match self {
            Statement::Select(s) => Some(&s.table),
            Statement::Insert(s) => Some(&s.table),
            Statement::Update(s) => Some(&s.table),
            Statement::Delete(s) => Some(&s.table),
            Statement::Count(s) => Some(&s.table),
            Statement::CreateTable { schema, .. } => Some(&schema.name),
            _ => None,
        }
    }
}

impl From<Select> for Statement {
    fn from(s: Select) -> Self {
        Statement::Select(s)
    }
}
impl From<Insert> for Statement {
    fn from(s: Insert) -> Self {
        Statement::Insert(s)
    }
}
impl From<Update> for Statement {
    fn from(s: Update) -> Self {
        Statement::Update(s)
    }
}
impl From<Delete> for Statement {
    fn from(s: Delete) -> Self {
        Statement::Delete(s)
    }
}
impl From<Count> for Statement {
    fn from(s: Count) -> Self {
        Statement::Count(s)
    }
}
impl From<Setting> for Statement {
    fn from(s: Setting) -> Self {
        Statement::Set(s)
    }
}

/// `col = expr, ...`.
fn write_set_list<S: Sink>(out: &mut S, set: &[(String, Expr)]) -> fmt::Result {
    out.joined(set, |out, (c, e)| {
        out.user(c)?;
        out.raw(" = ")?;
        e.write_sql(out)
    })
}

impl Statement {
    /// The statement as SQL text (see [`super::text`]).
    pub(crate) fn write_sql<S: Sink>(&self, out: &mut S) -> fmt::Result {
        let millis = |d: &Option<Duration>| d.map_or(0, |d| d.as_millis());
        match self {
            Statement::Begin(iso) => {
                out.raw("BEGIN ISOLATION LEVEL ")?;
                out.raw(iso.name())
            }
            Statement::Commit => out.raw("COMMIT"),
            Statement::Rollback => out.raw("ROLLBACK"),
            Statement::Set(Setting::StatementTimeout(d)) => {
                out.raw("SET statement_timeout = ")?;
                out.args(format_args!("{}", millis(d)))
            }
            Statement::Set(Setting::LockTimeout(d)) => {
                out.raw("SET lock_timeout = ")?;
                out.args(format_args!("{}", millis(d)))
            }
            Statement::Set(Setting::DefaultIsolation(iso)) => {
                out.raw("SET default_transaction_isolation = '")?;
                out.raw(iso.name())?;
                out.raw("'")
            }
            Statement::CreateTable {
                schema,
                if_not_exists,
            } => {
                out.raw("CREATE TABLE ")?;
                if *if_not_exists {
                    out.raw("IF NOT EXISTS ")?;
                }
                out.user(&schema.name)?;
                out.raw(" (...)")
            }
            Statement::Select(s) => {
                out.raw("SELECT * FROM ")?;
                out.user(&s.table)?;
                s.filter.write_sql(out)?;
                if let Some(l) = &s.lock {
                    out.raw(match l.mode {
                        LockMode::Update => " FOR UPDATE",
                        LockMode::Share => " FOR SHARE",
                    })?;
                    out.raw(match l.wait {
                        LockWait::Wait => "",
                        LockWait::NoWait => " NOWAIT",
                        LockWait::SkipLocked => " SKIP LOCKED",
                    })?;
                }
                if let Some(n) = s.limit {
                    out.raw(" LIMIT ")?;
                    out.args(format_args!("{n}"))?;
                }
                Ok(())
            }
            Statement::Insert(s) => {
                out.raw("INSERT INTO ")?;
                out.user(&s.table)?;
                out.raw(" VALUES ")?;
                s.row.write_sql(out)?;
                let target = |out: &mut S, t: &[String]| {
                    out.raw(" ON CONFLICT (")?;
                    out.joined(t, |out, c| out.user(c))?;
                    out.raw(")")
                };
                match &s.on_conflict {
                    OnConflict::Error => Ok(()),
                    OnConflict::DoNothing { target: Some(t) } => {
                        target(out, t)?;
                        out.raw(" DO NOTHING")
                    }
                    OnConflict::DoNothing { target: None } => out.raw(" ON CONFLICT DO NOTHING"),
                    OnConflict::DoUpdate {
                        target: t,
                        set,
                        filter,
                    } => {
                        target(out, t)?;
                        out.raw(" DO UPDATE SET ")?;
                        write_set_list(out, set)?;
                        if let Some(e) = filter {
                            out.raw(" WHERE ")?;
                            e.write_sql(out)?;
                        }
                        Ok(())
                    }
                }
            }
            Statement::Update(s) => {
                out.raw("UPDATE ")?;
                out.user(&s.table)?;
                out.raw(" SET ")?;
                write_set_list(out, &s.set)?;
                s.filter.write_sql(out)
            }
            Statement::Delete(s) => {
                out.raw("DELETE FROM ")?;
                out.user(&s.table)?;
                s.filter.write_sql(out)
            }
            Statement::Count(s) => {
                out.raw("SELECT count(*) FROM ")?;
                out.user(&s.table)?;
                s.filter.write_sql(out)
            }
            Statement::Sleep(d) => {
                out.raw("SELECT pg_sleep(")?;
                out.args(format_args!("{}", d.as_secs_f64()))?;
                out.raw(")")
            }
        }
    }
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_sql(&mut FmtSink(f))
    }
}

/// The command tag PostgreSQL would report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandTag {
    Begin,
    Commit,
    /// Also what COMMIT reports when the transaction had failed and was rolled back.
    Rollback,
    Set,
    CreateTable,
    Select,
    Insert,
    Update,
    Delete,
    Count,
    Sleep,
}

impl CommandTag {
    /// The tag's name, as serde writes it.
    pub fn name(self) -> &'static str {
        use CommandTag::*;
        match self {
            Begin => "Begin",
            Commit => "Commit",
            Rollback => "Rollback",
            Set => "Set",
            CreateTable => "CreateTable",
            Select => "Select",
            Insert => "Insert",
            Update => "Update",
            Delete => "Delete",
            Count => "Count",
            Sleep => "Sleep",
        }
    }
}

/// What a statement returned: its rows (`RETURNING *` for writes) and the affected count
/// (rows returned, inserted, updated, deleted, or counted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StmtResult {
    pub tag: CommandTag,
    pub rows: Vec<Row>,
    pub affected: u64,
}

impl StmtResult {
    pub(crate) fn tag(tag: CommandTag) -> Self {
        StmtResult {
            tag,
            rows: Vec::new(),
            affected: 0,
        }
    }

    pub(crate) fn rows(tag: CommandTag, rows: Vec<Row>) -> Self {
        StmtResult {
            tag,
            affected: rows.len() as u64,
            rows,
        }
    }

    /// The first row, if any.
    pub fn first(&self) -> Option<&Row> {
        self.rows.first()
    }

    pub fn into_first(self) -> Option<Row> {
        self.rows.into_iter().next()
    }
}
