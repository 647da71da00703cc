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

use super::engine::Ctx;
use super::error::SqlError;
use super::schema::TableSchema;
use super::value::datetime::{self, Interval};
use super::value::jsonb::{self, Jsonb};
use super::value::{apply_typmod, float_to_bigint, ColumnType, Numeric, Uuid, Value};

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
    /// jsonb `->`: an object's field (text) or an array's element (integer).
    JsonGet,
    /// jsonb `->>`: the same as text.
    JsonGetText,
    /// jsonb `#>`: the value at a path (`'{a,0}'`).
    JsonPath,
    /// jsonb `#>>`: the same as text.
    JsonPathText,
    /// jsonb `@>`: contains.
    Contains,
    /// jsonb `<@`: is contained by.
    ContainedBy,
    /// jsonb `?`: the key (or string element) exists.
    JsonExists,
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
            BinOp::JsonGet => "->",
            BinOp::JsonGetText => "->>",
            BinOp::JsonPath => "#>",
            BinOp::JsonPathText => "#>>",
            BinOp::Contains => "@>",
            BinOp::ContainedBy => "<@",
            BinOp::JsonExists => "?",
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
    /// `gen_random_uuid()`: from the simulation's seeded randomness.
    GenRandomUuid,
    /// `round(numeric [, scale])`, `round(double precision)`.
    Round,
    /// The sequence functions (see `calls`): they change the database, so each call is
    /// made once per evaluation, in evaluation order.
    Nextval,
    Currval,
    Setval,
    Lastval,
    /// `pg_get_serial_sequence(table, column)`: the sequence a serial or identity column
    /// draws from, schema-qualified (`public.t_id_seq`).
    PgGetSerialSequence,
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
            Func::GenRandomUuid => "gen_random_uuid",
            Func::Round => "round",
            Func::Nextval => "nextval",
            Func::Currval => "currval",
            Func::Setval => "setval",
            Func::Lastval => "lastval",
            Func::PgGetSerialSequence => "pg_get_serial_sequence",
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
            ctx: None,
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
            ctx: None,
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

    /// [`Expr::eval_in`], borrowing a column's or a literal's value instead of copying
    /// it: a WHERE compares every row's columns, and most of them need no copy.
    fn eval_ref<'a, E: Env + ?Sized>(&'a self, env: &'a E) -> Result<Cow<'a, Value>, SqlError> {
        if let Some(v) = env.grouped(self) {
            return v.map(Cow::Owned);
        }
        match self {
            Expr::Col(c) => env.col(c).map(Cow::Borrowed),
            Expr::Lit(v) => Ok(Cow::Borrowed(v)),
            _ => self.eval_in(env).map(Cow::Owned),
        }
    }

    /// Evaluates a value assigned to a column of type `ty` (INSERT VALUES, UPDATE SET): a
    /// quoted literal has no type of its own in PostgreSQL and is read by the column
    /// type's input function (`'5'` into a bigint is 5, `'x'` is 22P02), where a text
    /// value would be 42804.
    pub(crate) fn eval_assigned<E: Env + ?Sized>(
        &self,
        env: &E,
        ty: ColumnType,
    ) -> Result<Value, SqlError> {
        match self {
            Expr::Lit(Value::Text(s)) if ty != ColumnType::Text => parse_text(s, ty, || env.now()),
            _ => self.eval_in(env),
        }
    }

    /// Evaluates in an environment: a row (or a joined row, or a group) and the
    /// transaction's start time.
    pub(crate) fn eval_in<E: Env + ?Sized>(&self, env: &E) -> Result<Value, SqlError> {
        if let Some(v) = env.grouped(self) {
            return v;
        }
        Ok(match self {
            Expr::Col(c) => env.col(c)?.clone(),
            Expr::Excluded(c) => env.excluded(c)?,
            Expr::Lit(v) => v.clone(),
            Expr::Param(n) => return Err(SqlError::UndefinedParameter(*n)),
            Expr::Not(a) => match a.eval_in(env)? {
                Value::Null => Value::Null,
                Value::Bool(b) => Value::Bool(!b),
                v => return Err(not_boolean(&v)),
            },
            Expr::IsNull(a) => Value::Bool(a.eval_ref(env)?.is_null()),
            Expr::Bin(op, a, b) => {
                let x = a.eval_ref(env)?;
                match op {
                    // AND/OR short-circuit only where three-valued logic allows it.
                    BinOp::And if *x == Value::Bool(false) => Value::Bool(false),
                    BinOp::Or if *x == Value::Bool(true) => Value::Bool(true),
                    _ => {
                        let y = b.eval_ref(env)?;
                        match compare(*op, &x, &y) {
                            Some(v) => v?,
                            None => {
                                let (x, y) = (x.into_owned(), y.into_owned());
                                let (x, y) = unknown_literal(*op, a, x, b, y, env)?;
                                apply(*op, x, y)?
                            }
                        }
                    }
                }
            }
            Expr::Neg(a) => match a.eval_in(env)? {
                Value::Null => Value::Null,
                Value::Int(i) => Value::Int(i.checked_neg().ok_or_else(bigint_out_of_range)?),
                Value::Float(x) => Value::Float(-x),
                Value::Numeric(n) => Value::numeric(n.neg()),
                Value::Interval(i) => Value::Interval(i.neg()?),
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
                let x = expr.eval_ref(env)?;
                if x.is_null() {
                    return Ok(Value::Null);
                }
                let mut unknown = false;
                let mut found = false;
                for e in list {
                    let y = e.eval_ref(env)?;
                    let o = if is_unknown_pair(&x, &y) {
                        let (x, y) = (x.clone().into_owned(), y.into_owned());
                        let (x, y) = unknown_literal(BinOp::Eq, expr, x, e, y, env)?;
                        sql_cmp(&x, &y)?
                    } else {
                        sql_cmp(&x, &y)?
                    };
                    match o {
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
    /// The value of a column, borrowed: a comparison reads it in place.
    fn col(&self, name: &str) -> Result<&Value, SqlError>;
    fn excluded(&self, name: &str) -> Result<Value, SqlError>;
    /// `now()`: the transaction's start.
    fn now(&self) -> Result<Instant, SqlError>;
    /// A sequence function (see `calls`), with its arguments evaluated; only a running
    /// statement has them.
    fn call(&self, f: Func, _args: &[Value]) -> Result<Value, SqlError> {
        Err(SqlError::FeatureNotSupported {
            feature: format!("{}() outside a statement", f.name()),
        })
    }
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
    /// The running statement (`None` in tests of expressions alone).
    pub ctx: Option<&'a Ctx>,
}

impl Env for TupleEnv<'_> {
    fn col(&self, name: &str) -> Result<&Value, SqlError> {
        Ok(&self.tuple[self.schema.require_column(name)?])
    }
    fn excluded(&self, name: &str) -> Result<Value, SqlError> {
        let i = self.schema.require_column(name)?;
        Ok(self.excluded.map_or(Value::Null, |t| t[i].clone()))
    }
    fn now(&self) -> Result<Instant, SqlError> {
        self.ctx
            .map(|c| c.now)
            .ok_or_else(|| SqlError::FeatureNotSupported {
                feature: "now() outside a statement".into(),
            })
    }
    fn call(&self, f: Func, args: &[Value]) -> Result<Value, SqlError> {
        match self.ctx {
            Some(c) => c.calls.call(f, args),
            None => Err(SqlError::FeatureNotSupported {
                feature: format!("{}() outside a statement", f.name()),
            }),
        }
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

    /// The declared type of a column the scope names, if it names one.
    pub fn column_type(&self, name: &str) -> Option<ColumnType> {
        let pos = self.resolve(name).ok()?;
        let (_, t, _) = self.column_at(pos);
        Some(t.schema.columns[pos - t.offset].ty)
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
    pub ctx: &'a Ctx,
}

impl Env for JoinedEnv<'_> {
    fn col(&self, name: &str) -> Result<&Value, SqlError> {
        Ok(&self.tuple[self.scope.resolve(name)?])
    }
    fn excluded(&self, _name: &str) -> Result<Value, SqlError> {
        Err(SqlError::UndefinedTable("excluded".into()))
    }
    fn now(&self) -> Result<Instant, SqlError> {
        Ok(self.ctx.now)
    }
    fn call(&self, f: Func, args: &[Value]) -> Result<Value, SqlError> {
        self.ctx.calls.call(f, args)
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

/// SQL comparison: `None` when either side is NULL; integers, numerics and floats compare
/// as numbers (a float beside a numeric as floats, as PostgreSQL casts the numeric);
/// both timestamp kinds as instants (the session's time zone is UTC); other types only
/// with their own kind.
pub(crate) fn sql_cmp(x: &Value, y: &Value) -> Result<Option<Ordering>, SqlError> {
    Ok(match (x, y) {
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::Int(a), Value::Float(b)) => (*a as f64).partial_cmp(b),
        (Value::Float(a), Value::Int(b)) => a.partial_cmp(&(*b as f64)),
        (Value::Float(a), Value::Float(b)) => a.partial_cmp(b),
        (Value::Int(a), Value::Numeric(b)) => Some(Numeric::from_i64(*a).cmp(b)),
        (Value::Numeric(a), Value::Int(b)) => Some((**a).cmp(&Numeric::from_i64(*b))),
        (Value::Float(a), Value::Numeric(b)) => a.partial_cmp(&b.to_f64()?),
        (Value::Numeric(a), Value::Float(b)) => a.to_f64()?.partial_cmp(b),
        (
            Value::Timestamp(a) | Value::TimestampTz(a),
            Value::Timestamp(b) | Value::TimestampTz(b),
        ) => Some(a.cmp(b)),
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
        (Value::Int(_) | Value::Float(_) | Value::Numeric(_), Value::Numeric(_))
        | (Value::Numeric(_), Value::Int(_) | Value::Float(_))
        | (
            Value::Timestamp(_) | Value::TimestampTz(_),
            Value::Timestamp(_) | Value::TimestampTz(_),
        ) => sql_cmp(x, y).ok().flatten().unwrap_or_else(|| x.cmp(y)),
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

/// The column type of a value's type, if it has one (text is left alone).
fn type_of(v: &Value) -> Option<ColumnType> {
    Some(match v {
        Value::Null | Value::Text(_) => return None,
        Value::Bool(_) => ColumnType::Bool,
        Value::Int(_) => ColumnType::Int,
        Value::Float(_) => ColumnType::Float,
        Value::Numeric(_) => ColumnType::Numeric(None),
        Value::Json(_) => ColumnType::Jsonb,
        Value::Uuid(_) => ColumnType::Uuid,
        Value::Timestamp(_) => ColumnType::Timestamp,
        Value::TimestampTz(_) => ColumnType::TimestampTz,
        Value::Interval(_) => ColumnType::Interval,
    })
}

/// Whether one side is text and the other a value of another type (not NULL): where a
/// quoted literal may be of unknown type.
fn is_unknown_pair(x: &Value, y: &Value) -> bool {
    matches!(x, Value::Text(_)) != matches!(y, Value::Text(_)) && !x.is_null() && !y.is_null()
}

/// A quoted literal (or a `$n`, whose type PostgreSQL infers the same way) is of
/// unknown type in PostgreSQL and takes the type the operator needs beside the other
/// operand: `id = 'a0ee…'` reads the text as a uuid, `at + '5 minutes'` as an interval.
/// A text column or a cast to text stays text.
fn unknown_literal<E: Env + ?Sized>(
    op: BinOp,
    a: &Expr,
    x: Value,
    b: &Expr,
    y: Value,
    env: &E,
) -> Result<(Value, Value), SqlError> {
    if !is_unknown_pair(&x, &y) {
        return Ok((x, y));
    }
    let literal = |e: &Expr| matches!(e, Expr::Lit(Value::Text(_)));
    if matches!(x, Value::Text(_)) && literal(a) {
        if let Some(ty) = type_of(&y).and_then(|t| literal_type(op, t)) {
            return Ok((cast(x, ty, || env.now())?, y));
        }
    } else if matches!(y, Value::Text(_)) && literal(b) {
        if let Some(ty) = type_of(&x).and_then(|t| literal_type(op, t)) {
            let y = cast(y, ty, || env.now())?;
            return Ok((x, y));
        }
    }
    Ok((x, y))
}

/// A quoted literal read as a value of `ty` by the type's input function.
pub(crate) fn read_literal<E: Env + ?Sized>(
    text: &str,
    ty: ColumnType,
    env: &E,
) -> Result<Value, SqlError> {
    parse_text(text, ty, || env.now())
}

/// The type an unknown literal takes beside an operand of type `other` under `op`.
pub(crate) fn literal_type(op: BinOp, other: ColumnType) -> Option<ColumnType> {
    // A numeric column's precision and scale do not bind a literal compared with it.
    let same = match other {
        ColumnType::Numeric(_) => ColumnType::Numeric(None),
        ColumnType::Text => return None,
        t => t,
    };
    match op {
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => Some(same),
        BinOp::And | BinOp::Or => (same == ColumnType::Bool).then_some(same),
        // timestamp + timestamp does not exist; + interval is the one candidate.
        BinOp::Add if matches!(same, ColumnType::Timestamp | ColumnType::TimestampTz) => {
            Some(ColumnType::Interval)
        }
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => match same {
            ColumnType::Int
            | ColumnType::Float
            | ColumnType::Numeric(_)
            | ColumnType::Timestamp
            | ColumnType::TimestampTz
            | ColumnType::Interval => Some(same),
            _ => None,
        },
        BinOp::Contains | BinOp::ContainedBy => (same == ColumnType::Jsonb).then_some(same),
        _ => None,
    }
}

fn no_operator(op: BinOp, x: &Value, y: &Value) -> SqlError {
    SqlError::UndefinedFunction {
        name: format!(
            "operator {} {} {} (operator does not exist)",
            x.type_name(),
            op.symbol(),
            y.type_name()
        ),
    }
}

/// The numeric of an integer or numeric value.
fn as_numeric(v: &Value) -> Option<std::borrow::Cow<'_, Numeric>> {
    match v {
        Value::Int(i) => Some(std::borrow::Cow::Owned(Numeric::from_i64(*i))),
        Value::Numeric(n) => Some(std::borrow::Cow::Borrowed(&**n)),
        _ => None,
    }
}

/// A float operand: a double, an integer, or a numeric beside a double.
fn as_float(v: &Value) -> Result<Option<f64>, SqlError> {
    Ok(match v {
        Value::Float(x) => Some(*x),
        Value::Int(i) => Some(*i as f64),
        Value::Numeric(n) => Some(n.to_f64()?),
        _ => None,
    })
}

fn interval_overflow() -> SqlError {
    SqlError::DatetimeFieldOverflow {
        detail: "interval out of range".into(),
    }
}

/// A comparison operator's answer (NULL beside NULL), by reference; `None` for another
/// operator, or for operands a quoted literal's type is still to be decided for (see
/// [`unknown_literal`]).
fn compare(op: BinOp, x: &Value, y: &Value) -> Option<Result<Value, SqlError>> {
    let comparing = matches!(
        op,
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
    );
    if !comparing || is_unknown_pair(x, y) {
        return None;
    }
    Some(comparison(op, x, y))
}

/// `x op y` for a comparison operator: NULL beside NULL, else whether the order holds.
fn comparison(op: BinOp, x: &Value, y: &Value) -> Result<Value, SqlError> {
    let Some(o) = sql_cmp(x, y)? else {
        return Ok(Value::Null);
    };
    Ok(Value::Bool(match op {
        BinOp::Eq => o.is_eq(),
        BinOp::Ne => o.is_ne(),
        BinOp::Lt => o.is_lt(),
        BinOp::Le => o.is_le(),
        BinOp::Gt => o.is_gt(),
        _ => o.is_ge(),
    }))
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
            comparison(op, &x, &y)?
        }
        BinOp::Mod => match (&x, &y) {
            (Value::Null, _) | (_, Value::Null) => Value::Null,
            (Value::Int(_), Value::Int(0)) => return Err(SqlError::DivisionByZero),
            // i64::MIN % -1 overflows in Rust; PostgreSQL answers 0.
            (Value::Int(a), Value::Int(b)) => Value::Int(a.checked_rem(*b).unwrap_or(0)),
            (Value::Int(_) | Value::Numeric(_), Value::Int(_) | Value::Numeric(_)) => {
                let (a, b) = (
                    as_numeric(&x).expect("numeric"),
                    as_numeric(&y).expect("numeric"),
                );
                Value::numeric(a.rem(&b)?)
            }
            _ => return Err(no_operator(&x, &y)),
        },
        BinOp::Concat => match (&x, &y) {
            (Value::Json(_), _) | (_, Value::Json(_)) => {
                return Err(SqlError::FeatureNotSupported {
                    feature: "jsonb || (concatenation)".into(),
                })
            }
            (Value::Null, _) | (_, Value::Null) => Value::Null,
            (Value::Text(a), b) => Value::Text(format!("{a}{}", b.text_cast())),
            (a, Value::Text(b)) => Value::Text(format!("{}{b}", a.text_cast())),
            _ => return Err(no_operator(&x, &y)),
        },
        BinOp::JsonGet
        | BinOp::JsonGetText
        | BinOp::JsonPath
        | BinOp::JsonPathText
        | BinOp::Contains
        | BinOp::ContainedBy
        | BinOp::JsonExists => json_op(op, &x, &y)?,
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
            (x @ (Value::Int(_) | Value::Numeric(_)), y @ (Value::Int(_) | Value::Numeric(_))) => {
                let (a, b) = (
                    as_numeric(&x).expect("numeric"),
                    as_numeric(&y).expect("numeric"),
                );
                Value::numeric(match op {
                    BinOp::Add => a.add(&b)?,
                    BinOp::Sub => a.sub(&b)?,
                    BinOp::Mul => a.mul(&b)?,
                    _ => a.div(&b)?,
                })
            }
            (ts @ (Value::Timestamp(_) | Value::TimestampTz(_)), Value::Interval(iv))
                if matches!(op, BinOp::Add | BinOp::Sub) =>
            {
                let iv = if op == BinOp::Sub { iv.neg()? } else { iv };
                shift(ts, &iv)?
            }
            (Value::Interval(iv), ts @ (Value::Timestamp(_) | Value::TimestampTz(_)))
                if op == BinOp::Add =>
            {
                shift(ts, &iv)?
            }
            (
                Value::Timestamp(a) | Value::TimestampTz(a),
                Value::Timestamp(b) | Value::TimestampTz(b),
            ) if op == BinOp::Sub => Value::Interval(datetime::difference(a, b)?),
            (Value::Interval(a), Value::Interval(b)) if matches!(op, BinOp::Add | BinOp::Sub) => {
                let b = if op == BinOp::Sub { b.neg()? } else { b };
                Value::Interval(Interval {
                    months: a
                        .months
                        .checked_add(b.months)
                        .ok_or_else(interval_overflow)?,
                    days: a.days.checked_add(b.days).ok_or_else(interval_overflow)?,
                    micros: a
                        .micros
                        .checked_add(b.micros)
                        .ok_or_else(interval_overflow)?,
                })
            }
            (a, b) => match (as_float(&a)?, as_float(&b)?) {
                (Some(a), Some(b)) => {
                    let infinite = a.is_infinite() || b.is_infinite();
                    Value::Float(match op {
                        BinOp::Add => float8_checked(a + b, infinite, true)?,
                        BinOp::Sub => float8_checked(a - b, infinite, true)?,
                        BinOp::Mul => float8_checked(a * b, infinite, a == 0.0 || b == 0.0)?,
                        _ if b == 0.0 => return Err(SqlError::DivisionByZero),
                        _ => float8_checked(a / b, a.is_infinite(), a == 0.0 || b.is_infinite())?,
                    })
                }
                _ => {
                    return Err(SqlError::DatatypeMismatch {
                        detail: format!("operator does not exist: {}", op.symbol()),
                    })
                }
            },
        },
    })
}

/// PostgreSQL's `check_float8_val`: a float8 result that became infinite without an
/// infinite operand overflowed, one that became zero without a zero operand (or an
/// infinite divisor) underflowed; both are 22003 rather than a stored infinity or zero.
fn float8_checked(r: f64, infinity_ok: bool, zero_ok: bool) -> Result<f64, SqlError> {
    // PostgreSQL's message is "value out of range: overflow" (or underflow).
    let out_of_range = |what: &str| SqlError::NumericValueOutOfRange {
        detail: what.to_owned(),
    };
    if r.is_infinite() && !infinity_ok {
        return Err(out_of_range("overflow"));
    }
    if r == 0.0 && !zero_ok {
        return Err(out_of_range("underflow"));
    }
    Ok(r)
}

/// A timestamp moved by an interval, keeping its kind.
fn shift(ts: Value, iv: &Interval) -> Result<Value, SqlError> {
    Ok(match ts {
        Value::Timestamp(t) => Value::Timestamp(datetime::add_interval(t, iv)?),
        Value::TimestampTz(t) => Value::TimestampTz(datetime::add_interval(t, iv)?),
        other => other,
    })
}

/// The jsonb operators.
fn json_op(op: BinOp, x: &Value, y: &Value) -> Result<Value, SqlError> {
    if x.is_null() || y.is_null() {
        return Ok(Value::Null);
    }
    let found = |v: Option<&Jsonb>, text: bool| match v {
        None => Value::Null,
        Some(j) if text => j.as_text().map_or(Value::Null, Value::Text),
        Some(j) => Value::json(j.clone()),
    };
    Ok(match (op, x, y) {
        (BinOp::JsonGet | BinOp::JsonGetText, Value::Json(j), Value::Text(k)) => {
            found(j.field(k), op == BinOp::JsonGetText)
        }
        (BinOp::JsonGet | BinOp::JsonGetText, Value::Json(j), Value::Int(i)) => {
            found(j.element(*i), op == BinOp::JsonGetText)
        }
        (BinOp::JsonPath | BinOp::JsonPathText, Value::Json(j), Value::Text(p)) => {
            let path = jsonb::parse_path(p)?;
            found(j.at_path(&path), op == BinOp::JsonPathText)
        }
        (BinOp::Contains, Value::Json(a), Value::Json(b)) => Value::Bool(a.contains(b)),
        (BinOp::ContainedBy, Value::Json(a), Value::Json(b)) => Value::Bool(b.contains(a)),
        (BinOp::JsonExists, Value::Json(j), Value::Text(k)) => Value::Bool(j.exists(k)),
        _ => return Err(no_operator(op, x, y)),
    })
}

/// `sum()` and `avg()` of a group's non-NULL values (at least one): a sum of integers
/// stays an integer (the model's one integer type also stands for `integer`, whose sum
/// PostgreSQL keeps bigint), a sum of numerics is exact at the largest scale, an average
/// of integers or numerics is the numeric quotient (`numeric_avg`: sum / count at
/// `select_div_scale`), of doubles a double.
pub(crate) fn sum_or_avg(f: AggFunc, vals: &[Value]) -> Result<Value, SqlError> {
    let no_function = |v: &Value| SqlError::UndefinedFunction {
        name: format!("{}({})", f.name(), v.type_name()),
    };
    let count = vals.len() as i64;
    if vals.iter().any(|v| matches!(v, Value::Float(_))) {
        let mut sum = 0.0;
        for v in vals {
            let x = as_float(v)?.ok_or_else(|| no_function(v))?;
            sum = float8_checked(sum + x, sum.is_infinite() || x.is_infinite(), true)?;
        }
        return Ok(Value::Float(if f == AggFunc::Sum {
            sum
        } else {
            sum / count as f64
        }));
    }
    if vals.iter().all(|v| matches!(v, Value::Int(_))) {
        let sum: i128 = vals
            .iter()
            .map(|v| i128::from(v.as_int().unwrap_or(0)))
            .sum();
        return Ok(if f == AggFunc::Sum {
            Value::Int(i64::try_from(sum).map_err(|_| bigint_out_of_range())?)
        } else {
            let sum = Numeric::parse(&sum.to_string())?;
            Value::numeric(sum.div(&Numeric::from_i64(count))?)
        });
    }
    let mut sum = Numeric::zero();
    for v in vals {
        sum = sum.add(&*as_numeric(v).ok_or_else(|| no_function(v))?)?;
    }
    Ok(Value::numeric(if f == AggFunc::Sum {
        sum
    } else {
        sum.div(&Numeric::from_i64(count))?
    }))
}

/// `s LIKE p`: `%` matches any run of characters, `_` one character, `\\` makes the next
/// character literal (a trailing `\\` stands for itself).
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
        Func::Now | Func::GenRandomUuid => {
            if !args.is_empty() {
                let vals = args
                    .iter()
                    .map(|a| a.eval_in(env))
                    .collect::<Result<Vec<_>, _>>()?;
                return Err(no_function(f, &vals));
            }
            return Ok(if f == Func::Now {
                Value::timestamptz_at(env.now()?)
            } else {
                Value::Uuid(Uuid::generate()?)
            });
        }
        Func::Nextval
        | Func::Currval
        | Func::Setval
        | Func::Lastval
        | Func::PgGetSerialSequence => {
            let vals = args
                .iter()
                .map(|a| a.eval_in(env))
                .collect::<Result<Vec<_>, _>>()?;
            return env.call(f, &vals);
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
            // The common type: double if any is one, else numeric if any is one.
            let float = vals.iter().any(|v| matches!(v, Value::Float(_)));
            let numeric = vals.iter().any(|v| matches!(v, Value::Numeric(_)));
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
                Some(v @ (Value::Int(_) | Value::Numeric(_))) if float => {
                    Value::Float(as_float(v)?.unwrap_or_default())
                }
                Some(Value::Int(i)) if numeric => Value::numeric(Numeric::from_i64(*i)),
                Some(v) => v.clone(),
            })
        }
        Func::Round => match vals.as_slice() {
            [Value::Null] | [_, Value::Null] | [Value::Null, _] => Ok(Value::Null),
            [Value::Numeric(n)] => Ok(Value::numeric(n.round(0))),
            [Value::Numeric(n), Value::Int(s)] => {
                let s = (*s).clamp(-2000, 2000);
                let r = n.round(s);
                Ok(Value::numeric(r))
            }
            // rint: halves to even.
            [Value::Float(x)] => Ok(Value::Float(x.round_ties_even())),
            [Value::Int(_)] | [Value::Int(_), Value::Int(_)] => {
                Err(SqlError::FeatureNotSupported {
                    feature: "round() of an integer (cast it to numeric)".into(),
                })
            }
            _ => Err(no_function(f, &vals)),
        },
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
                (Func::Abs, Value::Numeric(n)) => Value::numeric(n.abs()),
                _ => return Err(no_function(f, &vals)),
            })
        }
    }
}

/// `CAST(v AS ty)` with PostgreSQL's rules for the casts between the model's types:
/// every type to text (its output function) and from text (its input function), among
/// the numbers, and between the timestamp kinds (the session's zone is UTC).
pub(crate) fn cast(
    v: Value,
    ty: ColumnType,
    now: impl FnOnce() -> Result<Instant, SqlError>,
) -> Result<Value, SqlError> {
    Ok(match (v, ty) {
        (Value::Null, _) => Value::Null,
        (v @ Value::Text(_), ColumnType::Text) => v,
        (v, ColumnType::Text) => Value::Text(v.text_cast()),
        (Value::Text(s), ty) => parse_text(&s, ty, now)?,
        (v @ Value::Bool(_), ColumnType::Bool)
        | (v @ Value::Int(_), ColumnType::Int)
        | (v @ Value::Float(_), ColumnType::Float)
        | (v @ Value::Json(_), ColumnType::Jsonb)
        | (v @ Value::Uuid(_), ColumnType::Uuid)
        | (v @ Value::Interval(_), ColumnType::Interval) => v,
        (Value::Int(i), ColumnType::Float) => Value::Float(i as f64),
        (Value::Float(x), ColumnType::Int) => Value::Int(float_to_bigint(x)?),
        (Value::Int(i), ColumnType::Bool) => Value::Bool(i != 0),
        (Value::Bool(b), ColumnType::Int) => Value::Int(i64::from(b)),
        (Value::Numeric(n), ColumnType::Int) => Value::Int(n.to_i64()?),
        (Value::Numeric(n), ColumnType::Float) => Value::Float(n.to_f64()?),
        (Value::Numeric(n), ColumnType::Numeric(typmod)) => {
            Value::numeric(apply_typmod(*n, typmod)?)
        }
        (Value::Int(i), ColumnType::Numeric(typmod)) => {
            Value::numeric(apply_typmod(Numeric::from_i64(i), typmod)?)
        }
        (Value::Float(x), ColumnType::Numeric(typmod)) => {
            Value::numeric(apply_typmod(Numeric::from_f64(x)?, typmod)?)
        }
        (Value::Timestamp(t) | Value::TimestampTz(t), ColumnType::Timestamp) => Value::Timestamp(t),
        (Value::Timestamp(t) | Value::TimestampTz(t), ColumnType::TimestampTz) => {
            Value::TimestampTz(t)
        }
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
        ColumnType::Numeric(typmod) => Value::numeric(apply_typmod(Numeric::parse(s)?, typmod)?),
        ColumnType::Jsonb => Value::json(Jsonb::parse(s)?),
        ColumnType::Uuid => Value::Uuid(Uuid::parse(s)?),
        ColumnType::Interval => Value::Interval(Interval::parse(s)?),
        ColumnType::Timestamp | ColumnType::TimestampTz => {
            let with_tz = ty == ColumnType::TimestampTz;
            let t = if t.eq_ignore_ascii_case("now") {
                datetime::from_instant(now()?)
            } else {
                datetime::parse_timestamp(s, with_tz)?
            };
            if with_tz {
                Value::TimestampTz(t)
            } else {
                Value::Timestamp(t)
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

    /// float8 arithmetic checks its result as PostgreSQL's `check_float8_val` does.
    #[test]
    fn float8_overflow_and_underflow_are_22003() {
        let s = schema();
        let f = |e: Expr| e.eval(&s, &[], None);
        let state = |e: Expr| f(e).unwrap_err().to_string();
        assert_eq!(
            state(lit(1e300).times(1e300)),
            "value out of range: overflow"
        );
        assert_eq!(
            state(lit(1e308).plus(1e308)),
            "value out of range: overflow"
        );
        assert_eq!(
            state(lit(1e-300).times(1e-300)),
            "value out of range: underflow"
        );
        assert_eq!(
            state(lit(1e-300).divided_by(1e300)),
            "value out of range: underflow"
        );
        // Infinite or zero operands may give infinite or zero results.
        let inf = f64::INFINITY;
        assert_eq!(f(lit(inf).times(2.0)), Ok(Value::Float(inf)));
        assert_eq!(f(lit(0.0).times(1e-300)), Ok(Value::Float(0.0)));
        assert_eq!(f(lit(1.0).divided_by(inf)), Ok(Value::Float(0.0)));
        assert_eq!(f(lit(1.0).minus(1.0)), Ok(Value::Float(0.0)));
        let many = [Value::Float(1.7e308), Value::Float(1.7e308)];
        assert_eq!(
            sum_or_avg(AggFunc::Sum, &many).unwrap_err().sqlstate(),
            Some("22003")
        );
    }

    #[test]
    fn the_value_types_evaluate_as_postgres() {
        let s = TableSchema::new("t")
            .column("p", ColumnType::Numeric(None))
            .nullable_column("d", ColumnType::Jsonb)
            .nullable_column("u", ColumnType::Uuid)
            .nullable_column("at", ColumnType::TimestampTz)
            .primary_key(&["u"]);
        let t = [
            Value::numeric(Numeric::parse("1.50").unwrap()),
            Value::json(Jsonb::parse(r#"{"a": {"b": [1, "x"]}, "n": null}"#).unwrap()),
            Value::Uuid(Uuid::parse("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap()),
            Value::TimestampTz(datetime::parse_timestamp("2024-01-31 10:00:00+00", true).unwrap()),
        ];
        let eval = |e: Expr| e.eval(&s, &t, None).map(|v| v.text_cast());
        let bin = |op: BinOp, a: Expr, b: Expr| Expr::Bin(op, Box::new(a), Box::new(b));
        assert_eq!(
            eval(col("p").divided_by(3)).unwrap(),
            "0.50000000000000000000"
        );
        assert_eq!(eval(col("p").times(lit(2))).unwrap(), "3.00");
        assert_eq!(eval(col("p").plus(1.25)).unwrap(), "2.75");
        assert_eq!(
            eval(col("p").eq(lit("1.5"))).unwrap(),
            "true",
            "an unknown literal"
        );
        assert_eq!(
            eval(col("u").eq(lit("{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}"))).unwrap(),
            "true"
        );
        assert_eq!(
            col("u")
                .eq(lit("nope"))
                .eval(&s, &t, None)
                .unwrap_err()
                .sqlstate(),
            Some("22P02")
        );
        assert_eq!(
            col("p")
                .divided_by(lit(Numeric::zero()))
                .eval(&s, &t, None)
                .unwrap_err()
                .sqlstate(),
            Some("22012")
        );
        assert_eq!(
            eval(bin(BinOp::JsonGet, col("d"), lit("a"))).unwrap(),
            r#"{"b": [1, "x"]}"#
        );
        assert_eq!(
            eval(bin(BinOp::JsonPathText, col("d"), lit("{a,b,1}"))).unwrap(),
            "x"
        );
        assert_eq!(
            bin(BinOp::JsonGetText, col("d"), lit("n"))
                .eval(&s, &t, None)
                .unwrap(),
            Value::Null
        );
        assert_eq!(
            eval(bin(BinOp::Contains, col("d"), lit(r#"{"a": {}}"#))).unwrap(),
            "true"
        );
        assert_eq!(
            eval(bin(BinOp::JsonExists, col("d"), lit("n"))).unwrap(),
            "true"
        );
        let month = Value::Interval(Interval::parse("1 month").unwrap());
        assert_eq!(
            eval(col("at").plus(lit(month))).unwrap(),
            "2024-02-29 10:00:00+00"
        );
        assert_eq!(
            eval(col("at").plus(lit("90 minutes"))).unwrap(),
            "2024-01-31 11:30:00+00",
            "an unknown literal beside + is an interval"
        );
        assert_eq!(
            eval(col("at").minus(lit("2024-01-30 09:00:00+00"))).unwrap(),
            "1 day 01:00:00"
        );
        assert_eq!(
            eval(col("at").gt(lit("2024-01-31 09:00:00+01"))).unwrap(),
            "true"
        );
    }

    #[test]
    fn sums_and_averages_keep_postgres_types() {
        let n = |s: &str| Value::numeric(Numeric::parse(s).unwrap());
        let text = |f, v: &[Value]| sum_or_avg(f, v).unwrap().text_cast();
        assert_eq!(text(AggFunc::Sum, &[Value::Int(1), Value::Int(2)]), "3");
        assert_eq!(
            text(AggFunc::Avg, &[Value::Int(1), Value::Int(2)]),
            "1.5000000000000000"
        );
        assert_eq!(text(AggFunc::Sum, &[n("1.50"), n("2.255")]), "3.755");
        assert_eq!(
            text(AggFunc::Avg, &[n("1.50"), n("2.25")]),
            "1.8750000000000000"
        );
        assert_eq!(
            text(AggFunc::Avg, &[Value::Float(1.0), Value::Float(2.0)]),
            "1.5"
        );
    }
}
