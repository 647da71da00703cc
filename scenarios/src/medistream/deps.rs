//! Medistream's dependencies as the service sees them: PostgreSQL (patients and
//! appointments), the per-client rate limit in Redis, and the SMS provider that delivers
//! confirmations. With [`super::jobs`], the only code that touches the models' APIs.
//!
//! Every database call is a span of the request it serves (`medistream.downstream`, as a
//! tracing library would record it), which is how the document's "no DB or queue
//! interaction" for rejected tokens is observed.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use sim_models::kv::{self, KvClient};
use sim_models::sql::{Pool, SqlError};
use sim_net::Addr;
use sim_runtime::time::{self, Duration, Instant};
use sim_runtime::trace::{self, TraceEvent};
use sim_runtime::{node, NodeId, Probability};

use super::Params;
pub use crate::deps::DepError;
use crate::deps::{bounded_pool, until_ok, KvPool, Stores};

/// One call to a dependency made on behalf of request `request`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TraceEvent)]
#[trace_event(name = "medistream.downstream")]
pub struct Downstream {
    pub request: u64,
    pub system: &'static str,
    pub op: &'static str,
}

fn span(request: u64, system: &'static str, op: &'static str) {
    trace::emit(&Downstream {
        request,
        system,
        op,
    });
}

const SCHEMA: [&str; 2] = [
    "CREATE TABLE users (
        id serial PRIMARY KEY,
        email text NOT NULL UNIQUE,
        password_hash text NOT NULL,
        phone text NOT NULL
    )",
    "CREATE TABLE appointments (
        id serial PRIMARY KEY,
        user_id bigint NOT NULL REFERENCES users (id),
        doctor bigint NOT NULL,
        starts_at bigint NOT NULL
    )",
];

/// The running dependencies and their fault handles.
#[derive(Clone)]
pub struct Deps {
    stores: Stores,
    sms: Sms,
}

/// Starts PostgreSQL with the schema, Redis with an AOF fsynced on every write (the job
/// queue must not lose an acknowledged enqueue in a crash), and the SMS provider.
pub async fn start(params: &Params) -> Deps {
    let stores = Stores::start(kv::Persistence::AofAlways);
    let deps = Deps {
        stores,
        sms: Sms::start(params.transient_failure),
    };
    until_ok(|| deps.stores.migrate(&SCHEMA)).await;
    deps
}

impl Deps {
    pub fn db_node(&self) -> NodeId {
        self.stores.db.node()
    }

    pub fn sms(&self) -> &Sms {
        &self.sms
    }

    /// A Redis client with `timeout` on each command.
    pub fn redis(&self, timeout: Duration) -> KvClient {
        KvClient::new(&self.stores.redis, kv::ClientConfig { timeout })
    }

    /// The database as an API instance uses it: a small pool whose every wait (for a
    /// connection, for a reply) is bounded by `timeout`.
    pub fn db(&self, timeout: Duration) -> Db {
        Db {
            pool: bounded_pool(self.stores.db.addr(), 5, timeout),
        }
    }

    /// The per-client rate limit, `limit` requests per `window`, over a pool of
    /// connections: every request passes it, and one connection runs one command at a
    /// time (a single one queued bookings behind a signup flood's counters for a second).
    pub fn rate_limit(&self, timeout: Duration, limit: u32, window: Duration) -> RateLimit {
        RateLimit {
            connections: KvPool::new(RATE_LIMIT_CONNECTIONS, |_| self.redis(timeout)),
            limit,
            window,
        }
    }

    /// PostgreSQL and Redis, for their faults.
    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    /// How many appointments the database holds after the run.
    pub async fn appointments_stored(&self) -> Result<i64, SqlError> {
        let mut c = self.stores.admin.acquire().await?;
        c.query_one("SELECT count(*) AS n FROM appointments", &[])
            .await?
            .get("n")
    }
}

/// A patient's stored credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub user: i64,
    pub password_hash: String,
}

/// The database as the API sees it; every call names the request it serves.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
}

impl Db {
    /// Registers a patient; `Taken` when the email is registered already.
    pub async fn insert_user(
        &self,
        request: u64,
        email: &str,
        password_hash: &str,
        phone: &str,
    ) -> Result<i64, DepError> {
        span(request, "postgres", "insert_user");
        let mut c = self.pool.acquire().await?;
        let row = c
            .query_one(
                "INSERT INTO users (email, password_hash, phone) VALUES ($1, $2, $3) RETURNING id",
                &[&email, &password_hash, &phone],
            )
            .await?;
        Ok(row.get("id")?)
    }

    pub async fn credentials(
        &self,
        request: u64,
        email: &str,
    ) -> Result<Option<Credentials>, DepError> {
        span(request, "postgres", "select_credentials");
        let mut c = self.pool.acquire().await?;
        let row = c
            .query_opt(
                "SELECT id, password_hash FROM users WHERE email = $1",
                &[&email],
            )
            .await?;
        Ok(match row {
            Some(r) => Some(Credentials {
                user: r.get("id")?,
                password_hash: r.get("password_hash")?,
            }),
            None => None,
        })
    }

    /// The patient's phone number, for the confirmation.
    pub async fn phone(&self, request: u64, user: i64) -> Result<Option<String>, DepError> {
        span(request, "postgres", "select_user");
        let mut c = self.pool.acquire().await?;
        let row = c
            .query_opt("SELECT phone FROM users WHERE id = $1", &[&user])
            .await?;
        Ok(match row {
            Some(r) => Some(r.get("phone")?),
            None => None,
        })
    }

    pub async fn insert_appointment(
        &self,
        request: u64,
        user: i64,
        doctor: i64,
        starts_at: i64,
    ) -> Result<i64, DepError> {
        span(request, "postgres", "insert_appointment");
        let mut c = self.pool.acquire().await?;
        let row = c
            .query_one(
                "INSERT INTO appointments (user_id, doctor, starts_at) VALUES ($1, $2, $3) RETURNING id",
                &[&user, &doctor, &starts_at],
            )
            .await?;
        Ok(row.get("id")?)
    }

    /// The patient's own appointment `id`: its doctor and start.
    pub async fn appointment(
        &self,
        request: u64,
        user: i64,
        id: i64,
    ) -> Result<Option<(i64, i64)>, DepError> {
        span(request, "postgres", "select_appointment");
        let mut c = self.pool.acquire().await?;
        let row = c
            .query_opt(
                "SELECT doctor, starts_at FROM appointments WHERE id = $1 AND user_id = $2",
                &[&id, &user],
            )
            .await?;
        Ok(match row {
            Some(r) => Some((r.get("doctor")?, r.get("starts_at")?)),
            None => None,
        })
    }
}

/// Connections of an API instance's rate limiter.
const RATE_LIMIT_CONNECTIONS: usize = 8;

/// A fixed-window counter per client in Redis (INCR, and an expiry on the window's first
/// request), the usual Redis rate limiter.
#[derive(Clone)]
pub struct RateLimit {
    connections: KvPool,
    limit: u32,
    window: Duration,
}

impl RateLimit {
    /// Which window `at` falls in.
    pub fn window_of(window: Duration, at: Instant) -> u64 {
        (at.elapsed_since_start().as_nanos() / window.as_nanos().max(1)) as u64
    }

    /// Counts a request of `client` received at `at`; whether it is within the limit.
    pub async fn allow(&self, client: &str, at: Instant) -> Result<bool, DepError> {
        let key = format!("ratelimit:{client}:{}", Self::window_of(self.window, at));
        let replies = self
            .connections
            .client()
            .multi()
            .incr(&key)
            .expire(&key, self.window * 2)
            .exec()
            .await?;
        let count = match replies.as_deref() {
            Some([kv::Reply::Int(n), ..]) => *n,
            _ => {
                return Err(DepError::Redis(
                    "unexpected reply to the rate counter".into(),
                ))
            }
        };
        Ok(count <= i64::from(self.limit))
    }
}

/// The RPC port of the SMS provider.
pub const SMS_PORT: u16 = 9000;

/// A confirmation to send, with the idempotency key the provider deduplicates on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsRequest {
    pub idempotency_key: String,
    pub to: String,
    pub text: String,
}

/// The provider's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SmsResponse {
    /// Delivered now.
    Sent,
    /// Delivered before under this key: not sent again.
    Duplicate,
    /// 400: the number can never receive messages.
    InvalidNumber,
    /// 503: try again later.
    Unavailable,
}

/// Numbers under this prefix are unassigned: the provider refuses them for ever.
pub const INVALID_PREFIX: &str = "+99900";

/// What the provider saw: every call per key, and the deliveries. Kept outside the
/// provider's node, as its own records are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsRecords {
    pub calls: BTreeMap<String, u32>,
    pub deliveries: BTreeMap<String, u32>,
}

/// The SMS provider: a node answering after a realistic delay, failing transiently now
/// and then and deduplicating on the idempotency key, as commercial providers do.
#[derive(Clone)]
pub struct Sms {
    node: NodeId,
    records: Rc<RefCell<SmsRecords>>,
}

impl Sms {
    fn start(transient_failure: Probability) -> Sms {
        let records = Rc::new(RefCell::new(SmsRecords::default()));
        let r = Rc::clone(&records);
        let node = node::node("sms").build(move || {
            let records = Rc::clone(&r);
            async move {
                let rng = Rc::new(RefCell::new(sim_runtime::rng("sms")));
                let server = sim_net::serve(SMS_PORT, move |req: SmsRequest| {
                    let (records, rng) = (Rc::clone(&records), Rc::clone(&rng));
                    async move {
                        let (delay, fails) = {
                            let mut rng = rng.borrow_mut();
                            (rng.range_inclusive(50, 250), rng.chance(transient_failure))
                        };
                        time::sleep(Duration::from_millis(delay)).await;
                        let mut r = records.borrow_mut();
                        *r.calls.entry(req.idempotency_key.clone()).or_default() += 1;
                        if fails {
                            return SmsResponse::Unavailable;
                        }
                        if req.to.starts_with(INVALID_PREFIX) {
                            return SmsResponse::InvalidNumber;
                        }
                        let sent = r.deliveries.entry(req.idempotency_key).or_default();
                        if *sent > 0 {
                            return SmsResponse::Duplicate;
                        }
                        *sent += 1;
                        SmsResponse::Sent
                    }
                });
                if let Ok(h) = server {
                    let _ = h.await;
                }
            }
        });
        Sms { node, records }
    }

    pub fn addr(&self) -> Addr {
        Addr::new(self.node, SMS_PORT)
    }

    pub fn records(&self) -> SmsRecords {
        self.records.borrow().clone()
    }
}

/// Sends one SMS through the provider, waiting at most `timeout`.
pub async fn send_sms(
    provider: Addr,
    request: SmsRequest,
    timeout: Duration,
) -> Result<SmsResponse, sim_net::RpcError> {
    sim_net::call::<SmsRequest, SmsResponse>(provider, request, timeout).await
}
