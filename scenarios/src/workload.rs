//! Virtual users, as Locust or k6 would run them: they arrive at a spawn rate (with
//! exponential gaps, a Poisson process), think between requests, and each runs the
//! scenario's user script as its own task.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use futures::channel::oneshot;
use serde::{Deserialize, Serialize};
use sim_net::Addr;
use sim_runtime::task::{spawn_named, JoinHandle};
use sim_runtime::time::{sleep, Duration};
use sim_runtime::SimRng;
use sim_runtime::{node, NodeId};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkloadConfig {
    pub users: u32,
    /// Users started per second of virtual time.
    pub spawn_rate_per_s: f64,
    /// Mean pause between a user's requests.
    pub think_time_mean: Duration,
}

impl WorkloadConfig {
    /// `users` arriving at `spawn_rate_per_s`, thinking as long as the default.
    pub fn arrivals(users: u32, spawn_rate_per_s: f64) -> Self {
        WorkloadConfig {
            users,
            spawn_rate_per_s,
            ..WorkloadConfig::default()
        }
    }
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

/// Starts `config.users` users; `user(i, streams)` is user i's script, and
/// `streams.user(i)` its own random stream if it needs one. Returns their handles.
pub async fn run_users<F, Fut>(
    config: WorkloadConfig,
    rng: &mut SimRng,
    user: F,
) -> Vec<JoinHandle<()>>
where
    F: Fn(u32, &UserStreams) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let mut handles = Vec::with_capacity(config.users as usize);
    let mean_gap = 1.0 / config.spawn_rate_per_s.max(1e-9);
    let streams = UserStreams {
        parent: rng.clone(),
    };
    for i in 0..config.users {
        handles.push(spawn_named("user", user(i, &streams)));
        let gap = rng.exponential(mean_gap);
        sleep(Duration::from_secs_f64(gap)).await;
    }
    handles
}

/// Runs the users on a node of their own, `users`, which no fault touches, with the
/// stream `rng("users")` of that node; the receiver hears when the last user finished.
pub fn start_users_node<F, Fut>(config: WorkloadConfig, user: F) -> oneshot::Receiver<()>
where
    F: Fn(u32, &UserStreams) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let (tx, done) = oneshot::channel();
    let tx = Rc::new(RefCell::new(Some(tx)));
    let user = Rc::new(user);
    node::node("users").build(move || {
        let (tx, user) = (Rc::clone(&tx), Rc::clone(&user));
        async move {
            let mut rng = sim_runtime::rng("users");
            let handles = run_users(config, &mut rng, |i, streams| user(i, streams)).await;
            for h in handles {
                let _ = h.await;
            }
            if let Some(tx) = tx.borrow_mut().take() {
                let _ = tx.send(());
            }
        }
    });
    done
}

/// The address of `port` on each of `nodes`, once every one accepts a connection: a load
/// test starts once the service listens (as k6 starts after `npm start`).
/// Serves `api` on `port` of the current node until the node dies: each request is handled
/// by `handle` on a shared reference, as concurrent requests are on a real server.
pub async fn serve<A, Req, Resp, Fut>(port: u16, api: A, handle: fn(Rc<A>, Req) -> Fut)
where
    A: 'static,
    Req: Clone + 'static,
    Resp: Clone + 'static,
    Fut: Future<Output = Resp> + 'static,
{
    let api = Rc::new(api);
    let server = sim_net::serve(port, move |req: Req| handle(Rc::clone(&api), req));
    if let Ok(h) = server {
        let _ = h.await;
    }
}

pub async fn listening(nodes: &[NodeId], port: u16) -> Vec<Addr> {
    let addrs: Vec<Addr> = nodes.iter().map(|&n| Addr::new(n, port)).collect();
    for &addr in &addrs {
        while sim_net::connect::<(), ()>(addr, Duration::from_secs(1))
            .await
            .is_err()
        {
            sleep(Duration::from_millis(10)).await;
        }
    }
    addrs
}

/// Where users' random streams come from: user i's is forked from the workload's stream
/// by the name `user-{i}`. Forked on request, not for every user: a stream is a ChaCha
/// state of a few hundred bytes, and a script that draws nothing would carry it for
/// nothing. Forking never consumes draws, so asking or not changes no other stream.
#[derive(Clone, Debug)]
pub struct UserStreams {
    parent: SimRng,
}

impl UserStreams {
    pub fn user(&self, i: u32) -> SimRng {
        let mut name = String::with_capacity(16);
        name.push_str("user-");
        crate::text::push_decimal(&mut name, u64::from(i));
        self.parent.fork(&name)
    }
}

/// A think time drawn around the configured mean (exponential, capped at 5× the mean).
pub fn think_time(config: &WorkloadConfig, rng: &mut SimRng) -> Duration {
    let mean = config.think_time_mean.as_secs_f64();
    Duration::from_secs_f64(rng.exponential(mean).min(5.0 * mean))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_stream_is_the_workload_stream_forked_by_the_users_name() {
        let parent = SimRng::new(42);
        let streams = UserStreams {
            parent: parent.clone(),
        };
        let (mut ours, mut named) = (streams.user(7), parent.fork("user-7"));
        assert_eq!(ours.next_u64(), named.next_u64());
        assert_ne!(streams.user(8).next_u64(), parent.fork("user-7").next_u64());
    }
}
