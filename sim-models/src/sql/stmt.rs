//! Statements (the typed requests a session sends) and their results.
//!
//! There is no SQL parser: service code builds statements with small builders, and each
//! statement prints as the SQL it stands for (for people; the `sql.stmt` trace event
//! keeps the statement itself).
//!
//! ```
//! use sim_models::sql::{col, Select, Update, Statement};
//! let s: Statement = Select::from("slots").filter(col("doctor").eq("house")).for_update().into();
//! assert_eq!(s.to_string(), "SELECT * FROM slots WHERE (doctor = 'house') FOR UPDATE");
//! let u: Statement = Update::table("accounts").set("balance", col("balance").minus(10)).key(1).into();
//! assert_eq!(
//!     u.to_string(),
//!     "UPDATE accounts SET balance = (balance - 10) WHERE pk = (1) RETURNING *"
//! );
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use sim_runtime::time::Duration;

use super::command::Command;
use super::error::SqlError;
use super::expr::Expr;
use super::row::Row;
use super::schema::TableSchema;
use super::value::{FromValue, Value};

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

/// Row lock strength, PostgreSQL's four, weakest first (each conflicts with a superset
/// of what the weaker ones conflict with): `FOR KEY SHARE` (a foreign-key check of the
/// parent row) conflicts only with `FOR UPDATE`; `FOR SHARE` also with `FOR NO KEY
/// UPDATE`; `FOR NO KEY UPDATE` (an UPDATE that sets no column of a unique index) also
/// with itself; `FOR UPDATE` (DELETE, and an UPDATE of a key column) with every mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LockMode {
    KeyShare,
    Share,
    NoKeyUpdate,
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

/// ` WHERE ...` (with its leading space), or nothing for all rows.
impl fmt::Display for Where {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(k) = &self.key {
            f.write_str(" WHERE pk = (")?;
            write_joined(f, k)?;
            f.write_str(")")?;
        }
        if let Some(e) = &self.filter {
            let keyword = if self.key.is_some() { "AND" } else { "WHERE" };
            write!(f, " {keyword} {e}")?;
        }
        Ok(())
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

/// One output column of a SELECT or RETURNING: an expression (aggregates allowed in a
/// SELECT) and the name the row gives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SelectItem {
    pub expr: Expr,
    pub name: String,
}

/// What a SELECT or a write returns for each row.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Projection {
    /// `*`: every column (of every table of a join, qualified names for the joined one
    /// when they clash).
    #[default]
    All,
    Items(Vec<SelectItem>),
    /// A write without RETURNING: no rows, only the count.
    Nothing,
}

/// `ORDER BY expr [ASC|DESC] [NULLS FIRST|LAST]`. An expression may name an output
/// column by its name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderBy {
    pub expr: Expr,
    pub desc: bool,
    /// PostgreSQL's default: NULLs sort as larger than every value (last ascending,
    /// first descending).
    pub nulls_first: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinKind {
    Inner,
    Left,
}

/// `[LEFT] JOIN table [alias] ON condition` after the SELECT's first table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Join {
    pub kind: JoinKind,
    pub table: String,
    pub alias: Option<String>,
    pub on: Expr,
}

/// `SELECT items FROM table [alias] [JOIN ...] WHERE ... [GROUP BY ...] [HAVING ...]
/// [ORDER BY ...] [LIMIT n] [OFFSET m] [FOR UPDATE|FOR SHARE [NOWAIT|SKIP LOCKED]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Select {
    pub table: String,
    pub alias: Option<String>,
    pub joins: Vec<Join>,
    pub items: Projection,
    pub filter: Where,
    pub group_by: Vec<Expr>,
    pub having: Option<Expr>,
    pub order_by: Vec<OrderBy>,
    pub lock: Option<RowLocking>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

impl Select {
    pub fn from(table: impl Into<String>) -> Self {
        Select {
            table: table.into(),
            alias: None,
            joins: Vec::new(),
            items: Projection::All,
            filter: Where::default(),
            group_by: Vec::new(),
            having: None,
            order_by: Vec::new(),
            lock: None,
            limit: None,
            offset: None,
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

/// `INSERT INTO table VALUES (row), ... [ON CONFLICT ...] [RETURNING ...]`: all rows or
/// none (a statement is atomic).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Insert {
    pub table: String,
    pub rows: Vec<InsertRow>,
    /// `OVERRIDING SYSTEM VALUE` / `OVERRIDING USER VALUE`.
    pub overriding: Option<Overriding>,
    pub on_conflict: OnConflict,
    /// `All` (RETURNING *) for the builder.
    pub returning: Projection,
}

/// One row of an INSERT: the columns it names, in the order written, each with its value.
/// Columns it does not name get their defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InsertRow(pub Vec<(String, InsertValue)>);

/// What VALUES gives a column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum InsertValue {
    /// Evaluated when the row is inserted (so `nextval`, `now()` and arithmetic run
    /// then, once per row).
    Expr(Expr),
    /// The `DEFAULT` keyword: the column's default, as if it were not named.
    Default,
}

/// Whose value an identity column gets when an INSERT gives one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Overriding {
    /// `OVERRIDING SYSTEM VALUE`: the given value, even for `GENERATED ALWAYS`.
    System,
    /// `OVERRIDING USER VALUE`: the identity's next value, whatever is given.
    User,
}

impl From<Row> for InsertRow {
    fn from(row: Row) -> Self {
        InsertRow(
            row.iter()
                .map(|(c, v)| (c.to_owned(), InsertValue::Expr(Expr::Lit(v.clone()))))
                .collect(),
        )
    }
}

impl InsertRow {
    /// The constant a column is given (as checkers read inserted rows from the trace):
    /// 42703 if the row does not name it, a type error if its value is computed when the
    /// row is inserted (an expression other than a constant, or DEFAULT) or of another
    /// type.
    pub fn get<C: AsRef<str>, T: FromValue>(&self, column: C) -> Result<T, SqlError> {
        let column = column.as_ref();
        let (_, v) = self
            .0
            .iter()
            .find(|(c, _)| c == column)
            .ok_or_else(|| SqlError::UndefinedColumn(column.to_owned()))?;
        match v {
            InsertValue::Expr(Expr::Lit(v)) => T::from_value(v),
            _ => None,
        }
        .ok_or_else(|| SqlError::WrongType {
            column: column.to_owned(),
            expected: T::expected(),
        })
    }
}

impl fmt::Display for InsertRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        for (i, (c, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match v {
                InsertValue::Expr(e) => write!(f, "{c}={e}")?,
                InsertValue::Default => write!(f, "{c}=DEFAULT")?,
            }
        }
        f.write_str(")")
    }
}

impl Insert {
    pub fn into(table: impl Into<String>, row: Row) -> Self {
        Insert {
            table: table.into(),
            rows: vec![row.into()],
            overriding: None,
            on_conflict: OnConflict::Error,
            returning: Projection::All,
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

/// `UPDATE table SET ... WHERE ... [RETURNING ...]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub table: String,
    pub filter: Where,
    pub set: Vec<(String, Expr)>,
    /// `All` (RETURNING *) for the builder.
    pub returning: Projection,
}

impl Update {
    pub fn table(table: impl Into<String>) -> Self {
        Update {
            table: table.into(),
            filter: Where::default(),
            set: Vec::new(),
            returning: Projection::All,
        }
    }
    where_builders!();
    pub fn set(mut self, column: impl Into<String>, e: impl Into<Expr>) -> Self {
        self.set.push((column.into(), e.into()));
        self
    }
}

/// `DELETE FROM table WHERE ... [RETURNING ...]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delete {
    pub table: String,
    pub filter: Where,
    /// `All` (RETURNING *) for the builder.
    pub returning: Projection,
}

impl Delete {
    pub fn from(table: impl Into<String>) -> Self {
        Delete {
            table: table.into(),
            filter: Where::default(),
            returning: Projection::All,
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
    /// `BEGIN [ISOLATION LEVEL ...]`: without a level, the session's
    /// `default_transaction_isolation`.
    Begin(Option<IsolationLevel>),
    Commit,
    Rollback,
    Set(Setting),
    /// DDL is not transactional here: it runs outside transaction blocks only and is
    /// durable at once.
    CreateTable {
        schema: TableSchema,
        if_not_exists: bool,
    },
    /// `CREATE [UNIQUE] INDEX [IF NOT EXISTS] name ON table (columns)`. A unique index is
    /// a unique constraint (checked against the rows already there); a plain one changes
    /// no answer, only speed: a WHERE that pins its columns reads only its rows.
    CreateIndex {
        name: String,
        table: String,
        columns: Vec<String>,
        unique: bool,
        if_not_exists: bool,
    },
    /// `SAVEPOINT name`: inside a transaction block.
    Savepoint(String),
    /// `ROLLBACK TO [SAVEPOINT] name`: undoes the writes since the savepoint and releases
    /// the row locks taken since (as PostgreSQL's subtransactions do); the block is usable
    /// again even if it had failed.
    RollbackToSavepoint(String),
    /// `RELEASE [SAVEPOINT] name`.
    ReleaseSavepoint(String),
    Select(Select),
    Insert(Insert),
    Update(Update),
    Delete(Delete),
    Count(Count),
    /// `SELECT pg_sleep(d)`: a statement that takes `d` of virtual time.
    Sleep(Duration),
    /// `SELECT expr, ...` without FROM: one row of expressions (sequence functions,
    /// `now()`, arithmetic), evaluated once.
    Compute(Vec<SelectItem>),
    /// Sequences, advisory locks, `SET LOCAL`/`SHOW`/`RESET` (see [`Command`]).
    Command(Command),
    /// SQL text the client could not parse or plan, sent inside a transaction block:
    /// PostgreSQL parses and plans on the server, so such an error aborts the block as any
    /// error does. The error is the statement's answer (a syntax error even in a failed
    /// block, which PostgreSQL reports before it looks at the block's state). Never
    /// serialized: it exists only between a client and its server.
    #[serde(skip)]
    Invalid(Box<SqlError>),
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

/// `items` separated by `, `.
fn write_joined<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        item.fmt(f)?;
    }
    Ok(())
}

/// `expr AS name, ...`.
fn write_items(f: &mut fmt::Formatter<'_>, items: &[SelectItem]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{} AS {}", item.expr, item.name)?;
    }
    Ok(())
}

/// ` RETURNING ...` of a write, or nothing.
fn write_returning(f: &mut fmt::Formatter<'_>, returning: &Projection) -> fmt::Result {
    match returning {
        Projection::All => f.write_str(" RETURNING *"),
        Projection::Items(items) => {
            f.write_str(" RETURNING ")?;
            write_items(f, items)
        }
        Projection::Nothing => Ok(()),
    }
}

/// `col = expr, ...`.
fn write_set_list(f: &mut fmt::Formatter<'_>, set: &[(String, Expr)]) -> fmt::Result {
    for (i, (c, e)) in set.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{c} = {e}")?;
    }
    Ok(())
}

/// The statement as the SQL it stands for: what people read (tests, logs). The trace
/// keeps statements structurally (their derived `Serialize`), never as this text.
impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = |d: &Option<Duration>| d.map_or(0, |d| d.as_millis());
        match self {
            Statement::Begin(Some(iso)) => write!(f, "BEGIN ISOLATION LEVEL {iso}"),
            Statement::Begin(None) => f.write_str("BEGIN"),
            Statement::Command(c) => write!(f, "{c}"),
            Statement::Commit => f.write_str("COMMIT"),
            Statement::Rollback => f.write_str("ROLLBACK"),
            Statement::Set(Setting::StatementTimeout(d)) => {
                write!(f, "SET statement_timeout = {}", millis(d))
            }
            Statement::Set(Setting::LockTimeout(d)) => {
                write!(f, "SET lock_timeout = {}", millis(d))
            }
            Statement::Set(Setting::DefaultIsolation(iso)) => {
                write!(f, "SET default_transaction_isolation = '{iso}'")
            }
            Statement::CreateTable {
                schema,
                if_not_exists,
            } => {
                let if_not_exists = if *if_not_exists { "IF NOT EXISTS " } else { "" };
                write!(f, "CREATE TABLE {if_not_exists}{} (...)", schema.name)
            }
            Statement::CreateIndex {
                name,
                table,
                columns,
                unique,
                if_not_exists,
            } => {
                let unique = if *unique { "UNIQUE " } else { "" };
                let if_not_exists = if *if_not_exists { "IF NOT EXISTS " } else { "" };
                write!(f, "CREATE {unique}INDEX {if_not_exists}{name} ON {table} (")?;
                write_joined(f, columns)?;
                f.write_str(")")
            }
            Statement::Savepoint(name) => write!(f, "SAVEPOINT {name}"),
            Statement::RollbackToSavepoint(name) => write!(f, "ROLLBACK TO SAVEPOINT {name}"),
            Statement::ReleaseSavepoint(name) => write!(f, "RELEASE SAVEPOINT {name}"),
            Statement::Select(s) => {
                f.write_str("SELECT ")?;
                match &s.items {
                    Projection::Items(items) => write_items(f, items)?,
                    Projection::All | Projection::Nothing => f.write_str("*")?,
                }
                write!(f, " FROM {}", s.table)?;
                if let Some(a) = &s.alias {
                    write!(f, " {a}")?;
                }
                for j in &s.joins {
                    let kind = match j.kind {
                        JoinKind::Inner => "JOIN",
                        JoinKind::Left => "LEFT JOIN",
                    };
                    write!(f, " {kind} {}", j.table)?;
                    if let Some(a) = &j.alias {
                        write!(f, " {a}")?;
                    }
                    write!(f, " ON {}", j.on)?;
                }
                s.filter.fmt(f)?;
                if !s.group_by.is_empty() {
                    f.write_str(" GROUP BY ")?;
                    write_joined(f, &s.group_by)?;
                }
                if let Some(h) = &s.having {
                    write!(f, " HAVING {h}")?;
                }
                for (i, o) in s.order_by.iter().enumerate() {
                    f.write_str(if i == 0 { " ORDER BY " } else { ", " })?;
                    write!(f, "{}{}", o.expr, if o.desc { " DESC" } else { "" })?;
                    match o.nulls_first {
                        Some(true) => f.write_str(" NULLS FIRST")?,
                        Some(false) => f.write_str(" NULLS LAST")?,
                        None => {}
                    }
                }
                if let Some(n) = s.limit {
                    write!(f, " LIMIT {n}")?;
                }
                if let Some(n) = s.offset {
                    write!(f, " OFFSET {n}")?;
                }
                if let Some(l) = &s.lock {
                    f.write_str(match l.mode {
                        LockMode::Update => " FOR UPDATE",
                        LockMode::NoKeyUpdate => " FOR NO KEY UPDATE",
                        LockMode::Share => " FOR SHARE",
                        LockMode::KeyShare => " FOR KEY SHARE",
                    })?;
                    f.write_str(match l.wait {
                        LockWait::Wait => "",
                        LockWait::NoWait => " NOWAIT",
                        LockWait::SkipLocked => " SKIP LOCKED",
                    })?;
                }
                Ok(())
            }
            Statement::Insert(s) => {
                write!(f, "INSERT INTO {} ", s.table)?;
                match s.overriding {
                    Some(Overriding::System) => f.write_str("OVERRIDING SYSTEM VALUE ")?,
                    Some(Overriding::User) => f.write_str("OVERRIDING USER VALUE ")?,
                    None => {}
                }
                f.write_str("VALUES ")?;
                write_joined(f, &s.rows)?;
                let target = |f: &mut fmt::Formatter<'_>, t: &[String]| {
                    f.write_str(" ON CONFLICT (")?;
                    write_joined(f, t)?;
                    f.write_str(")")
                };
                match &s.on_conflict {
                    OnConflict::Error => Ok(()),
                    OnConflict::DoNothing { target: Some(t) } => {
                        target(f, t)?;
                        f.write_str(" DO NOTHING")
                    }
                    OnConflict::DoNothing { target: None } => {
                        f.write_str(" ON CONFLICT DO NOTHING")
                    }
                    OnConflict::DoUpdate {
                        target: t,
                        set,
                        filter,
                    } => {
                        target(f, t)?;
                        f.write_str(" DO UPDATE SET ")?;
                        write_set_list(f, set)?;
                        if let Some(e) = filter {
                            write!(f, " WHERE {e}")?;
                        }
                        Ok(())
                    }
                }?;
                write_returning(f, &s.returning)
            }
            Statement::Update(s) => {
                write!(f, "UPDATE {} SET ", s.table)?;
                write_set_list(f, &s.set)?;
                s.filter.fmt(f)?;
                write_returning(f, &s.returning)
            }
            Statement::Delete(s) => {
                write!(f, "DELETE FROM {}{}", s.table, s.filter)?;
                write_returning(f, &s.returning)
            }
            Statement::Count(s) => write!(f, "SELECT count(*) FROM {}{}", s.table, s.filter),
            Statement::Sleep(d) => write!(f, "SELECT pg_sleep({})", d.as_secs_f64()),
            Statement::Compute(items) => {
                f.write_str("SELECT ")?;
                write_items(f, items)
            }
            Statement::Invalid(e) => write!(f, "-- invalid: {e}"),
        }
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
    CreateIndex,
    Savepoint,
    /// RELEASE SAVEPOINT (ROLLBACK TO SAVEPOINT reports `Rollback`, as PostgreSQL).
    Release,
    Select,
    Insert,
    Update,
    Delete,
    Count,
    Sleep,
    CreateSequence,
    DropSequence,
    Show,
    Reset,
}

/// What a statement returned: its rows (a SELECT's, or a write's RETURNING) and the
/// affected count (rows selected, counted, or inserted, updated, deleted, whatever the
/// write returns).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{col, excluded, lit};
    use sim_runtime::time::Instant;

    /// Every statement form prints as its SQL, names and values as given (text values
    /// with their quotes doubled).
    #[test]
    fn statements_display_as_sql() {
        let odd = "a\"b\\c\nd\u{1}e'f é";
        let cases: Vec<(Statement, &str)> = vec![
            (
                Statement::Begin(Some(IsolationLevel::Serializable)),
                "BEGIN ISOLATION LEVEL SERIALIZABLE",
            ),
            (Statement::Commit, "COMMIT"),
            (Statement::Rollback, "ROLLBACK"),
            (
                Setting::StatementTimeout(Some(Duration::from_millis(250))).into(),
                "SET statement_timeout = 250",
            ),
            (Setting::LockTimeout(None).into(), "SET lock_timeout = 0"),
            (
                Setting::DefaultIsolation(IsolationLevel::RepeatableRead).into(),
                "SET default_transaction_isolation = 'REPEATABLE READ'",
            ),
            (
                Statement::Sleep(Duration::from_millis(1500)),
                "SELECT pg_sleep(1.5)",
            ),
            (
                Select::from(odd)
                    .key(odd)
                    .filter(col(odd).eq(lit(-7)).or(!col("x").is_null()))
                    .for_share()
                    .skip_locked()
                    .limit(3)
                    .into(),
                "SELECT * FROM a\"b\\c\nd\u{1}e'f é WHERE pk = ('a\"b\\c\nd\u{1}e''f é') AND \
                 ((a\"b\\c\nd\u{1}e'f é = -7) OR (NOT (x IS NULL))) LIMIT 3 FOR SHARE SKIP LOCKED",
            ),
            (
                Select::from("t").for_update().nowait().into(),
                "SELECT * FROM t FOR UPDATE NOWAIT",
            ),
            (
                Insert::into(
                    "t",
                    Row::new()
                        .with(odd, odd)
                        .with("f", 1.5)
                        .with("n", Value::Null)
                        .with("b", true)
                        .with("ts", Instant::from_nanos(42))
                        .with("i", i64::MIN),
                )
                .on_conflict_do_update(&["id", odd], vec![("v", excluded(odd).plus(1))])
                .on_conflict_where(col("v").lt(10.25))
                .into(),
                "INSERT INTO t VALUES (a\"b\\c\nd\u{1}e'f é='a\"b\\c\nd\u{1}e''f é', f=1.5, \
                 n=NULL, b=true, ts='1970-01-01 00:00:00+00'::timestamptz, i=-9223372036854775808) \
                 ON CONFLICT (id, a\"b\\c\nd\u{1}e'f é) DO UPDATE SET v = (EXCLUDED.a\"b\\c\nd\u{1}e'f é + 1) \
                 WHERE (v < 10.25) RETURNING *",
            ),
            (
                Insert::into("t", Row::new().with("id", 1))
                    .on_conflict_do_nothing()
                    .into(),
                "INSERT INTO t VALUES (id=1) ON CONFLICT DO NOTHING RETURNING *",
            ),
            (
                Insert {
                    on_conflict: OnConflict::DoNothing {
                        target: Some(vec!["id".into(), odd.into()]),
                    },
                    ..Insert::into("t", Row::new())
                }
                .into(),
                "INSERT INTO t VALUES () ON CONFLICT (id, a\"b\\c\nd\u{1}e'f é) DO NOTHING RETURNING *",
            ),
            (
                Update::table("accounts")
                    .set("balance", col("balance").minus(10).times(2))
                    .key_parts(vec![Value::Int(1), Value::Text("x".into())])
                    .into(),
                "UPDATE accounts SET balance = ((balance - 10) * 2) WHERE pk = (1, 'x') RETURNING *",
            ),
            (
                Delete::from("t")
                    .filter(col("a").ge(1).and(col("b").ne("'")))
                    .into(),
                "DELETE FROM t WHERE ((a >= 1) AND (b <> '''')) RETURNING *",
            ),
            (
                Select {
                    alias: Some("a".into()),
                    joins: vec![Join {
                        kind: JoinKind::Left,
                        table: "b".into(),
                        alias: None,
                        on: col("a.id").eq(col("b.a_id")),
                    }],
                    items: Projection::Items(vec![
                        SelectItem {
                            expr: col("a.id"),
                            name: "id".into(),
                        },
                        SelectItem {
                            expr: Expr::Agg(crate::sql::expr::AggFunc::Count, None),
                            name: "n".into(),
                        },
                    ]),
                    group_by: vec![col("a.id")],
                    having: Some(Expr::Agg(crate::sql::expr::AggFunc::Count, None).gt(1)),
                    order_by: vec![OrderBy {
                        expr: col("n"),
                        desc: true,
                        nulls_first: Some(false),
                    }],
                    limit: Some(2),
                    offset: Some(1),
                    ..Select::from("a")
                }
                .into(),
                "SELECT a.id AS id, count(*) AS n FROM a a LEFT JOIN b ON (a.id = b.a_id) \
                 GROUP BY a.id HAVING (count(*) > 1) ORDER BY n DESC NULLS LAST LIMIT 2 OFFSET 1",
            ),
            (
                Insert {
                    rows: vec![Row::new().with("id", 1).into(), Row::new().with("id", 2).into()],
                    returning: Projection::Nothing,
                    ..Insert::into("t", Row::new())
                }
                .into(),
                "INSERT INTO t VALUES (id=1), (id=2)",
            ),
            (
                Delete {
                    returning: Projection::Items(vec![SelectItem {
                        expr: col("id"),
                        name: "id".into(),
                    }]),
                    ..Delete::from("t")
                }
                .into(),
                "DELETE FROM t RETURNING id AS id",
            ),
            (
                Statement::CreateIndex {
                    name: "t_v".into(),
                    table: "t".into(),
                    columns: vec!["v".into(), "w".into()],
                    unique: true,
                    if_not_exists: true,
                },
                "CREATE UNIQUE INDEX IF NOT EXISTS t_v ON t (v, w)",
            ),
            (Statement::Savepoint("s".into()), "SAVEPOINT s"),
            (
                Statement::RollbackToSavepoint("s".into()),
                "ROLLBACK TO SAVEPOINT s",
            ),
            (Statement::ReleaseSavepoint("s".into()), "RELEASE SAVEPOINT s"),
            (Count::from("t").into(), "SELECT count(*) FROM t"),
        ];
        for (stmt, sql) in cases {
            assert_eq!(stmt.to_string(), sql);
        }
    }
}
