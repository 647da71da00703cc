//! Interdomestik's registration API: an agent registers a member
//! (`POST /agents/{agent}/members`), or a member registers with an agent's referral
//! (`POST /register`); each API instance also runs the welcome-email outbox relay.
//!
//! ## The correct variant
//! - Rate limit first: 5 registrations per client per minute, counted and decided in one
//!   Redis script (a sliding-window log), so concurrent requests cannot both take the last
//!   place. A limiter that cannot answer refuses (503): registration is what the limit
//!   protects.
//! - One transaction writes the account, counts the member on the agent's row and the
//!   subscriber on the plan's row, writes the subscription and the agent-client link and
//!   queues the welcome email in the outbox: all of it or none.
//! - Both registration paths lock the agent's row before the plan's: one global order,
//!   so two registrations never wait on each other in a cycle.
//! - `withTransactionRetry`: a serialization failure or a deadlock rolls back and runs the
//!   transaction again after an exponential, jittered backoff (3 retries, 100 ms base).
//! - After the commit, the welcome email goes out through the email circuit breaker; if it
//!   cannot (the service is down or the breaker open), the registration still succeeds and
//!   the outbox relay sends it once the service is back.
//!
//! ## The buggy variants, each one small, realistic mistake
//! - `inconsistent_lock_order`: the self-registration path counts the subscriber on the
//!   plan before counting the member on the agent; the agent path does the opposite.
//! - `two_transactions`: the account (with the agent's count and link) commits, then the
//!   subscription and the outbox row in a second transaction: a crash or an outage between
//!   the two leaves an account without a subscription.
//! - `email_in_transaction`: the welcome email is sent before the commit, inside the open
//!   transaction: a slow or hung email service holds a pooled connection per registration,
//!   and an email failure rolls the registration back.
//! - `rate_limit_race`: the limiter counts the client's window in one command and adds
//!   the request in another: concurrent requests all see room.

use std::cell::{Cell, RefCell};
use std::future::Future;

use serde::{Deserialize, Serialize};
use sim_net::Addr;
use sim_runtime::time::{now, sleep};
use sim_runtime::trace::{self, TraceEvent};
use sim_runtime::SimRng;

use super::deps::{send_welcome, Db, DepError, EmailResponse, Member, RateLimit, Tx, TxError};
use super::{Params, Variant};
use crate::patterns::breaker::BreakerOpen;
use crate::patterns::CircuitBreaker;

/// The RPC port of the API instances.
pub const API_PORT: u16 = 8000;

/// A request, with the client it comes from (what the rate limit keys on: the agent's API
/// key, or the member's address).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiRequest {
    pub client: String,
    pub call: Call,
}

/// Which registration path a request takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Path {
    /// `POST /agents/{agent}/members`.
    ByAgent,
    /// `POST /register` with the agent's referral code.
    SelfService,
}

/// A registration: the member's email, their agent and their plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub path: Path,
    pub email: String,
    pub agent: i64,
    pub plan: i64,
}

/// The API's answer, as HTTP would carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiResponse {
    /// 201.
    Registered,
    /// 409: the email is registered already.
    Conflict,
    /// 429.
    TooManyRequests,
    /// 503: a dependency is unavailable; retry later.
    Unavailable { reason: String },
    /// 500: the registration failed (a conflict that outlived its retries).
    Failed { reason: String },
}

impl ApiResponse {
    pub fn status(&self) -> u16 {
        match self {
            ApiResponse::Registered => 201,
            ApiResponse::Conflict => 409,
            ApiResponse::TooManyRequests => 429,
            ApiResponse::Unavailable { .. } => 503,
            ApiResponse::Failed { .. } => 500,
        }
    }

    /// The error body of a 5xx.
    pub fn reason(&self) -> &str {
        match self {
            ApiResponse::Unavailable { reason } | ApiResponse::Failed { reason } => reason,
            _ => "",
        }
    }
}

/// A transaction run again after a conflict (`interdomestik.tx_retry`): the document's
/// "watch for transaction retry rates".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TraceEvent)]
#[trace_event(name = "interdomestik.tx_retry")]
pub struct TxRetry {
    pub instance: u32,
    pub attempt: u32,
    pub reason: String,
}

/// Why a welcome email did not go out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error(transparent)]
    Open(#[from] BreakerOpen),
    #[error("email service: {0}")]
    Call(#[from] sim_net::RpcError),
}

/// Why a registration failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    #[error(transparent)]
    Db(#[from] TxError),
    #[error(transparent)]
    Email(#[from] EmailError),
}

impl From<DepError> for RegistrationError {
    fn from(e: DepError) -> Self {
        RegistrationError::Db(TxError::Failed(e))
    }
}

/// One API instance.
pub struct Api {
    pub instance: u32,
    pub variant: Variant,
    pub params: Params,
    pub db: Db,
    pub limiter: RateLimit,
    pub email: Addr,
    pub email_breaker: CircuitBreaker,
    /// Draws the retries' backoff.
    pub rng: RefCell<SimRng>,
    pub requests: Cell<u32>,
}

impl Api {
    /// An id unique across instances and their restarts: the limiter's log entry.
    fn next_request(&self) -> String {
        let (_, incarnation) = sim_runtime::node::current_with_incarnation();
        let seq = self.requests.get();
        self.requests.set(seq + 1);
        format!("{}.{incarnation}.{seq}", self.instance)
    }

    pub async fn handle(&self, req: ApiRequest) -> ApiResponse {
        let received = now();
        let request = self.next_request();
        match self.within_limit(&req.client, &request).await {
            Ok(true) => {}
            Ok(false) => return ApiResponse::TooManyRequests,
            Err(e) => {
                return ApiResponse::Unavailable {
                    reason: format!("rate limiter: {e}"),
                }
            }
        }
        let member = Member {
            email: &req.call.email,
            client: &req.client,
            agent: req.call.agent,
            plan: req.call.plan,
            received,
        };
        match self.register(&member, req.call.path).await {
            Ok(()) => ApiResponse::Registered,
            Err(RegistrationError::Db(TxError::Failed(DepError::Taken))) => ApiResponse::Conflict,
            Err(e @ RegistrationError::Db(TxError::Conflict(_))) => ApiResponse::Failed {
                reason: e.to_string(),
            },
            Err(e) => ApiResponse::Unavailable {
                reason: e.to_string(),
            },
        }
    }

    async fn within_limit(&self, client: &str, request: &str) -> Result<bool, DepError> {
        let at = now();
        if self.variant == Variant::RateLimitRace {
            // The bug: the count and the add are two round trips apart.
            if self.limiter.count(client, at).await? >= self.limiter.limit() {
                return Ok(false);
            }
            self.limiter.add(client, request, at).await?;
            return Ok(true);
        }
        self.limiter.allow(client, request, at).await
    }

    async fn register(&self, m: &Member<'_>, path: Path) -> Result<(), RegistrationError> {
        let outbox = if self.variant == Variant::TwoTransactions {
            let account = self
                .with_transaction_retry(|| self.write_account_alone(m))
                .await?;
            self.with_transaction_retry(|| self.write_subscription_alone(account, m))
                .await?
        } else {
            self.with_transaction_retry(|| self.write_registration(m, path))
                .await?
        };
        if self.variant != Variant::EmailInTransaction {
            // Outside the transaction: an email failure leaves the row for the relay.
            if self.send_welcome(m.email).await.is_ok() {
                let _ = self.db.welcome_sent(outbox).await;
            }
        }
        Ok(())
    }

    /// The document's `withTransactionRetry(operation, {maxRetries: 3, baseDelay: 100,
    /// backoffFactor: 2})`: conflicts run the transaction again after a backoff.
    async fn with_transaction_retry<T, F, Fut>(&self, mut op: F) -> Result<T, RegistrationError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, RegistrationError>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Err(RegistrationError::Db(TxError::Conflict(reason)))
                    if self.params.retry.allows(attempt + 1) =>
                {
                    attempt += 1;
                    trace::emit(&TxRetry {
                        instance: self.instance,
                        attempt,
                        reason,
                    });
                    let wait = self
                        .params
                        .retry
                        .delay(attempt - 1, &mut self.rng.borrow_mut());
                    sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    /// Runs `body` in a transaction: commits what it wrote, or rolls it back.
    async fn in_transaction<T>(
        &self,
        body: impl AsyncFnOnce(&mut Tx) -> Result<T, RegistrationError>,
    ) -> Result<T, RegistrationError> {
        let mut tx = self.db.begin().await?;
        match body(&mut tx).await {
            Ok(v) => {
                tx.commit().await?;
                Ok(v)
            }
            Err(e) => {
                // A connection that failed cannot roll back; closing it does.
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    /// The whole registration in one transaction; the welcome email's outbox id.
    async fn write_registration(
        &self,
        m: &Member<'_>,
        path: Path,
    ) -> Result<i64, RegistrationError> {
        self.in_transaction(async |tx: &mut Tx| {
            let account = tx.insert_account(m).await?;
            if self.variant == Variant::InconsistentLockOrder && path == Path::SelfService {
                // The bug: this path was written plan first.
                tx.lock_plan(m.plan).await?;
                tx.lock_agent(m.agent).await?;
            } else {
                tx.lock_agent(m.agent).await?;
                tx.lock_plan(m.plan).await?;
            }
            tx.insert_subscription(account, m.plan).await?;
            tx.link_agent_client(m.agent, account).await?;
            let outbox = tx.queue_welcome(account, m.email).await?;
            if self.variant == Variant::EmailInTransaction {
                // The bug: the email call runs while the transaction holds its connection
                // and its row locks, and its failure aborts the registration.
                self.send_welcome(m.email).await?;
                tx.welcome_sent_now(outbox).await?;
            }
            Ok(outbox)
        })
        .await
    }

    /// `two_transactions`, the first: the account, the agent's count and the link.
    async fn write_account_alone(&self, m: &Member<'_>) -> Result<i64, RegistrationError> {
        self.in_transaction(async |tx: &mut Tx| {
            let account = tx.insert_account(m).await?;
            tx.lock_agent(m.agent).await?;
            tx.link_agent_client(m.agent, account).await?;
            Ok(account)
        })
        .await
    }

    /// `two_transactions`, the second: the plan's count, the subscription and the outbox.
    async fn write_subscription_alone(
        &self,
        account: i64,
        m: &Member<'_>,
    ) -> Result<i64, RegistrationError> {
        self.in_transaction(async |tx: &mut Tx| {
            tx.lock_plan(m.plan).await?;
            tx.insert_subscription(account, m.plan).await?;
            Ok(tx.queue_welcome(account, m.email).await?)
        })
        .await
    }

    /// `circuitBreakers.email.execute(() => emailService.send(data))`.
    async fn send_welcome(&self, to: &str) -> Result<EmailResponse, EmailError> {
        let timeout = self.params.email_timeout;
        Ok(self
            .email_breaker
            .call(|| send_welcome(self.email, to, timeout))
            .await??)
    }

    /// The outbox relay: every `relay_every`, sends the welcome emails still waiting, in
    /// order, until one fails (the breaker then keeps the others from piling on).
    pub async fn relay_forever(&self) {
        loop {
            sleep(self.params.relay_every).await;
            if self.email_breaker.try_acquire().is_err() {
                continue;
            }
            let Ok(waiting) = self.db.unsent_welcomes(RELAY_BATCH).await else {
                continue;
            };
            for (outbox, to) in waiting {
                if self.send_welcome(&to).await.is_err() {
                    break;
                }
                let _ = self.db.welcome_sent(outbox).await;
            }
        }
    }
}

/// Welcome emails a relay round takes.
const RELAY_BATCH: i64 = 20;
