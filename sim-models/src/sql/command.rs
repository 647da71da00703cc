//! Statements beyond queries and writes that SQL text reaches: sequences, advisory locks,
//! and the session settings' `SET LOCAL`, `SHOW` and `RESET`. The engine runs them in
//! `engine::commands`; their state lives in [`super::sequence`], [`super::advisory`] and
//! [`super::settings`].

use std::fmt;

use serde::{Deserialize, Serialize};

use super::expr::Expr;
use super::sequence::SequenceDef;
use super::stmt::Setting;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// `CREATE SEQUENCE [IF NOT EXISTS] name [options]`: not transactional, like the
    /// model's other DDL (outside transaction blocks only).
    CreateSequence {
        def: SequenceDef,
        if_not_exists: bool,
    },
    /// `DROP SEQUENCE [IF EXISTS] name [, ...]`.
    DropSequence { names: Vec<String>, if_exists: bool },
    /// `SELECT f(args)` (no FROM) of a sequence or advisory-lock function; its one row
    /// has one column named after the function.
    Call { func: CallFunc, args: Vec<Expr> },
    /// `SET LOCAL name = value`: until the end of the transaction.
    SetLocal(Setting),
    /// `SHOW name`.
    Show(String),
    /// `RESET name` (`None`: `RESET ALL`): back to the server's default.
    Reset(Option<String>),
}

impl Command {
    /// Whether it runs in a transaction as a data statement does (an implicit one outside
    /// a block): it may block, and `statement_timeout` applies.
    pub fn is_data(&self) -> bool {
        matches!(self, Command::Call { .. })
    }
}

/// The functions a [`Command::Call`] runs: PostgreSQL's sequence functions and advisory
/// locks. Advisory keys are a bigint or a pair of integers (two separate key spaces).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallFunc {
    Nextval,
    Currval,
    Setval,
    Lastval,
    Advisory(AdvisoryCall),
}

/// One advisory-lock function: `pg_[try_]advisory_[xact_]lock[_shared]`,
/// `pg_advisory_unlock[_shared]`, `pg_advisory_unlock_all`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdvisoryCall {
    Lock {
        try_only: bool,
        xact: bool,
        shared: bool,
    },
    Unlock {
        shared: bool,
    },
    UnlockAll,
}

impl CallFunc {
    /// The function named `name` (lower case), if it is one of these.
    pub fn by_name(name: &str) -> Option<CallFunc> {
        Some(match name {
            "nextval" => CallFunc::Nextval,
            "currval" => CallFunc::Currval,
            "setval" => CallFunc::Setval,
            "lastval" => CallFunc::Lastval,
            "pg_advisory_unlock" => CallFunc::Advisory(AdvisoryCall::Unlock { shared: false }),
            "pg_advisory_unlock_shared" => {
                CallFunc::Advisory(AdvisoryCall::Unlock { shared: true })
            }
            "pg_advisory_unlock_all" => CallFunc::Advisory(AdvisoryCall::UnlockAll),
            other => {
                let rest = other.strip_prefix("pg_")?;
                let (try_only, rest) = match rest.strip_prefix("try_") {
                    Some(r) => (true, r),
                    None => (false, rest),
                };
                let rest = rest.strip_prefix("advisory_")?;
                let (xact, rest) = match rest.strip_prefix("xact_") {
                    Some(r) => (true, r),
                    None => (false, rest),
                };
                let shared = match rest {
                    "lock" => false,
                    "lock_shared" => true,
                    _ => return None,
                };
                CallFunc::Advisory(AdvisoryCall::Lock {
                    try_only,
                    xact,
                    shared,
                })
            }
        })
    }

    /// PostgreSQL's name, which is also the result column's.
    pub fn name(self) -> String {
        match self {
            CallFunc::Nextval => "nextval".into(),
            CallFunc::Currval => "currval".into(),
            CallFunc::Setval => "setval".into(),
            CallFunc::Lastval => "lastval".into(),
            CallFunc::Advisory(AdvisoryCall::Unlock { shared }) => {
                format!("pg_advisory_unlock{}", if shared { "_shared" } else { "" })
            }
            CallFunc::Advisory(AdvisoryCall::UnlockAll) => "pg_advisory_unlock_all".into(),
            CallFunc::Advisory(AdvisoryCall::Lock {
                try_only,
                xact,
                shared,
            }) => format!(
                "pg_{}advisory_{}lock{}",
                if try_only { "try_" } else { "" },
                if xact { "xact_" } else { "" },
                if shared { "_shared" } else { "" }
            ),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::CreateSequence { def, if_not_exists } => {
                let ine = if *if_not_exists { "IF NOT EXISTS " } else { "" };
                write!(f, "CREATE SEQUENCE {ine}{def}")
            }
            Command::DropSequence { names, if_exists } => {
                let ie = if *if_exists { "IF EXISTS " } else { "" };
                write!(f, "DROP SEQUENCE {ie}{}", names.join(", "))
            }
            Command::Call { func, args } => {
                write!(f, "SELECT {}(", func.name())?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
            Command::SetLocal(s) => {
                let text = super::stmt::Statement::Set(s.clone()).to_string();
                write!(f, "SET LOCAL {}", text.trim_start_matches("SET "))
            }
            Command::Show(name) => write!(f, "SHOW {name}"),
            Command::Reset(Some(name)) => write!(f, "RESET {name}"),
            Command::Reset(None) => f.write_str("RESET ALL"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_name_round_trips() {
        for name in [
            "nextval",
            "currval",
            "setval",
            "lastval",
            "pg_advisory_lock",
            "pg_advisory_lock_shared",
            "pg_try_advisory_lock",
            "pg_try_advisory_lock_shared",
            "pg_advisory_xact_lock",
            "pg_advisory_xact_lock_shared",
            "pg_try_advisory_xact_lock",
            "pg_try_advisory_xact_lock_shared",
            "pg_advisory_unlock",
            "pg_advisory_unlock_shared",
            "pg_advisory_unlock_all",
        ] {
            assert_eq!(
                CallFunc::by_name(name).map(CallFunc::name).as_deref(),
                Some(name)
            );
        }
        assert_eq!(CallFunc::by_name("pg_advisory_lock_exclusive"), None);
        assert_eq!(CallFunc::by_name("pg_sleep"), None);
    }
}
