//! Writing statements as SQL text, either to a formatter (`Display`) or straight into the
//! JSON string of the `sql.stmt` trace event.
//!
//! Every statement is shown once, in its trace event. Going through `Display` into a
//! `String` and then escaping that for JSON cost more than running the statement, so
//! the writers of statements, expressions, rows and values take a [`Sink`], and the JSON
//! sink escapes only the pieces that can need it (names and text values, not keywords).
//! JSON escaping is per character, so escaping piece by piece writes exactly what
//! escaping the whole text would.

use std::fmt;

use super::stmt::Statement;

/// Where SQL text goes.
pub(crate) trait Sink {
    /// Text that never needs escaping: keywords, punctuation.
    fn raw(&mut self, s: &str) -> fmt::Result;
    /// Text that may: names and values given by the user.
    fn user(&mut self, s: &str) -> fmt::Result;
    fn int(&mut self, i: i64) -> fmt::Result;
    /// Formatted text with nothing to escape (numbers).
    fn args(&mut self, args: fmt::Arguments<'_>) -> fmt::Result;

    /// `items` separated by `, `.
    fn joined<T>(
        &mut self,
        items: &[T],
        mut write: impl FnMut(&mut Self, &T) -> fmt::Result,
    ) -> fmt::Result
    where
        Self: Sized,
    {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.raw(", ")?;
            }
            write(self, item)?;
        }
        Ok(())
    }
}

/// The `Display` side.
pub(crate) struct FmtSink<'a, 'b>(pub(crate) &'a mut fmt::Formatter<'b>);

impl Sink for FmtSink<'_, '_> {
    fn raw(&mut self, s: &str) -> fmt::Result {
        self.0.write_str(s)
    }
    fn user(&mut self, s: &str) -> fmt::Result {
        self.0.write_str(s)
    }
    fn int(&mut self, i: i64) -> fmt::Result {
        write!(self.0, "{i}")
    }
    fn args(&mut self, args: fmt::Arguments<'_>) -> fmt::Result {
        self.0.write_fmt(args)
    }
}

/// The inside of a JSON string, escaped as serde_json escapes.
struct JsonSink(Vec<u8>);

impl Sink for JsonSink {
    fn raw(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
    fn user(&mut self, s: &str) -> fmt::Result {
        crate::kv::json::write_str_contents(&mut self.0, s);
        Ok(())
    }
    fn int(&mut self, i: i64) -> fmt::Result {
        if i < 0 {
            self.0.push(b'-');
        }
        sim_runtime::trace::write_u64(&mut self.0, i.unsigned_abs());
        Ok(())
    }
    fn args(&mut self, args: fmt::Arguments<'_>) -> fmt::Result {
        std::io::Write::write_fmt(&mut self.0, args).map_err(|_| fmt::Error)
    }
}

/// The statement's SQL text as a JSON string (quotes included): what
/// `serde_json::to_vec(&stmt.to_string())` gives.
pub(crate) fn json_string(stmt: &Statement) -> Vec<u8> {
    let mut sink = JsonSink(Vec::with_capacity(160));
    sink.0.push(b'"');
    stmt.write_sql(&mut sink)
        .expect("writing SQL text to a Vec cannot fail");
    sink.0.push(b'"');
    sink.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::stmt::{
        Count, Delete, Insert, IsolationLevel, OnConflict, Select, Setting, Update,
    };
    use crate::sql::{col, excluded, lit, Row, Value};
    use sim_runtime::time::{Duration, Instant};

    /// The JSON sink writes exactly serde's escaping of the `Display` text, also when
    /// names and values hold quotes, backslashes and control characters.
    #[test]
    fn json_text_is_serdes_escaping_of_display() {
        let odd = "a\"b\\c\nd\u{1}e'f é";
        let stmts: Vec<Statement> = vec![
            Statement::Begin(IsolationLevel::Serializable),
            Statement::Commit,
            Statement::Rollback,
            Setting::StatementTimeout(Some(Duration::from_millis(250))).into(),
            Setting::LockTimeout(None).into(),
            Setting::DefaultIsolation(IsolationLevel::RepeatableRead).into(),
            Statement::Sleep(Duration::from_millis(1500)),
            Select::from(odd)
                .key(odd)
                .filter(col(odd).eq(lit(-7)).or(!col("x").is_null()))
                .for_share()
                .skip_locked()
                .limit(3)
                .into(),
            Select::from("t").for_update().nowait().into(),
            Insert::into(
                "t",
                Row::new()
                    .with(odd, odd)
                    .with("f", 1.5)
                    .with("n", Value::Null)
                    .with("b", true)
                    .with("ts", Instant::from_nanos(42))
                    .with("i", i64::MIN),
            )
            .on_conflict_do_update(&["id", odd], vec![("v", excluded(odd).plus(1))])
            .on_conflict_where(col("v").lt(10.25))
            .into(),
            Insert::into("t", Row::new().with("id", 1))
                .on_conflict_do_nothing()
                .into(),
            Insert {
                on_conflict: OnConflict::DoNothing {
                    target: Some(vec!["id".into(), odd.into()]),
                },
                ..Insert::into("t", Row::new())
            }
            .into(),
            Update::table("accounts")
                .set("balance", col("balance").minus(10).times(2))
                .key_parts(vec![Value::Int(1), Value::Text("x".into())])
                .into(),
            Delete::from("t")
                .filter(col("a").ge(1).and(col("b").ne("'")))
                .into(),
            Count::from("t").into(),
        ];
        for s in stmts {
            let ours = json_string(&s);
            let serdes = serde_json::to_vec(&s.to_string()).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(serdes).unwrap()
            );
        }
    }
}
