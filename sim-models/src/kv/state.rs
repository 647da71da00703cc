//! The pure state machine: the keyspace with expiry, memory accounting and eviction, the
//! WATCH and blocked-client registries, and the stream of effects to persist and replicate.
//!
//! Nothing here knows about the network or the simulator's clock: every entry point takes
//! `now` as an argument, so the whole command semantics is testable without a runtime.
//! The per-command code lives in `exec.rs`; MULTI/EXEC and blocking decisions per
//! connection live in `session.rs`.
//!
//! Effects: each command that changed the dataset appends the command that reproduces the
//! change *without depending on the clock* (EXPIRE becomes PEXPIREAT, SET EX becomes SET
//! PXAT, a served BLPOP becomes LPOP, an expired or evicted key becomes DEL), which is what
//! Redis 7 writes to its AOF and sends to replicas. Applying the effects in order to a copy
//! of the dataset (the disk, a replica) reproduces it exactly.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use sim_runtime::time::Instant;
use sim_runtime::SimRng;

use super::command::{errors, Command, Reply};
use super::ext::End;
use super::stream::StreamCommand;
use super::value::{Hash, List, Set, Value, ZSet};

/// Bytes charged per key on top of its name and value (dict entry, object header).
pub const KEY_OVERHEAD: usize = 48;

/// A connection's identity on the server, for WATCH and blocked pops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClientId(pub u64);

/// What happens when a write would take memory above `maxmemory`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EvictionPolicy {
    /// Refuse writes that can grow memory with an OOM error (Redis' default).
    #[default]
    NoEviction,
    /// Evict the least recently used of a few sampled keys, as Redis' approximated LRU does.
    AllKeysLru,
}

/// The engine's knobs. `Default` has no memory limit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// `maxmemory` in bytes of the model's size estimate; `None` is unlimited.
    pub maxmemory: Option<usize>,
    pub eviction_policy: EvictionPolicy,
    /// Keys sampled per eviction (`maxmemory-samples`).
    pub eviction_samples: usize,
    /// Seed of the eviction sampler.
    pub seed: u64,
    /// The Unix time, in milliseconds, that the server's clock shows at virtual time
    /// zero. Redis' clock is Unix time: EXPIREAT, PEXPIREAT and SET EXAT/PXAT take Unix
    /// times, and XADD's ids are Unix milliseconds. 0 (the default) makes virtual time
    /// zero the Unix epoch, so `SET k v PXAT 5000` expires 5 s into a simulation.
    pub unix_time_at_start_ms: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            maxmemory: None,
            eviction_policy: EvictionPolicy::NoEviction,
            eviction_samples: 5,
            seed: 0,
            unix_time_at_start_ms: 0,
        }
    }
}

/// How the running command treats keys whose TTL has passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A primary deletes them (and propagates DEL), as Redis' lazy expiry does.
    Primary,
    /// A replica hides them from reads but waits for its primary's DEL.
    ReplicaRead,
    /// Applying effects (AOF load, replication): time plays no part.
    Apply,
}

/// The keyspace's hasher (fixed-seeded: the keyspace holds no OS-seeded state).
pub use crate::fixed_hash::FixedHasher;

type KeyMap = IndexMap<String, Entry, crate::fixed_hash::FixedState>;

/// One key's value and metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub value: Value,
    /// Expiry in milliseconds of virtual time (Redis keeps expiry at ms resolution too).
    pub expire_at: Option<i64>,
    /// Logical time of the last access, for LRU eviction.
    lru: u64,
    /// The size last accounted in `used_memory`.
    bytes: usize,
}

/// The data that persistence and replication carry: keys, values, expiry times.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    keys: KeyMap,
    expires: BTreeSet<(i64, String)>,
    used_memory: usize,
    /// The engine's `unix_time_at_start_ms`, to read expiry times against a virtual `now`.
    clock_offset_ms: i64,
}

fn entry_size(key: &str, value: &Value) -> usize {
    key.len() + value.bytes() + KEY_OVERHEAD
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The memory estimate that `maxmemory` is compared with.
    pub fn used_memory(&self) -> usize {
        self.used_memory
    }

    /// `used_memory` computed from scratch (the oracle for the running count).
    pub fn used_memory_recomputed(&self) -> usize {
        self.keys
            .iter()
            .map(|(k, e)| k.len() + e.value.bytes_recomputed() + KEY_OVERHEAD)
            .sum()
    }

    /// Every key's name, expired or not, in the keyspace's order.
    pub fn key_names(&self) -> impl Iterator<Item = &String> {
        self.keys.keys()
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.keys.get(key)
    }

    /// Keys and values, sorted by key, with the keys whose TTL passed by `now` left out:
    /// what a client could read. For tests and checkers.
    pub fn live_snapshot(&self, now: Instant) -> BTreeMap<String, Value> {
        self.live_entries(now)
            .into_iter()
            .map(|(k, (v, _))| (k, v))
            .collect()
    }

    /// Like [`Dataset::live_snapshot`], with each key's expiry (ms on the server's clock:
    /// virtual time plus `unix_time_at_start_ms`).
    pub fn live_entries(&self, now: Instant) -> BTreeMap<String, (Value, Option<i64>)> {
        let now_ms = millis(now).saturating_add(self.clock_offset_ms);
        self.keys
            .iter()
            .filter(|(_, e)| e.expire_at.is_none_or(|at| now_ms <= at))
            .map(|(k, e)| (k.clone(), (e.value.clone(), e.expire_at)))
            .collect()
    }

    /// The string keys' values, sorted, as [`Dataset::live_snapshot`] sees them.
    pub fn strings(&self, now: Instant) -> BTreeMap<String, String> {
        self.live_snapshot(now)
            .into_iter()
            .filter_map(|(k, v)| match v {
                Value::Str(s) => Some((k, s)),
                _ => None,
            })
            .collect()
    }

    fn insert(&mut self, key: String, value: Value, lru: u64) {
        self.remove(&key);
        let bytes = entry_size(&key, &value);
        self.used_memory += bytes;
        self.keys.insert(
            key,
            Entry {
                value,
                expire_at: None,
                lru,
                bytes,
            },
        );
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        let e = self.keys.swap_remove(key)?;
        self.used_memory -= e.bytes;
        if let Some(at) = e.expire_at {
            self.expires.remove(&(at, key.to_string()));
        }
        Some(e)
    }

    fn set_expire(&mut self, key: &str, at: Option<i64>) {
        let Some(e) = self.keys.get_mut(key) else {
            return;
        };
        if let Some(old) = e.expire_at {
            self.expires.remove(&(old, key.to_string()));
        }
        e.expire_at = at;
        if let Some(at) = at {
            self.expires.insert((at, key.to_string()));
        }
    }

    /// Re-accounts a key whose value changed; removes it when an aggregate became empty.
    fn reaccount(&mut self, key: &str) {
        let Some(e) = self.keys.get_mut(key) else {
            return;
        };
        if e.value.is_empty_aggregate() {
            self.remove(key);
            return;
        }
        let new = entry_size(key, &e.value);
        self.used_memory = self.used_memory + new - e.bytes;
        e.bytes = new;
    }

    fn clear(&mut self) {
        *self = Dataset::default();
    }
}

/// A client blocked in BLPOP/BRPOP, BLMOVE, BZPOPMIN/BZPOPMAX, or in XREAD/XREADGROUP
/// with BLOCK.
#[derive(Clone, Debug)]
struct Blocked {
    keys: Vec<String>,
    from_right: bool,
    /// The stream read to retry when one of `keys` gets an entry (its `$` IDs already
    /// resolved to the IDs that were last when it blocked).
    stream_read: Option<StreamCommand>,
    /// What a served list or sorted-set waiter does besides popping.
    then: Then,
}

/// How a blocked list or sorted-set waiter is served.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Then {
    /// BLPOP/BRPOP: answer `[key, element]`.
    Reply,
    /// BLMOVE: push the element onto `destination` at `to`, answer the element.
    Move { destination: String, to: End },
    /// BZPOPMIN/BZPOPMAX: pop from a sorted set, answer `[key, member, score]`.
    ZPop { max: bool },
}

/// Counters, as INFO would report some of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub commands: u64,
    pub expired_keys: u64,
    pub evicted_keys: u64,
    pub rejected_oom: u64,
}

/// The dataset plus the volatile registries of one server process.
#[derive(Debug)]
pub struct Engine {
    pub(crate) data: Dataset,
    config: EngineConfig,
    rng: SimRng,
    /// SPOP's and SRANDMEMBER's draws, apart from eviction's so that neither shifts the
    /// other.
    pub(crate) random: SimRng,
    replica: bool,
    lru_clock: u64,
    pub(crate) now_ms: i64,
    pub(crate) mode: Mode,
    watchers: BTreeMap<String, BTreeSet<ClientId>>,
    watching: BTreeMap<ClientId, BTreeSet<String>>,
    dirty_cas: BTreeSet<ClientId>,
    blocked_keys: BTreeMap<String, VecDeque<ClientId>>,
    blocked: BTreeMap<ClientId, Blocked>,
    ready_keys: Vec<String>,
    touched: Vec<String>,
    effects: Vec<Command>,
    stats: Stats,
    /// The Lua interpreter and script cache, made on the first EVAL; a restart (a new
    /// engine) empties the cache, as it does in Redis.
    pub(crate) lua: Option<Box<super::lua::LuaVm>>,
}

/// Milliseconds of virtual time, the resolution of expiry.
pub fn millis(now: Instant) -> i64 {
    i64::try_from(now.as_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// A score as Redis 7.0 prints it: `%.17g` (so 0.1 is `0.10000000000000001` and 1e20 is
/// `1e+20`), `inf`/`-inf` for infinities.
pub fn fmt_score(x: f64) -> String {
    super::number::fmt_g17(x)
}

/// Redis' `string2ll`: a canonical decimal i64 only (no `+`, no leading zeros or spaces).
pub fn parse_i64_strict(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let digits = s.strip_prefix('-').unwrap_or(s);
    let first = digits.as_bytes().first()?;
    if !(b'1'..=b'9').contains(first) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl Engine {
    pub fn new(config: EngineConfig) -> Self {
        Engine::with_dataset(config, Dataset::default())
    }

    /// An engine over a dataset loaded from disk or received from a primary.
    pub fn with_dataset(config: EngineConfig, mut data: Dataset) -> Self {
        data.clock_offset_ms = config.unix_time_at_start_ms;
        let rng = SimRng::new(config.seed).fork("kv.eviction");
        let random = SimRng::new(config.seed).fork("kv.random");
        Engine {
            data,
            config,
            rng,
            random,
            replica: false,
            lru_clock: 0,
            now_ms: 0,
            mode: Mode::Primary,
            watchers: BTreeMap::new(),
            watching: BTreeMap::new(),
            dirty_cas: BTreeSet::new(),
            blocked_keys: BTreeMap::new(),
            blocked: BTreeMap::new(),
            ready_keys: Vec::new(),
            touched: Vec::new(),
            effects: Vec::new(),
            stats: Stats::default(),
            lua: None,
        }
    }

    pub fn dataset(&self) -> &Dataset {
        &self.data
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// A replica refuses writes (READONLY) and never expires keys on its own.
    pub fn set_replica(&mut self, replica: bool) {
        self.replica = replica;
    }

    pub fn is_replica(&self) -> bool {
        self.replica
    }

    /// Replaces the dataset (a replica's full sync). Watchers of every key are touched.
    pub fn replace_dataset(&mut self, data: Dataset) {
        let keys: Vec<String> = self.watchers.keys().cloned().collect();
        for k in keys {
            self.signal_modified(&k);
        }
        self.data = data;
    }

    /// The effects of the commands run since the last call, oldest first.
    pub fn take_effects(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.effects)
    }

    /// Runs one stand-alone command at `now` (no MULTI state, blocking pops do not block):
    /// the entry point for tests of command semantics. Servers go through a `Session`.
    pub fn execute(&mut self, cmd: &Command, now: Instant) -> Reply {
        self.begin(now);
        if let Some(err) = self.refuse(cmd) {
            return err;
        }
        self.run(cmd)
    }

    /// Applies one effect from an AOF or a primary: no clock, no memory limit, no effects.
    pub fn apply(&mut self, cmd: &Command) {
        self.mode = Mode::Apply;
        self.run(cmd);
        self.effects.clear();
        self.mode = if self.replica {
            Mode::ReplicaRead
        } else {
            Mode::Primary
        };
    }

    /// Starts a top-level step at `now`: fixes the clock for the step (Redis freezes it for
    /// a command, a transaction or a script) and, on a primary, deletes every key whose TTL
    /// has passed, so expired keys never take memory or linger for WATCH.
    pub(crate) fn begin(&mut self, now: Instant) {
        self.now_ms = millis(now).saturating_add(self.config.unix_time_at_start_ms);
        self.mode = if self.replica {
            Mode::ReplicaRead
        } else {
            Mode::Primary
        };
        if self.mode == Mode::Primary {
            // Peek before copying the key: this runs before every command, and a store
            // with any key under a TTL nearly always finds nothing due.
            while let Some((_, key)) = self
                .data
                .expires
                .first()
                .filter(|(at, _)| *at < self.now_ms)
            {
                let key = key.clone();
                self.delete_expired(&key);
            }
        }
    }

    /// Why `cmd` must not run at all now: READONLY on a replica, OOM above maxmemory.
    pub(crate) fn refuse(&mut self, cmd: &Command) -> Option<Reply> {
        if self.replica && cmd.is_write() {
            return Some(Reply::error(errors::READONLY));
        }
        if cmd.may_grow() && self.out_of_memory() {
            self.stats.rejected_oom += 1;
            return Some(Reply::error(errors::OOM));
        }
        None
    }

    /// Evicts as the policy allows; true when memory stays above `maxmemory` (Redis'
    /// `performEvictions() == EVICT_FAIL`).
    pub(crate) fn out_of_memory(&mut self) -> bool {
        let Some(max) = self.config.maxmemory else {
            return false;
        };
        if self.mode != Mode::Primary {
            return false;
        }
        while self.data.used_memory > max {
            match self.config.eviction_policy {
                EvictionPolicy::NoEviction => return true,
                EvictionPolicy::AllKeysLru => {
                    if !self.evict_one() {
                        return true;
                    }
                }
            }
        }
        false
    }

    fn evict_one(&mut self) -> bool {
        let n = self.data.keys.len();
        if n == 0 {
            return false;
        }
        let mut victim: Option<(u64, usize)> = None;
        for _ in 0..self.config.eviction_samples.max(1) {
            let i = self.rng.index(n);
            let lru = self.data.keys[i].lru;
            if victim.is_none_or(|(best, _)| lru < best) {
                victim = Some((lru, i));
            }
        }
        let (_, i) = victim.expect("sampled at least once");
        let key = self
            .data
            .keys
            .get_index(i)
            .map(|(k, _)| k.clone())
            .expect("index in range");
        self.data.remove(&key);
        self.signal_modified(&key);
        self.effects.push(Command::Del { keys: vec![key] });
        self.stats.evicted_keys += 1;
        true
    }

    fn delete_expired(&mut self, key: &str) {
        self.data.remove(key);
        self.signal_modified(key);
        self.effects.push(Command::Del {
            keys: vec![key.to_string()],
        });
        self.stats.expired_keys += 1;
    }

    /// Runs one command's semantics (no READONLY/OOM gate) and settles memory accounting.
    pub(crate) fn run(&mut self, cmd: &Command) -> Reply {
        self.run_with(|e| e.dispatch(cmd))
    }

    /// [`Engine::run`] for a command's semantics given as a function rather than a
    /// [`Command`] (scripts' borrowed calls).
    #[inline]
    pub(crate) fn run_with(&mut self, semantics: impl FnOnce(&mut Self) -> Reply) -> Reply {
        self.stats.commands += 1;
        let reply = semantics(self);
        self.settle();
        reply
    }

    /// Re-accounts the memory of the keys written since the last call (and drops
    /// aggregates that became empty).
    pub(crate) fn settle(&mut self) {
        // Most commands (every read) touch nothing: no vector to swap out then.
        if self.touched.is_empty() {
            return;
        }
        for key in std::mem::take(&mut self.touched) {
            self.data.reaccount(&key);
        }
    }

    // ---- key access used by exec.rs ----

    /// Whether `key` exists and has not expired; a primary deletes it when it has.
    /// Counts as an access for LRU.
    pub(crate) fn live(&mut self, key: &str) -> bool {
        self.live_index(key).is_some()
    }

    /// [`Engine::live`], giving the key's position in the keyspace: the accessors below
    /// reach the entry through it rather than hashing the key a second time.
    fn live_index(&mut self, key: &str) -> Option<usize> {
        let now = self.now_ms;
        let (i, _, e) = self.data.keys.get_full_mut(key)?;
        if e.expire_at.is_some_and(|at| now > at) {
            match self.mode {
                Mode::Primary => {
                    self.delete_expired(key);
                    return None;
                }
                Mode::ReplicaRead => return None,
                Mode::Apply => {}
            }
        }
        self.lru_clock += 1;
        e.lru = self.lru_clock;
        Some(i)
    }

    pub(crate) fn read(&mut self, key: &str) -> Option<&Value> {
        let i = self.live_index(key)?;
        Some(&self.data.keys[i].value)
    }

    pub(crate) fn entry(&mut self, key: &str) -> Option<&Entry> {
        let i = self.live_index(key)?;
        Some(&self.data.keys[i])
    }

    /// Mutable access to a live key's value: marks it modified (WATCH) and re-accounted.
    pub(crate) fn write(&mut self, key: &str) -> Option<&mut Value> {
        let i = self.live_index(key)?;
        self.signal_modified(key);
        self.touched.push(key.to_string());
        Some(&mut self.data.keys[i].value)
    }

    /// Stores a new value (replacing any), keeping no TTL.
    pub(crate) fn put(&mut self, key: &str, value: Value) {
        self.signal_modified(key);
        self.lru_clock += 1;
        self.data.insert(key.to_string(), value, self.lru_clock);
    }

    pub(crate) fn delete(&mut self, key: &str) -> bool {
        if !self.live(key) {
            return false;
        }
        self.data.remove(key);
        self.signal_modified(key);
        true
    }

    pub(crate) fn set_expire(&mut self, key: &str, at: Option<i64>) {
        self.signal_modified(key);
        self.data.set_expire(key, at);
    }

    pub(crate) fn propagate(&mut self, cmd: Command) {
        self.effects.push(cmd);
    }

    pub(crate) fn flush_all(&mut self) {
        let watched: Vec<String> = self
            .watchers
            .keys()
            .filter(|k| self.data.keys.contains_key(*k))
            .cloned()
            .collect();
        for k in watched {
            self.signal_modified(&k);
        }
        self.data.clear();
    }

    /// The value under `key` if it is live and of the wanted type; WRONGTYPE otherwise.
    pub(crate) fn typed<T>(
        &mut self,
        key: &str,
        pick: impl FnOnce(&Value) -> Option<&T>,
    ) -> Result<Option<&T>, Reply> {
        match self.read(key) {
            None => Ok(None),
            Some(v) => pick(v)
                .map(Some)
                .ok_or_else(|| Reply::error(errors::WRONGTYPE)),
        }
    }

    /// Mutable access to a value of the wanted type, created empty when absent.
    pub(crate) fn typed_mut<T>(
        &mut self,
        key: &str,
        make: fn() -> Value,
        pick: impl Fn(&mut Value) -> Option<&mut T>,
    ) -> Result<&mut T, Reply> {
        match self.read(key) {
            Some(v) if v.kind() != make().kind() => return Err(Reply::error(errors::WRONGTYPE)),
            Some(_) => {}
            None => self.put(key, make()),
        }
        let v = self.write(key).expect("present: checked or just stored");
        Ok(pick(v).expect("kind checked above"))
    }

    pub(crate) fn lookup_str(&mut self, key: &str) -> Result<Option<&String>, Reply> {
        self.typed(key, |v| if let Value::Str(s) = v { Some(s) } else { None })
    }

    pub(crate) fn lookup_list(&mut self, key: &str) -> Result<Option<&List>, Reply> {
        self.typed(key, |v| {
            if let Value::List(l) = v {
                Some(l)
            } else {
                None
            }
        })
    }

    pub(crate) fn lookup_hash(&mut self, key: &str) -> Result<Option<&Hash>, Reply> {
        self.typed(key, |v| {
            if let Value::Hash(h) = v {
                Some(h)
            } else {
                None
            }
        })
    }

    pub(crate) fn lookup_set(&mut self, key: &str) -> Result<Option<&Set>, Reply> {
        self.typed(key, |v| if let Value::Set(s) = v { Some(s) } else { None })
    }

    pub(crate) fn lookup_zset(&mut self, key: &str) -> Result<Option<&ZSet>, Reply> {
        self.typed(key, |v| {
            if let Value::ZSet(z) = v {
                Some(z)
            } else {
                None
            }
        })
    }

    pub(crate) fn list_mut(&mut self, key: &str) -> Result<&mut List, Reply> {
        self.signal_ready(key);
        self.typed_mut(
            key,
            || Value::List(List::default()),
            |v| {
                if let Value::List(l) = v {
                    Some(l)
                } else {
                    None
                }
            },
        )
    }

    pub(crate) fn hash_mut(&mut self, key: &str) -> Result<&mut Hash, Reply> {
        self.typed_mut(
            key,
            || Value::Hash(Hash::default()),
            |v| {
                if let Value::Hash(h) = v {
                    Some(h)
                } else {
                    None
                }
            },
        )
    }

    pub(crate) fn set_mut(&mut self, key: &str) -> Result<&mut Set, Reply> {
        self.typed_mut(
            key,
            || Value::Set(Set::default()),
            |v| {
                if let Value::Set(s) = v {
                    Some(s)
                } else {
                    None
                }
            },
        )
    }

    pub(crate) fn zset_mut(&mut self, key: &str) -> Result<&mut ZSet, Reply> {
        self.signal_ready(key);
        self.typed_mut(
            key,
            || Value::ZSet(ZSet::default()),
            |v| {
                if let Value::ZSet(z) = v {
                    Some(z)
                } else {
                    None
                }
            },
        )
    }

    // ---- WATCH ----

    fn signal_modified(&mut self, key: &str) {
        if let Some(clients) = self.watchers.get(key) {
            self.dirty_cas.extend(clients.iter().copied());
        }
    }

    pub(crate) fn watch(&mut self, client: ClientId, key: &str) {
        self.watchers
            .entry(key.to_string())
            .or_default()
            .insert(client);
        self.watching
            .entry(client)
            .or_default()
            .insert(key.to_string());
    }

    /// Forgets `client`'s watched keys and its dirty flag (after EXEC, DISCARD, UNWATCH).
    pub(crate) fn unwatch_all(&mut self, client: ClientId) {
        for key in self.watching.remove(&client).unwrap_or_default() {
            if let Some(set) = self.watchers.get_mut(&key) {
                set.remove(&client);
                if set.is_empty() {
                    self.watchers.remove(&key);
                }
            }
        }
        self.dirty_cas.remove(&client);
    }

    /// Whether a key `client` watches was modified since it called WATCH.
    pub(crate) fn is_dirty(&self, client: ClientId) -> bool {
        self.dirty_cas.contains(&client)
    }

    // ---- blocked pops ----

    /// Pops from the first non-empty list among `keys` (BLPOP's immediate path).
    pub(crate) fn pop_first(
        &mut self,
        keys: &[String],
        from_right: bool,
    ) -> Result<Option<Reply>, Reply> {
        for key in keys {
            let len = self.lookup_list(key)?.map_or(0, |l| l.len());
            if len > 0 {
                let v = self.pop_one(key, from_right);
                return Ok(Some(Reply::bulks([key.clone(), v])));
            }
        }
        Ok(None)
    }

    fn pop_one(&mut self, key: &str, from_right: bool) -> String {
        let Some(Value::List(l)) = self.write(key) else {
            unreachable!("caller checked a non-empty list")
        };
        let v = if from_right {
            l.pop_back()
        } else {
            l.pop_front()
        }
        .expect("non-empty");
        let cmd = if from_right {
            Command::RPop {
                key: key.to_string(),
                count: None,
            }
        } else {
            Command::LPop {
                key: key.to_string(),
                count: None,
            }
        };
        self.propagate(cmd);
        v
    }

    /// Queues `client` on each of `keys`, behind the clients already waiting there.
    pub(crate) fn block(&mut self, client: ClientId, keys: &[String], from_right: bool) {
        self.block_then(client, keys, from_right, Then::Reply);
    }

    /// [`Engine::block`] for BLMOVE and BZPOPMIN/BZPOPMAX.
    pub(crate) fn block_then(
        &mut self,
        client: ClientId,
        keys: &[String],
        from_right: bool,
        then: Then,
    ) {
        for k in keys {
            self.blocked_keys
                .entry(k.clone())
                .or_default()
                .push_back(client);
        }
        self.blocked.insert(
            client,
            Blocked {
                keys: keys.to_vec(),
                from_right,
                stream_read: None,
                then,
            },
        );
    }

    /// Queues `client`, blocked in a stream read, on each of its streams.
    pub(crate) fn block_stream_read(&mut self, client: ClientId, read: StreamCommand) {
        let keys: Vec<String> = read.keys().into_iter().map(str::to_string).collect();
        self.block(client, &keys, false);
        if let Some(b) = self.blocked.get_mut(&client) {
            b.stream_read = Some(read);
        }
    }

    /// Marks `key` as having received data, for the clients blocked on it.
    pub(crate) fn signal_ready(&mut self, key: &str) {
        if self.blocked_keys.contains_key(key) && !self.ready_keys.iter().any(|k| k == key) {
            self.ready_keys.push(key.to_string());
        }
    }

    /// Removes `client` from every queue (timeout, disconnect, or served).
    pub(crate) fn unblock(&mut self, client: ClientId) {
        let Some(b) = self.blocked.remove(&client) else {
            return;
        };
        for k in b.keys {
            if let Some(q) = self.blocked_keys.get_mut(&k) {
                q.retain(|c| *c != client);
                if q.is_empty() {
                    self.blocked_keys.remove(&k);
                }
            }
        }
    }

    pub fn is_blocked(&self, client: ClientId) -> bool {
        self.blocked.contains_key(&client)
    }

    /// Serves clients blocked on lists that received elements, each list's clients in the
    /// order they blocked (FIFO), until the list is empty or nobody waits. Returns the
    /// replies to deliver. Call after each top-level step, as Redis does after a command.
    pub fn serve_blocked(&mut self) -> Vec<(ClientId, Reply)> {
        let mut served = Vec::new();
        while !self.ready_keys.is_empty() {
            for key in std::mem::take(&mut self.ready_keys) {
                // Stream readers are all offered the new entries (XREAD does not consume;
                // XREADGROUP's first reader takes them), in the order they blocked.
                let waiting: Vec<ClientId> = self
                    .blocked_keys
                    .get(&key)
                    .map(|q| q.iter().copied().collect())
                    .unwrap_or_default();
                for client in waiting {
                    let Some(read) = self
                        .blocked
                        .get(&client)
                        .and_then(|b| b.stream_read.clone())
                    else {
                        continue;
                    };
                    if let Ok(Some(reply)) = self.stream_read_now(&read) {
                        self.unblock(client);
                        served.push((client, reply));
                    }
                }
                // List waiters when the key holds a list, sorted-set waiters when it holds
                // a sorted set; the others stay blocked, as in Redis.
                loop {
                    let zset = match self.read(&key) {
                        Some(Value::List(l)) if !l.is_empty() => false,
                        Some(Value::ZSet(z)) if !z.is_empty() => true,
                        _ => break,
                    };
                    let Some(&client) = self.blocked_keys.get(&key).and_then(|q| {
                        q.iter().find(|c| {
                            self.blocked.get(c).is_some_and(|b| {
                                b.stream_read.is_none()
                                    && matches!(b.then, Then::ZPop { .. }) == zset
                            })
                        })
                    }) else {
                        break;
                    };
                    let b = self.blocked[&client].clone();
                    self.unblock(client);
                    let reply = match b.then {
                        Then::Reply => {
                            let v = self.pop_one(&key, b.from_right);
                            Reply::bulks([key.clone(), v])
                        }
                        Then::ZPop { max } => self.zpop_one(&key, max),
                        Then::Move { destination, to } => {
                            let from = if b.from_right { End::Right } else { End::Left };
                            self.lmove(&key, &destination, from, to)
                                .unwrap_or_else(|e| e)
                        }
                    };
                    served.push((client, reply));
                }
                self.settle();
            }
        }
        served
    }

    /// Forgets everything about a disconnected client.
    pub fn disconnect(&mut self, client: ClientId) {
        self.unwatch_all(client);
        self.unblock(client);
    }
}
