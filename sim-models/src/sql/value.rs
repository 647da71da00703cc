//! Typed SQL values, the column types of a schema, and conversions to and from Rust types.
//!
//! Values compare with SQL semantics in expressions (NULL is unknown, see `expr`) but also
//! have a total order (`Ord`) so that they can be index keys; the total order is only used
//! between values of one column type, after coercion.

pub mod datetime;
pub mod jsonb;
pub mod numeric;
pub mod uuid;

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use sim_runtime::time::Instant;

use super::error::SqlError;
pub use datetime::Interval;
pub use jsonb::Jsonb;
pub use numeric::Numeric;
pub use uuid::Uuid;

/// One SQL value. Large payloads are boxed so that a value stays four words: the hot
/// paths copy and compare bigints and texts.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    /// `timestamp`: microseconds since 2000-01-01 00:00:00 (see [`datetime`]).
    Timestamp(i64),
    /// `timestamptz`: microseconds since 2000-01-01 00:00:00 UTC.
    TimestampTz(i64),
    Numeric(Box<Numeric>),
    Json(Box<Jsonb>),
    Uuid(Uuid),
    /// `interval`: literals and differences of timestamps; not a column type.
    Interval(Interval),
}

/// `numeric(precision, scale)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumericTypmod {
    pub precision: u16,
    pub scale: i16,
}

/// The declared type of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColumnType {
    Bool,
    Int,
    Float,
    Text,
    /// `timestamp` (without time zone).
    Timestamp,
    /// `timestamptz`.
    TimestampTz,
    /// `numeric`, with its precision and scale if declared.
    Numeric(Option<NumericTypmod>),
    Jsonb,
    Uuid,
    /// Not a column type: what `CAST(x AS interval)` asks for.
    Interval,
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ColumnType::Bool => "boolean",
            ColumnType::Int => "bigint",
            ColumnType::Float => "double precision",
            ColumnType::Text => "text",
            ColumnType::Timestamp => "timestamp without time zone",
            ColumnType::TimestampTz => "timestamp with time zone",
            ColumnType::Numeric(None) => "numeric",
            ColumnType::Numeric(Some(t)) => {
                return write!(f, "numeric({},{})", t.precision, t.scale)
            }
            ColumnType::Jsonb => "jsonb",
            ColumnType::Uuid => "uuid",
            ColumnType::Interval => "interval",
        })
    }
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn numeric(n: Numeric) -> Value {
        Value::Numeric(Box::new(n))
    }

    pub fn json(j: Jsonb) -> Value {
        Value::Json(Box::new(j))
    }

    /// `now()` at virtual time `t` (see [`datetime`] for the model's clock).
    pub fn timestamptz_at(t: Instant) -> Value {
        Value::TimestampTz(datetime::from_instant(t))
    }

    /// The SQL type name of this value, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "unknown",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "bigint",
            Value::Float(_) => "double precision",
            Value::Text(_) => "text",
            Value::Timestamp(_) => "timestamp without time zone",
            Value::TimestampTz(_) => "timestamp with time zone",
            Value::Numeric(_) => "numeric",
            Value::Json(_) => "jsonb",
            Value::Uuid(_) => "uuid",
            Value::Interval(_) => "interval",
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(x) => Some(*x),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// A timestamp (either kind) as virtual time on the model's clock.
    pub fn as_timestamp(&self) -> Option<Instant> {
        match self {
            Value::Timestamp(t) | Value::TimestampTz(t) => datetime::to_instant(*t),
            _ => None,
        }
    }

    /// The value as PostgreSQL's output function writes it (the text format of a result
    /// row: `t`/`f`, `1.50`, `2024-01-01 10:00:00+00`); `None` for NULL.
    pub fn pg_text(&self) -> Option<String> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(b) => (if *b { "t" } else { "f" }).to_owned(),
            Value::Text(s) => s.clone(),
            other => other.text_cast(),
        })
    }

    /// The value cast to text (`x::text`): as [`Value::pg_text`], but a boolean is
    /// `true`/`false` and NULL is empty.
    pub(crate) fn text_cast(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => (if *b { "true" } else { "false" }).to_owned(),
            Value::Int(i) => i.to_string(),
            Value::Float(x) => float_text(*x),
            Value::Text(s) => s.clone(),
            Value::Timestamp(t) | Value::TimestampTz(t) => {
                let mut out = String::new();
                let _ =
                    datetime::write_timestamp(&mut out, *t, matches!(self, Value::TimestampTz(_)));
                out
            }
            Value::Numeric(n) => n.to_string(),
            Value::Json(j) => j.to_string(),
            Value::Uuid(u) => u.to_string(),
            Value::Interval(i) => i.to_string(),
        }
    }

    /// Converts the value to the column's type, as an assignment in PostgreSQL would for
    /// the implicit and assignment casts it allows between the model's types (integer to
    /// float and numeric, numeric to integer and float, one timestamp kind to the other),
    /// and reading a string as a value of the new types (a quoted literal in PostgreSQL
    /// is of unknown type and takes the column's). Integer nanoseconds become a timestamp
    /// of the model's clock, which is what a serde round trip of `Instant` produces.
    pub fn coerce(self, ty: ColumnType, column: &str) -> Result<Value, SqlError> {
        let v = match (ty, self) {
            (_, Value::Null) => Value::Null,
            (ColumnType::Bool, v @ Value::Bool(_)) => v,
            (ColumnType::Int, v @ Value::Int(_)) => v,
            (ColumnType::Int, Value::Numeric(n)) => Value::Int(n.to_i64()?),
            (ColumnType::Float, v @ Value::Float(_)) => v,
            (ColumnType::Float, Value::Int(i)) => Value::Float(i as f64),
            (ColumnType::Float, Value::Numeric(n)) => Value::Float(n.to_f64()?),
            (ColumnType::Text, v @ Value::Text(_)) => v,
            (
                ColumnType::Numeric(typmod),
                v @ (Value::Numeric(_) | Value::Int(_) | Value::Float(_) | Value::Text(_)),
            ) => {
                let n = match v {
                    Value::Numeric(n) => *n,
                    Value::Int(i) => Numeric::from_i64(i),
                    Value::Float(x) => Numeric::from_f64(x)?,
                    Value::Text(s) => Numeric::parse(&s)?,
                    _ => unreachable!("matched above"),
                };
                Value::numeric(apply_typmod(n, typmod)?)
            }
            (ColumnType::Jsonb, v @ Value::Json(_)) => v,
            (ColumnType::Jsonb, Value::Text(s)) => Value::json(Jsonb::parse(&s)?),
            (ColumnType::Uuid, v @ Value::Uuid(_)) => v,
            (ColumnType::Uuid, Value::Text(s)) => Value::Uuid(Uuid::parse(&s)?),
            (ColumnType::Timestamp, Value::Timestamp(t) | Value::TimestampTz(t)) => {
                Value::Timestamp(t)
            }
            (ColumnType::TimestampTz, Value::Timestamp(t) | Value::TimestampTz(t)) => {
                Value::TimestampTz(t)
            }
            (ColumnType::Timestamp, Value::Text(s)) => {
                Value::Timestamp(datetime::parse_timestamp(&s, false)?)
            }
            (ColumnType::TimestampTz, Value::Text(s)) => {
                Value::TimestampTz(datetime::parse_timestamp(&s, true)?)
            }
            (ColumnType::Timestamp | ColumnType::TimestampTz, Value::Int(i)) if i >= 0 => {
                let t = datetime::from_instant(Instant::from_nanos(i as u64));
                if ty == ColumnType::Timestamp {
                    Value::Timestamp(t)
                } else {
                    Value::TimestampTz(t)
                }
            }
            (ColumnType::Interval, v @ Value::Interval(_)) => v,
            (ColumnType::Interval, Value::Text(s)) => Value::Interval(Interval::parse(&s)?),
            // PostgreSQL's other assignment casts: a float rounds into a bigint, and any
            // value prints into a text column.
            (ColumnType::Int, Value::Float(x)) => Value::Int(float_to_bigint(x)?),
            (ColumnType::Text, v) => Value::Text(v.text_cast()),
            (ty, v) => {
                return Err(SqlError::DatatypeMismatch {
                    detail: format!(
                        "column \"{column}\" is of type {ty} but expression is of type {}",
                        v.type_name()
                    ),
                })
            }
        };
        Ok(v)
    }

    /// Rank of the variant in the total order used for keys.
    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) => 2,
            Value::Float(_) => 3,
            Value::Text(_) => 4,
            Value::Timestamp(_) => 5,
            Value::TimestampTz(_) => 6,
            Value::Numeric(_) => 7,
            Value::Json(_) => 8,
            Value::Uuid(_) => 9,
            Value::Interval(_) => 10,
        }
    }

    /// The value as plain JSON, for converting rows to and from serde structs: a
    /// timestamp as nanoseconds of virtual time (what an `Instant` reads back) when it is
    /// not before the model's clock starts, else as its text; numerics as JSON numbers,
    /// jsonb as itself, uuids and intervals as their text.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Float(x) => serde_json::Number::from_f64(*x)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Text(s) => s.clone().into(),
            Value::Timestamp(t) | Value::TimestampTz(t) => match datetime::to_instant(*t) {
                Some(i) => i.as_nanos().into(),
                None => self.text_cast().into(),
            },
            Value::Numeric(n) => serde_json::from_str::<serde_json::Number>(&n.to_string())
                .map(serde_json::Value::Number)
                .unwrap_or_else(|_| n.to_string().into()),
            Value::Json(j) => serde_json::from_str(&j.to_string()).unwrap_or_default(),
            Value::Uuid(_) | Value::Interval(_) => self.text_cast().into(),
        }
    }

    /// The inverse of [`Value::to_json`]: scalars as the model's scalars, arrays and
    /// objects as jsonb.
    pub fn from_json(json: serde_json::Value, column: &str) -> Result<Value, SqlError> {
        Ok(match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else if let Some(x) = n.as_f64() {
                    Value::Float(x)
                } else {
                    return Err(SqlError::NumericValueOutOfRange {
                        detail: format!("column \"{column}\": {n}"),
                    });
                }
            }
            serde_json::Value::String(s) => Value::Text(s),
            other => Value::json(Jsonb::parse(&other.to_string())?),
        })
    }
}

/// A float8 as a bigint, as PostgreSQL's cast: halves to even (`rint`; a numeric rounds
/// them away from zero), 22003 out of range or NaN.
pub(crate) fn float_to_bigint(x: f64) -> Result<i64, SqlError> {
    let r = x.round_ties_even();
    if r.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&r) {
        return Err(SqlError::NumericValueOutOfRange {
            detail: "bigint out of range".into(),
        });
    }
    Ok(r as i64)
}

/// Rounds to a `numeric(p, s)` column's scale and checks its precision (22003).
pub(crate) fn apply_typmod(n: Numeric, typmod: Option<NumericTypmod>) -> Result<Numeric, SqlError> {
    match typmod {
        None => Ok(n),
        Some(t) => n.with_typmod(u32::from(t.precision), i32::from(t.scale)),
    }
}

/// `float8out`: the shortest text that reads back as the same number, in exponent form
/// below 1e-4 and from 1e15.
pub(crate) fn float_text(x: f64) -> String {
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

/// Equality is the total order's equality (floats by `total_cmp`), so that a `Value` can be
/// a map key. SQL equality, where NULL = NULL is unknown, lives in `expr`.
impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

/// Consistent with `Eq`: values of different variants are never equal, and floats are
/// equal exactly when their bits are (`total_cmp`), so index keys can be hashed.
impl std::hash::Hash for Value {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u8(self.rank());
        match self {
            Value::Null => {}
            Value::Bool(b) => b.hash(state),
            Value::Int(i) => i.hash(state),
            Value::Float(x) => x.to_bits().hash(state),
            Value::Text(s) => s.hash(state),
            Value::Timestamp(t) | Value::TimestampTz(t) => t.hash(state),
            Value::Numeric(n) => n.hash(state),
            Value::Json(j) => j.hash(state),
            Value::Uuid(u) => u.hash(state),
            // As its order: by span (`1 mon` = `30 days`).
            Value::Interval(i) => i.span().hash(state),
        }
    }
}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Value {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Float(a), Value::Float(b)) => a.total_cmp(b),
            (Value::Text(a), Value::Text(b)) => a.cmp(b),
            (Value::Timestamp(a), Value::Timestamp(b)) => a.cmp(b),
            (Value::TimestampTz(a), Value::TimestampTz(b)) => a.cmp(b),
            (Value::Numeric(a), Value::Numeric(b)) => a.cmp(b),
            (Value::Json(a), Value::Json(b)) => a.cmp(b),
            (Value::Uuid(a), Value::Uuid(b)) => a.cmp(b),
            (Value::Interval(a), Value::Interval(b)) => a.cmp(b),
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }
}

/// The value as an SQL literal.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(b) => f.write_str(if *b { "true" } else { "false" }),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:?}"),
            // Quotes doubled as SQL writes them, piece by piece rather than by a copy.
            Value::Text(s) => {
                f.write_str("'")?;
                for (i, part) in s.split('\'').enumerate() {
                    if i > 0 {
                        f.write_str("''")?;
                    }
                    f.write_str(part)?;
                }
                f.write_str("'")
            }
            Value::Numeric(n) => write!(f, "{n}"),
            Value::Timestamp(_) => write!(f, "'{}'::timestamp", self.text_cast()),
            Value::TimestampTz(_) => write!(f, "'{}'::timestamptz", self.text_cast()),
            Value::Interval(i) => write!(f, "interval '{i}'"),
            Value::Uuid(u) => write!(f, "'{u}'::uuid"),
            Value::Json(j) => {
                write!(f, "{}::jsonb", Value::Text(j.to_string()))
            }
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(v.into())
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(v.into())
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
/// A `timestamptz` on the model's clock.
impl From<Instant> for Value {
    fn from(v: Instant) -> Self {
        Value::timestamptz_at(v)
    }
}
impl From<Numeric> for Value {
    fn from(v: Numeric) -> Self {
        Value::numeric(v)
    }
}
impl From<Jsonb> for Value {
    fn from(v: Jsonb) -> Self {
        Value::json(v)
    }
}
impl From<Uuid> for Value {
    fn from(v: Uuid) -> Self {
        Value::Uuid(v)
    }
}
impl From<Interval> for Value {
    fn from(v: Interval) -> Self {
        Value::Interval(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Reading a column into a Rust type: `row.get::<_, i64>("balance")`.
pub trait FromValue: Sized {
    fn from_value(value: &Value) -> Option<Self>;
    /// The SQL type expected, for the error message when the value does not fit.
    fn expected() -> &'static str;
}

macro_rules! from_value {
    ($ty:ty, $name:literal, $pat:pat => $out:expr) => {
        impl FromValue for $ty {
            fn from_value(value: &Value) -> Option<Self> {
                match value {
                    $pat => $out,
                    _ => None,
                }
            }
            fn expected() -> &'static str {
                $name
            }
        }
    };
}

from_value!(i64, "bigint", Value::Int(i) => Some(*i));
from_value!(i32, "integer", Value::Int(i) => i32::try_from(*i).ok());
from_value!(u64, "bigint (non-negative)", Value::Int(i) => u64::try_from(*i).ok());
from_value!(bool, "boolean", Value::Bool(b) => Some(*b));
from_value!(String, "text", Value::Text(s) => Some(s.clone()));
from_value!(Instant, "timestamptz (at or after the model's clock start)", Value::Timestamp(t) | Value::TimestampTz(t) => datetime::to_instant(*t));
from_value!(Numeric, "numeric", Value::Numeric(n) => Some((**n).clone()));
from_value!(Jsonb, "jsonb", Value::Json(j) => Some((**j).clone()));
from_value!(Uuid, "uuid", Value::Uuid(u) => Some(*u));
from_value!(Interval, "interval", Value::Interval(i) => Some(*i));

/// A jsonb column as serde_json's tree.
impl FromValue for serde_json::Value {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Json(j) => serde_json::from_str(&j.to_string()).ok(),
            _ => None,
        }
    }
    fn expected() -> &'static str {
        "jsonb"
    }
}

impl FromValue for f64 {
    fn from_value(value: &Value) -> Option<Self> {
        value.as_float()
    }
    fn expected() -> &'static str {
        "double precision"
    }
}

impl FromValue for Value {
    fn from_value(value: &Value) -> Option<Self> {
        Some(value.clone())
    }
    fn expected() -> &'static str {
        "any"
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
    fn expected() -> &'static str {
        T::expected()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coercion_follows_assignment_casts() {
        assert_eq!(
            Value::Int(3).coerce(ColumnType::Float, "x").unwrap(),
            Value::Float(3.0)
        );
        assert_eq!(
            Value::Int(5).coerce(ColumnType::TimestampTz, "t").unwrap(),
            Value::timestamptz_at(Instant::from_nanos(5))
        );
        let err = Value::Text("a".into())
            .coerce(ColumnType::Int, "x")
            .unwrap_err();
        assert_eq!(err.sqlstate(), Some("42804"));
    }

    #[test]
    fn total_order_is_usable_for_keys() {
        let mut v = [
            Value::Text("b".into()),
            Value::Int(2),
            Value::Null,
            Value::Int(1),
        ];
        v.sort();
        assert_eq!(v[0], Value::Null);
        assert_eq!(v[1], Value::Int(1));
        assert_eq!(v[3], Value::Text("b".into()));
    }

    #[test]
    fn equal_values_hash_equal() {
        use std::hash::BuildHasher;
        let hash = |v: &Value| crate::fixed_hash::FixedState::default().hash_one(v);
        let vals = [
            Value::Null,
            Value::Bool(true),
            Value::Int(1),
            Value::Float(1.0),
            Value::Float(0.0),
            Value::Float(-0.0),
            Value::Float(f64::NAN),
            Value::Text("1".into()),
            Value::timestamptz_at(Instant::from_nanos(1)),
            Value::Timestamp(1),
            Value::numeric(Numeric::parse("1.50").unwrap()),
            Value::numeric(Numeric::parse("1.5").unwrap()),
            Value::json(Jsonb::parse(r#"{"a": 1.0}"#).unwrap()),
            Value::json(Jsonb::parse(r#"{"a": 1}"#).unwrap()),
            Value::Uuid(Uuid([1; 16])),
            Value::Interval(Interval::parse("1 mon").unwrap()),
            Value::Interval(Interval::parse("30 days").unwrap()),
        ];
        for a in &vals {
            for b in &vals {
                if a == b {
                    assert_eq!(hash(a), hash(b), "{a:?} == {b:?}");
                }
            }
            assert_eq!(hash(a), hash(&a.clone()));
        }
    }

    #[test]
    fn reading_typed_columns() {
        assert_eq!(i64::from_value(&Value::Int(4)), Some(4));
        assert_eq!(Option::<i64>::from_value(&Value::Null), Some(None));
        assert_eq!(String::from_value(&Value::Int(4)), None);
    }
}
