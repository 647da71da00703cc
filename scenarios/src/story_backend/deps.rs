//! The story backend's dependencies as the service sees them: PostgreSQL (users, stories,
//! comments) through a connection pool, a health-check connection, the story cache and
//! the per-client rate limit in Redis, and the write-behind list of the buggy variant.
//! The only code of the scenario that touches the models' APIs.
//!
//! Every database attempt is a span of the request it serves (`story.db_call`, as a
//! tracing library would record it): that is how a checker measures the load each
//! request puts on the database.

use serde::{Deserialize, Serialize};
use sim_models::kv::{self, KvClient};
use sim_models::sql::{self, Pool, PoolConfig, PoolStatus, SqlError};
use sim_runtime::time::{Duration, Instant};
use sim_runtime::trace::{self, TraceEvent};
use sim_runtime::NodeId;

use super::Params;
use crate::deps::{execute_all, until_ok, KvPool, Stores};

/// One attempt at a database call made on behalf of request `request`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TraceEvent)]
#[trace_event(name = "story.db_call")]
pub struct DbCall {
    pub request: u64,
    pub op: &'static str,
}

fn span(request: u64, op: &'static str) {
    trace::emit(&DbCall { request, op });
}

const SCHEMA: [&str; 4] = [
    "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL)",
    "CREATE TABLE stories (
        id serial PRIMARY KEY,
        uid text NOT NULL UNIQUE,
        author bigint NOT NULL REFERENCES users (id),
        title text NOT NULL,
        body text NOT NULL
    )",
    "CREATE TABLE comments (
        id serial PRIMARY KEY,
        uid text NOT NULL UNIQUE,
        story bigint NOT NULL REFERENCES stories (id),
        author bigint NOT NULL REFERENCES users (id),
        body text NOT NULL
    )",
    "CREATE INDEX comments_story ON comments (story)",
];

/// Authors in the seed data: every user posts as one of them.
pub const AUTHORS: u32 = 8;

/// A database call that failed, as the service tells failures apart: whether another
/// attempt may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbError {
    /// No connection in time, a refused or broken connection, the server shutting down:
    /// the statement did not run (or its effect is unknown and the write is idempotent).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The statement ran past the statement timeout and was cancelled.
    #[error("statement timeout")]
    Timeout,
    /// Anything else: a bug, not an outage.
    #[error("database: {0}")]
    Failed(String),
}

impl From<SqlError> for DbError {
    fn from(e: SqlError) -> Self {
        match e {
            SqlError::QueryCanceled => DbError::Timeout,
            SqlError::PoolTimeout { .. }
            | SqlError::Connection(_)
            | SqlError::AdminShutdown
            | SqlError::TooManyConnections => DbError::Unavailable(e.to_string()),
            e => DbError::Failed(e.to_string()),
        }
    }
}

impl DbError {
    /// Whether another attempt may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, DbError::Unavailable(_))
    }
}

/// A Redis command that failed (down, slow, refused).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("redis: {0}")]
pub struct RedisError(String);

impl From<kv::KvError> for RedisError {
    fn from(e: kv::KvError) -> Self {
        RedisError(e.to_string())
    }
}

/// The running dependencies and their fault handles.
#[derive(Clone)]
pub struct Deps {
    stores: Stores,
}

/// Starts PostgreSQL with the schema, the authors and `stories_seeded` stories, and Redis
/// as a cache without persistence (a restart empties it).
pub async fn start(params: &Params) -> Deps {
    let deps = Deps {
        stores: Stores::start(kv::Persistence::None),
    };
    until_ok(|| deps.seed(params.stories_seeded)).await;
    deps
}

impl Deps {
    async fn seed(&self, stories: u32) -> Result<(), SqlError> {
        let mut c = self.stores.admin.acquire().await?;
        execute_all(&mut c, &SCHEMA).await?;
        let users: Vec<String> = (1..=AUTHORS)
            .map(|u| format!("({u}, 'user-{u}')"))
            .collect();
        c.execute(
            &format!("INSERT INTO users (id, name) VALUES {}", users.join(", ")),
            &[],
        )
        .await?;
        if stories > 0 {
            let rows: Vec<String> = (1..=stories)
                .map(|s| {
                    format!(
                        "('seed-{s}', {}, 'Story {s}', 'Once upon a time, {s}')",
                        (s - 1) % AUTHORS + 1
                    )
                })
                .collect();
            c.execute(
                &format!(
                    "INSERT INTO stories (uid, author, title, body) VALUES {}",
                    rows.join(", ")
                ),
                &[],
            )
            .await?;
        }
        Ok(())
    }

    pub fn db_node(&self) -> NodeId {
        self.stores.db.node()
    }

    pub fn redis_node(&self) -> NodeId {
        self.stores.redis.primary_node()
    }

    /// PostgreSQL and Redis, for their faults.
    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    /// Statements started from now on take `extra` longer, until [`Deps::queries_fast`]:
    /// the slow-query fault's verbs in a pair.
    pub fn queries_slow(&self, extra: Duration) {
        self.stores.db.slow(extra);
    }

    pub fn queries_fast(&self) {
        self.stores.db.fast();
    }

    /// A Redis client with `timeout` on each command.
    fn redis(&self, timeout: Duration) -> KvClient {
        KvClient::new(&self.stores.redis, kv::ClientConfig { timeout })
    }

    /// The database as an API instance uses it: a pool of `params.pool_size`
    /// connections, idle ones closed after `idle_timeout`, every statement bounded by the
    /// request timeout (PostgreSQL's `statement_timeout`, and the socket's), and a wait
    /// for a connection bounded by `acquire_timeout` when `bounded_wait`, else never.
    pub fn db(&self, params: &Params, bounded_wait: bool) -> Db {
        let acquire_timeout = if bounded_wait {
            params.acquire_timeout
        } else {
            // No bound at all: the wait outlasts any run.
            Duration::from_secs(30 * 24 * 3600)
        };
        let config = PoolConfig {
            max_size: params.pool_size,
            acquire_timeout,
            idle_timeout: Some(params.idle_timeout),
            validate_on_acquire: false,
            client: sql::ClientConfig {
                connect_timeout: params.acquire_timeout,
                query_timeout: Some(params.request_timeout),
            },
            ..PoolConfig::default()
        };
        Db {
            pool: Pool::new(self.stores.db.addr(), config),
        }
    }

    /// The health check's own connection, every wait bounded by `timeout`: the check
    /// must answer fast even when the request pool is exhausted. The connection is
    /// validated before each check, so that one broken by an outage that has ended is
    /// replaced rather than reported as the database being down.
    pub fn health(&self, timeout: Duration) -> HealthCheck {
        let config = PoolConfig {
            max_size: 1,
            acquire_timeout: timeout,
            validate_on_acquire: true,
            validation_timeout: timeout,
            client: sql::ClientConfig {
                connect_timeout: timeout,
                query_timeout: Some(timeout),
            },
            ..PoolConfig::default()
        };
        HealthCheck {
            pool: Pool::new(self.stores.db.addr(), config),
        }
    }

    /// The story cache over a few connections, each command bounded by `timeout`.
    pub fn cache(&self, timeout: Duration, ttl: Duration) -> Cache {
        Cache {
            connections: KvPool::new(REDIS_CONNECTIONS, |_| self.redis(timeout)),
            ttl,
        }
    }

    /// The per-client rate limit, `limit` requests per `window`.
    pub fn rate_limit(&self, timeout: Duration, limit: u32, window: Duration) -> RateLimit {
        RateLimit {
            connections: KvPool::new(REDIS_CONNECTIONS, |_| self.redis(timeout)),
            limit,
            window,
        }
    }

    /// The write-behind list (the buggy variant's).
    pub fn write_behind(&self, timeout: Duration) -> WriteBehind {
        WriteBehind {
            client: self.redis(timeout),
        }
    }

    /// The uids of every story and comment the database holds, for the checkers.
    pub async fn stored_uids(&self) -> Result<(Vec<String>, Vec<String>), SqlError> {
        let mut c = self.stores.admin.acquire().await?;
        let uids = |rows: Vec<sql::Row>| -> Result<Vec<String>, SqlError> {
            rows.iter().map(|r| r.get::<_, String>("uid")).collect()
        };
        let stories = uids(c.query("SELECT uid FROM stories", &[]).await?)?;
        let comments = uids(c.query("SELECT uid FROM comments", &[]).await?)?;
        Ok((stories, comments))
    }
}

/// Connections of an instance's cache and of its rate limiter: one connection runs one
/// command at a time, and a slow one must not queue every request behind it.
const REDIS_CONNECTIONS: usize = 4;

/// A story with its comments, as the API returns it and the cache keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Story {
    pub id: i64,
    pub title: String,
    pub body: String,
    pub comments: Vec<String>,
}

/// A new story or comment, as a write carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NewWrite {
    Story {
        uid: String,
        author: i64,
        title: String,
        body: String,
    },
    Comment {
        uid: String,
        story: i64,
        author: i64,
        body: String,
    },
}

impl NewWrite {
    pub fn uid(&self) -> &str {
        match self {
            NewWrite::Story { uid, .. } | NewWrite::Comment { uid, .. } => uid,
        }
    }

    /// The story whose cached copy the write makes stale.
    pub fn story(&self) -> Option<i64> {
        match self {
            NewWrite::Story { .. } => None,
            NewWrite::Comment { story, .. } => Some(*story),
        }
    }
}

/// The database as the API sees it; each method is one attempt, one pooled connection.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
}

impl Db {
    /// The pool's state now (what a metrics exporter reports).
    pub fn status(&self) -> PoolStatus {
        self.pool.status()
    }

    /// Story `id` with its latest 20 comments (the first page), newest first: the story by
    /// its primary key, then the page of comments through their index on `story` (two
    /// statements on one connection, as an ORM's prefetch does; a join would read every
    /// comment of every story).
    pub async fn story(&self, request: u64, id: i64) -> Result<Option<Story>, DbError> {
        span(request, "select_story");
        let mut c = self.pool.acquire().await?;
        let Some(story) = c
            .query_opt("SELECT title, body FROM stories WHERE id = $1", &[&id])
            .await?
        else {
            return Ok(None);
        };
        let page = c
            .query(
                "SELECT body FROM comments WHERE story = $1 ORDER BY id DESC LIMIT 20",
                &[&id],
            )
            .await?;
        let comments = page
            .iter()
            .map(|r| r.get::<_, String>("body"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Story {
            id,
            title: story.get("title")?,
            body: story.get("body")?,
            comments,
        }))
    }

    /// Stores a story or a comment once: a retry of a write whose answer was lost finds
    /// its uid taken and changes nothing.
    pub async fn insert(&self, request: u64, write: &NewWrite) -> Result<(), DbError> {
        span(request, "insert");
        let mut c = self.pool.acquire().await?;
        match write {
            NewWrite::Story {
                uid,
                author,
                title,
                body,
            } => {
                c.execute(
                    "INSERT INTO stories (uid, author, title, body) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (uid) DO NOTHING",
                    &[uid, author, title, body],
                )
                .await?
            }
            NewWrite::Comment {
                uid,
                story,
                author,
                body,
            } => {
                c.execute(
                    "INSERT INTO comments (uid, story, author, body) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (uid) DO NOTHING",
                    &[uid, story, author, body],
                )
                .await?
            }
        };
        Ok(())
    }
}

/// The health endpoint's view of the database.
#[derive(Clone)]
pub struct HealthCheck {
    pool: Pool,
}

impl HealthCheck {
    /// Whether the database answers a trivial query now (`SELECT 1`'s role).
    pub async fn database_reachable(&self) -> bool {
        let probe = async {
            let mut c = self.pool.acquire().await?;
            // The model runs no SELECT without FROM: a primary-key read of a seed row.
            c.query_one("SELECT id FROM users WHERE id = 1", &[]).await
        };
        probe.await.is_ok()
    }
}

/// The story cache: one JSON value per story, with a time to live.
#[derive(Clone)]
pub struct Cache {
    connections: KvPool,
    ttl: Duration,
}

fn story_key(id: i64) -> String {
    format!("story:{id}")
}

impl Cache {
    pub async fn get(&self, id: i64) -> Result<Option<Story>, RedisError> {
        let cached = self.connections.client().get(&story_key(id)).await?;
        // A value that no longer parses (an older format) is a miss.
        Ok(cached.and_then(|json| serde_json::from_str(&json).ok()))
    }

    pub async fn put(&self, story: &Story) -> Result<(), RedisError> {
        let json = serde_json::to_string(story).map_err(|e| RedisError(e.to_string()))?;
        self.connections
            .client()
            .set_px(&story_key(story.id), &json, self.ttl)
            .await?;
        Ok(())
    }

    pub async fn invalidate(&self, id: i64) -> Result<(), RedisError> {
        self.connections.client().del(&[&story_key(id)]).await?;
        Ok(())
    }
}

/// A fixed-window counter per client in Redis (INCR, and an expiry on the window), the
/// usual Redis rate limiter.
#[derive(Clone)]
pub struct RateLimit {
    connections: KvPool,
    limit: u32,
    window: Duration,
}

impl RateLimit {
    /// Counts a request of `client` received at `at`; whether it is within the limit.
    pub async fn allow(&self, client: &str, at: Instant) -> Result<bool, RedisError> {
        let window = at.elapsed_since_start().as_nanos() / self.window.as_nanos().max(1);
        let key = format!("ratelimit:{client}:{window}");
        let replies = self
            .connections
            .client()
            .multi()
            .incr(&key)
            .expire(&key, self.window * 2)
            .exec()
            .await?;
        match replies.as_deref() {
            Some([kv::Reply::Int(n), ..]) => Ok(*n <= i64::from(self.limit)),
            _ => Err(RedisError("unexpected reply to the rate counter".into())),
        }
    }
}

/// The list where the write-behind variant parks acknowledged writes until it flushes
/// them to the database.
#[derive(Clone)]
pub struct WriteBehind {
    client: KvClient,
}

const WRITE_BEHIND_KEY: &str = "writes:pending";

impl WriteBehind {
    pub async fn push(&self, write: &NewWrite) -> Result<(), RedisError> {
        let json = serde_json::to_string(write).map_err(|e| RedisError(e.to_string()))?;
        self.client.rpush(WRITE_BEHIND_KEY, &[&json]).await?;
        Ok(())
    }

    /// The oldest parked write, taken off the list.
    pub async fn pop(&self) -> Result<Option<NewWrite>, RedisError> {
        let json = self.client.lpop(WRITE_BEHIND_KEY).await?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_runtime::time::now;

    fn story(uid: &str) -> NewWrite {
        NewWrite::Story {
            uid: uid.into(),
            author: 1,
            title: "t".into(),
            body: "b".into(),
        }
    }

    #[sim_runtime::test]
    async fn a_write_stored_twice_is_stored_once_and_reads_back_with_its_comments() {
        let params = Params {
            stories_seeded: 2,
            ..Params::default()
        };
        let deps = start(&params).await;
        let db = deps.db(&params, true);
        db.insert(1, &story("s-1")).await.unwrap();
        db.insert(2, &story("s-1")).await.unwrap();
        let comment = NewWrite::Comment {
            uid: "c-1".into(),
            story: 2,
            author: 3,
            body: "nice".into(),
        };
        db.insert(3, &comment).await.unwrap();
        let (stories, comments) = deps.stored_uids().await.unwrap();
        assert_eq!(stories, ["seed-1", "seed-2", "s-1"]);
        assert_eq!(comments, ["c-1"]);
        let read = db.story(4, 2).await.unwrap().unwrap();
        assert_eq!(read.comments, ["nice"]);
        assert_eq!(db.story(5, 99).await.unwrap(), None);
    }

    #[sim_runtime::test]
    async fn a_story_reads_back_with_its_newest_20_comments_newest_first() {
        let params = Params {
            stories_seeded: 2,
            ..Params::default()
        };
        let deps = start(&params).await;
        let db = deps.db(&params, true);
        for k in 0..25 {
            let comment = NewWrite::Comment {
                uid: format!("c-{k}"),
                story: 1 + k % 2,
                author: 1,
                body: format!("comment {k}"),
            };
            db.insert(k as u64 + 1, &comment).await.unwrap();
        }
        // Story 1 has the even comments 0..=24 (13 of them), story 2 the odd ones.
        let one = db.story(100, 1).await.unwrap().unwrap();
        let expected: Vec<String> = (0..25)
            .rev()
            .filter(|k| k % 2 == 0)
            .map(|k| format!("comment {k}"))
            .collect();
        assert_eq!(one.comments, expected);
        for k in 25..40 {
            let comment = NewWrite::Comment {
                uid: format!("c-{k}"),
                story: 2,
                author: 1,
                body: format!("comment {k}"),
            };
            db.insert(k as u64 + 1, &comment).await.unwrap();
        }
        let two = db.story(101, 2).await.unwrap().unwrap();
        assert_eq!(two.comments.len(), 20, "one page");
        assert_eq!(two.comments[0], "comment 39");
        assert_eq!(two.comments[19], "comment 15");
    }

    #[sim_runtime::test]
    async fn the_database_down_is_a_transient_error_and_health_says_so() {
        let params = Params::default();
        let deps = start(&params).await;
        let (db, health) = (deps.db(&params, true), deps.health(params.health_timeout));
        assert!(health.database_reachable().await);
        deps.stores().db_down();
        let e = db.story(1, 1).await.unwrap_err();
        assert!(e.is_transient(), "{e:?}");
        assert!(!health.database_reachable().await);
        deps.stores().db_up();
        deps.stores().db.ready().await;
        assert!(health.database_reachable().await);
        assert!(db.story(2, 1).await.unwrap().is_some());
    }

    #[sim_runtime::test]
    async fn the_pool_bounds_the_wait_for_a_connection_only_when_told_to() {
        let params = Params {
            pool_size: 1,
            ..Params::default()
        };
        let deps = start(&params).await;
        deps.queries_slow(Duration::from_secs(10));
        let db = deps.db(&params, true);
        let busy = db.clone();
        let hog = sim_runtime::spawn(async move { busy.story(1, 1).await });
        sim_runtime::time::sleep(Duration::from_millis(10)).await;
        let start = now();
        let e = db.story(2, 1).await.unwrap_err();
        assert!(e.is_transient());
        assert_eq!(now() - start, params.acquire_timeout);
        assert!(hog.await.unwrap().unwrap().is_some());

        let unbounded = deps.db(&params, false);
        let busy = unbounded.clone();
        let hog = sim_runtime::spawn(async move { busy.story(3, 1).await });
        sim_runtime::time::sleep(Duration::from_millis(10)).await;
        let start = now();
        assert!(unbounded.story(4, 1).await.unwrap().is_some());
        assert!(now() - start > Duration::from_secs(9), "waited for the hog");
        assert!(hog.await.unwrap().unwrap().is_some());
    }

    #[sim_runtime::test]
    async fn cache_limiter_and_write_behind_round_trip_and_fail_with_redis() {
        let params = Params::default();
        let deps = start(&params).await;
        let cache = deps.cache(params.redis_timeout, params.cache_ttl);
        let s = Story {
            id: 7,
            title: "t".into(),
            body: "b".into(),
            comments: vec![],
        };
        assert_eq!(cache.get(7).await.unwrap(), None);
        cache.put(&s).await.unwrap();
        assert_eq!(cache.get(7).await.unwrap(), Some(s));
        cache.invalidate(7).await.unwrap();
        assert_eq!(cache.get(7).await.unwrap(), None);

        let limiter = deps.rate_limit(params.redis_timeout, 2, Duration::from_secs(1));
        let at = now();
        let allowed = [
            limiter.allow("a", at).await.unwrap(),
            limiter.allow("a", at).await.unwrap(),
            limiter.allow("a", at).await.unwrap(),
            limiter.allow("b", at).await.unwrap(),
        ];
        assert_eq!(allowed, [true, true, false, true]);

        let wb = deps.write_behind(params.redis_timeout);
        wb.push(&story("w-1")).await.unwrap();
        assert_eq!(wb.pop().await.unwrap(), Some(story("w-1")));
        wb.push(&story("w-2")).await.unwrap();
        deps.stores().redis_down();
        assert!(cache.get(7).await.is_err());
        assert!(limiter.allow("a", now()).await.is_err());
        deps.stores().redis_up();
        sim_runtime::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            wb.pop().await.unwrap(),
            None,
            "a crash took the parked write"
        );
    }
}
