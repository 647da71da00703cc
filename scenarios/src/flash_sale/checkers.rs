//! The flash sale's invariants, checked from what the dependencies and the users
//! observed (trace events and a final read of Redis and the database), never from the
//! service's own counters.
//!
//! - no oversell: database orders <= initial stock, and Redis stock never below 0;
//! - no lost acknowledged order: every order a user got a success for is in the database;
//! - no duplicate order per idempotency key;
//! - conservation after recovery: Redis stock + database orders = initial stock (and the
//!   products table agrees);
//! - liveness: after the faults heal, the backlog drains within a bound (the recovery time).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sim_runtime::time::{Duration, Instant};

use sim_models::kv::{CmdEvent, Command, Reply};
use sim_runtime::trace::Captured;

use super::deps::{PRODUCT, RESERVE};
use super::service::stock_key;
use crate::checker::Verdict;

/// One row of the orders table.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OrderRow {
    pub order_id: String,
    pub idempotency_key: String,
    pub user: u32,
}

/// The state read after the run, once faults healed and the backlog drained (or the
/// drain bound passed).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalState {
    pub orders: Vec<OrderRow>,
    /// `products.stock` in the database.
    pub db_stock: i64,
    /// The stock key in Redis.
    pub redis_stock: i64,
    /// Orders reserved but not yet in the database (outbox entries plus consumer lag).
    pub backlog: u64,
}

/// Everything the checkers look at.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observations {
    pub initial_stock: i64,
    /// Idempotency key -> order id, for every success a user received.
    pub acked: BTreeMap<String, String>,
    /// Every value the Redis stock key was written with, in order.
    pub stock_values: Vec<i64>,
    pub final_state: FinalState,
    /// When the last fault healed (the run's start if there were none).
    pub healed_at: Instant,
    /// When the backlog was seen drained after the heal, if it was.
    pub drained_at: Option<Instant>,
    pub drain_bound: Duration,
    /// Where the acknowledgements and the stock writes are in the trace.
    pub trail: Trail,
}

/// Where in the trace the events an oversell comes from are, so that its verdict can
/// point at them: `(seq, time)` of each `user.ack`, and of each stock write, in the
/// order of [`Observations::stock_values`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trail {
    pub acks: Vec<(u64, Instant)>,
    pub stock_writes: Vec<(u64, Instant)>,
}

impl Observations {
    /// The measured recovery time, if the backlog drained.
    pub fn recovery_time(&self) -> Option<Duration> {
        self.drained_at.map(|d| d.duration_since(self.healed_at))
    }
}

/// Every value the stock key took, from the `kv.cmd.write` events: SET values, DECR/INCR
/// replies, and the reserve script's reported stock.
/// Each as `(value, seq, time)`: where the write is in the trace.
pub fn stock_writes(writes: &[Captured<CmdEvent<'static>>]) -> Vec<(i64, u64, Instant)> {
    let key = stock_key(PRODUCT);
    let mut out = Vec::new();
    for w in writes {
        match (&*w.event.cmd, &*w.event.reply) {
            (Command::Set { key: k, value, .. }, Reply::Status(_)) if *k == key => {
                if let Ok(v) = value.parse() {
                    out.push((v, w.seq, w.time));
                }
            }
            (
                Command::Decr { key: k }
                | Command::Incr { key: k }
                | Command::DecrBy { key: k, .. }
                | Command::IncrBy { key: k, .. },
                Reply::Int(n),
            ) if *k == key => out.push((*n, w.seq, w.time)),
            // Only a reservation's reply has a third part, the stock left.
            (Command::Eval { script, .. }, Reply::Array(parts)) if script.name() == RESERVE => {
                if let Some(Reply::Int(n)) = parts.get(2) {
                    out.push((*n, w.seq, w.time));
                }
            }
            _ => {}
        }
    }
    out
}

pub fn no_oversell(o: &Observations) -> Verdict {
    let orders = o.final_state.orders.len() as i64;
    let min = o.stock_values.iter().copied().min();
    if orders > o.initial_stock {
        // Broken at the acknowledgement past the stock, or, when fewer were acknowledged
        // than stored, at the last one.
        let past = usize::try_from(o.initial_stock).unwrap_or(0);
        let at = o.trail.acks.get(past).or(o.trail.acks.last());
        return witnessed(
            Verdict::fail(
                "no_oversell",
                format!(
                    "{orders} orders in the database for {} items",
                    o.initial_stock
                ),
            ),
            o,
            at.map(|&(_, t)| t),
        );
    }
    if let Some(m) = min.filter(|m| *m < 0) {
        let first = o.stock_values.iter().position(|v| *v < 0);
        let at = first.and_then(|i| o.trail.stock_writes.get(i));
        return witnessed(
            Verdict::fail("no_oversell", format!("Redis stock went down to {m}")),
            o,
            at.map(|&(_, t)| t),
        );
    }
    Verdict::pass(
        "no_oversell",
        format!(
            "{orders} orders for {} items; Redis stock min {}",
            o.initial_stock,
            min.unwrap_or(o.initial_stock)
        ),
    )
}

/// An oversell's witness: the stock writes and the acknowledgements up to the instant it
/// happened (none when the trail is empty, as in checkers' own tests).
fn witnessed(v: Verdict, o: &Observations, at: Option<Instant>) -> Verdict {
    let Some(at) = at else { return v };
    let mut seqs: Vec<u64> = (o.trail.stock_writes.iter())
        .chain(&o.trail.acks)
        .filter(|(_, t)| *t <= at)
        .map(|(s, _)| *s)
        .collect();
    seqs.sort_unstable();
    v.with_witness(at, seqs)
}

pub fn no_lost_ack(o: &Observations) -> Verdict {
    let stored: std::collections::BTreeSet<&str> = o
        .final_state
        .orders
        .iter()
        .map(|r| r.idempotency_key.as_str())
        .collect();
    let lost: Vec<&String> = o
        .acked
        .keys()
        .filter(|k| !stored.contains(k.as_str()))
        .collect();
    if lost.is_empty() {
        Verdict::pass(
            "no_lost_ack",
            format!(
                "all {} acknowledged orders are in the database",
                o.acked.len()
            ),
        )
    } else {
        let sample: Vec<&str> = lost.iter().take(3).map(|s| s.as_str()).collect();
        Verdict::fail(
            "no_lost_ack",
            format!(
                "{} of {} acknowledged orders are missing from the database (e.g. {})",
                lost.len(),
                o.acked.len(),
                sample.join(", ")
            ),
        )
    }
}

pub fn no_duplicate(o: &Observations) -> Verdict {
    let mut per_key: BTreeMap<&str, u32> = BTreeMap::new();
    for r in &o.final_state.orders {
        *per_key.entry(r.idempotency_key.as_str()).or_default() += 1;
    }
    let dups: Vec<(&str, u32)> = per_key.into_iter().filter(|(_, n)| *n > 1).collect();
    if dups.is_empty() {
        Verdict::pass("no_duplicate", "one order per idempotency key")
    } else {
        let (k, n) = dups[0];
        Verdict::fail(
            "no_duplicate",
            format!(
                "{} idempotency keys have several orders (e.g. {k} has {n})",
                dups.len()
            ),
        )
    }
}

pub fn conservation(o: &Observations) -> Verdict {
    let f = &o.final_state;
    let orders = f.orders.len() as i64;
    if f.redis_stock + orders != o.initial_stock {
        return Verdict::fail(
            "conservation",
            format!(
                "Redis stock {} + {orders} orders != initial stock {}",
                f.redis_stock, o.initial_stock
            ),
        );
    }
    if f.db_stock + orders != o.initial_stock {
        return Verdict::fail(
            "conservation",
            format!(
                "products.stock {} + {orders} orders != initial stock {}",
                f.db_stock, o.initial_stock
            ),
        );
    }
    Verdict::pass(
        "conservation",
        format!(
            "Redis stock {} + {orders} orders = {}",
            f.redis_stock, o.initial_stock
        ),
    )
}

pub fn liveness(o: &Observations) -> Verdict {
    match o.recovery_time() {
        Some(t) if t <= o.drain_bound => Verdict::pass(
            "liveness",
            format!("backlog drained {} ms after the heal", t.as_millis()),
        ),
        Some(t) => Verdict::fail(
            "liveness",
            format!(
                "backlog drained only {} ms after the heal (bound {} ms)",
                t.as_millis(),
                o.drain_bound.as_millis()
            ),
        ),
        None => Verdict::fail(
            "liveness",
            format!(
                "backlog of {} orders not drained within {} ms of the heal",
                o.final_state.backlog,
                o.drain_bound.as_millis()
            ),
        ),
    }
}

/// Every checker, in report order.
pub fn check_all(o: &Observations) -> Vec<Verdict> {
    vec![
        no_oversell(o),
        no_lost_ack(o),
        no_duplicate(o),
        conservation(o),
        liveness(o),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Observations {
        let orders: Vec<OrderRow> = (0..3)
            .map(|i| OrderRow {
                order_id: format!("o{i}"),
                idempotency_key: format!("k{i}"),
                user: i,
            })
            .collect();
        Observations {
            initial_stock: 3,
            acked: (0..3).map(|i| (format!("k{i}"), format!("o{i}"))).collect(),
            stock_values: vec![3, 2, 1, 0],
            final_state: FinalState {
                orders,
                db_stock: 0,
                redis_stock: 0,
                backlog: 0,
            },
            healed_at: Instant::START,
            drained_at: Some(Instant::START + Duration::from_secs(2)),
            drain_bound: Duration::from_secs(60),
            trail: Trail::default(),
        }
    }

    #[test]
    fn a_healthy_run_passes_everything() {
        assert!(
            check_all(&healthy()).iter().all(|v| v.ok),
            "{:?}",
            check_all(&healthy())
        );
    }

    #[test]
    fn planted_oversell_is_caught_both_ways() {
        let mut o = healthy();
        o.final_state.orders.push(OrderRow {
            order_id: "o9".into(),
            idempotency_key: "k9".into(),
            user: 9,
        });
        assert!(!no_oversell(&o).ok);
        let mut o = healthy();
        o.stock_values.push(-1);
        assert!(!no_oversell(&o).ok);
    }

    #[test]
    fn planted_lost_ack_is_caught() {
        let mut o = healthy();
        o.final_state.orders.remove(1);
        let v = no_lost_ack(&o);
        assert!(!v.ok);
        assert!(v.detail.contains("k1"), "{}", v.detail);
    }

    #[test]
    fn planted_duplicate_is_caught() {
        let mut o = healthy();
        o.final_state.orders.push(OrderRow {
            order_id: "o7".into(),
            idempotency_key: "k0".into(),
            user: 0,
        });
        assert!(!no_duplicate(&o).ok);
    }

    #[test]
    fn planted_inconsistency_is_caught() {
        let mut o = healthy();
        o.final_state.orders.pop();
        o.final_state.db_stock = 1;
        assert!(
            !conservation(&o).ok,
            "stock decremented in Redis but the order is gone"
        );
        let mut o = healthy();
        o.final_state.db_stock = 2;
        assert!(!conservation(&o).ok, "products table disagrees");
    }

    #[test]
    fn planted_stuck_backlog_is_caught() {
        let mut o = healthy();
        o.drained_at = None;
        o.final_state.backlog = 5;
        assert!(!liveness(&o).ok);
        let mut o = healthy();
        o.drained_at = Some(Instant::START + Duration::from_secs(61));
        assert!(!liveness(&o).ok);
    }
}
