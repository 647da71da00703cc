//! The semantics of each command: replies, errors, expiry and the effects it propagates,
//! following Redis 7's `t_string.c`, `expire.c`, `t_hash.c`, `t_list.c`, `t_set.c` and
//! `t_zset.c` (as documented; no code was copied).
//!
//! A command that does not change the dataset must not touch it: WATCH would see a change
//! that Redis does not report (SADD of an existing member, SREM of a missing one). So the
//! code checks with a read first and takes write access only when it will change something.

use std::collections::BTreeMap;

use super::command::{
    errors, Command, Condition, ExpireFlags, Reply, ScoreBound, SetExpiry, ZAddFlags,
};
use super::script::ScriptContext;
use super::state::{fmt_score, parse_i64_strict, Engine};
use super::value::{self, Hash, List, Value, ZSet};

type R = Result<Reply, Reply>;

fn err(s: impl Into<String>) -> Reply {
    Reply::error(s)
}

/// Commands whose variable-length argument list may not be empty (Redis' arity check).
fn missing_args(cmd: &Command) -> bool {
    use Command::*;
    match cmd {
        MGet { keys } | Del { keys } | Exists { keys } | Watch { keys } => keys.is_empty(),
        SInter { keys } | SUnion { keys } | Unlink { keys } => keys.is_empty(),
        MSet { pairs } | MSetNx { pairs } => pairs.is_empty(),
        HMGet { fields, .. } => fields.is_empty(),
        BLPop { keys, .. } | BRPop { keys, .. } => keys.is_empty(),
        HSet { pairs, .. } => pairs.is_empty(),
        HDel { fields: v, .. }
        | LPush { values: v, .. }
        | RPush { values: v, .. }
        | SAdd { members: v, .. }
        | SRem { members: v, .. }
        | ZRem { members: v, .. } => v.is_empty(),
        ZAdd { members, .. } => members.is_empty(),
        _ => false,
    }
}

impl Engine {
    pub(crate) fn dispatch(&mut self, cmd: &Command) -> Reply {
        if missing_args(cmd) {
            return err(errors::arity(cmd.name()));
        }
        self.dispatch_checked(cmd).unwrap_or_else(|e| e)
    }

    fn dispatch_checked(&mut self, cmd: &Command) -> R {
        use Command::*;
        Ok(match cmd {
            Ping { message: None } => Reply::Status("PONG".into()),
            Ping { message: Some(m) } => Reply::bulk(m.clone()),
            BadArguments { error, .. } => err(error.clone()),
            // The server parses a raw vector before it reaches a session; a queued or
            // scripted one is parsed here, with the same errors.
            Raw { argv } => match super::parse::parse(argv) {
                Ok(parsed) => return self.dispatch_checked(&parsed),
                Err(e) => e,
            },
            Get { key } => self.get(key)?,
            Set {
                key,
                value,
                condition,
                expiry,
                get,
            } => self.set(key, value, *condition, *expiry, *get, "set")?,
            GetSet { key, value } => {
                let old = self.lookup_str(key)?.cloned();
                self.put(key, Value::Str(value.clone()));
                self.propagate(plain_set(key, value, SetExpiry::None));
                Reply::opt_bulk(old)
            }
            MGet { keys } => Reply::Array(
                keys.iter()
                    .map(|k| match self.read(k) {
                        Some(Value::Str(s)) => Reply::Bulk(s.clone()),
                        _ => Reply::Nil,
                    })
                    .collect(),
            ),
            Del { keys } => {
                let deleted: Vec<String> =
                    keys.iter().filter(|k| self.delete(k)).cloned().collect();
                let n = deleted.len();
                if n > 0 {
                    self.propagate(Del { keys: deleted });
                }
                Reply::from_len(n)
            }
            Exists { keys } => Reply::from_len(keys.iter().filter(|k| self.live(k)).count()),
            Incr { key } => self.incr_by(key, 1, cmd)?,
            Decr { key } => self.incr_by(key, -1, cmd)?,
            IncrBy { key, delta } => self.incr_by(key, *delta, cmd)?,
            DecrBy { key, delta } => {
                let delta = delta
                    .checked_neg()
                    .ok_or_else(|| err(errors::DECREMENT_OVERFLOW))?;
                self.incr_by(key, delta, cmd)?
            }
            Expire {
                key,
                seconds,
                flags,
            } => self.expire(key, *seconds, 1000, false, *flags, "expire")?,
            PExpire { key, millis, flags } => {
                self.expire(key, *millis, 1, false, *flags, "pexpire")?
            }
            PExpireAt {
                key,
                at_millis,
                flags,
            } => self.expire(key, *at_millis, 1, true, *flags, "pexpireat")?,
            Ttl { key } => self.ttl(key, true),
            PTtl { key } => self.ttl(key, false),
            Persist { key } => {
                let has_ttl = self.entry(key).is_some_and(|e| e.expire_at.is_some());
                if has_ttl {
                    self.set_expire(key, None);
                    self.propagate(cmd.clone());
                }
                Reply::from_bool(has_ttl)
            }
            HSet { key, pairs } => {
                let h = self.hash_mut(key)?;
                let added = pairs
                    .iter()
                    .filter(|(f, v)| h.insert(f.clone(), v.clone()))
                    .count();
                self.propagate(cmd.clone());
                Reply::from_len(added)
            }
            HGet { key, field } => {
                Reply::opt_bulk(self.lookup_hash(key)?.and_then(|h| h.get(field)).cloned())
            }
            HDel { key, fields } => {
                let present = self
                    .lookup_hash(key)?
                    .is_some_and(|h| fields.iter().any(|f| h.get(f).is_some()));
                if !present {
                    return Ok(Reply::Int(0));
                }
                let h = existing_hash(self, key);
                let n = fields.iter().filter(|f| h.remove(f)).count();
                self.propagate(cmd.clone());
                Reply::from_len(n)
            }
            HIncrBy { key, field, delta } => {
                let cur = match self.lookup_hash(key)?.and_then(|h| h.get(field)) {
                    None => 0,
                    Some(v) => parse_i64_strict(v).ok_or_else(|| err(errors::HASH_NOT_INTEGER))?,
                };
                let new = cur
                    .checked_add(*delta)
                    .ok_or_else(|| err(errors::OVERFLOW))?;
                self.hash_mut(key)?.insert(field.clone(), new.to_string());
                self.propagate(cmd.clone());
                Reply::Int(new)
            }
            HGetAll { key } => Reply::bulks(
                self.lookup_hash(key)?
                    .map(|h| {
                        h.iter()
                            .flat_map(|(f, v)| [f.clone(), v.clone()])
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default(),
            ),
            HLen { key } => Reply::from_len(self.lookup_hash(key)?.map_or(0, Hash::len)),
            LPush { key, values } | RPush { key, values } => {
                let left = matches!(cmd, LPush { .. });
                let l = self.list_mut(key)?;
                for v in values {
                    if left {
                        l.push_front(v.clone());
                    } else {
                        l.push_back(v.clone());
                    }
                }
                let n = l.len();
                self.propagate(cmd.clone());
                Reply::from_len(n)
            }
            LPop { key, count } => self.pop(key, *count, false)?,
            RPop { key, count } => self.pop(key, *count, true)?,
            LLen { key } => Reply::from_len(self.lookup_list(key)?.map_or(0, List::len)),
            LRange { key, start, stop } => {
                let Some(l) = self.lookup_list(key)? else {
                    return Ok(Reply::Array(vec![]));
                };
                let (s, n) = range_indexes(l.len(), *start, *stop);
                Reply::bulks(l.iter().skip(s).take(n).cloned())
            }
            LRem { key, count, value } => {
                let present = self
                    .lookup_list(key)?
                    .is_some_and(|l| l.iter().any(|v| v == value));
                if !present {
                    return Ok(Reply::Int(0));
                }
                let limit = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
                let n = existing_list(self, key).remove(value, limit, *count < 0);
                self.propagate(cmd.clone());
                Reply::from_len(n)
            }
            // Outside a session (MULTI, scripts) a blocking pop does not block.
            BLPop { keys, .. } => self.pop_first(keys, false)?.unwrap_or(Reply::Nil),
            BRPop { keys, .. } => self.pop_first(keys, true)?.unwrap_or(Reply::Nil),
            SAdd { key, members } => {
                let grows = match self.lookup_set(key)? {
                    None => true,
                    Some(s) => members.iter().any(|m| !s.contains(m)),
                };
                if !grows {
                    return Ok(Reply::Int(0));
                }
                let s = self.set_mut(key)?;
                let n = members.iter().filter(|m| s.insert((*m).clone())).count();
                self.propagate(cmd.clone());
                Reply::from_len(n)
            }
            SRem { key, members } => {
                let present = self
                    .lookup_set(key)?
                    .is_some_and(|s| members.iter().any(|m| s.contains(m)));
                if !present {
                    return Ok(Reply::Int(0));
                }
                let s = existing_set(self, key);
                let n = members.iter().filter(|m| s.remove(m)).count();
                self.propagate(cmd.clone());
                Reply::from_len(n)
            }
            SIsMember { key, member } => {
                Reply::from_bool(self.lookup_set(key)?.is_some_and(|s| s.contains(member)))
            }
            SCard { key } => Reply::from_len(self.lookup_set(key)?.map_or(0, value::Set::len)),
            SMembers { key } => Reply::bulks(
                self.lookup_set(key)?
                    .map(|s| s.iter().cloned().collect::<Vec<_>>())
                    .unwrap_or_default(),
            ),
            ZAdd {
                key,
                flags,
                members,
            } => self.zadd(key, *flags, members, cmd)?,
            ZRangeByScore {
                key,
                min,
                max,
                with_scores,
                limit,
            } => self.zrangebyscore(key, *min, *max, *with_scores, *limit)?,
            ZRem { key, members } => {
                let present = self
                    .lookup_zset(key)?
                    .is_some_and(|z| members.iter().any(|m| z.score(m).is_some()));
                if !present {
                    return Ok(Reply::Int(0));
                }
                let z = existing_zset(self, key);
                let n = members.iter().filter(|m| z.remove(m)).count();
                self.propagate(cmd.clone());
                Reply::from_len(n)
            }
            ZScore { key, member } => Reply::opt_bulk(
                self.lookup_zset(key)?
                    .and_then(|z| z.score(member))
                    .map(fmt_score),
            ),
            ZCard { key } => Reply::from_len(self.lookup_zset(key)?.map_or(0, ZSet::len)),
            Eval { script, keys, args } => {
                let mut ctx = ScriptContext { engine: self };
                script.run(&mut ctx, keys, args)
            }
            EvalLua { source, keys, args } => self.eval_lua(|vm, d| vm.eval(source, keys, args, d)),
            EvalSha { sha, keys, args } => self.eval_lua(|vm, d| vm.eval_sha(sha, keys, args, d)),
            ScriptLoad { source } => match self.lua_vm().load(source) {
                Ok(sha) => Reply::bulk(sha),
                Err(e) => e,
            },
            ScriptExists { shas } => {
                let vm = self.lua_vm();
                Reply::Array(
                    shas.iter()
                        .map(|s| Reply::from_bool(vm.exists(s)))
                        .collect(),
                )
            }
            ScriptFlush => {
                self.lua_vm().flush();
                Reply::ok()
            }
            Stream(c) => self.stream(c)?,
            Ext(c) => self.ext(c)?,
            // Pub/Sub belongs to connections, which the server shell has and a MULTI or
            // a script does not.
            Subscribe { .. }
            | Unsubscribe { .. }
            | PSubscribe { .. }
            | PUnsubscribe { .. }
            | Publish { .. }
            | PubSubChannels { .. }
            | PubSubNumSub { .. }
            | PubSubNumPat => err(format!(
                "ERR '{}' inside MULTI or a script is not modelled",
                cmd.name()
            )),
            DbSize => Reply::from_len(self.data.len()),
            FlushAll => {
                self.flush_all();
                self.propagate(FlushAll);
                Reply::ok()
            }
            ExpireAt {
                key,
                seconds,
                flags,
            } => self.expire(key, *seconds, 1000, true, *flags, "expireat")?,
            SetNx { key, value } => {
                let done = self.set(key, value, Condition::Nx, SetExpiry::None, false, "setnx")?;
                Reply::from_bool(done == Reply::ok())
            }
            SetEx {
                key,
                ttl,
                unit_ms,
                value,
            } => {
                let expiry = if *unit_ms == 1000 {
                    SetExpiry::Ex(*ttl)
                } else {
                    SetExpiry::Px(*ttl)
                };
                self.set(key, value, Condition::Always, expiry, false, cmd.name())?
            }
            MSet { pairs } => {
                for (k, v) in pairs {
                    self.put(k, Value::Str(v.clone()));
                    self.propagate(plain_set(k, v, SetExpiry::None));
                }
                Reply::ok()
            }
            MSetNx { pairs } => {
                if pairs.iter().any(|(k, _)| self.live(k)) {
                    return Ok(Reply::Int(0));
                }
                for (k, v) in pairs {
                    self.put(k, Value::Str(v.clone()));
                    self.propagate(plain_set(k, v, SetExpiry::None));
                }
                Reply::Int(1)
            }
            Append { key, value } => {
                let len = match self.lookup_str(key)?.map(String::len) {
                    // APPEND keeps the key's TTL.
                    Some(_) => match self.write(key) {
                        Some(Value::Str(s)) => {
                            s.push_str(value);
                            s.len()
                        }
                        _ => unreachable!("checked by a read of the same key"),
                    },
                    None => {
                        self.put(key, Value::Str(value.clone()));
                        value.len()
                    }
                };
                self.propagate(cmd.clone());
                Reply::from_len(len)
            }
            GetDel { key } => {
                let old = self.lookup_str(key)?.cloned();
                if old.is_some() {
                    self.delete(key);
                    self.propagate(Del {
                        keys: vec![key.clone()],
                    });
                }
                Reply::opt_bulk(old)
            }
            StrLen { key } => Reply::from_len(self.lookup_str(key)?.map_or(0, String::len)),
            HMGet { key, fields } => {
                let h = self.lookup_hash(key)?;
                Reply::Array(
                    fields
                        .iter()
                        .map(|f| Reply::opt_bulk(h.and_then(|h| h.get(f)).cloned()))
                        .collect(),
                )
            }
            HExists { key, field } => Reply::from_bool(
                self.lookup_hash(key)?
                    .is_some_and(|h| h.get(field).is_some()),
            ),
            HSetNx { key, field, value } => {
                if self
                    .lookup_hash(key)?
                    .is_some_and(|h| h.get(field).is_some())
                {
                    return Ok(Reply::Int(0));
                }
                self.hash_mut(key)?.insert(field.clone(), value.clone());
                self.propagate(cmd.clone());
                Reply::Int(1)
            }
            LIndex { key, index } => {
                let Some(l) = self.lookup_list(key)? else {
                    return Ok(Reply::Nil);
                };
                let index = parse_i64_strict(index).ok_or_else(|| err(errors::NOT_INTEGER))?;
                let len = i64::try_from(l.len()).unwrap_or(i64::MAX);
                let i = if index < 0 { len + index } else { index };
                let item = usize::try_from(i).ok().and_then(|i| l.iter().nth(i));
                Reply::opt_bulk(item.cloned())
            }
            LTrim { key, start, stop } => {
                let Some(len) = self.lookup_list(key)?.map(List::len) else {
                    return Ok(Reply::ok());
                };
                let (s, n) = range_indexes(len, *start, *stop);
                if (s, n) == (0, len) {
                    return Ok(Reply::ok());
                }
                let l = existing_list(self, key);
                for _ in 0..s {
                    l.pop_front();
                }
                while l.len() > n {
                    l.pop_back();
                }
                self.propagate(cmd.clone());
                Reply::ok()
            }
            SInter { keys } | SUnion { keys } => {
                let union = matches!(cmd, SUnion { .. });
                let mut sets = Vec::with_capacity(keys.len());
                for k in keys {
                    sets.push(
                        self.lookup_set(k)?
                            .map(|s| s.iter().cloned().collect::<Vec<_>>()),
                    );
                }
                let mut out: std::collections::BTreeSet<String> = Default::default();
                if union {
                    out.extend(sets.into_iter().flatten().flatten());
                } else if sets.iter().all(Option::is_some) {
                    let mut sets = sets.into_iter().flatten();
                    out.extend(sets.next().unwrap_or_default());
                    for s in sets {
                        let s: std::collections::BTreeSet<String> = s.into_iter().collect();
                        out.retain(|m| s.contains(m));
                    }
                }
                Reply::bulks(out)
            }
            ZIncrBy { key, delta, member } => {
                let cur = self.lookup_zset(key)?.and_then(|z| z.score(member));
                let new = cur.unwrap_or(0.0) + delta;
                if new.is_nan() {
                    return Err(err("ERR resulting score is not a number (NaN)"));
                }
                self.zset_mut(key)?.insert(member.clone(), new);
                self.propagate(ZAdd {
                    key: key.clone(),
                    flags: ZAddFlags::default(),
                    members: vec![(new, member.clone())],
                });
                Reply::bulk(fmt_score(new))
            }
            ZRank { key, member } => {
                let rank = self
                    .lookup_zset(key)?
                    .and_then(|z| z.iter().position(|(m, _)| m == member));
                rank.map_or(Reply::Nil, Reply::from_len)
            }
            Type { key } => Reply::Status(
                match self.read(key).map(Value::kind) {
                    None => "none",
                    Some(value::Kind::String) => "string",
                    Some(value::Kind::List) => "list",
                    Some(value::Kind::Hash) => "hash",
                    Some(value::Kind::Set) => "set",
                    Some(value::Kind::ZSet) => "zset",
                    Some(value::Kind::Stream) => "stream",
                }
                .into(),
            ),
            Unlink { keys } => {
                return self.dispatch_checked(&Del { keys: keys.clone() });
            }
            Keys { pattern } => {
                let names: Vec<String> = self.data.key_names().cloned().collect();
                let matching = names
                    .into_iter()
                    .filter(|k| super::pubsub::glob_match(pattern.as_bytes(), k.as_bytes(), false));
                let live: Vec<String> = matching.filter(|k| self.live(k)).collect();
                Reply::bulks(live)
            }
            // Inside EXEC: EXEC has already forgotten the connection's watched keys.
            Unwatch => Reply::ok(),
            // Connection state: only a `Session` can run these.
            Multi | Exec | Discard | Watch { .. } => {
                err(format!("ERR '{}' needs a client session", cmd.name()))
            }
        })
    }

    /// GET's semantics, for [`ScriptContext::get`] as well as the `Get` command.
    pub(crate) fn get(&mut self, key: &str) -> R {
        Ok(Reply::opt_bulk(self.lookup_str(key)?.cloned()))
    }

    pub(crate) fn set(
        &mut self,
        key: &str,
        value: &str,
        condition: Condition,
        expiry: SetExpiry,
        get: bool,
        name: &str,
    ) -> R {
        let invalid = || err(errors::invalid_expire(name));
        let now = self.now_ms;
        let at = match expiry {
            SetExpiry::None | SetExpiry::KeepTtl => None,
            SetExpiry::Ex(n) | SetExpiry::Px(n) | SetExpiry::ExAt(n) | SetExpiry::PxAt(n)
                if n <= 0 =>
            {
                return Err(invalid())
            }
            SetExpiry::Ex(n) => Some(
                n.checked_mul(1000)
                    .and_then(|ms| ms.checked_add(now))
                    .ok_or_else(invalid)?,
            ),
            SetExpiry::Px(n) => Some(n.checked_add(now).ok_or_else(invalid)?),
            SetExpiry::ExAt(n) => Some(n.checked_mul(1000).ok_or_else(invalid)?),
            SetExpiry::PxAt(n) => Some(n),
        };
        let old = if get {
            self.lookup_str(key)?.cloned()
        } else {
            None
        };
        let found = self.live(key);
        let answer = |done: bool, old: Option<String>| match (get, done) {
            (true, _) => Reply::opt_bulk(old),
            (false, true) => Reply::ok(),
            (false, false) => Reply::Nil,
        };
        if (condition == Condition::Nx && found) || (condition == Condition::Xx && !found) {
            return Ok(answer(false, old));
        }
        let kept = match expiry {
            SetExpiry::KeepTtl => self.data.get(key).and_then(|e| e.expire_at),
            _ => None,
        };
        self.put(key, Value::Str(value.to_string()));
        let at = at.or(kept);
        self.set_expire(key, at);
        let propagated = match at {
            Some(at) => SetExpiry::PxAt(at),
            None => SetExpiry::None,
        };
        self.propagate(plain_set(key, value, propagated));
        Ok(answer(true, old))
    }

    fn incr_by(&mut self, key: &str, delta: i64, cmd: &Command) -> R {
        let cur = match self.lookup_str(key)? {
            None => None,
            Some(s) => Some(parse_i64_strict(s).ok_or_else(|| err(errors::NOT_INTEGER))?),
        };
        let new = cur
            .unwrap_or(0)
            .checked_add(delta)
            .ok_or_else(|| err(errors::OVERFLOW))?;
        match cur {
            // INCR keeps the key's TTL.
            Some(_) => {
                if let Some(Value::Str(s)) = self.write(key) {
                    *s = new.to_string();
                }
            }
            None => self.put(key, Value::Str(new.to_string())),
        }
        self.propagate(cmd.clone());
        Ok(Reply::Int(new))
    }

    fn expire(
        &mut self,
        key: &str,
        n: i64,
        unit_ms: i64,
        absolute: bool,
        flags: ExpireFlags,
        name: &str,
    ) -> R {
        if flags.nx && (flags.xx || flags.gt || flags.lt) {
            return Err(err(errors::EXPIRE_NX_OTHERS));
        }
        if flags.gt && flags.lt {
            return Err(err(errors::EXPIRE_GT_LT));
        }
        let base = if absolute { 0 } else { self.now_ms };
        let when = n
            .checked_mul(unit_ms)
            .and_then(|w| w.checked_add(base))
            .ok_or_else(|| err(errors::invalid_expire(name)))?;
        let Some(current) = self.entry(key).map(|e| e.expire_at) else {
            return Ok(Reply::Int(0));
        };
        let refused = (flags.nx && current.is_some())
            || (flags.xx && current.is_none())
            || (flags.gt && current.is_none_or(|c| when <= c))
            || (flags.lt && current.is_some_and(|c| when >= c));
        if refused {
            return Ok(Reply::Int(0));
        }
        if when <= self.now_ms && self.mode != super::state::Mode::Apply {
            // Already in the past: the key goes now, and replicas are told with a DEL.
            self.delete(key);
            self.propagate(Command::Del {
                keys: vec![key.to_string()],
            });
        } else {
            self.set_expire(key, Some(when));
            self.propagate(Command::PExpireAt {
                key: key.to_string(),
                at_millis: when,
                flags: ExpireFlags::default(),
            });
        }
        Ok(Reply::Int(1))
    }

    fn ttl(&mut self, key: &str, seconds: bool) -> Reply {
        let now = self.now_ms;
        match self.entry(key).map(|e| e.expire_at) {
            None => Reply::Int(-2),
            Some(None) => Reply::Int(-1),
            Some(Some(at)) => {
                let ms = (at - now).max(0);
                Reply::Int(if seconds { (ms + 500) / 1000 } else { ms })
            }
        }
    }

    fn pop(&mut self, key: &str, count: Option<u64>, from_right: bool) -> R {
        let Some(len) = self.lookup_list(key)?.map(List::len) else {
            return Ok(Reply::Nil);
        };
        let Some(count) = count else {
            let l = existing_list(self, key);
            let v = if from_right {
                l.pop_back()
            } else {
                l.pop_front()
            };
            self.propagate(pop_cmd(key, None, from_right));
            return Ok(Reply::opt_bulk(v));
        };
        if count == 0 {
            return Ok(Reply::Array(vec![]));
        }
        let n = usize::try_from(count).unwrap_or(usize::MAX).min(len);
        let l = existing_list(self, key);
        let items: Vec<String> = (0..n)
            .filter_map(|_| {
                if from_right {
                    l.pop_back()
                } else {
                    l.pop_front()
                }
            })
            .collect();
        self.propagate(pop_cmd(key, Some(n as u64), from_right));
        Ok(Reply::bulks(items))
    }

    fn zadd(&mut self, key: &str, flags: ZAddFlags, members: &[(f64, String)], cmd: &Command) -> R {
        if flags.nx && flags.xx {
            return Err(err(errors::NX_XX));
        }
        if (flags.nx && (flags.gt || flags.lt)) || (flags.gt && flags.lt) {
            return Err(err(errors::ZADD_GT_LT_NX));
        }
        if members.iter().any(|(s, _)| s.is_nan()) {
            return Err(err(errors::NOT_FLOAT));
        }
        // Plan against the current scores first, so that a ZADD that changes nothing does
        // not touch the key.
        let existing = self.lookup_zset(key)?;
        let mut planned: BTreeMap<&str, f64> = BTreeMap::new();
        let mut ops: Vec<(&str, f64)> = Vec::new();
        let (mut added, mut changed) = (0usize, 0usize);
        for (score, m) in members {
            let cur = planned
                .get(m.as_str())
                .copied()
                .or_else(|| existing.and_then(|z| z.score(m)));
            match cur {
                Some(cur) => {
                    let better = (!flags.gt || *score > cur) && (!flags.lt || *score < cur);
                    if flags.nx || *score == cur || !better {
                        continue;
                    }
                    changed += 1;
                }
                None => {
                    if flags.xx {
                        continue;
                    }
                    added += 1;
                }
            }
            planned.insert(m, *score);
            ops.push((m, *score));
        }
        if !ops.is_empty() {
            let z = self.zset_mut(key)?;
            for (m, s) in ops {
                z.insert(m.to_string(), s);
            }
            self.propagate(cmd.clone());
        }
        Ok(Reply::from_len(if flags.ch {
            added + changed
        } else {
            added
        }))
    }

    fn zrangebyscore(
        &mut self,
        key: &str,
        min: ScoreBound,
        max: ScoreBound,
        with_scores: bool,
        limit: Option<(i64, i64)>,
    ) -> R {
        if min.value.is_nan() || max.value.is_nan() {
            return Err(err(errors::MIN_MAX_NOT_FLOAT));
        }
        let (offset, count) = limit.unwrap_or((0, -1));
        let Some(z) = self.lookup_zset(key)? else {
            return Ok(Reply::Array(vec![]));
        };
        if offset < 0 {
            return Ok(Reply::Array(vec![]));
        }
        let take = usize::try_from(count).unwrap_or(usize::MAX);
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        for (m, s) in z
            .iter_from(min.value)
            .filter(|(_, s)| !(min.exclusive && *s == min.value))
            .take_while(|(_, s)| *s < max.value || (!max.exclusive && *s == max.value))
            .skip(skip)
            .take(take)
        {
            out.push(Reply::Bulk(m.clone()));
            if with_scores {
                out.push(Reply::Bulk(fmt_score(s)));
            }
        }
        Ok(Reply::Array(out))
    }
}

fn plain_set(key: &str, value: &str, expiry: SetExpiry) -> Command {
    Command::Set {
        key: key.to_string(),
        value: value.to_string(),
        condition: Condition::Always,
        expiry,
        get: false,
    }
}

fn pop_cmd(key: &str, count: Option<u64>, from_right: bool) -> Command {
    if from_right {
        Command::RPop {
            key: key.to_string(),
            count,
        }
    } else {
        Command::LPop {
            key: key.to_string(),
            count,
        }
    }
}

/// LRANGE's index arithmetic: (first index, how many).
fn range_indexes(len: usize, start: i64, stop: i64) -> (usize, usize) {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        len + stop
    } else {
        stop.min(len - 1)
    };
    if start > stop || start >= len {
        return (0, 0);
    }
    (start as usize, (stop - start + 1) as usize)
}

// Write access to a key a read just showed to hold the given type.
macro_rules! existing {
    ($name:ident, $variant:ident, $ty:ty) => {
        fn $name<'a>(engine: &'a mut Engine, key: &str) -> &'a mut $ty {
            match engine.write(key) {
                Some(Value::$variant(x)) => x,
                _ => unreachable!("checked by a read of the same key in this command"),
            }
        }
    };
}
existing!(existing_list, List, List);
existing!(existing_hash, Hash, Hash);
existing!(existing_set, Set, value::Set);
existing!(existing_zset, ZSet, ZSet);
