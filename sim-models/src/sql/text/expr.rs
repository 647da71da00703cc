//! Expressions and types of SQL text, translated to the engine's [`Expr`] and
//! [`ColumnType`]. What the engine would answer differently from PostgreSQL is refused
//! with 0A000, naming the construct.

use sqlparser::ast::{
    self, BinaryOperator, CastKind, DataType, FunctionArg, FunctionArgExpr, FunctionArguments,
    UnaryOperator,
};

use crate::sql::error::SqlError;
use crate::sql::expr::{AggFunc, BinOp, Expr, Func};
use crate::sql::value::{ColumnType, Interval, Numeric, NumericTypmod, Value};

/// 0A000 naming `feature`.
pub(super) fn unsupported(feature: impl Into<String>) -> SqlError {
    SqlError::FeatureNotSupported {
        feature: feature.into(),
    }
}

/// 42601 with `message`.
pub(super) fn syntax(message: impl Into<String>) -> SqlError {
    SqlError::SyntaxError {
        message: message.into(),
    }
}

/// An identifier as PostgreSQL folds it: unquoted names to lower case.
pub(super) fn ident(i: &ast::Ident) -> String {
    match i.quote_style {
        Some(_) => i.value.clone(),
        None => i.value.to_lowercase(),
    }
}

/// A possibly qualified name (`public.t`, `t`) as its last part; a schema other than
/// `public` is refused.
pub(super) fn object_name(name: &ast::ObjectName) -> Result<String, SqlError> {
    let parts = name
        .0
        .iter()
        .map(|p| match p {
            ast::ObjectNamePart::Identifier(i) => Ok(ident(i)),
            other => Err(unsupported(format!("the name {other}"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    match parts.as_slice() {
        [name] => Ok(name.clone()),
        [schema, name] if schema == "public" => Ok(name.clone()),
        _ => Err(unsupported(format!("the qualified name {name}"))),
    }
}

/// Where an expression stands: aggregates are allowed only in a SELECT's items, HAVING
/// and ORDER BY.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    Aggregates,
    Scalar,
}

/// Translates one expression.
pub(super) fn expr(e: &ast::Expr, place: Place) -> Result<Expr, SqlError> {
    let sub = |e: &ast::Expr| expr(e, place).map(Box::new);
    Ok(match e {
        ast::Expr::Identifier(i) => Expr::Col(ident(i)),
        ast::Expr::CompoundIdentifier(parts) => match parts.as_slice() {
            [t, c] if ident(t) == "excluded" => Expr::Excluded(ident(c)),
            [t, c] => Expr::Col(format!("{}.{}", ident(t), ident(c))),
            _ => return Err(unsupported(format!("the column reference {e}"))),
        },
        ast::Expr::Value(v) => value(&v.value)?,
        ast::Expr::Nested(inner) => expr(inner, place)?,
        ast::Expr::BinaryOp { left, op, right } => {
            Expr::Bin(binary_op(op)?, sub(left)?, sub(right)?)
        }
        ast::Expr::UnaryOp { op, expr: inner } => match op {
            UnaryOperator::Not => Expr::Not(sub(inner)?),
            UnaryOperator::Plus => expr(inner, place)?,
            UnaryOperator::Minus => match expr(inner, place)? {
                Expr::Lit(Value::Int(i)) => Expr::Lit(Value::Int(-i)),
                Expr::Lit(Value::Float(x)) => Expr::Lit(Value::Float(-x)),
                Expr::Lit(Value::Numeric(n)) => Expr::Lit(Value::numeric(n.neg())),
                other => Expr::Neg(Box::new(other)),
            },
            other => return Err(unsupported(format!("the operator {other}"))),
        },
        ast::Expr::IsNull(inner) => Expr::IsNull(sub(inner)?),
        ast::Expr::IsNotNull(inner) => Expr::Not(Box::new(Expr::IsNull(sub(inner)?))),
        ast::Expr::InList {
            expr: inner,
            list,
            negated,
        } => Expr::InList {
            expr: sub(inner)?,
            list: list
                .iter()
                .map(|e| expr(e, place))
                .collect::<Result<_, _>>()?,
            negated: *negated,
        },
        ast::Expr::Between {
            expr: inner,
            negated,
            low,
            high,
        } => {
            let x = expr(inner, place)?;
            let within = x
                .clone()
                .ge(expr(low, place)?)
                .and(x.le(expr(high, place)?));
            if *negated {
                !within
            } else {
                within
            }
        }
        ast::Expr::Like {
            negated,
            any,
            expr: inner,
            pattern,
            escape_char,
        }
        | ast::Expr::ILike {
            negated,
            any,
            expr: inner,
            pattern,
            escape_char,
        } => {
            if *any || escape_char.is_some() {
                return Err(unsupported(format!("{e}")));
            }
            Expr::Like {
                expr: sub(inner)?,
                pattern: sub(pattern)?,
                negated: *negated,
                case_insensitive: matches!(e, ast::Expr::ILike { .. }),
            }
        }
        ast::Expr::Cast {
            kind: CastKind::Cast | CastKind::DoubleColon,
            expr: inner,
            data_type,
            format: None,
        } => Expr::Cast(sub(inner)?, cast_type(data_type)?),
        // `timestamptz '2024-01-01'`, `uuid '…'`: a cast of the string.
        ast::Expr::TypedString(t) => match &t.value.value {
            ast::Value::SingleQuotedString(v) => Expr::Cast(
                Box::new(Expr::Lit(Value::Text(v.clone()))),
                cast_type(&t.data_type)?,
            ),
            other => return Err(unsupported(format!("the literal {other}"))),
        },
        ast::Expr::Interval(iv) => interval(iv)?,
        ast::Expr::Function(f) => function(f, place)?,
        ast::Expr::Subquery(_) | ast::Expr::InSubquery { .. } | ast::Expr::Exists { .. } => {
            return Err(unsupported("subqueries"))
        }
        ast::Expr::Case { .. } => return Err(unsupported("CASE expressions")),
        other => return Err(unsupported(format!("the expression {other}"))),
    })
}

/// `INTERVAL '5 minutes'` (without field qualifiers).
fn interval(iv: &ast::Interval) -> Result<Expr, SqlError> {
    if iv.leading_field.is_some()
        || iv.last_field.is_some()
        || iv.leading_precision.is_some()
        || iv.fractional_seconds_precision.is_some()
    {
        return Err(unsupported(format!("the interval {iv} with fields")));
    }
    match iv.value.as_ref() {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) => {
                Ok(Expr::Lit(Value::Interval(Interval::parse(s)?)))
            }
            _ => Err(unsupported(format!("the interval {iv}"))),
        },
        _ => Err(unsupported(format!("the interval {iv}"))),
    }
}

fn value(v: &ast::Value) -> Result<Expr, SqlError> {
    Ok(Expr::Lit(match v {
        // As PostgreSQL: a literal that fits bigint is one, any other (a point, an
        // exponent, more digits) is numeric.
        ast::Value::Number(text, _) => match text.parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => Value::numeric(Numeric::parse(text)?),
        },
        ast::Value::SingleQuotedString(s) | ast::Value::EscapedStringLiteral(s) => {
            Value::Text(s.clone())
        }
        ast::Value::DollarQuotedString(s) => Value::Text(s.value.clone()),
        ast::Value::Boolean(b) => Value::Bool(*b),
        ast::Value::Null => Value::Null,
        ast::Value::Placeholder(p) => return placeholder(p),
        other => return Err(unsupported(format!("the literal {other}"))),
    }))
}

/// `$n`, from 1.
fn placeholder(p: &str) -> Result<Expr, SqlError> {
    match p.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
        Some(n) if n >= 1 => Ok(Expr::Param(n)),
        _ => Err(syntax(format!(
            "at or near \"{p}\": parameters are $1, $2, ...",
        ))),
    }
}

fn binary_op(op: &BinaryOperator) -> Result<BinOp, SqlError> {
    Ok(match op {
        BinaryOperator::Eq => BinOp::Eq,
        BinaryOperator::NotEq => BinOp::Ne,
        BinaryOperator::Lt => BinOp::Lt,
        BinaryOperator::LtEq => BinOp::Le,
        BinaryOperator::Gt => BinOp::Gt,
        BinaryOperator::GtEq => BinOp::Ge,
        BinaryOperator::And => BinOp::And,
        BinaryOperator::Or => BinOp::Or,
        BinaryOperator::Plus => BinOp::Add,
        BinaryOperator::Minus => BinOp::Sub,
        BinaryOperator::Multiply => BinOp::Mul,
        BinaryOperator::Divide => BinOp::Div,
        BinaryOperator::Modulo => BinOp::Mod,
        BinaryOperator::StringConcat => BinOp::Concat,
        BinaryOperator::Arrow => BinOp::JsonGet,
        BinaryOperator::LongArrow => BinOp::JsonGetText,
        BinaryOperator::HashArrow => BinOp::JsonPath,
        BinaryOperator::HashLongArrow => BinOp::JsonPathText,
        BinaryOperator::AtArrow => BinOp::Contains,
        BinaryOperator::ArrowAt => BinOp::ContainedBy,
        BinaryOperator::Question => BinOp::JsonExists,
        other => return Err(unsupported(format!("the operator {other}"))),
    })
}

fn function(f: &ast::Function, place: Place) -> Result<Expr, SqlError> {
    let name = object_name(&f.name)?;
    if f.filter.is_some() || f.over.is_some() || !f.within_group.is_empty() {
        return Err(unsupported(format!(
            "{name}() with FILTER, OVER or WITHIN GROUP"
        )));
    }
    let (args, star, distinct) = match &f.args {
        FunctionArguments::None => (Vec::new(), false, false),
        FunctionArguments::Subquery(_) => return Err(unsupported("subqueries")),
        FunctionArguments::List(list) => {
            if !list.clauses.is_empty() {
                return Err(unsupported(format!("the arguments of {f}")));
            }
            let distinct = matches!(
                list.duplicate_treatment,
                Some(ast::DuplicateTreatment::Distinct)
            );
            let mut args = Vec::new();
            let mut star = false;
            for a in &list.args {
                match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => args.push(e),
                    FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => star = true,
                    other => return Err(unsupported(format!("the argument {other} of {name}"))),
                }
            }
            (args, star, distinct)
        }
    };
    let agg = match name.as_str() {
        "count" => Some(AggFunc::Count),
        "sum" => Some(AggFunc::Sum),
        "min" => Some(AggFunc::Min),
        "max" => Some(AggFunc::Max),
        "avg" => Some(AggFunc::Avg),
        _ => None,
    };
    if let Some(agg) = agg {
        if place != Place::Aggregates {
            return Err(SqlError::GroupingError {
                message: "aggregate functions are not allowed here".into(),
            });
        }
        if distinct {
            return Err(unsupported(format!("{name}(DISTINCT ...)")));
        }
        return match (agg, star, args.as_slice()) {
            (AggFunc::Count, true, []) => Ok(Expr::Agg(agg, None)),
            // The argument of an aggregate is a plain expression.
            (_, false, [a]) => Ok(Expr::Agg(agg, Some(Box::new(expr(a, Place::Scalar)?)))),
            _ => Err(syntax(format!("wrong arguments for {name}()"))),
        };
    }
    if star || distinct {
        return Err(syntax(format!("{f}")));
    }
    let func = match name.as_str() {
        "coalesce" => Func::Coalesce,
        "lower" => Func::Lower,
        "upper" => Func::Upper,
        "length" | "char_length" | "character_length" => Func::Length,
        "abs" => Func::Abs,
        "greatest" => Func::Greatest,
        "least" => Func::Least,
        "now" | "current_timestamp" | "transaction_timestamp" => Func::Now,
        "gen_random_uuid" => Func::GenRandomUuid,
        "round" => Func::Round,
        "nextval" => Func::Nextval,
        "currval" => Func::Currval,
        "setval" => Func::Setval,
        "lastval" => Func::Lastval,
        "pg_get_serial_sequence" => Func::PgGetSerialSequence,
        "pg_sleep" => return Err(unsupported("pg_sleep() inside an expression")),
        _ => return Err(unsupported(format!("the function {name}()"))),
    };
    let arity_ok = match func {
        Func::Now | Func::GenRandomUuid => args.is_empty(),
        Func::Round => (1..=2).contains(&args.len()),
        Func::Nextval | Func::Currval => args.len() == 1,
        Func::Setval => (2..=3).contains(&args.len()),
        Func::Lastval => args.is_empty(),
        Func::PgGetSerialSequence => args.len() == 2,
        Func::Lower | Func::Upper | Func::Length | Func::Abs => args.len() == 1,
        Func::Coalesce | Func::Greatest | Func::Least => !args.is_empty(),
    };
    if !arity_ok {
        return Err(SqlError::UndefinedFunction {
            name: format!("{name} with {} arguments", args.len()),
        });
    }
    Ok(Expr::Func(
        func,
        args.into_iter()
            .map(|a| expr(a, place))
            .collect::<Result<_, _>>()?,
    ))
}

/// A column type: the engine's type, and whether it is a serial (`serial`, `bigserial`).
pub(super) fn column_type(t: &DataType) -> Result<(ColumnType, bool), SqlError> {
    Ok(match t {
        DataType::Int(_)
        | DataType::Int4(_)
        | DataType::Int8(_)
        | DataType::Int2(_)
        | DataType::Integer(_)
        | DataType::BigInt(_)
        | DataType::SmallInt(_) => (ColumnType::Int, false),
        DataType::Real
        | DataType::Float4
        | DataType::Float8
        | DataType::DoublePrecision
        | DataType::Double(ast::ExactNumberInfo::None)
        | DataType::Float(ast::ExactNumberInfo::None) => (ColumnType::Float, false),
        DataType::Text
        | DataType::Varchar(None)
        | DataType::CharacterVarying(None)
        | DataType::CharVarying(None) => (ColumnType::Text, false),
        DataType::Bool | DataType::Boolean => (ColumnType::Bool, false),
        DataType::Timestamp(None, ast::TimezoneInfo::None | ast::TimezoneInfo::WithoutTimeZone) => {
            (ColumnType::Timestamp, false)
        }
        DataType::Timestamp(None, ast::TimezoneInfo::WithTimeZone | ast::TimezoneInfo::Tz) => {
            (ColumnType::TimestampTz, false)
        }
        DataType::JSONB => (ColumnType::Jsonb, false),
        DataType::Uuid => (ColumnType::Uuid, false),
        DataType::Numeric(info) | DataType::Decimal(info) | DataType::Dec(info) => {
            (ColumnType::Numeric(numeric_typmod(info)?), false)
        }
        DataType::Custom(name, modifiers) if modifiers.is_empty() => {
            match object_name(name)?.as_str() {
                "serial" | "serial4" | "bigserial" | "serial8" | "smallserial" | "serial2" => {
                    (ColumnType::Int, true)
                }
                "timestamptz" => (ColumnType::TimestampTz, false),
                other => return Err(unsupported(format!("the type {other}"))),
            }
        }
        DataType::Varchar(Some(_))
        | DataType::CharacterVarying(Some(_))
        | DataType::Char(_)
        | DataType::Character(_) => {
            return Err(unsupported(format!(
                "the type {t} (lengths are not checked; declare the column text)"
            )))
        }
        DataType::JSON => {
            return Err(unsupported(
                "the type json (it keeps the text as written; declare the column jsonb)",
            ))
        }
        other => return Err(unsupported(format!("the type {other}"))),
    })
}

/// A type of `CAST`: a column type, or `interval`.
pub(super) fn cast_type(t: &DataType) -> Result<ColumnType, SqlError> {
    match t {
        DataType::Interval {
            fields: None,
            precision: None,
        } => Ok(ColumnType::Interval),
        t => match column_type(t)? {
            (ty, false) => Ok(ty),
            (_, true) => Err(unsupported(format!("a cast to {t}"))),
        },
    }
}

/// `numeric(p, s)`: precision 1 to 1000, scale -1000 to 1000 (22023 otherwise).
fn numeric_typmod(info: &ast::ExactNumberInfo) -> Result<Option<NumericTypmod>, SqlError> {
    let (precision, scale) = match info {
        ast::ExactNumberInfo::None => return Ok(None),
        ast::ExactNumberInfo::Precision(p) => (*p, 0),
        ast::ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
    };
    if !(1..=1000).contains(&precision) {
        return Err(SqlError::InvalidParameterValue {
            message: format!("NUMERIC precision {precision} must be between 1 and 1000"),
        });
    }
    if !(-1000..=1000).contains(&scale) {
        return Err(SqlError::InvalidParameterValue {
            message: format!("NUMERIC scale {scale} must be between -1000 and 1000"),
        });
    }
    Ok(Some(NumericTypmod {
        precision: precision as u16,
        scale: scale as i16,
    }))
}
