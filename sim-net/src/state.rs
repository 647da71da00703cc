//! The network's state inside one simulation: links, faults, listeners, connection
//! endpoints and datagram sockets. Pure bookkeeping; the async parts live in `conn`,
//! `datagram` and `rpc`.
//!
//! Delivery is lazy: a message is pushed into its receiver's queue stamped with its
//! arrival time. A receiver waiting on an empty queue is woken by a timer at that
//! arrival; one that finds the head still in flight waits on a timer until it has
//! arrived. No task exists per message and at most one timer, so cost per message is
//! O(log n) in messages in flight and independent of how many nodes exist.

use std::any::Any;
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::task::Waker;

use slab::Slab;

use sim_runtime::node::{self, Lifecycle, NodeId};
use sim_runtime::time::{self, Duration, Instant};
use sim_runtime::{trace, SimRng};

use crate::config::LinkConfig;
use crate::events::{self, DropReason};
use crate::rule::{MessageInfo, Rule, RuleId, Verdict};
use crate::Addr;

/// A message in flight or queued at its receiver.
pub(crate) struct Packet {
    pub arrival: Instant,
    pub src: Addr,
    pub src_incarnation: u32,
    pub payload: Payload,
}

pub(crate) enum Payload {
    Data(Box<dyn AnyMessage>),
    /// The sender closed its end: the receiver reads end-of-stream after the data.
    Fin,
}

impl Payload {
    fn duplicate(&self) -> Payload {
        match self {
            Payload::Data(m) => Payload::Data((**m).clone_box()),
            Payload::Fin => Payload::Fin,
        }
    }
}

/// A typed message behind a box: any `Clone + 'static` value. Clone so that the network
/// can duplicate it, as a real network duplicates packets.
pub(crate) trait AnyMessage: Any {
    fn clone_box(&self) -> Box<dyn AnyMessage>;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<T: Any + Clone> AnyMessage for T {
    fn clone_box(&self) -> Box<dyn AnyMessage> {
        Box::new(self.clone())
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// A receiver's waker and the instant its message arrives (see [`Net::enqueue`]).
pub(crate) struct Wake {
    pub waker: Waker,
    pub at: Instant,
    pub node: NodeId,
}

impl Wake {
    /// Wakes the receiver at the arrival; call it outside the network's borrow.
    pub(crate) fn arm(self) {
        time::wake_at_global(self.at, self.node, self.waker);
    }
}

/// Where a held message goes when its link opens.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target {
    Conn(usize),
    Socket {
        node: NodeId,
        port: u16,
        incarnation: u32,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EndState {
    Open,
    /// The peer crashed or the connection was torn down: reads and writes fail now.
    Reset,
    /// This end was closed by its owner.
    Closed,
}

/// One end of a connection: what it receives.
pub(crate) struct Endpoint {
    pub local: Addr,
    pub remote: Addr,
    pub incarnation: u32,
    pub peer: usize,
    pub queue: VecDeque<Packet>,
    /// Keeps the connection FIFO under jitter: nothing arrives before its predecessor.
    pub last_arrival: Instant,
    pub waker: Option<Waker>,
    pub state: EndState,
    pub fin_received: bool,
}

pub(crate) struct ListenerState {
    pub incarnation: u32,
    pub backlog: VecDeque<(Instant, usize)>,
    pub waker: Option<Waker>,
}

/// A datagram socket's receive queue, ordered by arrival (datagrams may reorder).
pub(crate) struct SocketState {
    pub incarnation: u32,
    pub queue: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    pub packets: Slab<Packet>,
    pub waker: Option<Waker>,
}

pub(crate) struct Net {
    pub default_link: LinkConfig,
    pub links: BTreeMap<(NodeId, NodeId), LinkConfig>,
    /// Directed cuts: (from, to) means nothing from `from` reaches `to`.
    pub cuts: BTreeSet<(NodeId, NodeId)>,
    /// Nodes whose traffic, both ways, is held until unclogged.
    pub clogged: BTreeSet<NodeId>,
    /// Directed links whose traffic is held until released.
    pub held_links: BTreeSet<(NodeId, NodeId)>,
    /// Messages held by clog/hold (and, on connections, by partitions), in send order.
    pub held: Vec<(Target, Packet, Addr)>,
    pub listeners: BTreeMap<(NodeId, u16), ListenerState>,
    pub endpoints: Slab<Endpoint>,
    pub sockets: BTreeMap<(NodeId, u16), SocketState>,
    pub rng: SimRng,
    pub rules: Vec<(RuleId, Rule)>,
    pub next_rule: u64,
    pub next_packet_seq: u64,
    pub next_ephemeral_port: u16,
    pub trace_messages: bool,
}

/// The per-simulation network, kept in the runtime's extension map.
#[derive(Default)]
pub(crate) struct NetCell {
    net: RefCell<Option<Net>>,
}

impl NetCell {
    fn ensure(&self) {
        let mut slot = self.net.borrow_mut();
        if slot.is_none() {
            *slot = Some(Net::new());
            drop(slot);
            // Crash semantics hang off node lifecycle events.
            node::on_lifecycle(|id, ev| {
                if ev == Lifecycle::Killed {
                    let wakers = with(|n| n.node_killed(id));
                    for w in wakers {
                        w.wake();
                    }
                }
            });
        }
    }
}

thread_local! {
    /// The running simulation's network, cached so that the hot path skips the runtime's
    /// extension map. The world owns the other reference: when the cache holds the only
    /// one, the simulation it belonged to is over and the cache is refreshed.
    static CACHED: std::cell::RefCell<Option<std::rc::Rc<NetCell>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` on this simulation's network, creating it on first use.
///
/// The cached cell is borrowed, not cloned, while `f` runs: this is on every message's
/// path, and a clone is a reference count up and down for nothing. (Only a stale cache
/// is written, which cannot happen inside a running simulation's `f`.)
pub(crate) fn with<R>(f: impl FnOnce(&mut Net) -> R) -> R {
    CACHED.with(|c| {
        let fresh = c
            .borrow()
            .as_ref()
            .is_some_and(|cell| std::rc::Rc::strong_count(cell) > 1);
        if !fresh {
            *c.borrow_mut() = Some(sim_runtime::extension::<NetCell>());
        }
        let slot = c.borrow();
        let cell = slot.as_ref().expect("cached above");
        if cell.net.borrow().is_none() {
            cell.ensure();
        }
        let mut guard = cell
            .net
            .try_borrow_mut()
            .expect("sim-net state re-entered (a rule hook called the network?)");
        f(guard.as_mut().expect("network initialised above"))
    })
}

impl Net {
    fn new() -> Self {
        Net {
            default_link: LinkConfig::default(),
            links: BTreeMap::new(),
            cuts: BTreeSet::new(),
            clogged: BTreeSet::new(),
            held_links: BTreeSet::new(),
            held: Vec::new(),
            listeners: BTreeMap::new(),
            endpoints: Slab::new(),
            sockets: BTreeMap::new(),
            rng: sim_runtime::rng_global("sim-net"),
            rules: Vec::new(),
            next_rule: 0,
            next_packet_seq: 0,
            next_ephemeral_port: 49152,
            trace_messages: true,
        }
    }

    pub(crate) fn link(&self, from: NodeId, to: NodeId) -> LinkConfig {
        self.links
            .get(&(from, to))
            .copied()
            .unwrap_or(self.default_link)
    }

    pub(crate) fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        from != to && !self.cuts.is_empty() && self.cuts.contains(&(from, to))
    }

    pub(crate) fn is_held(&self, from: NodeId, to: NodeId) -> bool {
        from != to
            && ((!self.clogged.is_empty()
                && (self.clogged.contains(&from) || self.clogged.contains(&to)))
                || (!self.held_links.is_empty() && self.held_links.contains(&(from, to))))
    }

    pub(crate) fn ephemeral_port(&mut self) -> u16 {
        let p = self.next_ephemeral_port;
        self.next_ephemeral_port = if p == u16::MAX { 49152 } else { p + 1 };
        p
    }

    fn apply_rules(&mut self, info: &MessageInfo) -> Verdict {
        for (_, rule) in self.rules.iter_mut() {
            let v = rule(info);
            if v != Verdict::Pass {
                return v;
            }
        }
        Verdict::Pass
    }

    pub(crate) fn add_rule(&mut self, rule: Rule) -> RuleId {
        self.next_rule += 1;
        let id = RuleId(self.next_rule);
        self.rules.push((id, rule));
        id
    }

    /// Traces a message (`net.send`, `net.deliver`, `net.duplicate`) as the runtime's
    /// compact core kind: endpoints as (node id, port), its kind as the endpoint named it
    /// (see [`crate::kind`]), so that nothing here costs more than a few words.
    pub(crate) fn trace_msg(
        &mut self,
        event: &'static str,
        src: Addr,
        dst: Addr,
        kind: &'static str,
    ) {
        if self.trace_messages {
            trace::emit_message(event, src.pair(), dst.pair(), kind);
        }
    }

    pub(crate) fn trace_drop(
        &mut self,
        src: Addr,
        dst: Addr,
        kind: &'static str,
        reason: DropReason,
    ) {
        trace::emit(&events::Dropped {
            src,
            dst,
            kind,
            reason,
        });
    }

    /// Decides a message's fate by the rules: extra delay, drop, or how many copies.
    pub(crate) fn judge(&mut self, info: &MessageInfo) -> Option<(Duration, usize)> {
        if self.rules.is_empty() {
            return Some((Duration::ZERO, 1));
        }
        match self.apply_rules(info) {
            Verdict::Pass => Some((Duration::ZERO, 1)),
            Verdict::Delay(d) => Some((d, 1)),
            Verdict::Drop => {
                self.trace_drop(info.src, info.dst, info.kind, DropReason::Rule);
                None
            }
            Verdict::Duplicate => {
                self.trace_msg("net.duplicate", info.src, info.dst, info.kind);
                Some((Duration::ZERO, 2))
            }
        }
    }

    /// Sends on a connection: from endpoint `from_ep` to its peer. Reliable and FIFO
    /// unless a rule drops or duplicates the message; a partition or clog holds it until
    /// repaired, as TCP would keep retransmitting.
    pub(crate) fn send_conn(
        &mut self,
        from_ep: usize,
        payload: Payload,
        kind: &'static str,
        is_reply: bool,
    ) -> Result<Option<Wake>, crate::NetError> {
        let e = &self.endpoints[from_ep];
        match e.state {
            EndState::Open => {}
            EndState::Reset => return Err(crate::NetError::Reset),
            EndState::Closed => return Err(crate::NetError::Closed),
        }
        let (src, dst, peer, src_incarnation) = (e.local, e.remote, e.peer, e.incarnation);
        let info = MessageInfo {
            src,
            dst,
            kind,
            is_reply,
        };
        let (extra, copies) = match payload {
            Payload::Data(_) => match self.judge(&info) {
                Some(v) => v,
                None => return Ok(None),
            },
            Payload::Fin => (Duration::ZERO, 1),
        };
        self.trace_msg("net.send", src, dst, kind);
        let now = time::now_global();
        let link = self.link(src.node, dst.node);
        let mut waker = None;
        let mut payload = Some(payload);
        for copy in 0..copies {
            let mut latency = link.latency.sample(&mut self.rng).saturating_add(extra);
            // TCP hides loss behind retransmission: each lost attempt costs a timeout.
            while self.rng.chance(link.loss_probability) {
                latency += link.retransmit_timeout;
            }
            let p = if copy + 1 == copies {
                payload.take().expect("last copy takes the payload")
            } else {
                payload
                    .as_ref()
                    .expect("payload kept until the last copy")
                    .duplicate()
            };
            let packet = Packet {
                arrival: now + latency,
                src,
                src_incarnation,
                payload: p,
            };
            if self.is_cut(src.node, dst.node) || self.is_held(src.node, dst.node) {
                self.held.push((Target::Conn(peer), packet, dst));
                continue;
            }
            let w = self.enqueue(peer, packet);
            waker = waker.or(w);
        }
        Ok(waker)
    }

    /// Puts a packet into a connection endpoint's queue, keeping FIFO order.
    ///
    /// A receiver waiting on an empty queue is woken at the message's arrival, not now:
    /// woken now it would only find the message still in flight and set a timer for it,
    /// a poll and a timer per message for nothing. Behind a queued message the receiver
    /// needs no wake at all: it already waits for that message, which arrives first.
    pub(crate) fn enqueue(&mut self, ep: usize, mut packet: Packet) -> Option<Wake> {
        let e = self.endpoints.get_mut(ep)?;
        if e.state != EndState::Open {
            return None;
        }
        packet.arrival = packet.arrival.max(e.last_arrival);
        e.last_arrival = packet.arrival;
        let at = packet.arrival;
        let was_empty = e.queue.is_empty();
        e.queue.push_back(packet);
        if !was_empty {
            return None;
        }
        // A clone, not the waker itself: a reset before the arrival must still wake the
        // receiver at once (see `node_killed`).
        let waker = e.waker.clone()?;
        Some(Wake {
            waker,
            at,
            node: e.local.node,
        })
    }

    /// Puts a datagram into a socket's queue, ordered by arrival.
    pub(crate) fn enqueue_datagram(
        &mut self,
        node: NodeId,
        port: u16,
        incarnation: u32,
        packet: Packet,
    ) -> Option<Waker> {
        let seq = self.next_seq();
        let sock = match self.sockets.get_mut(&(node, port)) {
            Some(s) if s.incarnation == incarnation => s,
            _ => return None,
        };
        let arrival = packet.arrival;
        let key = sock.packets.insert(packet);
        sock.queue.push(Reverse((arrival, seq, key)));
        sock.waker.take()
    }

    /// Releases held messages whose link is now open, in the order they were sent.
    pub(crate) fn release_held(&mut self) -> Vec<Wake> {
        let now = time::now_global();
        let held = std::mem::take(&mut self.held);
        let mut wakers = Vec::new();
        for (target, mut packet, dst) in held {
            if self.is_cut(packet.src.node, dst.node) || self.is_held(packet.src.node, dst.node) {
                self.held.push((target, packet, dst));
                continue;
            }
            let link = self.link(packet.src.node, dst.node);
            packet.arrival = packet.arrival.max(now + link.latency.sample(&mut self.rng));
            let w = match target {
                Target::Conn(ep) => self.enqueue(ep, packet),
                Target::Socket {
                    node,
                    port,
                    incarnation,
                } => self
                    .enqueue_datagram(node, port, incarnation, packet)
                    .map(|waker| Wake {
                        waker,
                        at: now,
                        node,
                    }),
            };
            if let Some(w) = w {
                wakers.push(w);
            }
        }
        wakers
    }

    /// Resets every connection and socket of a killed node; returns the wakers of the
    /// tasks (on other nodes) that must see the reset.
    pub(crate) fn node_killed(&mut self, node: NodeId) -> Vec<Waker> {
        let mut wakers = Vec::new();
        let mut dead = Vec::new();
        for (key, e) in self.endpoints.iter_mut() {
            if e.local.node == node {
                dead.push(key);
            } else if e.remote.node == node && e.state == EndState::Open {
                e.state = EndState::Reset;
                e.queue.clear();
                if let Some(w) = e.waker.take() {
                    wakers.push(w);
                }
            }
        }
        for key in dead {
            let e = &mut self.endpoints[key];
            e.state = EndState::Reset;
            e.queue.clear();
            if let Some(w) = e.waker.take() {
                wakers.push(w);
            }
        }
        self.listeners.retain(|(n, _), _| *n != node);
        self.sockets.retain(|(n, _), _| *n != node);
        // In-flight messages from or to the dead node never arrive.
        self.held
            .retain(|(_, p, dst)| p.src.node != node && dst.node != node);
        trace::emit(&events::NodeDown { node });
        wakers
    }

    pub(crate) fn new_endpoint(&mut self, local: Addr, remote: Addr, incarnation: u32) -> usize {
        self.endpoints.insert(Endpoint {
            local,
            remote,
            incarnation,
            peer: usize::MAX,
            queue: VecDeque::new(),
            last_arrival: Instant::START,
            waker: None,
            state: EndState::Open,
            fin_received: false,
        })
    }

    pub(crate) fn next_seq(&mut self) -> u64 {
        self.next_packet_seq += 1;
        self.next_packet_seq
    }
}
