//! Interdomestik's dependencies as the service sees them: PostgreSQL (agents, plans,
//! accounts, subscriptions, the agent-client links, claims with their documents and the
//! email outbox) behind the document's connection pool, the rate limiter's script in Redis, and the external email
//! service. The only code that touches the models' APIs.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use sim_models::kv::{self, KvClient, Reply, Script, ScriptContext};
use sim_models::sql::{self, Pool, PoolConfig, PooledConn, SqlError};
use sim_net::Addr;
use sim_runtime::time::{self, now, Duration, Instant};
use sim_runtime::{node, NodeId};

use super::checkers::{AccountRow, ClaimRow};
use super::{Params, PoolSizing};
pub use crate::deps::DepError;
use crate::deps::{until_ok, KvPool, Stores};

const SCHEMA: [&str; 8] = [
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
    // A claim's reference is the client's: submitted twice, it is stored once.
    "CREATE TABLE claims (
        id serial PRIMARY KEY,
        reference text NOT NULL UNIQUE,
        account_id bigint NOT NULL,
        client text NOT NULL,
        submitted_at_ms bigint NOT NULL
    )",
    "CREATE TABLE claim_documents (
        id serial PRIMARY KEY,
        claim_id bigint NOT NULL,
        name text NOT NULL
    )",
    // `message` is what the email service deduplicates on: one welcome per member, one
    // receipt per claim.
    "CREATE TABLE email_outbox (
        id serial PRIMARY KEY,
        account_id bigint NOT NULL,
        email text NOT NULL,
        message text NOT NULL
    )",
];

/// The running dependencies and their fault handles.
#[derive(Clone)]
pub struct Deps {
    stores: Stores,
    email: EmailService,
}

/// Starts PostgreSQL (with `params.db_max_connections`) with the schema, the agents and
/// the plans, Redis (the limiter's log needs no persistence: a restart forgets at most a
/// minute of counts) and the email service.
pub async fn start(params: &Params) -> Deps {
    let db = sql::Config {
        max_connections: params.db_max_connections,
        ..sql::Config::default()
    };
    let deps = Deps {
        stores: Stores::start_with(kv::Persistence::None, db),
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

    /// Statements PostgreSQL made wait for a row lock since it started.
    pub fn lock_waits(&self) -> u64 {
        self.stores.db.stats().lock_waits
    }

    /// Every account and every claim after the run, each with whether its account has
    /// its subscription.
    pub async fn final_rows(&self) -> Result<(Vec<AccountRow>, Vec<ClaimRow>), SqlError> {
        let mut c = self.stores.admin.acquire().await?;
        let subscribed: BTreeSet<i64> = c
            .query("SELECT account_id FROM subscriptions", &[])
            .await?
            .iter()
            .map(|r| r.get("account_id"))
            .collect::<Result<_, _>>()?;
        let accounts = c
            .query(
                "SELECT id, email, client, registered_at_ms FROM accounts ORDER BY id",
                &[],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(AccountRow {
                    email: r.get("email")?,
                    client: r.get("client")?,
                    registered_at_ms: r.get::<_, i64>("registered_at_ms")? as u64,
                    subscribed: subscribed.contains(&r.get("id")?),
                })
            })
            .collect::<Result<_, SqlError>>()?;
        let documents: BTreeMap<i64, i64> = c
            .query(
                "SELECT claim_id, count(*) AS n FROM claim_documents GROUP BY claim_id",
                &[],
            )
            .await?
            .iter()
            .map(|r| Ok((r.get("claim_id")?, r.get("n")?)))
            .collect::<Result<_, SqlError>>()?;
        let claims = c
            .query(
                "SELECT id, reference, account_id, client, submitted_at_ms FROM claims ORDER BY id",
                &[],
            )
            .await?
            .iter()
            .map(|r| {
                let id: i64 = r.get("id")?;
                Ok(ClaimRow {
                    reference: r.get("reference")?,
                    client: r.get("client")?,
                    submitted_at_ms: r.get::<_, i64>("submitted_at_ms")? as u64,
                    documents: documents.get(&id).copied().unwrap_or(0) as u32,
                    subscribed: subscribed.contains(&r.get("account_id")?),
                })
            })
            .collect::<Result<_, SqlError>>()?;
        Ok((accounts, claims))
    }

    /// Emails still waiting in the outbox.
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

/// A claim's rows, as the service writes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimFiled<'a> {
    /// The client's reference for the claim.
    pub reference: &'a str,
    pub client: &'a str,
    pub account: i64,
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

    /// Up to `limit` emails waiting in the outbox, oldest first, with their outbox ids.
    pub async fn unsent_emails(&self, limit: i64) -> Result<Vec<(i64, Email)>, DepError> {
        let mut c = self.connection().await?;
        let rows = c
            .query(
                "SELECT id, email, message FROM email_outbox ORDER BY id LIMIT $1",
                &[&limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let email = Email {
                    to: r.get("email")?,
                    message: r.get("message")?,
                };
                Ok((r.get("id")?, email))
            })
            .collect::<Result<_, SqlError>>()?)
    }

    /// The email `outbox_id` went out.
    pub async fn email_sent(&self, outbox_id: i64) -> Result<(), DepError> {
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

    /// Queues `email` to `account`'s address in the outbox, in this transaction; its
    /// outbox id.
    pub async fn queue_email(&mut self, account: i64, email: &Email) -> Result<i64, TxError> {
        let row = self
            .conn()
            .query_one(
                "INSERT INTO email_outbox (account_id, email, message) VALUES ($1, $2, $3) \
                 RETURNING id",
                &[&account, &email.to, &email.message],
            )
            .await?;
        Ok(row.get("id")?)
    }

    /// The email `outbox_id` went out before this transaction ends.
    pub async fn email_sent_now(&mut self, outbox_id: i64) -> Result<(), TxError> {
        self.conn()
            .execute("DELETE FROM email_outbox WHERE id = $1", &[&outbox_id])
            .await?;
        Ok(())
    }

    /// The account of `email` if it has its subscription, in this transaction's snapshot:
    /// who may file a claim. Two lookups by unique key rather than a join, as the ORM
    /// writes it (`accounts.findUnique`, then `subscriptions.findUnique`).
    pub async fn subscribed_account(&mut self, email: &str) -> Result<Option<i64>, TxError> {
        let Some(account) = self
            .conn()
            .query_opt("SELECT id FROM accounts WHERE email = $1", &[&email])
            .await?
        else {
            return Ok(None);
        };
        let account: i64 = account.get("id")?;
        let subscription = self
            .conn()
            .query_opt(
                "SELECT plan_id FROM subscriptions WHERE account_id = $1",
                &[&account],
            )
            .await?;
        Ok(subscription.map(|_| account))
    }

    /// The claim's row; its id.
    pub async fn insert_claim(&mut self, c: &ClaimFiled<'_>) -> Result<i64, TxError> {
        let at = c.received.elapsed_since_start().as_millis() as i64;
        let row = self
            .conn()
            .query_one(
                "INSERT INTO claims (reference, account_id, client, submitted_at_ms) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
                &[&c.reference, &c.account, &c.client, &at],
            )
            .await?;
        Ok(row.get("id")?)
    }

    /// The claim's uploaded documents, in one statement.
    pub async fn attach_documents(&mut self, claim: i64, names: &[String]) -> Result<(), TxError> {
        if names.is_empty() {
            return Ok(());
        }
        let values: Vec<String> = (0..names.len())
            .map(|i| format!("($1, ${})", i + 2))
            .collect();
        let statement = format!(
            "INSERT INTO claim_documents (claim_id, name) VALUES {}",
            values.join(", ")
        );
        let mut params: Vec<&dyn sql::ToSql> = vec![&claim];
        params.extend(names.iter().map(|n| n as &dyn sql::ToSql));
        self.conn().execute(&statement, &params).await?;
        Ok(())
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
    /// `bucket` is what one limit counts: an endpoint and a client.
    fn key(bucket: &str) -> String {
        format!("ratelimit:{bucket}")
    }

    fn window_args(&self, at: Instant) -> (String, String) {
        (
            at.elapsed_since_start().as_millis().to_string(),
            self.window.as_millis().to_string(),
        )
    }

    /// Counts request `request` of `bucket` received `at`, atomically; whether it is
    /// within the limit.
    pub async fn allow(&self, bucket: &str, request: &str, at: Instant) -> Result<bool, DepError> {
        let (now_ms, window_ms) = self.window_args(at);
        let limit = self.limit.to_string();
        let reply = self
            .connections
            .client()
            .eval(
                &self.allow,
                &[&Self::key(bucket)],
                &[&now_ms, &window_ms, &limit, request],
            )
            .await?;
        Ok(reply == Reply::Int(1))
    }

    /// How many requests of `bucket` the window ending `at` holds (read only).
    pub async fn count(&self, bucket: &str, at: Instant) -> Result<u32, DepError> {
        let (now_ms, window_ms) = self.window_args(at);
        match self
            .connections
            .client()
            .eval(&self.count, &[&Self::key(bucket)], &[&now_ms, &window_ms])
            .await?
        {
            Reply::Int(n) => Ok(n as u32),
            other => Err(DepError::Redis(format!("unexpected reply {other:?}"))),
        }
    }

    /// Adds request `request` of `bucket` received `at` to its log.
    pub async fn add(&self, bucket: &str, request: &str, at: Instant) -> Result<(), DepError> {
        let (now_ms, window_ms) = self.window_args(at);
        let key = Self::key(bucket);
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

/// An email: its address, and the message the service deduplicates on (one welcome per
/// member, one receipt per claim: the provider's idempotency key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    pub to: String,
    pub message: String,
}

impl Email {
    /// The welcome email of the member `to`.
    pub fn welcome(to: &str) -> Email {
        Email {
            to: to.to_string(),
            message: format!("{WELCOME}{to}"),
        }
    }

    /// The receipt of claim `reference`, to its member `to`.
    pub fn claim_receipt(to: &str, reference: &str) -> Email {
        Email {
            to: to.to_string(),
            message: format!("{RECEIPT}{reference}"),
        }
    }
}

/// What messages of each kind start with.
const WELCOME: &str = "welcome:";
const RECEIPT: &str = "claim-receipt:";

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
                let server = sim_net::serve(EMAIL_PORT, move |req: Email| {
                    let (extra, delivered, rng) =
                        (Rc::clone(&extra), Rc::clone(&delivered), Rc::clone(&rng));
                    async move {
                        let delay = rng.borrow_mut().range_inclusive(20, 80);
                        time::sleep(Duration::from_millis(delay) + extra.get()).await;
                        let mut d = delivered.borrow_mut();
                        let n = d.entry(req.message).or_default();
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

    /// Welcome emails delivered per member's address (a duplicate counts: it was asked
    /// for again).
    pub fn welcomes_delivered(&self) -> BTreeMap<String, u32> {
        self.delivered_of(WELCOME)
    }

    /// Claim receipts delivered per claim reference.
    pub fn receipts_delivered(&self) -> BTreeMap<String, u32> {
        self.delivered_of(RECEIPT)
    }

    fn delivered_of(&self, kind: &str) -> BTreeMap<String, u32> {
        self.delivered
            .borrow()
            .iter()
            .filter_map(|(message, &n)| Some((message.strip_prefix(kind)?.to_string(), n)))
            .collect()
    }
}

/// Sends one email, waiting at most `timeout`.
pub async fn send_email(
    service: Addr,
    email: Email,
    timeout: Duration,
) -> Result<EmailResponse, sim_net::RpcError> {
    sim_net::call::<Email, EmailResponse>(service, email, timeout).await
}
