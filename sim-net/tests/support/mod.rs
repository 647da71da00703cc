//! Fixtures shared by the network's tests: servers and sinks, each on a node of its own.

// Each test binary uses its own subset.
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;

use sim_net::{Addr, RpcError};
use sim_runtime::node::{self, NodeId};
use sim_runtime::time::{self, sleep, Duration, Instant};

/// The port the fixtures' servers listen on.
pub const PORT: u16 = 7000;

/// An echo RPC server node.
pub fn echo_server(name: &str) -> NodeId {
    node::node(name).build(|| async {
        sim_net::serve(PORT, |x: u64| async move { x })
            .expect("bind")
            .await
            .ok();
    })
}

/// A server node once it listens (its factory binds within the first millisecond), and
/// its address.
pub async fn started(server: NodeId) -> (NodeId, Addr) {
    sleep(Duration::from_millis(1)).await;
    (server, Addr::new(server, PORT))
}

/// One call to an echo server.
pub async fn echo(addr: Addr, x: u64, timeout: Duration) -> Result<u64, RpcError> {
    sim_net::call::<u64, u64>(addr, x, timeout).await
}

/// What a sink received: each message and the time it arrived.
pub type Received<M> = Rc<RefCell<Vec<(M, Instant)>>>;

/// A node that accepts one connection on [`PORT`] and records what arrives on it.
pub fn conn_sink(name: &str) -> (NodeId, Received<u64>) {
    let got: Received<u64> = Rc::default();
    let sink = got.clone();
    let id = node::node(name).build(move || {
        let sink = sink.clone();
        async move {
            let mut l = sim_net::bind::<u64, u64>(PORT).unwrap();
            let mut c = l.accept().await.unwrap();
            while let Ok(x) = c.recv().await {
                sink.borrow_mut().push((x, time::now()));
            }
        }
    });
    (id, got)
}

/// A node with a datagram socket on `port` that records every datagram.
pub fn datagram_sink<M: Clone + 'static>(name: &str, port: u16) -> (NodeId, Received<M>) {
    let got: Received<M> = Rc::default();
    let sink = got.clone();
    let id = node::node(name).build(move || {
        let sink = sink.clone();
        async move {
            let mut s = sim_net::bind_datagram::<M>(port).unwrap();
            while let Ok((_, m)) = s.recv_from().await {
                sink.borrow_mut().push((m, time::now()));
            }
        }
    });
    (id, got)
}

/// The messages a sink received, in arrival order, without their times.
pub fn values<M: Clone>(got: &Received<M>) -> Vec<M> {
    got.borrow().iter().map(|(m, _)| m.clone()).collect()
}
