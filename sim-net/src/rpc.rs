//! Typed RPC over connections: `call(addr, request, timeout)` and `serve(port, handler)`.
//!
//! A caller keeps one multiplexed connection per (node, server address, types), with a
//! reader task that hands each reply to its waiting call, so concurrent calls share a
//! connection as real clients do. `RpcError` tells the four ways a call fails apart.

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::task::Poll;

use sim_runtime::node::{self, NodeId};
use sim_runtime::task::{self, JoinHandle};
use sim_runtime::time::{self, Duration};
use slab::Slab;

use crate::conn::{self, ConnSender};
use crate::{Addr, NetError};

/// Why a call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// Nothing listens there, or the node is down: fails at once.
    #[error("connection refused")]
    Refused,
    /// The server crashed or closed the connection while the call was in flight.
    #[error("connection reset by peer")]
    Reset,
    /// No answer in time: a partition, a paused or slow server, a lost message.
    #[error("call timed out")]
    Timeout,
    /// No route to the address (it names no node).
    #[error("destination unreachable")]
    Unreachable,
}

impl From<NetError> for RpcError {
    fn from(e: NetError) -> Self {
        match e {
            NetError::Refused | NetError::AddrInUse => RpcError::Refused,
            NetError::Reset | NetError::Closed => RpcError::Reset,
            NetError::Timeout => RpcError::Timeout,
            NetError::Unreachable => RpcError::Unreachable,
        }
    }
}

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
}

/// One call waiting for its reply.
struct Pending<Resp> {
    generation: u32,
    result: Option<Result<Resp, RpcError>>,
    waker: Option<std::task::Waker>,
}

fn call_id(key: usize, generation: u32) -> u64 {
    (u64::from(generation) << 32) | key as u64
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
    let mut conn = conn::connect::<Envelope<Req>, Envelope<Resp>>(addr, timeout).await?;
    if let Some(c) = cached::<Req, Resp>(key) {
        // Another call connected first; share its connection.
        return Ok(c);
    }
    let client = Rc::new(Client {
        sender: conn.sender(),
        pending: RefCell::new(Slab::new()),
        next_id: Cell::new(0),
        dead: Cell::new(false),
    });
    clients()
        .map
        .borrow_mut()
        .insert(key, client.clone() as Rc<dyn Any>);
    let reader = Rc::clone(&client);
    let kind = std::any::type_name::<Resp>();
    task::spawn_named("rpc-client-reader", async move {
        let err = loop {
            match conn.recv_as(kind).await {
                Ok(env) => {
                    let (key, generation) =
                        ((env.id & 0xffff_ffff) as usize, (env.id >> 32) as u32);
                    let mut pending = reader.pending.borrow_mut();
                    // A reply to a call that already timed out is dropped, as a real
                    // client drops a late response.
                    if let Some(p) = pending.get_mut(key).filter(|p| p.generation == generation) {
                        p.result = Some(Ok(env.body));
                        if let Some(w) = p.waker.take() {
                            w.wake();
                        }
                    }
                }
                Err(e) => break RpcError::from(e),
            }
        };
        reader.dead.set(true);
        for (_, p) in reader.pending.borrow_mut().iter_mut() {
            p.result = Some(Err(err));
            if let Some(w) = p.waker.take() {
                w.wake();
            }
        }
    })
    .detach();
    Ok(client)
}

/// Calls the server at `addr` and waits at most `timeout` for its reply.
pub async fn call<Req, Resp>(addr: Addr, request: Req, timeout: Duration) -> Result<Resp, RpcError>
where
    Req: Clone + 'static,
    Resp: Clone + 'static,
{
    let me = node::current();
    let key = (me, me.incarnation(), addr, TypeId::of::<(Req, Resp)>());
    let deadline = time::now_global() + timeout;
    let client = match cached::<Req, Resp>(key) {
        Some(c) => c,
        None => connect_client::<Req, Resp>(key, addr, timeout).await?,
    };
    let generation = client.next_id.get() as u32;
    client.next_id.set(client.next_id.get() + 1);
    let slot = client.pending.borrow_mut().insert(Pending {
        generation,
        result: None,
        waker: None,
    });
    let id = call_id(slot, generation);
    let kind = std::any::type_name::<Req>();
    if let Err(e) = conn::send_kind(
        client_ep(&client.sender),
        Envelope { id, body: request },
        kind,
        false,
    ) {
        client.pending.borrow_mut().remove(slot);
        client.dead.set(true);
        return Err(e.into());
    }
    let remaining = deadline.duration_since(time::now_global());
    let reply = std::future::poll_fn(|cx| {
        let mut pending = client.pending.borrow_mut();
        let p = &mut pending[slot];
        match p.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                p.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    });
    let result = time::timeout(remaining, reply).await;
    client.pending.borrow_mut().remove(slot);
    match result {
        Ok(r) => r,
        Err(_elapsed) => Err(RpcError::Timeout),
    }
}

fn client_ep<S>(sender: &ConnSender<S>) -> usize {
    sender.endpoint()
}

/// Serves RPCs on `port` of the current node: every request runs `handler` in its own
/// task and its result goes back to the caller. The accept loop and the handlers die
/// with the node.
pub fn serve<Req, Resp, F, Fut>(port: u16, handler: F) -> Result<JoinHandle<()>, NetError>
where
    Req: Clone + 'static,
    Resp: Clone + 'static,
    F: Fn(Req) -> Fut + 'static,
    Fut: Future<Output = Resp> + 'static,
{
    let mut listener = conn::bind::<Envelope<Req>, Envelope<Resp>>(port)?;
    let handler = Rc::new(handler);
    Ok(task::spawn_named("rpc-accept", async move {
        while let Ok(mut conn) = listener.accept().await {
            let handler = Rc::clone(&handler);
            task::spawn_named("rpc-conn", async move {
                let req_kind = std::any::type_name::<Req>();
                let resp_kind = std::any::type_name::<Resp>();
                while let Ok(env) = conn.recv_as(req_kind).await {
                    let sender = conn.sender();
                    let handler = Rc::clone(&handler);
                    // Each request in its own task: a handler that waits (a long poll, a
                    // lock) must not hold up the requests behind it on this connection.
                    task::spawn_named("rpc-handler", async move {
                        let body = handler(env.body).await;
                        // The caller may be gone; its loss, not the server's.
                        let _ = sender.send_reply(Envelope { id: env.id, body }, resp_kind);
                    })
                    .detach();
                }
            })
            .detach();
        }
    }))
}
