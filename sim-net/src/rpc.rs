//! Typed RPC over connections: `call(addr, request, timeout)` and `serve(port, handler)`.
//!
//! A caller keeps one multiplexed connection per (node, incarnation, server address,
//! types), with a reader task that hands each reply to its waiting call, so concurrent
//! calls share a connection as real clients do, and a keeper task that times calls out
//! (one timer at the earliest pending deadline). A server answers quick handlers in the connection's
//! task and gives a handler that waits its own task. A call fails with `RpcError`, which
//! is [`crate::ConnectionFailure`]: network errors reach it only through that type's
//! `From<NetError>`.

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::future::Future;
use std::rc::Rc;
use std::task::{Poll, Waker};

use sim_runtime::node::{self, NodeId};
use sim_runtime::task::{self, JoinHandle};
use sim_runtime::time::{self, Duration, Instant, Sleep};
use slab::Slab;

use crate::conn::{self, ConnSender, Kinds};
use crate::{Addr, NetError};

/// Why a call failed: the network's one classification of failures, seen from RPC.
pub type RpcError = crate::ConnectionFailure;

/// What travels on an RPC connection: a body and the id that pairs a reply with its call.
#[derive(Clone, Debug)]
pub struct Envelope<T> {
    pub id: u64,
    pub body: T,
}

struct Client<Req, Resp> {
    sender: ConnSender<Envelope<Req>>,
    /// Calls waiting for their reply. A call's id is its slot key plus the slot's
    /// generation, so a late reply can never land in a reused slot.
    pending: RefCell<Slab<Pending<Resp>>>,
    next_id: Cell<u64>,
    dead: Cell<bool>,
    /// Every call's deadline, earliest first, for the timeout keeper. Entries of calls
    /// that finished are not removed here but skipped when they reach the top.
    deadlines: RefCell<BinaryHeap<Reverse<(Instant, u64, u64)>>>,
    /// The deadline the keeper sleeps toward (`None`: it waits for a call), and its
    /// waker, so that a call with an earlier deadline can wake it to re-arm.
    keeper_armed: Cell<Option<Instant>>,
    keeper_waker: RefCell<Option<Waker>>,
}

/// One call waiting for its reply.
struct Pending<Resp> {
    generation: u32,
    result: Option<Result<Resp, RpcError>>,
    waker: Option<Waker>,
}

fn call_id(key: usize, generation: u32) -> u64 {
    (u64::from(generation) << 32) | key as u64
}

fn split_call_id(id: u64) -> (usize, u32) {
    ((id & 0xffff_ffff) as usize, (id >> 32) as u32)
}

impl<Req, Resp> Client<Req, Resp> {
    /// Completes a pending call unless it already has a result (the reply and the
    /// deadline can meet at one instant: the first to arrive wins).
    fn complete(&self, id: u64, result: Result<Resp, RpcError>) {
        let (key, generation) = split_call_id(id);
        let mut pending = self.pending.borrow_mut();
        if let Some(p) = pending.get_mut(key).filter(|p| p.generation == generation) {
            if p.result.is_none() {
                p.result = Some(result);
                if let Some(w) = p.waker.take() {
                    drop(pending);
                    w.wake();
                }
            }
        }
    }

    fn is_pending(&self, id: u64) -> bool {
        let (key, generation) = split_call_id(id);
        self.pending
            .borrow()
            .get(key)
            .is_some_and(|p| p.generation == generation && p.result.is_none())
    }

    /// Times out every call whose deadline has passed and drops finished calls' entries
    /// from the top; returns the earliest deadline still pending.
    fn expire_due(&self, now: Instant) -> Option<Instant> {
        loop {
            let top = self.deadlines.borrow().peek().map(|Reverse(e)| *e);
            let (deadline, _, id) = top?;
            if !self.is_pending(id) {
                self.deadlines.borrow_mut().pop();
            } else if deadline <= now {
                self.deadlines.borrow_mut().pop();
                self.complete(id, Err(RpcError::Timeout));
            } else {
                return Some(deadline);
            }
        }
    }

    /// Registers a call's deadline, waking the keeper if it must wake sooner.
    fn watch(&self, deadline: Instant, id: u64) {
        let mut heap = self.deadlines.borrow_mut();
        // Finished calls' entries sink out only when they reach the top; if they pile up
        // behind a long-pending call, sweep them all at once (amortised O(1) per call).
        if heap.len() > 64 && heap.len() > 4 * self.pending.borrow().len() {
            let pending = self.pending.borrow();
            heap.retain(|Reverse((_, _, id))| {
                let (key, generation) = split_call_id(*id);
                pending.get(key).is_some_and(|p| p.generation == generation)
            });
        }
        heap.push(Reverse((deadline, self.next_id.get(), id)));
        drop(heap);
        if self.keeper_armed.get().is_none_or(|armed| deadline < armed) {
            if let Some(w) = self.keeper_waker.borrow_mut().take() {
                w.wake();
            }
        }
    }
}

/// Times out the calls of one client: a single timer for all of them, at the earliest
/// pending deadline, instead of a timer set and cancelled by every call. Calls nearly
/// always finish long before their deadline, so the keeper wakes about once per timeout
/// period, however many calls go by.
async fn keep_deadlines<Req: 'static, Resp: 'static>(client: Rc<Client<Req, Resp>>) {
    let mut sleep: Option<Sleep> = None;
    std::future::poll_fn(|cx| loop {
        if client.dead.get() {
            // The reader failed every pending call already.
            return Poll::Ready(());
        }
        *client.keeper_waker.borrow_mut() = Some(cx.waker().clone());
        let next = client.expire_due(time::now_global());
        client.keeper_armed.set(next);
        let Some(at) = next else {
            sleep = None;
            return Poll::Pending;
        };
        if conn::poll_sleep(&mut sleep, at, cx).is_pending() {
            return Poll::Pending;
        }
    })
    .await;
}

type ClientKey = (NodeId, u32, Addr, TypeId);

#[derive(Default)]
struct Clients {
    map: RefCell<BTreeMap<ClientKey, Rc<dyn Any>>>,
}

thread_local! {
    /// This run's client table, cached as `state` caches the network (see there).
    static CLIENTS: RefCell<Option<Rc<Clients>>> = const { RefCell::new(None) };
}

fn clients() -> Rc<Clients> {
    CLIENTS.with(|c| {
        let mut slot = c.borrow_mut();
        match slot.as_ref() {
            Some(cl) if Rc::strong_count(cl) > 1 => Rc::clone(cl),
            _ => {
                let cl = sim_runtime::extension::<Clients>();
                *slot = Some(Rc::clone(&cl));
                cl
            }
        }
    })
}

fn cached<Req: 'static, Resp: 'static>(key: ClientKey) -> Option<Rc<Client<Req, Resp>>> {
    let clients = clients();
    let found = clients.map.borrow().get(&key).cloned()?;
    let c = found.downcast::<Client<Req, Resp>>().ok()?;
    // A connection whose peer died is useless even before its reader task notices.
    if c.dead.get() || !conn::is_open(c.sender.endpoint()) {
        clients.map.borrow_mut().remove(&key);
        None
    } else {
        Some(c)
    }
}

async fn connect_client<Req: Clone + 'static, Resp: Clone + 'static>(
    key: ClientKey,
    addr: Addr,
    timeout: Duration,
) -> Result<Rc<Client<Req, Resp>>, RpcError> {
    // The trace names a call's body, not its envelope.
    let kinds = Kinds::of::<Req, Resp>();
    let mut conn = conn::connect_as::<Envelope<Req>, Envelope<Resp>>(addr, timeout, kinds).await?;
    if let Some(c) = cached::<Req, Resp>(key) {
        // Another call connected first; share its connection.
        return Ok(c);
    }
    let client = Rc::new(Client {
        sender: conn.sender(),
        pending: RefCell::new(Slab::new()),
        next_id: Cell::new(0),
        dead: Cell::new(false),
        deadlines: RefCell::new(BinaryHeap::new()),
        keeper_armed: Cell::new(None),
        keeper_waker: RefCell::new(None),
    });
    clients()
        .map
        .borrow_mut()
        .insert(key, client.clone() as Rc<dyn Any>);
    let reader = Rc::clone(&client);
    task::spawn_named("rpc-client-reader", async move {
        let err = loop {
            match conn.recv().await {
                // A reply to a call that already timed out is dropped, as a real client
                // drops a late response.
                Ok(env) => reader.complete(env.id, Ok(env.body)),
                Err(e) => break RpcError::from(e),
            }
        };
        reader.dead.set(true);
        let ids: Vec<u64> = reader
            .pending
            .borrow()
            .iter()
            .map(|(key, p)| call_id(key, p.generation))
            .collect();
        for id in ids {
            reader.complete(id, Err(err));
        }
        if let Some(w) = reader.keeper_waker.borrow_mut().take() {
            w.wake();
        }
    })
    .detach();
    task::spawn_named("rpc-client-deadlines", keep_deadlines(Rc::clone(&client))).detach();
    Ok(client)
}

/// Removes a call's slot however the call ends, also when its future is dropped
/// mid-flight (a caller's own timeout or select), so that no slot is left behind.
struct SlotGuard<'a, Req, Resp> {
    client: &'a Client<Req, Resp>,
    slot: usize,
}

impl<Req, Resp> Drop for SlotGuard<'_, Req, Resp> {
    fn drop(&mut self) {
        let removed = self.client.pending.borrow_mut().try_remove(self.slot);
        drop(removed);
    }
}

/// Calls the server at `addr` and waits at most `timeout` for its reply.
pub async fn call<Req, Resp>(addr: Addr, request: Req, timeout: Duration) -> Result<Resp, RpcError>
where
    Req: Clone + 'static,
    Resp: Clone + 'static,
{
    let (me, incarnation) = node::current_with_incarnation();
    let key = (me, incarnation, addr, TypeId::of::<(Req, Resp)>());
    let deadline = time::now_global() + timeout;
    let client = match cached::<Req, Resp>(key) {
        Some(c) => c,
        None => connect_client::<Req, Resp>(key, addr, timeout).await?,
    };
    if time::now_global() >= deadline {
        // The connect used the whole budget.
        return Err(RpcError::Timeout);
    }
    let generation = client.next_id.get() as u32;
    let slot = client.pending.borrow_mut().insert(Pending {
        generation,
        result: None,
        waker: None,
    });
    let guard = SlotGuard {
        client: &client,
        slot,
    };
    let id = call_id(slot, generation);
    if let Err(e) = client.sender.send(Envelope { id, body: request }) {
        client.dead.set(true);
        return Err(e.into());
    }
    client.watch(deadline, id);
    client.next_id.set(client.next_id.get() + 1);
    let result = std::future::poll_fn(|cx| {
        let mut pending = client.pending.borrow_mut();
        let p = &mut pending[slot];
        match p.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                match &mut p.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    w => *w = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    })
    .await;
    drop(guard);
    result
}

/// Serves RPCs on `port` of the current node: every request runs `handler`, inline when
/// it answers at once and in its own task when it has to wait, and its result goes back
/// to the caller. The accept loop and the handlers die with the node.
pub fn serve<Req, Resp, F, Fut>(port: u16, handler: F) -> Result<JoinHandle<()>, NetError>
where
    Req: Clone + 'static,
    Resp: Clone + 'static,
    F: Fn(Req) -> Fut + 'static,
    Fut: Future<Output = Resp> + 'static,
{
    let mut listener =
        conn::bind_as::<Envelope<Req>, Envelope<Resp>>(port, Kinds::of::<Resp, Req>())?;
    let handler = Rc::new(handler);
    Ok(task::spawn_named("rpc-accept", async move {
        while let Ok(mut conn) = listener.accept().await {
            let handler = Rc::clone(&handler);
            task::spawn_named("rpc-conn", async move {
                while let Ok(env) = conn.recv().await {
                    let sender = conn.sender();
                    let id = env.id;
                    let mut reply = Box::pin(handler(env.body));
                    // Most handlers answer without waiting: run them here. One that has to
                    // wait (a long poll, a lock) moves to its own task, so that it does not
                    // hold up the requests behind it on this connection.
                    let first =
                        std::future::poll_fn(|cx| Poll::Ready(reply.as_mut().poll(cx))).await;
                    match first {
                        Poll::Ready(body) => {
                            // The caller may be gone; its loss, not the server's.
                            let _ = sender.send_reply(Envelope { id, body });
                        }
                        Poll::Pending => {
                            task::spawn_named("rpc-handler", async move {
                                let body = reply.await;
                                let _ = sender.send_reply(Envelope { id, body });
                            })
                            .detach();
                        }
                    }
                }
            })
            .detach();
        }
    }))
}
