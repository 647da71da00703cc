//! Flux-Gate's service logic, written against the simulated Redis, Kafka and PostgreSQL:
//! the ingestion API (behind a load balancer), the outbox relay, and the inventory worker.
//!
//! ## The correct variant: a Redis outbox, an idempotent worker
//!
//! The document's design decrements stock in Redis and then produces to Kafka; when Kafka
//! is down the stock is gone and the order is lost. Compensating (incrementing the stock
//! back when the produce fails) is not enough, because a produce that *timed out* may still
//! have been written: compensating then oversells. So the correct variant uses a
//! transactional outbox in Redis instead:
//!
//! 1. The API runs one atomic Redis script: if the idempotency key is known, answer the
//!    order it already made; if stock is 0, answer sold out; otherwise decrement the stock,
//!    record the key, and push the order onto an outbox list. Only then does the user get a
//!    success, so an acknowledged order is durable in Redis (AOF `always`).
//! 2. A relay on every API instance publishes outbox entries to Kafka (idempotent producer,
//!    acks=all) and removes each entry only after its acknowledgement. When Kafka is down
//!    the outbox simply grows; the API stays available.
//! 3. The worker inserts orders with `ON CONFLICT DO NOTHING` on the order id and the
//!    idempotency key and decrements `products.stock` in the same transaction, then commits
//!    its Kafka offsets. Redelivery and double publishing are therefore harmless.
//!
//! Reconciliation is structural: stock taken in Redis is always either in the outbox, in
//! Kafka, or in the database, so once the backlog drains Redis stock + orders = initial.
//!
//! ## The buggy variants, each one small, realistic mistake
//! - `check_then_decrement`: GET the stock, then SET it one lower: two users read the same
//!   value and both buy the last item.
//! - `commit_before_write`: the worker commits its offsets as soon as it polls, before the
//!   database insert: a crash in between loses the batch.
//! - `no_idempotency`: the API ignores the idempotency key (and the table has no unique
//!   constraint on it): a user's retry after a timeout buys twice.
//! - `kafka_down_no_compensation`: the document's own design: reserve in Redis, then
//!   produce to Kafka directly, and answer 500 when that fails, with the stock already gone.

use serde::{Deserialize, Serialize};
use sim_runtime::time::{sleep, Duration};
use sim_runtime::{always, buggify, sometimes, trace};

use super::deps::{Db, DepError, Kafka, KafkaConsumer, Redis, Reservation};
use super::{Params, Variant};

/// The RPC port of the API instances.
pub const API_PORT: u16 = 3000;

/// `POST /order`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    pub user: u32,
    pub idempotency_key: String,
    pub product: String,
}

/// The API's answer, as HTTP would carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderResponse {
    /// 200: the order is taken.
    Accepted { order_id: String },
    /// 409: sold out.
    SoldOut,
    /// 500/503: "Order processing failed".
    Failed { reason: String },
}

/// An order as it travels through the outbox and Kafka (JSON text in both).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: String,
    pub idempotency_key: String,
    pub user: u32,
    pub product: String,
}

impl Order {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("orders always serialise")
    }

    pub fn from_json(s: &str) -> Option<Order> {
        serde_json::from_str(s).ok()
    }
}

pub fn stock_key(product: &str) -> String {
    ["stock:", product].concat()
}

pub fn idempotency_key(key: &str) -> String {
    ["idem:", key].concat()
}

/// The worker takes an order from a batch (`worker.process`): with the orders in the
/// database, it shows which processed orders a crash lost.
#[derive(Serialize)]
pub struct Processing<'a> {
    pub order_id: &'a str,
}

impl trace::TraceEvent for Processing<'_> {
    const NAME: &'static str = "worker.process";
    type Owned = String;
    fn to_owned_event(&self) -> String {
        self.order_id.to_string()
    }
}

pub const OUTBOX: &str = "outbox:orders";
pub const TOPIC: &str = "orders";
pub const GROUP: &str = "inventory-worker";

/// One API instance's request handler.
#[derive(Clone)]
pub struct Api {
    pub instance: u32,
    pub variant: Variant,
    pub redis: Redis,
    pub kafka: Kafka,
}

impl Api {
    fn order_id(&self, req: &OrderRequest) -> String {
        // Unique per request even when keys repeat (the no_idempotency variant relies on
        // it): instance, user, and a per-instance sequence drawn from the node's stream.
        let n = sim_runtime::with_rng(|r| r.next_u32());
        format!("o-{}-{}-{n:08x}", self.instance, req.user)
    }

    pub async fn handle(&self, req: OrderRequest) -> OrderResponse {
        let answer = self.handle_inner(req).await;
        // Redis unreachable or slow past the API's timeout: the user gets a 503.
        sometimes!("flash_sale.api.dependency_error_answered", answer.is_err());
        match answer {
            Ok(r) => r,
            Err(e) => OrderResponse::Failed {
                reason: e.to_string(),
            },
        }
    }

    async fn handle_inner(&self, req: OrderRequest) -> Result<OrderResponse, DepError> {
        let stock = stock_key(&req.product);
        let idem = idempotency_key(&req.idempotency_key);
        // The request's strings move into the order: a request is handled once.
        let order = Order {
            order_id: self.order_id(&req),
            idempotency_key: req.idempotency_key,
            user: req.user,
            product: req.product,
        };
        match self.variant {
            Variant::Correct | Variant::CommitBeforeWrite => {
                let r = self
                    .redis
                    .reserve(&stock, Some(&idem), Some(OUTBOX), &order)
                    .await?;
                if let Reservation::Duplicate { order_id } = &r {
                    // A user's retry after a timeout whose first attempt did reserve: the
                    // key answers the first order, never the one this attempt drew.
                    sometimes!("flash_sale.api.retry_answered_from_key", true);
                    always!(
                        "flash_sale.api.duplicate_answers_the_first_order",
                        *order_id != order.order_id
                    );
                }
                Ok(reservation_response(r))
            }
            Variant::NoIdempotency => {
                let r = self
                    .redis
                    .reserve(&stock, None, Some(OUTBOX), &order)
                    .await?;
                Ok(reservation_response(r))
            }
            Variant::CheckThenDecrement => {
                if let Some(existing) = self.redis.get(&idem).await? {
                    return Ok(OrderResponse::Accepted { order_id: existing });
                }
                let left = self.redis.get_i64(&stock).await?.unwrap_or(0);
                if left <= 0 {
                    return Ok(OrderResponse::SoldOut);
                }
                // The bug: between this GET and this SET, others read the same `left`.
                self.redis.set(&stock, &(left - 1).to_string()).await?;
                self.redis.set(&idem, &order.order_id).await?;
                self.redis.rpush(OUTBOX, &order.to_json()).await?;
                Ok(OrderResponse::Accepted {
                    order_id: order.order_id,
                })
            }
            Variant::KafkaDownNoCompensation => {
                let order_id = match self
                    .redis
                    .reserve(&stock, Some(&idem), None, &order)
                    .await?
                {
                    Reservation::Reserved { order_id } => order_id,
                    other => return Ok(reservation_response(other)),
                };
                // The bug: if Kafka is down the stock stays decremented and the order is gone.
                self.kafka.send(&order).await?;
                Ok(OrderResponse::Accepted { order_id })
            }
        }
    }
}

fn reservation_response(r: Reservation) -> OrderResponse {
    match r {
        Reservation::Reserved { order_id } | Reservation::Duplicate { order_id } => {
            OrderResponse::Accepted { order_id }
        }
        Reservation::SoldOut => OrderResponse::SoldOut,
    }
}

/// The outbox relay: publishes outbox entries to Kafka, and removes a batch's entries
/// once each of them is acknowledged.
/// One relay at a time holds a lease in Redis, so orders are published once in the normal
/// case; when the holder dies its lease expires and another instance takes over (a late
/// double publish is harmless, the worker is idempotent).
///
/// It polls the outbox every `interval` while there is work, and backs off (doubling, up
/// to [`RELAY_IDLE_MAX`]) while the outbox stays empty, as outbox pollers do: an idle
/// relay would otherwise cost Redis a round trip every `interval` for nothing.
pub async fn relay(owner: String, redis: Redis, kafka: Kafka, interval: Duration) {
    const LEASE_TTL: Duration = Duration::from_secs(2);
    // Renew at half the TTL, not on every pass: the lease costs a round trip.
    let mut renew_at = sim_runtime::time::now();
    let mut idle = interval;
    loop {
        if sim_runtime::time::now() >= renew_at {
            if !matches!(redis.lease(RELAY_LOCK, &owner, LEASE_TTL).await, Ok(true)) {
                sleep(LEASE_TTL / 2).await;
                continue;
            }
            renew_at = sim_runtime::time::now() + LEASE_TTL / 2;
        }
        match redis.lrange(OUTBOX, 0, 49).await {
            Ok(entries) if !entries.is_empty() => {
                idle = interval;
                let mut published = Vec::with_capacity(entries.len());
                for raw in &entries {
                    let parsed = Order::from_json(raw);
                    // Only the API's reserve script pushes to the outbox.
                    always!("flash_sale.relay.outbox_holds_orders", parsed.is_some());
                    let Some(order) = parsed else {
                        // Not ours to interpret; leave it for an operator.
                        continue;
                    };
                    if kafka.send(&order).await.is_err() {
                        // Kafka down or slow: the entry stays in the outbox for the next
                        // pass, and the API stays available meanwhile.
                        sometimes!("flash_sale.relay.publish_failed_entry_kept", true);
                        break;
                    }
                    published.push(raw.as_str());
                }
                // Removed only once acknowledged, in one call for the batch. A relay
                // that dies before this publishes nothing new: its successor sends
                // those entries again, which the idempotent worker absorbs.
                if !published.is_empty() {
                    let _ = redis.outbox_remove(OUTBOX, &published).await;
                }
            }
            Ok(_) => {
                sleep(idle).await;
                idle = (idle * 2).min(RELAY_IDLE_MAX.max(interval));
            }
            // Redis trouble is not idleness: retry at the base interval.
            Err(_) => {
                idle = interval;
                sleep(interval).await;
            }
        }
    }
}

pub const RELAY_LOCK: &str = "lock:outbox-relay";

/// The longest pause of an idle relay between two looks at the outbox. Under the lease's
/// renewal period (half its 2 s TTL), so an idle holder keeps its lease.
pub const RELAY_IDLE_MAX: Duration = Duration::from_millis(500);

/// The inventory worker: consumes orders in batches and writes them to the database, one
/// transaction per order (as a per-message consumer handler does), retrying a batch
/// with backoff while the database is down.
pub async fn worker(variant: Variant, params: Params, db: Db, mut consumer: KafkaConsumer) {
    // A restarted worker resumes from the last committed offsets: the crash recovery path.
    sometimes!(
        "flash_sale.worker.restarted_after_crash",
        sim_runtime::node::current().incarnation() > 0
    );
    let mut rng = sim_runtime::rng("worker-retry");
    loop {
        let batch = match consumer.poll(params.worker_batch).await {
            Ok(b) => b,
            Err(_) => {
                sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if batch.is_empty() {
            continue;
        }
        if variant == Variant::CommitBeforeWrite {
            // The bug: the offsets are committed before the orders are written.
            let _ = consumer.commit().await;
        }
        for order in &batch {
            trace::emit(&Processing {
                order_id: &order.order_id,
            });
        }
        if buggify!(0.05) {
            // A rare stall before the write widens crash windows on purpose.
            sleep(Duration::from_millis(500)).await;
        }
        let mut attempt = 0u32;
        while db
            .insert_orders(&batch, variant != Variant::NoIdempotency)
            .await
            .is_err()
        {
            let backoff = params.worker_retry.delay(attempt.min(10), &mut rng);
            attempt += 1;
            sleep(backoff.max(Duration::from_millis(10))).await;
        }
        // The database was down: the batch was written after backing off, not dropped.
        sometimes!(
            "flash_sale.worker.insert_retried_after_db_error",
            attempt > 0
        );
        if variant != Variant::CommitBeforeWrite {
            let _ = consumer.commit().await;
        }
    }
}
