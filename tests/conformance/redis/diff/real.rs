//! The real side: one connection to the real Redis, FLUSHALL before each sequence, replies
//! turned into the model's [`Reply`] so that both sides compare as values.

use redis::{ConnectionLike, Value};
use sim_models::kv::Reply;

/// The real server, over one connection at a time.
pub struct RealRedis {
    client: redis::Client,
}

/// Unix time in milliseconds, from the machine's clock: the real server's clock, which the
/// model's clock is set to for the sequence.
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
// Why: the real Redis expires keys on the wall clock, so the model's Unix clock must
// start where the real one is; this runs outside any simulation.
pub fn unix_time_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(since.as_millis()).expect("a Unix time in ms fits in i64")
}

impl RealRedis {
    pub fn open(url: &str) -> Self {
        RealRedis {
            client: redis::Client::open(url).expect("SIM_REDIS_URL is a redis:// URL"),
        }
    }

    /// Runs `argvs` on a fresh connection (no MULTI or WATCH left over) after FLUSHALL and
    /// SCRIPT FLUSH, and returns every reply.
    pub fn run(&mut self, argvs: &[Vec<String>]) -> Vec<Reply> {
        let mut conn = self
            .client
            .get_connection()
            .expect("connect to the real Redis");
        for reset in [&["FLUSHALL"][..], &["SCRIPT", "FLUSH"]] {
            let r = call(&mut conn, reset);
            assert_eq!(r, Reply::ok(), "{reset:?} on the real Redis");
        }
        argvs
            .iter()
            .map(|argv| {
                let first = call(&mut conn, argv);
                super::scan_to_end(argv, first, |next| call(&mut conn, next))
            })
            .collect()
    }
}

fn call<S: AsRef<str>>(conn: &mut redis::Connection, argv: &[S]) -> Reply {
    let mut cmd = redis::cmd(argv[0].as_ref());
    for a in &argv[1..] {
        cmd.arg(a.as_ref());
    }
    match conn.req_command(&cmd) {
        Ok(v) => reply(v),
        Err(e) => match (e.code(), e.detail()) {
            (Some(code), Some(detail)) => Reply::Error(format!("{code} {detail}")),
            (Some(code), None) => Reply::Error(code.to_string()),
            _ => panic!("the real Redis failed (not an error reply): {e}"),
        },
    }
}

/// A RESP2 value as the model's reply type.
pub fn reply(v: Value) -> Reply {
    match v {
        Value::Nil => Reply::Nil,
        Value::Int(n) => Reply::Int(n),
        Value::BulkString(b) => Reply::Bulk(String::from_utf8_lossy(&b).into_owned()),
        Value::Array(items) | Value::Set(items) => {
            Reply::Array(items.into_iter().map(reply).collect())
        }
        Value::SimpleString(s) => Reply::Status(s),
        Value::Okay => Reply::ok(),
        Value::ServerError(e) => match e.details() {
            Some(d) => Reply::Error(format!("{} {d}", e.code())),
            None => Reply::Error(e.code().to_string()),
        },
        other => panic!("a RESP3-only value from a RESP2 connection: {other:?}"),
    }
}
