//! A broker's pure state machine: the partition replicas it hosts (log plus role), the
//! replication rules (high watermark, follower progress, ISR shrink and expand, log
//! truncation on divergence) and the consumer groups it coordinates.
//!
//! No I/O and no waiting: the async shell in `broker` feeds it requests with the current
//! time and acts on what it returns. [`BrokerState::crash`] says what a process crash
//! keeps (the logs, as Kafka's are on disk) and what it loses (roles, follower progress,
//! metadata, group membership).

use std::collections::{BTreeMap, BTreeSet};

use sim_runtime::time::{Duration, Instant};

use super::controller::{AlterIsrError, ClusterMetadata, PartitionState};
use super::error::ErrorCode;
use super::group::{Assignment, Assignor, Group};
use super::log::{Entry, OffsetEntry, PartitionLog, Payload, ProducerStamp, SeqCheck};
use super::partitioner::partition_for_key;
use super::types::{Acks, BrokerId, Record, RecordId, TopicPartition};

/// The internal topic that stores committed consumer offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The rules a broker applies, from the cluster `Config`.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub min_insync_replicas: usize,
    pub replica_lag_time_max: Duration,
    pub offsets_topic_partitions: u32,
    pub fetch_max_entries: usize,
}

/// A record a producer asks to append.
#[derive(Clone, Debug)]
pub(crate) struct NewRecord<V> {
    pub id: RecordId,
    pub key: Option<String>,
    pub value: V,
    pub stamp: Option<ProducerStamp>,
}

/// Where a produce request's record is (or already was) in the leader's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Appended {
    pub offset: u64,
    pub leader_epoch: u32,
    /// An idempotent retry of a record already in the log: nothing was appended.
    pub duplicate: bool,
}

/// Whether an appended record may be acknowledged under `acks=all`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AckStatus {
    Done,
    Pending,
    Failed(ErrorCode),
}

/// A leader's answer to a follower's fetch.
#[derive(Clone, Debug)]
pub(crate) enum ReplicaFetch<V> {
    Records {
        entries: Vec<Entry<V>>,
        high_watermark: u64,
    },
    /// The follower's log has entries this leader never had after `end_offset`.
    Diverging { epoch: Option<u32>, end_offset: u64 },
}

/// A leader's request to the controller to change its ISR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IsrProposal {
    pub tp: TopicPartition,
    pub leader_epoch: u32,
    pub partition_epoch: u32,
    pub isr: Vec<BrokerId>,
}

/// A change of this broker's role for a partition, for the shell to act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RoleChange {
    Leader {
        tp: TopicPartition,
        leader_epoch: u32,
    },
    Follower {
        tp: TopicPartition,
        leader: Option<BrokerId>,
        leader_epoch: u32,
    },
}

#[derive(Clone, Debug)]
struct FollowerProgress {
    /// The follower's log end as its last fetch offset said.
    leo: u64,
    last_caught_up: Instant,
    last_fetch: Instant,
    leader_leo_at_last_fetch: u64,
}

#[derive(Clone, Debug)]
struct LeaderState {
    leader_epoch: u32,
    epoch_start: u64,
    isr: BTreeSet<BrokerId>,
    followers: BTreeMap<BrokerId, FollowerProgress>,
    isr_change_pending: bool,
}

/// One hosted partition replica.
#[derive(Clone, Debug)]
pub(crate) struct Replica<V> {
    pub log: PartitionLog<V>,
    view: Option<PartitionState>,
    leader: Option<LeaderState>,
}

impl<V> Default for Replica<V> {
    fn default() -> Self {
        Replica {
            log: PartitionLog::default(),
            view: None,
            leader: None,
        }
    }
}

/// What a broker's crash took with it, in partition and group order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CrashLoss {
    pub leaderships: Vec<TopicPartition>,
    pub groups: Vec<String>,
}

/// A broker's state.
#[derive(Clone, Debug)]
pub(crate) struct BrokerState<V> {
    id: BrokerId,
    settings: Settings,
    replicas: BTreeMap<TopicPartition, Replica<V>>,
    metadata: ClusterMetadata,
    groups: BTreeMap<String, Group>,
}

/// Which `__consumer_offsets` partition holds `group`'s commits (and so which broker
/// coordinates it: that partition's leader).
pub(crate) fn offsets_partition(group: &str, partitions: u32) -> TopicPartition {
    TopicPartition::new(OFFSETS_TOPIC, partition_for_key(group, partitions))
}

impl<V: Clone> BrokerState<V> {
    pub fn new(id: BrokerId, settings: Settings) -> Self {
        BrokerState {
            id,
            settings,
            replicas: BTreeMap::new(),
            metadata: ClusterMetadata::default(),
            groups: BTreeMap::new(),
        }
    }

    /// A process crash: the logs (on disk) stay; everything learned or negotiated since
    /// the process started is gone until metadata arrives again. Returns what was lost
    /// that others notice: the leaderships it held and the groups it coordinated.
    pub fn crash(&mut self) -> CrashLoss {
        let mut leaderships = Vec::new();
        for (tp, r) in self.replicas.iter_mut() {
            if r.leader.take().is_some() {
                leaderships.push(tp.clone());
            }
            r.view = None;
        }
        self.metadata = ClusterMetadata::default();
        let groups = std::mem::take(&mut self.groups).into_keys().collect();
        CrashLoss {
            leaderships,
            groups,
        }
    }

    pub fn metadata(&self) -> &ClusterMetadata {
        &self.metadata
    }

    pub fn replica(&self, tp: &TopicPartition) -> Option<&Replica<V>> {
        self.replicas.get(tp)
    }

    pub fn is_leader(&self, tp: &TopicPartition) -> bool {
        self.replicas.get(tp).is_some_and(|r| r.leader.is_some())
    }

    /// Applies the controller's view of the cluster; returns role changes. Older views
    /// than the one held are ignored, and so are partition states older than what an ISR
    /// change already taught this broker.
    pub fn apply_metadata(&mut self, md: ClusterMetadata, now: Instant) -> Vec<RoleChange> {
        if md.version < self.metadata.version {
            return Vec::new();
        }
        let mut changes = Vec::new();
        for (topic, parts) in &md.topics {
            for (p, st) in parts.iter().enumerate() {
                if st.replicas.contains(&self.id) {
                    let tp = TopicPartition::new(topic.clone(), p as u32);
                    let r = self.replicas.entry(tp.clone()).or_default();
                    if let Some(c) = r.apply(self.id, st, now, &tp) {
                        changes.push(c);
                    }
                }
            }
        }
        self.metadata = md;
        for c in &changes {
            self.on_role_change(c);
        }
        changes
    }

    fn on_role_change(&mut self, change: &RoleChange) {
        match change {
            RoleChange::Leader { tp, .. } if tp.topic == OFFSETS_TOPIC => self.load_groups(tp),
            RoleChange::Follower { tp, .. } if tp.topic == OFFSETS_TOPIC => {
                let n = self.settings.offsets_topic_partitions;
                self.groups.retain(|g, _| offsets_partition(g, n) != *tp);
            }
            _ => {}
        }
    }

    /// Rebuilds the groups of one offsets partition from its log (a new coordinator).
    fn load_groups(&mut self, tp: &TopicPartition) {
        let n = self.settings.offsets_topic_partitions;
        self.groups.retain(|g, _| offsets_partition(g, n) != *tp);
        let Some(r) = self.replicas.get(tp) else {
            return;
        };
        let leo = r.log.leo();
        for e in r.log.entries_from(0, leo as usize) {
            if let Payload::Offset(o) = &e.payload {
                self.groups
                    .entry(o.group.clone())
                    .or_default()
                    .apply_commit(o.tp.clone(), o.offset);
            }
        }
    }

    fn leader_mut(
        &mut self,
        tp: &TopicPartition,
    ) -> Result<(&mut Replica<V>, BrokerId), ErrorCode> {
        let known = self.metadata.partition(tp).is_some();
        match self.replicas.get_mut(tp) {
            Some(r) if r.leader.is_some() => Ok((r, self.id)),
            _ if known => Err(ErrorCode::NotLeaderOrFollower),
            _ => Err(ErrorCode::UnknownTopicOrPartition),
        }
    }

    /// A producer's append on the leader.
    pub fn produce(
        &mut self,
        tp: &TopicPartition,
        acks: Acks,
        record: NewRecord<V>,
        now: Instant,
    ) -> Result<Appended, ErrorCode> {
        let min_isr = self.settings.min_insync_replicas;
        let (r, me) = self.leader_mut(tp)?;
        let l = r.leader.as_ref().expect("leader_mut checked");
        let leader_epoch = l.leader_epoch;
        if acks == Acks::All && l.isr.len() < min_isr {
            return Err(ErrorCode::NotEnoughReplicas);
        }
        if let Some(stamp) = record.stamp {
            match r.log.check_sequence(stamp) {
                SeqCheck::Fresh => {}
                SeqCheck::Duplicate { offset } => {
                    return Ok(Appended {
                        offset,
                        leader_epoch,
                        duplicate: true,
                    })
                }
                SeqCheck::OutOfOrder => return Err(ErrorCode::OutOfOrderSequence),
            }
        }
        let offset = r.log.append(Entry {
            epoch: leader_epoch,
            stamp: record.stamp,
            timestamp: now,
            payload: Payload::Record {
                id: record.id,
                key: record.key,
                value: record.value,
            },
        });
        r.advance_high_watermark(me);
        Ok(Appended {
            offset,
            leader_epoch,
            duplicate: false,
        })
    }

    /// Whether the record at `offset`, appended in `leader_epoch`, is committed (on every
    /// ISR member) and may be acknowledged under `acks=all`.
    pub fn ack_status(&self, tp: &TopicPartition, offset: u64, leader_epoch: u32) -> AckStatus {
        let Some(r) = self.replicas.get(tp) else {
            return AckStatus::Failed(ErrorCode::NotLeaderOrFollower);
        };
        match &r.leader {
            Some(l) if l.leader_epoch == leader_epoch => {
                if r.log.high_watermark() > offset {
                    if l.isr.len() < self.settings.min_insync_replicas {
                        AckStatus::Failed(ErrorCode::NotEnoughReplicasAfterAppend)
                    } else {
                        AckStatus::Done
                    }
                } else {
                    AckStatus::Pending
                }
            }
            // Leadership moved while the request waited: the record may or may not
            // survive on the new leader, so the producer must retry.
            _ => AckStatus::Failed(ErrorCode::NotLeaderOrFollower),
        }
    }

    /// A follower's fetch from this leader. Also records the follower's progress,
    /// advances the high watermark and may propose adding the follower back to the ISR.
    pub fn replica_fetch(
        &mut self,
        tp: &TopicPartition,
        follower: BrokerId,
        fetch_offset: u64,
        last_fetched_epoch: Option<u32>,
        now: Instant,
    ) -> Result<(ReplicaFetch<V>, Option<IsrProposal>), ErrorCode> {
        let max = self.settings.fetch_max_entries;
        let (r, me) = self.leader_mut(tp)?;
        if !r
            .view
            .as_ref()
            .is_some_and(|v| v.replicas.contains(&follower))
        {
            return Err(ErrorCode::NotLeaderOrFollower);
        }
        if let Some(e) = last_fetched_epoch {
            let (epoch, end) = r.log.end_offset_for_epoch(e);
            if epoch != Some(e) || end < fetch_offset {
                return Ok((
                    ReplicaFetch::Diverging {
                        epoch,
                        end_offset: end,
                    },
                    None,
                ));
            }
        }
        if fetch_offset > r.log.leo() {
            return Err(ErrorCode::OffsetOutOfRange);
        }
        let leo = r.log.leo();
        let l = r.leader.as_mut().expect("leader_mut checked");
        let p = l.followers.entry(follower).or_insert(FollowerProgress {
            leo: 0,
            last_caught_up: now,
            last_fetch: now,
            leader_leo_at_last_fetch: 0,
        });
        // Kafka's rule: caught up now if the fetch reaches the current end; caught up as
        // of the previous fetch if it reaches the end the leader had then.
        if fetch_offset >= leo {
            p.last_caught_up = now;
        } else if fetch_offset >= p.leader_leo_at_last_fetch {
            p.last_caught_up = p.last_fetch;
        }
        p.leader_leo_at_last_fetch = leo;
        p.last_fetch = now;
        p.leo = fetch_offset;
        r.advance_high_watermark(me);
        let hw = r.log.high_watermark();
        let l = r.leader.as_mut().expect("leader_mut checked");
        let mut proposal = None;
        if !l.isr.contains(&follower)
            && !l.isr_change_pending
            && fetch_offset >= hw
            && fetch_offset >= l.epoch_start
        {
            let view = r.view.as_ref().expect("a leader has a view");
            let mut isr: Vec<BrokerId> = l.isr.iter().copied().collect();
            isr.push(follower);
            isr.sort_unstable();
            l.isr_change_pending = true;
            proposal = Some(IsrProposal {
                tp: tp.clone(),
                leader_epoch: l.leader_epoch,
                partition_epoch: view.partition_epoch,
                isr,
            });
        }
        let entries = r.log.entries_from(fetch_offset, max).to_vec();
        Ok((
            ReplicaFetch::Records {
                entries,
                high_watermark: hw,
            },
            proposal,
        ))
    }

    /// Where a follower fetches from next: its log end and the epoch of its last entry.
    pub fn fetch_position(&self, tp: &TopicPartition) -> Option<(u64, Option<u32>)> {
        let r = self.replicas.get(tp)?;
        Some((r.log.leo(), r.log.last_entry_epoch()))
    }

    /// A follower applies what its leader sent for a fetch at `fetch_offset`. Returns the
    /// number of entries appended; stale answers (the log moved meanwhile, or this broker
    /// leads now) are dropped.
    pub fn follower_append(
        &mut self,
        tp: &TopicPartition,
        fetch_offset: u64,
        entries: Vec<Entry<V>>,
        leader_high_watermark: u64,
    ) -> usize {
        let Some(r) = self.replicas.get_mut(tp) else {
            return 0;
        };
        if r.leader.is_some() || r.log.leo() != fetch_offset {
            return 0;
        }
        let n = entries.len();
        for e in entries {
            r.log.append(e);
        }
        let hw = leader_high_watermark.min(r.log.leo());
        if hw > r.log.high_watermark() {
            r.log.set_high_watermark(hw);
        }
        n
    }

    /// A follower truncates after the leader reported divergence; returns the new end.
    pub fn follower_truncate(
        &mut self,
        tp: &TopicPartition,
        epoch: Option<u32>,
        end_offset: u64,
    ) -> Option<u64> {
        let r = self.replicas.get_mut(tp)?;
        if r.leader.is_some() {
            return None;
        }
        // Never keep more than this log's own end of the leader's epoch: the entries
        // after it were written by some other leader of a later epoch.
        let own_end = match epoch {
            Some(e) => r.log.end_offset_for_epoch(e).1,
            None => 0,
        };
        let to = end_offset.min(own_end);
        r.log.truncate_to(to);
        Some(to)
    }

    /// Followers in the ISR that have not caught up for `replica.lag.time.max`: one
    /// proposal per partition to drop them.
    pub fn isr_shrinks(&mut self, now: Instant) -> Vec<IsrProposal> {
        let lag_max = self.settings.replica_lag_time_max;
        let me = self.id;
        let mut out = Vec::new();
        for (tp, r) in self.replicas.iter_mut() {
            let (Some(l), Some(view)) = (r.leader.as_mut(), r.view.as_ref()) else {
                continue;
            };
            if l.isr_change_pending {
                continue;
            }
            let lagging: Vec<BrokerId> = l
                .isr
                .iter()
                .copied()
                .filter(|f| *f != me)
                .filter(|f| {
                    l.followers
                        .get(f)
                        .is_none_or(|p| p.last_caught_up + lag_max < now)
                })
                .collect();
            if lagging.is_empty() {
                continue;
            }
            l.isr_change_pending = true;
            out.push(IsrProposal {
                tp: tp.clone(),
                leader_epoch: l.leader_epoch,
                partition_epoch: view.partition_epoch,
                isr: l
                    .isr
                    .iter()
                    .copied()
                    .filter(|b| !lagging.contains(b))
                    .collect(),
            });
        }
        out
    }

    /// The controller's answer to an ISR proposal.
    pub fn isr_change_done(
        &mut self,
        tp: &TopicPartition,
        result: Result<PartitionState, AlterIsrError>,
        now: Instant,
    ) {
        let me = self.id;
        let Some(r) = self.replicas.get_mut(tp) else {
            return;
        };
        if let Some(l) = r.leader.as_mut() {
            l.isr_change_pending = false;
        }
        if let Ok(st) = result {
            r.apply(me, &st, now, tp);
            r.advance_high_watermark(me);
        }
    }

    /// A consumer's fetch: committed records (below the high watermark) from `offset`.
    pub fn consumer_fetch(
        &self,
        tp: &TopicPartition,
        offset: u64,
        max: usize,
    ) -> Result<Vec<Record<V>>, ErrorCode> {
        let r = match self.replicas.get(tp) {
            Some(r) if r.leader.is_some() => r,
            _ if self.metadata.partition(tp).is_some() => {
                return Err(ErrorCode::NotLeaderOrFollower)
            }
            _ => return Err(ErrorCode::UnknownTopicOrPartition),
        };
        if offset > r.log.leo() {
            return Err(ErrorCode::OffsetOutOfRange);
        }
        let hw = r.log.high_watermark();
        let records = r
            .log
            .entries_between(offset, hw, max)
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match &e.payload {
                Payload::Record { id, key, value } => Some(Record {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    offset: offset + i as u64,
                    key: key.clone(),
                    value: value.clone(),
                    id: *id,
                    timestamp: e.timestamp,
                }),
                Payload::Offset(_) => None,
            })
            .collect();
        Ok(records)
    }

    /// The earliest and latest (high watermark) offsets of a partition this broker leads.
    pub fn list_offsets(&self, tp: &TopicPartition) -> Result<(u64, u64), ErrorCode> {
        match self.replicas.get(tp) {
            Some(r) if r.leader.is_some() => Ok((0, r.log.high_watermark())),
            _ if self.metadata.partition(tp).is_some() => Err(ErrorCode::NotLeaderOrFollower),
            _ => Err(ErrorCode::UnknownTopicOrPartition),
        }
    }

    /// The coordinator of `group` per this broker's metadata.
    pub fn coordinator_for(&self, group: &str) -> Option<BrokerId> {
        let tp = offsets_partition(group, self.settings.offsets_topic_partitions);
        self.metadata.partition(&tp)?.leader
    }

    fn coordinated_group(&mut self, group: &str) -> Result<&mut Group, ErrorCode> {
        let tp = offsets_partition(group, self.settings.offsets_topic_partitions);
        if !self.is_leader(&tp) {
            return Err(ErrorCode::NotCoordinator);
        }
        Ok(self.groups.entry(group.to_string()).or_default())
    }

    fn counts(metadata: &ClusterMetadata) -> impl Fn(&str) -> Option<u32> + '_ {
        move |t| metadata.partition_count(t)
    }

    pub fn join_group(
        &mut self,
        group: &str,
        member: &str,
        topics: BTreeSet<String>,
        session_timeout: Duration,
        assignor: Assignor,
        now: Instant,
    ) -> Result<Assignment, ErrorCode> {
        let md = self.metadata.clone();
        let counts = Self::counts(&md);
        let g = self.coordinated_group(group)?;
        let a = g.join(member, topics, session_timeout, assignor, now, &counts);
        Ok(a)
    }

    pub fn heartbeat(
        &mut self,
        group: &str,
        member: &str,
        owned: BTreeSet<TopicPartition>,
        now: Instant,
    ) -> Result<Assignment, ErrorCode> {
        let md = self.metadata.clone();
        let counts = Self::counts(&md);
        let g = self.coordinated_group(group)?;
        g.heartbeat(member, owned, now, &counts)
            .map_err(|_| ErrorCode::UnknownMemberId)
    }

    pub fn leave_group(&mut self, group: &str, member: &str) -> Result<(), ErrorCode> {
        let md = self.metadata.clone();
        let g = self.coordinated_group(group)?;
        g.leave(member, &Self::counts(&md));
        Ok(())
    }

    /// Expires members of every coordinated group; returns `(group, member)` pairs.
    pub fn expire_members(&mut self, now: Instant) -> Vec<(String, String)> {
        let md = self.metadata.clone();
        let counts = Self::counts(&md);
        let mut out = Vec::new();
        for (name, g) in self.groups.iter_mut() {
            for m in g.expire(now, &counts) {
                out.push((name.clone(), m));
            }
        }
        out
    }

    /// The earliest session deadline among the groups' members.
    pub fn next_member_expiry(&self) -> Option<Instant> {
        self.groups.values().filter_map(|g| g.next_expiry()).min()
    }

    pub fn group(&self, group: &str) -> Option<&Group> {
        self.groups.get(group)
    }

    /// Starts an offset commit: checks the member and appends the commit to the group's
    /// offsets partition. Returns where the last entry went, for the shell to wait until
    /// it is replicated before answering (commits are written with `acks=all`).
    pub fn begin_commit(
        &mut self,
        group: &str,
        member: Option<&str>,
        offsets: &[(TopicPartition, u64)],
        now: Instant,
    ) -> Result<(TopicPartition, Appended), ErrorCode> {
        let min_isr = self.settings.min_insync_replicas;
        let me = self.id;
        let tp = offsets_partition(group, self.settings.offsets_topic_partitions);
        let g = self.coordinated_group(group)?;
        if let Some(m) = member {
            if !g.is_member(m) {
                return Err(ErrorCode::UnknownMemberId);
            }
        }
        let r = self
            .replicas
            .get_mut(&tp)
            .ok_or(ErrorCode::NotCoordinator)?;
        let l = r.leader.as_ref().ok_or(ErrorCode::NotCoordinator)?;
        if l.isr.len() < min_isr {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        let leader_epoch = l.leader_epoch;
        let mut last = r.log.leo();
        for (otp, offset) in offsets {
            last = r.log.append(Entry {
                epoch: leader_epoch,
                stamp: None,
                timestamp: now,
                payload: Payload::Offset(OffsetEntry {
                    group: group.to_string(),
                    tp: otp.clone(),
                    offset: *offset,
                }),
            });
        }
        r.advance_high_watermark(me);
        Ok((
            tp,
            Appended {
                offset: last,
                leader_epoch,
                duplicate: false,
            },
        ))
    }

    /// Applies a commit once it is durable.
    pub fn finish_commit(&mut self, group: &str, offsets: &[(TopicPartition, u64)]) {
        if let Ok(g) = self.coordinated_group(group) {
            for (tp, o) in offsets {
                g.apply_commit(tp.clone(), *o);
            }
        }
    }

    pub fn committed_offsets(
        &mut self,
        group: &str,
        tps: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Option<u64>)>, ErrorCode> {
        let g = self.coordinated_group(group)?;
        Ok(tps.iter().map(|tp| (tp.clone(), g.committed(tp))).collect())
    }
}

impl<V: Clone> Replica<V> {
    pub fn high_watermark(&self) -> u64 {
        self.log.high_watermark()
    }

    /// The ISR this replica believes in while it leads.
    #[cfg(test)]
    pub fn leader_isr(&self) -> Option<Vec<BrokerId>> {
        self.leader
            .as_ref()
            .map(|l| l.isr.iter().copied().collect())
    }

    fn apply(
        &mut self,
        me: BrokerId,
        st: &PartitionState,
        now: Instant,
        tp: &TopicPartition,
    ) -> Option<RoleChange> {
        if let Some(v) = &self.view {
            if (st.leader_epoch, st.partition_epoch) < (v.leader_epoch, v.partition_epoch) {
                return None;
            }
        }
        let old = self.view.replace(st.clone());
        if st.leader == Some(me) {
            match self.leader.as_mut() {
                Some(l) if l.leader_epoch == st.leader_epoch => {
                    l.isr = st.isr.iter().copied().collect();
                    None
                }
                _ => {
                    self.log.assign_epoch(st.leader_epoch);
                    let followers = st
                        .replicas
                        .iter()
                        .copied()
                        .filter(|r| *r != me)
                        .map(|r| {
                            let p = FollowerProgress {
                                leo: 0,
                                last_caught_up: now,
                                last_fetch: now,
                                leader_leo_at_last_fetch: 0,
                            };
                            (r, p)
                        })
                        .collect();
                    self.leader = Some(LeaderState {
                        leader_epoch: st.leader_epoch,
                        epoch_start: self.log.leo(),
                        isr: st.isr.iter().copied().collect(),
                        followers,
                        isr_change_pending: false,
                    });
                    Some(RoleChange::Leader {
                        tp: tp.clone(),
                        leader_epoch: st.leader_epoch,
                    })
                }
            }
        } else {
            let was_leader = self.leader.take().is_some();
            let moved =
                old.map(|o| (o.leader, o.leader_epoch)) != Some((st.leader, st.leader_epoch));
            (was_leader || moved).then(|| RoleChange::Follower {
                tp: tp.clone(),
                leader: st.leader,
                leader_epoch: st.leader_epoch,
            })
        }
    }

    /// Raises the high watermark to the smallest log end among ISR members.
    fn advance_high_watermark(&mut self, me: BrokerId) {
        let Some(l) = &self.leader else { return };
        let mut hw = self.log.leo();
        for f in l.isr.iter().filter(|f| **f != me) {
            hw = hw.min(l.followers.get(f).map_or(0, |p| p.leo));
        }
        if hw > self.log.high_watermark() {
            self.log.set_high_watermark(hw);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::controller::ControllerState;

    fn settings(min_isr: usize) -> Settings {
        Settings {
            min_insync_replicas: min_isr,
            replica_lag_time_max: Duration::from_secs(10),
            offsets_topic_partitions: 1,
            fetch_max_entries: 100,
        }
    }

    fn at(ms: u64) -> Instant {
        Instant::START + Duration::from_millis(ms)
    }

    fn rec(n: u64) -> NewRecord<u64> {
        NewRecord {
            id: RecordId { producer: 1, n },
            key: None,
            value: n,
            stamp: None,
        }
    }

    fn tp() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    /// A controller and three brokers that all know its current metadata.
    struct Cluster {
        ctl: ControllerState,
        brokers: Vec<BrokerState<u64>>,
    }

    impl Cluster {
        fn new(n: usize, replication: usize, min_isr: usize) -> Self {
            let mut ctl = ControllerState::new(n, Duration::from_secs(9), false);
            for b in 0..n as u32 {
                ctl.heartbeat(b, 0, at(0));
            }
            ctl.create_topic("t", 1, replication).unwrap();
            ctl.create_topic(OFFSETS_TOPIC, 1, replication).unwrap();
            let brokers = (0..n as u32)
                .map(|b| BrokerState::new(b, settings(min_isr)))
                .collect();
            let mut c = Cluster { ctl, brokers };
            c.sync(0);
            c
        }

        fn sync(&mut self, now: u64) {
            for b in &mut self.brokers {
                b.apply_metadata(self.ctl.metadata(), at(now));
            }
        }

        /// One fetch round of follower `f` from leader `l` for `t-0`.
        fn replicate(&mut self, f: usize, l: usize, now: u64) {
            let (offset, epoch) = self.brokers[f].fetch_position(&tp()).unwrap();
            let (answer, proposal) = self.brokers[l]
                .replica_fetch(&tp(), f as u32, offset, epoch, at(now))
                .unwrap();
            match answer {
                ReplicaFetch::Records {
                    entries,
                    high_watermark,
                } => {
                    self.brokers[f].follower_append(&tp(), offset, entries, high_watermark);
                }
                ReplicaFetch::Diverging { epoch, end_offset } => {
                    self.brokers[f].follower_truncate(&tp(), epoch, end_offset);
                }
            }
            if let Some(p) = proposal {
                self.alter(l, p, now);
            }
        }

        fn alter(&mut self, l: usize, p: IsrProposal, now: u64) {
            let r = self
                .ctl
                .alter_isr(&p.tp, l as u32, p.leader_epoch, p.partition_epoch, p.isr);
            self.brokers[l].isr_change_done(&p.tp, r.map(|(st, _)| st), at(now));
        }

        fn values(&self, b: usize) -> Vec<u64> {
            self.brokers[b]
                .consumer_fetch(&tp(), 0, 100)
                .unwrap()
                .into_iter()
                .map(|r| r.value)
                .collect()
        }

        fn log_values(&self, b: usize) -> Vec<u64> {
            let log = &self.brokers[b].replica(&tp()).unwrap().log;
            log.entries_from(0, 100)
                .iter()
                .map(|e| match &e.payload {
                    Payload::Record { value, .. } => *value,
                    Payload::Offset(_) => u64::MAX,
                })
                .collect()
        }
    }

    #[test]
    fn single_broker_commits_at_once_and_consumers_see_committed_records() {
        let mut c = Cluster::new(1, 1, 1);
        let a = c.brokers[0]
            .produce(&tp(), Acks::All, rec(7), at(1))
            .unwrap();
        assert_eq!(a.offset, 0);
        assert_eq!(
            c.brokers[0].ack_status(&tp(), 0, a.leader_epoch),
            AckStatus::Done
        );
        assert_eq!(c.values(0), vec![7]);
        assert_eq!(c.brokers[0].list_offsets(&tp()), Ok((0, 1)));
    }

    #[test]
    fn acks_all_waits_for_every_isr_member_and_hides_uncommitted_records() {
        let mut c = Cluster::new(3, 3, 2);
        let a = c.brokers[0]
            .produce(&tp(), Acks::All, rec(1), at(1))
            .unwrap();
        assert_eq!(
            c.brokers[0].ack_status(&tp(), 0, a.leader_epoch),
            AckStatus::Pending
        );
        assert!(c.values(0).is_empty(), "above the high watermark");
        c.replicate(1, 0, 2);
        c.replicate(2, 0, 2);
        assert_eq!(
            c.brokers[0].ack_status(&tp(), 0, a.leader_epoch),
            AckStatus::Pending
        );
        // The next fetches tell the leader the followers have offset 0.
        c.replicate(1, 0, 3);
        assert_eq!(
            c.brokers[0].ack_status(&tp(), 0, a.leader_epoch),
            AckStatus::Pending
        );
        c.replicate(2, 0, 3);
        assert_eq!(
            c.brokers[0].ack_status(&tp(), 0, a.leader_epoch),
            AckStatus::Done
        );
        assert_eq!(c.values(0), vec![1]);
        assert_eq!(
            c.brokers[1].replica(&tp()).unwrap().high_watermark(),
            0,
            "learns it next fetch"
        );
        c.replicate(1, 0, 4);
        assert_eq!(c.brokers[1].replica(&tp()).unwrap().high_watermark(), 1);
    }

    #[test]
    fn errors_name_the_problem() {
        let mut c = Cluster::new(3, 3, 2);
        let missing = TopicPartition::new("nope", 0);
        assert_eq!(
            c.brokers[0].produce(&missing, Acks::One, rec(1), at(1)),
            Err(ErrorCode::UnknownTopicOrPartition)
        );
        assert_eq!(
            c.brokers[1].produce(&tp(), Acks::One, rec(1), at(1)),
            Err(ErrorCode::NotLeaderOrFollower)
        );
        assert_eq!(
            c.brokers[1].consumer_fetch(&tp(), 0, 10),
            Err(ErrorCode::NotLeaderOrFollower)
        );
        assert_eq!(
            c.brokers[0].consumer_fetch(&tp(), 5, 10),
            Err(ErrorCode::OffsetOutOfRange)
        );
    }

    #[test]
    fn isr_shrinks_for_laggards_then_min_isr_refuses_acks_all_but_not_acks_1() {
        let mut c = Cluster::new(3, 3, 2);
        // Only broker 1 keeps fetching; broker 2 is silent past replica.lag.time.max.
        for t in (0..=12_000).step_by(1000) {
            c.replicate(1, 0, t);
        }
        let proposals = c.brokers[0].isr_shrinks(at(12_000));
        assert_eq!(proposals.len(), 2, "both topics lead here: {proposals:?}");
        for p in proposals {
            if p.tp == tp() {
                assert_eq!(p.isr, vec![0, 1]);
            }
            c.alter(0, p, 12_000);
        }
        assert_eq!(
            c.brokers[0].replica(&tp()).unwrap().leader_isr(),
            Some(vec![0, 1])
        );
        // Broker 1 falls silent too.
        let proposals = c.brokers[0].isr_shrinks(at(30_000));
        for p in proposals {
            c.alter(0, p, 30_000);
        }
        assert_eq!(
            c.brokers[0].produce(&tp(), Acks::All, rec(1), at(30_001)),
            Err(ErrorCode::NotEnoughReplicas)
        );
        assert!(c.brokers[0]
            .produce(&tp(), Acks::One, rec(2), at(30_001))
            .is_ok());
        // Broker 2 catches up and is added back.
        c.replicate(2, 0, 30_002);
        assert_eq!(
            c.brokers[0].replica(&tp()).unwrap().leader_isr(),
            Some(vec![0]),
            "not yet"
        );
        c.replicate(2, 0, 30_002);
        assert_eq!(
            c.brokers[0].replica(&tp()).unwrap().leader_isr(),
            Some(vec![0, 2])
        );
        assert!(c.brokers[0]
            .produce(&tp(), Acks::All, rec(3), at(30_003))
            .is_ok());
    }

    #[test]
    fn isr_shrinking_below_min_after_append_fails_the_ack() {
        let mut c = Cluster::new(2, 2, 2);
        let a = c.brokers[0]
            .produce(&tp(), Acks::All, rec(1), at(1))
            .unwrap();
        let proposals = c.brokers[0].isr_shrinks(at(20_000));
        for p in proposals {
            c.alter(0, p, 20_000);
        }
        assert_eq!(
            c.brokers[0].ack_status(&tp(), a.offset, a.leader_epoch),
            AckStatus::Failed(ErrorCode::NotEnoughReplicasAfterAppend)
        );
    }

    #[test]
    fn idempotent_retries_return_the_first_offset() {
        let mut c = Cluster::new(1, 1, 1);
        let stamp = Some(ProducerStamp {
            producer_id: 4,
            seq: 0,
        });
        let first = c.brokers[0]
            .produce(&tp(), Acks::One, NewRecord { stamp, ..rec(1) }, at(1))
            .unwrap();
        let again = c.brokers[0]
            .produce(&tp(), Acks::One, NewRecord { stamp, ..rec(1) }, at(2))
            .unwrap();
        assert!(!first.duplicate);
        assert!(again.duplicate);
        assert_eq!(again.offset, first.offset);
        assert_eq!(c.values(0), vec![1]);
        // Without a stamp the same retry is a second record.
        c.brokers[0]
            .produce(&tp(), Acks::One, rec(1), at(3))
            .unwrap();
        assert_eq!(c.values(0), vec![1, 1]);
    }

    #[test]
    fn acks_1_record_only_on_the_old_leader_is_truncated_after_failover() {
        let mut c = Cluster::new(2, 2, 1);
        c.brokers[0]
            .produce(&tp(), Acks::One, rec(1), at(1))
            .unwrap();
        c.replicate(1, 0, 2);
        c.replicate(1, 0, 3);
        // Acknowledged (acks=1) but never fetched by broker 1.
        let lost = c.brokers[0]
            .produce(&tp(), Acks::One, rec(2), at(4))
            .unwrap();
        assert_eq!(lost.offset, 1);
        // Broker 0 dies; 1 is in sync and takes over, then takes a new write at offset 1.
        c.ctl.heartbeat(1, 0, at(9000));
        c.ctl.tick(at(9500));
        c.sync(9500);
        assert!(c.brokers[1].is_leader(&tp()));
        c.brokers[1]
            .produce(&tp(), Acks::One, rec(3), at(9600))
            .unwrap();
        // Broker 0 restarts: logs kept, role forgotten, then follows and truncates.
        c.brokers[0].crash();
        assert_eq!(c.log_values(0), vec![1, 2]);
        c.ctl.heartbeat(0, 1, at(9700));
        c.sync(9700);
        c.replicate(0, 1, 9800);
        assert_eq!(c.log_values(0), vec![1], "diverging suffix dropped");
        c.replicate(0, 1, 9900);
        assert_eq!(c.log_values(0), vec![1, 3]);
        assert_eq!(c.log_values(1), vec![1, 3]);
    }

    #[test]
    fn consumer_offsets_survive_a_coordinator_restart() {
        let mut c = Cluster::new(1, 1, 1);
        let topics: BTreeSet<String> = ["t".to_string()].into();
        let a = c.brokers[0]
            .join_group(
                "g",
                "m1",
                topics,
                Duration::from_secs(10),
                Assignor::Range,
                at(1),
            )
            .unwrap();
        assert_eq!(a.partitions.len(), 1);
        let offsets = vec![(tp(), 5)];
        assert_eq!(
            c.brokers[0]
                .begin_commit("g", Some("zombie"), &offsets, at(2))
                .unwrap_err(),
            ErrorCode::UnknownMemberId
        );
        let (otp, appended) = c.brokers[0]
            .begin_commit("g", Some("m1"), &offsets, at(2))
            .unwrap();
        assert_eq!(
            c.brokers[0].ack_status(&otp, appended.offset, appended.leader_epoch),
            AckStatus::Done
        );
        c.brokers[0].finish_commit("g", &offsets);
        assert_eq!(
            c.brokers[0].committed_offsets("g", &[tp()]).unwrap(),
            vec![(tp(), Some(5))]
        );
        let lost = c.brokers[0].crash();
        assert_eq!(lost.groups, vec!["g".to_string()]);
        assert!(
            lost.leaderships.contains(&offsets_partition("g", 1))
                && lost.leaderships.contains(&tp()),
            "{lost:?}"
        );
        assert!(c.brokers[0].group("g").is_none(), "membership is volatile");
        c.ctl.heartbeat(0, 1, at(3));
        c.sync(3);
        assert_eq!(
            c.brokers[0].committed_offsets("g", &[tp()]).unwrap(),
            vec![(tp(), Some(5))]
        );
        assert_eq!(c.brokers[0].coordinator_for("g"), Some(0));
    }

    #[test]
    fn older_metadata_does_not_undo_an_isr_change() {
        let mut c = Cluster::new(3, 3, 1);
        let old = c.ctl.metadata();
        for t in (0..=12_000).step_by(1000) {
            c.replicate(1, 0, t);
        }
        for p in c.brokers[0].isr_shrinks(at(12_000)) {
            c.alter(0, p, 12_000);
        }
        c.brokers[0].apply_metadata(old, at(12_001));
        assert_eq!(
            c.brokers[0].replica(&tp()).unwrap().leader_isr(),
            Some(vec![0, 1])
        );
    }
}
