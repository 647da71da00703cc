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

use futures::channel::oneshot;
use sim_runtime::node::{self, NodeId};
use sim_runtime::task::{self, JoinHandle};
use sim_runtime::time::{self, Duration};

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
    pending: RefCell<BTreeMap<u64, oneshot::Sender<Result<Resp, RpcError>>>>,
    next_id: Cell<u64>,
    dead: Cell<bool>,
}

type ClientKey = (NodeId, u32, Addr, TypeId);

#[derive(Default)]
struct Clients {
    map: RefCell<BTreeMap<ClientKey, Rc<dyn Any>>>,
}

fn cached<Req: 'static, Resp: 'static>(key: ClientKey) -> Option<Rc<Client<Req, Resp>>> {
    let clients = sim_runtime::extension::<Clients>();
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
        pending: RefCell::new(BTreeMap::new()),
        next_id: Cell::new(0),
        dead: Cell::new(false),
    });
    sim_runtime::extension::<Clients>()
        .map
        .borrow_mut()
        .insert(key, client.clone() as Rc<dyn Any>);
    let reader = Rc::clone(&client);
    let kind = std::any::type_name::<Resp>();
    task::spawn_named("rpc-client-reader", async move {
        let err = loop {
            match conn.recv_as(kind).await {
                Ok(env) => {
                    let tx = reader.pending.borrow_mut().remove(&env.id);
                    // A reply to a call that already timed out is dropped, as a real
                    // client drops a late response.
                    if let Some(tx) = tx {
                        let _ = tx.send(Ok(env.body));
                    }
                }
                Err(e) => break RpcError::from(e),
            }
        };
        reader.dead.set(true);
        let waiting = std::mem::take(&mut *reader.pending.borrow_mut());
        for (_, tx) in waiting {
            let _ = tx.send(Err(err));
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
    let id = client.next_id.get();
    client.next_id.set(id + 1);
    let (tx, rx) = oneshot::channel();
    client.pending.borrow_mut().insert(id, tx);
    let kind = std::any::type_name::<Req>();
    if let Err(e) = conn::send_kind(
        client_ep(&client.sender),
        Envelope { id, body: request },
        kind,
        false,
    ) {
        client.pending.borrow_mut().remove(&id);
        client.dead.set(true);
        return Err(e.into());
    }
    let remaining = deadline.duration_since(time::now_global());
    match time::timeout(remaining, rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_canceled)) => Err(RpcError::Reset),
        Err(_elapsed) => {
            client.pending.borrow_mut().remove(&id);
            Err(RpcError::Timeout)
        }
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
