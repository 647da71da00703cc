//! Interdomestik's API: an agent registers a member (`POST /agents/{agent}/members`), or a
//! member registers with an agent's referral (`POST /register`); a registered member
//! submits a claim with its documents (`POST /claims`); each API instance also runs the
//! outbox relay that sends the emails not sent at once.
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
//! - A claim is one transaction too, retried the same way: the member's account is read
//!   with its subscription (no subscription, no claim: 403), then the claim, its documents
//!   and the receipt email in the outbox. Its reference is the client's, unique, so a
//!   claim is stored once however often it is sent. Claims have their own rate limit of 5
//!   per client per minute ("configured per endpoint").
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
//!   the request in another: concurrent requests all see room (on both endpoints, which
//!   share the limiter).

use std::cell::{Cell, RefCell};
use std::future::Future;

use serde::{Deserialize, Serialize};
use sim_net::Addr;
use sim_runtime::time::{now, sleep, Instant};
use sim_runtime::trace::{self, TraceEvent};
use sim_runtime::SimRng;

use super::deps::{
    send_email, ClaimFiled, Db, DepError, Email, EmailResponse, Member, RateLimit, Tx, TxError,
};
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

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Call {
    Register(Registration),
    SubmitClaim(Claim),
}

impl Call {
    /// The endpoint, as the rate limit counts it.
    fn endpoint(&self) -> &'static str {
        match self {
            Call::Register(_) => "register",
            Call::SubmitClaim(_) => "claims",
        }
    }
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
pub struct Registration {
    pub path: Path,
    pub email: String,
    pub agent: i64,
    pub plan: i64,
}

/// `POST /claims`: a member's claim under the client's reference, with the names of the
/// documents uploaded with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub member: String,
    pub reference: String,
    pub documents: Vec<String>,
}

/// The API's answer, as HTTP would carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiResponse {
    /// 201: the member is registered, or the claim filed.
    Created,
    /// 403: the member has no subscription to claim under.
    Forbidden,
    /// 409: the email is registered already, or the claim's reference taken.
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
            ApiResponse::Created => 201,
            ApiResponse::Forbidden => 403,
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

/// Why a registration or a claim failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Db(#[from] TxError),
    #[error(transparent)]
    Email(#[from] EmailError),
    #[error("no subscription")]
    NotSubscribed,
}

impl From<DepError> for RequestError {
    fn from(e: DepError) -> Self {
        RequestError::Db(TxError::Failed(e))
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
        let bucket = format!("{}:{}", req.call.endpoint(), req.client);
        match self.within_limit(&bucket, &request).await {
            Ok(true) => {}
            Ok(false) => return ApiResponse::TooManyRequests,
            Err(e) => {
                return ApiResponse::Unavailable {
                    reason: format!("rate limiter: {e}"),
                }
            }
        }
        let done = match &req.call {
            Call::Register(r) => {
                let member = Member {
                    email: &r.email,
                    client: &req.client,
                    agent: r.agent,
                    plan: r.plan,
                    received,
                };
                self.register(&member, r.path).await
            }
            Call::SubmitClaim(c) => self.submit_claim(c, &req.client, received).await,
        };
        match done {
            Ok(()) => ApiResponse::Created,
            Err(RequestError::Db(TxError::Failed(DepError::Taken))) => ApiResponse::Conflict,
            Err(RequestError::NotSubscribed) => ApiResponse::Forbidden,
            Err(e @ RequestError::Db(TxError::Conflict(_))) => ApiResponse::Failed {
                reason: e.to_string(),
            },
            Err(e) => ApiResponse::Unavailable {
                reason: e.to_string(),
            },
        }
    }

    async fn within_limit(&self, bucket: &str, request: &str) -> Result<bool, DepError> {
        let at = now();
        if self.variant == Variant::RateLimitRace {
            // The bug: the count and the add are two round trips apart.
            if self.limiter.count(bucket, at).await? >= self.limiter.limit() {
                return Ok(false);
            }
            self.limiter.add(bucket, request, at).await?;
            return Ok(true);
        }
        self.limiter.allow(bucket, request, at).await
    }

    async fn register(&self, m: &Member<'_>, path: Path) -> Result<(), RequestError> {
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
            self.send_queued(outbox, Email::welcome(m.email)).await;
        }
        Ok(())
    }

    /// Sends an email queued in the outbox by a committed transaction: outside the
    /// transaction, so a failure leaves the row for the relay.
    async fn send_queued(&self, outbox: i64, email: Email) {
        if self.send(email).await.is_ok() {
            let _ = self.db.email_sent(outbox).await;
        }
    }

    /// `POST /claims`: the claim, its documents and its receipt in one transaction, then
    /// the receipt sent as a registration's welcome is.
    async fn submit_claim(
        &self,
        c: &Claim,
        client: &str,
        received: Instant,
    ) -> Result<(), RequestError> {
        let receipt = Email::claim_receipt(&c.member, &c.reference);
        let outbox = self
            .with_transaction_retry(|| self.write_claim(c, client, received, &receipt))
            .await?;
        self.send_queued(outbox, receipt).await;
        Ok(())
    }

    /// The claim in one transaction; its receipt's outbox id.
    async fn write_claim(
        &self,
        c: &Claim,
        client: &str,
        received: Instant,
        receipt: &Email,
    ) -> Result<i64, RequestError> {
        self.in_transaction(async |tx: &mut Tx| {
            let account = tx
                .subscribed_account(&c.member)
                .await?
                .ok_or(RequestError::NotSubscribed)?;
            let claim = tx
                .insert_claim(&ClaimFiled {
                    reference: &c.reference,
                    client,
                    account,
                    received,
                })
                .await?;
            tx.attach_documents(claim, &c.documents).await?;
            Ok(tx.queue_email(account, receipt).await?)
        })
        .await
    }

    /// The document's `withTransactionRetry(operation, {maxRetries: 3, baseDelay: 100,
    /// backoffFactor: 2})`: conflicts run the transaction again after a backoff.
    async fn with_transaction_retry<T, F, Fut>(&self, mut op: F) -> Result<T, RequestError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, RequestError>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Err(RequestError::Db(TxError::Conflict(reason)))
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
        body: impl AsyncFnOnce(&mut Tx) -> Result<T, RequestError>,
    ) -> Result<T, RequestError> {
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
    async fn write_registration(&self, m: &Member<'_>, path: Path) -> Result<i64, RequestError> {
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
            let welcome = Email::welcome(m.email);
            let outbox = tx.queue_email(account, &welcome).await?;
            if self.variant == Variant::EmailInTransaction {
                // The bug: the email call runs while the transaction holds its connection
                // and its row locks, and its failure aborts the registration.
                self.send(welcome).await?;
                tx.email_sent_now(outbox).await?;
            }
            Ok(outbox)
        })
        .await
    }

    /// `two_transactions`, the first: the account, the agent's count and the link.
    async fn write_account_alone(&self, m: &Member<'_>) -> Result<i64, RequestError> {
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
    ) -> Result<i64, RequestError> {
        self.in_transaction(async |tx: &mut Tx| {
            tx.lock_plan(m.plan).await?;
            tx.insert_subscription(account, m.plan).await?;
            Ok(tx.queue_email(account, &Email::welcome(m.email)).await?)
        })
        .await
    }

    /// `circuitBreakers.email.execute(() => emailService.send(data))`.
    async fn send(&self, email: Email) -> Result<EmailResponse, EmailError> {
        let timeout = self.params.email_timeout;
        Ok(self
            .email_breaker
            .call(|| send_email(self.email, email, timeout))
            .await??)
    }

    /// The outbox relay: every `relay_every`, sends the emails still waiting, in order,
    /// until one fails (the breaker then keeps the others from piling on).
    pub async fn relay_forever(&self) {
        loop {
            sleep(self.params.relay_every).await;
            if self.email_breaker.try_acquire().is_err() {
                continue;
            }
            let Ok(waiting) = self.db.unsent_emails(RELAY_BATCH).await else {
                continue;
            };
            for (outbox, email) in waiting {
                if self.send(email).await.is_err() {
                    break;
                }
                let _ = self.db.email_sent(outbox).await;
            }
        }
    }
}

/// Emails a relay round takes.
const RELAY_BATCH: i64 = 20;
