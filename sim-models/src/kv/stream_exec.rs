//! The stream commands on the engine: key lookup with WRONGTYPE, stream creation (or not,
//! with NOMKSTREAM and XGROUP CREATE without MKSTREAM), the clock, and the effects a write
//! propagates. The semantics themselves are in [`super::stream`].
//!
//! An XADD with an automatic ID propagates with the ID it got, so that the AOF and the
//! replica store the same entry, as Redis rewrites it. `BLOCK` on XREAD and XREADGROUP is
//! the session's business (it blocks the client when [`Engine::stream_read_now`] finds
//! nothing, with `$` resolved); here, as inside MULTI and scripts, a read never blocks.

use super::command::{errors, Command, Reply};
use super::state::Engine;
use super::stream::{
    no_group, parse_id, parse_strict_id, xgroup_no_group, IdSpec, Stream, StreamCommand, StreamId,
    Trim, TrimBy,
};
use super::stream_command::{group_syntax, parse_claim_args};
use super::value::Value;

type R = Result<Reply, Reply>;

const NO_SUCH_KEY_FOR_GROUP: &str = "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.";

const DOLLAR_IN_XREADGROUP: &str = "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.";
const GT_IN_XREAD: &str = "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.";

/// IDs of XDEL and XACK, all read before any is used (all or nothing, as in Redis).
fn strict_ids(ids: &[String]) -> Result<Vec<StreamId>, Reply> {
    ids.iter().map(|id| parse_strict_id(id)).collect()
}

/// The trim a replica and the AOF get: exact, to the length the stream was left with, so
/// that they end with the same entries whatever their nodes (Redis rewrites `~` trims
/// the same way).
fn exact_trim(trim: &Trim, s: &Stream) -> Trim {
    if trim.approx {
        Trim::exact(TrimBy::MaxLen(s.len() as u64))
    } else {
        *trim
    }
}

impl Engine {
    fn lookup_stream(&mut self, key: &str) -> Result<Option<&Stream>, Reply> {
        self.typed(key, |v| {
            if let Value::Stream(s) = v {
                Some(&**s)
            } else {
                None
            }
        })
    }

    /// The stream under `key` for writing; `None` when absent (nothing is created).
    fn existing_stream_mut(&mut self, key: &str) -> Result<Option<&mut Stream>, Reply> {
        match self.read(key) {
            None => return Ok(None),
            Some(Value::Stream(_)) => {}
            Some(_) => return Err(Reply::error(errors::WRONGTYPE)),
        }
        Ok(match self.write(key) {
            Some(Value::Stream(s)) => Some(&mut **s),
            _ => None,
        })
    }

    fn stream_mut(&mut self, key: &str) -> Result<&mut Stream, Reply> {
        self.typed_mut(
            key,
            || Value::Stream(Box::default()),
            |v| {
                if let Value::Stream(s) = v {
                    Some(&mut **s)
                } else {
                    None
                }
            },
        )
    }

    fn clock_ms(&self) -> u64 {
        u64::try_from(self.now_ms).unwrap_or(0)
    }

    pub(crate) fn stream(&mut self, c: &StreamCommand) -> R {
        use StreamCommand::*;
        let now = self.clock_ms();
        Ok(match c {
            Add {
                key,
                no_mkstream,
                trim,
                id,
                fields,
            } => {
                if *no_mkstream && self.lookup_stream(key)?.is_none() {
                    return Ok(Reply::Nil);
                }
                // Check the ID before creating the stream: a refused XADD creates nothing.
                if self.lookup_stream(key)?.is_none() {
                    if let IdSpec::Explicit(id) = id {
                        Stream::default().add(&IdSpec::Explicit(*id), vec![], None, now)?;
                    }
                }
                let s = self.stream_mut(key)?;
                let got = s.add(id, fields.clone(), trim.as_ref(), now)?;
                let trim = trim.map(|t| exact_trim(&t, s));
                self.signal_ready(key);
                self.propagate(Command::Stream(Add {
                    key: key.clone(),
                    no_mkstream: false,
                    trim,
                    id: IdSpec::Explicit(got),
                    fields: fields.clone(),
                }));
                Reply::bulk(got.to_string())
            }
            Len { key } => Reply::from_len(self.lookup_stream(key)?.map_or(0, Stream::len)),
            Range {
                key,
                start,
                end,
                count,
                rev,
            } => match self.lookup_stream(key)? {
                Some(s) => s.range(*start, *end, *count, *rev),
                None => Reply::Array(vec![]),
            },
            Del { key, ids } => {
                let Some(s) = self.existing_stream_mut(key)? else {
                    return Ok(Reply::Int(0));
                };
                let ids = strict_ids(ids)?;
                let n = s.delete(&ids);
                if n > 0 {
                    self.propagate(Command::Stream(c.clone()));
                }
                Reply::Int(n)
            }
            TrimCmd { key, trim } => {
                let Some(s) = self.existing_stream_mut(key)? else {
                    return Ok(Reply::Int(0));
                };
                let n = s.trim(trim);
                let exact = exact_trim(trim, s);
                if n > 0 {
                    self.propagate(Command::Stream(TrimCmd {
                        key: key.clone(),
                        trim: exact,
                    }));
                }
                Reply::Int(n as i64)
            }
            Read {
                group,
                count,
                noack,
                keys,
                ids,
                ..
            } => self.read_streams(group.as_ref(), *count, *noack, keys, ids, c)?,
            GroupCreate {
                key,
                group,
                id,
                options,
            } => {
                let mkstream = options.iter().any(|o| o.eq_ignore_ascii_case("mkstream"));
                let last = self.xgroup_stream(key, !mkstream)?.map(Stream::last_id);
                // `XGROUP CREATE key group id` takes at most three options.
                if options.len() > 3 {
                    return Err(group_syntax("CREATE"));
                }
                let start = match id.as_str() {
                    "$" => last.unwrap_or(StreamId::MIN),
                    id => parse_strict_id(id)?,
                };
                self.stream_mut(key)?.create_group(group, start)?;
                self.propagate(Command::Stream(c.clone()));
                Reply::ok()
            }
            GroupDestroy { key, group } => {
                let gone = self.xgroup_stream_mut(key)?.destroy_group(group);
                if gone {
                    self.propagate(Command::Stream(c.clone()));
                }
                Reply::from_bool(gone)
            }
            GroupCreateConsumer {
                key,
                group,
                consumer,
            } => {
                let s = self.xgroup_stream_mut(key)?;
                let n = s.create_consumer(key, group, consumer, now)?;
                self.propagate(Command::Stream(c.clone()));
                Reply::Int(n)
            }
            GroupDelConsumer {
                key,
                group,
                consumer,
            } => {
                let s = self.xgroup_stream_mut(key)?;
                let n = s.delete_consumer(key, group, consumer)?;
                self.propagate(Command::Stream(c.clone()));
                Reply::Int(n)
            }
            GroupSetId {
                key,
                group,
                id,
                options,
            } => {
                // Redis checks the key, then the group, then the argument count, then
                // the ID.
                let s = self.xgroup_stream_mut(key)?;
                let last = s.last_id();
                if !s.has_group(group) {
                    return Err(xgroup_no_group(key, group));
                }
                if !options.is_empty() && options.len() != 2 {
                    return Err(group_syntax("SETID"));
                }
                let id = match id.as_str() {
                    "$" => last,
                    id => parse_id(id)?,
                };
                s.set_group_id(key, group, id)?;
                self.propagate(Command::Stream(c.clone()));
                Reply::ok()
            }
            Ack { key, group, ids } => {
                // No key or no group: nothing to acknowledge, before the IDs are read.
                let s = match self.existing_stream_mut(key)? {
                    Some(s) if s.has_group(group) => s,
                    _ => return Ok(Reply::Int(0)),
                };
                let ids = strict_ids(ids)?;
                let n = s.ack(group, &ids);
                if n > 0 {
                    self.propagate(Command::Stream(c.clone()));
                }
                Reply::Int(n)
            }
            Pending {
                key,
                group,
                extended,
            } => {
                let Some(s) = self.lookup_stream(key)? else {
                    return Err(no_group(key, group, "XPENDING"));
                };
                match extended {
                    None => s.pending_summary(key, group)?,
                    Some(range) => s.pending_range(key, group, range, now)?,
                }
            }
            Claim {
                key,
                group,
                consumer,
                args,
            } => {
                let s = match self.existing_stream_mut(key)? {
                    Some(s) if s.has_group(group) => s,
                    _ => return Err(no_group(key, group, "XCLAIM")),
                };
                let parsed = parse_claim_args(args)?;
                let reply = s.claim(key, group, consumer, &parsed, now)?;
                self.propagate(Command::Stream(c.clone()));
                reply
            }
            AutoClaim {
                key,
                group,
                consumer,
                min_idle,
                start,
                count,
                just_id,
            } => {
                let Some(s) = self.existing_stream_mut(key)? else {
                    return Err(no_group(key, group, "XAUTOCLAIM"));
                };
                let reply = s.auto_claim(
                    key, group, consumer, *min_idle, *start, *count, *just_id, now,
                )?;
                self.propagate(Command::Stream(c.clone()));
                reply
            }
        })
    }

    /// The stream XGROUP works on: WRONGTYPE first, then (when `required`) the error for a
    /// missing key.
    fn xgroup_stream(&mut self, key: &str, required: bool) -> Result<Option<&Stream>, Reply> {
        match self.lookup_stream(key)? {
            None if required => Err(Reply::error(NO_SUCH_KEY_FOR_GROUP)),
            found => Ok(found),
        }
    }

    fn xgroup_stream_mut(&mut self, key: &str) -> Result<&mut Stream, Reply> {
        self.existing_stream_mut(key)?
            .ok_or_else(|| Reply::error(NO_SUCH_KEY_FOR_GROUP))
    }

    /// XREAD and XREADGROUP: every stream's type, group and ID is checked before any is
    /// read, as `xreadCommand` does; then each stream with something to serve answers.
    #[allow(clippy::too_many_arguments)]
    fn read_streams(
        &mut self,
        group: Option<&(String, String)>,
        count: Option<u64>,
        noack: bool,
        keys: &[String],
        ids: &[String],
        cmd: &StreamCommand,
    ) -> R {
        let now = self.clock_ms();
        let mut positions = Vec::with_capacity(keys.len());
        for (key, id) in keys.iter().zip(ids) {
            let s = self.lookup_stream(key)?;
            if let Some((g, _)) = group {
                if !s.is_some_and(|s| s.has_group(g)) {
                    return Err(no_group(key, g, "XREADGROUP"));
                }
            }
            let last = s.map_or(StreamId::MIN, Stream::last_id);
            positions.push(match (id.as_str(), group) {
                ("$", Some(_)) => return Err(Reply::error(DOLLAR_IN_XREADGROUP)),
                ("$", None) => Some(last),
                (">", Some(_)) => None,
                (">", None) => return Err(Reply::error(GT_IN_XREAD)),
                (id, _) => Some(parse_strict_id(id)?),
            });
        }
        let mut out = Vec::new();
        for (key, after) in keys.iter().zip(positions) {
            let entries = match (group, after) {
                (None, Some(after)) => match self.lookup_stream(key)? {
                    Some(s) => s.read_after(after, count),
                    None => None,
                },
                (Some((g, consumer)), None) => match self.existing_stream_mut(key)? {
                    Some(s) => s.read_group_new(key, g, consumer, count, noack, now)?,
                    None => None,
                },
                // A history read answers every stream, even with nothing pending.
                (Some((g, consumer)), Some(after)) => match self.existing_stream_mut(key)? {
                    Some(s) => Some(s.read_group_history(key, g, consumer, after, count, now)?),
                    None => None,
                },
                (None, None) => None,
            };
            if let Some(entries) = entries {
                out.push(Reply::Array(vec![
                    Reply::bulk(key.clone()),
                    Reply::Array(entries),
                ]));
            }
        }
        if group.is_some() && !out.is_empty() {
            self.propagate(Command::Stream(cmd.clone()));
        }
        if out.is_empty() {
            return Ok(Reply::Nil);
        }
        Ok(Reply::Array(out))
    }

    /// Runs a stream read now: `None` when it found nothing (a BLOCK read then waits).
    pub(crate) fn stream_read_now(&mut self, read: &StreamCommand) -> Result<Option<Reply>, Reply> {
        match self.stream(read)? {
            Reply::Nil => Ok(None),
            reply => Ok(Some(reply)),
        }
    }

    /// `read` with each `$` replaced by the stream's last ID now, so that a blocked XREAD
    /// waits for entries added after it blocked.
    pub(crate) fn resolve_last_ids(
        &mut self,
        read: &StreamCommand,
    ) -> Result<StreamCommand, Reply> {
        let mut read = read.clone();
        if let StreamCommand::Read { keys, ids, .. } = &mut read {
            for (key, id) in keys.iter().zip(ids.iter_mut()) {
                if id == "$" {
                    *id = self
                        .lookup_stream(key)?
                        .map_or_else(|| "0-0".to_string(), |s| s.last_id().to_string());
                }
            }
        }
        Ok(read)
    }
}
