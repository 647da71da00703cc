//! The errors of the SQL model, each carrying its PostgreSQL SQLSTATE code.
//!
//! Server errors use PostgreSQL's messages and codes so that service code written against
//! the model handles the same cases it would in production (retry on 40001/40P01, treat
//! 23505 as "already exists", and so on). Client-side failures (the pool, the network) are
//! variants too, so that one `Result<_, SqlError>` covers a whole call.

use sim_runtime::time::Duration;

pub use sim_net::ConnectionFailure;

#[derive(Clone, Debug, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum SqlError {
    /// SQLSTATE 40001; `detail` says which kind: "concurrent update", "concurrent delete", or
    /// "read/write dependencies among transactions".
    #[error("could not serialize access due to {detail}")]
    SerializationFailure { detail: String },
    /// 40P01.
    #[error("deadlock detected")]
    DeadlockDetected,
    /// 55P03, raised by `lock_timeout` and by `NOWAIT`.
    #[error("{message}")]
    LockNotAvailable { message: String },
    /// 57014, raised by `statement_timeout`.
    #[error("canceling statement due to statement timeout")]
    QueryCanceled,
    /// 23505.
    #[error("duplicate key value violates unique constraint \"{constraint}\"")]
    UniqueViolation { constraint: String, key: String },
    /// 23502.
    #[error(
        "null value in column \"{column}\" of relation \"{table}\" violates not-null constraint"
    )]
    NotNullViolation { table: String, column: String },
    /// 25P02.
    #[error("current transaction is aborted, commands ignored until end of transaction block")]
    InFailedTransaction,
    /// 25001, for statements this model only runs outside a transaction block.
    #[error("{statement} cannot run inside a transaction block")]
    ActiveTransaction { statement: String },
    /// 42P01.
    #[error("relation \"{0}\" does not exist")]
    UndefinedTable(String),
    /// 42P07.
    #[error("relation \"{0}\" already exists")]
    DuplicateTable(String),
    /// 42703.
    #[error("column \"{0}\" does not exist")]
    UndefinedColumn(String),
    /// 42804.
    #[error("datatype mismatch: {detail}")]
    DatatypeMismatch { detail: String },
    /// 42P10: ON CONFLICT names no unique constraint of the table.
    #[error("there is no unique or exclusion constraint matching the ON CONFLICT specification")]
    InvalidConflictTarget,
    /// 22003.
    #[error("value out of range: {detail}")]
    NumericValueOutOfRange { detail: String },
    /// 22012.
    #[error("division by zero")]
    DivisionByZero,
    /// 53300.
    #[error("sorry, too many clients already")]
    TooManyConnections,
    /// 57P01: the server terminated the session (refuse, shutdown).
    #[error("terminating connection due to administrator command")]
    AdminShutdown,
    /// 08006 / 08001 on the client: the connection failed or could not be made.
    #[error("connection failure: {0:?}")]
    Connection(ConnectionFailure),
    /// The pool had no connection to give within its acquire timeout (client side, no
    /// SQLSTATE: PostgreSQL never sees it).
    #[error("timed out after {waited:?} waiting for a pooled connection")]
    PoolTimeout { waited: Duration },
    /// A column held a value of another type than the one asked for (client side).
    #[error("column \"{column}\" is not {expected}")]
    WrongType {
        column: String,
        expected: &'static str,
    },
    /// Converting a row to or from a serde type failed (client side).
    #[error("row conversion: {0}")]
    Conversion(String),

    /// 42601: SQL text that does not parse, or a statement that cannot be planned as
    /// written (a misplaced clause).
    #[error("syntax error: {message}")]
    SyntaxError { message: String },

    /// 0A000: SQL that PostgreSQL accepts and this model does not; the message names the
    /// construct. The model refuses rather than answer differently.
    #[error("{feature} is not supported by the simulated database")]
    FeatureNotSupported { feature: String },

    /// 42P02: `$n` with no n-th parameter given.
    #[error("there is no parameter ${0}")]
    UndefinedParameter(usize),

    /// 08P01: a statement was given a different number of parameters than it uses.
    #[error(
        "bind message supplies {given} parameters, but prepared statement requires {expected}"
    )]
    ParameterCount { expected: usize, given: usize },

    /// 2201W / 2201X: a negative LIMIT or OFFSET.
    #[error("{message}")]
    InvalidRowCount { message: String },

    /// `query_one` got no row or several, `query_opt` several (a client-side error, as in
    /// tokio-postgres).
    #[error("query returned {got} rows, expected {expected}")]
    RowCount { expected: &'static str, got: usize },

    /// 22023: a setting given a value it does not take.
    #[error("{message}")]
    InvalidParameterValue { message: String },

    /// 42P16.
    #[error("{message}")]
    InvalidTableDefinition { message: String },

    /// 2200H: `nextval` past the bound of a sequence without CYCLE.
    #[error("{message}")]
    SequenceLimit { message: String },

    /// 55000: `currval`/`lastval` before any `nextval` of the session.
    #[error("{message}")]
    ObjectNotInPrerequisiteState { message: String },

    /// 42704: `SHOW` or `RESET` of a setting that does not exist.
    #[error("{message}")]
    UndefinedObject { message: String },

    /// 42883: a function the model does not know with these arguments.
    #[error("function {name} does not exist")]
    UndefinedFunction { name: String },

    /// 23514.
    #[error("new row for relation \"{table}\" violates check constraint \"{constraint}\"")]
    CheckViolation { table: String, constraint: String },

    /// 23503: a child row without its parent, or a parent row that children still name.
    #[error("{message}")]
    ForeignKeyViolation { constraint: String, message: String },

    /// 42803: a column outside GROUP BY and outside an aggregate, or an aggregate where
    /// none may be (WHERE).
    #[error("{message}")]
    GroupingError { message: String },

    /// 42702.
    #[error("column reference \"{0}\" is ambiguous")]
    AmbiguousColumn(String),

    /// 21000: ON CONFLICT DO UPDATE met the same row twice in one statement.
    #[error("ON CONFLICT DO UPDATE command cannot affect row a second time")]
    CardinalityViolation,

    /// 3B001.
    #[error("savepoint \"{0}\" does not exist")]
    UndefinedSavepoint(String),

    /// 25P01: SAVEPOINT outside a transaction block.
    #[error("{0} can only be used in transaction blocks")]
    NoActiveTransaction(String),

    /// 42P07 for an index.
    #[error("relation \"{0}\" already exists")]
    DuplicateIndex(String),

    /// 23505 while creating a unique index over rows that are not.
    #[error("could not create unique index \"{index}\"")]
    UniqueIndexViolated { index: String, key: String },

    /// 22P02: text that does not spell a value of the type it is cast to.
    #[error("invalid input syntax for {detail}")]
    InvalidTextRepresentation { detail: String },

    /// 42846: a cast PostgreSQL does not define between two types.
    #[error("cannot cast type {from} to {to}")]
    CannotCoerce { from: String, to: String },

    /// 42712: two tables of one FROM with the same name or alias.
    #[error("table name \"{0}\" specified more than once")]
    DuplicateAlias(String),

    /// 42830: a foreign key whose referenced columns are not a primary key or unique
    /// constraint of the referenced table.
    #[error("{message}")]
    InvalidForeignKey { message: String },

    /// 22008: a date or time out of its range (`2023-02-29`, a timestamp past 294276 AD).
    #[error("{detail}")]
    DatetimeFieldOverflow { detail: String },

    /// 22P05: a character text cannot hold (`\u0000` in jsonb).
    #[error("{detail}")]
    UntranslatableCharacter { detail: String },

    /// 428C9: a value given for a `GENERATED ALWAYS AS IDENTITY` column without
    /// `OVERRIDING SYSTEM VALUE`.
    #[error("{message}")]
    GeneratedAlways { message: String },

    /// 42701: a column named twice in an INSERT's column list.
    #[error("column \"{0}\" specified more than once")]
    DuplicateColumn(String),

    /// 2BP01: DROP of a sequence a serial or identity column draws from.
    #[error("{message}")]
    DependentObjectsStillExist { message: String },
}

impl SqlError {
    /// The SQLSTATE code, or `None` for client-side errors that never reach a server.
    pub fn sqlstate(&self) -> Option<&'static str> {
        Some(match self {
            SqlError::SerializationFailure { .. } => "40001",
            SqlError::DeadlockDetected => "40P01",
            SqlError::LockNotAvailable { .. } => "55P03",
            SqlError::QueryCanceled => "57014",
            SqlError::UniqueViolation { .. } => "23505",
            SqlError::NotNullViolation { .. } => "23502",
            SqlError::InFailedTransaction => "25P02",
            SqlError::ActiveTransaction { .. } => "25001",
            SqlError::UndefinedTable(_) => "42P01",
            SqlError::DuplicateTable(_) => "42P07",
            SqlError::UndefinedColumn(_) => "42703",
            SqlError::DatatypeMismatch { .. } => "42804",
            SqlError::InvalidConflictTarget => "42P10",
            SqlError::NumericValueOutOfRange { .. } => "22003",
            SqlError::DivisionByZero => "22012",
            SqlError::TooManyConnections => "53300",
            SqlError::AdminShutdown => "57P01",
            SqlError::Connection(ConnectionFailure::Refused) => "08001",
            SqlError::Connection(_) => "08006",
            SqlError::SyntaxError { .. } => "42601",
            SqlError::FeatureNotSupported { .. } => "0A000",
            SqlError::UndefinedParameter(_) => "42P02",
            SqlError::GeneratedAlways { .. } => "428C9",
            SqlError::DuplicateColumn(_) => "42701",
            SqlError::DependentObjectsStillExist { .. } => "2BP01",
            SqlError::ParameterCount { .. } => "08P01",
            SqlError::UndefinedFunction { .. } => "42883",
            SqlError::InvalidParameterValue { .. } => "22023",
            SqlError::InvalidRowCount { .. } => "2201W",
            SqlError::InvalidTableDefinition { .. } => "42P16",
            SqlError::SequenceLimit { .. } => "2200H",
            SqlError::ObjectNotInPrerequisiteState { .. } => "55000",
            SqlError::UndefinedObject { .. } => "42704",
            SqlError::CheckViolation { .. } => "23514",
            SqlError::ForeignKeyViolation { .. } => "23503",
            SqlError::GroupingError { .. } => "42803",
            SqlError::AmbiguousColumn(_) => "42702",
            SqlError::CardinalityViolation => "21000",
            SqlError::UndefinedSavepoint(_) => "3B001",
            SqlError::NoActiveTransaction(_) => "25P01",
            SqlError::DuplicateIndex(_) => "42P07",
            SqlError::UniqueIndexViolated { .. } => "23505",
            SqlError::InvalidTextRepresentation { .. } => "22P02",
            SqlError::CannotCoerce { .. } => "42846",
            SqlError::InvalidForeignKey { .. } => "42830",
            SqlError::DuplicateAlias(_) => "42712",
            SqlError::DatetimeFieldOverflow { .. } => "22008",
            SqlError::UntranslatableCharacter { .. } => "22P05",
            SqlError::RowCount { .. } => return None,
            SqlError::PoolTimeout { .. } | SqlError::WrongType { .. } | SqlError::Conversion(_) => {
                return None
            }
        })
    }

    /// Whether retrying the whole transaction may succeed: serialization failures and
    /// deadlocks, as PostgreSQL's documentation advises.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SqlError::SerializationFailure { .. } | SqlError::DeadlockDetected
        )
    }

    /// Whether the connection that produced this error is unusable.
    pub fn is_connection_error(&self) -> bool {
        matches!(self, SqlError::Connection(_) | SqlError::AdminShutdown)
    }

    pub(crate) fn concurrent_update() -> Self {
        SqlError::SerializationFailure {
            detail: "concurrent update".into(),
        }
    }

    pub(crate) fn concurrent_delete() -> Self {
        SqlError::SerializationFailure {
            detail: "concurrent delete".into(),
        }
    }

    pub(crate) fn rw_dependencies() -> Self {
        SqlError::SerializationFailure {
            detail: "read/write dependencies among transactions".into(),
        }
    }
}
