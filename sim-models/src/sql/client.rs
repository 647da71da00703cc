//! One client connection (a server session), with typed helpers for the common
//! statements and a [`Transaction`] guard.
//!
//! ```no_run
//! # async fn demo(addr: sim_net::Addr) -> Result<(), sim_models::sql::SqlError> {
//! use sim_models::sql::{col, Client, ClientConfig, IsolationLevel, Update};
//! let mut c = Client::connect(addr, &ClientConfig::default()).await?;
//! let mut tx = c.begin(IsolationLevel::RepeatableRead).await?;
//! let acct = tx.get_for_update("accounts", 1).await?.expect("exists");
//! let balance: i64 = acct.get("balance")?;
//! tx.update(Update::table("accounts").set("balance", balance - 10).key(1)).await?;
//! tx.commit().await?;
//! # Ok(()) }
//! ```

use sim_net::{Addr, Conn, NetError};
use sim_runtime::time::{self, Duration};

use super::engine::SessionId;
use super::error::{ConnectionFailure, SqlError};
use super::protocol::{ClientMsg, ServerMsg};
use super::row::Row;
use super::stmt::{
    CommandTag, Count, Delete, Insert, IsolationLevel, Select, Statement, StmtResult, Update,
};
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

    /// Sends one statement and waits for its result.
    pub async fn execute(&mut self, stmt: impl Into<Statement>) -> Result<StmtResult, SqlError> {
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
        self.execute(Statement::Begin(isolation)).await?;
        Ok(Transaction {
            client: self,
            done: false,
        })
    }

    pub async fn query(&mut self, select: Select) -> Result<Vec<Row>, SqlError> {
        Ok(self.execute(select).await?.rows)
    }

    /// The row with this primary key.
    pub async fn get(
        &mut self,
        table: &str,
        key: impl Into<Value>,
    ) -> Result<Option<Row>, SqlError> {
        Ok(self
            .execute(Select::from(table).key(key))
            .await?
            .into_first())
    }

    /// `SELECT ... FOR UPDATE` by primary key.
    pub async fn get_for_update(
        &mut self,
        table: &str,
        key: impl Into<Value>,
    ) -> Result<Option<Row>, SqlError> {
        Ok(self
            .execute(Select::from(table).key(key).for_update())
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
            .execute(Select::from(table).key(key).for_share())
            .await?
            .into_first())
    }

    /// Inserts a row; returns it as stored (defaults filled).
    pub async fn insert(&mut self, table: &str, row: Row) -> Result<Row, SqlError> {
        let r = self.execute(Insert::into(table, row)).await?;
        Ok(r.into_first().unwrap_or_default())
    }

    /// Runs an INSERT (with its ON CONFLICT clause); the affected row, if any.
    pub async fn upsert(&mut self, insert: Insert) -> Result<Option<Row>, SqlError> {
        Ok(self.execute(insert).await?.into_first())
    }

    /// Runs an UPDATE; the number of rows updated.
    pub async fn update(&mut self, update: Update) -> Result<u64, SqlError> {
        Ok(self.execute(update).await?.affected)
    }

    /// Runs a DELETE; the number of rows deleted.
    pub async fn delete(&mut self, delete: Delete) -> Result<u64, SqlError> {
        Ok(self.execute(delete).await?.affected)
    }

    pub async fn count(&mut self, count: Count) -> Result<u64, SqlError> {
        Ok(self.execute(count).await?.affected)
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
        let r = self.client.execute(Statement::Commit).await?;
        if r.tag == CommandTag::Rollback {
            return Err(SqlError::InFailedTransaction);
        }
        Ok(())
    }

    pub async fn rollback(mut self) -> Result<(), SqlError> {
        self.done = true;
        self.client.execute(Statement::Rollback).await.map(|_| ())
    }

    pub async fn execute(&mut self, stmt: impl Into<Statement>) -> Result<StmtResult, SqlError> {
        self.client.execute(stmt).await
    }

    pub async fn query(&mut self, select: Select) -> Result<Vec<Row>, SqlError> {
        self.client.query(select).await
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
