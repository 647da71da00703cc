//! Fixtures of the `sql_*` integration tests, for `#[sim_runtime::test]` bodies: a
//! schema for the seed systems' tables, a started server with seeded rows and a pool,
//! and a barrier to line tasks up.

#![allow(dead_code)]

use std::cell::Cell;
use std::rc::Rc;

use sim_models::sql::{self, ColumnType, Config, Insert, Pool, PoolConfig, SqlServer, TableSchema};
use sim_models::sql_row;
use sim_runtime::time::{self, Duration};

pub fn config() -> Config {
    Config::default()
        .table(
            TableSchema::new("accounts")
                .column("id", ColumnType::Int)
                .column("balance", ColumnType::Int)
                .primary_key(&["id"]),
        )
        .table(
            TableSchema::new("doctors")
                .column("name", ColumnType::Text)
                .column("on_call", ColumnType::Bool)
                .primary_key(&["name"]),
        )
        // Appointments with the constraint that prevents double booking.
        .table(
            TableSchema::new("appointments")
                .column("id", ColumnType::Int)
                .column("doctor", ColumnType::Text)
                .column("slot", ColumnType::Int)
                .column("patient", ColumnType::Text)
                .primary_key(&["id"])
                .unique(&["doctor", "slot"]),
        )
        // The same without it: only the application's SELECT-then-INSERT protects it.
        .table(
            TableSchema::new("bookings")
                .column("id", ColumnType::Int)
                .column("doctor", ColumnType::Text)
                .column("slot", ColumnType::Int)
                .column("patient", ColumnType::Text)
                .primary_key(&["id"]),
        )
}

/// Starts the server "db" with two accounts of 100 and two doctors on call.
pub async fn start(config: Config) -> SqlServer {
    let server = sql::start("db", config);
    server.ready().await;
    let pool = Pool::new(server.addr(), PoolConfig::default());
    let mut c = pool.acquire().await.expect("connect");
    for id in [1, 2] {
        c.run(Insert::into(
            "accounts",
            sql_row! {"id" => id, "balance" => 100},
        ))
        .await
        .expect("seed account");
    }
    for name in ["alice", "bob"] {
        c.run(Insert::into(
            "doctors",
            sql_row! {"name" => name, "on_call" => true},
        ))
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

/// The usual start of a test: the server "db" with [`config`]'s tables, seeded as
/// [`start`] does, and a default pool to it.
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
