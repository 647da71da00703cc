//! What every scenario's dependency wrappers share: a failed call as the service sees it
//! ([`DepError`]), a few Redis connections taken in turn ([`KvPool`]), PostgreSQL and Redis
//! started with a migration ([`Stores`]) and an API's database pool ([`bounded_pool`]). The
//! scenarios' own `deps` modules wrap the models' APIs in the calls their service makes;
//! these are the parts that do not depend on the service.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;

use sim_models::kv::{self, KvClient};
use sim_models::queue;
use sim_models::sql::{self, Pool, PoolConfig, PooledConn, SqlError};
use sim_net::Addr;
use sim_runtime::time::{self, Duration};

/// A failed dependency call, as the service sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepError {
    /// A unique violation: the row exists already (a slot booked, an email registered),
    /// a business answer rather than an outage.
    #[error("already exists")]
    Taken,
    #[error("database: {0}")]
    Db(String),
    #[error("redis: {0}")]
    Redis(String),
    #[error("kafka: {0}")]
    Kafka(String),
}

impl From<SqlError> for DepError {
    fn from(e: SqlError) -> Self {
        match e {
            SqlError::UniqueViolation { .. } => DepError::Taken,
            e => DepError::Db(e.to_string()),
        }
    }
}

impl From<kv::KvError> for DepError {
    fn from(e: kv::KvError) -> Self {
        DepError::Redis(e.to_string())
    }
}

impl From<queue::ProduceError> for DepError {
    fn from(e: queue::ProduceError) -> Self {
        DepError::Kafka(e.to_string())
    }
}

/// Connections to one Redis, used in turn. A kv client runs one request at a time, so a
/// service that pipelines (as a Node.js or Go API would) needs several, or one slow
/// command queues every other request behind it.
#[derive(Clone)]
pub struct KvPool {
    clients: Rc<Vec<KvClient>>,
    next: Rc<Cell<usize>>,
}

impl KvPool {
    /// A pool of `connections` clients, each made by `connect`.
    pub fn new(connections: usize, connect: impl FnMut(usize) -> KvClient) -> Self {
        assert!(connections > 0, "a pool needs a connection");
        KvPool {
            clients: Rc::new((0..connections).map(connect).collect()),
            next: Rc::new(Cell::new(0)),
        }
    }

    /// The next connection in turn.
    pub fn client(&self) -> &KvClient {
        let i = self.next.get();
        self.next.set((i + 1) % self.clients.len());
        &self.clients[i]
    }
}

/// PostgreSQL and Redis, started as the nodes `postgres` and `redis` in that order, and a
/// one-connection pool for migrations and the final reads of checkers.
#[derive(Clone)]
pub struct Stores {
    pub db: sql::SqlServer,
    pub redis: kv::KvServer,
    pub admin: Rc<Pool>,
}

impl Stores {
    /// Starts both; Redis with `persistence`.
    pub fn start(persistence: kv::Persistence) -> Self {
        Stores::start_with(persistence, sql::Config::default())
    }

    /// Starts both; PostgreSQL with `db` (its `max_connections`, say), Redis with
    /// `persistence`.
    pub fn start_with(persistence: kv::Persistence, db: sql::Config) -> Self {
        let db = sql::start("postgres", db);
        let redis = kv::start(
            "redis",
            kv::Config {
                persistence,
                ..kv::Config::default()
            },
        );
        let admin = Rc::new(Pool::new(
            db.addr(),
            PoolConfig {
                max_size: 1,
                ..PoolConfig::default()
            },
        ));
        Stores { db, redis, admin }
    }

    /// The database stops: open sessions end, connections are refused.
    pub fn db_down(&self) {
        self.db.refuse();
    }

    pub fn db_up(&self) {
        self.db.accept();
    }

    /// Redis dies; what survives is what its persistence mode kept.
    pub fn redis_down(&self) {
        self.redis.crash();
    }

    pub fn redis_up(&self) {
        self.redis.restart();
    }

    /// Runs `statements` in order on the admin connection (a migration).
    pub async fn migrate(&self, statements: &[&str]) -> Result<(), SqlError> {
        let mut c = self.admin.acquire().await?;
        execute_all(&mut c, statements).await
    }
}

/// Runs `statements` in order on `c`.
pub async fn execute_all(c: &mut PooledConn, statements: &[&str]) -> Result<(), SqlError> {
    for statement in statements {
        c.execute(*statement, &[]).await?;
    }
    Ok(())
}

/// Retries `attempt` every 10 ms until it succeeds: a setup step whose dependency is still
/// starting.
pub async fn until_ok<T, E, Fut: Future<Output = Result<T, E>>>(
    mut attempt: impl FnMut() -> Fut,
) -> T {
    loop {
        if let Ok(done) = attempt().await {
            return done;
        }
        time::sleep(Duration::from_millis(10)).await;
    }
}

/// An API instance's database pool of `max_size` connections, whose every wait (for a
/// connection, a connect, a reply) is bounded by `timeout`.
pub fn bounded_pool(addr: Addr, max_size: usize, timeout: Duration) -> Pool {
    let config = PoolConfig {
        max_size,
        acquire_timeout: timeout,
        validate_on_acquire: false,
        client: sql::ClientConfig {
            connect_timeout: timeout,
            query_timeout: Some(timeout),
        },
        ..PoolConfig::default()
    };
    Pool::new(addr, config)
}
