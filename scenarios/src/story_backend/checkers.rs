//! The story backend's expectations as checkers, judged from what clients saw, the access
//! log and request spans, the health monitor's probes and the database's final content;
//! never from the service's own counters:
//!
//! - no acknowledged write lost: every story or comment a client got 201 for is in the
//!   database at the end (RPO = 0);
//! - health says 503 exactly while the database is unreachable: 503 inside every outage
//!   (past a grace for the check's own timeout), 200 away from any database trouble;
//! - bounded request latency: no request took longer than the request timeout;
//! - bounded load amplification: while faults last, requests that reach the database make
//!   no more calls each than the fault-free baseline times the retry policy's attempts;
//! - fails open without Redis: while Redis is down (and the database is fine), no read
//!   fails with a server error (500) and no request is refused by the rate limiter;
//! - liveness after heal: the service serves a read and a write within a bound of the
//!   last fault healing.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sim_runtime::time::{Duration, Instant};

use crate::checker::Verdict;

/// One access-log line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessSeen {
    pub request: u64,
    pub instance: u32,
    pub endpoint: String,
    pub status: u16,
    pub cache: String,
    pub received: Instant,
    pub took: Duration,
}

/// A write a client was told was stored (201).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acked {
    pub uid: String,
    pub at: Instant,
}

/// One probe of an instance's health endpoint; `status` is `None` when the instance did
/// not answer (killed, restarting).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub instance: u32,
    pub at: Instant,
    pub status: Option<u16>,
}

/// A window of virtual time `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from: Instant,
    pub to: Instant,
}

impl Window {
    pub fn contains(&self, t: Instant) -> bool {
        self.from <= t && t < self.to
    }

    /// The window with `after` more at its end.
    pub fn extended(&self, after: Duration) -> Window {
        Window {
            from: self.from,
            to: self.to + after,
        }
    }
}

fn within(windows: &[Window], t: Instant) -> bool {
    windows.iter().any(|w| w.contains(t))
}

/// Everything the checkers look at.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Observations {
    pub acked: Vec<Acked>,
    /// The uids of every story and comment in the database at the end.
    pub stored: BTreeSet<String>,
    pub access: Vec<AccessSeen>,
    /// The request of each database attempt, one entry per attempt (0: no request).
    pub db_calls: Vec<u64>,
    pub probes: Vec<Probe>,
    /// Every fault's window, of any kind.
    pub faults: Vec<Window>,
    /// The windows the database was down.
    pub db_down: Vec<Window>,
    /// The windows the database was down, slow or far (latency).
    pub db_trouble: Vec<Window>,
    pub redis_down: Vec<Window>,
    /// How long after the last heal a read and a write both succeeded (`None`: not
    /// within the bound).
    pub recovered_after: Option<Duration>,
    pub recovery_max: Duration,
    /// The request timeout: no request may take longer.
    pub latency_bound: Duration,
    /// Attempts the retry policy allows a database call.
    pub attempts_max: u32,
    /// How long after a database outage starts or ends the health check may still say
    /// the old answer (its own timeout, a reconnect).
    pub health_grace: Duration,
    /// How long after database trouble the service may still refuse (an open breaker,
    /// requests that started during it).
    pub db_grace: Duration,
}

pub fn no_acked_write_lost(o: &Observations) -> Verdict {
    let lost: Vec<&Acked> = o
        .acked
        .iter()
        .filter(|a| !o.stored.contains(&a.uid))
        .collect();
    match lost.first() {
        Some(a) => Verdict::fail(
            "no_acked_write_lost",
            format!(
                "{} was acknowledged at {} ms but is not in the database ({} of {} \
                 acknowledged writes lost)",
                a.uid,
                a.at.elapsed_since_start().as_millis(),
                lost.len(),
                o.acked.len()
            ),
        ),
        None => Verdict::pass(
            "no_acked_write_lost",
            format!(
                "all {} acknowledged writes are in the database",
                o.acked.len()
            ),
        ),
    }
}

pub fn health_matches_db(o: &Observations) -> Verdict {
    // A probe that starts within the grace of any database trouble, before or after it,
    // may meet either state.
    let near_trouble = |t: Instant| {
        o.db_trouble
            .iter()
            .any(|w| w.from <= t + o.health_grace && t < w.to + o.health_grace)
    };
    let (mut down_judged, mut up_judged) = (0, 0);
    for p in &o.probes {
        let Some(status) = p.status else { continue };
        let deep_in_outage = o
            .db_down
            .iter()
            .any(|w| w.from + o.health_grace <= p.at && p.at + o.health_grace < w.to);
        let at_ms = p.at.elapsed_since_start().as_millis();
        if deep_in_outage {
            down_judged += 1;
            if status != 503 {
                return Verdict::fail(
                    "health_matches_db",
                    format!(
                        "instance {} answered {status} to a health probe at {at_ms} ms while \
                         the database was down",
                        p.instance
                    ),
                );
            }
        } else if !near_trouble(p.at) {
            up_judged += 1;
            if status != 200 {
                return Verdict::fail(
                    "health_matches_db",
                    format!(
                        "instance {} answered {status} to a health probe at {at_ms} ms with \
                         the database up",
                        p.instance
                    ),
                );
            }
        }
    }
    Verdict::pass(
        "health_matches_db",
        format!("{down_judged} probes during outages said 503, {up_judged} outside said 200"),
    )
}

pub fn latency_bounded(o: &Observations) -> Verdict {
    let slowest = o.access.iter().max_by_key(|a| a.took);
    match slowest {
        Some(a) if a.took > o.latency_bound => Verdict::fail(
            "latency_bounded",
            format!(
                "a {} received at {} ms took {} ms (bound {} ms); {} requests over the bound",
                a.endpoint,
                a.received.elapsed_since_start().as_millis(),
                a.took.as_millis(),
                o.latency_bound.as_millis(),
                o.access.iter().filter(|x| x.took > o.latency_bound).count()
            ),
        ),
        _ => Verdict::pass(
            "latency_bounded",
            format!(
                "{} requests, the slowest {} ms (bound {} ms)",
                o.access.len(),
                slowest.map_or(0, |a| a.took.as_millis()),
                o.latency_bound.as_millis()
            ),
        ),
    }
}

/// Database calls per request that made any, over the requests `keep` selects.
fn calls_per_request(
    o: &Observations,
    calls: &BTreeMap<u64, u64>,
    keep: impl Fn(&AccessSeen) -> bool,
) -> (u64, u64) {
    o.access
        .iter()
        .filter(|a| keep(a))
        .filter_map(|a| calls.get(&a.request))
        .fold((0, 0), |(requests, total), n| (requests + 1, total + n))
}

pub fn load_bounded(o: &Observations) -> Verdict {
    let mut calls: BTreeMap<u64, u64> = BTreeMap::new();
    for &r in o.db_calls.iter().filter(|&&r| r != 0) {
        *calls.entry(r).or_default() += 1;
    }
    let first_fault = o.faults.iter().map(|w| w.from).min();
    let (base_requests, base_calls) =
        calls_per_request(o, &calls, |a| first_fault.is_none_or(|f| a.received < f));
    let (requests, total) = calls_per_request(o, &calls, |a| within(&o.faults, a.received));
    let ratio = |calls: u64, requests: u64| calls as f64 / requests.max(1) as f64;
    // Without a fault-free request to compare with, one call per request is the baseline.
    let baseline = if base_requests == 0 {
        1.0
    } else {
        ratio(base_calls, base_requests)
    };
    let during = ratio(total, requests);
    let bound = baseline * f64::from(o.attempts_max);
    Verdict::check(
        "load_bounded",
        during <= bound,
        format!(
            "{requests} requests reached the database during faults with {during:.2} calls \
             each, against {baseline:.2} before them (bound {bound:.2}: {} attempts)",
            o.attempts_max
        ),
    )
}

pub fn fails_open_without_redis(o: &Observations) -> Verdict {
    let db_trouble: Vec<Window> = o
        .db_trouble
        .iter()
        .map(|w| w.extended(o.db_grace))
        .collect();
    let mut judged = 0;
    for a in &o.access {
        if !within(&o.redis_down, a.received) {
            continue;
        }
        if a.status == 429 {
            return Verdict::fail(
                "fails_open_without_redis",
                format!(
                    "a {} at {} ms got 429 while Redis, which counts requests, was down",
                    a.endpoint,
                    a.received.elapsed_since_start().as_millis()
                ),
            );
        }
        if a.endpoint != "read" || within(&db_trouble, a.received) {
            continue;
        }
        judged += 1;
        // A 503 is the database path refusing (its pool full, its breaker open) under the
        // load the missing cache sends it; a 500 is the cache's failure made the read's.
        if a.status == 500 {
            return Verdict::fail(
                "fails_open_without_redis",
                format!(
                    "a read at {} ms got {} while only Redis was down (cache {})",
                    a.received.elapsed_since_start().as_millis(),
                    a.status,
                    a.cache
                ),
            );
        }
    }
    Verdict::pass(
        "fails_open_without_redis",
        format!("{judged} reads while only Redis was down all answered, no 429 without Redis"),
    )
}

pub fn liveness_after_heal(o: &Observations) -> Verdict {
    match o.recovered_after {
        Some(d) if d <= o.recovery_max => Verdict::pass(
            "liveness_after_heal",
            format!(
                "a read and a write succeeded {} ms after the last heal",
                d.as_millis()
            ),
        ),
        _ => Verdict::fail(
            "liveness_after_heal",
            format!(
                "no read and write both succeeded within {} ms of the last heal",
                o.recovery_max.as_millis()
            ),
        ),
    }
}

pub fn check_all(o: &Observations) -> Vec<Verdict> {
    vec![
        no_acked_write_lost(o),
        health_matches_db(o),
        latency_bounded(o),
        load_bounded(o),
        fails_open_without_redis(o),
        liveness_after_heal(o),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::at_ms as at;

    fn access(request: u64, endpoint: &str, status: u16, ms: u64) -> AccessSeen {
        AccessSeen {
            request,
            instance: 0,
            endpoint: endpoint.into(),
            status,
            cache: String::new(),
            received: at(ms),
            took: Duration::from_millis(5),
        }
    }

    fn window(from: u64, to: u64) -> Window {
        Window {
            from: at(from),
            to: at(to),
        }
    }

    /// A run with a database outage from 1 s to 3 s: writes acknowledged and stored,
    /// health 503 inside, 200 outside, one call per request before, retries within the
    /// policy during.
    fn clean() -> Observations {
        let outage = window(1_000, 3_000);
        Observations {
            acked: vec![Acked {
                uid: "s-1".into(),
                at: at(500),
            }],
            stored: ["seed-1".to_string(), "s-1".to_string()].into(),
            access: vec![
                access(1, "post_story", 201, 500),
                access(2, "read", 200, 600),
                access(3, "read", 503, 1_500),
                access(4, "read", 200, 3_500),
            ],
            db_calls: vec![1, 2, 3, 3, 3, 4],
            probes: vec![
                Probe {
                    instance: 0,
                    at: at(500),
                    status: Some(200),
                },
                Probe {
                    instance: 0,
                    at: at(2_000),
                    status: Some(503),
                },
                Probe {
                    instance: 1,
                    at: at(2_000),
                    status: None,
                },
                Probe {
                    instance: 0,
                    at: at(4_000),
                    status: Some(200),
                },
            ],
            faults: vec![outage],
            db_down: vec![outage],
            db_trouble: vec![outage],
            recovered_after: Some(Duration::from_millis(800)),
            recovery_max: Duration::from_secs(15),
            latency_bound: Duration::from_secs(30),
            attempts_max: 3,
            health_grace: Duration::from_millis(500),
            db_grace: Duration::from_secs(5),
            ..Observations::default()
        }
    }

    fn failed(o: &Observations) -> Vec<String> {
        check_all(o)
            .into_iter()
            .filter(|v| !v.ok)
            .map(|v| v.checker)
            .collect()
    }

    #[test]
    fn a_clean_run_passes_every_checker() {
        assert!(failed(&clean()).is_empty(), "{:#?}", check_all(&clean()));
    }

    #[test]
    fn an_acknowledged_write_missing_from_the_database_is_caught() {
        // write_behind_cache: acknowledged in Redis, lost with it.
        let mut o = clean();
        o.stored.remove("s-1");
        assert_eq!(failed(&o), ["no_acked_write_lost"]);
    }

    #[test]
    fn health_200_during_an_outage_or_503_outside_is_caught() {
        let mut o = clean();
        o.probes[1].status = Some(200);
        assert_eq!(failed(&o), ["health_matches_db"]);
        let mut o = clean();
        o.probes[3].status = Some(503);
        assert_eq!(failed(&o), ["health_matches_db"]);
        // Within the grace of the outage's edges, either answer stands.
        let mut o = clean();
        o.probes[1].at = at(1_200);
        o.probes[1].status = Some(200);
        o.probes[3].at = at(3_300);
        o.probes[3].status = Some(503);
        assert!(failed(&o).is_empty());
    }

    #[test]
    fn a_request_past_the_timeout_is_caught() {
        // no_pool_timeout: queued for a connection behind slow queries.
        let mut o = clean();
        o.access[2].took = Duration::from_secs(41);
        let v = latency_bounded(&o);
        assert!(!v.ok);
        assert!(
            v.detail
                .starts_with("a read received at 1500 ms took 41000 ms"),
            "{}",
            v.detail
        );
    }

    #[test]
    fn retries_past_the_policy_during_a_fault_are_caught() {
        // retry_storm: twenty attempts for one request during the outage.
        let mut o = clean();
        o.db_calls.extend([3; 17]);
        let v = load_bounded(&o);
        assert!(!v.ok);
        assert!(
            v.detail.contains("with 20.00 calls each, against 1.00"),
            "{}",
            v.detail
        );
    }

    #[test]
    fn a_failed_read_or_a_429_while_only_redis_is_down_is_caught() {
        // cache_fail_closed: the cache's error became the read's.
        let mut o = clean();
        o.redis_down = vec![window(10_000, 12_000)];
        o.access.push(access(5, "read", 500, 11_000));
        assert_eq!(failed(&o), ["fails_open_without_redis"]);
        // The same read with the database also in trouble is not judged.
        o.db_trouble.push(window(10_500, 11_500));
        assert!(fails_open_without_redis(&o).ok);
        // A limiter that fails closed refuses with 429.
        o.access.push(access(6, "post_story", 429, 11_100));
        assert!(!fails_open_without_redis(&o).ok);
    }

    #[test]
    fn no_recovery_within_the_bound_is_caught() {
        let mut o = clean();
        o.recovered_after = None;
        assert_eq!(failed(&o), ["liveness_after_heal"]);
        o.recovered_after = Some(Duration::from_secs(16));
        assert_eq!(failed(&o), ["liveness_after_heal"]);
    }
}
