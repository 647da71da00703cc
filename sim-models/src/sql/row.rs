//! A row: column names mapped to values, in the table's column order.
//!
//! Rows are what service code builds for inserts and gets back from queries. They read
//! typed columns without ceremony (`row.get::<i64>("balance")?`) and convert to and from
//! serde structs (`row.to::<Account>()?`, `Row::from_serde(&account)?`).

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::error::SqlError;
use super::value::{FromValue, Value};
use crate::fixed_hash::FixedState;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Row {
    /// Fixed-hashed: rows are built and read on every statement, and SipHash (with a
    /// `RandomState` per row) cost more than the rest of building one.
    columns: IndexMap<String, Value, FixedState>,
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

    /// Adds or replaces a column, builder style.
    pub fn with(mut self, column: impl Into<String>, value: impl Into<Value>) -> Self {
        self.set(column, value);
        self
    }

    pub fn set(&mut self, column: impl Into<String>, value: impl Into<Value>) {
        self.columns.insert(column.into(), value.into());
    }

    /// The raw value of a column, if the row has it.
    pub fn value(&self, column: &str) -> Option<&Value> {
        self.columns.get(column)
    }

    /// A column read as a Rust type; a missing column or a value of another type is an error.
    pub fn get<T: FromValue>(&self, column: &str) -> Result<T, SqlError> {
        let v = self
            .columns
            .get(column)
            .ok_or_else(|| SqlError::UndefinedColumn(column.to_owned()))?;
        T::from_value(v).ok_or_else(|| SqlError::WrongType {
            column: column.to_owned(),
            expected: T::expected(),
        })
    }

    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.columns.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Converts the row into a serde type whose field names are the column names.
    pub fn to<T: serde::de::DeserializeOwned>(&self) -> Result<T, SqlError> {
        let map: serde_json::Map<String, serde_json::Value> = self
            .columns
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
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
            row.columns.insert(k, value);
        }
        Ok(row)
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

impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(")?;
        for (i, (k, v)) in self.columns.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(k)?;
            f.write_str("=")?;
            std::fmt::Display::fmt(v, f)?;
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
        assert_eq!(row.get::<i64>("id").unwrap(), 7);
        assert_eq!(row.get::<String>("name").unwrap(), "ada");
        assert_eq!(row.get::<Option<String>>("note").unwrap(), None);
        assert!(matches!(
            row.get::<i64>("name"),
            Err(SqlError::WrongType { .. })
        ));
        assert_eq!(
            row.get::<i64>("nope").unwrap_err().sqlstate(),
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
