//! Fault plumbing every scenario shares: undoing a window fault when its window ends,
//! slowing the links between nodes, and refusing a fault that names an instance that does
//! not exist. A scenario's own `apply` says what each of its faults does; these say how.

use sim_runtime::schedule::FaultSchedule;
use sim_runtime::time::{sleep, Duration, Instant};
use sim_runtime::NodeId;

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

/// Adds `extra` to the latency of each one-way link `from -> to` (toxiproxy's latency
/// toxic); [`sim_net::reset_link`] undoes it.
pub fn slow_links(links: impl IntoIterator<Item = (NodeId, NodeId)>, extra: Duration) {
    for (from, to) in links {
        let base = sim_net::link(from, to);
        let slow = sim_net::LinkConfig {
            latency: base.latency.plus(extra),
            ..base
        };
        sim_net::set_link_oneway(from, to, slow);
    }
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
    if instance < count {
        return Ok(());
    }
    Err(FaultProblem {
        field: "instance".into(),
        detail: format!(
            "{fault} of instance {instance}, but there are {count} API instances \
             (0 to {}); --api-instances sets how many",
            count.saturating_sub(1)
        ),
    })
}
