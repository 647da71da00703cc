//! Medistream's service logic: the API (signup, login, booking, reading a booking) and the
//! queue worker that sends booking confirmations.
//!
//! ## The correct variant
//! - Middleware first: the per-client rate limit (a Redis counter per window; 429 past the
//!   limit; if Redis cannot count, the request passes rather than the API failing), then
//!   the token. A malformed, tampered or expired token is answered 401 before the handler
//!   touches the database or the queue.
//! - Passwords are hashed with bcrypt on the instance's cores. Hashes pass a bulkhead of
//!   one per core, and a hash that cannot start within `hash_wait_max` is shed with 503:
//!   the CPU queue never holds more than a core's worth of hashing per core, so a booking
//!   (which needs a little CPU too) waits at most one hash, whatever the signup load.
//! - A booking is stored in PostgreSQL first, then its confirmation is enqueued. If Redis
//!   is down the booking still succeeds, without a confirmation ("async features
//!   disabled"). Every database wait is bounded, so PostgreSQL down means a quick 503.
//! - Workers lease jobs (`active` + a lease deadline); a worker that dies mid-job loses
//!   its lease and the job runs again elsewhere, and the provider's idempotency key (the
//!   job id) keeps the patient from getting the SMS twice. Transient failures are retried
//!   with exponential backoff and full jitter up to a limit; permanent ones, and jobs out
//!   of retries, go to the dead-letter set.
//!
//! ## The buggy variants, each one small, realistic mistake
//! - `pop_then_crash_loses_job`: the worker RPOPs the job and processes it; nothing in
//!   Redis remembers it meanwhile, so a crash loses it.
//! - `auth_after_db`: the handler loads the token's user before checking the token's
//!   signature and expiry: rejected tokens cost a database query each.
//! - `retry_without_backoff`: a failed job goes straight back to pending, with no cap and
//!   no dead-letter set: a poison job loops for ever and a flaky provider gets a storm.
//! - `shared_pool_for_signup`: hashes go straight to the cores with no bulkhead: under a
//!   signup flood the CPU queue grows without bound and bookings wait behind it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use sim_net::Addr;
use sim_runtime::hash::StableHasher;
use sim_runtime::node::compute;
use sim_runtime::time::{now, sleep, Duration, Instant};
use sim_runtime::trace::{self, TraceEvent};
use sim_runtime::SimRng;

use super::deps::{send_sms, Db, DepError, RateLimit, SmsRequest, SmsResponse};
use super::jobs::{Job, JobQueue};
use super::{Params, Variant};
use crate::patterns::Bulkhead;

/// The RPC port of the API instances.
pub const API_PORT: u16 = 8000;

/// The key the instances sign tokens with (the deployment's JWT secret).
const TOKEN_SECRET: u64 = 0x6d65_6469_7374_7265;

/// A request, with the client it comes from (what the rate limit keys on: an API key or
/// an address).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiRequest {
    pub client: String,
    pub call: Call,
}

/// The API's endpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Call {
    /// `POST /signup`.
    Signup {
        email: String,
        password: String,
        phone: String,
    },
    /// `POST /login`.
    Login { email: String, password: String },
    /// `POST /appointments` with a bearer token.
    Book {
        token: String,
        doctor: i64,
        starts_at: i64,
    },
    /// `GET /appointments/{id}` with a bearer token.
    Read { token: String, appointment: i64 },
}

impl Call {
    pub fn endpoint(&self) -> &'static str {
        match self {
            Call::Signup { .. } => "signup",
            Call::Login { .. } => "login",
            Call::Book { .. } => "book",
            Call::Read { .. } => "read",
        }
    }
}

/// The API's answer, as HTTP would carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiResponse {
    /// 201: the patient is registered.
    SignedUp,
    /// 200 with a signed token.
    Token(String),
    /// 201: the appointment is stored; `job` is its confirmation, when one was enqueued.
    Booked {
        appointment: i64,
        job: Option<String>,
    },
    /// 200 with the appointment.
    Appointment { doctor: i64, starts_at: i64 },
    /// 401: no valid token, or wrong credentials.
    Unauthorized,
    /// 404.
    NotFound,
    /// 409: the email is registered already.
    Conflict,
    /// 429.
    TooManyRequests,
    /// 503: overloaded or a dependency is down; retry later.
    Unavailable,
}

impl ApiResponse {
    pub fn status(&self) -> u16 {
        match self {
            ApiResponse::SignedUp | ApiResponse::Booked { .. } => 201,
            ApiResponse::Token(_) | ApiResponse::Appointment { .. } => 200,
            ApiResponse::Unauthorized => 401,
            ApiResponse::NotFound => 404,
            ApiResponse::Conflict => 409,
            ApiResponse::TooManyRequests => 429,
            ApiResponse::Unavailable => 503,
        }
    }
}

/// The access log line of one request (`http.access`): what a reverse proxy writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TraceEvent)]
#[trace_event(name = "http.access")]
pub struct Access {
    pub request: u64,
    pub client: String,
    pub endpoint: &'static str,
    pub status: u16,
    /// When the request arrived, in ms of virtual time.
    pub received_us: u64,
}

/// A job changing state in a worker (`medistream.job`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TraceEvent)]
#[trace_event(name = "medistream.job")]
pub struct JobTransition {
    pub job: String,
    /// `started`, `completed`, `retry`, `archived` or `requeued`.
    pub to: &'static str,
    pub attempt: u32,
}

/// A token: `{user}.{expiry in ms}.{signature}`, the shape of a JWT's claims and MAC.
fn sign(user: i64, expires_ms: u64) -> String {
    let mut h = StableHasher::new();
    h.write_u64(TOKEN_SECRET);
    h.write_u64(user as u64);
    h.write_u64(expires_ms);
    format!("{user}.{expires_ms}.{:016x}", h.finish())
}

/// The user a token claims, read without checking it (what `jwt.decode` without
/// verification gives).
fn claimed_user(token: &str) -> Option<i64> {
    token.split('.').next()?.parse().ok()
}

/// The token's user if its signature holds and it has not expired at `at`.
pub fn verify(token: &str, at: Instant) -> Option<i64> {
    let mut parts = token.split('.');
    let user: i64 = parts.next()?.parse().ok()?;
    let expires_ms: u64 = parts.next()?.parse().ok()?;
    let valid = parts.next().is_some() && parts.next().is_none() && sign(user, expires_ms) == token;
    (valid && at.elapsed_since_start().as_millis() < u128::from(expires_ms)).then_some(user)
}

/// A bcrypt stand-in: the CPU time is the point, the text only has to be stable.
fn bcrypt_text(password: &str) -> String {
    let mut h = StableHasher::new();
    h.write_str(password);
    format!("$2b$10${:016x}", h.finish())
}

/// One API instance.
pub struct Api {
    pub instance: u32,
    pub variant: Variant,
    pub params: Params,
    pub db: Db,
    pub limiter: RateLimit,
    pub queue: JobQueue,
    /// One hashing slot per core.
    pub hashing: Bulkhead,
    pub requests: Cell<u32>,
}

impl Api {
    fn next_request(&self) -> u64 {
        let (_, incarnation) = sim_runtime::node::current_with_incarnation();
        let seq = self.requests.get();
        self.requests.set(seq + 1);
        (u64::from(self.instance) << 48) | (u64::from(incarnation) << 32) | u64::from(seq)
    }

    pub async fn handle(&self, req: ApiRequest) -> ApiResponse {
        let request = self.next_request();
        let received = now();
        let endpoint = req.call.endpoint();
        let response = self.middleware(request, received, &req).await;
        trace::emit(&Access {
            request,
            client: req.client,
            endpoint,
            status: response.status(),
            received_us: received.elapsed_since_start().as_micros() as u64,
        });
        response
    }

    async fn middleware(&self, request: u64, received: Instant, req: &ApiRequest) -> ApiResponse {
        // Parsing, routing and the token's MAC.
        compute(self.params.request_cost).await;
        // Fails open: a limiter that cannot count must not take the API down with it.
        if let Ok(false) = self.limiter.allow(&req.client, received).await {
            return ApiResponse::TooManyRequests;
        }
        match &req.call {
            Call::Signup {
                email,
                password,
                phone,
            } => self.signup(request, email, password, phone).await,
            Call::Login { email, password } => self.login(request, email, password).await,
            Call::Book {
                token,
                doctor,
                starts_at,
            } => match self.authenticate(request, token).await {
                Ok(user) => self.book(request, user, *doctor, *starts_at).await,
                Err(denied) => denied,
            },
            Call::Read { token, appointment } => match self.authenticate(request, token).await {
                Ok(user) => self.read(request, user, *appointment).await,
                Err(denied) => denied,
            },
        }
    }

    /// The token's user, or the answer that ends the request.
    async fn authenticate(&self, request: u64, token: &str) -> Result<i64, ApiResponse> {
        if self.variant == Variant::AuthAfterDb {
            // The bug: the user is loaded from the unverified claims first.
            if let Some(user) = claimed_user(token) {
                if let Err(e) = self.db.phone(request, user).await {
                    return Err(unavailable(e));
                }
            }
        }
        verify(token, now()).ok_or(ApiResponse::Unauthorized)
    }

    /// bcrypt on one of the instance's cores; `None` when shed.
    async fn hash(&self, password: &str) -> Option<String> {
        let _permit = if self.variant == Variant::SharedPoolForSignup {
            None
        } else {
            Some(self.hashing.acquire(self.params.hash_wait_max).await.ok()?)
        };
        compute(self.params.hash_cost).await;
        Some(bcrypt_text(password))
    }

    async fn signup(&self, request: u64, email: &str, password: &str, phone: &str) -> ApiResponse {
        let Some(hash) = self.hash(password).await else {
            return ApiResponse::Unavailable;
        };
        match self.db.insert_user(request, email, &hash, phone).await {
            Ok(_) => ApiResponse::SignedUp,
            Err(DepError::Taken) => ApiResponse::Conflict,
            Err(e) => unavailable(e),
        }
    }

    async fn login(&self, request: u64, email: &str, password: &str) -> ApiResponse {
        let stored = match self.db.credentials(request, email).await {
            Ok(Some(c)) => c,
            Ok(None) => return ApiResponse::Unauthorized,
            Err(e) => return unavailable(e),
        };
        // bcrypt's compare costs a hash.
        let Some(hash) = self.hash(password).await else {
            return ApiResponse::Unavailable;
        };
        if hash != stored.password_hash {
            return ApiResponse::Unauthorized;
        }
        let expires = now() + self.params.token_ttl;
        ApiResponse::Token(sign(
            stored.user,
            expires.elapsed_since_start().as_millis() as u64,
        ))
    }

    async fn book(&self, request: u64, user: i64, doctor: i64, starts_at: i64) -> ApiResponse {
        let phone = match self.db.phone(request, user).await {
            Ok(Some(p)) => p,
            Ok(None) => return ApiResponse::Unauthorized,
            Err(e) => return unavailable(e),
        };
        let appointment = match self
            .db
            .insert_appointment(request, user, doctor, starts_at)
            .await
        {
            Ok(id) => id,
            Err(e) => return unavailable(e),
        };
        // The confirmation is best effort: with Redis down the booking stands without it.
        let id = format!("confirm:{appointment}");
        let text = format!("Appointment {appointment} with doctor {doctor} at {starts_at}");
        let job = match self.queue.enqueue(&id, &phone, &text).await {
            Ok(_) => Some(id),
            Err(_) => None,
        };
        ApiResponse::Booked { appointment, job }
    }

    async fn read(&self, request: u64, user: i64, appointment: i64) -> ApiResponse {
        match self.db.appointment(request, user, appointment).await {
            Ok(Some((doctor, starts_at))) => ApiResponse::Appointment { doctor, starts_at },
            Ok(None) => ApiResponse::NotFound,
            Err(e) => unavailable(e),
        }
    }
}

fn unavailable(_: DepError) -> ApiResponse {
    ApiResponse::Unavailable
}

/// One worker process: `concurrency` processors taking jobs, and Asynq's forwarder and
/// recoverer keeping the retry set and the leases moving.
pub struct Worker {
    pub variant: Variant,
    pub params: Params,
    pub queue: JobQueue,
    pub provider: Addr,
    pub rng: RefCell<SimRng>,
}

/// How often the forwarder and the recoverer look.
const HOUSEKEEPING_EVERY: Duration = Duration::from_millis(500);

impl Worker {
    /// Runs the worker's tasks until its node dies.
    pub async fn run(self: Rc<Self>) {
        let mut tasks = Vec::new();
        for _ in 0..self.params.worker_concurrency {
            let w = Rc::clone(&self);
            tasks.push(sim_runtime::spawn_named("processor", async move {
                w.process_forever().await
            }));
        }
        let w = Rc::clone(&self);
        tasks.push(sim_runtime::spawn_named("housekeeper", async move {
            w.housekeep_forever().await
        }));
        for t in tasks {
            let _ = t.await;
        }
    }

    async fn process_forever(&self) {
        loop {
            let next = if self.variant == Variant::PopThenCrashLosesJob {
                self.queue.pop().await
            } else {
                self.queue.dequeue(now() + self.params.lease).await
            };
            match next {
                Ok(Some(job)) => self.process(job).await,
                // Empty, or Redis unreachable: look again later.
                _ => sleep(self.params.poll_interval).await,
            }
        }
    }

    async fn process(&self, job: Job) {
        let attempt = job.retried + 1;
        transition(&job.id, "started", attempt);
        let sms = SmsRequest {
            idempotency_key: job.id.clone(),
            to: job.phone.clone(),
            text: job.text.clone(),
        };
        let outcome = send_sms(self.provider, sms, self.params.provider_timeout).await;
        // Acknowledging needs Redis; until it answers, the job stays leased (and its
        // lease runs out if Redis stays away).
        let _ = match outcome {
            Ok(SmsResponse::Sent | SmsResponse::Duplicate) => {
                transition(&job.id, "completed", attempt);
                self.queue.complete(&job.id, now()).await
            }
            Ok(SmsResponse::InvalidNumber) => self.failed(&job, true).await,
            Ok(SmsResponse::Unavailable) | Err(_) => self.failed(&job, false).await,
        };
    }

    /// A failed attempt: retry with backoff while the policy allows, else dead letters.
    async fn failed(&self, job: &Job, permanent: bool) -> Result<bool, DepError> {
        let attempt = job.retried + 1;
        if self.variant == Variant::RetryWithoutBackoff {
            transition(&job.id, "requeued", attempt);
            return self.queue.requeue(&job.id).await;
        }
        self.retry_or_archive(&job.id, job.retried, permanent).await
    }

    async fn retry_or_archive(
        &self,
        id: &str,
        retried: u32,
        permanent: bool,
    ) -> Result<bool, DepError> {
        let attempt = retried + 1;
        if permanent || !self.params.retry.allows(attempt) {
            transition(id, "archived", attempt);
            return self.queue.archive(id, now()).await;
        }
        let delay = self.params.retry.delay(retried, &mut self.rng.borrow_mut());
        transition(id, "retry", attempt);
        self.queue.retry(id, now() + delay).await
    }

    async fn housekeep_forever(&self) {
        loop {
            sleep(HOUSEKEEPING_EVERY).await;
            let t = now();
            let _ = self.queue.forward_due(t).await;
            // A lease that ran out belongs to a worker that died mid-job: the attempt
            // counts as failed, as Asynq's recoverer counts it.
            if let Ok(expired) = self.queue.expired_leases(t).await {
                for (id, retried) in expired {
                    if self.variant == Variant::RetryWithoutBackoff {
                        let _ = self.queue.requeue(&id).await;
                    } else {
                        let _ = self.retry_or_archive(&id, retried, false).await;
                    }
                }
            }
        }
    }
}

fn transition(job: &str, to: &'static str, attempt: u32) {
    trace::emit(&JobTransition {
        job: job.to_string(),
        to,
        attempt,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_holds_until_it_expires_and_not_once_touched() {
        let t = sign(7, 1_000);
        let at = |ms: u64| Instant::START + Duration::from_millis(ms);
        assert_eq!(verify(&t, at(999)), Some(7));
        assert_eq!(verify(&t, at(1_000)), None, "expired");
        let tampered = t.replacen('7', "8", 1);
        assert_eq!(verify(&tampered, at(0)), None);
        assert_eq!(claimed_user(&tampered), Some(8), "the claims still read");
        assert_eq!(verify("garbage", at(0)), None);
        assert_eq!(claimed_user("garbage"), None);
    }
}
