//! Linearizability of a key-value history, per key, as Knossos and Porcupine decide it.
//!
//! A history is what clients saw: each operation's call and answer (or no answer) with
//! virtual times. It is linearizable when every operation can be given one instant between
//! its call and its answer at which it took effect, such that the key's register, run in
//! that order, gives every read its value and every increment its result.
//!
//! How it is decided:
//! - **Per key** (P-compositionality: a history is linearizable iff each key's
//!   sub-history is), so a search never spans more than one key's operations.
//! - **Wing and Gong's search, with Lowe's memoisation**: walk the calls and answers in
//!   time order; linearize a pending call when the register allows its result, backtrack at
//!   an answer whose call has not been linearized. A cache of (set of linearized
//!   operations as a bitset, register state) cuts every branch that reaches a
//!   configuration seen before.
//! - **Unknown outcomes** (a timeout: the write may or may not have happened) stay open to
//!   the end of time: the search may linearize them anywhere after their call, or last,
//!   where nothing observes them. Failed operations (an error reply: Redis did not run
//!   the command) and reads without an answer change nothing and are dropped.
//! - **On a violation**, the key's history is shrunk greedily to a smallest sub-history
//!   that is still not linearizable, never dropping the write that a kept read observed
//!   (a value from nowhere would be a witness of nothing), and printed in words.

use std::collections::BTreeMap;
use std::fmt;

use indexmap::IndexSet;
use sim_runtime::time::Instant;

use crate::fixed_hash::FixedState;

/// What an operation asked of a key's register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// GET.
    Read,
    /// SET (`Some`) or DEL (`None`).
    Write(Option<String>),
    /// INCRBY (DECR and INCR are deltas of -1 and 1).
    Add(i64),
}

/// What the client heard back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A read's value (`None`: the key was absent).
    Read(Option<String>),
    /// A write was acknowledged.
    Written,
    /// An increment's result.
    Added(i64),
    /// An error reply: the command did not run.
    Failed,
    /// No answer (a timeout, a reset connection): it may have run, at any time after its
    /// call.
    Unknown,
}

/// One client operation on one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub client: u32,
    pub key: String,
    pub call: Call,
    pub invoked: Instant,
    /// When the answer came (or the client gave up, for `Unknown`).
    pub completed: Instant,
    pub outcome: Outcome,
}

impl Op {
    /// Whether the answer is known, so the operation took effect before `completed`.
    fn closed(&self) -> bool {
        !matches!(self.outcome, Outcome::Unknown)
    }

    /// Whether it can matter to the register at all.
    fn relevant(&self) -> bool {
        match self.outcome {
            Outcome::Failed => false,
            Outcome::Unknown => self.call != Call::Read,
            _ => true,
        }
    }

    /// The value this operation leaves in the register, when its answer says.
    fn leaves(&self) -> Option<Option<String>> {
        match (&self.call, &self.outcome) {
            (Call::Write(v), _) => Some(v.clone()),
            (Call::Add(_), Outcome::Added(n)) => Some(Some(n.to_string())),
            _ => None,
        }
    }

    /// The value this operation saw, when it saw one.
    fn observed(&self) -> Option<Option<String>> {
        match (&self.call, &self.outcome) {
            (Call::Read, Outcome::Read(v)) => Some(v.clone()),
            (Call::Add(d), Outcome::Added(n)) => Some(Some(n.wrapping_sub(*d).to_string())),
            _ => None,
        }
    }
}

fn quoted(v: &Option<String>) -> String {
    match v {
        Some(s) => format!("{s:?}"),
        None => "nothing (absent)".to_string(),
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = if self.closed() {
            self.completed.to_string()
        } else {
            "open".to_string()
        };
        write!(f, "[{} .. {end}] client {} ", self.invoked, self.client)?;
        match (&self.call, &self.outcome) {
            (Call::Read, Outcome::Read(v)) => write!(f, "read {}", quoted(v)),
            (Call::Read, _) => write!(f, "read, no answer"),
            (Call::Write(v), Outcome::Unknown) => {
                write!(f, "wrote {}, no answer (it may have happened)", quoted(v))
            }
            (Call::Write(v), _) => write!(f, "wrote {}, acknowledged", quoted(v)),
            (Call::Add(d), Outcome::Added(n)) => write!(f, "added {d}, got {n}"),
            (Call::Add(d), _) => write!(f, "added {d}, no answer (it may have happened)"),
        }
    }
}

/// A history of operations on many keys, in any order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub ops: Vec<Op>,
}

impl History {
    pub fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// A history that passed: how much was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Linearizable {
    pub keys: usize,
    pub ops: usize,
}

/// A key whose history is not linearizable, with a smallest sub-history that shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub key: String,
    /// The witness's operations, by call time.
    pub witness: Vec<Op>,
    /// How many operations the key had in all.
    pub key_ops: usize,
    /// How many keys were not linearizable.
    pub bad_keys: usize,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "key {:?} is not linearizable ({} of its {} operations show it{}):",
            self.key,
            self.witness.len(),
            self.key_ops,
            if self.bad_keys > 1 {
                format!("; {} keys in all are not", self.bad_keys)
            } else {
                String::new()
            }
        )?;
        for op in &self.witness {
            writeln!(f, "  {op}")?;
        }
        write!(
            f,
            "no order of these operations, each at one instant between its call and its \
             answer, gives every read and increment the result it returned"
        )
    }
}

/// Checks `history` against a register per key (absent at the start).
pub fn check(history: &History) -> Result<Linearizable, Violation> {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in &history.ops {
        if op.relevant() {
            by_key.entry(&op.key).or_default().push(op);
        }
    }
    let keys = by_key.len();
    let bad: Vec<(&str, Vec<&Op>)> = by_key
        .into_iter()
        .filter(|(_, ops)| !linearizable(ops))
        .collect();
    // Of the first few bad keys, the one with the smallest witness: a counter's witness
    // is its whole chain of increments, a register's is often two or three operations.
    let best = bad
        .iter()
        .take(WITNESS_KEYS)
        .map(|(key, ops)| (*key, ops.len(), shrink(ops)))
        .min_by_key(|(_, _, witness)| witness.len());
    match best {
        None => Ok(Linearizable {
            keys,
            ops: history.ops.len(),
        }),
        Some((key, key_ops, witness)) => {
            let mut witness: Vec<Op> = witness.into_iter().cloned().collect();
            witness.sort_by_key(|o| (o.invoked, o.completed, o.client));
            Err(Violation {
                key: key.to_string(),
                key_ops,
                witness,
                bad_keys: bad.len(),
            })
        }
    }
}

/// How many bad keys are shrunk to choose the witness from.
const WITNESS_KEYS: usize = 8;

/// Drops operations one at a time while what is left stays non-linearizable; a write
/// whose value a kept operation observed stays.
fn shrink<'a>(ops: &[&'a Op]) -> Vec<&'a Op> {
    let mut kept: Vec<&Op> = ops.to_vec();
    // Passes until one removes nothing: dropping a read can free the write it observed.
    loop {
        let before = kept.len();
        let mut i = 0;
        while i < kept.len() {
            let candidate = kept[i];
            let observed = candidate.leaves().is_some_and(|v| {
                kept.iter()
                    .any(|o| !std::ptr::eq(*o, candidate) && o.observed() == Some(v.clone()))
            });
            if !observed {
                let mut fewer = kept.clone();
                fewer.remove(i);
                if !linearizable(&fewer) {
                    kept = fewer;
                    continue;
                }
            }
            i += 1;
        }
        if kept.len() == before {
            return kept;
        }
    }
}

/// Register values of one key as small integers: 0 is "absent".
struct Values {
    ids: IndexSet<Option<String>, FixedState>,
}

impl Values {
    fn new() -> Self {
        let mut ids = IndexSet::default();
        ids.insert(None);
        Values { ids }
    }

    fn id(&mut self, v: &Option<String>) -> u32 {
        match self.ids.get_index_of(v) {
            Some(i) => i as u32,
            None => self.ids.insert_full(v.clone()).0 as u32,
        }
    }

    fn number(&self, id: u32) -> Option<i64> {
        match self.ids.get_index(id as usize) {
            Some(None) => Some(0),
            Some(Some(s)) => s.parse().ok(),
            None => None,
        }
    }
}

/// The register's step: the state after `op` from `state`, when its result allows it.
fn step(values: &mut Values, state: u32, op: &Op) -> Option<u32> {
    match (&op.call, &op.outcome) {
        (Call::Read, Outcome::Read(v)) => (values.id(v) == state).then_some(state),
        (Call::Write(v), _) => Some(values.id(v)),
        (Call::Add(d), Outcome::Added(n)) => {
            let old = values.number(state)?;
            (old.checked_add(*d) == Some(*n)).then(|| values.id(&Some(n.to_string())))
        }
        (Call::Add(d), _) => {
            // Redis refuses to increment what is not an integer: such an increment did
            // not happen, and only the end of the search can place it.
            let new = values.number(state)?.checked_add(*d)?;
            Some(values.id(&Some(new.to_string())))
        }
        _ => None,
    }
}

/// One call or answer in the time-ordered list the search walks.
#[derive(Clone, Copy)]
struct Entry {
    op: usize,
    call: bool,
}

/// Wing and Gong's search over one key's operations.
fn linearizable(ops: &[&Op]) -> bool {
    let n = ops.len();
    if n == 0 {
        return true;
    }
    // Calls before answers at the same instant: operations that touch in time count as
    // concurrent (virtual time cannot tell their order, so the checker must not).
    let mut events: Vec<(Instant, u8, usize)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        events.push((op.invoked, 0, i));
        let end = if op.closed() {
            op.completed
        } else {
            Instant::from_nanos(u64::MAX)
        };
        events.push((end, 1, i));
    }
    events.sort_unstable();
    // A doubly linked list over the entries, with a head sentinel at index 0.
    let len = events.len() + 1;
    let mut entries = Vec::with_capacity(len);
    entries.push(Entry { op: 0, call: false });
    let mut return_of = vec![0usize; n];
    for (k, &(_, kind, op)) in events.iter().enumerate() {
        entries.push(Entry {
            op,
            call: kind == 0,
        });
        if kind == 1 {
            return_of[op] = k + 1;
        }
    }
    let mut next: Vec<usize> = (1..=len).collect();
    let mut prev: Vec<usize> = (0..len).map(|i| i.wrapping_sub(1)).collect();
    next[len - 1] = usize::MAX;
    let mut values = Values::new();
    let mut state = 0u32;
    let words = n.div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: IndexSet<(Box<[u64]>, u32), FixedState> = IndexSet::default();
    let mut stack: Vec<(usize, u32)> = Vec::new();
    let mut closed_left = ops.iter().filter(|o| o.closed()).count();
    let lift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, e: usize| {
        next[prev[e]] = next[e];
        if next[e] != usize::MAX {
            prev[next[e]] = prev[e];
        }
    };
    let unlift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, e: usize| {
        if next[e] != usize::MAX {
            prev[next[e]] = e;
        }
        next[prev[e]] = e;
    };
    let mut e = next[0];
    loop {
        // Every answered operation is placed: the open ones can all go last.
        if closed_left == 0 {
            return true;
        }
        if e == usize::MAX {
            // Only answers of open operations follow: unreachable while closed ones are
            // left, since each closed one's answer comes before them.
            return false;
        }
        let entry = entries[e];
        if entry.call {
            let op = ops[entry.op];
            if let Some(after) = step(&mut values, state, op) {
                let (w, bit) = (entry.op / 64, 1u64 << (entry.op % 64));
                linearized[w] |= bit;
                if cache.insert((linearized.clone().into_boxed_slice(), after)) {
                    stack.push((e, state));
                    state = after;
                    if op.closed() {
                        closed_left -= 1;
                    }
                    // Take the call and its answer out of the list.
                    lift(&mut next, &mut prev, e);
                    lift(&mut next, &mut prev, return_of[entry.op]);
                    e = next[0];
                    continue;
                }
                linearized[w] &= !bit;
            }
            e = next[e];
        } else {
            // An answer whose call is not linearized: undo the last choice.
            let Some((call, before)) = stack.pop() else {
                return false;
            };
            let op = entries[call].op;
            state = before;
            linearized[op / 64] &= !(1u64 << (op % 64));
            if ops[op].closed() {
                closed_left += 1;
            }
            unlift(&mut next, &mut prev, return_of[op]);
            unlift(&mut next, &mut prev, call);
            e = next[call];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    fn op(client: u32, call: Call, from: u64, to: u64, outcome: Outcome) -> Op {
        Op {
            client,
            key: "k".into(),
            call,
            invoked: at(from),
            completed: at(to),
            outcome,
        }
    }

    fn w(client: u32, v: &str, from: u64, to: u64) -> Op {
        op(
            client,
            Call::Write(Some(v.into())),
            from,
            to,
            Outcome::Written,
        )
    }

    fn r(client: u32, v: Option<&str>, from: u64, to: u64) -> Op {
        op(
            client,
            Call::Read,
            from,
            to,
            Outcome::Read(v.map(str::to_string)),
        )
    }

    fn history(ops: Vec<Op>) -> History {
        History { ops }
    }

    #[test]
    fn sequential_and_overlapping_histories_that_a_register_explains_pass() {
        let ok = history(vec![
            w(1, "a", 0, 10),
            r(2, Some("a"), 20, 30),
            // Overlapping writes: a read during both may see either.
            w(1, "b", 40, 60),
            w(2, "c", 45, 55),
            r(3, Some("b"), 50, 70),
            r(3, Some("b"), 80, 90),
        ]);
        assert_eq!(check(&ok), Ok(Linearizable { keys: 1, ops: 6 }));
    }

    #[test]
    fn a_stale_read_after_an_acknowledged_write_is_caught_with_a_small_witness() {
        let bad = history(vec![
            w(1, "a", 0, 10),
            r(4, Some("a"), 11, 12),
            w(2, "b", 20, 30),
            r(3, Some("a"), 40, 50),
            r(4, Some("a"), 60, 70),
        ]);
        let v = check(&bad).unwrap_err();
        assert_eq!(v.key, "k");
        assert_eq!(v.witness.len(), 3, "{v}");
        let text = v.to_string();
        assert!(
            text.contains("client 2 wrote \"b\", acknowledged"),
            "{text}"
        );
        assert!(text.contains("client 1 wrote \"a\""), "{text}");
        assert!(
            text.starts_with("key \"k\" is not linearizable (3 of its 5"),
            "{text}"
        );
    }

    #[test]
    fn a_write_without_an_answer_may_or_may_not_have_happened() {
        let maybe = |seen: &str| {
            history(vec![
                w(1, "a", 0, 10),
                op(2, Call::Write(Some("b".into())), 20, 30, Outcome::Unknown),
                r(3, Some(seen), 100, 110),
                r(3, Some(seen), 120, 130),
            ])
        };
        assert!(check(&maybe("a")).is_ok(), "not taken");
        assert!(check(&maybe("b")).is_ok(), "taken, long after its timeout");
        // But once taken it stays taken: "b" then "a" again has no writer of "a".
        let flip = history(vec![
            w(1, "a", 0, 10),
            op(2, Call::Write(Some("b".into())), 20, 30, Outcome::Unknown),
            r(3, Some("b"), 100, 110),
            r(3, Some("a"), 120, 130),
        ]);
        assert!(check(&flip).is_err());
        // A failed write never happened.
        let failed = history(vec![
            w(1, "a", 0, 10),
            op(2, Call::Write(Some("b".into())), 20, 30, Outcome::Failed),
            r(3, Some("b"), 100, 110),
        ]);
        assert!(check(&failed).is_err());
    }

    #[test]
    fn increments_must_add_up_and_a_lost_one_is_caught() {
        let add = |client, d, from, to, n| op(client, Call::Add(d), from, to, Outcome::Added(n));
        let ok = history(vec![
            add(1, 1, 0, 10, 1),
            add(2, 1, 5, 15, 2),
            add(3, 5, 20, 30, 7),
        ]);
        assert!(check(&ok).is_ok());
        let lost = history(vec![
            add(1, 1, 0, 10, 1),
            add(2, 1, 20, 30, 2),
            // After a crash that lost the second increment.
            add(3, 1, 40, 50, 2),
        ]);
        let v = check(&lost).unwrap_err();
        assert!(v.to_string().contains("added 1, got 2"), "{v}");
    }

    #[test]
    fn keys_are_checked_apart_and_the_first_bad_one_is_reported() {
        let mut ops = vec![w(1, "a", 0, 10), r(2, Some("a"), 20, 30)];
        let mut other = vec![w(1, "x", 0, 10), r(2, None, 20, 30)];
        for o in &mut other {
            o.key = "z".into();
        }
        ops.extend(other);
        let v = check(&history(ops)).unwrap_err();
        assert_eq!((v.key.as_str(), v.bad_keys), ("z", 1));
        assert!(v.to_string().contains("read nothing (absent)"), "{v}");
    }

    #[test]
    fn a_long_concurrent_history_is_decided_quickly() {
        // 10 clients writing and reading one key in overlapping rounds: without the
        // cache the search would be exponential in the overlap.
        let mut ops = Vec::new();
        for round in 0..200u64 {
            for c in 0..10u32 {
                let t = round * 100 + u64::from(c);
                ops.push(w(c, &format!("{round}-{c}"), t, t + 50));
            }
            let t = round * 100 + 60;
            ops.push(r(99, Some(&format!("{round}-9")), t, t + 1));
        }
        // Every write of a round overlaps the others, so any of them may be last.
        assert!(check(&history(ops)).is_ok());
    }
}
