//! Table declarations: columns with types, nullability and defaults, a primary key,
//! unique constraints over one or more columns, CHECK constraints, foreign keys and plain
//! indexes.
//!
//! ```
//! use sim_models::sql::{TableSchema, ColumnType};
//! let t = TableSchema::new("appointments")
//!     .column("id", ColumnType::Int)
//!     .column("doctor", ColumnType::Text)
//!     .column("slot", ColumnType::Int)
//!     .nullable_column("patient", ColumnType::Text)
//!     .primary_key(&["id"])
//!     .unique(&["doctor", "slot"]);
//! assert_eq!(t.constraint_names(), ["appointments_pkey", "appointments_doctor_slot_key"]);
//! ```

use serde::{Deserialize, Serialize};

use super::error::SqlError;
use super::row::Row;
use super::value::{ColumnType, Value};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
    pub nullable: bool,
    /// Used when an insert does not give the column (NULL when absent and nullable).
    pub default: Option<ColumnDefault>,
}

/// What a column gets when an insert does not give it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ColumnDefault {
    Value(Value),
    /// `DEFAULT now()`: the transaction's start.
    Now,
    /// `serial`, `bigserial`, `GENERATED ... AS IDENTITY`: the table's next number,
    /// starting at 1. As in PostgreSQL, a number once drawn is never drawn again, even if
    /// the transaction that drew it rolls back.
    Serial,
}

/// `CHECK (expr)`: a row is stored only if `expr` is not false (23514).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckConstraint {
    pub name: String,
    pub expr: super::expr::Expr,
}

/// `FOREIGN KEY (columns) REFERENCES table (ref_columns)`, NO ACTION on delete and
/// update: a child row's key must match a row of the referenced table (23503), and a
/// referenced row cannot go while children point at it (23503). `ref_columns` must be
/// the referenced table's primary key or a unique constraint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForeignKey {
    pub name: String,
    pub columns: Vec<String>,
    pub table: String,
    pub ref_columns: Vec<String>,
}

/// A plain (non-unique) index: changes no answer, only what a lookup reads (a WHERE that
/// pins every column of it by equality visits only its rows).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexDef {
    pub name: String,
    pub columns: Vec<String>,
}

/// A unique constraint; the primary key is the first one of a table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UniqueConstraint {
    pub name: String,
    pub columns: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableSchema {
    pub name: String,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    pub unique: Vec<UniqueConstraint>,
    pub checks: Vec<CheckConstraint>,
    pub foreign_keys: Vec<ForeignKey>,
    pub indexes: Vec<IndexDef>,
}

impl TableSchema {
    pub fn new(name: impl Into<String>) -> Self {
        TableSchema {
            name: name.into(),
            columns: Vec::new(),
            primary_key: Vec::new(),
            unique: Vec::new(),
            checks: Vec::new(),
            foreign_keys: Vec::new(),
            indexes: Vec::new(),
        }
    }

    /// A NOT NULL column.
    pub fn column(mut self, name: impl Into<String>, ty: ColumnType) -> Self {
        self.columns.push(Column {
            name: name.into(),
            ty,
            nullable: false,
            default: None,
        });
        self
    }

    pub fn nullable_column(mut self, name: impl Into<String>, ty: ColumnType) -> Self {
        self.columns.push(Column {
            name: name.into(),
            ty,
            nullable: true,
            default: None,
        });
        self
    }

    /// Sets the default of the last added column.
    pub fn default_value(mut self, value: impl Into<Value>) -> Self {
        if let Some(c) = self.columns.last_mut() {
            c.default = Some(ColumnDefault::Value(value.into()));
        }
        self
    }

    pub fn primary_key(mut self, columns: &[&str]) -> Self {
        self.primary_key = columns.iter().map(|c| (*c).to_owned()).collect();
        self
    }

    /// A unique constraint named as PostgreSQL names it: `<table>_<col>_<col>_key`.
    pub fn unique(mut self, columns: &[&str]) -> Self {
        let name = format!("{}_{}_key", self.name, columns.join("_"));
        self.unique.push(UniqueConstraint {
            name,
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        });
        self
    }

    pub fn primary_key_name(&self) -> String {
        format!("{}_pkey", self.name)
    }

    /// The primary key's name then the unique constraints' names, in declaration order.
    pub fn constraint_names(&self) -> Vec<String> {
        std::iter::once(self.primary_key_name())
            .chain(self.unique.iter().map(|u| u.name.clone()))
            .collect()
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    pub(crate) fn require_column(&self, name: &str) -> Result<usize, SqlError> {
        self.column_index(name)
            .ok_or_else(|| SqlError::UndefinedColumn(name.to_owned()))
    }

    /// Checks that the declaration is usable: a non-empty primary key, known columns.
    pub(crate) fn validate(&self) -> Result<(), SqlError> {
        if self.primary_key.is_empty() {
            return Err(SqlError::UndefinedColumn(format!(
                "{}: primary key (none declared)",
                self.name
            )));
        }
        for c in self
            .primary_key
            .iter()
            .chain(self.unique.iter().flat_map(|u| u.columns.iter()))
            .chain(self.indexes.iter().flat_map(|i| i.columns.iter()))
            .chain(self.foreign_keys.iter().flat_map(|f| f.columns.iter()))
        {
            self.require_column(c)?;
        }
        Ok(())
    }

    /// Turns a row given by the user into the stored tuple: every column in order, values
    /// coerced to the column types, defaults filled, NOT NULL (and primary key columns,
    /// which are implicitly NOT NULL) enforced. Only value defaults are known here; a
    /// `now()` or serial column not given is NULL (see [`TableSchema::tuple_from_row_with`]).
    #[cfg(test)]
    pub(crate) fn tuple_from_row(&self, row: &Row) -> Result<Vec<Value>, SqlError> {
        self.tuple_from_row_with(row, |_, d| match d {
            ColumnDefault::Value(v) => v.clone(),
            ColumnDefault::Now | ColumnDefault::Serial => Value::Null,
        })
    }

    /// [`TableSchema::tuple_from_row`] with `default(column, default)` giving the value of
    /// each column the row does not give and that has a default (called only for those,
    /// so that a serial number is drawn only when used).
    pub(crate) fn tuple_from_row_with(
        &self,
        row: &Row,
        mut default: impl FnMut(usize, &ColumnDefault) -> Value,
    ) -> Result<Vec<Value>, SqlError> {
        for (name, _) in row.iter() {
            self.require_column(name)?;
        }
        self.columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let v = match row.value(&c.name) {
                    Some(v) => v.clone(),
                    None => c.default.as_ref().map_or(Value::Null, |d| default(i, d)),
                };
                self.check_value(c, v)
            })
            .collect()
    }

    /// Coerces and checks one value for column `c`.
    pub(crate) fn check_value(&self, c: &Column, v: Value) -> Result<Value, SqlError> {
        let v = v.coerce(c.ty, &c.name)?;
        let not_null = !c.nullable || self.primary_key.contains(&c.name);
        if v.is_null() && not_null {
            return Err(SqlError::NotNullViolation {
                table: self.name.clone(),
                column: c.name.clone(),
            });
        }
        Ok(v)
    }

    /// Column indexes of the primary key then of each unique constraint.
    pub(crate) fn unique_column_indexes(&self) -> Vec<Vec<usize>> {
        std::iter::once(&self.primary_key)
            .chain(self.unique.iter().map(|u| &u.columns))
            .map(|cols| {
                cols.iter()
                    .map(|c| self.column_index(c).unwrap_or(0))
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> TableSchema {
        TableSchema::new("accounts")
            .column("id", ColumnType::Int)
            .column("balance", ColumnType::Float)
            .default_value(0.0)
            .nullable_column("owner", ColumnType::Text)
            .primary_key(&["id"])
    }

    #[test]
    fn tuples_get_defaults_coercion_and_not_null() {
        let t = accounts();
        let tuple = t
            .tuple_from_row(&Row::new().with("id", 1).with("balance", 5))
            .unwrap();
        assert_eq!(tuple, vec![Value::Int(1), Value::Float(5.0), Value::Null]);
        let tuple = t.tuple_from_row(&Row::new().with("id", 2)).unwrap();
        assert_eq!(tuple[1], Value::Float(0.0));
        let err = t
            .tuple_from_row(&Row::new().with("balance", 1))
            .unwrap_err();
        assert_eq!(err.sqlstate(), Some("23502"));
        let err = t
            .tuple_from_row(&Row::new().with("id", 1).with("nope", 1))
            .unwrap_err();
        assert_eq!(err.sqlstate(), Some("42703"));
    }
}
