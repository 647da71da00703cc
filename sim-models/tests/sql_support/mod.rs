//! Fixtures of the `sql_*` integration tests, for `#[sim_runtime::test]` bodies: the seed
//! systems' tables, created with SQL text as a service's migration would, a started server
//! with seeded rows and a pool, and a barrier to line tasks up.

#![allow(dead_code)]

use std::cell::Cell;
use std::rc::Rc;

use sim_models::sql::{self, Config, Pool, PoolConfig, SqlServer};
use sim_runtime::time::{self, Duration};

/// The tables every scenario starts with.
pub const SCHEMA: [&str; 4] = [
    "CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint NOT NULL)",
    "CREATE TABLE doctors (name text PRIMARY KEY, on_call boolean NOT NULL)",
    // Appointments with the constraint that prevents double booking.
    "CREATE TABLE appointments (
        id bigint PRIMARY KEY,
        doctor text NOT NULL,
        slot bigint NOT NULL,
        patient text NOT NULL,
        UNIQUE (doctor, slot)
    )",
    // The same without it: only the application's SELECT-then-INSERT protects it.
    "CREATE TABLE bookings (
        id bigint PRIMARY KEY,
        doctor text NOT NULL,
        slot bigint NOT NULL,
        patient text NOT NULL
    )",
];

/// The server settings of the scenarios (PostgreSQL's defaults); [`start`] creates the
/// tables of [`SCHEMA`].
pub fn config() -> Config {
    Config::default()
}

/// Starts the server "db" with `config`, creates [`SCHEMA`]'s tables and seeds two
/// accounts of 100 and two doctors on call.
pub async fn start(config: Config) -> SqlServer {
    let server = sql::start("db", config);
    server.ready().await;
    let pool = Pool::new(server.addr(), PoolConfig::default());
    let mut c = pool.acquire().await.expect("connect");
    for ddl in SCHEMA {
        c.execute(ddl, &[]).await.expect(ddl);
    }
    for id in [1_i64, 2] {
        c.execute(
            "INSERT INTO accounts (id, balance) VALUES ($1, $2)",
            &[&id, &100_i64],
        )
        .await
        .expect("seed account");
    }
    for name in ["alice", "bob"] {
        c.execute(
            "INSERT INTO doctors (name, on_call) VALUES ($1, $2)",
            &[&name, &true],
        )
        .await
        .expect("seed doctor");
    }
    // Close the seeding session, so that scenarios start with no session open.
    c.detach();
    while server.sessions() > 0 {
        time::sleep(Duration::from_millis(1)).await;
    }
    server
}

pub fn pool(server: &SqlServer) -> Pool {
    Pool::new(server.addr(), PoolConfig::default())
}

/// The usual start of a test: the server "db" with [`config`], its tables created and
/// seeded as [`start`] does, and a default pool to it.
pub async fn db() -> (SqlServer, Pool) {
    let server = start(config()).await;
    let pool = pool(&server);
    (server, pool)
}

/// Lets `n` tasks go on only once all of them have arrived.
#[derive(Clone)]
pub struct Barrier {
    n: usize,
    arrived: Rc<Cell<usize>>,
}

impl Barrier {
    pub fn new(n: usize) -> Self {
        Barrier {
            n,
            arrived: Rc::new(Cell::new(0)),
        }
    }

    pub async fn wait(&self) {
        self.arrived.set(self.arrived.get() + 1);
        while self.arrived.get() < self.n {
            time::sleep(Duration::from_millis(1)).await;
        }
    }
}
