//! Consumer groups on the coordinator: membership, session expiry, partition assignment
//! and the committed-offset cache. Pure; the broker shell persists commits to
//! `__consumer_offsets` before applying them here.
//!
//! Assignment is computed on the coordinator, as in Kafka's newer group protocol
//! (KIP-848), with the classic `range` and `roundrobin` strategies. A partition moves in
//! two steps: the group's target assignment changes at once, but the new owner receives
//! the partition only after the previous owner has reported (in a heartbeat) that it let
//! it go, or after that owner's session expired. So two live members never consume one
//! partition at the same time; a member that was paused past its session timeout is a
//! zombie, and its commits are refused (`UNKNOWN_MEMBER_ID`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sim_runtime::time::{Duration, Instant};

use super::types::TopicPartition;

/// `partition.assignment.strategy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Assignor {
    /// Per topic, contiguous ranges of partitions to members in id order; the first
    /// members get one extra when the division is uneven. Kafka's first default.
    #[default]
    Range,
    /// All subscribed partitions dealt to members in turn.
    RoundRobin,
}

/// Computes the target assignment: member id -> partitions.
pub(crate) fn assign(
    assignor: Assignor,
    subscriptions: &BTreeMap<String, BTreeSet<String>>,
    counts: &BTreeMap<String, u32>,
) -> BTreeMap<String, BTreeSet<TopicPartition>> {
    let mut out: BTreeMap<String, BTreeSet<TopicPartition>> = subscriptions
        .keys()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    match assignor {
        Assignor::Range => {
            for (topic, n) in counts {
                let members: Vec<&String> = subscriptions
                    .iter()
                    .filter(|(_, t)| t.contains(topic))
                    .map(|(m, _)| m)
                    .collect();
                if members.is_empty() {
                    continue;
                }
                let (per, extra) = (*n as usize / members.len(), *n as usize % members.len());
                let mut next = 0u32;
                for (i, m) in members.iter().enumerate() {
                    let take = per + usize::from(i < extra);
                    for _ in 0..take {
                        out.get_mut(*m)
                            .expect("member listed")
                            .insert(TopicPartition::new(topic.clone(), next));
                        next += 1;
                    }
                }
            }
        }
        Assignor::RoundRobin => {
            let members: Vec<&String> = subscriptions.keys().collect();
            if members.is_empty() {
                return out;
            }
            let mut cursor = 0usize;
            for (topic, n) in counts {
                for p in 0..*n {
                    // Advance to the next member subscribed to this topic, as Kafka's
                    // circular iterator does; give up after a full turn.
                    for _ in 0..members.len() {
                        let m = members[cursor % members.len()];
                        cursor += 1;
                        if subscriptions[m].contains(topic) {
                            out.get_mut(m)
                                .expect("member listed")
                                .insert(TopicPartition::new(topic.clone(), p));
                            break;
                        }
                    }
                }
            }
        }
    }
    out
}

#[derive(Clone, Debug)]
struct Member {
    topics: BTreeSet<String>,
    session_timeout: Duration,
    last_seen: Instant,
    owned: BTreeSet<TopicPartition>,
}

/// What a member may consume now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Assignment {
    /// The group epoch: bumped on every membership or topic change.
    pub epoch: u32,
    pub partitions: BTreeSet<TopicPartition>,
}

/// The member is not (or no longer) in the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("UNKNOWN_MEMBER_ID")]
pub(crate) struct UnknownMember;

/// One consumer group's state on its coordinator.
#[derive(Clone, Debug, Default)]
pub(crate) struct Group {
    assignor: Assignor,
    epoch: u32,
    members: BTreeMap<String, Member>,
    target: BTreeMap<String, BTreeSet<TopicPartition>>,
    counts_used: BTreeMap<String, u32>,
    offsets: BTreeMap<TopicPartition, u64>,
}

impl Group {
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    pub fn is_member(&self, member: &str) -> bool {
        self.members.contains_key(member)
    }

    /// Adds a member (the consumer chose its id, as in KIP-848) and rebalances.
    pub fn join(
        &mut self,
        member: &str,
        topics: BTreeSet<String>,
        session_timeout: Duration,
        assignor: Assignor,
        now: Instant,
        counts: &dyn Fn(&str) -> Option<u32>,
    ) -> Assignment {
        if self.members.is_empty() {
            // The first member's strategy is the group's, as the classic protocol picks one
            // every member supports.
            self.assignor = assignor;
        }
        self.members.insert(
            member.to_string(),
            Member {
                topics,
                session_timeout,
                last_seen: now,
                owned: BTreeSet::new(),
            },
        );
        self.rebalance(counts);
        self.hand_out(member)
    }

    /// A heartbeat: the member reports what it consumes now and learns what it may.
    pub fn heartbeat(
        &mut self,
        member: &str,
        owned: BTreeSet<TopicPartition>,
        now: Instant,
        counts: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<Assignment, UnknownMember> {
        let m = self.members.get_mut(member).ok_or(UnknownMember)?;
        m.last_seen = now;
        m.owned = owned;
        if self.current_counts(counts) != self.counts_used {
            self.rebalance(counts);
        }
        Ok(self.hand_out(member))
    }

    /// The member's assignment, which from now on counts as owned by it until it reports
    /// otherwise: a partition just handed out must not go to anyone else meanwhile.
    fn hand_out(&mut self, member: &str) -> Assignment {
        let a = self.assignment(member);
        if let Some(m) = self.members.get_mut(member) {
            m.owned.extend(a.partitions.iter().cloned());
        }
        a
    }

    /// A member leaving on purpose (`close`).
    pub fn leave(&mut self, member: &str, counts: &dyn Fn(&str) -> Option<u32>) -> bool {
        let left = self.members.remove(member).is_some();
        if left {
            self.rebalance(counts);
        }
        left
    }

    /// Removes members whose session expired; returns their ids.
    pub fn expire(&mut self, now: Instant, counts: &dyn Fn(&str) -> Option<u32>) -> Vec<String> {
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.last_seen + m.session_timeout < now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            self.members.remove(id);
        }
        if !expired.is_empty() {
            self.rebalance(counts);
        }
        expired
    }

    fn current_counts(&self, counts: &dyn Fn(&str) -> Option<u32>) -> BTreeMap<String, u32> {
        let topics: BTreeSet<&String> = self
            .members
            .values()
            .flat_map(|m| m.topics.iter())
            .collect();
        topics
            .into_iter()
            .filter_map(|t| counts(t).map(|n| (t.clone(), n)))
            .collect()
    }

    fn rebalance(&mut self, counts: &dyn Fn(&str) -> Option<u32>) {
        self.epoch += 1;
        self.counts_used = self.current_counts(counts);
        let subs: BTreeMap<String, BTreeSet<String>> = self
            .members
            .iter()
            .map(|(id, m)| (id.clone(), m.topics.clone()))
            .collect();
        self.target = assign(self.assignor, &subs, &self.counts_used);
    }

    /// The member's target minus partitions another member still reports owning.
    pub fn assignment(&self, member: &str) -> Assignment {
        let target = self.target.get(member).cloned().unwrap_or_default();
        let partitions = target
            .into_iter()
            .filter(|tp| {
                !self
                    .members
                    .iter()
                    .any(|(id, m)| id != member && m.owned.contains(tp))
            })
            .collect();
        Assignment {
            epoch: self.epoch,
            partitions,
        }
    }

    pub fn committed(&self, tp: &TopicPartition) -> Option<u64> {
        self.offsets.get(tp).copied()
    }

    /// Applies a commit that is durable in `__consumer_offsets`.
    pub fn apply_commit(&mut self, tp: TopicPartition, offset: u64) {
        self.offsets.insert(tp, offset);
    }

    /// The earliest time a member's session can expire.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.members
            .values()
            .map(|m| m.last_seen + m.session_timeout)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tps(list: &[(&str, u32)]) -> BTreeSet<TopicPartition> {
        list.iter()
            .map(|(t, p)| TopicPartition::new(*t, *p))
            .collect()
    }

    fn subs(list: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        list.iter()
            .map(|(m, ts)| (m.to_string(), ts.iter().map(|t| t.to_string()).collect()))
            .collect()
    }

    fn counts(list: &[(&str, u32)]) -> BTreeMap<String, u32> {
        list.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    #[test]
    fn range_gives_contiguous_ranges_first_members_get_extra() {
        let a = assign(
            Assignor::Range,
            &subs(&[("a", &["t"]), ("b", &["t"])]),
            &counts(&[("t", 5)]),
        );
        assert_eq!(a["a"], tps(&[("t", 0), ("t", 1), ("t", 2)]));
        assert_eq!(a["b"], tps(&[("t", 3), ("t", 4)]));
    }

    #[test]
    fn round_robin_deals_in_turn_and_skips_unsubscribed() {
        let s = subs(&[("a", &["t", "u"]), ("b", &["t"])]);
        let a = assign(Assignor::RoundRobin, &s, &counts(&[("t", 3), ("u", 2)]));
        assert_eq!(a["a"], tps(&[("t", 0), ("t", 2), ("u", 0), ("u", 1)]));
        assert_eq!(a["b"], tps(&[("t", 1)]));
    }

    fn two_partitions(t: &str) -> Option<u32> {
        (t == "t").then_some(2)
    }

    fn at(ms: u64) -> Instant {
        Instant::START + Duration::from_millis(ms)
    }

    #[test]
    fn partitions_move_only_after_the_old_owner_lets_go() {
        let mut g = Group::default();
        let topics: BTreeSet<String> = ["t".to_string()].into();
        let s = Duration::from_secs(10);
        let a = g.join(
            "a",
            topics.clone(),
            s,
            Assignor::Range,
            at(0),
            &two_partitions,
        );
        assert_eq!(a.partitions, tps(&[("t", 0), ("t", 1)]));
        // Before a's first heartbeat, what it was handed counts as owned by it.
        let b = g.join("b", topics, s, Assignor::Range, at(2), &two_partitions);
        assert!(b.partitions.is_empty(), "a still owns t-1");
        assert!(b.epoch > a.epoch);
        let a2 = g
            .heartbeat("a", a.partitions, at(3), &two_partitions)
            .unwrap();
        assert_eq!(a2.partitions, tps(&[("t", 0)]), "a is told to give up t-1");
        g.heartbeat("a", a2.partitions, at(4), &two_partitions)
            .unwrap();
        let b2 = g
            .heartbeat("b", BTreeSet::new(), at(5), &two_partitions)
            .unwrap();
        assert_eq!(b2.partitions, tps(&[("t", 1)]));
    }

    #[test]
    fn session_expiry_removes_the_member_and_frees_its_partitions() {
        let mut g = Group::default();
        let topics: BTreeSet<String> = ["t".to_string()].into();
        let s = Duration::from_secs(10);
        let a = g.join(
            "a",
            topics.clone(),
            s,
            Assignor::Range,
            at(0),
            &two_partitions,
        );
        g.heartbeat("a", a.partitions, at(0), &two_partitions)
            .unwrap();
        g.join("b", topics, s, Assignor::Range, at(0), &two_partitions);
        // b heartbeats, a falls silent.
        for t in (1000..=10_000).step_by(1000) {
            g.heartbeat("b", BTreeSet::new(), at(t), &two_partitions)
                .unwrap();
            assert!(g.expire(at(t), &two_partitions).is_empty());
        }
        assert_eq!(g.next_expiry(), Some(at(10_000)));
        assert_eq!(g.expire(at(10_001), &two_partitions), vec!["a".to_string()]);
        let b = g
            .heartbeat("b", BTreeSet::new(), at(10_002), &two_partitions)
            .unwrap();
        assert_eq!(b.partitions, tps(&[("t", 0), ("t", 1)]));
        assert_eq!(
            g.heartbeat("a", BTreeSet::new(), at(10_003), &two_partitions),
            Err(UnknownMember)
        );
        assert!(!g.is_member("a"));
    }

    #[test]
    fn a_topic_created_later_is_assigned_on_the_next_heartbeat() {
        let mut g = Group::default();
        let topics: BTreeSet<String> = ["t".to_string()].into();
        let a = g.join(
            "a",
            topics,
            Duration::from_secs(10),
            Assignor::Range,
            at(0),
            &|_| None,
        );
        assert!(a.partitions.is_empty());
        let a = g
            .heartbeat("a", BTreeSet::new(), at(1), &two_partitions)
            .unwrap();
        assert_eq!(a.partitions.len(), 2);
    }

    #[test]
    fn commits_are_cached_per_partition() {
        let mut g = Group::default();
        let tp = TopicPartition::new("t", 0);
        assert_eq!(g.committed(&tp), None);
        g.apply_commit(tp.clone(), 7);
        assert_eq!(g.committed(&tp), Some(7));
    }
}
