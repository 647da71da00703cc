//! The values a key can hold (string, list, hash, set, sorted set, stream), each keeping a
//! running estimate of its size in bytes.
//!
//! `maxmemory` needs the store's memory use after every command. Recomputing a value's size
//! would cost O(elements) per write (a job queue with 10k entries would make each push
//! O(10k)), so every container updates its own byte count as it changes and a size query is
//! O(1). The estimate is deliberately simple (payload plus a fixed per-element overhead):
//! it only has to grow and shrink the way Redis' `used_memory` does, not match it.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use indexmap::IndexMap;

use super::stream::Stream;

/// Bytes charged per element on top of its payload (pointers, headers, allocator slack).
pub const ELEMENT_OVERHEAD: usize = 16;

/// The type names `TYPE` would report, also used in traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    List,
    Hash,
    Set,
    ZSet,
    Stream,
}

/// A value stored under a key.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    List(List),
    Hash(Hash),
    Set(Set),
    ZSet(ZSet),
    /// Boxed: a stream is larger than the other values and rarer.
    Stream(Box<Stream>),
}

impl Value {
    pub fn kind(&self) -> Kind {
        match self {
            Value::Str(_) => Kind::String,
            Value::List(_) => Kind::List,
            Value::Hash(_) => Kind::Hash,
            Value::Set(_) => Kind::Set,
            Value::ZSet(_) => Kind::ZSet,
            Value::Stream(_) => Kind::Stream,
        }
    }

    /// The running size estimate, O(1).
    pub fn bytes(&self) -> usize {
        match self {
            Value::Str(s) => s.len() + ELEMENT_OVERHEAD,
            Value::List(l) => l.bytes,
            Value::Hash(h) => h.bytes,
            Value::Set(s) => s.bytes,
            Value::ZSet(z) => z.bytes,
            Value::Stream(st) => st.bytes(),
        }
    }

    /// The size computed from scratch, O(elements): the test oracle for [`Value::bytes`].
    pub fn bytes_recomputed(&self) -> usize {
        match self {
            Value::Str(s) => s.len() + ELEMENT_OVERHEAD,
            Value::List(l) => l.items.iter().map(|v| elem(v)).sum(),
            Value::Hash(h) => h.fields.iter().map(|(f, v)| pair(f, v)).sum(),
            Value::Set(s) => s.members.iter().map(|m| elem(m)).sum(),
            Value::ZSet(z) => z.scores.keys().map(|m| zelem(m)).sum(),
            Value::Stream(st) => st.bytes_recomputed(),
        }
    }

    /// Whether an aggregate has become empty (Redis deletes the key then).
    pub fn is_empty_aggregate(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::List(l) => l.is_empty(),
            Value::Hash(h) => h.is_empty(),
            Value::Set(s) => s.is_empty(),
            Value::ZSet(z) => z.is_empty(),
            // An empty stream stays, with its groups and last ID, as in Redis.
            Value::Stream(_) => false,
        }
    }
}

fn elem(v: &str) -> usize {
    v.len() + ELEMENT_OVERHEAD
}

fn pair(f: &str, v: &str) -> usize {
    f.len() + v.len() + ELEMENT_OVERHEAD
}

fn zelem(m: &str) -> usize {
    // The member is held twice (by name and in score order) plus the score.
    2 * m.len() + 8 + 2 * ELEMENT_OVERHEAD
}

/// A list: a deque of strings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct List {
    items: VecDeque<String>,
    bytes: usize,
}

impl List {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn push_front(&mut self, v: String) {
        self.bytes += elem(&v);
        self.items.push_front(v);
    }

    pub fn push_back(&mut self, v: String) {
        self.bytes += elem(&v);
        self.items.push_back(v);
    }

    pub fn pop_front(&mut self) -> Option<String> {
        let v = self.items.pop_front()?;
        self.bytes -= elem(&v);
        Some(v)
    }

    pub fn pop_back(&mut self) -> Option<String> {
        let v = self.items.pop_back()?;
        self.bytes -= elem(&v);
        Some(v)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.items.iter()
    }

    /// Removes up to `limit` (0 = all) elements equal to `value`, from the head or the tail.
    pub fn remove(&mut self, value: &str, limit: usize, from_tail: bool) -> usize {
        let mut removed = 0;
        let mut kept = VecDeque::with_capacity(self.items.len());
        let take = |removed: &mut usize, v: &String| {
            if v == value && (limit == 0 || *removed < limit) {
                *removed += 1;
                true
            } else {
                false
            }
        };
        if from_tail {
            while let Some(v) = self.items.pop_back() {
                if !take(&mut removed, &v) {
                    kept.push_front(v);
                }
            }
        } else {
            while let Some(v) = self.items.pop_front() {
                if !take(&mut removed, &v) {
                    kept.push_back(v);
                }
            }
        }
        self.items = kept;
        self.bytes -= removed * elem(value);
        removed
    }
}

/// A hash: field -> value, in insertion order. Redis 7.0 keeps a small hash (up to 128
/// fields of up to 64 bytes: `hash-max-listpack-*`) as a listpack, whose HGETALL answers
/// in insertion order, and every hash in this model's workloads is small; a deleted field
/// leaves the others' order alone, as a listpack deletion does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hash {
    fields: IndexMap<String, String>,
    bytes: usize,
}

impl Hash {
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn get(&self, field: &str) -> Option<&String> {
        self.fields.get(field)
    }

    /// Sets a field; true when it is new.
    pub fn insert(&mut self, field: String, value: String) -> bool {
        self.bytes += pair(&field, &value);
        match self.fields.insert(field.clone(), value) {
            Some(old) => {
                self.bytes -= pair(&field, &old);
                false
            }
            None => true,
        }
    }

    pub fn remove(&mut self, field: &str) -> bool {
        match self.fields.shift_remove(field) {
            Some(old) => {
                self.bytes -= pair(field, &old);
                true
            }
            None => false,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.fields.iter()
    }
}

/// A set of strings, in member order (Redis leaves the order unspecified).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Set {
    members: BTreeSet<String>,
    bytes: usize,
}

impl Set {
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn contains(&self, m: &str) -> bool {
        self.members.contains(m)
    }

    pub fn insert(&mut self, m: String) -> bool {
        let size = elem(&m);
        let added = self.members.insert(m);
        if added {
            self.bytes += size;
        }
        added
    }

    pub fn remove(&mut self, m: &str) -> bool {
        let removed = self.members.remove(m);
        if removed {
            self.bytes -= elem(m);
        }
        removed
    }

    pub fn iter(&self) -> impl Iterator<Item = &String> {
        self.members.iter()
    }
}

/// A score with the total order Redis uses (scores are never NaN: ZADD rejects NaN).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score(pub f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A sorted set: members ordered by (score, member), as Redis orders ties.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ZSet {
    scores: BTreeMap<String, Score>,
    ordered: BTreeSet<(Score, String)>,
    bytes: usize,
}

impl ZSet {
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    pub fn score(&self, member: &str) -> Option<f64> {
        self.scores.get(member).map(|s| s.0)
    }

    /// Sets `member`'s score (adding it if absent).
    pub fn insert(&mut self, member: String, score: f64) {
        // -0.0 and 0.0 are the same score in Redis; total_cmp would split them.
        let score = Score(if score == 0.0 { 0.0 } else { score });
        if let Some(old) = self.scores.insert(member.clone(), score) {
            self.ordered.remove(&(old, member.clone()));
        } else {
            self.bytes += zelem(&member);
        }
        self.ordered.insert((score, member));
    }

    pub fn remove(&mut self, member: &str) -> bool {
        match self.scores.remove(member) {
            Some(old) => {
                self.ordered.remove(&(old, member.to_string()));
                self.bytes -= zelem(member);
                true
            }
            None => false,
        }
    }

    /// Members in (score, member) order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, f64)> {
        self.ordered.iter().map(|(s, m)| (m, s.0))
    }

    /// Members from the first whose score is >= `min` (skipping ties is the caller's job
    /// for exclusive bounds).
    pub fn iter_from(&self, min: f64) -> impl Iterator<Item = (&String, f64)> {
        let start = (Score(if min == 0.0 { 0.0 } else { min }), String::new());
        self.ordered.range(start..).map(|(s, m)| (m, s.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_sizes_match_recomputation() {
        let mut l = List::default();
        l.push_back("a".into());
        l.push_front("bb".into());
        l.push_back("a".into());
        assert_eq!(l.remove("a", 1, true), 1);
        let v = Value::List(l);
        assert_eq!(v.bytes(), v.bytes_recomputed());

        let mut h = Hash::default();
        assert!(h.insert("f".into(), "1".into()));
        assert!(!h.insert("f".into(), "1234".into()));
        let v = Value::Hash(h);
        assert_eq!(v.bytes(), v.bytes_recomputed());

        let mut z = ZSet::default();
        z.insert("m".into(), 1.0);
        z.insert("m".into(), 2.0);
        z.insert("n".into(), -0.0);
        assert_eq!(
            z.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>(),
            ["n", "m"]
        );
        assert_eq!(z.iter_from(0.0).count(), 2);
        let v = Value::ZSet(z);
        assert_eq!(v.bytes(), v.bytes_recomputed());
    }
}
