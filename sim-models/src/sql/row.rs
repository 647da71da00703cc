//! A row: column names mapped to values, in the table's column order.
//!
//! Rows are what service code builds for inserts and gets back from queries. They read
//! typed columns without ceremony (`row.get::<_, i64>("balance")?`) and convert to and from
//! serde structs (`row.to::<Account>()?`, `Row::from_serde(&account)?`).

use std::rc::Rc;

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::SqlError;
use super::value::{FromValue, Value};
use crate::fixed_hash::FixedState;

/// Column names and values side by side, looked up by a linear scan: rows have a handful
/// of columns, and a scan of a few short names costs less than hashing one. Equality
/// ignores the column order, as a map's does.
#[derive(Clone, Default)]
pub struct Row {
    names: Names,
    values: Vec<Value>,
}

#[derive(Clone)]
enum Names {
    /// Built by the user, column by column.
    Owned(Vec<String>),
    /// Read from a table: its column names, shared by every row the engine returns, so
    /// that a result row costs one allocation instead of one per column name.
    Shared(Rc<[String]>),
}

impl Default for Names {
    fn default() -> Self {
        Names::Owned(Vec::new())
    }
}

impl Names {
    fn as_slice(&self) -> &[String] {
        match self {
            Names::Owned(v) => v,
            Names::Shared(s) => s,
        }
    }

    fn to_mut(&mut self) -> &mut Vec<String> {
        if let Names::Shared(s) = self {
            *self = Names::Owned(s.to_vec());
        }
        match self {
            Names::Owned(v) => v,
            Names::Shared(_) => unreachable!("made owned above"),
        }
    }
}

/// What [`Row::get`] takes: a column name or a position from 0.
pub trait RowIndex: std::fmt::Display {
    fn position(&self, row: &Row) -> Option<usize>;
}

impl RowIndex for &str {
    fn position(&self, row: &Row) -> Option<usize> {
        row.position(self)
    }
}

impl RowIndex for String {
    fn position(&self, row: &Row) -> Option<usize> {
        row.position(self)
    }
}

impl RowIndex for usize {
    fn position(&self, row: &Row) -> Option<usize> {
        (*self < row.values.len()).then_some(*self)
    }
}

/// Builds a row: `sql_row! { "id" => 1, "name" => "ada" }`.
#[macro_export]
macro_rules! sql_row {
    ($($col:expr => $val:expr),* $(,)?) => {
        $crate::sql::Row::new()$(.with($col, $val))*
    };
}

impl Row {
    pub fn new() -> Self {
        Self::default()
    }

    /// A stored tuple with its table's column names (as many names as values).
    pub(crate) fn from_tuple(names: &Rc<[String]>, values: Vec<Value>) -> Self {
        debug_assert_eq!(names.len(), values.len());
        Row {
            names: Names::Shared(names.clone()),
            values,
        }
    }

    /// Adds or replaces a column, builder style.
    pub fn with(mut self, column: impl Into<String>, value: impl Into<Value>) -> Self {
        self.set(column, value);
        self
    }

    /// Adds a column, or replaces the value of an existing one in place (keeping its
    /// position), as a map insert does.
    pub fn set(&mut self, column: impl Into<String>, value: impl Into<Value>) {
        let column = column.into();
        let value = value.into();
        match self.position(&column) {
            Some(i) => self.values[i] = value,
            None => {
                self.names.to_mut().push(column);
                self.values.push(value);
            }
        }
    }

    fn position(&self, column: &str) -> Option<usize> {
        self.names.as_slice().iter().position(|n| n == column)
    }

    /// The raw value of a column, if the row has it.
    pub fn value(&self, column: &str) -> Option<&Value> {
        self.position(column).map(|i| &self.values[i])
    }

    /// A column, by name or by position, read as a Rust type:
    /// `row.get::<_, i64>("balance")?`, `row.get::<_, String>(0)?`. A missing column or
    /// a value of another type is an error.
    pub fn get<I: RowIndex, T: FromValue>(&self, index: I) -> Result<T, SqlError> {
        let i = index
            .position(self)
            .ok_or_else(|| SqlError::UndefinedColumn(index.to_string()))?;
        T::from_value(&self.values[i]).ok_or_else(|| SqlError::WrongType {
            column: self.names.as_slice()[i].clone(),
            expected: T::expected(),
        })
    }

    /// The column names, in order.
    pub fn columns(&self) -> &[String] {
        self.names.as_slice()
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.names
            .as_slice()
            .iter()
            .map(String::as_str)
            .zip(&self.values)
    }

    /// Converts the row into a serde type whose field names are the column names.
    pub fn to<T: serde::de::DeserializeOwned>(&self) -> Result<T, SqlError> {
        let map: serde_json::Map<String, serde_json::Value> = self
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_json()))
            .collect();
        serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|e| SqlError::Conversion(e.to_string()))
    }

    /// Builds a row from a serde struct (fields become columns; nested values are refused).
    pub fn from_serde<T: Serialize>(value: &T) -> Result<Row, SqlError> {
        let json = serde_json::to_value(value).map_err(|e| SqlError::Conversion(e.to_string()))?;
        let serde_json::Value::Object(map) = json else {
            return Err(SqlError::Conversion(
                "a row must come from a struct or map".into(),
            ));
        };
        let mut row = Row::new();
        for (k, v) in map {
            let value = Value::from_json(v, &k)?;
            row.set(k, value);
        }
        Ok(row)
    }
}

impl PartialEq for Row {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.value(k) == Some(v))
    }
}

/// As the map it stands for: `Row { columns: {"id": Int(1)} }`.
impl std::fmt::Debug for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        struct Columns<'a>(&'a Row);
        impl std::fmt::Debug for Columns<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_map()
                    .entries(self.0.names.as_slice().iter().zip(&self.0.values))
                    .finish()
            }
        }
        f.debug_struct("Row")
            .field("columns", &Columns(self))
            .finish()
    }
}

/// A JSON object of the columns, in order.
impl Serialize for Row {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.names.as_slice().iter().zip(&self.values))
    }
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = IndexMap::<String, Value, FixedState>::deserialize(deserializer)?;
        Ok(map.into_iter().collect())
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Row {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut row = Row::new();
        for (k, v) in iter {
            row.set(k, v);
        }
        row
    }
}

/// `(col=value, ...)`.
impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(")?;
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}={v}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_runtime::time::Instant;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Booking {
        id: i64,
        guest: Option<String>,
        at: Instant,
        paid: bool,
    }

    #[test]
    fn typed_reads() {
        let row = crate::sql_row! { "id" => 7, "name" => "ada", "note" => Option::<String>::None };
        assert_eq!(row.get::<_, i64>("id").unwrap(), 7);
        assert_eq!(row.get::<_, String>("name").unwrap(), "ada");
        assert_eq!(row.get::<_, Option<String>>("note").unwrap(), None);
        assert!(matches!(
            row.get::<_, i64>("name"),
            Err(SqlError::WrongType { .. })
        ));
        assert_eq!(
            row.get::<_, i64>("nope").unwrap_err().sqlstate(),
            Some("42703")
        );
    }

    #[test]
    fn serde_round_trip() {
        let b = Booking {
            id: 1,
            guest: None,
            at: Instant::from_nanos(99),
            paid: true,
        };
        let row = Row::from_serde(&b).unwrap();
        assert_eq!(row.value("at"), Some(&Value::Int(99)));
        assert_eq!(row.to::<Booking>().unwrap(), b);
    }
}
