//! Rust values as statement parameters (`ToSql`) and column values read back from rows
//! (`FromSql`, the same trait as [`FromValue`]), in the shape of tokio-postgres:
//! `client.query_one("SELECT stock FROM items WHERE id = $1", &[&id])`, then
//! `row.get::<_, i64>("stock")`.

use sim_runtime::time::Instant;

pub use super::value::FromValue as FromSql;
use super::value::Value;

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

to_sql_via_value!(i64, i32, u32, f64, bool, String, Instant);

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
