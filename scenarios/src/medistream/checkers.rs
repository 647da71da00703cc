//! Medistream's expectations as checkers, judged from what clients saw, the access log and
//! request spans, the SMS provider's records and the queue's final state in Redis; never
//! from the service's own counters:
//!
//! - no job lost: every confirmation a patient was told of is somewhere in the queue;
//! - effects once: no patient got the same confirmation twice, and no job finished twice;
//! - jobs terminal: once the queue had time to drain, every job is done or dead-lettered;
//! - retries bounded: no job hit the provider more often than its retry policy allows
//!   (one more per worker killed mid-job);
//! - auth before work: a request answered 401 or 429 caused no database or queue work;
//! - rate limit exact: in every window, a client got 429 for exactly the requests past
//!   its limit (windows a Redis outage touched are not judged: the limiter fails open);
//! - bookings during a signup flood keep their p95 under the bound;
//! - fail fast: no patient's request waited out their timeout, and reads kept working
//!   while Redis was down.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sim_runtime::time::{Duration, Instant};

use super::deps::SmsRecords;
use super::jobs::QueueState;
use crate::checker::Verdict;
use crate::metrics::{self, RequestOutcome, Sample};

/// One access-log line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessSeen {
    pub request: u64,
    pub client: String,
    pub endpoint: String,
    pub status: u16,
    pub received: Instant,
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
}

/// Everything the checkers look at.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Observations {
    /// The confirmations patients were told were enqueued.
    pub jobs_told: Vec<String>,
    pub queue: QueueState,
    pub sms: SmsRecords,
    pub access: Vec<AccessSeen>,
    /// The requests that made database or queue calls, one entry per call.
    pub downstream: Vec<u64>,
    /// The patients' bookings and reads (not the flood's or the attacker's requests).
    pub bookings: Vec<Sample>,
    pub reads: Vec<Sample>,
    /// Patients' requests of any kind that got no answer in time.
    pub timeouts: u64,
    pub floods: Vec<Window>,
    pub redis_outages: Vec<Window>,
    pub db_outages: Vec<Window>,
    pub worker_kills: u32,
    pub rate_limit: u32,
    pub rate_window: Duration,
    /// Attempts a job may make (the first included).
    pub attempts_max: u32,
    pub booking_p95_bound: Duration,
}

/// Where each job is, by name of the structure holding it.
fn places(q: &QueueState) -> BTreeMap<&str, Vec<&'static str>> {
    let mut at: BTreeMap<&str, Vec<&'static str>> = BTreeMap::new();
    for (name, ids) in [
        ("pending", &q.pending),
        ("active", &q.active),
        ("retry", &q.retry),
        ("completed", &q.completed),
        ("archived", &q.archived),
    ] {
        for id in ids {
            at.entry(id.as_str()).or_default().push(name);
        }
    }
    at
}

pub fn no_job_lost(o: &Observations) -> Verdict {
    let at = places(&o.queue);
    let lost: Vec<&String> = o
        .jobs_told
        .iter()
        .filter(|j| !at.contains_key(j.as_str()))
        .collect();
    match lost.first() {
        Some(j) => Verdict::fail(
            "no_job_lost",
            format!(
                "{j} was enqueued but is in no queue, done or dead ({} of {} jobs lost)",
                lost.len(),
                o.jobs_told.len()
            ),
        ),
        None => Verdict::pass(
            "no_job_lost",
            format!("all {} enqueued jobs are accounted for", o.jobs_told.len()),
        ),
    }
}

pub fn effects_once(o: &Observations) -> Verdict {
    if let Some((job, n)) = o.sms.deliveries.iter().find(|(_, n)| **n > 1) {
        return Verdict::fail(
            "effects_once",
            format!("the confirmation {job} was delivered {n} times"),
        );
    }
    let at = places(&o.queue);
    let finished_twice = at.iter().find(|(_, p)| {
        p.iter()
            .filter(|x| **x == "completed" || **x == "archived")
            .count()
            > 1
    });
    if let Some((job, p)) = finished_twice {
        return Verdict::fail(
            "effects_once",
            format!("{job} finished twice: {}", p.join(" and ")),
        );
    }
    Verdict::pass(
        "effects_once",
        format!(
            "{} confirmations delivered, none twice",
            o.sms.deliveries.len()
        ),
    )
}

pub fn jobs_terminal(o: &Observations) -> Verdict {
    let at = places(&o.queue);
    let open: Vec<(&String, String)> = o
        .jobs_told
        .iter()
        .filter_map(|j| {
            let p = at.get(j.as_str())?;
            (!p.iter().any(|x| *x == "completed" || *x == "archived")).then(|| (j, p.join("+")))
        })
        .collect();
    match open.first() {
        Some((job, place)) => Verdict::fail(
            "jobs_terminal",
            format!(
                "{job} is still {place} after the drain ({} jobs not done or dead, {} provider calls for it)",
                open.len(),
                o.sms.calls.get(job.as_str()).copied().unwrap_or(0)
            ),
        ),
        None => Verdict::pass(
            "jobs_terminal",
            format!(
                "{} jobs done, {} dead-lettered",
                o.queue.completed.len(),
                o.queue.archived.len()
            ),
        ),
    }
}

pub fn retries_bounded(o: &Observations) -> Verdict {
    let bound = o.attempts_max + o.worker_kills;
    let over: Vec<(&String, &u32)> = o.sms.calls.iter().filter(|(_, n)| **n > bound).collect();
    match over.iter().max_by_key(|(_, n)| **n) {
        Some((job, n)) => Verdict::fail(
            "retries_bounded",
            format!(
                "{job} called the provider {n} times (bound {bound}): a retry storm; {} jobs over the bound",
                over.len()
            ),
        ),
        None => Verdict::pass(
            "retries_bounded",
            format!(
                "{} provider calls for {} jobs, none over {bound}",
                o.sms.calls.values().sum::<u32>(),
                o.sms.calls.len()
            ),
        ),
    }
}

pub fn auth_before_work(o: &Observations) -> Verdict {
    let mut work: BTreeMap<u64, u32> = BTreeMap::new();
    for r in &o.downstream {
        *work.entry(*r).or_default() += 1;
    }
    let rejected: Vec<&AccessSeen> = o
        .access
        .iter()
        // A wrong password (401 from login) is only known after the lookup.
        .filter(|a| a.status == 429 || (a.status == 401 && a.endpoint != "login"))
        .collect();
    let worked: Vec<(&AccessSeen, u32)> = rejected
        .iter()
        .filter_map(|a| work.get(&a.request).map(|n| (*a, *n)))
        .collect();
    match worked.first() {
        Some((a, n)) => Verdict::fail(
            "auth_before_work",
            format!(
                "a {} answered {} caused {n} database calls; {} rejected requests caused {} in all",
                a.endpoint,
                a.status,
                worked.len(),
                worked.iter().map(|(_, n)| n).sum::<u32>()
            ),
        ),
        None => Verdict::pass(
            "auth_before_work",
            format!(
                "{} requests rejected (401 or 429) with no downstream call",
                rejected.len()
            ),
        ),
    }
}

pub fn rate_limit_exact(o: &Observations) -> Verdict {
    let w = o.rate_window.as_nanos().max(1);
    let window_of = |t: Instant| (t.elapsed_since_start().as_nanos() / w) as u64;
    // Windows a Redis outage touched: counts there are lost or never made.
    let mut unjudged: BTreeSet<u64> = BTreeSet::new();
    for out in &o.redis_outages {
        unjudged.extend(window_of(out.from)..=window_of(out.to) + 1);
    }
    let mut counts: BTreeMap<(&str, u64), (u64, u64)> = BTreeMap::new();
    for a in &o.access {
        let c = counts
            .entry((a.client.as_str(), window_of(a.received)))
            .or_default();
        c.0 += 1;
        c.1 += u64::from(a.status == 429);
    }
    let limit = u64::from(o.rate_limit);
    let mut judged = 0;
    for ((client, window), (n, limited)) in &counts {
        if unjudged.contains(window) {
            continue;
        }
        judged += 1;
        let expected = n.saturating_sub(limit);
        if *limited != expected {
            return Verdict::fail(
                "rate_limit_exact",
                format!(
                    "{client} sent {n} requests in window {window} (limit {limit}) and got {limited} \
                     429s, not {expected}"
                ),
            );
        }
    }
    let limited: u64 = counts.values().map(|c| c.1).sum();
    Verdict::pass(
        "rate_limit_exact",
        format!("{limited} requests got 429, each past its client's limit ({judged} client windows judged)"),
    )
}

pub fn booking_latency_in_flood(o: &Observations) -> Verdict {
    let during: Vec<&Sample> = o
        .bookings
        .iter()
        .filter(|s| o.floods.iter().any(|f| f.contains(s.start)))
        .collect();
    if during.len() < 3 {
        return Verdict::pass(
            "booking_latency_in_flood",
            format!(
                "{} bookings during a signup flood: not judged",
                during.len()
            ),
        );
    }
    let s = metrics::summarise(during.iter().copied(), Duration::ZERO);
    let bound = o.booking_p95_bound.as_secs_f64() * 1000.0;
    Verdict::check(
        "booking_latency_in_flood",
        s.p95_ms <= bound,
        format!(
            "{} bookings during the signup flood: p95 {:.0} ms (bound {bound:.0} ms), max {:.0} ms",
            s.requests, s.p95_ms, s.max_ms
        ),
    )
}

pub fn fails_fast(o: &Observations) -> Verdict {
    if o.timeouts > 0 {
        return Verdict::fail(
            "fails_fast",
            format!("{} patient requests waited out their timeout", o.timeouts),
        );
    }
    let in_redis_outage_only = |t: Instant| {
        o.redis_outages.iter().any(|w| w.contains(t)) && !o.db_outages.iter().any(|w| w.contains(t))
    };
    let failed_reads = o
        .reads
        .iter()
        .filter(|s| in_redis_outage_only(s.start) && s.outcome != RequestOutcome::Ok)
        .count();
    Verdict::check(
        "fails_fast",
        failed_reads == 0,
        format!("no request timed out; {failed_reads} reads failed while only Redis was down"),
    )
}

pub fn check_all(o: &Observations) -> Vec<Verdict> {
    vec![
        no_job_lost(o),
        effects_once(o),
        jobs_terminal(o),
        retries_bounded(o),
        auth_before_work(o),
        rate_limit_exact(o),
        booking_latency_in_flood(o),
        fails_fast(o),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::at_ms as at;

    fn access(request: u64, client: &str, status: u16, ms: u64) -> AccessSeen {
        AccessSeen {
            request,
            client: client.into(),
            endpoint: "book".into(),
            status,
            received: at(ms),
        }
    }

    fn booking(start_ms: u64, latency_ms: u64) -> Sample {
        Sample {
            start: at(start_ms),
            latency: Duration::from_millis(latency_ms),
            outcome: RequestOutcome::Ok,
        }
    }

    fn clean() -> Observations {
        let mut sms = SmsRecords::default();
        sms.calls.insert("confirm:1".into(), 2);
        sms.deliveries.insert("confirm:1".into(), 1);
        Observations {
            jobs_told: vec!["confirm:1".into(), "confirm:2".into()],
            queue: QueueState {
                completed: vec!["confirm:1".into()],
                archived: vec!["confirm:2".into()],
                ..QueueState::default()
            },
            sms,
            access: vec![access(1, "p1", 201, 10), access(2, "p1", 401, 20)],
            downstream: vec![1, 1],
            bookings: (0..5).map(|k| booking(1_000 + k * 100, 60)).collect(),
            floods: vec![Window {
                from: at(1_000),
                to: at(2_000),
            }],
            rate_limit: 2,
            rate_window: Duration::from_secs(1),
            attempts_max: 4,
            booking_p95_bound: Duration::from_millis(500),
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
    fn a_popped_job_that_died_with_its_worker_is_lost() {
        let mut o = clean();
        o.queue.archived.clear();
        assert_eq!(failed(&o), ["no_job_lost"]);
    }

    #[test]
    fn a_job_left_in_retry_or_looping_is_caught() {
        let mut o = clean();
        o.queue.archived.clear();
        o.queue.pending.push("confirm:2".into());
        o.sms.calls.insert("confirm:2".into(), 900);
        assert_eq!(failed(&o), ["jobs_terminal", "retries_bounded"]);
    }

    #[test]
    fn a_second_delivery_or_a_second_ending_is_caught() {
        let mut o = clean();
        o.sms.deliveries.insert("confirm:1".into(), 2);
        assert_eq!(failed(&o), ["effects_once"]);
        let mut o = clean();
        o.queue.archived.push("confirm:1".into());
        assert_eq!(failed(&o), ["effects_once"]);
    }

    #[test]
    fn database_work_for_a_rejected_token_is_caught() {
        let mut o = clean();
        o.downstream.push(2);
        let v = auth_before_work(&o);
        assert!(!v.ok);
        assert!(
            v.detail
                .starts_with("a book answered 401 caused 1 database calls"),
            "{}",
            v.detail
        );
    }

    #[test]
    fn a_429_below_the_limit_or_none_above_it_is_caught() {
        let mut o = clean();
        // Three requests in one window with a limit of two: exactly one 429.
        o.access = vec![
            access(1, "a", 201, 0),
            access(2, "a", 429, 10),
            access(3, "a", 401, 20),
        ];
        assert!(rate_limit_exact(&o).ok);
        o.access[2].status = 429;
        assert!(!rate_limit_exact(&o).ok, "two 429s for one request over");
        o.access[1].status = 201;
        o.access[2].status = 201;
        assert!(!rate_limit_exact(&o).ok, "no 429 past the limit");
        // A Redis outage in that window: the limiter failed open, nothing to judge.
        o.redis_outages.push(Window {
            from: at(500),
            to: at(700),
        });
        assert!(rate_limit_exact(&o).ok);
    }

    #[test]
    fn slow_bookings_during_a_flood_are_caught() {
        let mut o = clean();
        for b in &mut o.bookings {
            b.latency = Duration::from_millis(1_800);
        }
        let v = booking_latency_in_flood(&o);
        assert!(!v.ok);
        assert!(v.detail.contains("p95 1800 ms"), "{}", v.detail);
    }

    #[test]
    fn a_timeout_or_a_failed_read_during_a_redis_outage_is_caught() {
        let mut o = clean();
        o.timeouts = 1;
        assert!(!fails_fast(&o).ok);
        let mut o = clean();
        o.redis_outages.push(Window {
            from: at(0),
            to: at(100),
        });
        o.reads.push(Sample {
            start: at(50),
            latency: Duration::from_millis(3),
            outcome: RequestOutcome::Error,
        });
        assert!(!fails_fast(&o).ok);
    }
}
