//! Configuration of a simulated database server. `Default` is a healthy PostgreSQL 15
//! with its default settings and no injected faults.

use sim_runtime::time::Duration;
use sim_runtime::Probability;

use super::schema::TableSchema;
use super::stmt::IsolationLevel;

#[derive(Clone, Debug)]
pub struct Config {
    /// The port the server listens on.
    pub port: u16,
    /// Sessions beyond this are refused with 53300 (PostgreSQL's default is 100).
    pub max_connections: usize,
    /// `synchronous_commit = on` (the default): COMMIT returns once its WAL is durable, so a
    /// crash keeps every acknowledged commit. With `false`, commits are flushed by the WAL
    /// writer every `wal_writer_delay`, and a crash loses the commits acknowledged since
    /// the last flush: at most `wal_writer_delay` worth of them.
    pub synchronous_commit: bool,
    pub wal_writer_delay: Duration,
    /// How long a lock wait lasts before the waiter checks for a deadlock (1s).
    pub deadlock_timeout: Duration,
    /// Session defaults for `statement_timeout` and `lock_timeout` (`None` is 0: off).
    pub statement_timeout: Option<Duration>,
    pub lock_timeout: Option<Duration>,
    /// `default_transaction_isolation`.
    pub default_isolation: IsolationLevel,
    /// Virtual time every statement takes on the server (0: instantaneous).
    pub statement_latency: Duration,
    /// Injected slow queries: each data statement, with this probability, takes
    /// `slow_query_duration` more, holding its locks and its connection.
    pub slow_query_probability: Probability,
    pub slow_query_duration: Duration,
    /// Tables created when the database is first started.
    pub tables: Vec<TableSchema>,
    /// Run the vacuum of old row versions every this many commits.
    pub vacuum_every_commits: u64,
    /// Test-only fault, off by default, for checkers to prove they catch a broken
    /// REPEATABLE READ: its snapshot is taken too late, afresh at every statement (as
    /// READ COMMITTED does), so a transaction sees commits made after it began reading
    /// (read skew, lost updates). Not a PostgreSQL setting.
    #[doc(hidden)]
    pub test_fault_late_snapshot: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 5432,
            max_connections: 100,
            synchronous_commit: true,
            wal_writer_delay: Duration::from_millis(200),
            deadlock_timeout: Duration::from_secs(1),
            statement_timeout: None,
            lock_timeout: None,
            default_isolation: IsolationLevel::ReadCommitted,
            statement_latency: Duration::ZERO,
            slow_query_probability: Probability::NEVER,
            slow_query_duration: Duration::from_secs(5),
            tables: Vec::new(),
            vacuum_every_commits: 64,
            test_fault_late_snapshot: false,
        }
    }
}

impl Config {
    /// Adds a table to create at first start.
    pub fn table(mut self, schema: TableSchema) -> Self {
        self.tables.push(schema);
        self
    }
}
