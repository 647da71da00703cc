//! Streams: Redis 7's append-only logs with consumer groups (XADD, XRANGE, XREADGROUP,
//! XACK, XPENDING, XCLAIM, XAUTOCLAIM, ...), the data structure services use as a job
//! queue with acknowledgements.
//!
//! This module is the value and its semantics, pure: a [`Stream`] and one function per
//! command, taking parsed arguments and the clock (Unix milliseconds) and returning
//! Redis's reply. Argument parsing is [`super::stream_command`]; the engine looks keys up and calls in.
//!
//! Consumer groups keep what Redis keeps: the last delivered ID, the pending entries list
//! (PEL) with each entry's owner, delivery count and last delivery time, and per-consumer
//! PELs, so that a consumer that dies holding entries leaves them pending until another
//! claims them (XCLAIM, XAUTOCLAIM) — the failure a job queue on streams must handle.
//!
//! Differences from Redis, on purpose: a node of entries (what approximate trimming, `~`,
//! removes whole) holds up to 100 entries, Redis' `stream-node-max-entries`; Redis also
//! closes a node at 4 KiB of listpack (`stream-node-max-bytes`), an encoding detail not
//! modelled. XINFO is not modelled.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use super::command::Reply;
use super::state::parse_i64_strict;
pub use super::stream_command::{
    parse, IdSpec, PendingRange, StreamCommand, Trim, TrimBy, APPROX_TRIM_LIMIT,
};
use super::stream_command::{ClaimArgs, Delivery};

/// An entry ID: milliseconds and a sequence number, ordered as Redis orders them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub fn new(ms: u64, seq: u64) -> Self {
        StreamId { ms, seq }
    }

    fn next(self) -> Option<StreamId> {
        if self.seq < u64::MAX {
            Some(StreamId::new(self.ms, self.seq + 1))
        } else if self.ms < u64::MAX {
            Some(StreamId::new(self.ms + 1, 0))
        } else {
            None
        }
    }

    fn prev(self) -> Option<StreamId> {
        if self.seq > 0 {
            Some(StreamId::new(self.ms, self.seq - 1))
        } else if self.ms > 0 {
            Some(StreamId::new(self.ms - 1, u64::MAX))
        } else {
            None
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

pub(crate) const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";
const ID_TOO_SMALL: &str =
    "ERR The ID specified in XADD is equal or smaller than the target stream top item";
pub(crate) const ID_ZERO: &str = "ERR The ID specified in XADD must be greater than 0-0";

/// Redis' `string2ull`: `string2ll` when that reads a non-negative number, else C's
/// `strtoull` over the whole text (leading spaces, a sign, and `-n` wrapping around, as
/// C does).
pub(crate) fn string2ull(s: &str) -> Option<u64> {
    if let Some(v) = parse_i64_strict(s) {
        return u64::try_from(v).ok();
    }
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u64 = digits.parse().ok()?;
    Some(if negative { v.wrapping_neg() } else { v })
}

/// Redis' `streamGenericParseIDOrReply`: `ms-seq`, or `ms` with `missing_seq`; `-` and `+`
/// are the smallest and largest IDs unless `strict`.
fn parse_id_generic(s: &str, missing_seq: u64, strict: bool) -> Result<StreamId, Reply> {
    let bad = || Reply::error(INVALID_ID);
    if s.len() > 127 {
        return Err(bad());
    }
    // Redis copies the argument into a C string: it ends at the first NUL.
    let s = s.split('\0').next().unwrap_or("");
    match s {
        "-" | "+" if strict => return Err(bad()),
        "-" => return Ok(StreamId::MIN),
        "+" => return Ok(StreamId::MAX),
        _ => {}
    }
    let (ms, seq) = match s.split_once('-') {
        Some((ms, seq)) => (ms, Some(seq)),
        None => (s, None),
    };
    let ms = string2ull(ms).ok_or_else(bad)?;
    let seq = match seq {
        Some(seq) => string2ull(seq).ok_or_else(bad)?,
        None => missing_seq,
    };
    Ok(StreamId::new(ms, seq))
}

/// An ID where `-` and `+` are refused (XADD, XDEL, XACK, XCLAIM, XREAD, XGROUP CREATE).
pub(crate) fn parse_strict_id(s: &str) -> Result<StreamId, Reply> {
    parse_id_generic(s, 0, true)
}

/// An ID where `-` and `+` stand for the smallest and largest (XGROUP SETID).
pub(crate) fn parse_id(s: &str) -> Result<StreamId, Reply> {
    parse_id_generic(s, 0, false)
}

/// A range bound (XRANGE, XPENDING, XAUTOCLAIM): `-`, `+`, an ID, or `(ID` (exclusive,
/// strict), a missing sequence being `missing_seq`; returns the ID and whether exclusive.
fn parse_interval(s: &str, missing_seq: u64) -> Result<(StreamId, bool), Reply> {
    match s.strip_prefix('(') {
        Some(rest) if !rest.is_empty() => Ok((parse_id_generic(rest, missing_seq, true)?, true)),
        _ => Ok((parse_id_generic(s, missing_seq, false)?, false)),
    }
}

/// The first ID of a range: an exclusive bound moves up by one.
pub(crate) fn range_start(s: &str) -> Result<StreamId, Reply> {
    match parse_interval(s, 0)? {
        (id, true) => id
            .next()
            .ok_or_else(|| Reply::error("ERR invalid start ID for the interval")),
        (id, false) => Ok(id),
    }
}

/// The last ID of a range: a missing sequence is the largest; exclusive moves down.
pub(crate) fn range_end(s: &str) -> Result<StreamId, Reply> {
    match parse_interval(s, u64::MAX)? {
        (id, true) => id
            .prev()
            .ok_or_else(|| Reply::error("ERR invalid end ID for the interval")),
        (id, false) => Ok(id),
    }
}

/// One pending entry: delivered to `consumer`, not yet acknowledged.
#[derive(Clone, Debug, PartialEq)]
struct Pending {
    consumer: String,
    delivered_ms: u64,
    deliveries: u64,
}

#[derive(Clone, Debug, PartialEq, Default)]
struct Consumer {
    seen_ms: u64,
    pending: BTreeSet<StreamId>,
}

#[derive(Clone, Debug, PartialEq)]
struct Group {
    last_delivered: StreamId,
    pending: BTreeMap<StreamId, Pending>,
    consumers: BTreeMap<String, Consumer>,
}

impl Group {
    fn consumer(&mut self, name: &str, now_ms: u64) -> &mut Consumer {
        let c = self.consumers.entry(name.to_string()).or_default();
        c.seen_ms = now_ms;
        c
    }

    /// Makes `id` pending for `consumer` as `pending` says, moving it from whoever held it.
    fn assign(&mut self, id: StreamId, pending: Pending, now_ms: u64) {
        if let Some(old) = self.pending.get(&id).map(|p| p.consumer.clone()) {
            if let Some(c) = self.consumers.get_mut(&old) {
                c.pending.remove(&id);
            }
        }
        let consumer = pending.consumer.clone();
        self.pending.insert(id, pending);
        self.consumer(&consumer, now_ms).pending.insert(id);
    }

    /// Drops `id` from the PELs; whether it was pending.
    fn forget(&mut self, id: StreamId) -> bool {
        let Some(p) = self.pending.remove(&id) else {
            return false;
        };
        if let Some(c) = self.consumers.get_mut(&p.consumer) {
            c.pending.remove(&id);
        }
        true
    }
}

/// A node of Redis' radix tree of listpacks, as far as trimming sees it: approximate
/// trimming removes whole nodes only. A node takes new entries until it has held
/// `stream-node-max-entries` (100) of them, deleted ones included; a node whose last
/// live entry is deleted goes.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Node {
    live: u64,
    deleted: u64,
    /// The last ID appended to the node (deleted or not), what MINID trimming compares.
    last: StreamId,
}

/// Redis' default `stream-node-max-entries`.
const NODE_ENTRIES_MAX: u64 = 100;

/// A stream value: entries by ID, the nodes they sit in (by their first ID), the last ID
/// ever given, and the consumer groups.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Stream {
    entries: BTreeMap<StreamId, Vec<(String, String)>>,
    nodes: BTreeMap<StreamId, Node>,
    last_id: StreamId,
    groups: BTreeMap<String, Group>,
    bytes: usize,
}

/// Bytes charged per entry on top of its fields.
const ENTRY_OVERHEAD: usize = 32;

fn entry_bytes(fields: &[(String, String)]) -> usize {
    ENTRY_OVERHEAD + fields.iter().map(|(f, v)| f.len() + v.len()).sum::<usize>()
}

fn entry_reply(id: StreamId, fields: &[(String, String)]) -> Reply {
    Reply::Array(vec![
        Reply::bulk(id.to_string()),
        Reply::Array(
            fields
                .iter()
                .flat_map(|(f, v)| [Reply::bulk(f.clone()), Reply::bulk(v.clone())])
                .collect(),
        ),
    ])
}

/// The NOGROUP error of XCLAIM, XAUTOCLAIM, XPENDING and XREADGROUP.
pub(crate) fn no_group(key: &str, group: &str, command: &str) -> Reply {
    // Redis 7.0 names the command only in XREADGROUP's message.
    if command != "XREADGROUP" {
        return Reply::error(format!(
            "NOGROUP No such key '{key}' or consumer group '{group}'"
        ));
    }
    Reply::error(format!(
        "NOGROUP No such key '{key}' or consumer group '{group}' in {command} with GROUP option"
    ))
}

/// The NOGROUP error of XGROUP's subcommands.
pub(crate) fn xgroup_no_group(key: &str, group: &str) -> Reply {
    Reply::error(format!(
        "NOGROUP No such consumer group '{group}' for key name '{key}'"
    ))
}

/// XCLAIM's delivery time: `now - idle` or the given time, `now` when that is negative
/// or in the future (Redis' sanity check).
fn delivery_time(delivery: Option<Delivery>, now_ms: u64) -> u64 {
    let now = i128::from(now_ms);
    let t = match delivery {
        Some(Delivery::Idle(idle)) => now - i128::from(idle),
        Some(Delivery::Time(t)) => i128::from(t),
        None => now,
    };
    if t < 0 || t > now {
        now_ms
    } else {
        t as u64
    }
}

impl Stream {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The running size estimate, for `maxmemory`.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The last ID ever given (entries deleted since included).
    pub fn last_id(&self) -> StreamId {
        self.last_id
    }

    /// The size computed from scratch: the test oracle for [`Stream::bytes`].
    pub fn bytes_recomputed(&self) -> usize {
        self.entries.values().map(|f| entry_bytes(f)).sum()
    }

    pub fn has_group(&self, group: &str) -> bool {
        self.groups.contains_key(group)
    }

    /// XADD on an existing (or new, empty) stream.
    pub fn add(
        &mut self,
        id: &IdSpec,
        fields: Vec<(String, String)>,
        trim: Option<&Trim>,
        now_ms: u64,
    ) -> Result<StreamId, Reply> {
        if self.last_id == StreamId::MAX {
            return Err(Reply::error(
                "ERR The stream has exhausted the last possible ID, unable to add more items",
            ));
        }
        let id = match *id {
            IdSpec::Auto => {
                if now_ms > self.last_id.ms {
                    StreamId::new(now_ms, 0)
                } else {
                    self.last_id
                        .next()
                        .ok_or_else(|| Reply::error(ID_TOO_SMALL))?
                }
            }
            IdSpec::AutoSeq(ms) => {
                if ms > self.last_id.ms {
                    StreamId::new(ms, 0)
                } else if ms == self.last_id.ms && self.last_id.seq < u64::MAX {
                    StreamId::new(ms, self.last_id.seq + 1)
                } else {
                    return Err(Reply::error(ID_TOO_SMALL));
                }
            }
            IdSpec::Explicit(id) => {
                if id == StreamId::MIN {
                    return Err(Reply::error(ID_ZERO));
                }
                if id <= self.last_id {
                    return Err(Reply::error(ID_TOO_SMALL));
                }
                id
            }
        };
        self.bytes += entry_bytes(&fields);
        self.entries.insert(id, fields);
        self.last_id = id;
        match self.nodes.values_mut().next_back() {
            Some(tail) if tail.live + tail.deleted < NODE_ENTRIES_MAX => {
                tail.live += 1;
                tail.last = id;
            }
            _ => {
                self.nodes.insert(
                    id,
                    Node {
                        live: 1,
                        deleted: 0,
                        last: id,
                    },
                );
            }
        }
        if let Some(trim) = trim {
            self.trim(trim);
        }
        Ok(id)
    }

    fn remove_entry(&mut self, id: StreamId) -> bool {
        let Some(fields) = self.entries.remove(&id) else {
            return false;
        };
        self.bytes -= entry_bytes(&fields);
        true
    }

    /// Trims by the rule, as `streamTrim` walks the nodes from the oldest: a whole node
    /// goes when what stays satisfies the rule; then exact trimming deletes entries from
    /// the next node, approximate trimming stops. Returns how many entries went.
    pub fn trim(&mut self, trim: &Trim) -> u64 {
        let mut deleted = 0;
        while let Some((&first, &node)) = self.nodes.first_key_value() {
            let len = self.entries.len() as u64;
            if let TrimBy::MaxLen(max) = trim.by {
                if len <= max {
                    break;
                }
            }
            if trim.limit > 0 && deleted + node.live > trim.limit {
                break;
            }
            let whole = match trim.by {
                TrimBy::MaxLen(max) => len - node.live >= max,
                TrimBy::MinId(min) => node.last < min,
            };
            let ids: Vec<StreamId> = self
                .entries
                .range(first..=node.last)
                .map(|(id, _)| *id)
                .collect();
            if whole {
                self.nodes.remove(&first);
                for id in ids {
                    self.remove_entry(id);
                }
                deleted += node.live;
                continue;
            }
            if trim.approx {
                break;
            }
            let mut from_node = 0;
            for id in ids {
                let stop = match trim.by {
                    TrimBy::MaxLen(max) => self.entries.len() as u64 <= max,
                    TrimBy::MinId(min) => id >= min,
                };
                if stop {
                    break;
                }
                self.remove_entry(id);
                from_node += 1;
            }
            if let Some(n) = self.nodes.get_mut(&first) {
                n.live -= from_node;
                n.deleted += from_node;
            }
            deleted += from_node;
            break;
        }
        deleted
    }

    /// XRANGE / XREVRANGE between two resolved bounds; COUNT 0 answers a null array.
    pub fn range(&self, lo: StreamId, hi: StreamId, count: Option<u64>, rev: bool) -> Reply {
        if count == Some(0) {
            return Reply::Nil;
        }
        if lo > hi {
            return Reply::Array(vec![]);
        }
        let limit = count.map_or(usize::MAX, |c| usize::try_from(c).unwrap_or(usize::MAX));
        let items = self.entries.range(lo..=hi);
        let out: Vec<Reply> = if rev {
            items
                .rev()
                .take(limit)
                .map(|(id, f)| entry_reply(*id, f))
                .collect()
        } else {
            items
                .take(limit)
                .map(|(id, f)| entry_reply(*id, f))
                .collect()
        };
        Reply::Array(out)
    }

    /// XDEL: returns how many of `ids` existed. A node whose last live entry goes is
    /// removed, as `streamIteratorRemoveEntry` does.
    pub fn delete(&mut self, ids: &[StreamId]) -> i64 {
        let mut n = 0;
        for &id in ids {
            if !self.remove_entry(id) {
                continue;
            }
            n += 1;
            if let Some((&first, node)) = self.nodes.range_mut(..=id).next_back() {
                if node.live == 1 {
                    self.nodes.remove(&first);
                } else {
                    node.live -= 1;
                    node.deleted += 1;
                }
            }
        }
        n
    }

    /// XREAD of one stream: entries after `after`; `None` when there is none (Redis then
    /// leaves the stream out of the reply).
    pub fn read_after(&self, after: StreamId, count: Option<u64>) -> Option<Vec<Reply>> {
        let newest = *self.entries.keys().next_back()?;
        if newest <= after {
            return None;
        }
        let from = after.next()?;
        let limit = count.map_or(usize::MAX, |c| usize::try_from(c).unwrap_or(usize::MAX));
        Some(
            self.entries
                .range(from..)
                .take(limit)
                .map(|(id, f)| entry_reply(*id, f))
                .collect(),
        )
    }

    /// XGROUP CREATE on this stream, at a resolved ID.
    pub fn create_group(&mut self, group: &str, start: StreamId) -> Result<(), Reply> {
        if self.groups.contains_key(group) {
            return Err(Reply::error("BUSYGROUP Consumer Group name already exists"));
        }
        self.groups.insert(
            group.to_string(),
            Group {
                last_delivered: start,
                pending: BTreeMap::new(),
                consumers: BTreeMap::new(),
            },
        );
        Ok(())
    }

    pub fn destroy_group(&mut self, group: &str) -> bool {
        self.groups.remove(group).is_some()
    }

    /// XGROUP CREATECONSUMER: 1 when created.
    pub fn create_consumer(
        &mut self,
        key: &str,
        group: &str,
        consumer: &str,
        now_ms: u64,
    ) -> Result<i64, Reply> {
        let g = self.xgroup_group(key, group)?;
        if g.consumers.contains_key(consumer) {
            return Ok(0);
        }
        g.consumer(consumer, now_ms);
        Ok(1)
    }

    /// XGROUP DELCONSUMER: the number of pending entries it held.
    pub fn delete_consumer(
        &mut self,
        key: &str,
        group: &str,
        consumer: &str,
    ) -> Result<i64, Reply> {
        let g = self.xgroup_group(key, group)?;
        let Some(c) = g.consumers.remove(consumer) else {
            return Ok(0);
        };
        for id in &c.pending {
            g.pending.remove(id);
        }
        Ok(c.pending.len() as i64)
    }

    /// XGROUP SETID at a resolved ID.
    pub fn set_group_id(&mut self, key: &str, group: &str, id: StreamId) -> Result<(), Reply> {
        self.xgroup_group(key, group)?.last_delivered = id;
        Ok(())
    }

    /// The group for an XGROUP subcommand, with XGROUP's own NOGROUP wording.
    fn xgroup_group(&mut self, key: &str, group: &str) -> Result<&mut Group, Reply> {
        self.groups
            .get_mut(group)
            .ok_or_else(|| xgroup_no_group(key, group))
    }

    /// XREADGROUP `>` on one stream: the entries after the group's last delivered one,
    /// which become pending for `consumer` (unless `noack`); an entry pending already
    /// (the group was moved back with SETID) changes hands with its count reset to 1, as
    /// in Redis. `None` when nothing is new (the consumer is then not created).
    #[allow(clippy::too_many_arguments)]
    pub fn read_group_new(
        &mut self,
        key: &str,
        group: &str,
        consumer: &str,
        count: Option<u64>,
        noack: bool,
        now_ms: u64,
    ) -> Result<Option<Vec<Reply>>, Reply> {
        let limit = count.map_or(usize::MAX, |c| usize::try_from(c).unwrap_or(usize::MAX));
        let Stream {
            entries, groups, ..
        } = self;
        let g = groups
            .get_mut(group)
            .ok_or_else(|| no_group(key, group, "XREADGROUP"))?;
        let newest = entries.keys().next_back().copied();
        if newest.is_none_or(|n| n <= g.last_delivered) {
            return Ok(None);
        }
        let Some(from) = g.last_delivered.next() else {
            return Ok(None);
        };
        let batch: Vec<StreamId> = entries
            .range(from..)
            .take(limit)
            .map(|(id, _)| *id)
            .collect();
        g.consumer(consumer, now_ms);
        let mut out = Vec::with_capacity(batch.len());
        for id in batch {
            g.last_delivered = id;
            if !noack {
                let pending = Pending {
                    consumer: consumer.to_string(),
                    delivered_ms: now_ms,
                    deliveries: 1,
                };
                g.assign(id, pending, now_ms);
            }
            out.push(entry_reply(id, &entries[&id]));
        }
        Ok(Some(out))
    }

    /// XREADGROUP with an ID: the consumer's own pending entries after it. Reading one
    /// counts as a delivery; one deleted meanwhile answers `[id, nil]` and is not counted.
    #[allow(clippy::too_many_arguments)]
    pub fn read_group_history(
        &mut self,
        key: &str,
        group: &str,
        consumer: &str,
        after: StreamId,
        count: Option<u64>,
        now_ms: u64,
    ) -> Result<Vec<Reply>, Reply> {
        let limit = count.map_or(usize::MAX, |c| usize::try_from(c).unwrap_or(usize::MAX));
        let Stream {
            entries, groups, ..
        } = self;
        let g = groups
            .get_mut(group)
            .ok_or_else(|| no_group(key, group, "XREADGROUP"))?;
        let c = g.consumer(consumer, now_ms);
        let Some(from) = after.next() else {
            return Ok(vec![]);
        };
        let ids: Vec<StreamId> = c.pending.range(from..).take(limit).copied().collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match entries.get(&id) {
                Some(fields) => {
                    if let Some(p) = g.pending.get_mut(&id) {
                        p.deliveries += 1;
                        p.delivered_ms = now_ms;
                    }
                    out.push(entry_reply(id, fields));
                }
                None => out.push(Reply::Array(vec![Reply::bulk(id.to_string()), Reply::Nil])),
            }
        }
        Ok(out)
    }

    /// XACK: how many of `ids` were pending.
    pub fn ack(&mut self, group: &str, ids: &[StreamId]) -> i64 {
        let Some(g) = self.groups.get_mut(group) else {
            return 0;
        };
        ids.iter().filter(|id| g.forget(**id)).count() as i64
    }

    /// XPENDING, summary form.
    pub fn pending_summary(&self, key: &str, group: &str) -> Result<Reply, Reply> {
        let g = self
            .groups
            .get(group)
            .ok_or_else(|| no_group(key, group, "XPENDING"))?;
        if g.pending.is_empty() {
            return Ok(Reply::Array(vec![
                Reply::Int(0),
                Reply::Nil,
                Reply::Nil,
                Reply::Nil,
            ]));
        }
        let first = g.pending.keys().next().copied().unwrap_or_default();
        let last = g.pending.keys().next_back().copied().unwrap_or_default();
        let per_consumer: Vec<Reply> = g
            .consumers
            .iter()
            .filter(|(_, c)| !c.pending.is_empty())
            .map(|(name, c)| {
                Reply::Array(vec![
                    Reply::bulk(name.clone()),
                    Reply::bulk(c.pending.len().to_string()),
                ])
            })
            .collect();
        Ok(Reply::Array(vec![
            Reply::from_len(g.pending.len()),
            Reply::bulk(first.to_string()),
            Reply::bulk(last.to_string()),
            Reply::Array(per_consumer),
        ]))
    }

    /// XPENDING, extended form: a named consumer that does not exist has nothing.
    pub fn pending_range(
        &self,
        key: &str,
        group: &str,
        range: &PendingRange,
        now_ms: u64,
    ) -> Result<Reply, Reply> {
        let g = self
            .groups
            .get(group)
            .ok_or_else(|| no_group(key, group, "XPENDING"))?;
        if range
            .consumer
            .as_ref()
            .is_some_and(|c| !g.consumers.contains_key(c))
        {
            return Ok(Reply::Array(vec![]));
        }
        if range.start > range.end {
            return Ok(Reply::Array(vec![]));
        }
        let idle = |p: &Pending| i128::from(now_ms) - i128::from(p.delivered_ms);
        let out = g
            .pending
            .range(range.start..=range.end)
            .filter(|(_, p)| range.consumer.as_ref().is_none_or(|c| p.consumer == *c))
            .filter(|(_, p)| range.min_idle == 0 || idle(p) >= i128::from(range.min_idle))
            .take(usize::try_from(range.count).unwrap_or(usize::MAX))
            .map(|(id, p)| {
                Reply::Array(vec![
                    Reply::bulk(id.to_string()),
                    Reply::bulk(p.consumer.clone()),
                    Reply::Int(idle(p).max(0) as i64),
                    Reply::Int(p.deliveries as i64),
                ])
            })
            .collect();
        Ok(Reply::Array(out))
    }

    /// XCLAIM, its arguments read (the group exists: the caller checked, as Redis checks
    /// before reading them). The consumer is created by the first entry it gets.
    pub(crate) fn claim(
        &mut self,
        key: &str,
        group: &str,
        consumer: &str,
        args: &ClaimArgs,
        now_ms: u64,
    ) -> Result<Reply, Reply> {
        let Stream {
            entries, groups, ..
        } = self;
        let g = groups
            .get_mut(group)
            .ok_or_else(|| no_group(key, group, "XCLAIM"))?;
        if let Some(last) = args.last_id {
            if last > g.last_delivered {
                g.last_delivered = last;
            }
        }
        let delivered_ms = delivery_time(args.delivery, now_ms);
        let mut out = Vec::new();
        for &id in &args.ids {
            if !entries.contains_key(&id) {
                // The entry was deleted: Redis drops it from the PEL.
                g.forget(id);
                continue;
            }
            let deliveries = match g.pending.get(&id) {
                Some(p) => {
                    let idle = i128::from(now_ms) - i128::from(p.delivered_ms);
                    if args.min_idle > 0 && idle < i128::from(args.min_idle) {
                        continue;
                    }
                    p.deliveries
                }
                // FORCE makes a PEL entry, with Redis' initial count of 1.
                None if args.force => 1,
                None => continue,
            };
            let deliveries = match args.retry_count {
                Some(n) => n,
                // JUSTID does not count as a delivery.
                None if args.just_id => deliveries,
                None => deliveries + 1,
            };
            let pending = Pending {
                consumer: consumer.to_string(),
                delivered_ms,
                deliveries,
            };
            g.assign(id, pending, now_ms);
            out.push(if args.just_id {
                Reply::bulk(id.to_string())
            } else {
                entry_reply(id, &entries[&id])
            });
        }
        Ok(Reply::Array(out))
    }

    /// XAUTOCLAIM: `[next cursor, claimed entries, deleted IDs]`. As `xautoclaimCommand`:
    /// at most `count * 10` PEL entries are looked at, an entry deleted meanwhile leaves the
    /// PEL and counts against `count`, and the cursor is the entry after the last looked
    /// at (0-0 at the end).
    #[allow(clippy::too_many_arguments)]
    pub fn auto_claim(
        &mut self,
        key: &str,
        group: &str,
        consumer: &str,
        min_idle: u64,
        start: StreamId,
        count: u64,
        just_id: bool,
        now_ms: u64,
    ) -> Result<Reply, Reply> {
        let Stream {
            entries, groups, ..
        } = self;
        let g = groups
            .get_mut(group)
            .ok_or_else(|| no_group(key, group, "XAUTOCLAIM"))?;
        let ids: Vec<StreamId> = g.pending.range(start..).map(|(id, _)| *id).collect();
        let mut attempts = count.saturating_mul(10);
        let mut room = count;
        let mut next = 0;
        let mut claimed = Vec::new();
        let mut deleted = Vec::new();
        while attempts > 0 && room > 0 {
            attempts -= 1;
            let Some(&id) = ids.get(next) else {
                break;
            };
            next += 1;
            if !entries.contains_key(&id) {
                g.forget(id);
                deleted.push(Reply::bulk(id.to_string()));
                room -= 1;
                continue;
            }
            let p = &g.pending[&id];
            if min_idle > 0 && now_ms.saturating_sub(p.delivered_ms) < min_idle {
                continue;
            }
            let deliveries = p.deliveries + u64::from(!just_id);
            let pending = Pending {
                consumer: consumer.to_string(),
                delivered_ms: now_ms,
                deliveries,
            };
            g.assign(id, pending, now_ms);
            claimed.push(if just_id {
                Reply::bulk(id.to_string())
            } else {
                entry_reply(id, &entries[&id])
            });
            room -= 1;
        }
        let cursor = ids.get(next).copied().unwrap_or(StreamId::MIN);
        Ok(Reply::Array(vec![
            Reply::bulk(cursor.to_string()),
            Reply::Array(claimed),
            Reply::Array(deleted),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(v: &str) -> Vec<(String, String)> {
        vec![("f".to_string(), v.to_string())]
    }

    fn ids(reply: &Reply) -> Vec<String> {
        let Reply::Array(items) = reply else {
            panic!("not an array: {reply:?}")
        };
        items
            .iter()
            .map(|e| match e {
                Reply::Array(pair) => match &pair[0] {
                    Reply::Bulk(id) => id.clone(),
                    other => panic!("{other:?}"),
                },
                Reply::Bulk(id) => id.clone(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn ids_grow_and_refuse_to_go_back() {
        let mut s = Stream::default();
        let a = s.add(&IdSpec::Auto, fields("a"), None, 1000).unwrap();
        assert_eq!(a, StreamId::new(1000, 0));
        // The clock went back (or stood still): the sequence moves on.
        let b = s.add(&IdSpec::Auto, fields("b"), None, 999).unwrap();
        assert_eq!(b, StreamId::new(1000, 1));
        assert_eq!(
            s.add(
                &IdSpec::Explicit(StreamId::new(1000, 1)),
                fields("c"),
                None,
                0
            ),
            Err(Reply::error(ID_TOO_SMALL))
        );
        assert_eq!(
            s.add(&IdSpec::AutoSeq(1000), fields("c"), None, 0),
            Ok(StreamId::new(1000, 2))
        );
        let mut empty = Stream::default();
        assert_eq!(
            empty.add(&IdSpec::Explicit(StreamId::MIN), fields("z"), None, 0),
            Err(Reply::error(ID_ZERO))
        );
    }

    #[test]
    fn ranges_take_exclusive_bounds_counts_and_reverse() {
        let mut s = Stream::default();
        for i in 1..=3 {
            s.add(&IdSpec::Explicit(StreamId::new(i, 1)), fields("v"), None, 0)
                .unwrap();
        }
        let r = |lo: &str, hi: &str, count, rev| {
            s.range(range_start(lo).unwrap(), range_end(hi).unwrap(), count, rev)
        };
        assert_eq!(ids(&r("-", "+", None, false)), ["1-1", "2-1", "3-1"]);
        assert_eq!(ids(&r("2", "+", Some(1), false)), ["2-1"]);
        assert_eq!(ids(&r("(1-1", "+", None, false)), ["2-1", "3-1"]);
        assert_eq!(ids(&r("-", "+", Some(2), true)), ["3-1", "2-1"]);
        assert_eq!(ids(&r("3", "1", None, false)), Vec::<String>::new());
        assert_eq!(
            r("-", "+", Some(0), true),
            Reply::Nil,
            "COUNT 0: a null array"
        );
    }

    #[test]
    fn a_group_delivers_each_entry_once_and_keeps_it_pending_until_acked() {
        let mut s = Stream::default();
        for i in 1..=3 {
            s.add(&IdSpec::Explicit(StreamId::new(i, 1)), fields("v"), None, 0)
                .unwrap();
        }
        s.create_group("g", StreamId::MIN).unwrap();
        assert_eq!(
            s.create_group("g", StreamId::MIN),
            Err(Reply::error("BUSYGROUP Consumer Group name already exists"))
        );
        let first = s
            .read_group_new("s", "g", "c1", Some(2), false, 10)
            .unwrap()
            .unwrap();
        assert_eq!(ids(&Reply::Array(first)), ["1-1", "2-1"]);
        let second = s
            .read_group_new("s", "g", "c2", None, false, 10)
            .unwrap()
            .unwrap();
        assert_eq!(ids(&Reply::Array(second)), ["3-1"]);
        assert_eq!(s.ack("g", &[StreamId::new(1, 1), StreamId::new(9, 9)]), 1);
        assert_eq!(
            s.pending_summary("s", "g").unwrap(),
            Reply::Array(vec![
                Reply::Int(2),
                Reply::bulk("2-1"),
                Reply::bulk("3-1"),
                Reply::Array(vec![
                    Reply::Array(vec![Reply::bulk("c1"), Reply::bulk("1")]),
                    Reply::Array(vec![Reply::bulk("c2"), Reply::bulk("1")]),
                ]),
            ])
        );
        // c1's history: only what it holds and has not acknowledged.
        let history = s
            .read_group_history("s", "g", "c1", StreamId::MIN, None, 20)
            .unwrap();
        assert_eq!(ids(&Reply::Array(history)), ["2-1"]);
        assert_eq!(
            s.read_group_new("s", "nog", "c1", None, false, 0),
            Err(Reply::error(
                "NOGROUP No such key 's' or consumer group 'nog' in XREADGROUP with GROUP option"
            ))
        );
    }

    fn justid_after(min_idle: u64) -> ClaimArgs {
        ClaimArgs {
            min_idle,
            ids: vec![StreamId::new(1, 0)],
            delivery: None,
            retry_count: None,
            force: false,
            just_id: true,
            last_id: None,
        }
    }

    #[test]
    fn a_dead_consumers_entries_are_claimed_after_they_idle() {
        let mut s = Stream::default();
        for i in 1..=2 {
            s.add(
                &IdSpec::Explicit(StreamId::new(i, 0)),
                fields("job"),
                None,
                0,
            )
            .unwrap();
        }
        s.create_group("g", StreamId::MIN).unwrap();
        s.read_group_new("s", "g", "dead", None, false, 1_000)
            .unwrap();
        // Not idle long enough yet.
        let early = s
            .auto_claim("s", "g", "alive", 5_000, StreamId::MIN, 10, false, 3_000)
            .unwrap();
        assert_eq!(
            early,
            Reply::Array(vec![
                Reply::bulk("0-0"),
                Reply::Array(vec![]),
                Reply::Array(vec![])
            ])
        );
        s.delete(&[StreamId::new(2, 0)]);
        let later = s
            .auto_claim("s", "g", "alive", 5_000, StreamId::MIN, 10, false, 7_000)
            .unwrap();
        let Reply::Array(parts) = &later else {
            panic!()
        };
        assert_eq!(ids(&parts[1]), ["1-0"]);
        assert_eq!(
            parts[2],
            Reply::Array(vec![Reply::bulk("2-0")]),
            "deleted meanwhile"
        );
        let detail = s
            .pending_range(
                "s",
                "g",
                &PendingRange {
                    min_idle: 0,
                    start: StreamId::MIN,
                    end: StreamId::MAX,
                    count: 10,
                    consumer: None,
                },
                7_500,
            )
            .unwrap();
        assert_eq!(
            detail,
            Reply::Array(vec![Reply::Array(vec![
                Reply::bulk("1-0"),
                Reply::bulk("alive"),
                Reply::Int(500),
                Reply::Int(2),
            ])])
        );
        // XCLAIM back, only once the entry idled.
        let none = s
            .claim("s", "g", "dead", &justid_after(1_000), 7_600)
            .unwrap();
        assert_eq!(none, Reply::Array(vec![]));
        let back = s
            .claim("s", "g", "dead", &justid_after(1_000), 9_000)
            .unwrap();
        assert_eq!(back, Reply::Array(vec![Reply::bulk("1-0")]));
    }

    fn trim(by: TrimBy, approx: bool) -> Trim {
        Trim {
            by,
            approx,
            limit: if approx { APPROX_TRIM_LIMIT } else { 0 },
        }
    }

    #[test]
    fn trimming_is_exact_or_by_whole_nodes_of_100_entries() {
        let mut s = Stream::default();
        for i in 1..=250 {
            s.add(&IdSpec::Explicit(StreamId::new(i, 0)), fields("x"), None, 0)
                .unwrap();
        }
        // Nodes: 1..=100, 101..=200, 201..=250.
        assert_eq!(s.trim(&trim(TrimBy::MaxLen(200), true)), 0);
        assert_eq!(s.trim(&trim(TrimBy::MaxLen(100), true)), 100);
        assert_eq!(s.trim(&trim(TrimBy::MaxLen(100), false)), 50);
        assert_eq!(s.len(), 100);
        // A node ends where its last entry was, deleted or not: MINID 250 keeps the
        // node 201..=250 although its entries left are all below 250.
        s.delete(&[StreamId::new(250, 0)]);
        assert_eq!(
            s.trim(&trim(TrimBy::MinId(StreamId::new(250, 0)), true)),
            50
        );
        assert_eq!(
            s.trim(&trim(TrimBy::MinId(StreamId::new(251, 0)), true)),
            49
        );
        assert_eq!(s.len(), 0);
        assert_eq!(s.bytes(), 0);
        // `~ 0` removes every node, the new entry's included, as Redis does.
        s.add(
            &IdSpec::Auto,
            fields("y"),
            Some(&trim(TrimBy::MaxLen(0), true)),
            1_000,
        )
        .unwrap();
        assert!(s.is_empty());
        assert_eq!(s.bytes(), s.bytes_recomputed());
    }
}
