//! The client-side history of register operations, recorded without the user writing it:
//! a [`KvClient`](super::KvClient) made with [`KvClient::recorded`](super::KvClient::recorded)
//! notes each GET, SET, DEL of one key and INCR/DECR(BY) it sends, with the virtual times of
//! its call and answer, and what the answer was, for the linearizability checker
//! ([`crate::check::linearizable`]).
//!
//! What an answer means for the history: a reply is the operation's result; an error
//! reply, or a connection refused before anything was sent, means the command did not run
//! (`Failed`); no answer (a timeout, a reset) means it may have run (`Unknown`), since a
//! request can reach the server and its reply be lost. SET with a condition or an expiry, and every other
//! command, are not register operations and are not recorded.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use sim_net::ConnectionFailure;
use sim_runtime::time;

use super::client::KvError;
use super::command::{Command, Condition, Reply, SetExpiry};
use crate::check::linearizable::{Call, History, Op, Outcome};

/// A shared, growing history: every client recorded into it appends here. Cheap to clone.
#[derive(Clone, Default)]
pub struct KvHistory {
    inner: Rc<Shared>,
}

#[derive(Default)]
struct Shared {
    ops: RefCell<Vec<Op>>,
    next_client: Cell<u32>,
}

impl std::fmt::Debug for KvHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KvHistory({} ops)", self.inner.ops.borrow().len())
    }
}

/// An operation in flight: where its entry is, to complete it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pending(usize);

impl KvHistory {
    pub fn new() -> Self {
        KvHistory::default()
    }

    /// A new client id (0, 1, ...), in the order clients are made.
    pub(crate) fn next_client(&self) -> u32 {
        let id = self.inner.next_client.get();
        self.inner.next_client.set(id + 1);
        id
    }

    /// Notes the call of `cmd` by `client`, if it is a register operation.
    pub(crate) fn invoke(&self, client: u32, cmd: &Command) -> Option<Pending> {
        let (key, call) = match cmd {
            Command::Get { key } => (key, Call::Read),
            Command::Set {
                key,
                value,
                condition: Condition::Always,
                expiry: SetExpiry::None,
                get: false,
            } => (key, Call::Write(Some(value.clone()))),
            Command::Del { keys } if keys.len() == 1 => (&keys[0], Call::Write(None)),
            Command::Incr { key } => (key, Call::Add(1)),
            Command::Decr { key } => (key, Call::Add(-1)),
            Command::IncrBy { key, delta } => (key, Call::Add(*delta)),
            Command::DecrBy { key, delta } => (key, Call::Add(delta.checked_neg()?)),
            _ => return None,
        };
        let now = time::now_global();
        let mut ops = self.inner.ops.borrow_mut();
        ops.push(Op {
            client,
            key: key.clone(),
            call,
            invoked: now,
            completed: now,
            outcome: Outcome::Unknown,
        });
        Some(Pending(ops.len() - 1))
    }

    /// Notes the answer to a call noted by [`KvHistory::invoke`].
    pub(crate) fn complete(&self, pending: Pending, result: &Result<Reply, KvError>) {
        let mut ops = self.inner.ops.borrow_mut();
        let op = &mut ops[pending.0];
        op.completed = time::now_global();
        op.outcome = match (result, &op.call) {
            (Err(KvError::Server(_)), _) => Outcome::Failed,
            // Refused or unreachable: the connection never opened, nothing was sent.
            (
                Err(KvError::Connection(
                    ConnectionFailure::Refused | ConnectionFailure::Unreachable,
                )),
                _,
            ) => Outcome::Failed,
            (Err(_), _) => Outcome::Unknown,
            (Ok(Reply::Bulk(v)), Call::Read) => Outcome::Read(Some(v.clone())),
            (Ok(Reply::Nil), Call::Read) => Outcome::Read(None),
            (Ok(Reply::Int(n)), Call::Add(_)) => Outcome::Added(*n),
            (Ok(_), Call::Write(_)) => Outcome::Written,
            // A reply of another shape: not a register's answer; it tells nothing.
            (Ok(_), _) => Outcome::Failed,
        };
    }

    /// A copy of everything recorded so far (calls still in flight count as unknown).
    pub fn history(&self) -> History {
        History {
            ops: self.inner.ops.borrow().clone(),
        }
    }

    pub fn len(&self) -> usize {
        self.inner.ops.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
