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
use super::stream::{IdSpec, Stream, StreamCommand};
use super::value::Value;

type R = Result<Reply, Reply>;

const NO_SUCH_KEY_FOR_GROUP: &str = "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.";

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
                let got = self
                    .stream_mut(key)?
                    .add(id, fields.clone(), trim.as_ref(), now)?;
                self.signal_ready(key);
                self.propagate(Command::Stream(Add {
                    key: key.clone(),
                    no_mkstream: false,
                    trim: trim.clone(),
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
                Some(s) => s.range(start, end, *count, *rev),
                None => Reply::Array(vec![]),
            },
            Del { key, ids } => {
                let n = match self.existing_stream_mut(key)? {
                    Some(s) => s.delete(ids),
                    None => 0,
                };
                if n > 0 {
                    self.propagate(Command::Stream(c.clone()));
                }
                Reply::Int(n)
            }
            TrimCmd { key, trim } => {
                let n = match self.existing_stream_mut(key)? {
                    Some(s) => s.trim(trim),
                    None => 0,
                };
                if n > 0 {
                    self.propagate(Command::Stream(c.clone()));
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
                mkstream,
            } => {
                if self.lookup_stream(key)?.is_none() {
                    if !mkstream {
                        return Err(Reply::error(NO_SUCH_KEY_FOR_GROUP));
                    }
                    // A bad ID creates nothing, as in Redis, which reads it first.
                    Stream::default().create_group(group, id)?;
                    self.stream_mut(key)?;
                }
                let s = self.stream_mut(key)?;
                s.create_group(group, id)?;
                self.propagate(Command::Stream(c.clone()));
                Reply::ok()
            }
            GroupDestroy { key, group } => {
                let Some(s) = self.existing_stream_mut(key)? else {
                    return Err(Reply::error(NO_SUCH_KEY_FOR_GROUP));
                };
                let gone = s.destroy_group(group);
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
                let Some(s) = self.existing_stream_mut(key)? else {
                    return Err(Reply::error(NO_SUCH_KEY_FOR_GROUP));
                };
                let n = s.create_consumer(key, group, consumer, now)?;
                self.propagate(Command::Stream(c.clone()));
                Reply::Int(n)
            }
            GroupDelConsumer {
                key,
                group,
                consumer,
            } => {
                let Some(s) = self.existing_stream_mut(key)? else {
                    return Err(Reply::error(NO_SUCH_KEY_FOR_GROUP));
                };
                let n = s.delete_consumer(key, group, consumer)?;
                self.propagate(Command::Stream(c.clone()));
                Reply::Int(n)
            }
            GroupSetId { key, group, id } => {
                let Some(s) = self.existing_stream_mut(key)? else {
                    return Err(Reply::error(NO_SUCH_KEY_FOR_GROUP));
                };
                s.set_group_id(key, group, id)?;
                self.propagate(Command::Stream(c.clone()));
                Reply::ok()
            }
            Ack { key, group, ids } => {
                let n = match self.existing_stream_mut(key)? {
                    Some(s) => s.ack(group, ids),
                    None => 0,
                };
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
                    return Err(Reply::error(format!(
                        "NOGROUP No such key '{key}' or consumer group '{group}'"
                    )));
                };
                match extended {
                    None => s.pending_summary(key, group)?,
                    Some((idle, start, end, count, consumer)) => s.pending_range(
                        key,
                        group,
                        *idle,
                        start,
                        end,
                        *count,
                        consumer.as_deref(),
                        now,
                    )?,
                }
            }
            Claim {
                key,
                group,
                consumer,
                min_idle,
                ids,
                idle,
                time,
                retry_count,
                force,
                just_id,
            } => {
                let Some(s) = self.existing_stream_mut(key)? else {
                    return Err(Reply::error(format!(
                        "NOGROUP No such key '{key}' or consumer group '{group}'"
                    )));
                };
                let reply = s.claim(
                    key,
                    group,
                    consumer,
                    *min_idle,
                    ids,
                    *idle,
                    *time,
                    *retry_count,
                    *force,
                    *just_id,
                    now,
                )?;
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
                    return Err(Reply::error(format!(
                        "NOGROUP No such key '{key}' or consumer group '{group}'"
                    )));
                };
                let reply = s.auto_claim(
                    key, group, consumer, *min_idle, start, *count, *just_id, now,
                )?;
                self.propagate(Command::Stream(c.clone()));
                reply
            }
        })
    }

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
        let mut out = Vec::new();
        for (key, id) in keys.iter().zip(ids) {
            let entries = match group {
                None => match self.lookup_stream(key)? {
                    Some(s) => s.read_after(id, count)?,
                    None => vec![],
                },
                Some((g, consumer)) => {
                    if id == "$" {
                        return Err(Reply::error(
                            "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
                        ));
                    }
                    let Some(s) = self.existing_stream_mut(key)? else {
                        return Err(Reply::error(format!(
                            "NOGROUP No such key '{key}' or consumer group '{g}' in XREADGROUP with GROUP option"
                        )));
                    };
                    s.read_group(key, g, consumer, id, count, noack, now)?
                }
            };
            // A history read (an ID, not `>`) answers every stream, even empty.
            if !entries.is_empty() || (group.is_some() && id != ">") {
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
