//! The story backend's service logic: one API instance (read a story, post a story or a
//! comment, the health endpoint) and, in the write-behind variant, its flusher.
//!
//! ## The correct variant
//! - Middleware first: the per-client rate limit (a Redis counter per window; 429 past
//!   the limit). It fails open: a limiter that cannot count lets the request through
//!   rather than take the API down with Redis.
//! - Reads go to the cache first; a miss or a cache error falls through to the database
//!   (the cache fails open) and a story read from the database is cached again.
//! - A write is one idempotent INSERT (keyed by the client's uid), acknowledged only once
//!   it is committed; a comment then drops its story's cached copy.
//! - Every database call passes the circuit breaker; a call that failed for want of a
//!   connection or the network is retried with exponential backoff and full jitter, at
//!   most `retry.attempts_max` attempts, and none starts past `retry_budget` of the
//!   request. Waiting for a pooled connection is bounded (`acquire_timeout`), every
//!   statement by the 30 s statement timeout, and the whole request by the 30 s request
//!   timeout (504 past it).
//! - `GET /health` runs a trivial query on a connection of its own with a short timeout: 200
//!   when the database answers, 503 when it does not, even if the request pool is busy.
//! - The process holds its base memory for its life, and a response's buffer once its
//!   query returned: over the container's budget, the OOM killer ends the instance.
//!
//! ## The buggy variants, each one small, realistic mistake
//! - `no_pool_timeout`: the pool's acquire timeout and the request timeout are left unset
//!   (wait forever): only the 30 s statement timeout bounds anything, so a request queued
//!   for a connection behind slow queries waits as long as they take.
//! - `cache_fail_closed`: a cache error is returned to the client as 500 instead of
//!   falling through to the database.
//! - `write_behind_cache`: a write goes to a Redis list and is acknowledged at once; a
//!   flusher moves the list to the database later. Redis keeps no persistence (it is a
//!   cache), so a crash loses acknowledged writes.
//! - `retry_storm`: the retry loop sits inside the breaker (which sees one call) and
//!   retries every `storm_pause` with no cap until the request timeout.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use sim_runtime::node::{compute, reserve_memory, MemoryGuard};
use sim_runtime::time::{self, now, sleep, Instant};
use sim_runtime::trace::{self, TraceEvent};
use sim_runtime::SimRng;

use super::deps::{Cache, Db, DbError, HealthCheck, NewWrite, RateLimit, Story, WriteBehind};
use super::{Params, Variant};
use crate::patterns::CircuitBreaker;

/// The RPC port of the API instances.
pub const API_PORT: u16 = 8000;

/// A request, with the client it comes from (what the rate limit keys on).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiRequest {
    pub client: String,
    pub call: Call,
}

/// The API's endpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Call {
    /// `GET /stories/{id}`, with its comments.
    GetStory { id: i64 },
    /// `POST /stories` or `POST /stories/{id}/comments`.
    Post(NewWrite),
    /// `GET /health`.
    Health,
}

impl Call {
    pub fn endpoint(&self) -> &'static str {
        match self {
            Call::GetStory { .. } => "read",
            Call::Post(NewWrite::Story { .. }) => "post_story",
            Call::Post(NewWrite::Comment { .. }) => "post_comment",
            Call::Health => "health",
        }
    }
}

/// The API's answer, as HTTP would carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiResponse {
    /// 200 with the story.
    Story(Story),
    /// 201: the write is stored.
    Created,
    /// 200 from the health endpoint.
    Healthy,
    /// 404.
    NotFound,
    /// 429.
    TooManyRequests,
    /// 503: a dependency is down, slow or behind an open breaker; retry later.
    Unavailable,
    /// 504: the request ran out of its time (the request timeout) before it was done.
    DeadlineExceeded,
    /// 500.
    Failed { reason: String },
}

impl ApiResponse {
    pub fn status(&self) -> u16 {
        match self {
            ApiResponse::Story(_) | ApiResponse::Healthy => 200,
            ApiResponse::Created => 201,
            ApiResponse::NotFound => 404,
            ApiResponse::TooManyRequests => 429,
            ApiResponse::Unavailable => 503,
            ApiResponse::DeadlineExceeded => 504,
            ApiResponse::Failed { .. } => 500,
        }
    }
}

/// The access log line of one request (`http.access`), with how the cache served it
/// (`hit`, `miss`, `error`, or empty when the endpoint does not read it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TraceEvent)]
#[trace_event(name = "http.access")]
pub struct Access {
    pub request: u64,
    pub instance: u32,
    pub endpoint: &'static str,
    pub status: u16,
    pub cache: &'static str,
    /// When the request arrived and how long it took to answer, in µs of virtual time.
    pub received_us: u64,
    pub took_us: u64,
}

/// What a database call ended in, as the handler sees it.
enum Refused {
    BreakerOpen,
    Db(DbError),
}

/// One API instance.
pub struct Api {
    pub instance: u32,
    pub variant: Variant,
    pub params: Params,
    pub db: Db,
    pub health: HealthCheck,
    pub cache: Cache,
    pub limiter: RateLimit,
    pub write_behind: WriteBehind,
    pub breaker: CircuitBreaker,
    pub rng: RefCell<SimRng>,
    pub requests: Cell<u32>,
    /// The process's own memory, held for its life.
    pub base_memory: MemoryGuard,
}

impl Api {
    fn next_request(&self) -> u64 {
        let (_, incarnation) = sim_runtime::node::current_with_incarnation();
        let seq = self.requests.get();
        self.requests.set(seq + 1);
        // Never 0: request 0 is the flusher's, which serves no request.
        (u64::from(self.instance + 1) << 48) | (u64::from(incarnation) << 32) | u64::from(seq)
    }

    pub async fn handle(&self, req: ApiRequest) -> ApiResponse {
        let request = self.next_request();
        let received = now();
        let endpoint = req.call.endpoint();
        let cache = Cell::new("");
        let work = self.route(request, received, &req, &cache);
        let response = if self.variant == Variant::NoPoolTimeout {
            // The bug's other half: only the statement timeout bounds anything.
            work.await
        } else {
            // The request timeout bounds the whole request, whatever it waits for (a
            // story read is two statements, each of which may be slow).
            time::timeout(self.params.request_timeout, work)
                .await
                .unwrap_or(ApiResponse::DeadlineExceeded)
        };
        trace::emit(&Access {
            request,
            instance: self.instance,
            endpoint,
            status: response.status(),
            cache: cache.get(),
            received_us: received.elapsed_since_start().as_micros() as u64,
            took_us: (now() - received).as_micros() as u64,
        });
        response
    }

    async fn route(
        &self,
        request: u64,
        received: Instant,
        req: &ApiRequest,
        cache: &Cell<&'static str>,
    ) -> ApiResponse {
        // Parsing and routing.
        compute(self.params.request_cost).await;
        // Fails open: a limiter that cannot count must not take the API down with Redis.
        // Health checks are not limited: the load balancer must always get an answer.
        if req.call != Call::Health {
            if let Ok(false) = self.limiter.allow(&req.client, received).await {
                return ApiResponse::TooManyRequests;
            }
        }
        let response = match &req.call {
            Call::Health => {
                return if self.health.database_reachable().await {
                    ApiResponse::Healthy
                } else {
                    ApiResponse::Unavailable
                };
            }
            Call::GetStory { id } => self.read(request, received, *id, cache).await,
            Call::Post(write) => self.post(request, received, write).await,
        };
        if matches!(response, ApiResponse::Story(_) | ApiResponse::Created) {
            // The response's buffer, held while it is serialised: beyond the container's
            // budget this is where the OOM killer strikes.
            let _buffer = reserve_memory(self.params.response_memory).await;
            compute(self.params.request_cost).await;
        }
        response
    }

    async fn read(
        &self,
        request: u64,
        received: Instant,
        id: i64,
        cache: &Cell<&'static str>,
    ) -> ApiResponse {
        match self.cache.get(id).await {
            Ok(Some(story)) => {
                cache.set("hit");
                return ApiResponse::Story(story);
            }
            Ok(None) => cache.set("miss"),
            Err(e) => {
                cache.set("error");
                if self.variant == Variant::CacheFailClosed {
                    // The bug: the cache's error is the request's.
                    return ApiResponse::Failed {
                        reason: e.to_string(),
                    };
                }
            }
        }
        match self.with_db(received, || self.db.story(request, id)).await {
            Ok(Some(story)) => {
                // Best effort: a cache that cannot take it now is filled on a later read.
                let _ = self.cache.put(&story).await;
                ApiResponse::Story(story)
            }
            Ok(None) => ApiResponse::NotFound,
            Err(refused) => unavailable(refused),
        }
    }

    async fn post(&self, request: u64, received: Instant, write: &NewWrite) -> ApiResponse {
        if self.variant == Variant::WriteBehindCache {
            // The bug: acknowledged once parked in Redis, before the database has it.
            return match self.write_behind.push(write).await {
                Ok(()) => ApiResponse::Created,
                Err(_) => ApiResponse::Unavailable,
            };
        }
        match self
            .with_db(received, || self.db.insert(request, write))
            .await
        {
            Ok(()) => {
                if let Some(story) = write.story() {
                    // With Redis down its cache went with it: nothing stale to drop.
                    let _ = self.cache.invalidate(story).await;
                }
                ApiResponse::Created
            }
            Err(refused) => unavailable(refused),
        }
    }

    /// Runs one database call through the breaker, with the retry policy.
    async fn with_db<T, F, Fut>(&self, received: Instant, op: F) -> Result<T, Refused>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, DbError>>,
    {
        if self.variant == Variant::RetryStorm {
            return self.with_db_storming(received, op).await;
        }
        let policy = self.params.retry;
        let mut attempts = 0;
        loop {
            if self.breaker.try_acquire().is_err() {
                return Err(Refused::BreakerOpen);
            }
            let e = match op().await {
                Ok(v) => {
                    self.breaker.record_success();
                    return Ok(v);
                }
                Err(e) => e,
            };
            self.breaker.record_failure();
            attempts += 1;
            let in_budget = now() - received < self.params.retry_budget;
            if !e.is_transient() || !policy.allows(attempts) || !in_budget {
                return Err(Refused::Db(e));
            }
            let pause = policy.delay(attempts - 1, &mut self.rng.borrow_mut());
            sleep(pause).await;
        }
    }

    /// The buggy retry: inside the breaker, a fixed short pause, no cap but the request
    /// timeout.
    async fn with_db_storming<T, F, Fut>(&self, received: Instant, op: F) -> Result<T, Refused>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, DbError>>,
    {
        if self.breaker.try_acquire().is_err() {
            return Err(Refused::BreakerOpen);
        }
        loop {
            match op().await {
                Ok(v) => {
                    self.breaker.record_success();
                    return Ok(v);
                }
                Err(e) if e.is_transient() && now() - received < self.params.request_timeout => {
                    sleep(self.params.storm_pause).await;
                }
                Err(e) => {
                    self.breaker.record_failure();
                    return Err(Refused::Db(e));
                }
            }
        }
    }

    /// The write-behind variant's flusher: moves parked writes to the database, one at
    /// a time, until its node dies.
    pub async fn flush_forever(self: Rc<Self>) {
        loop {
            sleep(self.params.flush_every).await;
            while let Ok(Some(write)) = self.write_behind.pop().await {
                let stored = self.with_db(now(), || self.db.insert(0, &write)).await;
                if stored.is_err() {
                    // Park it again for the next round; if Redis is gone too, it is lost.
                    let _ = self.write_behind.push(&write).await;
                    break;
                }
            }
        }
    }
}

fn unavailable(refused: Refused) -> ApiResponse {
    match refused {
        Refused::BreakerOpen | Refused::Db(DbError::Unavailable(_) | DbError::Timeout) => {
            ApiResponse::Unavailable
        }
        Refused::Db(DbError::Failed(reason)) => ApiResponse::Failed { reason },
    }
}
