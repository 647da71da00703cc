//! Typed SQL values, the column types of a schema, and conversions to and from Rust types.
//!
//! Values compare with SQL semantics in expressions (NULL is unknown, see `expr`) but also
//! have a total order (`Ord`) so that they can be index keys; the total order is only used
//! between values of one column type, after coercion.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use sim_runtime::time::Instant;

use super::error::SqlError;

/// One SQL value. `Timestamp` is a point of virtual time.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Timestamp(Instant),
}

/// The declared type of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColumnType {
    Bool,
    Int,
    Float,
    Text,
    Timestamp,
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ColumnType::Bool => "boolean",
            ColumnType::Int => "bigint",
            ColumnType::Float => "double precision",
            ColumnType::Text => "text",
            ColumnType::Timestamp => "timestamp",
        })
    }
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The SQL type name of this value, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "unknown",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "bigint",
            Value::Float(_) => "double precision",
            Value::Text(_) => "text",
            Value::Timestamp(_) => "timestamp",
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

    pub fn as_timestamp(&self) -> Option<Instant> {
        match self {
            Value::Timestamp(t) => Some(*t),
            _ => None,
        }
    }

    /// Converts the value to the column's type, as an assignment in PostgreSQL would for
    /// the implicit casts it allows (integer to float; integer nanoseconds to timestamp,
    /// which is what a serde round trip of `Instant` produces).
    pub fn coerce(self, ty: ColumnType, column: &str) -> Result<Value, SqlError> {
        let v = match (ty, self) {
            (_, Value::Null) => Value::Null,
            (ColumnType::Bool, v @ Value::Bool(_)) => v,
            (ColumnType::Int, v @ Value::Int(_)) => v,
            (ColumnType::Float, v @ Value::Float(_)) => v,
            (ColumnType::Float, Value::Int(i)) => Value::Float(i as f64),
            (ColumnType::Text, v @ Value::Text(_)) => v,
            (ColumnType::Timestamp, v @ Value::Timestamp(_)) => v,
            (ColumnType::Timestamp, Value::Int(i)) if i >= 0 => {
                Value::Timestamp(Instant::from_nanos(i as u64))
            }
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
        }
    }

    /// The value as plain JSON, for converting rows to and from serde structs.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Float(x) => serde_json::Number::from_f64(*x)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Text(s) => s.clone().into(),
            Value::Timestamp(t) => t.as_nanos().into(),
        }
    }

    /// The inverse of [`Value::to_json`] for scalars; arrays and objects are not values.
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
            other => {
                return Err(SqlError::DatatypeMismatch {
                    detail: format!("column \"{column}\" cannot hold {other}"),
                })
            }
        })
    }
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
            Value::Timestamp(t) => t.as_nanos().hash(state),
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
            Value::Timestamp(t) => write!(f, "timestamp '{}ns'", t.as_nanos()),
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
impl From<Instant> for Value {
    fn from(v: Instant) -> Self {
        Value::Timestamp(v)
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
from_value!(Instant, "timestamp", Value::Timestamp(t) => Some(*t));

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
            Value::Int(5).coerce(ColumnType::Timestamp, "t").unwrap(),
            Value::Timestamp(Instant::from_nanos(5))
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
            Value::Timestamp(Instant::from_nanos(1)),
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
