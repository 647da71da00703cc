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

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::SqlError;
use super::schema::TableSchema;
use super::value::Value;

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
    Cast(Box<Expr>, super::value::ColumnType),
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

    /// Checks that every column named exists in `schema`, so that a typo fails the
    /// statement at once (42703) instead of on the first row evaluated.
    pub(crate) fn check_columns(&self, schema: &TableSchema) -> Result<(), SqlError> {
        match self {
            Expr::Col(c) | Expr::Excluded(c) => schema.require_column(c).map(|_| ()),
            Expr::Lit(_) => Ok(()),
            Expr::Bin(_, a, b) => {
                a.check_columns(schema)?;
                b.check_columns(schema)
            }
            Expr::Not(a) | Expr::IsNull(a) => a.check_columns(schema),
            other => Err(SqlError::FeatureNotSupported {
                feature: format!("expression {other}"),
            }),
        }
    }

    /// Evaluates against a stored tuple of `schema`; `excluded` is the proposed tuple of an
    /// `ON CONFLICT DO UPDATE`.
    pub(crate) fn eval(
        &self,
        schema: &TableSchema,
        tuple: &[Value],
        excluded: Option<&[Value]>,
    ) -> Result<Value, SqlError> {
        Ok(match self {
            Expr::Col(c) => tuple[schema.require_column(c)?].clone(),
            Expr::Excluded(c) => {
                let i = schema.require_column(c)?;
                excluded.map_or(Value::Null, |t| t[i].clone())
            }
            Expr::Lit(v) => v.clone(),
            Expr::Not(a) => match a.eval(schema, tuple, excluded)? {
                Value::Null => Value::Null,
                Value::Bool(b) => Value::Bool(!b),
                v => return Err(not_boolean(&v)),
            },
            Expr::IsNull(a) => Value::Bool(a.eval(schema, tuple, excluded)?.is_null()),
            Expr::Bin(op, a, b) => {
                let x = a.eval(schema, tuple, excluded)?;
                match op {
                    // AND/OR short-circuit only where three-valued logic allows it.
                    BinOp::And if x == Value::Bool(false) => Value::Bool(false),
                    BinOp::Or if x == Value::Bool(true) => Value::Bool(true),
                    _ => {
                        let y = b.eval(schema, tuple, excluded)?;
                        apply(*op, x, y)?
                    }
                }
            }
            other => {
                return Err(SqlError::FeatureNotSupported {
                    feature: format!("expression {other}"),
                })
            }
        })
    }

    /// Evaluates as a WHERE condition: true keeps the row, false and NULL drop it.
    pub(crate) fn matches(
        &self,
        schema: &TableSchema,
        tuple: &[Value],
        excluded: Option<&[Value]>,
    ) -> Result<bool, SqlError> {
        match self.eval(schema, tuple, excluded)? {
            Value::Bool(b) => Ok(b),
            Value::Null => Ok(false),
            v => Err(not_boolean(&v)),
        }
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

fn sql_cmp(x: &Value, y: &Value) -> Result<Option<Ordering>, SqlError> {
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

fn truth(v: &Value) -> Result<Option<bool>, SqlError> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        v => Err(not_boolean(v)),
    }
}

fn apply(op: BinOp, x: Value, y: Value) -> Result<Value, SqlError> {
    let out_of_range = || SqlError::NumericValueOutOfRange {
        detail: "bigint out of range".into(),
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
        BinOp::Mod | BinOp::Concat => {
            return Err(SqlError::FeatureNotSupported {
                feature: format!("operator {}", op.symbol()),
            })
        }
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
                .ok_or_else(out_of_range)?,
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
