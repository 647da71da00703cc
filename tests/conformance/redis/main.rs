//! The kv model against a real Redis 7.

use sim_tests::real_server::{self, Server};

#[test]
fn the_real_server_is_redis_7() {
    let Some(url) = real_server::url(Server::Redis) else {
        return;
    };
    let client = redis::Client::open(url.as_str()).expect("SIM_REDIS_URL is a redis:// URL");
    let mut conn = client.get_connection().expect("connect to the real Redis");
    let info: String = redis::cmd("INFO").arg("server").query(&mut conn).unwrap();
    assert!(
        info.lines().any(|l| l.starts_with("redis_version:7.")),
        "the conformance suite is written against Redis 7: {info}"
    );
}
