//! Starting a cluster ([`start`]): the controller node, the broker nodes, and the
//! [`Cluster`] handle that creates topics and injects broker faults in pairs
//! (crash/restart, pause/resume, slow/fast).
//!
//! A crash is the broker node's death and nothing else: the cluster's lifecycle hook
//! decides what the broker loses and emits the one `queue.crash` event whenever the node
//! dies, so `node.kill()` from a fault schedule behaves and traces exactly as
//! [`Cluster::crash`] does. Restarts, pauses and resumes are traced (`queue.fault`) by the
//! same hook.
//!
//! The controller is one node that no fault verb touches: it stands for Kafka's KRaft
//! quorum (or ZooKeeper), which is replicated in real deployments and is not what this
//! model tests. Network faults from sim-net still apply to the links to it, so a broker
//! partitioned from the controller is fenced as in Kafka.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use sim_net::{rpc, Addr};
use sim_runtime::node::{self, Lifecycle, NodeId};
use sim_runtime::time::{self, Duration, Instant};
use sim_runtime::trace;

use super::broker::{self, BrokerShared, Wiring};
use super::config::Config;
use super::controller::{ControllerEvent, ControllerState};
use super::error::AdminError;
use super::events::{BrokerFault, CrashEvent, FaultEvent};
use super::protocol::{ControllerRequest, ControllerResponse};
use super::signal::Signal;
use super::state::{BrokerState, Settings, OFFSETS_TOPIC};
use super::types::{BrokerId, ClusterAddrs, TopicPartition};

/// How often the controller checks broker sessions.
const SESSION_CHECK: Duration = Duration::from_millis(100);

struct ControllerShared {
    state: RefCell<ControllerState>,
    signal: Signal,
}

impl ControllerShared {
    fn emit(&self, events: Vec<ControllerEvent>) {
        if events.is_empty() {
            return;
        }
        for e in &events {
            trace::emit(e);
        }
        self.signal.notify();
    }
}

struct Inner<V> {
    name: String,
    wiring: Rc<Wiring>,
    controller: Rc<ControllerShared>,
    brokers: Rc<[(NodeId, Rc<BrokerShared<V>>)]>,
}

/// A running cluster: the handle the test or scenario keeps. Cheap to clone.
pub struct Cluster<V> {
    inner: Rc<Inner<V>>,
}

impl<V> Clone for Cluster<V> {
    fn clone(&self) -> Self {
        Cluster {
            inner: Rc::clone(&self.inner),
        }
    }
}

impl<V> std::fmt::Debug for Cluster<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Cluster({}, {} brokers)",
            self.inner.name,
            self.inner.brokers.len()
        )
    }
}

/// Starts a cluster named `name`: a controller node `{name}-controller` and brokers
/// `{name}-0`, `{name}-1`, ... with `config`, and creates the internal offsets topic.
/// Topics are created with [`Cluster::create_topic`]. Call from inside a simulation.
pub fn start<V: Clone + 'static>(name: &str, config: Config) -> Cluster<V> {
    assert!(config.brokers > 0, "a cluster needs at least one broker");
    let controller = Rc::new(ControllerShared {
        state: RefCell::new(ControllerState::new(
            config.brokers,
            config.broker_session_timeout,
            config.unclean_leader_election,
        )),
        signal: Signal::default(),
    });
    let ctl = Rc::clone(&controller);
    let port = config.controller_port;
    let controller_node = node::node(format!("{name}-controller"))
        .build(move || run_controller(Rc::clone(&ctl), port));
    let wiring = Rc::new(Wiring {
        config: config.clone(),
        controller: Addr::new(controller_node, port),
        brokers: RefCell::new(Vec::new()),
    });
    let settings = Settings {
        min_insync_replicas: config.min_insync_replicas,
        replica_lag_time_max: config.replica_lag_time_max,
        offsets_topic_partitions: config.offsets_topic_partitions,
        fetch_max_entries: config.fetch_max_entries,
    };
    let mut brokers = Vec::with_capacity(config.brokers);
    for i in 0..config.brokers {
        let shared = Rc::new(BrokerShared {
            id: i as BrokerId,
            state: RefCell::new(BrokerState::new(i as BrokerId, settings.clone())),
            signal: Signal::default(),
            members: Signal::default(),
            slow: Cell::new(Duration::ZERO),
        });
        let (s, w) = (Rc::clone(&shared), Rc::clone(&wiring));
        let id = node::node(format!("{name}-{i}"))
            .build(move || broker::run(Rc::clone(&s), Rc::clone(&w)));
        wiring.brokers.borrow_mut().push(Addr::new(id, config.port));
        brokers.push((id, shared));
    }
    let replication = config.offsets_topic_replication.clamp(1, config.brokers);
    let created = controller
        .state
        .borrow_mut()
        .create_topic(OFFSETS_TOPIC, config.offsets_topic_partitions, replication)
        .expect("the offsets topic is valid");
    controller.emit(created);
    let brokers: Rc<[_]> = brokers.into();
    // Held strongly: the brokers' state outlives the handle (a fault schedule may kill a
    // node after the test dropped its handle), as their node factories hold it too.
    let (hooked, cluster) = (Rc::clone(&brokers), name.to_string());
    node::on_lifecycle(move |id, change| {
        if let Some((_, shared)) = hooked.iter().find(|(n, _)| *n == id) {
            on_lifecycle(&cluster, shared, change);
        }
    });
    Cluster {
        inner: Rc::new(Inner {
            name: name.to_string(),
            wiring,
            controller,
            brokers,
        }),
    }
}

/// What a broker's node going down, up, still or on again means for the model: a death
/// loses what the process held in memory (its roles, its groups), never its logs.
fn on_lifecycle<V: Clone>(cluster: &str, broker: &BrokerShared<V>, change: Lifecycle) {
    let fault = match change {
        Lifecycle::Killed => {
            let lost = broker.state.borrow_mut().crash();
            trace::emit(&CrashEvent {
                cluster: cluster.to_string(),
                broker: broker.id,
                leaderships: lost.leaderships,
                groups: lost.groups,
            });
            return;
        }
        Lifecycle::Restarted => BrokerFault::Restart,
        Lifecycle::Paused => BrokerFault::Pause,
        Lifecycle::Resumed => BrokerFault::Resume,
    };
    emit_fault(cluster, broker.id, fault, None);
}

fn emit_fault(cluster: &str, broker: BrokerId, fault: BrokerFault, delay: Option<Duration>) {
    trace::emit(&FaultEvent {
        cluster: cluster.to_string(),
        broker,
        fault,
        delay_ms: delay.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    });
}

async fn run_controller(ctl: Rc<ControllerShared>, port: u16) {
    let server = Rc::clone(&ctl);
    rpc::serve(port, move |req: ControllerRequest| {
        handle_controller(Rc::clone(&server), req)
    })
    .expect("the controller's port is free")
    .detach();
    // Sessions are checked on a `SESSION_CHECK` grid from the controller's start, as a
    // ticker would, but only at the first tick past the earliest session deadline: the
    // ticks before it cannot fence anyone. A registration (a new deadline) moves the
    // signal and the deadline is recomputed.
    let start = time::now();
    let tick_after = |deadline: Instant| {
        let since = deadline.duration_since(start).as_nanos();
        let step = SESSION_CHECK.as_nanos();
        let ticks = (since / step + 1).saturating_mul(step);
        start + Duration::from_nanos(u64::try_from(ticks).unwrap_or(u64::MAX))
    };
    loop {
        let seen = ctl.signal.version();
        let next = ctl.state.borrow().next_fence_deadline();
        match next.map(tick_after) {
            Some(tick) => {
                let now = time::now();
                if tick > now {
                    let changed = ctl.signal.changed(seen);
                    if time::timeout(tick.duration_since(now), changed)
                        .await
                        .is_ok()
                    {
                        continue;
                    }
                }
            }
            None => {
                ctl.signal.changed(seen).await;
                continue;
            }
        }
        let events = ctl.state.borrow_mut().tick(time::now());
        ctl.emit(events);
    }
}

async fn handle_controller(
    ctl: Rc<ControllerShared>,
    req: ControllerRequest,
) -> ControllerResponse {
    match req {
        ControllerRequest::Heartbeat {
            broker,
            incarnation,
            known_version,
            max_wait,
        } => {
            let events = ctl
                .state
                .borrow_mut()
                .heartbeat(broker, incarnation, time::now());
            ctl.emit(events);
            let deadline = time::now() + max_wait;
            loop {
                let seen = ctl.signal.version();
                {
                    let st = ctl.state.borrow();
                    if known_version.is_none_or(|k| st.version() > k) {
                        return ControllerResponse::Metadata(Some(st.metadata()));
                    }
                }
                let now = time::now();
                if now >= deadline {
                    return ControllerResponse::Metadata(None);
                }
                let _ = time::timeout(deadline - now, ctl.signal.changed(seen)).await;
            }
        }
        ControllerRequest::AlterIsr { broker, proposal } => {
            let r = ctl.state.borrow_mut().alter_isr(
                &proposal.tp,
                broker,
                proposal.leader_epoch,
                proposal.partition_epoch,
                proposal.isr,
            );
            ControllerResponse::AlterIsr(r.map(|(st, event)| {
                ctl.emit(vec![event]);
                st
            }))
        }
    }
}

impl<V: Clone + 'static> Cluster<V> {
    /// The brokers' addresses in id order: what producers and consumers bootstrap from.
    pub fn addrs(&self) -> ClusterAddrs<V> {
        ClusterAddrs::new(self.inner.wiring.brokers.borrow().clone())
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn config(&self) -> &Config {
        &self.inner.wiring.config
    }

    pub fn broker_count(&self) -> usize {
        self.inner.brokers.len()
    }

    /// The node broker `b` runs on (for network faults aimed at it).
    pub fn broker_node(&self, b: BrokerId) -> NodeId {
        self.inner.brokers[b as usize].0
    }

    /// Whether broker `b`'s process is running or paused (not crashed).
    pub fn is_alive(&self, b: BrokerId) -> bool {
        self.broker_node(b).is_alive()
    }

    /// Kills broker `b`'s process (kill -9), exactly as `node.kill()` on its node does:
    /// its logs survive on disk, everything else is lost (one `queue.crash` event). Its
    /// leaderships move after `broker_session_timeout`.
    pub fn crash(&self, b: BrokerId) {
        self.broker_node(b).kill();
    }

    /// Starts broker `b`'s process again (killing it first if it runs); it re-registers
    /// and catches up from the leaders.
    pub fn restart(&self, b: BrokerId) {
        self.broker_node(b).restart();
    }

    /// Freezes broker `b`'s process (SIGSTOP, a long GC pause): requests queue up
    /// unanswered.
    pub fn pause(&self, b: BrokerId) {
        self.broker_node(b).pause();
    }

    pub fn resume(&self, b: BrokerId) {
        self.broker_node(b).resume();
    }

    /// Every request broker `b` handles (client or follower) waits `delay` first, as with
    /// a slow disk. Survives the broker's crashes until [`Cluster::fast`].
    pub fn slow(&self, b: BrokerId, delay: Duration) {
        emit_fault(&self.inner.name, b, BrokerFault::Slow, Some(delay));
        self.inner.brokers[b as usize].1.slow.set(delay);
    }

    pub fn fast(&self, b: BrokerId) {
        emit_fault(&self.inner.name, b, BrokerFault::Fast, None);
        self.inner.brokers[b as usize].1.slow.set(Duration::ZERO);
    }

    /// Creates a topic with `partitions` partitions, each on `replication` brokers.
    ///
    /// Waits (in simulated time, at most one broker session timeout) for the brokers to
    /// register first, so that leaders spread over them, and afterwards for each leader to
    /// know it leads, so that clients can use the topic at once.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        replication: usize,
    ) -> Result<(), AdminError> {
        let bound = time::now() + self.config().broker_session_timeout;
        let poll = Duration::from_millis(10);
        while time::now() < bound
            && self
                .inner
                .controller
                .state
                .borrow()
                .metadata()
                .live_brokers
                .len()
                < self.broker_count()
        {
            time::sleep(poll).await;
        }
        let events =
            self.inner
                .controller
                .state
                .borrow_mut()
                .create_topic(name, partitions, replication)?;
        self.inner.controller.emit(events);
        while time::now() < bound && !self.leaders_ready(name, partitions) {
            time::sleep(poll).await;
        }
        Ok(())
    }

    fn leaders_ready(&self, topic: &str, partitions: u32) -> bool {
        (0..partitions).all(|p| {
            let tp = TopicPartition::new(topic, p);
            match self.leader(topic, p) {
                Some(l) => self.inner.brokers[l as usize]
                    .1
                    .state
                    .borrow()
                    .is_leader(&tp),
                None => true,
            }
        })
    }

    /// The partition's leader as the controller sees it (`None`: offline or unknown).
    pub fn leader(&self, topic: &str, partition: u32) -> Option<BrokerId> {
        let st = self.inner.controller.state.borrow();
        st.partition(&TopicPartition::new(topic, partition))?.leader
    }

    /// The partition's in-sync replicas as the controller sees them.
    pub fn isr(&self, topic: &str, partition: u32) -> Vec<BrokerId> {
        let st = self.inner.controller.state.borrow();
        st.partition(&TopicPartition::new(topic, partition))
            .map_or_else(Vec::new, |p| p.isr.clone())
    }

    /// The offset `group` has committed for a partition, as its coordinator holds it (an
    /// operator's `kafka-consumer-groups --describe`); `None` when nothing was committed
    /// or the coordinator is down.
    pub fn committed_offset(&self, group: &str, topic: &str, partition: u32) -> Option<u64> {
        let tp = TopicPartition::new(topic, partition);
        for (node, broker) in self.inner.brokers.iter() {
            if !node.is_alive() {
                continue;
            }
            let mut state = broker.state.borrow_mut();
            if let Ok(v) = state.committed_offsets(group, std::slice::from_ref(&tp)) {
                return v.into_iter().next().and_then(|(_, o)| o);
            }
        }
        None
    }

    /// The log end offset of broker `b`'s replica of a partition (for tests that wait
    /// for replication).
    pub fn log_end_offset(&self, b: BrokerId, topic: &str, partition: u32) -> Option<u64> {
        let tp = TopicPartition::new(topic, partition);
        let state = self.inner.brokers[b as usize].1.state.borrow();
        state.replica(&tp).map(|r| r.log.leo())
    }
}
