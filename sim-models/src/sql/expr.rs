//! Expressions for WHERE clauses and SET assignments, evaluated with SQL's three-valued
//! logic: a comparison with NULL is unknown, and a WHERE clause keeps a row only when its
//! condition is true.
//!
//! ```
//! use sim_models::sql::{col, lit};
//! let on_call = col("on_call").eq(true).and(col("shift").eq(3));
//! assert_eq!(on_call.to_string(), "((on_call = true) AND (shift = 3))");
//! let debit = col("balance").minus(10);
//! assert_eq!(debit.to_string(), "(balance - 10)");
//! ```

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use sim_runtime::time::Instant;

use super::error::SqlError;
use super::schema::TableSchema;
use super::value::{ColumnType, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    /// `||` on text.
    Concat,
}

impl BinOp {
    fn symbol(self) -> &'static str {
        match self {
            BinOp::Eq => "=",
            BinOp::Ne => "<>",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "AND",
            BinOp::Or => "OR",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Concat => "||",
        }
    }
}

/// Scalar functions of SQL text that the model evaluates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Func {
    /// The first argument that is not NULL.
    Coalesce,
    Lower,
    Upper,
    /// Characters of a text.
    Length,
    Abs,
    Greatest,
    Least,
    /// `now()`, `CURRENT_TIMESTAMP`: the start of the current transaction, as in
    /// PostgreSQL.
    Now,
}

impl Func {
    pub fn name(self) -> &'static str {
        match self {
            Func::Coalesce => "coalesce",
            Func::Lower => "lower",
            Func::Upper => "upper",
            Func::Length => "length",
            Func::Abs => "abs",
            Func::Greatest => "greatest",
            Func::Least => "least",
            Func::Now => "now",
        }
    }
}

/// Aggregate functions: only in a SELECT's items, HAVING and ORDER BY.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggFunc {
    Count,
    Sum,
    Min,
    Max,
    Avg,
}

impl AggFunc {
    pub fn name(self) -> &'static str {
        match self {
            AggFunc::Count => "count",
            AggFunc::Sum => "sum",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
            AggFunc::Avg => "avg",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    /// A column of the row being evaluated: `name`, or `table.name` (a table's name or
    /// alias) in a join.
    Col(String),
    /// `EXCLUDED.col` in `ON CONFLICT DO UPDATE`: the value the insert proposed.
    Excluded(String),
    Lit(Value),
    /// `$n` (from 1) of SQL text: replaced by its value when the statement is bound, so
    /// it never reaches the engine.
    Param(usize),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    IsNull(Box<Expr>),
    /// Unary minus.
    Neg(Box<Expr>),
    /// `expr [NOT] IN (list)`, with SQL's NULL rules.
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    /// `expr [NOT] LIKE pattern` (`%` any run, `_` one character, `\` escapes);
    /// `ILIKE` when `case_insensitive`.
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        negated: bool,
        case_insensitive: bool,
    },
    Func(Func, Vec<Expr>),
    /// An aggregate over the rows of a group; `None` is `count(*)`.
    Agg(AggFunc, Option<Box<Expr>>),
    /// `expr::type`, `CAST(expr AS type)`.
    Cast(Box<Expr>, ColumnType),
}

/// A column reference.
pub fn col(name: impl Into<String>) -> Expr {
    Expr::Col(name.into())
}

/// `EXCLUDED.name`.
pub fn excluded(name: impl Into<String>) -> Expr {
    Expr::Excluded(name.into())
}

/// A literal.
pub fn lit(value: impl Into<Value>) -> Expr {
    Expr::Lit(value.into())
}

impl<T: Into<Value>> From<T> for Expr {
    fn from(v: T) -> Self {
        Expr::Lit(v.into())
    }
}

impl Expr {
    fn bin(self, op: BinOp, rhs: impl Into<Expr>) -> Expr {
        Expr::Bin(op, Box::new(self), Box::new(rhs.into()))
    }
    pub fn eq(self, rhs: impl Into<Expr>) -> Expr {
        self.bin(BinOp::Eq, rhs)
    }
    pub fn ne(self, rhs: impl Into<Expr>) -> Expr {
        self.bin(BinOp::Ne, rhs)
    }
    pub fn lt(self, rhs: impl Into<Expr>) -> Expr {
        self.bin(BinOp::Lt, rhs)
    }
    pub fn le(self, rhs: impl Into<Expr>) -> Expr {
        self.bin(BinOp::Le, rhs)
    }
    pub fn gt(self, rhs: impl Into<Expr>) -> Expr {
        self.bin(BinOp::Gt, rhs)
    }
    pub fn ge(self, rhs: impl Into<Expr>) -> Expr {
        self.bin(BinOp::Ge, rhs)
    }
    pub fn and(self, rhs: impl Into<Expr>) -> Expr {
        self.bin(BinOp::And, rhs)
    }
    pub fn or(self, rhs: impl Into<Expr>) -> Expr {
        self.bin(BinOp::Or, rhs)
    }
    pub fn plus(self, rhs: impl Into<Expr>) -> Expr {
        self.bin(BinOp::Add, rhs)
    }
    pub fn minus(self, rhs: impl Into<Expr>) -> Expr {
        self.bin(BinOp::Sub, rhs)
    }
    pub fn times(self, rhs: impl Into<Expr>) -> Expr {
        self.bin(BinOp::Mul, rhs)
    }
    pub fn divided_by(self, rhs: impl Into<Expr>) -> Expr {
        self.bin(BinOp::Div, rhs)
    }
    pub fn is_null(self) -> Expr {
        Expr::IsNull(Box::new(self))
    }
    pub fn is_not_null(self) -> Expr {
        !Expr::IsNull(Box::new(self))
    }

    /// Calls `f` on this expression and every sub-expression, parents first.
    pub(crate) fn visit(
        &self,
        f: &mut dyn FnMut(&Expr) -> Result<(), SqlError>,
    ) -> Result<(), SqlError> {
        f(self)?;
        match self {
            Expr::Col(_) | Expr::Excluded(_) | Expr::Lit(_) | Expr::Param(_) => Ok(()),
            Expr::Bin(_, a, b) => {
                a.visit(f)?;
                b.visit(f)
            }
            Expr::Not(a) | Expr::IsNull(a) | Expr::Neg(a) | Expr::Cast(a, _) => a.visit(f),
            Expr::InList { expr, list, .. } => {
                expr.visit(f)?;
                list.iter().try_for_each(|e| e.visit(f))
            }
            Expr::Like { expr, pattern, .. } => {
                expr.visit(f)?;
                pattern.visit(f)
            }
            Expr::Func(_, args) => args.iter().try_for_each(|e| e.visit(f)),
            Expr::Agg(_, arg) => arg.as_ref().map_or(Ok(()), |a| a.visit(f)),
        }
    }

    /// A copy in which `f` replaces the sub-expressions it returns `Some` for (and whose
    /// insides it then does not visit).
    pub(crate) fn map(
        &self,
        f: &mut dyn FnMut(&Expr) -> Result<Option<Expr>, SqlError>,
    ) -> Result<Expr, SqlError> {
        if let Some(e) = f(self)? {
            return Ok(e);
        }
        let mut sub = |e: &Expr| e.map(f).map(Box::new);
        Ok(match self {
            Expr::Col(_) | Expr::Excluded(_) | Expr::Lit(_) | Expr::Param(_) => self.clone(),
            Expr::Bin(op, a, b) => {
                let a = sub(a)?;
                Expr::Bin(*op, a, sub(b)?)
            }
            Expr::Not(a) => Expr::Not(sub(a)?),
            Expr::IsNull(a) => Expr::IsNull(sub(a)?),
            Expr::Neg(a) => Expr::Neg(sub(a)?),
            Expr::Cast(a, ty) => Expr::Cast(sub(a)?, *ty),
            Expr::InList {
                expr,
                list,
                negated,
            } => Expr::InList {
                expr: sub(expr)?,
                list: list.iter().map(|e| e.map(f)).collect::<Result<_, _>>()?,
                negated: *negated,
            },
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => {
                let expr = sub(expr)?;
                Expr::Like {
                    expr,
                    pattern: sub(pattern)?,
                    negated: *negated,
                    case_insensitive: *case_insensitive,
                }
            }
            Expr::Func(func, args) => Expr::Func(
                *func,
                args.iter().map(|e| e.map(f)).collect::<Result<_, _>>()?,
            ),
            Expr::Agg(agg, arg) => Expr::Agg(*agg, arg.as_ref().map(|a| sub(a)).transpose()?),
        })
    }

    /// The direct sub-expressions.
    pub(crate) fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Col(_) | Expr::Excluded(_) | Expr::Lit(_) | Expr::Param(_) => Vec::new(),
            Expr::Bin(_, a, b) => vec![a, b],
            Expr::Not(a) | Expr::IsNull(a) | Expr::Neg(a) | Expr::Cast(a, _) => vec![a],
            Expr::InList { expr, list, .. } => std::iter::once(&**expr).chain(list).collect(),
            Expr::Like { expr, pattern, .. } => vec![expr, pattern],
            Expr::Func(_, args) => args.iter().collect(),
            Expr::Agg(_, arg) => arg.iter().map(|a| &**a).collect(),
        }
    }

    /// Whether an aggregate appears anywhere in the expression.
    pub(crate) fn has_agg(&self) -> bool {
        self.visit(&mut |e| match e {
            Expr::Agg(..) => Err(SqlError::CardinalityViolation),
            _ => Ok(()),
        })
        .is_err()
    }

    /// 42803 if an aggregate appears in `clause` (`WHERE`, `UPDATE`, `RETURNING`...).
    pub(crate) fn no_agg(&self, clause: &str) -> Result<(), SqlError> {
        if self.has_agg() {
            return Err(SqlError::GroupingError {
                message: format!("aggregate functions are not allowed in {clause}"),
            });
        }
        Ok(())
    }

    /// Checks the column references against `scope` (42703, 42702, 42P01), `$n` (42P02)
    /// and `EXCLUDED.c` (only with `excluded`, the target of ON CONFLICT); borrowed when
    /// every name is already as the scope writes it (always, for the builder's statements),
    /// else a copy with each column written so (see [`Scope::canonical`]).
    pub(crate) fn bind_cow<'a>(
        &'a self,
        scope: &Scope<'_>,
        excluded: Option<&TableSchema>,
    ) -> Result<Cow<'a, Expr>, SqlError> {
        let mut rewrite = false;
        self.visit(&mut |e| {
            match e {
                Expr::Col(c) => {
                    let pos = scope.resolve(c)?;
                    rewrite |= !scope.is_canonical(c, pos);
                }
                Expr::Excluded(c) => match excluded {
                    Some(s) => {
                        s.require_column(c)?;
                    }
                    None => return Err(SqlError::UndefinedTable("excluded".into())),
                },
                Expr::Param(n) => return Err(SqlError::UndefinedParameter(*n)),
                Expr::Agg(_, Some(arg)) if arg.has_agg() => {
                    return Err(SqlError::GroupingError {
                        message: "aggregate function calls cannot be nested".into(),
                    })
                }
                _ => {}
            }
            Ok(())
        })?;
        if !rewrite {
            return Ok(Cow::Borrowed(self));
        }
        self.map(&mut |e| match e {
            Expr::Col(c) => Ok(Some(Expr::Col(scope.canonical(scope.resolve(c)?)))),
            _ => Ok(None),
        })
        .map(Cow::Owned)
    }

    /// [`Expr::bind_cow`], owned.
    pub(crate) fn bind(
        &self,
        scope: &Scope<'_>,
        excluded: Option<&TableSchema>,
    ) -> Result<Expr, SqlError> {
        self.bind_cow(scope, excluded).map(Cow::into_owned)
    }

    /// Evaluates against a stored tuple of `schema`; `excluded` is the proposed tuple of an
    /// `ON CONFLICT DO UPDATE`. `now()` is not available (see [`Expr::eval_in`]).
    #[cfg(test)]
    pub(crate) fn eval(
        &self,
        schema: &TableSchema,
        tuple: &[Value],
        excluded: Option<&[Value]>,
    ) -> Result<Value, SqlError> {
        self.eval_in(&TupleEnv {
            schema,
            tuple,
            excluded,
            now: None,
        })
    }

    /// Evaluates as a WHERE condition: true keeps the row, false and NULL drop it.
    #[cfg(test)]
    pub(crate) fn matches(
        &self,
        schema: &TableSchema,
        tuple: &[Value],
        excluded: Option<&[Value]>,
    ) -> Result<bool, SqlError> {
        self.matches_in(&TupleEnv {
            schema,
            tuple,
            excluded,
            now: None,
        })
    }

    /// [`Expr::matches`] in an environment.
    pub(crate) fn matches_in<E: Env + ?Sized>(&self, env: &E) -> Result<bool, SqlError> {
        match self.eval_in(env)? {
            Value::Bool(b) => Ok(b),
            Value::Null => Ok(false),
            v => Err(not_boolean(&v)),
        }
    }

    /// Evaluates in an environment: a row (or a joined row, or a group) and the
    /// transaction's start time.
    pub(crate) fn eval_in<E: Env + ?Sized>(&self, env: &E) -> Result<Value, SqlError> {
        if let Some(v) = env.grouped(self) {
            return v;
        }
        Ok(match self {
            Expr::Col(c) => env.col(c)?,
            Expr::Excluded(c) => env.excluded(c)?,
            Expr::Lit(v) => v.clone(),
            Expr::Param(n) => return Err(SqlError::UndefinedParameter(*n)),
            Expr::Not(a) => match a.eval_in(env)? {
                Value::Null => Value::Null,
                Value::Bool(b) => Value::Bool(!b),
                v => return Err(not_boolean(&v)),
            },
            Expr::IsNull(a) => Value::Bool(a.eval_in(env)?.is_null()),
            Expr::Bin(op, a, b) => {
                let x = a.eval_in(env)?;
                match op {
                    // AND/OR short-circuit only where three-valued logic allows it.
                    BinOp::And if x == Value::Bool(false) => Value::Bool(false),
                    BinOp::Or if x == Value::Bool(true) => Value::Bool(true),
                    _ => {
                        let y = b.eval_in(env)?;
                        apply(*op, x, y)?
                    }
                }
            }
            Expr::Neg(a) => match a.eval_in(env)? {
                Value::Null => Value::Null,
                Value::Int(i) => Value::Int(i.checked_neg().ok_or_else(bigint_out_of_range)?),
                Value::Float(x) => Value::Float(-x),
                v => {
                    return Err(SqlError::DatatypeMismatch {
                        detail: format!("operator does not exist: - {}", v.type_name()),
                    })
                }
            },
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let x = expr.eval_in(env)?;
                if x.is_null() {
                    return Ok(Value::Null);
                }
                let mut unknown = false;
                let mut found = false;
                for e in list {
                    match sql_cmp(&x, &e.eval_in(env)?)? {
                        None => unknown = true,
                        Some(Ordering::Equal) => {
                            found = true;
                            break;
                        }
                        Some(_) => {}
                    }
                }
                if found {
                    Value::Bool(!negated)
                } else if unknown {
                    Value::Null
                } else {
                    Value::Bool(*negated)
                }
            }
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => {
                let x = expr.eval_in(env)?;
                let p = pattern.eval_in(env)?;
                match (x, p) {
                    (Value::Null, _) | (_, Value::Null) => Value::Null,
                    (Value::Text(s), Value::Text(p)) => {
                        let hit = if *case_insensitive {
                            like(&s.to_lowercase(), &p.to_lowercase())
                        } else {
                            like(&s, &p)
                        };
                        Value::Bool(hit != *negated)
                    }
                    (x, p) => {
                        return Err(SqlError::DatatypeMismatch {
                            detail: format!(
                                "operator does not exist: {} {} {}",
                                x.type_name(),
                                if *case_insensitive { "~~*" } else { "~~" },
                                p.type_name()
                            ),
                        })
                    }
                }
            }
            Expr::Func(f, args) => call(*f, args, env)?,
            Expr::Agg(..) => {
                return Err(SqlError::GroupingError {
                    message: "aggregate functions are not allowed here".into(),
                })
            }
            Expr::Cast(a, ty) => cast(a.eval_in(env)?, *ty, || env.now())?,
        })
    }
}

/// What an expression reads: the columns of the row at hand, `EXCLUDED`, the
/// transaction's start time and, in a grouped query, the group's keys and aggregates.
pub(crate) trait Env {
    fn col(&self, name: &str) -> Result<Value, SqlError>;
    fn excluded(&self, name: &str) -> Result<Value, SqlError>;
    /// `now()`: the transaction's start.
    fn now(&self) -> Result<Instant, SqlError>;
    /// In a grouped query, the value of a whole sub-expression that is a GROUP BY key or
    /// an aggregate; `None` to evaluate it piece by piece.
    fn grouped(&self, _e: &Expr) -> Option<Result<Value, SqlError>> {
        None
    }
}

/// One stored tuple of a table, named by plain column names.
pub(crate) struct TupleEnv<'a> {
    pub schema: &'a TableSchema,
    pub tuple: &'a [Value],
    pub excluded: Option<&'a [Value]>,
    pub now: Option<Instant>,
}

impl Env for TupleEnv<'_> {
    fn col(&self, name: &str) -> Result<Value, SqlError> {
        Ok(self.tuple[self.schema.require_column(name)?].clone())
    }
    fn excluded(&self, name: &str) -> Result<Value, SqlError> {
        let i = self.schema.require_column(name)?;
        Ok(self.excluded.map_or(Value::Null, |t| t[i].clone()))
    }
    fn now(&self) -> Result<Instant, SqlError> {
        self.now.ok_or_else(|| SqlError::FeatureNotSupported {
            feature: "now() outside a statement".into(),
        })
    }
}

/// A table of a FROM clause (or the target of a write), as expressions name it.
#[derive(Clone, Debug)]
pub(crate) struct ScopeTable<'a> {
    /// The alias, or else the table's name: what `qual.col` names it by.
    pub qual: &'a str,
    pub schema: &'a TableSchema,
    /// Where its columns start in the joined tuple.
    pub offset: usize,
}

/// The tables an expression may name: one, or those of a join, whose tuples are laid end
/// to end in one joined tuple. (The first table apart, so that the one-table scope of
/// every builder statement costs no allocation.)
#[derive(Clone, Debug)]
pub(crate) struct Scope<'a> {
    first: ScopeTable<'a>,
    rest: Vec<ScopeTable<'a>>,
}

impl<'a> Scope<'a> {
    pub fn single(qual: &'a str, schema: &'a TableSchema) -> Self {
        Scope {
            first: ScopeTable {
                qual,
                schema,
                offset: 0,
            },
            rest: Vec::new(),
        }
    }

    /// Adds a joined table after the others.
    pub fn join(&mut self, qual: &'a str, schema: &'a TableSchema) {
        let offset = self.width();
        self.rest.push(ScopeTable {
            qual,
            schema,
            offset,
        });
    }

    /// The first `n` tables.
    pub fn prefix(&self, n: usize) -> Scope<'a> {
        Scope {
            first: self.first.clone(),
            rest: self.rest[..n.saturating_sub(1)].to_vec(),
        }
    }

    pub fn tables(&self) -> impl Iterator<Item = &ScopeTable<'a>> + '_ {
        std::iter::once(&self.first).chain(&self.rest)
    }

    /// Columns of the joined tuple.
    pub fn width(&self) -> usize {
        self.tables().map(|t| t.schema.columns.len()).sum()
    }

    /// The position in the joined tuple of the column `name` or `qual.name`: 42703 if no
    /// table has it, 42702 if several do (unqualified), 42P01 for an unknown qualifier.
    pub fn resolve(&self, name: &str) -> Result<usize, SqlError> {
        if self.rest.is_empty() {
            if let Some(i) = self.first.schema.column_index(name) {
                return Ok(i);
            }
        } else {
            let mut found = None;
            for t in self.tables() {
                if let Some(i) = t.schema.column_index(name) {
                    if found.is_some() {
                        return Err(SqlError::AmbiguousColumn(name.to_owned()));
                    }
                    found = Some(t.offset + i);
                }
            }
            if let Some(pos) = found {
                return Ok(pos);
            }
        }
        let Some((q, c)) = name.split_once('.') else {
            return Err(SqlError::UndefinedColumn(name.to_owned()));
        };
        let t = self
            .tables()
            .find(|t| t.qual == q)
            .ok_or_else(|| SqlError::UndefinedTable(q.to_owned()))?;
        t.schema
            .column_index(c)
            .map(|i| t.offset + i)
            .ok_or_else(|| SqlError::UndefinedColumn(name.to_owned()))
    }

    /// The table (its number in the scope) and column at a position of the joined tuple.
    pub fn column_at(&self, pos: usize) -> (usize, &ScopeTable<'a>, &'a str) {
        let i = self
            .rest
            .iter()
            .rposition(|t| t.offset <= pos)
            .map_or(0, |i| i + 1);
        let t = if i == 0 {
            &self.first
        } else {
            &self.rest[i - 1]
        };
        (i, t, &t.schema.columns[pos - t.offset].name)
    }

    /// `qual.col` for the column at `pos`.
    pub fn qualified(&self, pos: usize) -> String {
        let (_, t, c) = self.column_at(pos);
        format!("{}.{c}", t.qual)
    }

    /// How bound expressions name the column at `pos`: its plain name for one table,
    /// `qual.col` in a join (unique, whatever the other tables hold).
    pub fn canonical(&self, pos: usize) -> String {
        if self.rest.is_empty() {
            self.first.schema.columns[pos].name.clone()
        } else {
            self.qualified(pos)
        }
    }

    /// Whether `name`, found at `pos`, is already [`Scope::canonical`].
    fn is_canonical(&self, name: &str, pos: usize) -> bool {
        let (_, t, c) = self.column_at(pos);
        if self.rest.is_empty() {
            name == c
        } else {
            name.len() == t.qual.len() + 1 + c.len()
                && name.starts_with(t.qual)
                && name[t.qual.len()..].starts_with('.')
                && name.ends_with(c)
        }
    }
}

/// A joined tuple of a [`Scope`] (for one table, its stored tuple).
pub(crate) struct JoinedEnv<'a> {
    pub scope: &'a Scope<'a>,
    pub tuple: &'a [Value],
    pub now: Instant,
}

impl Env for JoinedEnv<'_> {
    fn col(&self, name: &str) -> Result<Value, SqlError> {
        Ok(self.tuple[self.scope.resolve(name)?].clone())
    }
    fn excluded(&self, _name: &str) -> Result<Value, SqlError> {
        Err(SqlError::UndefinedTable("excluded".into()))
    }
    fn now(&self) -> Result<Instant, SqlError> {
        Ok(self.now)
    }
}

impl std::ops::Not for Expr {
    type Output = Expr;
    fn not(self) -> Expr {
        Expr::Not(Box::new(self))
    }
}

fn not_boolean(v: &Value) -> SqlError {
    SqlError::DatatypeMismatch {
        detail: format!(
            "argument of WHERE must be type boolean, not {}",
            v.type_name()
        ),
    }
}

fn bigint_out_of_range() -> SqlError {
    SqlError::NumericValueOutOfRange {
        detail: "bigint out of range".into(),
    }
}

/// SQL comparison: `None` when either side is NULL; integers and floats compare as
/// numbers; other types only with their own kind.
pub(crate) fn sql_cmp(x: &Value, y: &Value) -> Result<Option<Ordering>, SqlError> {
    Ok(match (x, y) {
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::Int(a), Value::Float(b)) => (*a as f64).partial_cmp(b),
        (Value::Float(a), Value::Int(b)) => a.partial_cmp(&(*b as f64)),
        (Value::Float(a), Value::Float(b)) => a.partial_cmp(b),
        (a, b) if std::mem::discriminant(a) == std::mem::discriminant(b) => Some(a.cmp(b)),
        (a, b) => {
            return Err(SqlError::DatatypeMismatch {
                detail: format!(
                    "operator does not exist: {} = {}",
                    a.type_name(),
                    b.type_name()
                ),
            })
        }
    })
}

/// The order of ORDER BY, MIN and MAX between two non-NULL values: numbers as numbers
/// (NaN above every number, as in PostgreSQL), other values of one type by their order.
pub(crate) fn sort_cmp(x: &Value, y: &Value) -> Ordering {
    match (x, y) {
        (Value::Int(a), Value::Float(b)) => Value::Float(*a as f64).cmp(&Value::Float(*b)),
        (Value::Float(a), Value::Int(b)) => Value::Float(*a).cmp(&Value::Float(*b as f64)),
        (Value::Float(a), Value::Float(b)) => {
            // total_cmp orders -0 before 0; SQL has them equal.
            if a == b {
                Ordering::Equal
            } else {
                a.total_cmp(b)
            }
        }
        (a, b) => a.cmp(b),
    }
}

fn truth(v: &Value) -> Result<Option<bool>, SqlError> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        v => Err(not_boolean(v)),
    }
}

fn apply(op: BinOp, x: Value, y: Value) -> Result<Value, SqlError> {
    let no_operator = |x: &Value, y: &Value| SqlError::DatatypeMismatch {
        detail: format!(
            "operator does not exist: {} {} {}",
            x.type_name(),
            op.symbol(),
            y.type_name()
        ),
    };
    Ok(match op {
        BinOp::And => match (truth(&x)?, truth(&y)?) {
            (Some(false), _) | (_, Some(false)) => Value::Bool(false),
            (Some(true), Some(true)) => Value::Bool(true),
            _ => Value::Null,
        },
        BinOp::Or => match (truth(&x)?, truth(&y)?) {
            (Some(true), _) | (_, Some(true)) => Value::Bool(true),
            (Some(false), Some(false)) => Value::Bool(false),
            _ => Value::Null,
        },
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            match sql_cmp(&x, &y)? {
                None => Value::Null,
                Some(o) => Value::Bool(match op {
                    BinOp::Eq => o == Ordering::Equal,
                    BinOp::Ne => o != Ordering::Equal,
                    BinOp::Lt => o == Ordering::Less,
                    BinOp::Le => o != Ordering::Greater,
                    BinOp::Gt => o == Ordering::Greater,
                    _ => o != Ordering::Less,
                }),
            }
        }
        BinOp::Mod => match (&x, &y) {
            (Value::Null, _) | (_, Value::Null) => Value::Null,
            (Value::Int(_), Value::Int(0)) => return Err(SqlError::DivisionByZero),
            // i64::MIN % -1 overflows in Rust; PostgreSQL answers 0.
            (Value::Int(a), Value::Int(b)) => Value::Int(a.checked_rem(*b).unwrap_or(0)),
            _ => return Err(no_operator(&x, &y)),
        },
        BinOp::Concat => match (&x, &y) {
            (Value::Null, _) | (_, Value::Null) => Value::Null,
            (Value::Text(a), b) => Value::Text(format!("{a}{}", text_of(b)?)),
            (a, Value::Text(b)) => Value::Text(format!("{}{b}", text_of(a)?)),
            _ => return Err(no_operator(&x, &y)),
        },
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => match (x, y) {
            (Value::Null, _) | (_, Value::Null) => Value::Null,
            (Value::Int(a), Value::Int(b)) => Value::Int(
                match op {
                    BinOp::Add => a.checked_add(b),
                    BinOp::Sub => a.checked_sub(b),
                    BinOp::Mul => a.checked_mul(b),
                    _ if b == 0 => return Err(SqlError::DivisionByZero),
                    _ => a.checked_div(b),
                }
                .ok_or_else(bigint_out_of_range)?,
            ),
            (a, b) => match (a.as_float(), b.as_float()) {
                (Some(a), Some(b)) => Value::Float(match op {
                    BinOp::Add => a + b,
                    BinOp::Sub => a - b,
                    BinOp::Mul => a * b,
                    _ if b == 0.0 => return Err(SqlError::DivisionByZero),
                    _ => a / b,
                }),
                _ => {
                    return Err(SqlError::DatatypeMismatch {
                        detail: format!("operator does not exist: {}", op.symbol()),
                    })
                }
            },
        },
    })
}

/// `s LIKE p`: `%` matches any run of characters, `_` one character, `\` makes the next
/// character literal (a trailing `\` stands for itself).
fn like(s: &str, p: &str) -> bool {
    #[derive(PartialEq)]
    enum Tok {
        Any,
        One,
        Char(char),
    }
    let s: Vec<char> = s.chars().collect();
    let mut p_chars = p.chars();
    let mut pat = Vec::new();
    while let Some(c) = p_chars.next() {
        pat.push(match c {
            '%' => Tok::Any,
            '_' => Tok::One,
            '\\' => Tok::Char(p_chars.next().unwrap_or('\\')),
            c => Tok::Char(c),
        });
    }
    // Greedy matching, backtracking to the last `%`.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        match pat.get(j) {
            Some(Tok::One) => {
                i += 1;
                j += 1;
            }
            Some(Tok::Char(c)) if *c == s[i] => {
                i += 1;
                j += 1;
            }
            Some(Tok::Any) => {
                star = Some((j, i));
                j += 1;
            }
            _ => match star {
                Some((sj, si)) => {
                    star = Some((sj, si + 1));
                    j = sj + 1;
                    i = si + 1;
                }
                None => return false,
            },
        }
    }
    pat[j..].iter().all(|t| *t == Tok::Any)
}

fn no_function(f: Func, args: &[Value]) -> SqlError {
    let types: Vec<&str> = args.iter().map(Value::type_name).collect();
    SqlError::UndefinedFunction {
        name: format!("{}({})", f.name(), types.join(", ")),
    }
}

fn call<E: Env + ?Sized>(f: Func, args: &[Expr], env: &E) -> Result<Value, SqlError> {
    match f {
        Func::Coalesce => {
            if args.is_empty() {
                return Err(no_function(f, &[]));
            }
            // Lazily, as PostgreSQL: arguments after the first non-NULL are not evaluated.
            for a in args {
                let v = a.eval_in(env)?;
                if !v.is_null() {
                    return Ok(v);
                }
            }
            return Ok(Value::Null);
        }
        Func::Now => {
            if !args.is_empty() {
                let vals = args
                    .iter()
                    .map(|a| a.eval_in(env))
                    .collect::<Result<Vec<_>, _>>()?;
                return Err(no_function(f, &vals));
            }
            return Ok(Value::Timestamp(env.now()?));
        }
        _ => {}
    }
    let vals = args
        .iter()
        .map(|a| a.eval_in(env))
        .collect::<Result<Vec<_>, _>>()?;
    match f {
        Func::Greatest | Func::Least => {
            if vals.is_empty() {
                return Err(no_function(f, &vals));
            }
            let float = vals.iter().any(|v| matches!(v, Value::Float(_)));
            let mut best: Option<&Value> = None;
            for v in vals.iter().filter(|v| !v.is_null()) {
                best = match best {
                    None => Some(v),
                    Some(b) => {
                        let o = sql_cmp(v, b)?.unwrap_or(Ordering::Equal);
                        let better = if f == Func::Greatest {
                            o == Ordering::Greater
                        } else {
                            o == Ordering::Less
                        };
                        Some(if better { v } else { b })
                    }
                };
            }
            Ok(match best {
                None => Value::Null,
                Some(Value::Int(i)) if float => Value::Float(*i as f64),
                Some(v) => v.clone(),
            })
        }
        _ => {
            let [v] = vals.as_slice() else {
                return Err(no_function(f, &vals));
            };
            Ok(match (f, v) {
                (_, Value::Null) => Value::Null,
                (Func::Lower, Value::Text(s)) => Value::Text(s.to_lowercase()),
                (Func::Upper, Value::Text(s)) => Value::Text(s.to_uppercase()),
                (Func::Length, Value::Text(s)) => Value::Int(s.chars().count() as i64),
                (Func::Abs, Value::Int(i)) => {
                    Value::Int(i.checked_abs().ok_or_else(bigint_out_of_range)?)
                }
                (Func::Abs, Value::Float(x)) => Value::Float(x.abs()),
                _ => return Err(no_function(f, &vals)),
            })
        }
    }
}

/// A value as text, as PostgreSQL's output functions write it.
fn text_of(v: &Value) -> Result<String, SqlError> {
    Ok(match v {
        Value::Null => String::new(),
        Value::Bool(b) => (if *b { "true" } else { "false" }).to_owned(),
        Value::Int(i) => i.to_string(),
        Value::Float(x) => float_text(*x),
        Value::Text(s) => s.clone(),
        // Virtual time has no calendar: PostgreSQL would print a date.
        Value::Timestamp(_) => {
            return Err(SqlError::FeatureNotSupported {
                feature: "a timestamp as text".into(),
            })
        }
    })
}

/// `float8out`: the shortest text that reads back as the same number, in exponent form
/// below 1e-4 and from 1e15.
fn float_text(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let exp = x.abs().log10().floor();
    if !(-4.0..15.0).contains(&exp) {
        // Rust writes `1.5e-7`; PostgreSQL `1.5e-07`, `1e+20`.
        let s = format!("{x:e}");
        let (mantissa, e) = s.split_once('e').expect("exponent form");
        let (sign, digits) = match e.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', e),
        };
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    format!("{x}")
}

/// `CAST(v AS ty)` with PostgreSQL's rules for the casts between the model's types.
pub(crate) fn cast(
    v: Value,
    ty: ColumnType,
    now: impl FnOnce() -> Result<Instant, SqlError>,
) -> Result<Value, SqlError> {
    Ok(match (v, ty) {
        (Value::Null, _) => Value::Null,
        (v @ Value::Bool(_), ColumnType::Bool)
        | (v @ Value::Int(_), ColumnType::Int)
        | (v @ Value::Float(_), ColumnType::Float)
        | (v @ Value::Text(_), ColumnType::Text)
        | (v @ Value::Timestamp(_), ColumnType::Timestamp) => v,
        (Value::Int(i), ColumnType::Float) => Value::Float(i as f64),
        (Value::Float(x), ColumnType::Int) => {
            // Half away from zero, as a numeric literal cast in PostgreSQL.
            let r = x.round();
            if r.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&r) {
                return Err(bigint_out_of_range());
            }
            Value::Int(r as i64)
        }
        (Value::Int(i), ColumnType::Bool) => Value::Bool(i != 0),
        (Value::Bool(b), ColumnType::Int) => Value::Int(i64::from(b)),
        // Nanoseconds of virtual time, as a serde round trip of `Instant` gives them.
        (Value::Int(i), ColumnType::Timestamp) if i >= 0 => {
            Value::Timestamp(Instant::from_nanos(i as u64))
        }
        (v @ (Value::Bool(_) | Value::Int(_) | Value::Float(_)), ColumnType::Text) => {
            Value::Text(text_of(&v)?)
        }
        (Value::Text(s), ty) => parse_text(&s, ty, now)?,
        (v, ty) => {
            return Err(SqlError::CannotCoerce {
                from: v.type_name().into(),
                to: ty.to_string(),
            })
        }
    })
}

/// Text read as a value of `ty`, as PostgreSQL's input functions read it (surrounding
/// whitespace ignored): 22P02 if it is not one, 22003 if it is out of range.
fn parse_text(
    s: &str,
    ty: ColumnType,
    now: impl FnOnce() -> Result<Instant, SqlError>,
) -> Result<Value, SqlError> {
    let invalid = || SqlError::InvalidTextRepresentation {
        detail: format!("type {ty}: \"{s}\""),
    };
    let t = s.trim();
    Ok(match ty {
        ColumnType::Text => Value::Text(s.to_owned()),
        ColumnType::Int => {
            let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            Value::Int(
                t.parse::<i64>()
                    .map_err(|_| SqlError::NumericValueOutOfRange {
                        detail: format!("value \"{s}\" is out of range for type bigint"),
                    })?,
            )
        }
        ColumnType::Float => {
            let x: f64 = t.parse().map_err(|_| invalid())?;
            let spelled_infinite = t.to_ascii_lowercase().contains("inf");
            if x.is_infinite() && !spelled_infinite {
                return Err(SqlError::NumericValueOutOfRange {
                    detail: format!("\"{s}\" is out of range for type double precision"),
                });
            }
            Value::Float(x)
        }
        ColumnType::Bool => {
            let l = t.to_ascii_lowercase();
            let prefix_of = |word: &str, min: usize| l.len() >= min && word.starts_with(&l);
            Value::Bool(
                if prefix_of("true", 1) || prefix_of("yes", 1) || l == "on" || l == "1" {
                    true
                } else if prefix_of("false", 1)
                    || prefix_of("no", 1)
                    || prefix_of("off", 2)
                    || l == "0"
                {
                    false
                } else {
                    return Err(invalid());
                },
            )
        }
        ColumnType::Timestamp => {
            if t.eq_ignore_ascii_case("now") {
                Value::Timestamp(now()?)
            } else if let Some(n) = t.strip_suffix("ns").and_then(|n| n.parse::<u64>().ok()) {
                // How the model prints a timestamp: nanoseconds of virtual time.
                Value::Timestamp(Instant::from_nanos(n))
            } else {
                return Err(invalid());
            }
        }
    })
}

/// The expression as SQL, fully parenthesised.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Col(c) => f.write_str(c),
            Expr::Excluded(c) => write!(f, "EXCLUDED.{c}"),
            Expr::Lit(v) => v.fmt(f),
            Expr::Bin(op, a, b) => write!(f, "({a} {} {b})", op.symbol()),
            Expr::Not(a) => write!(f, "(NOT {a})"),
            Expr::IsNull(a) => write!(f, "({a} IS NULL)"),
            Expr::Param(n) => write!(f, "${n}"),
            Expr::Neg(a) => write!(f, "(- {a})"),
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                write!(f, "({expr} {}IN (", if *negated { "NOT " } else { "" })?;
                for (i, e) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    e.fmt(f)?;
                }
                f.write_str("))")
            }
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => write!(
                f,
                "({expr} {}{} {pattern})",
                if *negated { "NOT " } else { "" },
                if *case_insensitive { "ILIKE" } else { "LIKE" }
            ),
            Expr::Func(func, args) => {
                write!(f, "{}(", func.name())?;
                for (i, e) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    e.fmt(f)?;
                }
                f.write_str(")")
            }
            Expr::Agg(agg, None) => write!(f, "{}(*)", agg.name()),
            Expr::Agg(agg, Some(e)) => write!(f, "{}({e})", agg.name()),
            Expr::Cast(e, ty) => write!(f, "CAST({e} AS {ty})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::value::ColumnType;

    fn schema() -> TableSchema {
        TableSchema::new("t")
            .column("a", ColumnType::Int)
            .nullable_column("b", ColumnType::Int)
            .primary_key(&["a"])
    }

    #[test]
    fn three_valued_logic() {
        let s = schema();
        let t = [Value::Int(1), Value::Null];
        assert_eq!(col("b").eq(1).eval(&s, &t, None).unwrap(), Value::Null);
        assert!(!col("b").eq(1).matches(&s, &t, None).unwrap());
        assert!(!(!col("b").eq(1)).matches(&s, &t, None).unwrap());
        assert!(col("b")
            .eq(1)
            .or(col("a").eq(1))
            .matches(&s, &t, None)
            .unwrap());
        assert_eq!(
            col("b")
                .eq(1)
                .and(col("a").eq(1))
                .eval(&s, &t, None)
                .unwrap(),
            Value::Null
        );
        assert!(col("b").is_null().matches(&s, &t, None).unwrap());
    }

    #[test]
    fn arithmetic_errors_are_sql_errors() {
        let s = schema();
        let t = [Value::Int(i64::MAX), Value::Int(0)];
        assert_eq!(
            col("a").plus(1).eval(&s, &t, None).unwrap_err().sqlstate(),
            Some("22003")
        );
        assert_eq!(
            col("a")
                .divided_by(col("b"))
                .eval(&s, &t, None)
                .unwrap_err()
                .sqlstate(),
            Some("22012")
        );
        assert_eq!(
            col("zz").eval(&s, &t, None).unwrap_err().sqlstate(),
            Some("42703")
        );
    }
}
