//! A conformance case: a schema and seed rows, then statements of one to three sessions
//! in a fixed order, and the trace both sides must produce from it.

use std::fmt;

use super::outcome::Answer;

/// One statement of the script, for one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub session: usize,
    pub sql: String,
}

/// A case: `setup` runs first in session 0 (and must succeed on both sides), then the
/// steps in order; `tables` are read (as multisets of rows) for the final state.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub sessions: usize,
    pub setup: Vec<String>,
    pub steps: Vec<Step>,
    pub tables: Vec<String>,
}

impl Case {
    /// The case as SQL per session, for a person to replay with psql (one psql per
    /// session, statements in the order of their step numbers).
    pub fn as_sql(&self) -> String {
        let mut out = format!("-- case {}\n-- setup (session 0)\n", self.name);
        for s in &self.setup {
            out.push_str(&format!("{s};\n"));
        }
        for session in 0..self.sessions {
            out.push_str(&format!("-- session {session}\n"));
            for (i, step) in self.steps.iter().enumerate() {
                if step.session == session {
                    out.push_str(&format!("/* step {i} */ {};\n", step.sql));
                }
            }
        }
        out
    }
}

/// What happened in one step: whether its statement was sent (a session still waiting
/// for an earlier statement skips its turn), the statements that finished during the
/// step, and the sessions left waiting at its end.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct StepTrace {
    pub sent: bool,
    /// `(session, step index of the statement, answer)`, by session.
    pub finished: Vec<(usize, usize, Answer)>,
    pub waiting: Vec<usize>,
}

impl fmt::Display for StepTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.sent {
            f.write_str("(skipped: its session was waiting) ")?;
        }
        for (s, i, a) in &self.finished {
            write!(f, "s{s}#{i} -> {a}; ")?;
        }
        if !self.waiting.is_empty() {
            write!(f, "waiting: {:?}", self.waiting)?;
        }
        Ok(())
    }
}

/// Everything one side answered for a case.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Trace {
    /// The setup's answers.
    pub setup: Vec<Answer>,
    pub steps: Vec<StepTrace>,
    /// The ROLLBACKs that end the sessions, then each table's rows.
    pub finish: Vec<StepTrace>,
    pub tables: Vec<Answer>,
}

/// Sessions still waiting, and sessions that would run a step, are handled alike on both
/// sides by this rule: a step whose session waits is skipped.
pub fn is_sendable(waiting: &[bool], step: &Step) -> bool {
    !waiting[step.session]
}
