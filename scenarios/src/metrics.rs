//! Metrics in virtual time: per-request latency and outcome, summarised per phase
//! (before, during and after a fault window) as percentiles, error rates and throughput.
//! Percentiles are `hdrhistogram`'s (exact to 3 significant digits), found by sorting.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use sim_runtime::time::{Duration, Instant};
use sim_runtime::timeline::{record_request, RequestResult};

/// How a request ended, from the user's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestOutcome {
    /// The service answered with success.
    Ok,
    /// The service answered with a deliberate refusal (sold out, 409, 429).
    Rejected,
    /// The service answered with an error (5xx).
    Error,
    /// No answer in time.
    Timeout,
}

impl RequestOutcome {
    /// Whether the service was available for this request (it answered, not a 5xx or timeout).
    pub fn is_available(self) -> bool {
        matches!(self, RequestOutcome::Ok | RequestOutcome::Rejected)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub start: Instant,
    pub latency: Duration,
    pub outcome: RequestOutcome,
}

/// A summary of a set of requests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub requests: u64,
    pub ok: u64,
    pub rejected: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Answered requests (ok or rejected) per request, in percent.
    pub availability_pct: f64,
    /// Errors and timeouts per request, in percent.
    pub error_pct: f64,
    /// Requests per second of virtual time over the phase.
    pub throughput_per_s: f64,
}

/// Collects samples; clones share them.
#[derive(Clone, Default)]
pub struct Recorder {
    samples: Rc<RefCell<Vec<Sample>>>,
}

impl From<RequestOutcome> for RequestResult {
    fn from(o: RequestOutcome) -> Self {
        match o {
            RequestOutcome::Ok => RequestResult::Ok,
            RequestOutcome::Rejected => RequestResult::Rejected,
            RequestOutcome::Error => RequestResult::Error,
            RequestOutcome::Timeout => RequestResult::Timeout,
        }
    }
}

impl Recorder {
    /// Records a request that ended at `end` (now: a request is recorded when its reply
    /// or its give-up comes), also as a `request` trace event, which the timeline page
    /// draws as a span.
    pub fn record(&self, start: Instant, end: Instant, outcome: RequestOutcome) {
        record_request("request", start, outcome.into());
        self.samples.borrow_mut().push(Sample {
            start,
            latency: end - start,
            outcome,
        });
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.samples.borrow().clone()
    }
}

/// Summarises samples whose start lies in `[from, to)`, over a phase lasting `span`.
pub fn summarise<'a>(samples: impl IntoIterator<Item = &'a Sample>, span: Duration) -> Summary {
    let mut s = Summary::default();
    let mut micros = Vec::new();
    for x in samples {
        s.requests += 1;
        match x.outcome {
            RequestOutcome::Ok => s.ok += 1,
            RequestOutcome::Rejected => s.rejected += 1,
            RequestOutcome::Error => s.errors += 1,
            RequestOutcome::Timeout => s.timeouts += 1,
        }
        micros.push((x.latency.as_micros() as u64).clamp(1, 3_600_000_000));
    }
    if s.requests > 0 {
        let q = Quantiles::of(micros);
        let ms = |us: u64| us as f64 / 1000.0;
        s.p50_ms = ms(q.at(0.5));
        s.p95_ms = ms(q.at(0.95));
        s.p99_ms = ms(q.at(0.99));
        s.max_ms = ms(q.max());
        s.availability_pct = 100.0 * (s.ok + s.rejected) as f64 / s.requests as f64;
        s.error_pct = 100.0 * (s.errors + s.timeouts) as f64 / s.requests as f64;
        if !span.is_zero() {
            s.throughput_per_s = s.requests as f64 / span.as_secs_f64();
        }
    }
    s
}

/// The quantiles an `hdrhistogram` of three significant figures would report for a set
/// of values, found by sorting them instead of filling a histogram.
///
/// A histogram reports the top of the equivalence range (its bucket) that holds the
/// value of rank `ceil(q * n)`. Sorting finds that value directly, and the histogram's
/// own `highest_equivalent` turns it into the same answer. Every run summarises four
/// phases of about a thousand requests; growing and scanning a histogram for each cost
/// more than the rest of the run's bookkeeping together.
struct Quantiles {
    sorted: Vec<u64>,
    /// Only asked for its bucket bounds: nothing is recorded in it.
    layout: Histogram<u64>,
}

impl Quantiles {
    fn of(mut values: Vec<u64>) -> Self {
        values.sort_unstable();
        Quantiles {
            sorted: values,
            layout: Histogram::new(3).expect("three significant figures are valid"),
        }
    }

    /// `Histogram::value_at_quantile` for `0 < q <= 1`, on a non-empty set.
    fn at(&self, q: f64) -> u64 {
        let n = self.sorted.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        self.layout.highest_equivalent(self.sorted[rank - 1])
    }

    /// `Histogram::max`, on a non-empty set.
    fn max(&self) -> u64 {
        self.layout
            .highest_equivalent(*self.sorted.last().expect("a non-empty set"))
    }
}

/// Named phases of a run, by the virtual time a request started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    pub phases: BTreeMap<String, Summary>,
}

/// Splits samples into before / during / after the fault window `[fault_start, fault_end)`.
pub fn by_phase(
    samples: &[Sample],
    fault_start: Option<Instant>,
    fault_end: Option<Instant>,
    run_end: Instant,
) -> Phases {
    let mut phases = BTreeMap::new();
    let all_span = run_end.duration_since(Instant::START);
    phases.insert("all".to_string(), summarise(samples, all_span));
    if let (Some(a), Some(b)) = (fault_start, fault_end) {
        let before: Vec<&Sample> = samples.iter().filter(|s| s.start < a).collect();
        let during: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.start >= a && s.start < b)
            .collect();
        let after: Vec<&Sample> = samples.iter().filter(|s| s.start >= b).collect();
        phases.insert(
            "1_before".to_string(),
            summarise(before, a.duration_since(Instant::START)),
        );
        phases.insert(
            "2_during".to_string(),
            summarise(during, b.duration_since(a)),
        );
        phases.insert(
            "3_after".to_string(),
            summarise(after, run_end.duration_since(b)),
        );
    }
    Phases { phases }
}

/// One bucket of requests over time: those that started in it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bucket {
    /// The bucket's start, in seconds of virtual time.
    pub start_s: f64,
    pub throughput_per_s: f64,
    /// `None` when no request started in the bucket.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub error_pct: Option<f64>,
}

/// Requests over time in buckets of `width` from the start to `end`, by start time: what
/// a report plots.
pub fn over_time(samples: &[Sample], width: Duration, end: Instant) -> Vec<Bucket> {
    let width_ns = width.as_nanos().max(1);
    let count = end
        .elapsed_since_start()
        .as_nanos()
        .div_ceil(width_ns)
        .max(1);
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let mut buckets: Vec<Vec<&Sample>> = vec![Vec::new(); count];
    for s in samples {
        let i = usize::try_from(s.start.elapsed_since_start().as_nanos() / width_ns)
            .unwrap_or(usize::MAX);
        if let Some(b) = buckets.get_mut(i) {
            b.push(s);
        }
    }
    buckets
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            let start_s = (i as f64) * width.as_secs_f64();
            if b.is_empty() {
                return Bucket {
                    start_s,
                    throughput_per_s: 0.0,
                    p50_ms: None,
                    p99_ms: None,
                    error_pct: None,
                };
            }
            let s = summarise(b, width);
            Bucket {
                start_s,
                throughput_per_s: s.throughput_per_s,
                p50_ms: Some(s.p50_ms),
                p99_ms: Some(s.p99_ms),
                error_pct: Some(s.error_pct),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ms: u64, outcome: RequestOutcome) -> Sample {
        Sample {
            start: Instant::START,
            latency: Duration::from_millis(ms),
            outcome,
        }
    }

    proptest::proptest! {
        /// The sorted quantiles are the ones a real histogram reports, over latencies
        /// from a microsecond to an hour.
        #[test]
        fn quantiles_are_what_a_histogram_reports(
            values in proptest::collection::vec(
                proptest::prop_oneof![1u64..5_000, 1u64..3_600_000_000],
                1..300,
            )
        ) {
            let mut h = Histogram::<u64>::new(3).unwrap();
            for &v in &values {
                h.record(v).unwrap();
            }
            let q = Quantiles::of(values);
            for p in [0.01, 0.5, 0.95, 0.99, 0.999, 1.0] {
                proptest::prop_assert_eq!(q.at(p), h.value_at_quantile(p), "quantile {}", p);
            }
            proptest::prop_assert_eq!(q.max(), h.max());
        }
    }

    #[test]
    fn percentiles_and_rates() {
        let mut v: Vec<Sample> = (1..=100).map(|i| sample(i, RequestOutcome::Ok)).collect();
        v[0].outcome = RequestOutcome::Timeout;
        v[1].outcome = RequestOutcome::Rejected;
        let s = summarise(&v, Duration::from_secs(10));
        assert_eq!(s.requests, 100);
        assert!((s.p50_ms - 50.0).abs() < 0.1, "{}", s.p50_ms);
        assert!((s.p99_ms - 99.0).abs() < 0.1, "{}", s.p99_ms);
        assert_eq!(s.availability_pct, 99.0);
        assert_eq!(s.error_pct, 1.0);
        assert_eq!(s.throughput_per_s, 10.0);
    }
}
