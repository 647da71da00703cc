//! A broker node: the async shell around [`BrokerState`]. It serves client and follower
//! requests on one port, heartbeats to the controller (receiving metadata in return),
//! runs one fetcher per partition it follows, asks the controller to shrink or expand
//! ISRs, and expires group members whose session ran out.
//!
//! The state lives outside the node (in [`BrokerShared`]) so that a restarted incarnation
//! finds its logs again; the cluster's lifecycle hook drops what a crash loses
//! ([`BrokerState::crash`]) when the node dies.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use sim_net::rpc;
use sim_net::Addr;
use sim_runtime::node;
use sim_runtime::task::{self, JoinHandle};
use sim_runtime::time::{self, Duration, Instant};
use sim_runtime::trace;

use super::config::Config;
use super::controller::AlterIsrError;
use super::error::ErrorCode;
use super::events::{
    AppendEvent, FetchEvent, GroupChange, GroupEvent, ReplicateEvent, TruncateEvent,
};
use super::protocol::{ControllerRequest, ControllerResponse, Request, Response};
use super::signal::Signal;
use super::state::{AckStatus, BrokerState, IsrProposal, ReplicaFetch, RoleChange};
use super::types::{Acks, BrokerId, TopicPartition};

/// How long a follower waits after a failed fetch (Kafka's `replica.fetch.backoff.ms`).
const REPLICA_FETCH_BACKOFF: Duration = Duration::from_secs(1);
/// How long a coordinator waits for a commit to replicate (`offsets.commit.timeout.ms`).
const OFFSETS_COMMIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often group sessions are checked for expiry.
const GROUP_EXPIRY_CHECK: Duration = Duration::from_millis(100);

/// A broker's state and fault switches, shared by all its incarnations.
pub(crate) struct BrokerShared<V> {
    pub id: BrokerId,
    pub state: RefCell<BrokerState<V>>,
    /// Woken when logs, high watermarks or roles change.
    pub signal: Signal,
    /// Woken when a member joins a group this broker coordinates (its session deadline
    /// may be the earliest), so the expiry check need not tick while nothing can expire.
    pub members: Signal,
    /// The `slow(d)` fault: every request waits this long before it is handled.
    pub slow: Cell<Duration>,
}

/// What every node of a cluster knows about the others.
pub(crate) struct Wiring {
    pub config: Config,
    pub controller: Addr,
    pub brokers: RefCell<Vec<Addr>>,
}

impl Wiring {
    pub fn broker(&self, id: BrokerId) -> Addr {
        self.brokers.borrow()[id as usize]
    }
}

/// One incarnation of a broker process.
struct Broker<V> {
    shared: Rc<BrokerShared<V>>,
    wiring: Rc<Wiring>,
    fetchers: RefCell<BTreeMap<TopicPartition, JoinHandle<()>>>,
}

/// The broker node's main task.
pub(crate) async fn run<V: Clone + 'static>(shared: Rc<BrokerShared<V>>, wiring: Rc<Wiring>) {
    let b = Rc::new(Broker {
        shared,
        wiring,
        fetchers: RefCell::new(BTreeMap::new()),
    });
    let server = Rc::clone(&b);
    rpc::serve(b.wiring.config.port, move |req: Request<V>| {
        Rc::clone(&server).handle(req)
    })
    .expect("the broker's port is free in a new incarnation")
    .detach();
    task::spawn_named("queue-isr", Rc::clone(&b).isr_loop()).detach();
    task::spawn_named("queue-group-expiry", Rc::clone(&b).expiry_loop()).detach();
    b.heartbeat_loop().await;
}

impl<V: Clone + 'static> Broker<V> {
    fn id(&self) -> BrokerId {
        self.shared.id
    }

    fn config(&self) -> &Config {
        &self.wiring.config
    }

    /// Waits until `check` gives an answer or `deadline` passes (`None`), re-checking
    /// whenever the broker's signal moves.
    async fn wait_for<T>(
        &self,
        deadline: Instant,
        mut check: impl FnMut(&Self) -> Option<T>,
    ) -> Option<T> {
        loop {
            let seen = self.shared.signal.version();
            if let Some(t) = check(self) {
                return Some(t);
            }
            let now = time::now();
            if now >= deadline {
                return None;
            }
            let _ = time::timeout(deadline - now, self.shared.signal.changed(seen)).await;
        }
    }

    async fn handle(self: Rc<Self>, req: Request<V>) -> Response<V> {
        let slow = self.shared.slow.get();
        if !slow.is_zero() {
            time::sleep(slow).await;
        }
        match req {
            Request::Metadata => Response::Metadata(self.shared.state.borrow().metadata().clone()),
            Request::Produce {
                tp,
                acks,
                record,
                timeout,
            } => Response::Produce(self.produce(tp, acks, record, timeout).await),
            Request::Fetch {
                partitions,
                max_wait,
                max_records,
            } => self.fetch(partitions, max_wait, max_records).await,
            Request::ReplicaFetch {
                follower,
                tp,
                fetch_offset,
                last_fetched_epoch,
                max_wait,
            } => {
                self.replica_fetch(follower, tp, fetch_offset, last_fetched_epoch, max_wait)
                    .await
            }
            Request::ListOffsets { tp } => {
                Response::ListOffsets(self.shared.state.borrow().list_offsets(&tp))
            }
            Request::FindCoordinator { group } => {
                Response::Coordinator(self.shared.state.borrow().coordinator_for(&group))
            }
            Request::JoinGroup {
                group,
                member,
                topics,
                session_timeout,
                assignor,
            } => {
                let r = self.shared.state.borrow_mut().join_group(
                    &group,
                    &member,
                    topics,
                    session_timeout,
                    assignor,
                    time::now(),
                );
                if let Ok(a) = &r {
                    self.group_event(&group, &member, GroupChange::Join, a.epoch);
                    self.shared.members.notify();
                }
                Response::Assignment(r)
            }
            Request::Heartbeat {
                group,
                member,
                owned,
            } => Response::Assignment(self.shared.state.borrow_mut().heartbeat(
                &group,
                &member,
                owned,
                time::now(),
            )),
            Request::LeaveGroup { group, member } => {
                let r = self.shared.state.borrow_mut().leave_group(&group, &member);
                if r.is_ok() {
                    let epoch = self
                        .shared
                        .state
                        .borrow()
                        .group(&group)
                        .map_or(0, |g| g.epoch());
                    self.group_event(&group, &member, GroupChange::Leave, epoch);
                }
                Response::Left(r)
            }
            Request::OffsetCommit {
                group,
                member,
                offsets,
            } => Response::Committed(self.commit(&group, member.as_deref(), offsets).await),
            Request::OffsetFetch { group, partitions } => Response::Offsets(
                self.shared
                    .state
                    .borrow_mut()
                    .committed_offsets(&group, &partitions),
            ),
        }
    }

    async fn produce(
        &self,
        tp: TopicPartition,
        acks: Acks,
        record: super::state::NewRecord<V>,
        timeout: Duration,
    ) -> Result<(u64, bool), ErrorCode> {
        let id = record.id;
        let appended = self
            .shared
            .state
            .borrow_mut()
            .produce(&tp, acks, record, time::now())?;
        trace::emit(&AppendEvent {
            broker: self.id(),
            topic: Cow::Borrowed(&tp.topic),
            partition: tp.partition,
            offset: appended.offset,
            id,
            leader_epoch: appended.leader_epoch,
            duplicate: appended.duplicate,
        });
        self.shared.signal.notify();
        if acks != Acks::All {
            return Ok((appended.offset, appended.duplicate));
        }
        let status = self
            .wait_for(time::now() + timeout, |b| {
                match b.shared.state.borrow().ack_status(
                    &tp,
                    appended.offset,
                    appended.leader_epoch,
                ) {
                    AckStatus::Pending => None,
                    done => Some(done),
                }
            })
            .await;
        match status {
            Some(AckStatus::Done) => Ok((appended.offset, appended.duplicate)),
            Some(AckStatus::Failed(e)) => Err(e),
            Some(AckStatus::Pending) | None => Err(ErrorCode::RequestTimedOut),
        }
    }

    async fn fetch(
        &self,
        partitions: Vec<(TopicPartition, u64)>,
        max_wait: Duration,
        max_records: usize,
    ) -> Response<V> {
        let results = self
            .wait_for(time::now() + max_wait, |b| {
                let state = b.shared.state.borrow();
                let results: Vec<_> = partitions
                    .iter()
                    .map(|(tp, offset)| {
                        (tp.clone(), state.consumer_fetch(tp, *offset, max_records))
                    })
                    .collect();
                let ready = results
                    .iter()
                    .any(|(_, r)| r.as_ref().map_or(true, |v| !v.is_empty()));
                ready.then_some(results)
            })
            .await;
        let Some(results) = results else {
            return Response::Fetch(
                partitions
                    .into_iter()
                    .map(|(tp, _)| (tp, Ok(Vec::new())))
                    .collect(),
            );
        };
        for (tp, r) in &results {
            if let Ok(records) = r {
                if let Some(first) = records.first() {
                    trace::emit(&FetchEvent {
                        broker: self.id(),
                        topic: Cow::Borrowed(&tp.topic),
                        partition: tp.partition,
                        from: first.offset,
                        count: records.len(),
                    });
                }
            }
        }
        Response::Fetch(results)
    }

    async fn replica_fetch(
        self: &Rc<Self>,
        follower: BrokerId,
        tp: TopicPartition,
        fetch_offset: u64,
        last_fetched_epoch: Option<u32>,
        max_wait: Duration,
    ) -> Response<V> {
        let answer = self
            .wait_for(time::now() + max_wait, |b| {
                let mut state = b.shared.state.borrow_mut();
                let hw_before = state.replica(&tp).map(|r| r.high_watermark());
                let r = state.replica_fetch(&tp, follower, fetch_offset, last_fetched_epoch, time::now());
                let hw_after = state.replica(&tp).map(|r| r.high_watermark());
                drop(state);
                if hw_after != hw_before {
                    // Waiting acks=all requests and consumer fetches may proceed now.
                    b.shared.signal.notify();
                }
                match r {
                    Err(e) => Some(Err(e)),
                    Ok((fetch, proposal)) => {
                        if let Some(p) = proposal {
                            self.spawn_alter_isr(p);
                        }
                        let empty = matches!(&fetch, ReplicaFetch::Records { entries, .. } if entries.is_empty());
                        (!empty).then_some(Ok(fetch))
                    }
                }
            })
            .await;
        let answer = answer.unwrap_or_else(|| {
            // Nothing new in time: answer with the current high watermark.
            let hw = self
                .shared
                .state
                .borrow()
                .replica(&tp)
                .map_or(0, |r| r.high_watermark());
            Ok(ReplicaFetch::Records {
                entries: Vec::new(),
                high_watermark: hw,
            })
        });
        Response::ReplicaFetch(answer)
    }

    async fn commit(
        &self,
        group: &str,
        member: Option<&str>,
        offsets: Vec<(TopicPartition, u64)>,
    ) -> Result<(), ErrorCode> {
        let (otp, appended) =
            self.shared
                .state
                .borrow_mut()
                .begin_commit(group, member, &offsets, time::now())?;
        self.shared.signal.notify();
        let status = self
            .wait_for(time::now() + OFFSETS_COMMIT_TIMEOUT, |b| {
                match b.shared.state.borrow().ack_status(
                    &otp,
                    appended.offset,
                    appended.leader_epoch,
                ) {
                    AckStatus::Pending => None,
                    done => Some(done),
                }
            })
            .await;
        match status {
            Some(AckStatus::Done) => {
                self.shared
                    .state
                    .borrow_mut()
                    .finish_commit(group, &offsets);
                Ok(())
            }
            Some(AckStatus::Failed(ErrorCode::NotLeaderOrFollower)) => {
                Err(ErrorCode::NotCoordinator)
            }
            Some(AckStatus::Failed(_)) => Err(ErrorCode::CoordinatorNotAvailable),
            Some(AckStatus::Pending) | None => Err(ErrorCode::RequestTimedOut),
        }
    }

    fn group_event(&self, group: &str, member: &str, change: GroupChange, epoch: u32) {
        trace::emit(&GroupEvent {
            broker: self.id(),
            group: group.to_string(),
            member: member.to_string(),
            change,
            epoch,
        });
    }

    /// Heartbeats to the controller, which answers with metadata when it changed.
    async fn heartbeat_loop(self: Rc<Self>) {
        let incarnation = node::current().incarnation();
        let interval = self.config().broker_heartbeat_interval;
        loop {
            let known = {
                let v = self.shared.state.borrow().metadata().version;
                (v > 0).then_some(v)
            };
            let req = ControllerRequest::Heartbeat {
                broker: self.id(),
                incarnation,
                known_version: known,
                max_wait: interval,
            };
            let answer = rpc::call::<ControllerRequest, ControllerResponse>(
                self.wiring.controller,
                req,
                interval * 2,
            )
            .await;
            match answer {
                Ok(ControllerResponse::Metadata(Some(md))) => self.apply_metadata(md),
                Ok(_) => {}
                Err(_) => time::sleep(interval / 4).await,
            }
        }
    }

    fn apply_metadata(self: &Rc<Self>, md: super::controller::ClusterMetadata) {
        let changes = self
            .shared
            .state
            .borrow_mut()
            .apply_metadata(md, time::now());
        for c in changes {
            match c {
                RoleChange::Leader { tp, .. } => self.stop_fetcher(&tp),
                RoleChange::Follower {
                    tp,
                    leader: Some(leader),
                    ..
                } => {
                    self.stop_fetcher(&tp);
                    let h = task::spawn_named(
                        "queue-replica-fetcher",
                        Rc::clone(self).fetcher(tp.clone(), leader),
                    );
                    self.fetchers.borrow_mut().insert(tp, h);
                }
                RoleChange::Follower {
                    tp, leader: None, ..
                } => self.stop_fetcher(&tp),
            }
        }
        // Requests waiting on a leadership this broker just lost must fail now.
        self.shared.signal.notify();
    }

    fn stop_fetcher(&self, tp: &TopicPartition) {
        if let Some(mut h) = self.fetchers.borrow_mut().remove(tp) {
            h.abort();
        }
    }

    /// Copies `tp` from `leader`, truncating first if the logs diverged.
    async fn fetcher(self: Rc<Self>, tp: TopicPartition, leader: BrokerId) {
        let addr = self.wiring.broker(leader);
        let delay = self.config().replica_fetch_delay;
        // A lagging follower polls every `delay` instead of parking a fetch at the leader,
        // so records appended between two polls exist only on the leader meanwhile.
        let wait = if delay.is_zero() {
            self.config().replica_fetch_wait_max
        } else {
            Duration::ZERO
        };
        let timeout = wait + self.config().internal_request_timeout;
        loop {
            if !delay.is_zero() {
                time::sleep(delay).await;
            }
            let Some((offset, epoch)) = self.shared.state.borrow().fetch_position(&tp) else {
                return;
            };
            let req = Request::ReplicaFetch {
                follower: self.id(),
                tp: tp.clone(),
                fetch_offset: offset,
                last_fetched_epoch: epoch,
                max_wait: wait,
            };
            match rpc::call::<Request<V>, Response<V>>(addr, req, timeout).await {
                Ok(Response::ReplicaFetch(Ok(ReplicaFetch::Records {
                    entries,
                    high_watermark,
                }))) => {
                    let n = self.shared.state.borrow_mut().follower_append(
                        &tp,
                        offset,
                        entries,
                        high_watermark,
                    );
                    if n > 0 {
                        trace::emit(&ReplicateEvent {
                            broker: self.id(),
                            topic: Cow::Borrowed(&tp.topic),
                            partition: tp.partition,
                            from: offset,
                            to: offset + n as u64,
                        });
                    }
                }
                Ok(Response::ReplicaFetch(Ok(ReplicaFetch::Diverging { epoch, end_offset }))) => {
                    let to = self
                        .shared
                        .state
                        .borrow_mut()
                        .follower_truncate(&tp, epoch, end_offset);
                    if let Some(to) = to {
                        trace::emit(&TruncateEvent {
                            broker: self.id(),
                            topic: Cow::Borrowed(&tp.topic),
                            partition: tp.partition,
                            from: offset,
                            to,
                        });
                    }
                }
                _ => time::sleep(REPLICA_FETCH_BACKOFF).await,
            }
        }
    }

    fn spawn_alter_isr(self: &Rc<Self>, p: IsrProposal) {
        let b = Rc::clone(self);
        task::spawn_named("queue-alter-isr", async move {
            let req = ControllerRequest::AlterIsr {
                broker: b.id(),
                proposal: p.clone(),
            };
            let timeout = b.config().internal_request_timeout;
            let result = match rpc::call::<ControllerRequest, ControllerResponse>(
                b.wiring.controller,
                req,
                timeout,
            )
            .await
            {
                Ok(ControllerResponse::AlterIsr(r)) => r,
                // Unanswered: clear the pending flag; the next check proposes again.
                _ => Err(AlterIsrError::InvalidUpdateVersion),
            };
            b.shared
                .state
                .borrow_mut()
                .isr_change_done(&p.tp, result, time::now());
            b.shared.signal.notify();
        })
        .detach();
    }

    /// Shrinks the ISR of led partitions whose followers lag (Kafka checks every half
    /// `replica.lag.time.max`).
    async fn isr_loop(self: Rc<Self>) {
        let period = self.config().replica_lag_time_max / 2;
        loop {
            time::sleep(period).await;
            let proposals = self.shared.state.borrow_mut().isr_shrinks(time::now());
            for p in proposals {
                self.spawn_alter_isr(p);
            }
        }
    }

    /// Expires group members whose session lapsed. The checks fall on a
    /// `GROUP_EXPIRY_CHECK` grid from the incarnation's start, as a ticker's would, but the
    /// loop sleeps through the ticks at which no session can have expired: it wakes at the
    /// first tick past the earliest session deadline (heartbeats only move deadlines
    /// later), or when a member joins. A member therefore expires at the same tick as
    /// with a plain ticker, without an idle wake-up every tick.
    async fn expiry_loop(self: Rc<Self>) {
        let start = time::now();
        let tick_after = |deadline: Instant| {
            let since = deadline.duration_since(start).as_nanos();
            let step = GROUP_EXPIRY_CHECK.as_nanos();
            let ticks = (since / step + 1).saturating_mul(step);
            start + Duration::from_nanos(u64::try_from(ticks).unwrap_or(u64::MAX))
        };
        loop {
            let seen = self.shared.members.version();
            let next = self.shared.state.borrow().next_member_expiry();
            match next.map(tick_after) {
                Some(tick) => {
                    let now = time::now();
                    if tick > now {
                        let joined = self.shared.members.changed(seen);
                        if time::timeout(tick.duration_since(now), joined)
                            .await
                            .is_ok()
                        {
                            continue;
                        }
                    }
                }
                None => {
                    self.shared.members.changed(seen).await;
                    continue;
                }
            }
            let expired = self.shared.state.borrow_mut().expire_members(time::now());
            for (group, member) in expired {
                let epoch = self
                    .shared
                    .state
                    .borrow()
                    .group(&group)
                    .map_or(0, |g| g.epoch());
                self.group_event(&group, &member, GroupChange::Expire, epoch);
            }
        }
    }
}
