//! Interdomestik's dependencies as the service sees them: PostgreSQL (agents, plans,
//! accounts, subscriptions, the agent-client links and the email outbox) behind the
//! document's connection pool, the rate limiter's script in Redis, and the external email
//! service. The only code that touches the models' APIs.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use sim_models::kv::{self, KvClient, Reply, Script, ScriptContext};
use sim_models::sql::{self, Pool, PoolConfig, PooledConn, SqlError};
use sim_net::Addr;
use sim_runtime::time::{self, now, Duration, Instant};
use sim_runtime::{node, NodeId};

use super::checkers::AccountRow;
use super::{Params, PoolSizing};
pub use crate::deps::DepError;
use crate::deps::{until_ok, KvPool, Stores};

const SCHEMA: [&str; 6] = [
    // Counters on the agent and the plan rows: every registration updates one of each,
    // which is what makes the order of its row locks matter.
    "CREATE TABLE agents (id bigint PRIMARY KEY, name text NOT NULL, members bigint NOT NULL)",
    "CREATE TABLE plans (id bigint PRIMARY KEY, name text NOT NULL, subscribers bigint NOT NULL)",
    "CREATE TABLE accounts (
        id serial PRIMARY KEY,
        email text NOT NULL UNIQUE,
        client text NOT NULL,
        agent_id bigint NOT NULL,
        registered_at_ms bigint NOT NULL
    )",
    "CREATE TABLE subscriptions (
        id serial PRIMARY KEY,
        account_id bigint NOT NULL UNIQUE,
        plan_id bigint NOT NULL
    )",
    "CREATE TABLE agent_clients (
        id serial PRIMARY KEY,
        agent_id bigint NOT NULL,
        account_id bigint NOT NULL UNIQUE
    )",
    "CREATE TABLE email_outbox (
        id serial PRIMARY KEY,
        account_id bigint NOT NULL,
        email text NOT NULL
    )",
];

/// The running dependencies and their fault handles.
#[derive(Clone)]
pub struct Deps {
    stores: Stores,
    email: EmailService,
}

/// Starts PostgreSQL with the schema, the agents and the plans, Redis (the limiter's log
/// needs no persistence: a restart forgets at most a minute of counts) and the email
/// service.
pub async fn start(params: &Params) -> Deps {
    let deps = Deps {
        stores: Stores::start(kv::Persistence::None),
        email: EmailService::start(),
    };
    until_ok(|| deps.seed(params)).await;
    deps
}

impl Deps {
    async fn seed(&self, params: &Params) -> Result<(), SqlError> {
        self.stores.migrate(&SCHEMA).await?;
        let agents: Vec<String> = (0..params.agents.max(1))
            .map(|a| format!("({a}, 'agent-{a}', 0)"))
            .collect();
        let plans: Vec<String> = (0..params.plans.max(1))
            .map(|p| format!("({p}, 'plan-{p}', 0)"))
            .collect();
        let mut c = self.stores.admin.acquire().await?;
        c.execute(
            &format!(
                "INSERT INTO agents (id, name, members) VALUES {}",
                agents.join(", ")
            ),
            &[],
        )
        .await?;
        c.execute(
            &format!(
                "INSERT INTO plans (id, name, subscribers) VALUES {}",
                plans.join(", ")
            ),
            &[],
        )
        .await?;
        Ok(())
    }

    /// The database as an API instance uses it: the document's pool, its waits counted
    /// in `waits`.
    pub fn db(&self, sizing: PoolSizing, query_timeout: Duration, waits: PoolWaits) -> Db {
        let config = PoolConfig {
            max_size: sizing.max_connections as usize,
            acquire_timeout: sizing.connect_timeout,
            idle_timeout: Some(sizing.idle_timeout),
            // postgres.js hands out idle connections as they are; a dead one fails the
            // query that gets it.
            validate_on_acquire: false,
            client: sql::ClientConfig {
                connect_timeout: sizing.connect_timeout,
                query_timeout: Some(query_timeout),
            },
            ..PoolConfig::default()
        };
        Db {
            pool: Pool::new(self.stores.db.addr(), config),
            waits,
        }
    }

    /// The per-client registration limit, `limit` per `window`, over a few connections.
    pub fn rate_limit(&self, timeout: Duration, limit: u32, window: Duration) -> RateLimit {
        RateLimit {
            connections: KvPool::new(LIMITER_CONNECTIONS, |_| {
                KvClient::new(&self.stores.redis, kv::ClientConfig { timeout })
            }),
            allow: allow_script(),
            count: count_script(),
            limit,
            window,
        }
    }

    pub fn email(&self) -> &EmailService {
        &self.email
    }

    /// PostgreSQL and Redis, for their faults.
    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    /// PostgreSQL's deadlock count since it started.
    pub fn deadlocks_detected(&self) -> u64 {
        self.stores.db.stats().deadlocks
    }

    /// Every account after the run, with whether it has its subscription.
    pub async fn final_accounts(&self) -> Result<Vec<AccountRow>, SqlError> {
        let mut c = self.stores.admin.acquire().await?;
        let subscribed: BTreeMap<i64, ()> = c
            .query("SELECT account_id FROM subscriptions", &[])
            .await?
            .iter()
            .map(|r| r.get("account_id").map(|id: i64| (id, ())))
            .collect::<Result<_, _>>()?;
        let rows = c
            .query(
                "SELECT id, email, client, registered_at_ms FROM accounts ORDER BY id",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.get("id")?;
                Ok(AccountRow {
                    email: r.get("email")?,
                    client: r.get("client")?,
                    registered_at_ms: r.get::<_, i64>("registered_at_ms")? as u64,
                    subscribed: subscribed.contains_key(&id),
                })
            })
            .collect()
    }

    /// Welcome emails still waiting in the outbox.
    pub async fn outbox_len(&self) -> Result<i64, SqlError> {
        let mut c = self.stores.admin.acquire().await?;
        c.query_one("SELECT count(*) AS n FROM email_outbox", &[])
            .await?
            .get("n")
    }
}

/// How long API instances waited for a pooled connection, across their restarts: the
/// document's "monitor database connection usage", for the report.
#[derive(Clone, Default)]
pub struct PoolWaits {
    inner: Rc<Cell<(u64, Duration)>>,
}

impl PoolWaits {
    fn record(&self, waited: Duration) {
        if !waited.is_zero() {
            let (n, total) = self.inner.get();
            self.inner.set((n + 1, total + waited));
        }
    }

    /// Acquisitions that had to wait, and their total wait.
    pub fn get(&self) -> (u64, Duration) {
        self.inner.get()
    }
}

/// The database as the API sees it.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    waits: PoolWaits,
}

/// A registration's rows, as the service writes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member<'a> {
    pub email: &'a str,
    pub client: &'a str,
    pub agent: i64,
    pub plan: i64,
    pub received: Instant,
}

impl Db {
    async fn connection(&self) -> Result<PooledConn, DepError> {
        let asked = now();
        let c = self.pool.acquire().await;
        self.waits.record(now() - asked);
        Ok(c?)
    }

    /// `BEGIN` on a pooled connection (`sql.begin(...)`).
    pub async fn begin(&self) -> Result<Tx, TxError> {
        let mut conn = self.connection().await?;
        conn.execute("BEGIN", &[]).await?;
        Ok(Tx { conn: Some(conn) })
    }

    /// Up to `limit` welcome emails waiting in the outbox: (outbox id, address).
    pub async fn unsent_welcomes(&self, limit: i64) -> Result<Vec<(i64, String)>, DepError> {
        let mut c = self.connection().await?;
        let rows = c
            .query(
                "SELECT id, email FROM email_outbox ORDER BY id LIMIT $1",
                &[&limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.get("id")?, r.get("email")?)))
            .collect::<Result<_, SqlError>>()?)
    }

    /// The welcome email `outbox_id` went out.
    pub async fn welcome_sent(&self, outbox_id: i64) -> Result<(), DepError> {
        let mut c = self.connection().await?;
        c.execute("DELETE FROM email_outbox WHERE id = $1", &[&outbox_id])
            .await?;
        Ok(())
    }
}

/// An open transaction on its own pooled connection. `commit` or `rollback` it; dropped
/// open (its request gave up, its instance died) the connection is closed, which makes
/// PostgreSQL roll the transaction back.
pub struct Tx {
    conn: Option<PooledConn>,
}

impl Tx {
    fn conn(&mut self) -> &mut PooledConn {
        self.conn.as_mut().expect("open until commit or rollback")
    }

    /// The member's account; its id.
    pub async fn insert_account(&mut self, m: &Member<'_>) -> Result<i64, TxError> {
        let at = m.received.elapsed_since_start().as_millis() as i64;
        let row = self
            .conn()
            .query_one(
                "INSERT INTO accounts (email, client, agent_id, registered_at_ms) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
                &[&m.email, &m.client, &m.agent, &at],
            )
            .await?;
        Ok(row.get("id")?)
    }

    /// Counts the member on the agent's row: locks it.
    pub async fn lock_agent(&mut self, agent: i64) -> Result<(), TxError> {
        self.conn()
            .execute(
                "UPDATE agents SET members = members + 1 WHERE id = $1",
                &[&agent],
            )
            .await?;
        Ok(())
    }

    /// Counts the subscriber on the plan's row: locks it.
    pub async fn lock_plan(&mut self, plan: i64) -> Result<(), TxError> {
        self.conn()
            .execute(
                "UPDATE plans SET subscribers = subscribers + 1 WHERE id = $1",
                &[&plan],
            )
            .await?;
        Ok(())
    }

    pub async fn insert_subscription(&mut self, account: i64, plan: i64) -> Result<(), TxError> {
        self.conn()
            .execute(
                "INSERT INTO subscriptions (account_id, plan_id) VALUES ($1, $2)",
                &[&account, &plan],
            )
            .await?;
        Ok(())
    }

    pub async fn link_agent_client(&mut self, agent: i64, account: i64) -> Result<(), TxError> {
        self.conn()
            .execute(
                "INSERT INTO agent_clients (agent_id, account_id) VALUES ($1, $2)",
                &[&agent, &account],
            )
            .await?;
        Ok(())
    }

    /// Queues the welcome email in the outbox, in this transaction; its outbox id.
    pub async fn queue_welcome(&mut self, account: i64, email: &str) -> Result<i64, TxError> {
        let row = self
            .conn()
            .query_one(
                "INSERT INTO email_outbox (account_id, email) VALUES ($1, $2) RETURNING id",
                &[&account, &email],
            )
            .await?;
        Ok(row.get("id")?)
    }

    /// The welcome email `outbox_id` went out before this transaction ends.
    pub async fn welcome_sent_now(&mut self, outbox_id: i64) -> Result<(), TxError> {
        self.conn()
            .execute("DELETE FROM email_outbox WHERE id = $1", &[&outbox_id])
            .await?;
        Ok(())
    }

    /// The account of `email` in this transaction's snapshot.
    pub async fn account_id(&mut self, email: &str) -> Result<Option<i64>, TxError> {
        let row = self
            .conn()
            .query_opt("SELECT id FROM accounts WHERE email = $1", &[&email])
            .await?;
        Ok(match row {
            Some(r) => Some(r.get("id")?),
            None => None,
        })
    }

    pub async fn commit(mut self) -> Result<(), TxError> {
        let mut conn = self.conn.take().expect("open until commit or rollback");
        conn.execute("COMMIT", &[]).await?;
        Ok(())
    }

    pub async fn rollback(mut self) -> Result<(), TxError> {
        let mut conn = self.conn.take().expect("open until commit or rollback");
        conn.execute("ROLLBACK", &[]).await?;
        Ok(())
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.detach();
        }
    }
}

/// A statement of a transaction failed: with a conflict a retry cures (40001, 40P01), or
/// otherwise.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("database: {0}")]
    Conflict(String),
    #[error(transparent)]
    Failed(#[from] DepError),
}

impl From<SqlError> for TxError {
    fn from(e: SqlError) -> Self {
        match e {
            SqlError::SerializationFailure { .. } | SqlError::DeadlockDetected => {
                TxError::Conflict(e.to_string())
            }
            e => TxError::Failed(e.into()),
        }
    }
}

/// Connections of an API instance's rate limiter.
const LIMITER_CONNECTIONS: usize = 4;

/// The name of the limiter's script in `kv.cmd` events.
const ALLOW: &str = "interdomestik.rate_limit";

/// `redis.call(...)` inside a script: the argument vector as Redis would parse it.
fn call(ctx: &mut ScriptContext<'_>, argv: &[&str]) -> Reply {
    match kv::parse(argv) {
        Ok(cmd) => ctx.call(cmd),
        Err(refused) => refused,
    }
}

/// Forgets the log's entries that left the window ending at `now_ms`; how many remain.
fn trim_and_count(ctx: &mut ScriptContext<'_>, key: &str, now_ms: i64, window_ms: i64) -> i64 {
    let cutoff = (now_ms - window_ms).to_string();
    call(ctx, &["ZREMRANGEBYSCORE", key, "-inf", &cutoff]);
    match call(ctx, &["ZCARD", key]) {
        Reply::Int(n) => n,
        _ => 0,
    }
}

/// A sliding-window log, as the service's Lua script reads:
///
/// ```lua
/// -- KEYS: the client's log; ARGV: now (ms), window (ms), limit, request id
/// redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
/// if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
/// redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
/// redis.call('PEXPIRE', KEYS[1], ARGV[2])
/// return 1
/// ```
fn allow_script() -> Script {
    Script::new(
        ALLOW,
        |ctx: &mut ScriptContext<'_>, keys: &[String], args: &[String]| {
            let num = |i: usize| args[i].parse::<i64>().unwrap_or(0);
            let (now_ms, window_ms, limit) = (num(0), num(1), num(2));
            if trim_and_count(ctx, &keys[0], now_ms, window_ms) >= limit {
                return Reply::Int(0);
            }
            call(ctx, &["ZADD", &keys[0], &args[0], &args[3]]);
            call(ctx, &["PEXPIRE", &keys[0], &args[1]]);
            Reply::Int(1)
        },
    )
}

/// The name of the count-only script in `kv.cmd` events.
const COUNT: &str = "interdomestik.rate_count";

/// The first half of the racy limiter: trims the log and counts it, adding nothing.
fn count_script() -> Script {
    Script::new(
        COUNT,
        |ctx: &mut ScriptContext<'_>, keys: &[String], args: &[String]| {
            let num = |i: usize| args[i].parse::<i64>().unwrap_or(0);
            Reply::Int(trim_and_count(ctx, &keys[0], num(0), num(1)))
        },
    )
}

/// The registration limit per client, a sliding-window log in Redis.
#[derive(Clone)]
pub struct RateLimit {
    connections: KvPool,
    allow: Script,
    count: Script,
    limit: u32,
    window: Duration,
}

impl RateLimit {
    fn key(client: &str) -> String {
        format!("ratelimit:register:{client}")
    }

    fn window_args(&self, at: Instant) -> (String, String) {
        (
            at.elapsed_since_start().as_millis().to_string(),
            self.window.as_millis().to_string(),
        )
    }

    /// Counts request `request` of `client` received `at`, atomically; whether it is
    /// within the limit.
    pub async fn allow(&self, client: &str, request: &str, at: Instant) -> Result<bool, DepError> {
        let (now_ms, window_ms) = self.window_args(at);
        let limit = self.limit.to_string();
        let reply = self
            .connections
            .client()
            .eval(
                &self.allow,
                &[&Self::key(client)],
                &[&now_ms, &window_ms, &limit, request],
            )
            .await?;
        Ok(reply == Reply::Int(1))
    }

    /// How many requests of `client` the window ending `at` holds (read only).
    pub async fn count(&self, client: &str, at: Instant) -> Result<u32, DepError> {
        let (now_ms, window_ms) = self.window_args(at);
        match self
            .connections
            .client()
            .eval(&self.count, &[&Self::key(client)], &[&now_ms, &window_ms])
            .await?
        {
            Reply::Int(n) => Ok(n as u32),
            other => Err(DepError::Redis(format!("unexpected reply {other:?}"))),
        }
    }

    /// Adds request `request` of `client` received `at` to its log.
    pub async fn add(&self, client: &str, request: &str, at: Instant) -> Result<(), DepError> {
        let (now_ms, window_ms) = self.window_args(at);
        let key = Self::key(client);
        let ms = now_ms.parse::<f64>().unwrap_or(0.0);
        let add = self.connections.client().zadd(&key, ms, request).await;
        add?;
        let expire = kv::parse(&["PEXPIRE", &key, &window_ms])
            .map_err(|r| DepError::Redis(format!("{r:?}")))?;
        self.connections.client().multi().cmd(expire).exec().await?;
        Ok(())
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }
}

/// The RPC port of the email service.
pub const EMAIL_PORT: u16 = 9100;

/// A welcome email, with the key the service deduplicates on (the address: one welcome
/// per member).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WelcomeEmail {
    pub to: String,
}

/// The email service's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EmailResponse {
    Sent,
    /// Sent before: not sent again.
    Duplicate,
}

/// The email service: a node answering after a provider's delay, deduplicating on the
/// address; down means it stops answering (a hung provider, the worst case for callers),
/// slow that every answer takes longer. Its delivery records are kept outside its node,
/// as a provider's dashboard is.
#[derive(Clone)]
pub struct EmailService {
    node: NodeId,
    extra: Rc<Cell<Duration>>,
    delivered: Rc<RefCell<BTreeMap<String, u32>>>,
}

impl EmailService {
    fn start() -> EmailService {
        let extra = Rc::new(Cell::new(Duration::ZERO));
        let delivered: Rc<RefCell<BTreeMap<String, u32>>> = Rc::default();
        let (x, d) = (Rc::clone(&extra), Rc::clone(&delivered));
        let node = node::node("email").build(move || {
            let (extra, delivered) = (Rc::clone(&x), Rc::clone(&d));
            async move {
                let rng = Rc::new(RefCell::new(sim_runtime::rng("email")));
                let server = sim_net::serve(EMAIL_PORT, move |req: WelcomeEmail| {
                    let (extra, delivered, rng) =
                        (Rc::clone(&extra), Rc::clone(&delivered), Rc::clone(&rng));
                    async move {
                        let delay = rng.borrow_mut().range_inclusive(20, 80);
                        time::sleep(Duration::from_millis(delay) + extra.get()).await;
                        let mut d = delivered.borrow_mut();
                        let n = d.entry(req.to).or_default();
                        *n += 1;
                        if *n > 1 {
                            EmailResponse::Duplicate
                        } else {
                            EmailResponse::Sent
                        }
                    }
                });
                if let Ok(h) = server {
                    let _ = h.await;
                }
            }
        });
        EmailService {
            node,
            extra,
            delivered,
        }
    }

    pub fn addr(&self) -> Addr {
        Addr::new(self.node, EMAIL_PORT)
    }

    /// The service stops answering (its process hangs); calls wait out their timeout.
    pub fn down(&self) {
        self.node.pause();
    }

    pub fn up(&self) {
        self.node.resume();
    }

    /// Every answer takes `extra` longer.
    pub fn slow(&self, extra: Duration) {
        self.extra.set(extra);
    }

    pub fn fast(&self) {
        self.extra.set(Duration::ZERO);
    }

    /// Deliveries per address (a duplicate counts, it was asked for again).
    pub fn delivered(&self) -> BTreeMap<String, u32> {
        self.delivered.borrow().clone()
    }
}

/// Sends one welcome email, waiting at most `timeout`.
pub async fn send_welcome(
    service: Addr,
    to: &str,
    timeout: Duration,
) -> Result<EmailResponse, sim_net::RpcError> {
    let email = WelcomeEmail { to: to.to_string() };
    sim_net::call::<WelcomeEmail, EmailResponse>(service, email, timeout).await
}
