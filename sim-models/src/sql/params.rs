//! Rust values as statement parameters (`ToSql`) and column values read back from rows
//! (`FromSql`, the same trait as [`FromValue`]), in the shape of tokio-postgres:
//! `client.query_one("SELECT stock FROM items WHERE id = $1", &[&id])`, then
//! `row.get::<_, i64>("stock")`.
//!
//! Beside Rust's numbers, strings and booleans: [`Numeric`] (`numeric`), [`Jsonb`] and
//! `serde_json::Value` (`jsonb`), [`Uuid`] (`uuid`), [`Interval`], and `Instant`, a
//! `timestamptz` on the model's clock (virtual time after the Unix epoch, see
//! [`super::value::datetime`]). A string parameter is also read as any of these where
//! the statement needs one (`WHERE id = $1` on a uuid column), as PostgreSQL reads a
//! parameter sent as text.

use sim_runtime::time::Instant;

pub use super::value::FromValue as FromSql;
use super::value::{Interval, Jsonb, Numeric, Uuid, Value};

/// A Rust value that can be a statement parameter.
pub trait ToSql {
    fn to_sql(&self) -> Value;
}

macro_rules! to_sql_via_value {
    ($($ty:ty),*) => {
        $(impl ToSql for $ty {
            fn to_sql(&self) -> Value {
                Value::from(self.clone())
            }
        })*
    };
}

to_sql_via_value!(i64, i32, u32, f64, bool, String, Instant, Numeric, Jsonb, Uuid, Interval);

/// A JSON document as `jsonb` (normalised as jsonb is: keys sorted, duplicates dropped).
impl ToSql for serde_json::Value {
    fn to_sql(&self) -> Value {
        match Jsonb::parse(&self.to_string()) {
            Ok(j) => Value::json(j),
            // serde_json writes only valid JSON; a NUL in a string is what jsonb refuses,
            // and the statement then gets it as text to refuse with 22P05.
            Err(_) => Value::Text(self.to_string()),
        }
    }
}

impl ToSql for i16 {
    fn to_sql(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

impl ToSql for u16 {
    fn to_sql(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

impl ToSql for f32 {
    fn to_sql(&self) -> Value {
        Value::Float(f64::from(*self))
    }
}

impl ToSql for str {
    fn to_sql(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl ToSql for Value {
    fn to_sql(&self) -> Value {
        self.clone()
    }
}

impl<T: ToSql + ?Sized> ToSql for &T {
    fn to_sql(&self) -> Value {
        (**self).to_sql()
    }
}

/// `None` is NULL.
impl<T: ToSql> ToSql for Option<T> {
    fn to_sql(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToSql::to_sql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_types_round_trip_through_rows() {
        use crate::sql::value::FromValue;
        let price = Numeric::parse("12.50").unwrap();
        let id = Uuid::parse("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap();
        let doc = serde_json::json!({"b": [1, 2], "a": "x"});
        let at = Instant::from_nanos(1_500_000_000);
        let values = [price.to_sql(), id.to_sql(), doc.to_sql(), at.to_sql()];
        let texts: Vec<String> = values.iter().filter_map(Value::pg_text).collect();
        assert_eq!(
            texts,
            [
                "12.50",
                "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                r#"{"a": "x", "b": [1, 2]}"#,
                "1970-01-01 00:00:01.5+00"
            ]
        );
        assert_eq!(Numeric::from_value(&values[0]), Some(price));
        assert_eq!(Uuid::from_value(&values[1]), Some(id));
        assert_eq!(serde_json::Value::from_value(&values[2]), Some(doc));
        assert_eq!(Instant::from_value(&values[3]), Some(at));
    }

    #[test]
    fn rust_values_become_sql_values() {
        let params: [&dyn ToSql; 7] = [
            &7_i64,
            &"seven",
            &String::from("s"),
            &1.5_f64,
            &true,
            &None::<i64>,
            &Some(3_i32),
        ];
        let values: Vec<Value> = params.iter().map(|p| p.to_sql()).collect();
        assert_eq!(
            values,
            [
                Value::Int(7),
                Value::Text("seven".into()),
                Value::Text("s".into()),
                Value::Float(1.5),
                Value::Bool(true),
                Value::Null,
                Value::Int(3)
            ]
        );
    }
}
