//! The controller's pure state machine: which brokers are alive, and for every partition
//! its replicas, leader, leader epoch and in-sync replica set (ISR).
//!
//! It plays the part of Kafka's KRaft controller: brokers heartbeat to it; one silent for
//! `broker.session.timeout.ms` is fenced and every partition it led gets a new leader from
//! the ISR; leaders ask it to shrink or expand their ISR. Elections are clean by default:
//! only an in-sync replica may lead, so a record every ISR member had survives.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sim_runtime::time::{Duration, Instant};
use sim_runtime::trace::TraceEvent;

use super::error::AdminError;
use super::types::{BrokerId, TopicPartition};

/// One partition's placement and leadership, as the controller decided it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct PartitionState {
    pub replicas: Vec<BrokerId>,
    pub leader: Option<BrokerId>,
    /// Bumped on every leader change; fences requests of older leaders.
    pub leader_epoch: u32,
    pub isr: Vec<BrokerId>,
    /// Bumped on every change of this partition's state (ISR or leader).
    pub partition_epoch: u32,
}

/// The cluster as brokers and clients see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ClusterMetadata {
    pub version: u64,
    pub live_brokers: BTreeSet<BrokerId>,
    pub topics: BTreeMap<String, Vec<PartitionState>>,
}

impl ClusterMetadata {
    pub fn partition(&self, tp: &TopicPartition) -> Option<&PartitionState> {
        self.topics.get(&tp.topic)?.get(tp.partition as usize)
    }

    pub fn partition_count(&self, topic: &str) -> Option<u32> {
        self.topics.get(topic).map(|p| p.len() as u32)
    }
}

/// What changed: the `queue.controller` trace event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TraceEvent)]
#[serde(tag = "change", rename_all = "snake_case")]
#[trace_event(name = "queue.controller")]
pub(crate) enum ControllerEvent {
    BrokerRegistered {
        broker: BrokerId,
        incarnation: u32,
    },
    BrokerFenced {
        broker: BrokerId,
    },
    LeaderElected {
        topic: String,
        partition: u32,
        leader: Option<BrokerId>,
        leader_epoch: u32,
        isr: Vec<BrokerId>,
        unclean: bool,
    },
    IsrChanged {
        topic: String,
        partition: u32,
        isr: Vec<BrokerId>,
        partition_epoch: u32,
    },
}

/// Why an ISR change was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AlterIsrError {
    #[error("unknown partition")]
    UnknownPartition,
    #[error("the requester is not the current leader")]
    FencedLeaderEpoch,
    #[error("stale partition epoch")]
    InvalidUpdateVersion,
    #[error("a proposed member is fenced or not a replica")]
    IneligibleReplica,
}

#[derive(Clone, Debug)]
struct BrokerRecord {
    incarnation: Option<u32>,
    last_seen: Instant,
    fenced: bool,
}

/// The controller's state.
#[derive(Clone, Debug)]
pub(crate) struct ControllerState {
    session_timeout: Duration,
    unclean: bool,
    brokers: Vec<BrokerRecord>,
    topics: BTreeMap<String, Vec<PartitionState>>,
    version: u64,
}

impl ControllerState {
    /// A controller for `brokers` brokers, none registered yet (all fenced).
    pub fn new(brokers: usize, session_timeout: Duration, unclean: bool) -> Self {
        let b = BrokerRecord {
            incarnation: None,
            last_seen: Instant::START,
            fenced: true,
        };
        ControllerState {
            session_timeout,
            unclean,
            brokers: vec![b; brokers],
            topics: BTreeMap::new(),
            version: 0,
        }
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    fn fenced(&self, b: BrokerId) -> bool {
        self.brokers[b as usize].fenced
    }

    /// One partition's state, read in place: what `metadata().partition(..)` gives
    /// without copying every topic to get it.
    pub fn partition(&self, tp: &TopicPartition) -> Option<&PartitionState> {
        self.topics.get(&tp.topic)?.get(tp.partition as usize)
    }

    pub fn metadata(&self) -> ClusterMetadata {
        ClusterMetadata {
            version: self.version,
            live_brokers: (0..self.brokers.len() as u32)
                .filter(|b| !self.fenced(*b))
                .collect(),
            topics: self.topics.clone(),
        }
    }

    /// Creates a topic. Partition `p`'s replicas are brokers `p, p+1, ..` (mod the count),
    /// so leaders spread; the first live replica leads and live replicas form the ISR.
    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: u32,
        replication: usize,
    ) -> Result<Vec<ControllerEvent>, AdminError> {
        let n = self.brokers.len();
        if self.topics.contains_key(name) {
            return Err(AdminError::TopicExists(name.to_string()));
        }
        if partitions == 0 {
            return Err(AdminError::InvalidPartitions);
        }
        if replication == 0 || replication > n {
            return Err(AdminError::InvalidReplicationFactor {
                replication,
                brokers: n,
            });
        }
        let mut events = Vec::new();
        let mut states = Vec::with_capacity(partitions as usize);
        for p in 0..partitions {
            let replicas: Vec<BrokerId> = (0..replication)
                .map(|i| ((p as usize + i) % n) as BrokerId)
                .collect();
            let isr: Vec<BrokerId> = replicas
                .iter()
                .copied()
                .filter(|r| !self.fenced(*r))
                .collect();
            let leader = isr.first().copied();
            let isr = if isr.is_empty() {
                replicas.clone()
            } else {
                isr
            };
            events.push(ControllerEvent::LeaderElected {
                topic: name.to_string(),
                partition: p,
                leader,
                leader_epoch: 0,
                isr: isr.clone(),
                unclean: false,
            });
            states.push(PartitionState {
                replicas,
                leader,
                leader_epoch: 0,
                isr,
                partition_epoch: 0,
            });
        }
        self.topics.insert(name.to_string(), states);
        self.version += 1;
        Ok(events)
    }

    /// A heartbeat from `broker` running as `incarnation`. A new incarnation is a restart:
    /// the old process is fenced first (its leaderships move), then the new one joins.
    pub fn heartbeat(
        &mut self,
        broker: BrokerId,
        incarnation: u32,
        now: Instant,
    ) -> Vec<ControllerEvent> {
        let mut events = Vec::new();
        let rec = &self.brokers[broker as usize];
        let known = rec.incarnation == Some(incarnation);
        if known && !rec.fenced {
            self.brokers[broker as usize].last_seen = now;
            return events;
        }
        if !rec.fenced {
            self.fence(broker, &mut events);
        }
        let rec = &mut self.brokers[broker as usize];
        rec.incarnation = Some(incarnation);
        rec.last_seen = now;
        rec.fenced = false;
        events.push(ControllerEvent::BrokerRegistered {
            broker,
            incarnation,
        });
        self.unfence(broker, &mut events);
        self.version += 1;
        events
    }

    /// The earliest time a registered broker's session can expire (heartbeats only move
    /// it later; a registration, which may bring an earlier one, changes the metadata).
    pub fn next_fence_deadline(&self) -> Option<Instant> {
        self.brokers
            .iter()
            .filter(|b| !b.fenced)
            .map(|b| b.last_seen + self.session_timeout)
            .min()
    }

    /// Fences every broker whose session expired.
    pub fn tick(&mut self, now: Instant) -> Vec<ControllerEvent> {
        let mut events = Vec::new();
        for b in 0..self.brokers.len() {
            let rec = &self.brokers[b];
            if !rec.fenced && rec.last_seen + self.session_timeout < now {
                self.fence(b as BrokerId, &mut events);
            }
        }
        if !events.is_empty() {
            self.version += 1;
        }
        events
    }

    fn fence(&mut self, broker: BrokerId, events: &mut Vec<ControllerEvent>) {
        self.brokers[broker as usize].fenced = true;
        events.push(ControllerEvent::BrokerFenced { broker });
        let fenced: Vec<bool> = self.brokers.iter().map(|b| b.fenced).collect();
        let unclean = self.unclean;
        for (topic, parts) in self.topics.iter_mut() {
            for (p, st) in parts.iter_mut().enumerate() {
                if !st.isr.contains(&broker) && st.leader != Some(broker) {
                    continue;
                }
                if st.leader == Some(broker) {
                    let candidate = st
                        .replicas
                        .iter()
                        .copied()
                        .find(|r| st.isr.contains(r) && !fenced[*r as usize]);
                    let mut was_unclean = false;
                    match candidate {
                        Some(c) => {
                            st.leader = Some(c);
                            st.isr.retain(|r| *r != broker);
                        }
                        None => {
                            let any_live =
                                st.replicas.iter().copied().find(|r| !fenced[*r as usize]);
                            match any_live {
                                Some(r) if unclean => {
                                    st.leader = Some(r);
                                    st.isr = vec![r];
                                    was_unclean = true;
                                }
                                // The last in-sync replica stays in the ISR so that it,
                                // and only it, can lead again when it comes back.
                                _ => st.leader = None,
                            }
                        }
                    }
                    st.leader_epoch += 1;
                    st.partition_epoch += 1;
                    events.push(ControllerEvent::LeaderElected {
                        topic: topic.clone(),
                        partition: p as u32,
                        leader: st.leader,
                        leader_epoch: st.leader_epoch,
                        isr: st.isr.clone(),
                        unclean: was_unclean,
                    });
                } else if st.isr.len() > 1 {
                    st.isr.retain(|r| *r != broker);
                    st.partition_epoch += 1;
                    events.push(ControllerEvent::IsrChanged {
                        topic: topic.clone(),
                        partition: p as u32,
                        isr: st.isr.clone(),
                        partition_epoch: st.partition_epoch,
                    });
                }
            }
        }
    }

    /// Gives leaderless partitions a leader now that `broker` is back.
    fn unfence(&mut self, broker: BrokerId, events: &mut Vec<ControllerEvent>) {
        let unclean = self.unclean;
        for (topic, parts) in self.topics.iter_mut() {
            for (p, st) in parts.iter_mut().enumerate() {
                if st.leader.is_some() || !st.replicas.contains(&broker) {
                    continue;
                }
                let was_unclean = !st.isr.contains(&broker);
                if was_unclean && !unclean {
                    continue;
                }
                st.leader = Some(broker);
                if was_unclean {
                    st.isr = vec![broker];
                }
                st.leader_epoch += 1;
                st.partition_epoch += 1;
                events.push(ControllerEvent::LeaderElected {
                    topic: topic.clone(),
                    partition: p as u32,
                    leader: st.leader,
                    leader_epoch: st.leader_epoch,
                    isr: st.isr.clone(),
                    unclean: was_unclean,
                });
            }
        }
    }

    /// A leader's request to set its partition's ISR to `isr`.
    pub fn alter_isr(
        &mut self,
        tp: &TopicPartition,
        leader: BrokerId,
        leader_epoch: u32,
        partition_epoch: u32,
        isr: Vec<BrokerId>,
    ) -> Result<(PartitionState, ControllerEvent), AlterIsrError> {
        let fenced: Vec<bool> = self.brokers.iter().map(|b| b.fenced).collect();
        let st = self
            .topics
            .get_mut(&tp.topic)
            .and_then(|p| p.get_mut(tp.partition as usize))
            .ok_or(AlterIsrError::UnknownPartition)?;
        if st.leader != Some(leader) || st.leader_epoch != leader_epoch {
            return Err(AlterIsrError::FencedLeaderEpoch);
        }
        if st.partition_epoch != partition_epoch {
            return Err(AlterIsrError::InvalidUpdateVersion);
        }
        let eligible = isr.contains(&leader)
            && isr
                .iter()
                .all(|r| st.replicas.contains(r) && (st.isr.contains(r) || !fenced[*r as usize]));
        if !eligible {
            return Err(AlterIsrError::IneligibleReplica);
        }
        st.isr = isr;
        st.partition_epoch += 1;
        let event = ControllerEvent::IsrChanged {
            topic: tp.topic.clone(),
            partition: tp.partition,
            isr: st.isr.clone(),
            partition_epoch: st.partition_epoch,
        };
        let st = st.clone();
        self.version += 1;
        Ok((st, event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Instant {
        Instant::START + Duration::from_millis(n)
    }

    fn three() -> ControllerState {
        let mut c = ControllerState::new(3, Duration::from_secs(9), false);
        for b in 0..3 {
            c.heartbeat(b, 0, ms(0));
        }
        c.create_topic("t", 3, 3).unwrap();
        c
    }

    fn part(c: &ControllerState, p: u32) -> PartitionState {
        c.metadata()
            .partition(&TopicPartition::new("t", p))
            .unwrap()
            .clone()
    }

    #[test]
    fn create_topic_spreads_leaders_and_validates() {
        let mut c = three();
        assert_eq!(part(&c, 0).leader, Some(0));
        assert_eq!(part(&c, 1).leader, Some(1));
        assert_eq!(part(&c, 1).replicas, vec![1, 2, 0]);
        assert_eq!(part(&c, 2).isr, vec![2, 0, 1]);
        assert!(matches!(
            c.create_topic("t", 1, 1),
            Err(AdminError::TopicExists(_))
        ));
        assert!(matches!(
            c.create_topic("u", 1, 4),
            Err(AdminError::InvalidReplicationFactor { .. })
        ));
        assert!(matches!(
            c.create_topic("u", 0, 1),
            Err(AdminError::InvalidPartitions)
        ));
    }

    #[test]
    fn silent_leader_is_fenced_and_an_isr_member_takes_over() {
        let mut c = three();
        // Brokers 1 and 2 keep heartbeating, 0 goes silent.
        for t in [3000, 6000, 9000] {
            c.heartbeat(1, 0, ms(t));
            c.heartbeat(2, 0, ms(t));
            assert!(c.tick(ms(t)).is_empty());
        }
        let events = c.tick(ms(9001));
        assert!(events.contains(&ControllerEvent::BrokerFenced { broker: 0 }));
        let p0 = part(&c, 0);
        assert_eq!(p0.leader, Some(1), "next in replica order that is in sync");
        assert_eq!(p0.leader_epoch, 1);
        assert_eq!(p0.isr, vec![1, 2]);
        assert_eq!(
            part(&c, 1).leader,
            Some(1),
            "followers' loss only shrinks the ISR"
        );
        assert_eq!(part(&c, 1).isr, vec![1, 2]);
        assert!(!c.metadata().live_brokers.contains(&0));
    }

    #[test]
    fn out_of_sync_replicas_never_lead_unless_unclean() {
        for unclean in [false, true] {
            let mut c = ControllerState::new(2, Duration::from_secs(9), unclean);
            c.heartbeat(0, 0, ms(0));
            c.heartbeat(1, 0, ms(0));
            c.create_topic("t", 1, 2).unwrap();
            // The leader shrinks the ISR to itself (the follower lagged), then dies.
            let st = part(&c, 0);
            c.alter_isr(
                &TopicPartition::new("t", 0),
                0,
                st.leader_epoch,
                st.partition_epoch,
                vec![0],
            )
            .unwrap();
            c.heartbeat(1, 0, ms(9000));
            c.tick(ms(9500));
            let p = part(&c, 0);
            if unclean {
                assert_eq!(p.leader, Some(1));
                assert_eq!(p.isr, vec![1]);
            } else {
                assert_eq!(p.leader, None, "offline rather than losing data");
                assert_eq!(p.isr, vec![0]);
                // The last in-sync replica returns and leads again.
                c.heartbeat(0, 1, ms(10_000));
                assert_eq!(part(&c, 0).leader, Some(0));
            }
        }
    }

    #[test]
    fn restart_with_new_incarnation_moves_leadership() {
        let mut c = three();
        let events = c.heartbeat(0, 1, ms(100));
        assert!(events.contains(&ControllerEvent::BrokerFenced { broker: 0 }));
        assert_eq!(part(&c, 0).leader, Some(1));
        assert!(c.metadata().live_brokers.contains(&0), "registered again");
    }

    #[test]
    fn alter_isr_checks_leader_and_epochs() {
        let mut c = three();
        let tp = TopicPartition::new("t", 0);
        let st = part(&c, 0);
        assert_eq!(
            c.alter_isr(&tp, 1, st.leader_epoch, st.partition_epoch, vec![1])
                .unwrap_err(),
            AlterIsrError::FencedLeaderEpoch
        );
        assert_eq!(
            c.alter_isr(&tp, 0, st.leader_epoch, st.partition_epoch + 5, vec![0])
                .unwrap_err(),
            AlterIsrError::InvalidUpdateVersion
        );
        assert_eq!(
            c.alter_isr(&tp, 0, st.leader_epoch, st.partition_epoch, vec![1])
                .unwrap_err(),
            AlterIsrError::IneligibleReplica,
            "the leader must stay in its ISR"
        );
        let (new, _) = c
            .alter_isr(&tp, 0, st.leader_epoch, st.partition_epoch, vec![0, 1])
            .unwrap();
        assert_eq!(new.isr, vec![0, 1]);
        assert_eq!(new.partition_epoch, st.partition_epoch + 1);
    }
}
