//! The sql model against a real PostgreSQL 15.

use sim_tests::real_server::{self, Server};

#[test]
fn the_real_server_is_postgres_15() {
    let Some(url) = real_server::url(Server::Postgres) else {
        return;
    };
    let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let row = client.query_one("SHOW server_version_num", &[]).unwrap();
    let version: String = row.get(0);
    assert!(
        version.starts_with("15"),
        "the conformance suite is written against PostgreSQL 15: {version}"
    );
}
