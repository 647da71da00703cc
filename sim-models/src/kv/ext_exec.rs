//! The semantics of [`ExtCommand`]s, following Redis 7.0's `t_string.c`, `t_list.c`,
//! `t_set.c`, `t_zset.c` and `db.c` (as documented and observed; no code was copied).
//!
//! - Random choices (SPOP, SRANDMEMBER) draw from the engine's own seeded stream
//!   (`kv.random`), so a run replays, and they propagate what they did (SPOP as SREM or
//!   DEL), never the draw, as Redis propagates them.
//! - Sorted-set ranges walk the set in (score, member) order, as Redis walks the listpack
//!   of a small sorted set: a lex range over members with different scores gives what
//!   Redis gives (its docs call it unspecified), a score range what anyone expects.
//! - SCAN orders the keyspace by a fixed hash of each key and its cursor is the hash to
//!   resume from: stateless like Redis', and every key present for a whole iteration is
//!   returned exactly once. HSCAN, SSCAN and ZSCAN answer the whole aggregate at once with
//!   cursor 0, as Redis does for the small encodings (listpack, intset) that every
//!   aggregate of this model stands for; COUNT is a hint both ignore there.

use std::hash::Hasher;

use super::command::{errors, Command, Condition, Reply, ScoreBound, SetExpiry};
use super::ext::{End, ExtCommand, GetExOption, LexBound, ScanOf, ZRangeSpec};
use super::long_double::{self, Read};
use super::state::{fmt_score, parse_i64_strict, Engine, Then};
use super::value::{self, Value};

type R = Result<Reply, Reply>;

fn err(s: impl Into<String>) -> Reply {
    Reply::error(s)
}

const NAN_OR_INFINITY: &str = "ERR increment would produce NaN or Infinity";
const TOO_BIG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
/// Redis' `proto-max-bulk-len` default: SETRANGE may not make a longer string.
const MAX_STRING: i64 = 512 * 1024 * 1024;
/// The most elements SRANDMEMBER with a negative count answers. Redis builds any reply
/// asked for (a count of -2^63+1 takes the server down); the model refuses instead.
pub const MAX_RANDOM_REPLY: u64 = 1 << 20;

fn gte_min(v: &str, min: &LexBound) -> bool {
    match min {
        LexBound::Min => true,
        LexBound::Max => false,
        LexBound::Inclusive(s) => v >= s.as_str(),
        LexBound::Exclusive(s) => v > s.as_str(),
    }
}

fn lte_max(v: &str, max: &LexBound) -> bool {
    match max {
        LexBound::Min => false,
        LexBound::Max => true,
        LexBound::Inclusive(s) => v <= s.as_str(),
        LexBound::Exclusive(s) => v < s.as_str(),
    }
}

/// Whether a lex range can hold nothing whatever the set (`min > max`, or equal with an
/// exclusive end).
fn lex_range_empty(min: &LexBound, max: &LexBound) -> bool {
    use std::cmp::Ordering::*;
    let rank = |b: &LexBound| match b {
        LexBound::Min => 0,
        LexBound::Max => 2,
        _ => 1,
    };
    let text = |b: &LexBound| match b {
        LexBound::Inclusive(s) | LexBound::Exclusive(s) => s.clone(),
        _ => String::new(),
    };
    let cmp = rank(min)
        .cmp(&rank(max))
        .then_with(|| text(min).cmp(&text(max)));
    let exclusive = matches!(min, LexBound::Exclusive(_)) || matches!(max, LexBound::Exclusive(_));
    cmp == Greater || (cmp == Equal && exclusive)
}

fn score_gte_min(s: f64, min: ScoreBound) -> bool {
    if min.exclusive {
        s > min.value
    } else {
        s >= min.value
    }
}

fn score_lte_max(s: f64, max: ScoreBound) -> bool {
    if max.exclusive {
        s < max.value
    } else {
        s <= max.value
    }
}

/// LRANGE-style index arithmetic of ZRANGE and ZREMRANGEBYRANK: the first and last
/// index, or `None` for an empty range.
fn rank_range(len: usize, start: i64, end: i64) -> Option<(usize, usize)> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let mut start = if start < 0 { len + start } else { start };
    let mut end = if end < 0 { len + end } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= len {
        return None;
    }
    if end >= len {
        end = len - 1;
    }
    Some((start as usize, end as usize))
}

/// The members (in set order) a range selects, with LIMIT; `rev` walks from the top.
/// Ranks index from the walking end. Follows Redis' listpack walks, so a LIMIT offset
/// skips elements before the far end is checked.
fn select(
    items: &[(String, f64)],
    range: &ZRangeSpec,
    rev: bool,
    limit: Option<(i64, i64)>,
) -> Vec<(String, f64)> {
    let n = items.len();
    let at = |i: usize| if rev { &items[n - 1 - i] } else { &items[i] };
    let (offset, count) = limit.unwrap_or((0, -1));
    let mut out = Vec::new();
    match range {
        ZRangeSpec::Rank(start, end) => {
            if let Some((s, e)) = rank_range(n, *start, *end) {
                out.extend((s..=e).map(|i| at(i).clone()));
            }
            return out;
        }
        ZRangeSpec::Score(min, max) => {
            if min.value > max.value || (min.value == max.value && (min.exclusive || max.exclusive))
            {
                return out;
            }
            // First element in range from the walking end.
            let first = (0..n).find(|&i| {
                let s = at(i).1;
                if rev {
                    score_lte_max(s, *max)
                } else {
                    score_gte_min(s, *min)
                }
            });
            let Some(first) = first else { return out };
            let in_far = |s: f64| {
                if rev {
                    score_gte_min(s, *min)
                } else {
                    score_lte_max(s, *max)
                }
            };
            if !in_far(at(first).1) {
                return out;
            }
            if offset < 0 {
                return out;
            }
            let mut i = first + usize::try_from(offset).unwrap_or(usize::MAX).min(n);
            let mut left = count;
            while i < n && left != 0 {
                let item = at(i);
                if !in_far(item.1) {
                    break;
                }
                out.push(item.clone());
                left -= 1;
                i += 1;
            }
        }
        ZRangeSpec::Lex(min, max) => {
            if lex_range_empty(min, max) || n == 0 {
                return out;
            }
            // zzlIsInLexRange: the last element must reach min, the first stay under max.
            if !gte_min(&items[n - 1].0, min) || !lte_max(&items[0].0, max) {
                return out;
            }
            let first = (0..n).find(|&i| {
                let m = &at(i).0;
                if rev {
                    lte_max(m, max)
                } else {
                    gte_min(m, min)
                }
            });
            let Some(first) = first else { return out };
            let in_far = |m: &str| {
                if rev {
                    gte_min(m, min)
                } else {
                    lte_max(m, max)
                }
            };
            if !in_far(&at(first).0) {
                return out;
            }
            if offset < 0 {
                return out;
            }
            let mut i = first + usize::try_from(offset).unwrap_or(usize::MAX).min(n);
            let mut left = count;
            while i < n && left != 0 {
                let item = at(i);
                if !in_far(&item.0) {
                    break;
                }
                out.push(item.clone());
                left -= 1;
                i += 1;
            }
        }
    }
    out
}

fn flat(items: Vec<(String, f64)>, with_scores: bool) -> Reply {
    let mut out = Vec::with_capacity(items.len() * if with_scores { 2 } else { 1 });
    for (m, s) in items {
        out.push(Reply::Bulk(m));
        if with_scores {
            out.push(Reply::Bulk(fmt_score(s)));
        }
    }
    Reply::Array(out)
}

/// The key's position in SCAN's order.
fn scan_hash(key: &str) -> u64 {
    let mut h = crate::fixed_hash::FixedHasher::default();
    h.write(key.as_bytes());
    h.finish()
}

fn type_name(v: &Value) -> &'static str {
    match v.kind() {
        value::Kind::String => "string",
        value::Kind::List => "list",
        value::Kind::Hash => "hash",
        value::Kind::Set => "set",
        value::Kind::ZSet => "zset",
        value::Kind::Stream => "stream",
    }
}

fn glob(pattern: &Option<String>, s: &str) -> bool {
    pattern
        .as_ref()
        .is_none_or(|p| super::pubsub::glob_match(p.as_bytes(), s.as_bytes(), false))
}

impl Engine {
    pub(crate) fn ext(&mut self, c: &ExtCommand) -> R {
        use ExtCommand::*;
        Ok(match c {
            IncrByFloat { key, delta } => {
                let cur = match self.lookup_str(key)? {
                    None => long_double::read("0").expect("0 reads"),
                    Some(v) => long_double::read(v).ok_or_else(|| err(errors::NOT_FLOAT))?,
                };
                let incr = long_double::read(delta).ok_or_else(|| err(errors::NOT_FLOAT))?;
                let (Read::Finite(a), Read::Finite(b)) = (cur, incr) else {
                    return Err(err(NAN_OR_INFINITY));
                };
                let new = a
                    .checked_add(b)
                    .ok_or_else(|| err(NAN_OR_INFINITY))?
                    .to_human();
                // The key keeps its TTL; Redis propagates SET ... KEEPTTL.
                self.set(
                    key,
                    &new,
                    Condition::Always,
                    SetExpiry::KeepTtl,
                    false,
                    "incrbyfloat",
                )?;
                Reply::Bulk(new)
            }
            HIncrByFloat { key, field, delta } => {
                let incr = match long_double::read(delta) {
                    None => return Err(err(errors::NOT_FLOAT)),
                    Some(Read::Infinite) => return Err(err("ERR value is NaN or Infinity")),
                    Some(Read::Finite(x)) => x,
                };
                let cur = match self.lookup_hash(key)?.and_then(|h| h.get(field)) {
                    None => long_double::read("0").expect("0 reads"),
                    Some(v) => {
                        long_double::read(v).ok_or_else(|| err("ERR hash value is not a float"))?
                    }
                };
                let Read::Finite(cur) = cur else {
                    return Err(err(NAN_OR_INFINITY));
                };
                let new = cur
                    .checked_add(incr)
                    .ok_or_else(|| err(NAN_OR_INFINITY))?
                    .to_human();
                self.hash_mut(key)?.insert(field.clone(), new.clone());
                self.propagate(Command::HSet {
                    key: key.clone(),
                    pairs: vec![(field.clone(), new.clone())],
                });
                Reply::Bulk(new)
            }
            LMove {
                source,
                destination,
                from,
                to,
            } => self.lmove(source, destination, *from, *to)?,
            // Outside a session (MULTI, scripts) a blocking command does not block.
            BLMove {
                source,
                destination,
                from,
                to,
                ..
            } => self.lmove(source, destination, *from, *to)?,
            SPop { key, count } => self.spop(key, *count)?,
            SRandMember { key, count } => self.srandmember(key, *count)?,
            ZRange {
                key,
                range,
                rev,
                limit,
                with_scores,
            } => {
                let Some(z) = self.lookup_zset(key)? else {
                    return Ok(Reply::Array(vec![]));
                };
                let items: Vec<(String, f64)> = z.iter().map(|(m, s)| (m.clone(), s)).collect();
                let picked = select(&items, range, *rev, *limit);
                flat(picked, *with_scores)
            }
            ZPop { key, max, count } => {
                // The type is checked before a zero count is answered.
                let Some(len) = self.lookup_zset(key)?.map(value::ZSet::len) else {
                    return Ok(Reply::Array(vec![]));
                };
                if *count == Some(0) {
                    return Ok(Reply::Array(vec![]));
                }
                let n = count.map_or(1, |c| usize::try_from(c).unwrap_or(usize::MAX).min(len));
                let popped = self.zpop(key, *max, n);
                self.propagate(Command::Ext(ZPop {
                    key: key.clone(),
                    max: *max,
                    count: Some(n as u64),
                }));
                flat(popped, true)
            }
            BZPop { keys, max, .. } => self.bzpop_now(keys, *max)?.unwrap_or(Reply::Nil),
            ZRemRange { key, range } => {
                let Some(z) = self.lookup_zset(key)? else {
                    return Ok(Reply::Int(0));
                };
                let items: Vec<(String, f64)> = z.iter().map(|(m, s)| (m.clone(), s)).collect();
                let doomed: Vec<String> = select(&items, range, false, None)
                    .into_iter()
                    .map(|(m, _)| m)
                    .collect();
                if doomed.is_empty() {
                    return Ok(Reply::Int(0));
                }
                let Some(Value::ZSet(z)) = self.write(key) else {
                    unreachable!("checked by a read of the same key")
                };
                for m in &doomed {
                    z.remove(m);
                }
                let n = doomed.len();
                self.propagate(Command::ZRem {
                    key: key.clone(),
                    members: doomed,
                });
                Reply::from_len(n)
            }
            ZCount { key, range } => {
                let Some(z) = self.lookup_zset(key)? else {
                    return Ok(Reply::Int(0));
                };
                let items: Vec<(String, f64)> = z.iter().map(|(m, s)| (m.clone(), s)).collect();
                Reply::from_len(select(&items, range, false, None).len())
            }
            ZMScore { key, members } => {
                let z = self.lookup_zset(key)?;
                Reply::Array(
                    members
                        .iter()
                        .map(|m| Reply::opt_bulk(z.and_then(|z| z.score(m)).map(fmt_score)))
                        .collect(),
                )
            }
            ZRevRank { key, member } => {
                let Some(z) = self.lookup_zset(key)? else {
                    return Ok(Reply::Nil);
                };
                let len = z.len();
                z.iter()
                    .position(|(m, _)| m == member)
                    .map_or(Reply::Nil, |r| Reply::from_len(len - 1 - r))
            }
            Scan {
                cursor,
                pattern,
                count,
                kind,
            } => self.scan(*cursor, pattern, count.unwrap_or(10), kind.as_deref()),
            ScanIn {
                of, key, options, ..
            } => self.scan_in(*of, key, options)?,
            GetRange { key, start, end } => {
                let Some(s) = self.lookup_str(key)? else {
                    return Ok(Reply::bulk(""));
                };
                let bytes = s.as_bytes();
                let len = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
                let (mut start, mut end) = (*start, *end);
                if start < 0 && end < 0 && start > end {
                    return Ok(Reply::bulk(""));
                }
                if start < 0 {
                    start += len;
                }
                if end < 0 {
                    end += len;
                }
                start = start.max(0);
                end = end.max(0);
                if end >= len {
                    end = len - 1;
                }
                if start > end || len == 0 {
                    return Ok(Reply::bulk(""));
                }
                // A range that cuts a character answers what the bytes read as (with
                // U+FFFD for the cut parts), as a client decoding Redis' reply sees them.
                Reply::Bulk(
                    String::from_utf8_lossy(&bytes[start as usize..=end as usize]).into_owned(),
                )
            }
            SetRange { key, offset, value } => {
                let old = self.lookup_str(key)?.cloned();
                let olen = old.as_ref().map_or(0, String::len);
                if value.is_empty() {
                    return Ok(Reply::from_len(olen));
                }
                let total = offset.saturating_add(value.len() as i64);
                if total > MAX_STRING {
                    return Err(err(TOO_BIG));
                }
                let mut bytes = old.unwrap_or_default().into_bytes();
                let off = *offset as usize;
                if bytes.len() < off + value.len() {
                    bytes.resize(off + value.len(), 0);
                }
                bytes[off..off + value.len()].copy_from_slice(value.as_bytes());
                let new = String::from_utf8(bytes).map_err(|_| err(errors::NOT_UTF8))?;
                let len = new.len();
                match self.write(key) {
                    // SETRANGE keeps the key's TTL.
                    Some(Value::Str(s)) => *s = new,
                    _ => self.put(key, Value::Str(new)),
                }
                self.propagate(Command::Ext(c.clone()));
                Reply::from_len(len)
            }
            GetEx { key, option } => self.getex(key, option)?,
            Copy {
                source,
                destination,
                replace,
            } => {
                let Some(entry) = self.entry(source).cloned() else {
                    return Ok(Reply::Int(0));
                };
                if self.live(destination) {
                    if !*replace {
                        return Ok(Reply::Int(0));
                    }
                    self.delete(destination);
                }
                self.put(destination, entry.value);
                self.set_expire(destination, entry.expire_at);
                self.signal_ready(destination);
                self.propagate(Command::Ext(Copy {
                    source: source.clone(),
                    destination: destination.clone(),
                    replace: true,
                }));
                Reply::Int(1)
            }
            Rename { key, new_key, nx } => {
                let Some(entry) = self.entry(key).cloned() else {
                    return Err(err("ERR no such key"));
                };
                if key == new_key {
                    return Ok(if *nx { Reply::Int(0) } else { Reply::ok() });
                }
                if self.live(new_key) {
                    if *nx {
                        return Ok(Reply::Int(0));
                    }
                    self.delete(new_key);
                }
                self.delete(key);
                self.put(new_key, entry.value);
                self.set_expire(new_key, entry.expire_at);
                self.signal_ready(new_key);
                self.propagate(Command::Ext(Rename {
                    key: key.clone(),
                    new_key: new_key.clone(),
                    nx: false,
                }));
                if *nx {
                    Reply::Int(1)
                } else {
                    Reply::ok()
                }
            }
        })
    }

    /// LMOVE: nil when the source is missing, WRONGTYPE for either key (the source first,
    /// the destination before anything moves), else the element moved.
    pub(crate) fn lmove(&mut self, source: &str, destination: &str, from: End, to: End) -> R {
        if self.lookup_list(source)?.is_none() {
            return Ok(Reply::Nil);
        }
        self.lookup_list(destination)?;
        let Some(Value::List(l)) = self.write(source) else {
            unreachable!("checked by a read of the same key")
        };
        let v = match from {
            End::Left => l.pop_front(),
            End::Right => l.pop_back(),
        }
        .expect("a stored list is never empty");
        let dst = self.list_mut(destination)?;
        match to {
            End::Left => dst.push_front(v.clone()),
            End::Right => dst.push_back(v.clone()),
        }
        self.propagate(Command::Ext(ExtCommand::LMove {
            source: source.to_string(),
            destination: destination.to_string(),
            from,
            to,
        }));
        Ok(Reply::Bulk(v))
    }

    /// Pops `n` members from the low (or high) end of an existing sorted set.
    fn zpop(&mut self, key: &str, max: bool, n: usize) -> Vec<(String, f64)> {
        let Some(Value::ZSet(z)) = self.write(key) else {
            unreachable!("checked by a read of the same key")
        };
        let picked: Vec<(String, f64)> = if max {
            let all: Vec<(String, f64)> = z.iter().map(|(m, s)| (m.clone(), s)).collect();
            all.into_iter().rev().take(n).collect()
        } else {
            z.iter().take(n).map(|(m, s)| (m.clone(), s)).collect()
        };
        for (m, _) in &picked {
            z.remove(m);
        }
        picked
    }

    /// BZPOPMIN/BZPOPMAX's answer for a served waiter: `[key, member, score]`.
    pub(crate) fn zpop_one(&mut self, key: &str, max: bool) -> Reply {
        let popped = self.zpop(key, max, 1);
        self.propagate(Command::Ext(ExtCommand::ZPop {
            key: key.to_string(),
            max,
            count: None,
        }));
        let (m, s) = popped
            .into_iter()
            .next()
            .expect("a stored sorted set is not empty");
        Reply::bulks([key.to_string(), m, fmt_score(s)])
    }

    /// BZPOPMIN/BZPOPMAX without waiting: the first key holding a sorted set, WRONGTYPE
    /// on the first key of another type.
    pub(crate) fn bzpop_now(&mut self, keys: &[String], max: bool) -> Result<Option<Reply>, Reply> {
        for k in keys {
            if self.lookup_zset(k)?.is_some() {
                return Ok(Some(self.zpop_one(k, max)));
            }
        }
        Ok(None)
    }

    /// BLMOVE without waiting: `None` when the source is missing (the caller blocks).
    pub(crate) fn blmove_now(
        &mut self,
        source: &str,
        destination: &str,
        from: End,
        to: End,
    ) -> Result<Option<Reply>, Reply> {
        if self.lookup_list(source)?.is_none() {
            return Ok(None);
        }
        self.lmove(source, destination, from, to).map(Some)
    }

    /// Queues a client on BLMOVE's source or BZPOP's keys.
    pub(crate) fn block_ext(&mut self, client: super::state::ClientId, c: &ExtCommand) {
        match c {
            ExtCommand::BLMove {
                source,
                destination,
                from,
                to,
                ..
            } => self.block_then(
                client,
                std::slice::from_ref(source),
                from.is_right(),
                Then::Move {
                    destination: destination.clone(),
                    to: *to,
                },
            ),
            ExtCommand::BZPop { keys, max, .. } => {
                self.block_then(client, keys, false, Then::ZPop { max: *max })
            }
            _ => {}
        }
    }

    fn random_members(&mut self, members: &[String], n: usize) -> Vec<String> {
        // A partial Fisher-Yates shuffle: n distinct members, in the order drawn.
        let mut pool: Vec<String> = members.to_vec();
        let n = n.min(pool.len());
        for i in 0..n {
            let j = i + self.random.index(pool.len() - i);
            pool.swap(i, j);
        }
        pool.truncate(n);
        pool
    }

    fn spop(&mut self, key: &str, count: Option<u64>) -> R {
        let Some(set) = self.lookup_set(key)? else {
            return Ok(if count.is_some() {
                Reply::Array(vec![])
            } else {
                Reply::Nil
            });
        };
        if count == Some(0) {
            return Ok(Reply::Array(vec![]));
        }
        let members: Vec<String> = set.iter().cloned().collect();
        let want = count.map_or(1, |c| usize::try_from(c).unwrap_or(usize::MAX));
        if want >= members.len() && count.is_some() {
            // Everything goes: Redis answers the whole set and propagates a DEL.
            self.delete(key);
            self.propagate(Command::Del {
                keys: vec![key.to_string()],
            });
            return Ok(Reply::bulks(members));
        }
        let picked = self.random_members(&members, want);
        let Some(Value::Set(s)) = self.write(key) else {
            unreachable!("checked by a read of the same key")
        };
        for m in &picked {
            s.remove(m);
        }
        self.propagate(Command::SRem {
            key: key.to_string(),
            members: picked.clone(),
        });
        Ok(match count {
            None => Reply::opt_bulk(picked.into_iter().next()),
            Some(_) => Reply::bulks(picked),
        })
    }

    fn srandmember(&mut self, key: &str, count: Option<i64>) -> R {
        let Some(set) = self.lookup_set(key)? else {
            return Ok(if count.is_some() {
                Reply::Array(vec![])
            } else {
                Reply::Nil
            });
        };
        let members: Vec<String> = set.iter().cloned().collect();
        match count {
            None => {
                let i = self.random.index(members.len());
                Ok(Reply::Bulk(members[i].clone()))
            }
            Some(0) => Ok(Reply::Array(vec![])),
            Some(n) if n > 0 => {
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                Ok(Reply::bulks(self.random_members(&members, n)))
            }
            Some(n) => {
                if n.unsigned_abs() > MAX_RANDOM_REPLY {
                    return Err(err(errors::NOT_INTEGER));
                }
                let picks = (0..n.unsigned_abs())
                    .map(|_| members[self.random.index(members.len())].clone())
                    .collect::<Vec<_>>();
                Ok(Reply::bulks(picks))
            }
        }
    }

    fn scan(
        &mut self,
        cursor: u64,
        pattern: &Option<String>,
        count: i64,
        kind: Option<&str>,
    ) -> Reply {
        let mut keys: Vec<(u64, String)> = self
            .data
            .key_names()
            .map(|k| (scan_hash(k), k.clone()))
            .filter(|(h, _)| *h >= cursor)
            .collect();
        keys.sort();
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        // Keys of one hash go together, so that none is skipped at a batch's edge.
        let mut taken = keys.len().min(count);
        while taken < keys.len() && taken > 0 && keys[taken].0 == keys[taken - 1].0 {
            taken += 1;
        }
        let next = if taken < keys.len() { keys[taken].0 } else { 0 };
        let mut out = Vec::new();
        for (_, k) in keys.into_iter().take(taken) {
            if !glob(pattern, &k) {
                continue;
            }
            let Some(v) = self.read(&k) else { continue };
            if kind.is_some_and(|t| !t.eq_ignore_ascii_case(type_name(v))) {
                continue;
            }
            out.push(Reply::Bulk(k));
        }
        Reply::Array(vec![Reply::Bulk(next.to_string()), Reply::Array(out)])
    }

    fn scan_in(&mut self, of: ScanOf, key: &str, options: &[String]) -> R {
        let empty = || Reply::Array(vec![Reply::bulk("0"), Reply::Array(vec![])]);
        let items: Vec<(String, Option<String>)> = match of {
            ScanOf::Hash => match self.lookup_hash(key)? {
                None => return Ok(empty()),
                Some(h) => h
                    .iter()
                    .map(|(f, v)| (f.clone(), Some(v.clone())))
                    .collect(),
            },
            ScanOf::Set => match self.lookup_set(key)? {
                None => return Ok(empty()),
                Some(s) => s.iter().map(|m| (m.clone(), None)).collect(),
            },
            ScanOf::ZSet => match self.lookup_zset(key)? {
                None => return Ok(empty()),
                Some(z) => z
                    .iter()
                    .map(|(m, s)| (m.clone(), Some(fmt_score(s))))
                    .collect(),
            },
        };
        let args: Vec<&str> = options.iter().map(String::as_str).collect();
        let (pattern, _, _) = super::ext::scan_options(&args, false)?;
        let mut out = Vec::new();
        for (name, v) in items {
            if !glob(&pattern, &name) {
                continue;
            }
            out.push(Reply::Bulk(name));
            if let Some(v) = v {
                out.push(Reply::Bulk(v));
            }
        }
        Ok(Reply::Array(vec![Reply::bulk("0"), Reply::Array(out)]))
    }

    fn getex(&mut self, key: &str, option: &GetExOption) -> R {
        let Some(v) = self.lookup_str(key)?.cloned() else {
            return Ok(Reply::Nil);
        };
        let invalid = || err(errors::invalid_expire("getex"));
        let when = match option {
            GetExOption::Time(kind, t) => {
                let n = parse_i64_strict(t).ok_or_else(|| err(errors::NOT_INTEGER))?;
                let seconds = matches!(*kind, "EX" | "EXAT");
                if n <= 0 || (seconds && n > i64::MAX / 1000) {
                    return Err(invalid());
                }
                let ms = if seconds { n * 1000 } else { n };
                let ms = if matches!(*kind, "EX" | "PX") {
                    ms.checked_add(self.now_ms).ok_or_else(invalid)?
                } else {
                    ms
                };
                Some((ms, matches!(*kind, "EXAT" | "PXAT")))
            }
            _ => None,
        };
        match (option, when) {
            (_, Some((at, true))) if at <= self.now_ms => {
                self.delete(key);
                self.propagate(Command::Del {
                    keys: vec![key.to_string()],
                });
            }
            (_, Some((at, _))) => {
                self.set_expire(key, Some(at));
                self.propagate(Command::PExpireAt {
                    key: key.to_string(),
                    at_millis: at,
                    flags: Default::default(),
                });
            }
            (GetExOption::Persist, None)
                if self.entry(key).is_some_and(|e| e.expire_at.is_some()) =>
            {
                self.set_expire(key, None);
                self.propagate(Command::Persist {
                    key: key.to_string(),
                });
            }
            _ => {}
        }
        Ok(Reply::Bulk(v))
    }
}
