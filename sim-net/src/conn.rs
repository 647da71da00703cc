//! Connections: `bind`/`accept` on the server, `connect` on the client, then typed,
//! ordered `send`/`recv` both ways, with real-life crash semantics (refused, reset,
//! timeouts across partitions).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use sim_runtime::node::{self, NodeId};
use sim_runtime::time::{self, Duration, Instant, Sleep};
use sim_runtime::trace;

use crate::events;
use crate::state::{self, EndState, ListenerState, Payload};
use crate::{kind, Addr, NetError};

/// The kinds of a connection's messages each way (see [`crate::kind`]), named once when
/// the endpoint is made.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Kinds {
    pub send: &'static str,
    pub recv: &'static str,
}

impl Kinds {
    pub(crate) fn of<S, R>() -> Kinds {
        Kinds {
            send: kind::of::<S>(),
            recv: kind::of::<R>(),
        }
    }
}

/// A bound port accepting connections, seen from the server: it receives `Req` and
/// sends `Resp`.
pub struct Listener<Req, Resp> {
    addr: Addr,
    incarnation: u32,
    kinds: Kinds,
    sleep: Option<Sleep>,
    _types: PhantomData<fn(Req) -> Resp>,
}

/// Binds `port` on the current node.
pub fn bind<Req: 'static, Resp: 'static>(port: u16) -> Result<Listener<Req, Resp>, NetError> {
    bind_as(port, Kinds::of::<Resp, Req>())
}

/// [`bind`], naming the message kinds for the trace (RPC names the bodies, not the
/// envelopes).
pub(crate) fn bind_as<Req, Resp>(port: u16, kinds: Kinds) -> Result<Listener<Req, Resp>, NetError> {
    let node = node::current();
    let incarnation = node.incarnation();
    let addr = Addr::new(node, port);
    state::with(|n| {
        if n.listeners
            .get(&(node, port))
            .is_some_and(|l| l.incarnation == incarnation)
        {
            return Err(NetError::AddrInUse);
        }
        n.listeners.insert(
            (node, port),
            ListenerState {
                incarnation,
                backlog: Default::default(),
                waker: None,
            },
        );
        trace::emit(&events::Bind { addr });
        Ok(())
    })?;
    Ok(Listener {
        addr,
        incarnation,
        kinds,
        sleep: None,
        _types: PhantomData,
    })
}

impl<Req: Clone + 'static, Resp: Clone + 'static> Listener<Req, Resp> {
    pub fn local_addr(&self) -> Addr {
        self.addr
    }

    /// Waits for the next connection whose handshake has arrived.
    pub fn accept(&mut self) -> Accept<'_, Req, Resp> {
        Accept { listener: self }
    }
}

impl<Req, Resp> Drop for Listener<Req, Resp> {
    fn drop(&mut self) {
        let (addr, inc) = (self.addr, self.incarnation);
        if sim_runtime::is_running() {
            state::with(|n| {
                if n.listeners
                    .get(&(addr.node, addr.port))
                    .is_some_and(|l| l.incarnation == inc)
                {
                    n.listeners.remove(&(addr.node, addr.port));
                }
            });
        }
    }
}

/// The future of [`Listener::accept`].
pub struct Accept<'a, Req, Resp> {
    listener: &'a mut Listener<Req, Resp>,
}

impl<Req: Clone + 'static, Resp: Clone + 'static> Future for Accept<'_, Req, Resp> {
    type Output = Result<Conn<Resp, Req>, NetError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let l = &mut *self.listener;
        let (addr, inc, kinds) = (l.addr, l.incarnation, l.kinds);
        loop {
            let now = time::now_global();
            let r = state::with(|n| {
                let Some(ls) = n
                    .listeners
                    .get_mut(&(addr.node, addr.port))
                    .filter(|ls| ls.incarnation == inc)
                else {
                    return Err(NetError::Closed);
                };
                match ls.backlog.front() {
                    Some(&(arrival, ep)) if arrival <= now => {
                        ls.backlog.pop_front();
                        Ok(Ok(ep))
                    }
                    Some(&(arrival, _)) => {
                        ls.waker = Some(cx.waker().clone());
                        Ok(Err(Some(arrival)))
                    }
                    None => {
                        ls.waker = Some(cx.waker().clone());
                        Ok(Err(None))
                    }
                }
            })?;
            match r {
                Ok(ep) => {
                    l.sleep = None;
                    return Poll::Ready(Ok(Conn::from_endpoint(ep, kinds)));
                }
                Err(Some(arrival)) => {
                    if poll_sleep(&mut l.sleep, arrival, cx).is_pending() {
                        return Poll::Pending;
                    }
                }
                Err(None) => return Poll::Pending,
            }
        }
    }
}

/// Polls a reusable timer for `at`; `Ready` once `at` has passed.
pub(crate) fn poll_sleep(slot: &mut Option<Sleep>, at: Instant, cx: &mut Context<'_>) -> Poll<()> {
    let sleep = slot.get_or_insert_with(|| time::sleep_until_global(at));
    if sleep.deadline() != at {
        *sleep = time::sleep_until_global(at);
    }
    match Pin::new(sleep).poll(cx) {
        Poll::Ready(()) => {
            *slot = None;
            Poll::Ready(())
        }
        Poll::Pending => Poll::Pending,
    }
}

/// Connects to `addr`. Refused at once when the node is down or nothing listens there;
/// across a partition the handshake never completes and this times out.
pub async fn connect<S: Clone + 'static, R: Clone + 'static>(
    addr: Addr,
    timeout: Duration,
) -> Result<Conn<S, R>, NetError> {
    connect_as(addr, timeout, Kinds::of::<S, R>()).await
}

/// [`connect`], naming the message kinds for the trace.
pub(crate) async fn connect_as<S: Clone + 'static, R: Clone + 'static>(
    addr: Addr,
    timeout: Duration,
    kinds: Kinds,
) -> Result<Conn<S, R>, NetError> {
    let local_node = node::current();
    let local_inc = local_node.incarnation();
    if addr.node.0 as usize >= node::all().len() {
        return Err(NetError::Unreachable);
    }
    let now = time::now_global();
    let deadline = now + timeout;
    enum Plan {
        Refused,
        Timeout,
        Wait(Instant, usize),
    }
    let plan = state::with(|n| {
        let remote_alive = addr.node.is_alive();
        let listening = n
            .listeners
            .get(&(addr.node, addr.port))
            .is_some_and(|l| l.incarnation == addr.node.incarnation());
        if n.is_cut(local_node, addr.node) || n.is_cut(addr.node, local_node) {
            // The SYN (or its answer) is lost; the client retries until it gives up.
            return Plan::Timeout;
        }
        if !remote_alive || !listening {
            trace::emit(&events::Refused { addr });
            return Plan::Refused;
        }
        let port = n.ephemeral_port();
        let local = Addr::new(local_node, port);
        let client_ep = n.new_endpoint(local, addr, local_inc);
        let server_ep = n.new_endpoint(addr, local, addr.node.incarnation());
        n.endpoints[client_ep].peer = server_ep;
        n.endpoints[server_ep].peer = client_ep;
        let there = n.link(local_node, addr.node).latency.sample(&mut n.rng);
        let back = n.link(addr.node, local_node).latency.sample(&mut n.rng);
        let syn_arrival = now + there;
        let ls = n
            .listeners
            .get_mut(&(addr.node, addr.port))
            .expect("checked above");
        ls.backlog.push_back((syn_arrival, server_ep));
        let waker = ls.waker.take();
        trace::emit(&events::Connect {
            local,
            remote: addr,
        });
        if let Some(w) = waker {
            // Waking here is safe: wakers only schedule, they never run user code.
            w.wake();
        }
        Plan::Wait(syn_arrival + back, client_ep)
    });
    match plan {
        Plan::Refused => Err(NetError::Refused),
        Plan::Timeout => {
            time::sleep_until_global(deadline).await;
            Err(NetError::Timeout)
        }
        Plan::Wait(established, ep) => {
            let conn = Conn::<S, R>::from_endpoint(ep, kinds);
            if established > deadline {
                time::sleep_until_global(deadline).await;
                return Err(NetError::Timeout);
            }
            time::sleep_until_global(established).await;
            // The server may have died during the handshake.
            match state::with(|n| n.endpoints.get(ep).map(|e| e.state)) {
                Some(EndState::Open) => Ok(conn),
                _ => Err(NetError::Refused),
            }
        }
    }
}

/// One end of a connection: sends `S`, receives `R`. Dropping it closes the connection
/// (the peer reads end-of-stream after what was already sent).
pub struct Conn<S, R> {
    ep: usize,
    local: Addr,
    peer: Addr,
    kinds: Kinds,
    sleep: Option<Sleep>,
    _types: PhantomData<fn(S) -> R>,
}

/// A cloneable sending half, for replying from other tasks.
pub struct ConnSender<S> {
    ep: usize,
    kind: &'static str,
    _types: PhantomData<fn(S)>,
}

impl<S> Clone for ConnSender<S> {
    fn clone(&self) -> Self {
        ConnSender {
            ep: self.ep,
            kind: self.kind,
            _types: PhantomData,
        }
    }
}

fn send_on<S: Clone + 'static>(
    ep: usize,
    msg: S,
    kind: &'static str,
    is_reply: bool,
) -> Result<(), NetError> {
    let wake = state::with(|n| n.send_conn(ep, Payload::Data(Box::new(msg)), kind, is_reply))?;
    if let Some(w) = wake {
        w.arm();
    }
    Ok(())
}

impl<S: Clone + 'static> ConnSender<S> {
    pub fn send(&self, msg: S) -> Result<(), NetError> {
        send_on(self.ep, msg, self.kind, false)
    }

    /// Sends an RPC reply (rules see `is_reply`).
    pub(crate) fn send_reply(&self, msg: S) -> Result<(), NetError> {
        send_on(self.ep, msg, self.kind, true)
    }
}

impl<S: Clone + 'static, R: Clone + 'static> Conn<S, R> {
    fn from_endpoint(ep: usize, kinds: Kinds) -> Self {
        let (local, peer) = state::with(|n| (n.endpoints[ep].local, n.endpoints[ep].remote));
        Conn {
            ep,
            local,
            peer,
            kinds,
            sleep: None,
            _types: PhantomData,
        }
    }

    /// Whether the connection can still carry messages: not reset by a crash, not
    /// closed. A send on an open connection cannot fail.
    pub fn is_open(&self) -> bool {
        is_open(self.ep)
    }

    pub fn peer(&self) -> Addr {
        self.peer
    }

    pub fn local_addr(&self) -> Addr {
        self.local
    }

    /// Sends `msg`; fails at once if the connection was reset or closed.
    pub fn send(&self, msg: S) -> Result<(), NetError> {
        send_on(self.ep, msg, self.kinds.send, false)
    }

    pub fn sender(&self) -> ConnSender<S> {
        ConnSender {
            ep: self.ep,
            kind: self.kinds.send,
            _types: PhantomData,
        }
    }

    /// Receives the next message, in the order sent.
    pub fn recv(&mut self) -> Recv<'_, S, R> {
        Recv { conn: self }
    }

    /// Closes the connection now.
    pub fn close(self) {}
}

impl<S, R> Drop for Conn<S, R> {
    fn drop(&mut self) {
        if sim_runtime::is_running() {
            close_endpoint(self.ep);
        }
    }
}

/// Closes one end: the peer reads end-of-stream after what was already sent. Endpoint
/// slots are never reused, so a stale `ConnSender` can never write into a new connection.
pub(crate) fn close_endpoint(ep: usize) {
    let waker = state::with(|n| {
        let e = n.endpoints.get(ep)?;
        let (was_open, peer) = (e.state == EndState::Open, e.peer);
        let w = if was_open {
            n.send_conn(ep, Payload::Fin, "fin", false).ok().flatten()
        } else {
            None
        };
        let e = n.endpoints.get_mut(ep)?;
        e.state = EndState::Closed;
        e.queue.clear();
        let _ = peer;
        w
    });
    if let Some(w) = waker {
        w.arm();
    }
}

/// The future of [`Conn::recv`].
pub struct Recv<'a, S, R> {
    conn: &'a mut Conn<S, R>,
}

impl<S: Clone + 'static, R: Clone + 'static> Future for Recv<'_, S, R> {
    type Output = Result<R, NetError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let conn = &mut *self.conn;
        let kind = conn.kinds.recv;
        loop {
            match poll_endpoint(conn.ep, cx, kind) {
                Got::Msg(m) => {
                    conn.sleep = None;
                    let m = m
                        .downcast::<R>()
                        .expect("connection carries one message type per direction");
                    return Poll::Ready(Ok(*m));
                }
                Got::Eof => return Poll::Ready(Err(NetError::Closed)),
                Got::Err(e) => return Poll::Ready(Err(e)),
                Got::Wait => return Poll::Pending,
                Got::WaitUntil(at) => {
                    if poll_sleep(&mut conn.sleep, at, cx).is_pending() {
                        return Poll::Pending;
                    }
                }
            }
        }
    }
}

pub(crate) enum Got {
    Msg(Box<dyn std::any::Any>),
    Eof,
    Err(NetError),
    WaitUntil(Instant),
    Wait,
}

/// Takes the next arrived message of a connection endpoint, or registers the waker.
pub(crate) fn poll_endpoint(ep: usize, cx: &mut Context<'_>, kind: &'static str) -> Got {
    let now = time::now_global();
    state::with(|n| {
        let e = &mut n.endpoints[ep];
        match e.state {
            EndState::Reset => return Got::Err(NetError::Reset),
            EndState::Closed => return Got::Err(NetError::Closed),
            EndState::Open => {}
        }
        if e.fin_received {
            return Got::Eof;
        }
        match e.queue.front() {
            Some(p) if p.arrival <= now => {
                let p = e.queue.pop_front().expect("front exists");
                let (src, dst) = (p.src, e.local);
                match p.payload {
                    Payload::Data(m) => {
                        n.trace_msg("net.deliver", src, dst, kind);
                        Got::Msg(m.into_any())
                    }
                    Payload::Fin => {
                        e.fin_received = true;
                        Got::Eof
                    }
                }
            }
            Some(p) => {
                let at = p.arrival;
                park(&mut e.waker, cx);
                Got::WaitUntil(at)
            }
            None => {
                park(&mut e.waker, cx);
                Got::Wait
            }
        }
    })
}

/// Keeps the waker of a receiver that waits. A receiving loop parks with the same waker
/// message after message; cloning it again each time would cost a reference count up
/// and one down (atomic operations, in async-task) for nothing.
#[inline]
fn park(slot: &mut Option<std::task::Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

/// The node an address names, for readability in tests.
pub fn node_of(addr: Addr) -> NodeId {
    addr.node
}

impl<S> ConnSender<S> {
    pub(crate) fn endpoint(&self) -> usize {
        self.ep
    }
}

/// Whether a connection endpoint can still carry messages.
pub(crate) fn is_open(ep: usize) -> bool {
    state::with(|n| {
        n.endpoints
            .get(ep)
            .is_some_and(|e| e.state == EndState::Open)
    })
}
