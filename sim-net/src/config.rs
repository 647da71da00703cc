//! Link configuration: latency distributions, loss, duplication and reordering.
//! `Default` is a healthy LAN: 1 to 5 ms, nothing lost, duplicated or reordered.

use serde::{Deserialize, Serialize};
use sim_runtime::time::Duration;
use sim_runtime::{Probability, SimRng};

/// How long a message takes on a link.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Latency {
    Constant(Duration),
    /// Uniform in `[min, max]`.
    Uniform {
        min: Duration,
        max: Duration,
    },
    /// Log-normal with the given median and 99th percentile: most messages are quick,
    /// a few are very slow, as on a real network under load.
    LongTail {
        median: Duration,
        p99: Duration,
    },
}

impl Default for Latency {
    fn default() -> Self {
        Latency::Uniform {
            min: Duration::from_millis(1),
            max: Duration::from_millis(5),
        }
    }
}

/// z-score of the 99th percentile of the standard normal distribution.
const Z99: f64 = 2.326_347_874;

impl Latency {
    pub fn sample(&self, rng: &mut SimRng) -> Duration {
        match *self {
            Latency::Constant(d) => d,
            Latency::Uniform { min, max } => {
                // Past 2^64 ns (584 years) a bound saturates rather than wrapping to a
                // short delay: a huge latency must stay huge.
                let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
                let (lo, hi) = (nanos(min), nanos(max));
                if hi <= lo {
                    min
                } else {
                    Duration::from_nanos(rng.range_inclusive(lo, hi))
                }
            }
            Latency::LongTail { median, p99 } => {
                let mu = median.as_secs_f64().max(1e-9).ln();
                let sigma = ((p99.as_secs_f64().max(1e-9)).ln() - mu).max(0.0) / Z99;
                // Box-Muller: one standard normal from two uniforms.
                let u1 = 1.0 - rng.unit_f64();
                let u2 = rng.unit_f64();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                Duration::from_secs_f64((mu + sigma * z).exp().min(3600.0))
            }
        }
    }

    /// The same distribution shifted by `extra` (how "add 500 ms" is written).
    pub fn plus(self, extra: Duration) -> Latency {
        match self {
            Latency::Constant(d) => Latency::Constant(d.saturating_add(extra)),
            Latency::Uniform { min, max } => Latency::Uniform {
                min: min.saturating_add(extra),
                max: max.saturating_add(extra),
            },
            Latency::LongTail { median, p99 } => Latency::LongTail {
                median: median.saturating_add(extra),
                p99: p99.saturating_add(extra),
            },
        }
    }
}

/// One direction of a link between two nodes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkConfig {
    pub latency: Latency,
    /// Chance a datagram is lost. On a connection a loss costs a retransmission
    /// (`retransmit_timeout` of extra latency) instead, as TCP hides it.
    pub loss_probability: Probability,
    /// Chance a datagram is delivered twice (connections deduplicate, as TCP does).
    pub duplicate_probability: Probability,
    /// Chance a datagram is held back by up to `reorder_delay_max`, so later ones overtake it.
    pub reorder_probability: Probability,
    pub reorder_delay_max: Duration,
    pub retransmit_timeout: Duration,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            latency: Latency::default(),
            loss_probability: Probability::NEVER,
            duplicate_probability: Probability::NEVER,
            reorder_probability: Probability::NEVER,
            reorder_delay_max: Duration::from_millis(20),
            retransmit_timeout: Duration::from_millis(200),
        }
    }
}

impl LinkConfig {
    pub fn with_latency(mut self, latency: Latency) -> Self {
        self.latency = latency;
        self
    }

    pub fn with_loss(mut self, p: Probability) -> Self {
        self.loss_probability = p;
        self
    }

    pub fn with_duplication(mut self, p: Probability) -> Self {
        self.duplicate_probability = p;
        self
    }

    pub fn with_reordering(mut self, p: Probability, delay_max: Duration) -> Self {
        self.reorder_probability = p;
        self.reorder_delay_max = delay_max;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_past_64_bits_of_nanoseconds_saturate_instead_of_wrapping() {
        let mut rng = SimRng::new(1);
        let centuries = Duration::from_secs(700 * 365 * 24 * 3600);
        let uniform = Latency::Uniform {
            min: centuries,
            max: centuries + Duration::from_secs(1),
        };
        for _ in 0..100 {
            assert!(uniform.sample(&mut rng) >= Duration::from_nanos(u64::MAX));
        }
        let added = Latency::Constant(Duration::from_millis(1)).plus(Duration::MAX);
        assert_eq!(added.sample(&mut rng), Duration::MAX);
        let shifted = Latency::Uniform {
            min: Duration::from_millis(1),
            max: Duration::from_millis(2),
        }
        .plus(Duration::MAX);
        assert!(shifted.sample(&mut rng) >= Duration::from_nanos(u64::MAX));
    }
}
