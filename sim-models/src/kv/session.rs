//! One connection's state on the server: MULTI queueing, WATCH, and whether a BLPOP
//! must block. Pure, like the engine it drives: the server shell does the waiting.

use sim_runtime::time::{Duration, Instant};

use super::command::{errors, Command, Reply};
use super::ext::ExtCommand;
use super::state::{ClientId, Engine};
use super::stream::StreamCommand;

/// What the server does with a command.
#[derive(Debug, PartialEq)]
pub enum Step {
    Reply(Reply),
    /// The client now waits in the engine's queues; reply Nil after `timeout` (zero:
    /// never) unless `Engine::serve_blocked` serves it first.
    Blocked {
        timeout: Duration,
    },
}

/// A connection's MULTI state.
#[derive(Debug)]
pub struct Session {
    id: ClientId,
    queued: Option<Vec<Command>>,
    /// A command was refused while queueing: EXEC must answer EXECABORT.
    failed: bool,
}

impl Session {
    pub fn new(id: ClientId) -> Self {
        Session {
            id,
            queued: None,
            failed: false,
        }
    }

    pub fn id(&self) -> ClientId {
        self.id
    }

    pub fn in_multi(&self) -> bool {
        self.queued.is_some()
    }

    /// Marks the open transaction as failed (a command was refused while queueing, e.g.
    /// by an injected fault), as Redis' `flagTransaction` does.
    pub fn flag_error(&mut self) {
        if self.in_multi() {
            self.failed = true;
        }
    }

    /// Handles one command at `now`. The caller then serves blocked clients and takes the
    /// engine's effects.
    pub fn handle(&mut self, engine: &mut Engine, cmd: Command, now: Instant) -> Step {
        self.handle_ref(engine, &cmd, now)
    }

    /// [`Session::handle`] for a command the caller keeps (the server still traces it
    /// afterwards); only a command queued by MULTI is copied.
    pub fn handle_ref(&mut self, engine: &mut Engine, cmd: &Command, now: Instant) -> Step {
        engine.begin(now);
        if self.in_multi() {
            return Step::Reply(self.in_transaction(engine, cmd));
        }
        let reply = match cmd {
            Command::Multi => {
                self.queued = Some(Vec::new());
                Reply::ok()
            }
            Command::Exec => Reply::error(errors::EXEC_WITHOUT_MULTI),
            Command::Discard => Reply::error(errors::DISCARD_WITHOUT_MULTI),
            Command::Watch { keys } if keys.is_empty() => Reply::error(errors::arity("watch")),
            Command::Watch { keys } => {
                for k in keys {
                    engine.watch(self.id, k);
                }
                Reply::ok()
            }
            Command::Unwatch => {
                engine.unwatch_all(self.id);
                Reply::ok()
            }
            Command::BLPop { keys, timeout } | Command::BRPop { keys, timeout }
                if !keys.is_empty() =>
            {
                let timeout = *timeout;
                if let Some(e) = engine.refuse(cmd) {
                    return Step::Reply(e);
                }
                let from_right = matches!(cmd, Command::BRPop { .. });
                let popped = engine.pop_first(keys, from_right);
                engine.settle();
                match popped {
                    Err(e) => e,
                    Ok(Some(r)) => r,
                    Ok(None) => {
                        engine.block(self.id, keys, from_right);
                        return Step::Blocked { timeout };
                    }
                }
            }
            Command::Ext(ext @ (ExtCommand::BLMove { .. } | ExtCommand::BZPop { .. })) => {
                if let Some(e) = engine.refuse(cmd) {
                    return Step::Reply(e);
                }
                let now_result = match ext {
                    ExtCommand::BLMove {
                        source,
                        destination,
                        from,
                        to,
                        ..
                    } => engine.blmove_now(source, destination, *from, *to),
                    ExtCommand::BZPop { keys, max, .. } => engine.bzpop_now(keys, *max),
                    _ => unreachable!("matched above"),
                };
                engine.settle();
                match now_result {
                    Err(e) => e,
                    Ok(Some(r)) => r,
                    Ok(None) => {
                        engine.block_ext(self.id, ext);
                        let timeout = match ext {
                            ExtCommand::BLMove { timeout, .. }
                            | ExtCommand::BZPop { timeout, .. } => *timeout,
                            _ => unreachable!("matched above"),
                        };
                        return Step::Blocked { timeout };
                    }
                }
            }
            Command::Stream(
                read @ StreamCommand::Read {
                    block: Some(ms), ..
                },
            ) => {
                if let Some(e) = engine.refuse(cmd) {
                    return Step::Reply(e);
                }
                let resolved = engine.resolve_last_ids(read);
                let now_read = resolved
                    .as_ref()
                    .map_err(Clone::clone)
                    .and_then(|r| engine.stream_read_now(r));
                engine.settle();
                match (now_read, resolved) {
                    (Err(e), _) | (_, Err(e)) => e,
                    (Ok(Some(reply)), _) => reply,
                    (Ok(None), Ok(resolved)) => {
                        engine.block_stream_read(self.id, resolved);
                        return Step::Blocked {
                            timeout: Duration::from_millis(*ms),
                        };
                    }
                }
            }
            cmd => match engine.refuse(cmd) {
                Some(e) => e,
                None => engine.run(cmd),
            },
        };
        Step::Reply(reply)
    }

    fn in_transaction(&mut self, engine: &mut Engine, cmd: &Command) -> Reply {
        match cmd {
            // Neither is queued, and neither fails the transaction (as in Redis).
            Command::Multi => Reply::error(errors::NESTED_MULTI),
            Command::Watch { .. } => Reply::error(errors::WATCH_IN_MULTI),
            Command::Discard => {
                self.queued = None;
                self.failed = false;
                engine.unwatch_all(self.id);
                Reply::ok()
            }
            Command::Exec => self.exec(engine),
            cmd => {
                if engine.is_replica() && cmd.is_write() {
                    self.failed = true;
                    return Reply::error(errors::READONLY);
                }
                // Queued commands take memory too: above maxmemory Redis refuses them all.
                if engine.out_of_memory() {
                    self.failed = true;
                    return Reply::error(errors::OOM);
                }
                self.queued.get_or_insert_with(Vec::new).push(cmd.clone());
                Reply::queued()
            }
        }
    }

    fn exec(&mut self, engine: &mut Engine) -> Reply {
        let queued = self.queued.take().unwrap_or_default();
        let failed = std::mem::take(&mut self.failed);
        let dirty = engine.is_dirty(self.id);
        engine.unwatch_all(self.id);
        if queued.iter().any(Command::may_grow) && engine.out_of_memory() {
            return Reply::error(format!(
                "EXECABORT Transaction discarded because of: {}",
                errors::OOM
            ));
        }
        if failed {
            return Reply::error(errors::EXECABORT);
        }
        if dirty {
            // A watched key changed: the transaction is not run.
            return Reply::Nil;
        }
        Reply::Array(queued.iter().map(|c| engine.run(c)).collect())
    }

    /// Forgets this connection's server-side state (it closed or the server restarted).
    pub fn close(self, engine: &mut Engine) {
        engine.disconnect(self.id);
    }
}
