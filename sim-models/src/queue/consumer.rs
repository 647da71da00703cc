//! The consumer client: joins a group, heartbeats in the background, fetches from the
//! leaders of its assigned partitions, commits offsets, seeks.
//!
//! Delivery is at least once: a position only moves when `poll` hands records to the
//! application, and only a commit makes it survive the consumer. A consumer that crashes
//! (its node is killed, or it is dropped without `close`) stops heartbeating; after its
//! session timeout its partitions go to another member, which resumes from the last
//! committed offset and so sees the uncommitted records again.
//!
//! Auto-commit, as in Kafka, happens inside `poll` once the interval has passed and
//! commits the positions of everything earlier polls returned. Its two known windows: a
//! crash between a poll and the next auto-commit redelivers those records (duplicates),
//! and an application that processes records asynchronously, after `poll` returned, can
//! have them committed before they were processed (loss on crash).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use futures::stream::{FuturesUnordered, StreamExt};
use serde::{Deserialize, Serialize};
use sim_net::{rpc, Addr};
use sim_runtime::task::{self, JoinHandle};
use sim_runtime::time::{self, Duration, Instant};
use sim_runtime::trace;

use super::controller::ClusterMetadata;
use super::error::{ConsumeError, ErrorCode};
use super::events::{AssignEvent, CommitEvent, PollView, SeekEvent, SeekReason};
use super::group::{Assignment, Assignor};
use super::protocol::{Request, Response};
use super::signal::Signal;
use super::types::{BrokerId, ClusterAddrs, Record, TopicPartition};

/// Where a consumer starts in a partition without a committed offset
/// (`auto.offset.reset`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OffsetReset {
    Earliest,
    /// Kafka's default: only records produced from now on.
    #[default]
    Latest,
}

/// Consumer settings. `Default` is Kafka 3.x's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConsumerConfig {
    /// Names this consumer in traces (a unique suffix is added per instance).
    pub client_id: String,
    /// `session.timeout.ms`: without a heartbeat for this long the member is removed.
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// `enable.auto.commit` with `auto.commit.interval.ms`; `None` turns it off.
    pub auto_commit_interval: Option<Duration>,
    pub auto_offset_reset: OffsetReset,
    /// `partition.assignment.strategy`.
    pub assignor: Assignor,
    /// `fetch.max.wait.ms`: how long a broker holds a fetch with nothing to return.
    pub fetch_max_wait: Duration,
    /// `request.timeout.ms` (also bounds commits and coordinator look-ups).
    pub request_timeout: Duration,
    /// `retry.backoff.ms`.
    pub retry_backoff: Duration,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            client_id: "consumer".to_string(),
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(3),
            auto_commit_interval: Some(Duration::from_secs(5)),
            auto_offset_reset: OffsetReset::Latest,
            assignor: Assignor::Range,
            fetch_max_wait: Duration::from_millis(500),
            request_timeout: Duration::from_secs(30),
            retry_backoff: Duration::from_millis(100),
        }
    }
}

#[derive(Default)]
struct ConsumerIds {
    next: Cell<u64>,
}

struct Inner {
    name: String,
    group: String,
    topics: BTreeSet<String>,
    addrs: Vec<Addr>,
    config: ConsumerConfig,
    member: RefCell<String>,
    joins: Cell<u32>,
    epoch: Cell<u32>,
    coordinator: Cell<Option<BrokerId>>,
    owned: RefCell<BTreeSet<TopicPartition>>,
    positions: RefCell<BTreeMap<TopicPartition, u64>>,
    metadata: RefCell<ClusterMetadata>,
    last_auto_commit: Cell<Instant>,
    /// Moves when the assignment changes (wakes a `poll` waiting for partitions).
    assignment_changed: Signal,
    /// Moves when a heartbeat should go out at once (after giving partitions up).
    heartbeat_now: Signal,
    next_bootstrap: Cell<usize>,
    /// Set when a fetch failed (a dead or deposed leader): the metadata is refreshed
    /// before the next fetch round even if other leaders answered with records, or a
    /// partition whose leader moved would never be fetched again while the others flow.
    metadata_stale: Cell<bool>,
}

/// A group member. Dropping it without [`Consumer::close`] is a crash: heartbeats stop
/// and the group notices after the session timeout.
pub struct Consumer<V> {
    inner: Rc<Inner>,
    heartbeat: JoinHandle<()>,
    _values: std::marker::PhantomData<fn() -> V>,
}

impl<V> std::fmt::Debug for Consumer<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Consumer({}, group {})",
            self.inner.name, self.inner.group
        )
    }
}

impl<V> Drop for Consumer<V> {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

fn coordinator_error(resp: &Response<impl Clone>) -> bool {
    let code = match resp {
        Response::Assignment(Err(e)) | Response::Left(Err(e)) | Response::Committed(Err(e)) => *e,
        Response::Offsets(Err(e)) => *e,
        _ => return false,
    };
    matches!(
        code,
        ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable | ErrorCode::RequestTimedOut
    )
}

impl<V: Clone + 'static> Consumer<V> {
    /// Joins `group` subscribed to `topics`, bootstrapping from `cluster_addrs`
    /// ([`super::Cluster::addrs`]). Returns once the coordinator accepted the member; partitions
    /// arrive with this call or later heartbeats.
    pub async fn join(
        cluster_addrs: ClusterAddrs<V>,
        group: &str,
        topics: &[&str],
        config: ConsumerConfig,
    ) -> Result<Self, ConsumeError> {
        assert!(
            !cluster_addrs.addrs().is_empty(),
            "a consumer needs at least one broker address"
        );
        let ids = sim_runtime::extension::<ConsumerIds>();
        let n = ids.next.get() + 1;
        ids.next.set(n);
        let inner = Rc::new(Inner {
            name: format!("{}.{n}", config.client_id),
            group: group.to_string(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            addrs: cluster_addrs.addrs().to_vec(),
            config,
            member: RefCell::new(String::new()),
            joins: Cell::new(0),
            epoch: Cell::new(0),
            coordinator: Cell::new(None),
            owned: RefCell::new(BTreeSet::new()),
            positions: RefCell::new(BTreeMap::new()),
            metadata: RefCell::new(ClusterMetadata::default()),
            last_auto_commit: Cell::new(time::now()),
            assignment_changed: Signal::default(),
            heartbeat_now: Signal::default(),
            next_bootstrap: Cell::new(0),
            metadata_stale: Cell::new(false),
        });
        join_group::<V>(&inner).await?;
        let hb = Rc::clone(&inner);
        let heartbeat = task::spawn_named("queue-consumer-heartbeat", heartbeat_loop::<V>(hb));
        Ok(Consumer {
            inner,
            heartbeat,
            _values: std::marker::PhantomData,
        })
    }

    /// This consumer's name in traces (`client_id` plus a unique number).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn member_id(&self) -> String {
        self.inner.member.borrow().clone()
    }

    /// The partitions this consumer owns now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.inner.owned.borrow().iter().cloned().collect()
    }

    /// The next offset `poll` returns for `tp`, once known.
    pub fn position(&self, tp: &TopicPartition) -> Option<u64> {
        self.inner.positions.borrow().get(tp).copied()
    }

    /// Up to `max` records from the owned partitions, waiting at most `timeout` for the
    /// first. Runs a due auto-commit first. An empty result is not an error.
    pub async fn poll(
        &self,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<Record<V>>, ConsumeError> {
        let inner = &self.inner;
        if let Some(interval) = inner.config.auto_commit_interval {
            if time::now() >= inner.last_auto_commit.get() + interval {
                inner.last_auto_commit.set(time::now());
                // As in Kafka, a failed auto-commit is only logged (traced); the next one
                // covers it.
                let _ = commit_positions::<V>(inner, true).await;
            }
        }
        let deadline = time::now() + timeout;
        loop {
            init_positions::<V>(inner, deadline).await;
            let (mut plan, missing_leader) = self.plan();
            if missing_leader || inner.metadata_stale.get() {
                refresh_metadata::<V>(inner, deadline).await;
                plan = self.plan().0;
            }
            let now = time::now();
            if plan.is_empty() {
                if now >= deadline {
                    return Ok(Vec::new());
                }
                let seen = inner.assignment_changed.version();
                let wait = (deadline - now)
                    .min(inner.config.retry_backoff.max(inner.config.fetch_max_wait));
                let _ = time::timeout(wait, inner.assignment_changed.changed(seen)).await;
                continue;
            }
            let max_wait = inner
                .config
                .fetch_max_wait
                .min(deadline.duration_since(now));
            let (records, trouble) = time::timeout(
                deadline.duration_since(now).max(Duration::from_millis(1)),
                self.fetch_round(plan, max_wait, max),
            )
            .await
            .unwrap_or_default();
            if trouble {
                inner.metadata_stale.set(true);
            }
            if !records.is_empty() {
                trace::emit(&PollView {
                    consumer: &inner.name,
                    group: &inner.group,
                    records: &records,
                });
                return Ok(records);
            }
            if trouble {
                refresh_metadata::<V>(inner, deadline).await;
                time::sleep(
                    inner
                        .config
                        .retry_backoff
                        .min(deadline.duration_since(time::now())),
                )
                .await;
            }
            if time::now() >= deadline {
                return Ok(Vec::new());
            }
        }
    }

    /// Owned partitions with a position, grouped by leader; and whether some lacked one.
    fn plan(&self) -> (BTreeMap<BrokerId, Vec<(TopicPartition, u64)>>, bool) {
        let inner = &self.inner;
        let md = inner.metadata.borrow();
        let positions = inner.positions.borrow();
        let mut plan: BTreeMap<BrokerId, Vec<(TopicPartition, u64)>> = BTreeMap::new();
        let mut missing = false;
        for tp in inner.owned.borrow().iter() {
            let Some(pos) = positions.get(tp) else {
                continue;
            };
            match md.partition(tp).and_then(|p| p.leader) {
                Some(l) => plan.entry(l).or_default().push((tp.clone(), *pos)),
                None => missing = true,
            }
        }
        (plan, missing)
    }

    /// Fetches from every leader at once and takes the first answer with records.
    /// Returns the records and whether some leader failed (stale metadata).
    async fn fetch_round(
        &self,
        plan: BTreeMap<BrokerId, Vec<(TopicPartition, u64)>>,
        max_wait: Duration,
        max: usize,
    ) -> (Vec<Record<V>>, bool) {
        let inner = &self.inner;
        let mut calls: FuturesUnordered<_> = plan
            .into_iter()
            .map(|(leader, partitions)| {
                let addr = inner.addrs[leader as usize];
                let req = Request::Fetch {
                    partitions,
                    max_wait,
                    max_records: max,
                };
                rpc::call::<Request<V>, Response<V>>(
                    addr,
                    req,
                    max_wait + inner.config.request_timeout,
                )
            })
            .collect();
        let mut out = Vec::new();
        let mut trouble = false;
        while let Some(answer) = calls.next().await {
            match answer {
                Ok(Response::Fetch(results)) => {
                    for (tp, r) in results {
                        match r {
                            Ok(records) => self.accept(&tp, records, max, &mut out),
                            Err(ErrorCode::OffsetOutOfRange) => {
                                inner.positions.borrow_mut().remove(&tp);
                            }
                            Err(_) => trouble = true,
                        }
                    }
                }
                Ok(_) | Err(_) => trouble = true,
            }
            if !out.is_empty() {
                break;
            }
        }
        (out, trouble)
    }

    /// Takes the records that continue the partition's position, while it is owned.
    fn accept(
        &self,
        tp: &TopicPartition,
        records: Vec<Record<V>>,
        max: usize,
        out: &mut Vec<Record<V>>,
    ) {
        if !self.inner.owned.borrow().contains(tp) {
            return;
        }
        let mut positions = self.inner.positions.borrow_mut();
        let Some(pos) = positions.get_mut(tp) else {
            return;
        };
        for r in records {
            if out.len() >= max {
                break;
            }
            if r.offset == *pos {
                *pos += 1;
                out.push(r);
            }
        }
    }

    /// Commits the positions of all owned partitions and waits for the answer.
    pub async fn commit(&self) -> Result<(), ConsumeError> {
        commit_positions::<V>(&self.inner, false).await
    }

    /// Commits exactly `offsets` (Kafka's `commitSync(offsets)`): each is the next offset
    /// to read in its partition, so "commit this record, then process it" commits
    /// `record.offset + 1` without polling first. Every partition must be owned.
    pub async fn commit_offsets(
        &self,
        offsets: &[(TopicPartition, u64)],
    ) -> Result<(), ConsumeError> {
        {
            let owned = self.inner.owned.borrow();
            if let Some((tp, _)) = offsets.iter().find(|(tp, _)| !owned.contains(tp)) {
                return Err(ConsumeError::NotAssigned(tp.clone()));
            }
        }
        commit_offsets::<V>(&self.inner, offsets.to_vec(), false).await
    }

    /// Moves the position of an owned partition; the next `poll` starts there.
    pub fn seek(&self, topic: &str, partition: u32, offset: u64) -> Result<(), ConsumeError> {
        let tp = TopicPartition::new(topic, partition);
        if !self.inner.owned.borrow().contains(&tp) {
            return Err(ConsumeError::NotAssigned(tp));
        }
        self.inner.positions.borrow_mut().insert(tp.clone(), offset);
        emit_seek(&self.inner, &tp, offset, SeekReason::Seek);
        Ok(())
    }

    /// Leaves the group cleanly: auto-commits if enabled, then tells the coordinator, so
    /// the partitions move at once instead of after the session timeout.
    pub async fn close(self) -> Result<(), ConsumeError> {
        let inner = Rc::clone(&self.inner);
        if inner.config.auto_commit_interval.is_some() {
            let _ = commit_positions::<V>(&inner, true).await;
        }
        drop(self);
        let req = Request::LeaveGroup {
            group: inner.group.clone(),
            member: inner.member.borrow().clone(),
        };
        coordinator_call::<V>(&inner, req).await.map(|_| ())
    }
}

fn emit_seek(inner: &Inner, tp: &TopicPartition, offset: u64, reason: SeekReason) {
    trace::emit(&SeekEvent {
        consumer: Cow::Borrowed(&inner.name),
        group: Cow::Borrowed(&inner.group),
        topic: Cow::Borrowed(&tp.topic),
        partition: tp.partition,
        offset,
        reason,
    });
}

/// Joins (or re-joins with a fresh member id) and applies the first assignment.
async fn join_group<V: Clone + 'static>(inner: &Rc<Inner>) -> Result<(), ConsumeError> {
    let joins = inner.joins.get() + 1;
    inner.joins.set(joins);
    // The member chooses its id (as in KIP-848); a re-join is a new member.
    let member = format!("{}-m{joins}", inner.name);
    *inner.member.borrow_mut() = member.clone();
    let req = Request::JoinGroup {
        group: inner.group.clone(),
        member,
        topics: inner.topics.clone(),
        session_timeout: inner.config.session_timeout,
        assignor: inner.config.assignor,
    };
    match coordinator_call::<V>(inner, req).await? {
        Response::Assignment(Ok(a)) => {
            reconcile::<V>(inner, a).await;
            Ok(())
        }
        _ => Err(ConsumeError::CoordinatorUnavailable),
    }
}

async fn heartbeat_loop<V: Clone + 'static>(inner: Rc<Inner>) {
    loop {
        let seen = inner.heartbeat_now.version();
        let _ = time::timeout(
            inner.config.heartbeat_interval,
            inner.heartbeat_now.changed(seen),
        )
        .await;
        let req = Request::Heartbeat {
            group: inner.group.clone(),
            member: inner.member.borrow().clone(),
            owned: inner.owned.borrow().clone(),
        };
        match coordinator_call::<V>(&inner, req).await {
            Ok(Response::Assignment(Ok(a))) => reconcile::<V>(&inner, a).await,
            Ok(Response::Assignment(Err(ErrorCode::UnknownMemberId))) => {
                // Fenced: the group went on without us (session expired). Everything we
                // held may be someone else's now; give it up uncommitted and re-join.
                reconcile::<V>(
                    &inner,
                    Assignment {
                        epoch: 0,
                        partitions: BTreeSet::new(),
                    },
                )
                .await;
                let _ = join_group::<V>(&inner).await;
            }
            _ => {}
        }
    }
}

/// Applies an assignment: commits (with auto-commit) and drops revoked partitions,
/// takes new ones (their positions are fetched by the next `poll`).
async fn reconcile<V: Clone + 'static>(inner: &Rc<Inner>, a: Assignment) {
    let old = inner.owned.borrow().clone();
    let revoked: Vec<TopicPartition> = old.difference(&a.partitions).cloned().collect();
    let added: Vec<TopicPartition> = a.partitions.difference(&old).cloned().collect();
    inner.epoch.set(a.epoch);
    if revoked.is_empty() && added.is_empty() {
        return;
    }
    // Stop consuming revoked partitions before anything else, so that no `poll` hands
    // out their records after their positions are taken for the commit (Kafka runs
    // revocation inside `poll` for the same reason).
    let revoked_positions: Vec<(TopicPartition, u64)> = {
        let mut positions = inner.positions.borrow_mut();
        revoked
            .iter()
            .filter_map(|tp| positions.remove(tp).map(|o| (tp.clone(), o)))
            .collect()
    };
    *inner.owned.borrow_mut() = a.partitions.clone();
    if a.epoch > 0 && inner.config.auto_commit_interval.is_some() {
        let _ = commit_offsets::<V>(inner, revoked_positions, true).await;
    }
    trace::emit(&AssignEvent {
        consumer: inner.name.clone(),
        group: inner.group.clone(),
        member: inner.member.borrow().clone(),
        epoch: a.epoch,
        partitions: a.partitions.iter().cloned().collect(),
        added,
        revoked: revoked.clone(),
    });
    inner.assignment_changed.notify();
    if !revoked.is_empty() {
        // Tell the coordinator at once, so the new owner does not wait a whole interval.
        inner.heartbeat_now.notify();
    }
}

/// Commits the positions of every owned partition.
async fn commit_positions<V: Clone + 'static>(
    inner: &Rc<Inner>,
    auto: bool,
) -> Result<(), ConsumeError> {
    let offsets: Vec<(TopicPartition, u64)> = {
        let positions = inner.positions.borrow();
        let owned = inner.owned.borrow();
        positions
            .iter()
            .filter(|(tp, _)| owned.contains(*tp))
            .map(|(tp, o)| (tp.clone(), *o))
            .collect()
    };
    commit_offsets::<V>(inner, offsets, auto).await
}

/// Commits `offsets` for the group and traces the outcome.
async fn commit_offsets<V: Clone + 'static>(
    inner: &Rc<Inner>,
    offsets: Vec<(TopicPartition, u64)>,
    auto: bool,
) -> Result<(), ConsumeError> {
    if offsets.is_empty() {
        return Ok(());
    }
    let member = inner.member.borrow().clone();
    let req = Request::OffsetCommit {
        group: inner.group.clone(),
        member: Some(member.clone()),
        offsets: offsets.clone(),
    };
    let result = match coordinator_call::<V>(inner, req).await {
        Ok(Response::Committed(Ok(()))) => Ok(()),
        Ok(Response::Committed(Err(ErrorCode::UnknownMemberId))) => {
            inner.heartbeat_now.notify();
            Err(ConsumeError::CommitFailed)
        }
        Ok(_) => Err(ConsumeError::CoordinatorUnavailable),
        Err(e) => Err(e),
    };
    trace::emit(&CommitEvent {
        consumer: Cow::Borrowed(&inner.name),
        group: Cow::Borrowed(&inner.group),
        member: Cow::Owned(member),
        offsets: Cow::Owned(offsets),
        auto,
        error: result.as_ref().err().map(|e| e.to_string()),
    });
    result
}

/// Sets positions for owned partitions that have none: the committed offset, or the
/// reset policy's.
async fn init_positions<V: Clone + 'static>(inner: &Rc<Inner>, deadline: Instant) {
    let missing: Vec<TopicPartition> = {
        let positions = inner.positions.borrow();
        inner
            .owned
            .borrow()
            .iter()
            .filter(|tp| !positions.contains_key(*tp))
            .cloned()
            .collect()
    };
    if missing.is_empty() {
        return;
    }
    let req = Request::OffsetFetch {
        group: inner.group.clone(),
        partitions: missing,
    };
    let answer = coordinator_call_until::<V>(inner, req, deadline).await;
    let Ok(Response::Offsets(Ok(committed))) = answer else {
        return;
    };
    for (tp, offset) in committed {
        let (offset, reason) = match offset {
            Some(o) => (o, SeekReason::Committed),
            None => match inner.config.auto_offset_reset {
                OffsetReset::Earliest => (0, SeekReason::Reset),
                OffsetReset::Latest => match latest_offset::<V>(inner, &tp, deadline).await {
                    Some(o) => (o, SeekReason::Reset),
                    None => continue,
                },
            },
        };
        if inner.owned.borrow().contains(&tp) && !inner.positions.borrow().contains_key(&tp) {
            inner.positions.borrow_mut().insert(tp.clone(), offset);
            emit_seek(inner, &tp, offset, reason);
        }
    }
}

async fn latest_offset<V: Clone + 'static>(
    inner: &Rc<Inner>,
    tp: &TopicPartition,
    deadline: Instant,
) -> Option<u64> {
    let mut leader = inner.metadata.borrow().partition(tp).and_then(|p| p.leader);
    if leader.is_none() {
        refresh_metadata::<V>(inner, deadline).await;
        leader = inner.metadata.borrow().partition(tp).and_then(|p| p.leader);
    }
    let addr = inner.addrs[leader? as usize];
    let timeout = inner.config.request_timeout.min(
        deadline
            .duration_since(time::now())
            .max(Duration::from_millis(1)),
    );
    match rpc::call::<Request<V>, Response<V>>(
        addr,
        Request::ListOffsets { tp: tp.clone() },
        timeout,
    )
    .await
    {
        Ok(Response::ListOffsets(Ok((_, latest)))) => Some(latest),
        _ => None,
    }
}

/// Sends `req` to the group coordinator, finding it first and again whenever it moved,
/// within `request_timeout`.
async fn coordinator_call<V: Clone + 'static>(
    inner: &Rc<Inner>,
    req: Request<V>,
) -> Result<Response<V>, ConsumeError> {
    let deadline = time::now() + inner.config.request_timeout;
    coordinator_call_until(inner, req, deadline).await
}

/// [`coordinator_call`] with an explicit deadline (a `poll` must not outlast its timeout).
async fn coordinator_call_until<V: Clone + 'static>(
    inner: &Rc<Inner>,
    req: Request<V>,
    deadline: Instant,
) -> Result<Response<V>, ConsumeError> {
    let mut last = ConsumeError::CoordinatorUnavailable;
    loop {
        if inner.coordinator.get().is_none() {
            find_coordinator::<V>(inner, deadline).await;
        }
        if let Some(c) = inner.coordinator.get() {
            let remaining = deadline.duration_since(time::now());
            if remaining.is_zero() {
                return Err(last);
            }
            match rpc::call::<Request<V>, Response<V>>(
                inner.addrs[c as usize],
                req.clone(),
                remaining,
            )
            .await
            {
                Ok(resp) if !coordinator_error(&resp) => return Ok(resp),
                Ok(_) => last = ConsumeError::CoordinatorUnavailable,
                Err(f) => last = f.into(),
            }
            inner.coordinator.set(None);
        }
        if time::now() + inner.config.retry_backoff >= deadline {
            return Err(last);
        }
        time::sleep(inner.config.retry_backoff).await;
    }
}

async fn find_coordinator<V: Clone + 'static>(inner: &Rc<Inner>, deadline: Instant) {
    for _ in 0..inner.addrs.len() {
        let i = inner.next_bootstrap.get() % inner.addrs.len();
        inner.next_bootstrap.set(i + 1);
        let remaining = deadline.duration_since(time::now());
        if remaining.is_zero() {
            return;
        }
        let timeout = inner.config.request_timeout.min(remaining);
        let req = Request::FindCoordinator {
            group: inner.group.clone(),
        };
        if let Ok(Response::Coordinator(Some(c))) =
            rpc::call::<Request<V>, Response<V>>(inner.addrs[i], req, timeout).await
        {
            inner.coordinator.set(Some(c));
            return;
        }
    }
}

async fn refresh_metadata<V: Clone + 'static>(inner: &Rc<Inner>, deadline: Instant) {
    for _ in 0..inner.addrs.len() {
        let i = inner.next_bootstrap.get() % inner.addrs.len();
        inner.next_bootstrap.set(i + 1);
        let remaining = deadline.duration_since(time::now());
        if remaining.is_zero() {
            return;
        }
        let timeout = inner.config.request_timeout.min(remaining);
        if let Ok(Response::Metadata(md)) =
            rpc::call::<Request<V>, Response<V>>(inner.addrs[i], Request::Metadata, timeout).await
        {
            let mut current = inner.metadata.borrow_mut();
            if md.version >= current.version {
                *current = md;
            }
            inner.metadata_stale.set(false);
            return;
        }
    }
}
