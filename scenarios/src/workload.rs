//! Virtual users, as Locust or k6 would run them: they arrive at a spawn rate (with
//! exponential gaps, a Poisson process), think between requests, and each runs the
//! scenario's user script as its own task.

use std::future::Future;

use serde::{Deserialize, Serialize};
use sim_runtime::task::{spawn_named, JoinHandle};
use sim_runtime::time::{sleep, Duration};
use sim_runtime::SimRng;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkloadConfig {
    pub users: u32,
    /// Users started per second of virtual time.
    pub spawn_rate_per_s: f64,
    /// Mean pause between a user's requests.
    pub think_time_mean: Duration,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            users: 1000,
            spawn_rate_per_s: 100.0,
            think_time_mean: Duration::from_millis(500),
        }
    }
}

/// Starts `config.users` users; `user(i, rng)` is user i's script. Returns their handles.
pub async fn run_users<F, Fut>(
    config: WorkloadConfig,
    rng: &mut SimRng,
    user: F,
) -> Vec<JoinHandle<()>>
where
    F: Fn(u32, SimRng) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let mut handles = Vec::with_capacity(config.users as usize);
    let mean_gap = 1.0 / config.spawn_rate_per_s.max(1e-9);
    // Each user's stream is forked by the name `user-{i}`, built in one reused buffer.
    let mut name = String::new();
    for i in 0..config.users {
        name.clear();
        name.push_str("user-");
        crate::text::push_decimal(&mut name, u64::from(i));
        let user_rng = rng.fork(&name);
        handles.push(spawn_named("user", user(i, user_rng)));
        let gap = rng.exponential(mean_gap);
        sleep(Duration::from_secs_f64(gap)).await;
    }
    handles
}

/// A think time drawn around the configured mean (exponential, capped at 5× the mean).
pub fn think_time(config: &WorkloadConfig, rng: &mut SimRng) -> Duration {
    let mean = config.think_time_mean.as_secs_f64();
    Duration::from_secs_f64(rng.exponential(mean).min(5.0 * mean))
}
