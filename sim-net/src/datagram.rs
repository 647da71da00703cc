//! Datagrams: unordered, unreliable messages between (node, port) endpoints, subject to
//! every link fault (loss, duplication, reordering, partitions drop them; clogs hold them).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use sim_runtime::node;
use sim_runtime::time::{self, Duration, Sleep};

use crate::conn::poll_sleep;
use crate::events::DropReason;
use crate::rule::MessageInfo;
use crate::state::{self, Packet, Payload, SocketState, Target};
use crate::{kind, Addr, NetError};

/// A datagram socket bound to a port of the current node, exchanging messages of type `M`.
pub struct Socket<M> {
    addr: Addr,
    incarnation: u32,
    /// The kind of `M` for the trace and the rules (see [`crate::kind`]).
    kind: &'static str,
    sleep: Option<Sleep>,
    _types: PhantomData<fn(M) -> M>,
}

/// Binds a datagram socket on the current node.
pub fn bind_datagram<M: Clone + 'static>(port: u16) -> Result<Socket<M>, NetError> {
    let node = node::current();
    let incarnation = node.incarnation();
    state::with(|n| {
        if n.sockets
            .get(&(node, port))
            .is_some_and(|s| s.incarnation == incarnation)
        {
            return Err(NetError::AddrInUse);
        }
        let sock = SocketState {
            incarnation,
            queue: Default::default(),
            packets: Default::default(),
            waker: None,
        };
        n.sockets.insert((node, port), sock);
        Ok(())
    })?;
    Ok(Socket {
        addr: Addr::new(node, port),
        incarnation,
        kind: kind::of::<M>(),
        sleep: None,
        _types: PhantomData,
    })
}

impl<M: Clone + 'static> Socket<M> {
    pub fn local_addr(&self) -> Addr {
        self.addr
    }

    /// Sends `msg` to `dst`. Never fails for network reasons: a datagram that cannot be
    /// delivered is silently lost, as UDP's are.
    pub fn send_to(&self, dst: Addr, msg: M) {
        let src = self.addr;
        let src_inc = self.incarnation;
        let kind = self.kind;
        let waker = state::with(|n| {
            let info = MessageInfo {
                src,
                dst,
                kind,
                is_reply: false,
            };
            let (extra, mut copies) = n.judge(&info)?;
            n.trace_msg("net.send", src, dst, kind);
            let link = n.link(src.node, dst.node);
            if n.is_cut(src.node, dst.node) {
                n.trace_drop(src, dst, kind, DropReason::Partition);
                return None;
            }
            if n.rng.chance(link.loss_probability) {
                n.trace_drop(src, dst, kind, DropReason::Loss);
                return None;
            }
            if n.rng.chance(link.duplicate_probability) {
                n.trace_msg("net.duplicate", src, dst, kind);
                copies += 1;
            }
            let Some(incarnation) = n.sockets.get(&(dst.node, dst.port)).map(|s| s.incarnation)
            else {
                n.trace_drop(src, dst, kind, DropReason::NoSocket);
                return None;
            };
            let now = time::now_global();
            let mut waker = None;
            for _ in 0..copies {
                let mut latency = link.latency.sample(&mut n.rng).saturating_add(extra);
                if n.rng.chance(link.reorder_probability) {
                    let max = link.reorder_delay_max.as_nanos() as u64;
                    latency += Duration::from_nanos(n.rng.range_inclusive(0, max));
                }
                let packet = Packet {
                    arrival: now + latency,
                    src,
                    src_incarnation: src_inc,
                    payload: Payload::Data(Box::new(msg.clone())),
                };
                if n.is_held(src.node, dst.node) {
                    n.held.push((
                        Target::Socket {
                            node: dst.node,
                            port: dst.port,
                            incarnation,
                        },
                        packet,
                        dst,
                    ));
                    continue;
                }
                let w = n.enqueue_datagram(dst.node, dst.port, incarnation, packet);
                waker = waker.or(w);
            }
            waker
        });
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Receives the next datagram that has arrived, with its sender.
    pub fn recv_from(&mut self) -> RecvFrom<'_, M> {
        RecvFrom { socket: self }
    }
}

impl<M> Drop for Socket<M> {
    fn drop(&mut self) {
        let (addr, inc) = (self.addr, self.incarnation);
        if sim_runtime::is_running() {
            state::with(|n| {
                if n.sockets
                    .get(&(addr.node, addr.port))
                    .is_some_and(|s| s.incarnation == inc)
                {
                    n.sockets.remove(&(addr.node, addr.port));
                }
            });
        }
    }
}

/// The future of [`Socket::recv_from`].
pub struct RecvFrom<'a, M> {
    socket: &'a mut Socket<M>,
}

impl<M: Clone + 'static> Future for RecvFrom<'_, M> {
    type Output = Result<(Addr, M), NetError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let sock = &mut *self.socket;
        let (addr, inc, kind) = (sock.addr, sock.incarnation, sock.kind);
        loop {
            let now = time::now_global();
            let r = state::with(|n| {
                let s = match n.sockets.get_mut(&(addr.node, addr.port)) {
                    Some(s) if s.incarnation == inc => s,
                    _ => return Err(NetError::Closed),
                };
                match s.queue.peek().copied() {
                    Some(std::cmp::Reverse((arrival, _, key))) if arrival <= now => {
                        s.queue.pop();
                        let p = s.packets.remove(key);
                        // Nothing a dead process sent arrives after its death.
                        if !p.src.node.is_alive() || p.src.node.incarnation() != p.src_incarnation {
                            n.trace_drop(p.src, addr, kind, DropReason::DeadSender);
                            return Ok(Err(Some(now)));
                        }
                        n.trace_msg("net.deliver", p.src, addr, kind);
                        match p.payload {
                            Payload::Data(m) => Ok(Ok((p.src, m.into_any()))),
                            Payload::Fin => Ok(Err(None)),
                        }
                    }
                    Some(std::cmp::Reverse((arrival, _, _))) => {
                        s.waker = Some(cx.waker().clone());
                        Ok(Err(Some(arrival)))
                    }
                    None => {
                        s.waker = Some(cx.waker().clone());
                        Ok(Err(None))
                    }
                }
            })?;
            match r {
                Ok((src, m)) => {
                    sock.sleep = None;
                    let m = m
                        .downcast::<M>()
                        .expect("a socket carries one message type");
                    return Poll::Ready(Ok((src, *m)));
                }
                Err(Some(at)) => {
                    if poll_sleep(&mut sock.sleep, at, cx).is_pending() {
                        return Poll::Pending;
                    }
                }
                Err(None) => return Poll::Pending,
            }
        }
    }
}
