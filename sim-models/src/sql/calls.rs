//! The sequence functions (`nextval`, `currval`, `setval`, `lastval`, and
//! `pg_get_serial_sequence`) as a running
//! statement calls them, anywhere an expression may be: a SET, a RETURNING, a VALUES
//! row, a select list, a serial column's default.
//!
//! A statement that waits for a lock is re-run from its start when the lock's holder
//! ends (see `exec`), but PostgreSQL does not run it again: it waits in the middle and
//! goes on, so every value it drew before the wait stays drawn once. The values a run
//! drew are therefore kept with the waiting statement and handed out again, in order, to
//! the calls of its re-run; only calls past them draw anew. (Where PostgreSQL itself
//! evaluates again, after a wait for a row a concurrent transaction changed, the engine
//! evaluates again too, and that call draws a new value, as in PostgreSQL.)

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use super::error::SqlError;
use super::expr::Func;
use super::sequence::Sequences;
use super::value::Value;

/// One value a run drew: which sequence, and the value.
pub(crate) type Drawn = (String, i64);

/// The sequence functions of one statement run by one session.
#[derive(Clone, Debug)]
pub(crate) struct Calls {
    sequences: Rc<RefCell<Sequences>>,
    session: u64,
    draws: RefCell<Draws>,
}

#[derive(Clone, Debug, Default)]
struct Draws {
    /// What an earlier run of the statement drew and this run has not yet handed out.
    replay: VecDeque<Drawn>,
    /// What this run handed out so far (replayed or new), oldest first.
    drawn: Vec<Drawn>,
}

fn no_such_function(f: Func, args: &[Value]) -> SqlError {
    let types: Vec<&str> = args.iter().map(Value::type_name).collect();
    SqlError::UndefinedFunction {
        name: format!("{}({})", f.name(), types.join(", ")),
    }
}

/// A sequence named by text as `regclass` reads it: unquoted names fold to lower case;
/// the one schema, `public`, may be named.
pub(crate) fn sequence_name(v: &Value) -> Option<String> {
    let Value::Text(t) = v else { return None };
    let folded = match t.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(quoted) => quoted.to_owned(),
        None => t.to_lowercase(),
    };
    Some(match folded.strip_prefix("public.") {
        Some(bare) => bare.to_owned(),
        None => folded,
    })
}

impl Calls {
    /// The calls of a run of session `session`'s statement; `replay` is what its earlier
    /// runs drew (empty for a first run).
    pub(crate) fn new(sequences: Rc<RefCell<Sequences>>, session: u64, replay: Vec<Drawn>) -> Self {
        Calls {
            sequences,
            session,
            draws: RefCell::new(Draws {
                replay: replay.into(),
                drawn: Vec::new(),
            }),
        }
    }

    /// What this run drew: kept with the statement when it waits.
    pub(crate) fn drawn(&self) -> Vec<Drawn> {
        let d = self.draws.borrow();
        // Values of an earlier run that this one did not reach stay drawn too.
        d.drawn.iter().chain(&d.replay).cloned().collect()
    }

    /// `nextval(name)`: the value an earlier run drew at this point, else a new one.
    pub(crate) fn nextval(&self, name: &str) -> Result<i64, SqlError> {
        let mut d = self.draws.borrow_mut();
        let replayed = d.replay.front().is_some_and(|(n, _)| n == name);
        let v = if replayed {
            let (_, v) = d.replay.pop_front().expect("checked");
            self.sequences
                .borrow_mut()
                .replayed(self.session, name, v)?;
            v
        } else {
            self.sequences.borrow_mut().nextval(self.session, name)?
        };
        d.drawn.push((name.to_owned(), v));
        Ok(v)
    }

    /// Calls one of the sequence functions of [`Func`] with evaluated arguments.
    pub(crate) fn call(&self, f: Func, args: &[Value]) -> Result<Value, SqlError> {
        let name = || {
            args.first()
                .and_then(sequence_name)
                .ok_or_else(|| no_such_function(f, args))
        };
        let arity = matches!(
            (f, args.len()),
            (Func::Nextval | Func::Currval, 1)
                | (Func::Lastval, 0)
                | (Func::Setval, 2 | 3)
                | (Func::PgGetSerialSequence, 2)
        );
        if !arity {
            return Err(no_such_function(f, args));
        }
        if args.iter().any(Value::is_null) {
            // The functions are strict: a NULL argument gives NULL without a call.
            return Ok(Value::Null);
        }
        let v = match (f, args) {
            (Func::Nextval, [_]) => self.nextval(&name()?)?,
            (Func::Currval, [_]) => self.sequences.borrow().currval(self.session, &name()?)?,
            (Func::Lastval, []) => self.sequences.borrow().lastval(self.session)?,
            (Func::PgGetSerialSequence, [table, Value::Text(column)]) => {
                let table = sequence_name(table).ok_or_else(|| no_such_function(f, args))?;
                return Ok(self
                    .sequences
                    .borrow()
                    .owned_by(&table, column)
                    .map_or(Value::Null, Value::Text));
            }
            (Func::Setval, [_, Value::Int(v)]) => {
                self.sequences
                    .borrow_mut()
                    .setval(self.session, &name()?, *v, true)?
            }
            (Func::Setval, [_, Value::Int(v), Value::Bool(called)]) => self
                .sequences
                .borrow_mut()
                .setval(self.session, &name()?, *v, *called)?,
            _ => return Err(no_such_function(f, args)),
        };
        Ok(Value::Int(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::sequence::SequenceDef;

    fn sequences() -> Rc<RefCell<Sequences>> {
        let mut all = Sequences::default();
        all.create(&SequenceDef::named("s")).unwrap();
        Rc::new(RefCell::new(all))
    }

    #[test]
    fn a_rerun_hands_out_what_the_first_run_drew_then_draws_anew() {
        let all = sequences();
        let first = Calls::new(all.clone(), 1, Vec::new());
        let s = Value::Text("s".into());
        assert_eq!(
            first.call(Func::Nextval, std::slice::from_ref(&s)).unwrap(),
            Value::Int(1)
        );
        assert_eq!(
            first.call(Func::Nextval, std::slice::from_ref(&s)).unwrap(),
            Value::Int(2)
        );
        let rerun = Calls::new(all.clone(), 1, first.drawn());
        let got: Vec<Value> = (0..3)
            .map(|_| rerun.call(Func::Nextval, std::slice::from_ref(&s)).unwrap())
            .collect();
        assert_eq!(got, [Value::Int(1), Value::Int(2), Value::Int(3)]);
        assert_eq!(
            rerun.call(Func::Currval, std::slice::from_ref(&s)).unwrap(),
            Value::Int(3)
        );
        // Another session's draw continues after them.
        let other = Calls::new(all, 2, Vec::new());
        assert_eq!(other.call(Func::Nextval, &[s]).unwrap(), Value::Int(4));
    }

    #[test]
    fn arguments_are_checked_as_postgres_does() {
        let calls = Calls::new(sequences(), 1, Vec::new());
        let e = calls.call(Func::Nextval, &[Value::Int(1)]).unwrap_err();
        assert_eq!(
            (e.sqlstate(), e.to_string()),
            (
                Some("42883"),
                "function nextval(bigint) does not exist".into()
            )
        );
        let e = calls
            .call(Func::Nextval, &[Value::Text("nope".into())])
            .unwrap_err();
        assert_eq!(e.sqlstate(), Some("42P01"));
        assert_eq!(
            calls.call(Func::Nextval, &[Value::Null]).unwrap(),
            Value::Null
        );
        assert_eq!(
            calls
                .call(
                    Func::Setval,
                    &[Value::Text("S".into()), Value::Int(7), Value::Bool(false)]
                )
                .unwrap(),
            Value::Int(7)
        );
        assert_eq!(
            calls
                .call(Func::Nextval, &[Value::Text("s".into())])
                .unwrap(),
            Value::Int(7)
        );
    }
}
