//! Sequences: `CREATE SEQUENCE`, `nextval`, `currval`, `setval` and `lastval` as
//! PostgreSQL 15 has them. A sequence's value is not transactional: a `nextval` stays
//! taken when its transaction rolls back, so two transactions never get the same value
//! and a rolled-back insert leaves a gap, as in PostgreSQL. `currval` and `lastval` are
//! per session.
//!
//! ```
//! use sim_models::sql::sequence::{Sequence, SequenceDef};
//! let mut s = Sequence::new(&SequenceDef { max: Some(2), cycle: true, ..SequenceDef::named("s") }).unwrap();
//! assert_eq!([s.next("s").unwrap(), s.next("s").unwrap(), s.next("s").unwrap()], [1, 2, 1]);
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::SqlError;

/// What `CREATE SEQUENCE` says; `None` takes PostgreSQL's default for the direction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceDef {
    pub name: String,
    pub increment: i64,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub start: Option<i64>,
    pub cycle: bool,
}

impl SequenceDef {
    /// `CREATE SEQUENCE name` with every default.
    pub fn named(name: &str) -> Self {
        SequenceDef {
            name: name.to_owned(),
            increment: 1,
            min: None,
            max: None,
            start: None,
            cycle: false,
        }
    }
}

impl fmt::Display for SequenceDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} INCREMENT {}", self.name, self.increment)?;
        if let Some(m) = self.min {
            write!(f, " MINVALUE {m}")?;
        }
        if let Some(m) = self.max {
            write!(f, " MAXVALUE {m}")?;
        }
        if let Some(s) = self.start {
            write!(f, " START {s}")?;
        }
        if self.cycle {
            f.write_str(" CYCLE")?;
        }
        Ok(())
    }
}

/// One sequence's state: `last_value` and `is_called` as in PostgreSQL's sequence
/// relation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sequence {
    increment: i64,
    min: i64,
    max: i64,
    cycle: bool,
    last: i64,
    called: bool,
}

fn invalid(message: String) -> SqlError {
    SqlError::InvalidParameterValue { message }
}

impl Sequence {
    /// A new sequence, with PostgreSQL's checks of its options (22023).
    pub fn new(def: &SequenceDef) -> Result<Sequence, SqlError> {
        if def.increment == 0 {
            return Err(invalid("INCREMENT must not be zero".into()));
        }
        let up = def.increment > 0;
        let min = def.min.unwrap_or(if up { 1 } else { i64::MIN });
        let max = def.max.unwrap_or(if up { i64::MAX } else { -1 });
        if min >= max {
            return Err(invalid(format!(
                "MINVALUE ({min}) must be less than MAXVALUE ({max})"
            )));
        }
        let start = def.start.unwrap_or(if up { min } else { max });
        if start < min {
            return Err(invalid(format!(
                "START value ({start}) cannot be less than MINVALUE ({min})"
            )));
        }
        if start > max {
            return Err(invalid(format!(
                "START value ({start}) cannot be greater than MAXVALUE ({max})"
            )));
        }
        Ok(Sequence {
            increment: def.increment,
            min,
            max,
            cycle: def.cycle,
            last: start,
            called: false,
        })
    }

    /// `nextval`: 2200H past the bound of a sequence without CYCLE.
    pub fn next(&mut self, name: &str) -> Result<i64, SqlError> {
        if !self.called {
            self.called = true;
            return Ok(self.last);
        }
        let next = match self.last.checked_add(self.increment) {
            Some(n) if n >= self.min && n <= self.max => n,
            _ if !self.cycle => {
                let (which, bound) = if self.increment > 0 {
                    ("maximum", self.max)
                } else {
                    ("minimum", self.min)
                };
                return Err(SqlError::SequenceLimit {
                    message: format!(
                        "nextval: reached {which} value of sequence \"{name}\" ({bound})"
                    ),
                });
            }
            _ if self.increment > 0 => self.min,
            _ => self.max,
        };
        self.last = next;
        Ok(next)
    }

    /// `setval(name, value, is_called)`: 22003 outside the sequence's bounds.
    pub fn set(&mut self, name: &str, value: i64, called: bool) -> Result<i64, SqlError> {
        if value < self.min || value > self.max {
            return Err(SqlError::NumericValueOutOfRange {
                detail: format!(
                    "setval: value {value} is out of bounds for sequence \"{name}\" ({}..{})",
                    self.min, self.max
                ),
            });
        }
        self.last = value;
        self.called = called;
        Ok(value)
    }
}

/// What a session saw of the sequences: the value `currval` answers for each, and the
/// sequence `lastval` reads.
#[derive(Clone, Debug, Default)]
struct SessionValues {
    current: BTreeMap<String, i64>,
    last: Option<String>,
}

/// The database's sequences and each session's `currval` state.
#[derive(Clone, Debug, Default)]
pub struct Sequences {
    all: BTreeMap<String, Sequence>,
    sessions: BTreeMap<u64, SessionValues>,
    /// The serial or identity column (table, column) each owned sequence belongs to.
    owners: BTreeMap<String, (String, String)>,
}

fn undefined(name: &str) -> SqlError {
    SqlError::UndefinedTable(name.to_owned())
}

fn not_yet(message: String) -> SqlError {
    SqlError::ObjectNotInPrerequisiteState { message }
}

impl Sequences {
    pub fn exists(&self, name: &str) -> bool {
        self.all.contains_key(name)
    }

    /// Creates it (the caller checked that no relation has the name).
    pub fn create(&mut self, def: &SequenceDef) -> Result<(), SqlError> {
        let s = Sequence::new(def)?;
        self.all.insert(def.name.clone(), s);
        Ok(())
    }

    /// Creates the sequence of a serial or identity column: named as PostgreSQL names
    /// it, `<table>_<column>_seq`, with a number after it if a relation (`taken`) has
    /// that name. Returns its name.
    pub fn create_owned(
        &mut self,
        table: &str,
        column: &str,
        taken: impl Fn(&str) -> bool,
    ) -> Result<String, SqlError> {
        let base = format!("{table}_{column}_seq");
        let name = std::iter::once(base.clone())
            .chain((1..).map(|n| format!("{base}{n}")))
            .find(|n| !taken(n) && !self.exists(n))
            .expect("some number is free");
        self.create(&SequenceDef::named(&name))?;
        self.owners
            .insert(name.clone(), (table.to_owned(), column.to_owned()));
        Ok(name)
    }

    /// The sequence of a serial or identity column, as `pg_get_serial_sequence` names
    /// it (schema-qualified), or `None`.
    pub fn owned_by(&self, table: &str, column: &str) -> Option<String> {
        self.owners
            .iter()
            .find(|(_, (t, c))| t == table && c == column)
            .map(|(name, _)| format!("public.{name}"))
    }

    /// Drops it; false if there was none. A sequence a column owns cannot go while its
    /// table is there (2BP01; the model has no DROP TABLE).
    pub fn drop_sequence(&mut self, name: &str) -> Result<bool, SqlError> {
        self.check_droppable(name)?;
        Ok(self.all.remove(name).is_some())
    }

    /// 2BP01 if a column owns the sequence.
    pub fn check_droppable(&self, name: &str) -> Result<(), SqlError> {
        match self.owners.get(name) {
            Some((table, column)) => Err(SqlError::DependentObjectsStillExist {
                message: format!(
                    "cannot drop sequence {name} because column {column} of table {table} \
                     requires it"
                ),
            }),
            None => Ok(()),
        }
    }

    pub fn nextval(&mut self, session: u64, name: &str) -> Result<i64, SqlError> {
        let v = self
            .all
            .get_mut(name)
            .ok_or_else(|| undefined(name))?
            .next(name)?;
        let mine = self.sessions.entry(session).or_default();
        mine.current.insert(name.to_owned(), v);
        mine.last = Some(name.to_owned());
        Ok(v)
    }

    /// A value an earlier run of the session's statement drew, handed out again (see
    /// `calls`): the sequence does not move, the session's `currval` and `lastval` do.
    pub fn replayed(&mut self, session: u64, name: &str, v: i64) -> Result<(), SqlError> {
        if !self.all.contains_key(name) {
            return Err(undefined(name));
        }
        let mine = self.sessions.entry(session).or_default();
        mine.current.insert(name.to_owned(), v);
        mine.last = Some(name.to_owned());
        Ok(())
    }

    pub fn currval(&self, session: u64, name: &str) -> Result<i64, SqlError> {
        if !self.all.contains_key(name) {
            return Err(undefined(name));
        }
        self.sessions
            .get(&session)
            .and_then(|s| s.current.get(name))
            .copied()
            .ok_or_else(|| {
                not_yet(format!(
                    "currval of sequence \"{name}\" is not yet defined in this session"
                ))
            })
    }

    pub fn lastval(&self, session: u64) -> Result<i64, SqlError> {
        let mine = self.sessions.get(&session);
        let name = mine
            .and_then(|s| s.last.as_deref())
            .ok_or_else(|| not_yet("lastval is not yet defined in this session".into()))?;
        if !self.all.contains_key(name) {
            return Err(not_yet("lastval is not yet defined in this session".into()));
        }
        Ok(mine.and_then(|s| s.current.get(name)).copied().unwrap_or(0))
    }

    /// `setval`: with `is_called` it also becomes the session's `currval` (PostgreSQL's
    /// `do_setval`), not its `lastval`.
    pub fn setval(
        &mut self,
        session: u64,
        name: &str,
        value: i64,
        called: bool,
    ) -> Result<i64, SqlError> {
        let v = self
            .all
            .get_mut(name)
            .ok_or_else(|| undefined(name))?
            .set(name, value, called)?;
        if called {
            let mine = self.sessions.entry(session).or_default();
            mine.current.insert(name.to_owned(), v);
        }
        Ok(v)
    }

    /// The session ended.
    pub fn forget_session(&mut self, session: u64) {
        self.sessions.remove(&session);
    }

    /// A crash: the sessions are gone; the sequences' values stay (PostgreSQL logs a
    /// sequence's advance before handing the value out).
    pub fn clear_sessions(&mut self) {
        self.sessions.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ascending_sequence_stops_at_its_maximum() {
        let mut s = Sequence::new(&SequenceDef {
            start: Some(9),
            max: Some(10),
            ..SequenceDef::named("s")
        })
        .unwrap();
        assert_eq!(s.next("s").unwrap(), 9);
        assert_eq!(s.next("s").unwrap(), 10);
        let e = s.next("s").unwrap_err();
        assert_eq!(e.sqlstate(), Some("2200H"));
        assert_eq!(
            e.to_string(),
            "nextval: reached maximum value of sequence \"s\" (10)"
        );
    }

    #[test]
    fn a_descending_sequence_starts_at_its_maximum() {
        let mut s = Sequence::new(&SequenceDef {
            increment: -2,
            ..SequenceDef::named("d")
        })
        .unwrap();
        assert_eq!([s.next("d").unwrap(), s.next("d").unwrap()], [-1, -3]);
    }

    #[test]
    fn options_are_checked_as_postgres_does() {
        let bad = [
            (
                SequenceDef {
                    increment: 0,
                    ..SequenceDef::named("s")
                },
                "INCREMENT must not be zero",
            ),
            (
                SequenceDef {
                    min: Some(5),
                    max: Some(5),
                    ..SequenceDef::named("s")
                },
                "MINVALUE (5) must be less than MAXVALUE (5)",
            ),
            (
                SequenceDef {
                    start: Some(0),
                    ..SequenceDef::named("s")
                },
                "START value (0) cannot be less than MINVALUE (1)",
            ),
        ];
        for (def, message) in bad {
            let e = Sequence::new(&def).unwrap_err();
            assert_eq!(
                (e.sqlstate(), e.to_string()),
                (Some("22023"), message.to_string())
            );
        }
    }

    #[test]
    fn currval_and_lastval_are_per_session() {
        let mut all = Sequences::default();
        all.create(&SequenceDef::named("s")).unwrap();
        assert_eq!(all.currval(1, "s").unwrap_err().sqlstate(), Some("55000"));
        assert_eq!(all.lastval(1).unwrap_err().sqlstate(), Some("55000"));
        assert_eq!(all.nextval(1, "s").unwrap(), 1);
        assert_eq!(all.nextval(2, "s").unwrap(), 2);
        assert_eq!(all.currval(1, "s").unwrap(), 1);
        assert_eq!(all.lastval(2).unwrap(), 2);
        assert_eq!(all.setval(1, "s", 10, false).unwrap(), 10);
        assert_eq!(
            all.currval(1, "s").unwrap(),
            1,
            "setval(.., false) keeps currval"
        );
        assert_eq!(all.nextval(2, "s").unwrap(), 10);
        assert_eq!(
            all.setval(1, "s", 0, true).unwrap_err().sqlstate(),
            Some("22003")
        );
        assert_eq!(
            all.nextval(1, "nope").unwrap_err().sqlstate(),
            Some("42P01")
        );
    }
}
