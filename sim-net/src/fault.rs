//! Network faults, in pairs: `partition`/`repair` (also one-way), `clog`/`unclog` of a
//! node, `hold`/`release` of one link, `isolate`/`rejoin` of a node; and mid-run link
//! changes (`set_link`, `add_latency`). Each fault is a `net.fault` trace event
//! ([`events::Fault`]), each link change a `net.link` ([`events::LinkChange`]).

use std::borrow::Cow;

use sim_runtime::node::NodeId;
use sim_runtime::time::Duration;
use sim_runtime::trace;

use crate::config::LinkConfig;
use crate::events::{self, FaultKind};
use crate::rule::{MessageInfo, RuleId, Verdict};
use crate::state;

fn emit(fault: FaultKind, a: &[NodeId], b: &[NodeId]) {
    trace::emit(&events::Fault {
        fault,
        a: Cow::Borrowed(a),
        b: Cow::Borrowed(b),
    });
}

fn emit_link(from: Option<NodeId>, to: Option<NodeId>, config: Option<LinkConfig>) {
    trace::emit(&events::LinkChange { from, to, config });
}

fn release() {
    let wakes = state::with(|n| n.release_held());
    for w in wakes {
        w.arm();
    }
}

/// Cuts both directions between every node of `a` and every node of `b`. Datagrams
/// across the cut are lost; connection traffic stalls (calls time out) until `repair`.
pub fn partition(a: &[NodeId], b: &[NodeId]) {
    emit(FaultKind::Partition, a, b);
    state::with(|n| {
        for &x in a {
            for &y in b {
                n.cuts.insert((x, y));
                n.cuts.insert((y, x));
            }
        }
    });
}

/// Cuts only `from` -> `to` traffic: requests get through one way, answers do not.
pub fn partition_oneway(from: &[NodeId], to: &[NodeId]) {
    emit(FaultKind::PartitionOneway, from, to);
    state::with(|n| {
        for &x in from {
            for &y in to {
                n.cuts.insert((x, y));
            }
        }
    });
}

/// Undoes `partition` (both directions) between `a` and `b`.
pub fn repair(a: &[NodeId], b: &[NodeId]) {
    emit(FaultKind::Repair, a, b);
    state::with(|n| {
        for &x in a {
            for &y in b {
                n.cuts.remove(&(x, y));
                n.cuts.remove(&(y, x));
            }
        }
    });
    release();
}

/// Removes every cut.
pub fn repair_all() {
    emit(FaultKind::RepairAll, &[], &[]);
    state::with(|n| n.cuts.clear());
    release();
}

/// Cuts `node` off from every other node.
pub fn isolate(node: NodeId) {
    let others: Vec<NodeId> = sim_runtime::node::all()
        .into_iter()
        .filter(|n| *n != node)
        .collect();
    emit(FaultKind::Isolate, &[node], &[]);
    state::with(|n| {
        for &o in &others {
            n.cuts.insert((node, o));
            n.cuts.insert((o, node));
        }
    });
}

/// Undoes `isolate`.
pub fn rejoin(node: NodeId) {
    let others: Vec<NodeId> = sim_runtime::node::all()
        .into_iter()
        .filter(|n| *n != node)
        .collect();
    emit(FaultKind::Rejoin, &[node], &[]);
    state::with(|n| {
        for &o in &others {
            n.cuts.remove(&(node, o));
            n.cuts.remove(&(o, node));
        }
    });
    release();
}

/// Holds all traffic to and from `node`; nothing is lost, everything waits.
pub fn clog(node: NodeId) {
    emit(FaultKind::Clog, &[node], &[]);
    state::with(|n| n.clogged.insert(node));
}

/// Delivers what `clog` held, in the order it was sent.
pub fn unclog(node: NodeId) {
    emit(FaultKind::Unclog, &[node], &[]);
    state::with(|n| n.clogged.remove(&node));
    release();
}

/// Holds the traffic of the link between `a` and `b`, both ways.
pub fn hold(a: NodeId, b: NodeId) {
    emit(FaultKind::Hold, &[a], &[b]);
    state::with(|n| {
        n.held_links.insert((a, b));
        n.held_links.insert((b, a));
    });
}

/// Delivers what `hold` held on the link between `a` and `b`.
pub fn release_link(a: NodeId, b: NodeId) {
    emit(FaultKind::Release, &[a], &[b]);
    state::with(|n| {
        n.held_links.remove(&(a, b));
        n.held_links.remove(&(b, a));
    });
    release();
}

/// Sets the default configuration of every link without its own.
pub fn set_default_link(config: LinkConfig) {
    emit_link(None, None, Some(config));
    state::with(|n| n.default_link = config);
}

/// Configures both directions between `a` and `b`.
pub fn set_link(a: NodeId, b: NodeId, config: LinkConfig) {
    set_link_oneway(a, b, config);
    set_link_oneway(b, a, config);
}

/// Configures the `from` -> `to` direction only.
pub fn set_link_oneway(from: NodeId, to: NodeId, config: LinkConfig) {
    emit_link(Some(from), Some(to), Some(config));
    state::with(|n| n.links.insert((from, to), config));
}

/// Returns the link between `a` and `b` (both directions) to the default.
pub fn reset_link(a: NodeId, b: NodeId) {
    emit_link(Some(a), Some(b), None);
    emit_link(Some(b), Some(a), None);
    state::with(|n| {
        n.links.remove(&(a, b));
        n.links.remove(&(b, a));
    });
}

/// Adds `extra` latency to both directions between `a` and `b` (on top of what the link
/// has now). `reset_link` undoes it.
pub fn add_latency(a: NodeId, b: NodeId, extra: Duration) {
    let (ab, ba) = state::with(|n| (n.link(a, b), n.link(b, a)));
    set_link_oneway(
        a,
        b,
        LinkConfig {
            latency: ab.latency.plus(extra),
            ..ab
        },
    );
    set_link_oneway(
        b,
        a,
        LinkConfig {
            latency: ba.latency.plus(extra),
            ..ba
        },
    );
}

/// The current configuration of the `from` -> `to` direction.
pub fn link(from: NodeId, to: NodeId) -> LinkConfig {
    state::with(|n| n.link(from, to))
}

/// Installs a per-message rule. Rules run in order; the first non-`Pass` verdict wins.
/// A rule must not call back into the network.
pub fn add_rule(rule: impl FnMut(&MessageInfo) -> Verdict + 'static) -> RuleId {
    state::with(|n| n.add_rule(Box::new(rule)))
}

/// Removes a rule.
pub fn remove_rule(id: RuleId) {
    state::with(|n| n.rules.retain(|(r, _)| *r != id));
}

/// Turns per-message trace events (send, deliver) on or off; faults and drops are always
/// traced. Off only for benchmarks that measure the network itself.
pub fn set_message_tracing(on: bool) {
    state::with(|n| n.trace_messages = on);
}
