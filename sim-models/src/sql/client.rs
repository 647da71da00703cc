//! One client connection (a server session), shaped like tokio-postgres's `Client`:
//! SQL text with `$n` parameters through [`Client::execute`], [`Client::query`],
//! [`Client::query_one`], [`Client::query_opt`] and [`Client::prepare`], and a
//! [`Transaction`] guard from [`Client::transaction`]. The statement builder stays for
//! those who prefer it ([`Client::run`] and the typed helpers `get`, `insert`, ...).
//!
//! ```no_run
//! # async fn demo(addr: sim_net::Addr) -> Result<(), sim_models::sql::SqlError> {
//! use sim_models::sql::{Client, ClientConfig, IsolationLevel};
//! let mut c = Client::connect(addr, &ClientConfig::default()).await?;
//! let mut tx = c.build_transaction().isolation_level(IsolationLevel::RepeatableRead).start().await?;
//! let acct = tx.query_one("SELECT balance FROM accounts WHERE id = $1 FOR UPDATE", &[&1_i64]).await?;
//! let balance: i64 = acct.get("balance")?;
//! tx.execute("UPDATE accounts SET balance = $1 WHERE id = $2", &[&(balance - 10), &1_i64]).await?;
//! tx.commit().await?;
//! # Ok(()) }
//! ```

use sim_net::{Addr, Conn, NetError};
use sim_runtime::time::{self, Duration};

use super::engine::SessionId;
use super::error::{ConnectionFailure, SqlError};
use super::params::ToSql;
use super::protocol::{ClientMsg, ServerMsg};
use super::row::Row;
use super::stmt::{
    CommandTag, Count, Delete, Insert, IsolationLevel, Select, Statement, StmtResult, Update,
};
use super::text::{self, Prepared};
use super::value::Value;

/// Client-side timeouts.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// For the TCP handshake and the server's greeting.
    pub connect_timeout: Duration,
    /// How long to wait for each reply before giving the connection up (a socket
    /// timeout). `None` waits for ever, as a client without one would.
    pub query_timeout: Option<Duration>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(5),
            query_timeout: None,
        }
    }
}

/// A network error as the client reports it: through sim-net's one mapping
/// (`ConnectionFailure::from`), never a match of its own.
fn net_error(e: NetError) -> SqlError {
    SqlError::Connection(ConnectionFailure::from(e))
}

/// A connection to a database server.
pub struct Client {
    conn: Conn<ClientMsg, ServerMsg>,
    session: SessionId,
    next_id: u64,
    query_timeout: Option<Duration>,
    broken: bool,
    /// Inside BEGIN ... COMMIT/ROLLBACK, as far as the replies tell.
    in_block: bool,
    /// A `Transaction` was dropped without COMMIT or ROLLBACK.
    needs_rollback: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session", &self.session)
            .field("broken", &self.broken)
            .field("in_block", &self.in_block)
            .finish()
    }
}

impl Client {
    /// Opens a session: 08001 if nothing listens, 53300 if the server is full.
    pub async fn connect(addr: Addr, config: &ClientConfig) -> Result<Client, SqlError> {
        let start = time::now();
        let mut conn = sim_net::connect::<ClientMsg, ServerMsg>(addr, config.connect_timeout)
            .await
            .map_err(net_error)?;
        let left = config
            .connect_timeout
            .saturating_sub(time::now().duration_since(start));
        let greeting = time::timeout(left, conn.recv())
            .await
            .map_err(|_| SqlError::Connection(ConnectionFailure::Timeout))?
            .map_err(net_error)?;
        match greeting {
            ServerMsg::Ready { session } => Ok(Client {
                conn,
                session,
                next_id: 0,
                query_timeout: config.query_timeout,
                broken: false,
                in_block: false,
                needs_rollback: false,
            }),
            ServerMsg::Rejected(e) | ServerMsg::Terminated(e) => Err(e),
            _ => Err(SqlError::Connection(ConnectionFailure::Reset)),
        }
    }

    /// The server session id (PostgreSQL's backend pid).
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// Whether the connection failed and must be thrown away.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Whether a transaction block is open (or a dropped one awaits its rollback).
    pub fn in_transaction(&self) -> bool {
        self.in_block || self.needs_rollback
    }

    async fn round_trip(&mut self, msg: ClientMsg, id: u64) -> Result<ServerMsg, SqlError> {
        if self.broken {
            return Err(SqlError::Connection(ConnectionFailure::Reset));
        }
        if let Err(e) = self.conn.send(msg) {
            self.broken = true;
            return Err(net_error(e));
        }
        loop {
            let got = match self.query_timeout {
                Some(d) => match time::timeout(d, self.conn.recv()).await {
                    Ok(r) => r,
                    Err(_) => {
                        // The reply may still come; the connection's state is unknown.
                        self.broken = true;
                        return Err(SqlError::Connection(ConnectionFailure::Timeout));
                    }
                },
                None => self.conn.recv().await,
            };
            match got {
                Err(e) => {
                    self.broken = true;
                    return Err(net_error(e));
                }
                Ok(ServerMsg::Terminated(e)) => {
                    self.broken = true;
                    return Err(e);
                }
                Ok(m @ ServerMsg::Reply { id: got, .. }) | Ok(m @ ServerMsg::Pong { id: got })
                    if got == id =>
                {
                    return Ok(m)
                }
                // A late answer to a request that was given up on.
                Ok(_) => continue,
            }
        }
    }

    /// The statement to send for `statement`: inside a transaction block, text that does
    /// not plan is still sent (as [`Statement::Invalid`]) so that the server fails the
    /// block, as PostgreSQL, which plans on the server, does. A parameter that does not
    /// convert is the client's own error (tokio-postgres's too) and never reaches it.
    pub fn to_sendable<T: ToStatement + ?Sized>(
        &self,
        statement: &T,
        params: &[&dyn ToSql],
    ) -> Result<Statement, SqlError> {
        match statement.to_statement(params) {
            Ok(stmt) => Ok(stmt),
            Err(e @ SqlError::Conversion(_)) => Err(e),
            Err(e) if self.in_block => Ok(Statement::Invalid(Box::new(e))),
            Err(e) => Err(e),
        }
    }

    /// Runs a statement; the number of rows it inserted, updated, deleted or returned.
    pub async fn execute<T: ToStatement + ?Sized>(
        &mut self,
        statement: &T,
        params: &[&dyn ToSql],
    ) -> Result<u64, SqlError> {
        let stmt = self.to_sendable(statement, params)?;
        Ok(self.run(stmt).await?.affected)
    }

    /// Runs a statement; the rows it returned.
    pub async fn query<T: ToStatement + ?Sized>(
        &mut self,
        statement: &T,
        params: &[&dyn ToSql],
    ) -> Result<Vec<Row>, SqlError> {
        let stmt = self.to_sendable(statement, params)?;
        Ok(self.run(stmt).await?.rows)
    }

    /// Runs a statement that returns exactly one row.
    pub async fn query_one<T: ToStatement + ?Sized>(
        &mut self,
        statement: &T,
        params: &[&dyn ToSql],
    ) -> Result<Row, SqlError> {
        let rows = self.query(statement, params).await?;
        match <[Row; 1]>::try_from(rows) {
            Ok([row]) => Ok(row),
            Err(rows) => Err(SqlError::RowCount {
                expected: "exactly one",
                got: rows.len(),
            }),
        }
    }

    /// Runs a statement that returns at most one row.
    pub async fn query_opt<T: ToStatement + ?Sized>(
        &mut self,
        statement: &T,
        params: &[&dyn ToSql],
    ) -> Result<Option<Row>, SqlError> {
        let mut rows = self.query(statement, params).await?;
        match rows.len() {
            0 | 1 => Ok(rows.pop()),
            got => Err(SqlError::RowCount {
                expected: "at most one",
                got,
            }),
        }
    }

    /// Plans SQL text once, to run many times with different parameters. (Texts are
    /// planned once per simulation anyway; this is for code written against a real
    /// driver, and to see a statement's errors before running it.)
    pub async fn prepare(&mut self, sql: &str) -> Result<Prepared, SqlError> {
        text::prepare(sql)
    }

    /// `BEGIN` at the session's isolation level; the guard rolls back when dropped
    /// without `commit`.
    pub async fn transaction(&mut self) -> Result<Transaction<'_>, SqlError> {
        self.start_transaction(None).await
    }

    /// A transaction with options: `build_transaction().isolation_level(..).start()`.
    pub fn build_transaction(&mut self) -> TransactionBuilder<'_> {
        TransactionBuilder {
            client: self,
            isolation: None,
        }
    }

    /// Sends one built statement and waits for its whole result.
    pub async fn run(&mut self, stmt: impl Into<Statement>) -> Result<StmtResult, SqlError> {
        if self.needs_rollback {
            self.needs_rollback = false;
            self.send_statement(Statement::Rollback).await?;
        }
        self.send_statement(stmt.into()).await
    }

    async fn send_statement(&mut self, stmt: Statement) -> Result<StmtResult, SqlError> {
        self.next_id += 1;
        let id = self.next_id;
        // COMMIT and ROLLBACK end the block whatever they return (a failed COMMIT of a
        // serializable transaction has rolled it back).
        let ends = matches!(stmt, Statement::Commit | Statement::Rollback);
        let stmt = Box::new(stmt);
        match self.round_trip(ClientMsg::Query { id, stmt }, id).await? {
            ServerMsg::Reply { result, .. } => {
                if matches!(&result, Ok(r) if r.tag == CommandTag::Begin) {
                    self.in_block = true;
                }
                if ends {
                    self.in_block = false;
                }
                result
            }
            _ => Err(SqlError::Connection(ConnectionFailure::Reset)),
        }
    }

    /// A validation round trip.
    pub async fn ping(&mut self) -> Result<(), SqlError> {
        self.next_id += 1;
        let id = self.next_id;
        self.round_trip(ClientMsg::Ping { id }, id)
            .await
            .map(|_| ())
    }

    /// Ends the session politely.
    pub fn close(self) {
        let _ = self.conn.send(ClientMsg::Terminate);
    }

    /// `BEGIN ISOLATION LEVEL ...`; the guard rolls back when dropped without `commit`.
    pub async fn begin(&mut self, isolation: IsolationLevel) -> Result<Transaction<'_>, SqlError> {
        self.start_transaction(Some(isolation)).await
    }

    async fn start_transaction(
        &mut self,
        isolation: Option<IsolationLevel>,
    ) -> Result<Transaction<'_>, SqlError> {
        self.run(Statement::Begin(isolation)).await?;
        Ok(Transaction {
            client: self,
            done: false,
        })
    }

    /// Runs a built SELECT; its rows.
    pub async fn select(&mut self, select: Select) -> Result<Vec<Row>, SqlError> {
        Ok(self.run(select).await?.rows)
    }

    /// The row with this primary key.
    pub async fn get(
        &mut self,
        table: &str,
        key: impl Into<Value>,
    ) -> Result<Option<Row>, SqlError> {
        Ok(self.run(Select::from(table).key(key)).await?.into_first())
    }

    /// `SELECT ... FOR UPDATE` by primary key.
    pub async fn get_for_update(
        &mut self,
        table: &str,
        key: impl Into<Value>,
    ) -> Result<Option<Row>, SqlError> {
        Ok(self
            .run(Select::from(table).key(key).for_update())
            .await?
            .into_first())
    }

    /// `SELECT ... FOR SHARE` by primary key.
    pub async fn get_for_share(
        &mut self,
        table: &str,
        key: impl Into<Value>,
    ) -> Result<Option<Row>, SqlError> {
        Ok(self
            .run(Select::from(table).key(key).for_share())
            .await?
            .into_first())
    }

    /// Inserts a row; returns it as stored (defaults filled).
    pub async fn insert(&mut self, table: &str, row: Row) -> Result<Row, SqlError> {
        let r = self.run(Insert::into(table, row)).await?;
        Ok(r.into_first().unwrap_or_default())
    }

    /// Runs an INSERT (with its ON CONFLICT clause); the affected row, if any.
    pub async fn upsert(&mut self, insert: Insert) -> Result<Option<Row>, SqlError> {
        Ok(self.run(insert).await?.into_first())
    }

    /// Runs an UPDATE; the number of rows updated.
    pub async fn update(&mut self, update: Update) -> Result<u64, SqlError> {
        Ok(self.run(update).await?.affected)
    }

    /// Runs a DELETE; the number of rows deleted.
    pub async fn delete(&mut self, delete: Delete) -> Result<u64, SqlError> {
        Ok(self.run(delete).await?.affected)
    }

    pub async fn count(&mut self, count: Count) -> Result<u64, SqlError> {
        Ok(self.run(count).await?.affected)
    }
}

/// An open transaction block. `commit` or `rollback` it; dropping it rolls it back (the
/// ROLLBACK goes out before the connection's next statement, or the pool discards the
/// connection, which makes the server roll back).
pub struct Transaction<'a> {
    client: &'a mut Client,
    done: bool,
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("session", &self.client.session)
            .finish()
    }
}

impl Transaction<'_> {
    /// COMMIT. A transaction that had failed is rolled back by COMMIT, as in PostgreSQL;
    /// here that is the error 25P02 rather than a silent ROLLBACK tag.
    pub async fn commit(mut self) -> Result<(), SqlError> {
        self.done = true;
        let r = self.client.run(Statement::Commit).await?;
        if r.tag == CommandTag::Rollback {
            return Err(SqlError::InFailedTransaction);
        }
        Ok(())
    }

    pub async fn rollback(mut self) -> Result<(), SqlError> {
        self.done = true;
        self.client.run(Statement::Rollback).await.map(|_| ())
    }

    pub async fn execute<T: ToStatement + ?Sized>(
        &mut self,
        statement: &T,
        params: &[&dyn ToSql],
    ) -> Result<u64, SqlError> {
        self.client.execute(statement, params).await
    }

    pub async fn query<T: ToStatement + ?Sized>(
        &mut self,
        statement: &T,
        params: &[&dyn ToSql],
    ) -> Result<Vec<Row>, SqlError> {
        self.client.query(statement, params).await
    }

    pub async fn query_one<T: ToStatement + ?Sized>(
        &mut self,
        statement: &T,
        params: &[&dyn ToSql],
    ) -> Result<Row, SqlError> {
        self.client.query_one(statement, params).await
    }

    pub async fn query_opt<T: ToStatement + ?Sized>(
        &mut self,
        statement: &T,
        params: &[&dyn ToSql],
    ) -> Result<Option<Row>, SqlError> {
        self.client.query_opt(statement, params).await
    }

    pub async fn prepare(&mut self, sql: &str) -> Result<Prepared, SqlError> {
        self.client.prepare(sql).await
    }

    pub async fn run(&mut self, stmt: impl Into<Statement>) -> Result<StmtResult, SqlError> {
        self.client.run(stmt).await
    }

    pub async fn select(&mut self, select: Select) -> Result<Vec<Row>, SqlError> {
        self.client.select(select).await
    }

    pub async fn get(
        &mut self,
        table: &str,
        key: impl Into<Value>,
    ) -> Result<Option<Row>, SqlError> {
        self.client.get(table, key).await
    }

    pub async fn get_for_update(
        &mut self,
        table: &str,
        key: impl Into<Value>,
    ) -> Result<Option<Row>, SqlError> {
        self.client.get_for_update(table, key).await
    }

    pub async fn get_for_share(
        &mut self,
        table: &str,
        key: impl Into<Value>,
    ) -> Result<Option<Row>, SqlError> {
        self.client.get_for_share(table, key).await
    }

    pub async fn insert(&mut self, table: &str, row: Row) -> Result<Row, SqlError> {
        self.client.insert(table, row).await
    }

    pub async fn upsert(&mut self, insert: Insert) -> Result<Option<Row>, SqlError> {
        self.client.upsert(insert).await
    }

    pub async fn update(&mut self, update: Update) -> Result<u64, SqlError> {
        self.client.update(update).await
    }

    pub async fn delete(&mut self, delete: Delete) -> Result<u64, SqlError> {
        self.client.delete(delete).await
    }

    pub async fn count(&mut self, count: Count) -> Result<u64, SqlError> {
        self.client.count(count).await
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.client.needs_rollback = true;
        }
    }
}

/// `Client::build_transaction`: a transaction with its options.
pub struct TransactionBuilder<'a> {
    client: &'a mut Client,
    /// `None`: the session's default.
    isolation: Option<IsolationLevel>,
}

impl std::fmt::Debug for TransactionBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionBuilder")
            .field("isolation", &self.isolation)
            .finish()
    }
}

impl<'a> TransactionBuilder<'a> {
    pub fn isolation_level(mut self, isolation: IsolationLevel) -> Self {
        self.isolation = Some(isolation);
        self
    }

    /// `BEGIN [ISOLATION LEVEL ...]`.
    pub async fn start(self) -> Result<Transaction<'a>, SqlError> {
        self.client.start_transaction(self.isolation).await
    }
}

/// What `execute`, `query` and the like take: SQL text, a [`Prepared`] statement, or a
/// built [`Statement`] (which takes no parameters).
pub trait ToStatement {
    fn to_statement(&self, params: &[&dyn ToSql]) -> Result<Statement, SqlError>;
}

impl ToStatement for str {
    fn to_statement(&self, params: &[&dyn ToSql]) -> Result<Statement, SqlError> {
        text::prepare(self)?.bind(params)
    }
}

impl ToStatement for String {
    fn to_statement(&self, params: &[&dyn ToSql]) -> Result<Statement, SqlError> {
        self.as_str().to_statement(params)
    }
}

impl ToStatement for Prepared {
    fn to_statement(&self, params: &[&dyn ToSql]) -> Result<Statement, SqlError> {
        self.bind(params)
    }
}

impl ToStatement for Statement {
    fn to_statement(&self, params: &[&dyn ToSql]) -> Result<Statement, SqlError> {
        if !params.is_empty() {
            return Err(SqlError::ParameterCount {
                expected: 0,
                given: params.len(),
            });
        }
        Ok(self.clone())
    }
}
