//! Fault plumbing every scenario shares: undoing a window fault when its window ends,
//! the network and node faults of a window (slow links, a partition, a kill), and refusing
//! a fault that names an instance that does not exist. A scenario's own `apply` says what each of its faults does; these say how.

use sim_runtime::schedule::FaultSchedule;
use sim_runtime::time::{sleep, Duration, Instant};
use sim_runtime::{NodeId, SimRng, Swarm};

use crate::scenario::FaultProblem;

/// A fault that lasts a window: `None` lasts to the end of the run.
pub trait Windowed {
    fn duration(&self) -> Option<Duration>;
}

/// Runs `undo` when a window of `d` ends, in a task of its own; a fault with no end is
/// never undone.
pub fn revert_after(d: Option<Duration>, undo: impl FnOnce() + 'static) {
    if let Some(d) = d {
        sim_runtime::spawn_named("fault-revert", async move {
            sleep(d).await;
            undo();
        })
        .detach();
    }
}

/// Takes `target` down with `down` and brings it back with `up` when a window of `d`
/// ends: a dependency's fault verbs in pairs (`db_down`/`db_up`).
pub fn down_for<T: 'static>(d: Option<Duration>, target: T, down: fn(&T), up: fn(&T)) {
    down(&target);
    revert_after(d, move || up(&target));
}

/// Adds `extra` to the latency of each one-way link `from -> to` (toxiproxy's latency
/// toxic) for a window of `d`, then returns both directions of each link to the default.
pub fn slow_links_for(links: Vec<(NodeId, NodeId)>, extra: Duration, d: Option<Duration>) {
    for &(from, to) in &links {
        let base = sim_net::link(from, to);
        let slow = sim_net::LinkConfig {
            latency: base.latency.plus(extra),
            ..base
        };
        sim_net::set_link_oneway(from, to, slow);
    }
    // `reset_link` returns both directions at once: each pair once.
    let mut pairs: Vec<(NodeId, NodeId)> = links
        .into_iter()
        .map(|(a, b)| (a.min(b), a.max(b)))
        .collect();
    pairs.dedup();
    revert_after(d, move || {
        for (a, b) in pairs {
            sim_net::reset_link(a, b);
        }
    });
}

/// Cuts the nodes of `side` off from those of `others` for a window of `d`.
pub fn partition_for(side: Vec<NodeId>, others: Vec<NodeId>, d: Option<Duration>) {
    sim_net::partition(&side, &others);
    revert_after(d, move || sim_net::repair(&side, &others));
}

/// Kills `node` (every task on it dies) and restarts it when a window of `d` ends.
pub fn kill_for(node: NodeId, d: Option<Duration>) {
    node.kill();
    revert_after(d, move || node.restart());
}

/// When every fault of the schedule has healed (a permanent fault counts from its start).
pub fn healed_at<F: Windowed>(schedule: &FaultSchedule<F>) -> Instant {
    schedule
        .iter()
        .map(|f| f.at() + f.fault.duration().unwrap_or(Duration::ZERO))
        .max()
        .unwrap_or(Instant::START)
}

/// Refuses a fault aimed at API instance `instance` when there are only `count`.
pub fn instance_exists(fault: &str, instance: u32, count: u32) -> Result<(), FaultProblem> {
    member_exists(
        fault,
        "instance",
        ("API instances", "--api-instances"),
        instance,
        count,
    )
}

/// Refuses a fault whose `field` names member `index` of a group of `count` (`group`:
/// what the members are called, and the option that sets how many).
pub fn member_exists(
    fault: &str,
    field: &str,
    group: (&str, &str),
    index: u32,
    count: u32,
) -> Result<(), FaultProblem> {
    if index < count {
        return Ok(());
    }
    let (members, option) = group;
    Err(FaultProblem {
        field: field.into(),
        detail: format!(
            "{fault} of {field} {index}, but there are {count} {members} \
             (0 to {}); {option} sets how many",
            count.saturating_sub(1)
        ),
    })
}

/// A schedule drawn from `seed` over the fault `kinds` (swarm testing): the seed switches
/// each kind on or off and picks its rate, faults of a kind start within `horizon`,
/// `mean_gap` apart on average at full rate, and `draw` makes one fault of a kind.
pub fn swarm_of<F>(
    seed: u64,
    kinds: &[&str],
    horizon: Duration,
    mean_gap: Duration,
    draw: impl FnMut(&str, &mut SimRng) -> F,
) -> (Swarm, FaultSchedule<F>) {
    let swarm = Swarm::from_seed(seed, kinds);
    let schedule = swarm.generate(seed, horizon, mean_gap, draw);
    (swarm, schedule)
}
