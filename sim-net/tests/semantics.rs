//! One test per network fault and crash semantic, each a small simulated program run
//! under many seeds.

mod support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use sim_net::{Addr, Latency, LinkConfig, NetError, RpcError, Verdict};
use sim_runtime::node::{self, NodeId};
use sim_runtime::time::{self, sleep, Duration};
use sim_runtime::{spawn, Probability};

use support::{conn_sink, datagram_sink, echo, echo_server, started, values, PORT};

#[sim_runtime::test]
async fn rpc_round_trip_works() {
    let (_, addr) = started(echo_server("server")).await;
    for i in 0..10u64 {
        assert_eq!(echo(addr, i, Duration::from_secs(1)).await, Ok(i));
    }
}

#[sim_runtime::test]
async fn partition_gives_timeouts_not_refusals_and_repair_heals() {
    let (server, addr) = started(echo_server("server")).await;
    let me = node::current();
    sim_net::partition(&[me], &[server]);
    let start = time::now();
    let r = echo(addr, 1, Duration::from_millis(300)).await;
    assert_eq!(r, Err(RpcError::Timeout));
    assert_eq!(
        time::now() - start,
        Duration::from_millis(300),
        "a partition waits out the timeout"
    );
    sim_net::repair(&[me], &[server]);
    assert_eq!(echo(addr, 2, Duration::from_secs(1)).await, Ok(2));
}

#[sim_runtime::test]
async fn crash_gives_refused_at_once_and_resets_open_connections() {
    let server = node::node("server").build(|| async {
        let mut l = sim_net::bind::<u64, u64>(PORT).unwrap();
        while let Ok(mut c) = l.accept().await {
            spawn(async move {
                // Holds the connection open without answering.
                let _ = c.recv().await;
                std::future::pending::<()>().await;
            })
            .detach();
        }
    });
    sleep(Duration::from_millis(1)).await;
    let addr = Addr::new(server, PORT);
    let mut conn = sim_net::connect::<u64, u64>(addr, Duration::from_secs(1))
        .await
        .unwrap();
    conn.send(1).unwrap();
    let waiter = spawn(async move { conn.recv().await });
    sleep(Duration::from_millis(50)).await;
    server.kill();
    assert_eq!(
        waiter.await.unwrap(),
        Err(NetError::Reset),
        "a peer's crash resets the connection"
    );
    let start = time::now();
    let r = sim_net::connect::<u64, u64>(addr, Duration::from_secs(1))
        .await
        .map(|_| ());
    assert_eq!(r, Err(NetError::Refused));
    assert_eq!(time::now(), start, "refused at once");
    assert_eq!(
        echo(addr, 1, Duration::from_secs(1)).await,
        Err(RpcError::Refused)
    );
}

#[sim_runtime::test]
async fn restart_binds_again_and_old_connections_stay_dead() {
    use sim_net::rpc::Envelope;
    let (server, addr) = started(echo_server("server")).await;
    let mut old = sim_net::connect::<Envelope<u64>, Envelope<u64>>(addr, Duration::from_secs(1))
        .await
        .unwrap();
    server.restart();
    sleep(Duration::from_millis(1)).await;
    assert_eq!(
        old.send(Envelope { id: 0, body: 1 }).err(),
        Some(NetError::Reset)
    );
    assert_eq!(old.recv().await.err(), Some(NetError::Reset));
    assert_eq!(echo(addr, 5, Duration::from_secs(1)).await, Ok(5));
}

#[sim_runtime::test]
async fn clog_holds_messages_then_delivers_them_in_order() {
    let (server, got) = conn_sink("server");
    sleep(Duration::from_millis(1)).await;
    let conn = sim_net::connect::<u64, u64>(Addr::new(server, PORT), Duration::from_secs(1))
        .await
        .unwrap();
    sim_net::clog(server);
    for i in 0..20 {
        conn.send(i).unwrap();
    }
    sleep(Duration::from_secs(2)).await;
    assert!(got.borrow().is_empty(), "a clogged node receives nothing");
    let unclogged_at = time::now();
    sim_net::unclog(server);
    sleep(Duration::from_secs(1)).await;
    assert_eq!(values(&got), (0..20).collect::<Vec<_>>());
    assert!(got.borrow().iter().all(|(_, t)| *t >= unclogged_at));
}

#[sim_runtime::test]
async fn hold_and_release_one_link_only() {
    let a = echo_server("a");
    let b = echo_server("b");
    sleep(Duration::from_millis(1)).await;
    let me = node::current();
    sim_net::hold(me, a);
    let ra = spawn(async move { echo(Addr::new(a, PORT), 1, Duration::from_secs(10)).await });
    let rb = echo(Addr::new(b, PORT), 2, Duration::from_secs(1)).await;
    assert_eq!(rb, Ok(2), "other links are unaffected");
    sleep(Duration::from_secs(3)).await;
    assert!(!ra.is_finished(), "held traffic waits");
    sim_net::release_link(me, a);
    assert_eq!(ra.await.unwrap(), Ok(1), "released traffic is delivered");
}

#[sim_runtime::test]
async fn one_way_partition_cuts_only_one_direction() {
    let (a, got_a) = datagram_sink::<&'static str>("a", 1);
    let (b, got_b) = datagram_sink::<&'static str>("b", 1);
    sleep(Duration::from_millis(1)).await;
    sim_net::partition_oneway(&[a], &[b]);
    let send = |from: NodeId, to: NodeId, m: &'static str| {
        node::spawn_on_node(from, "send", async move {
            let s = sim_net::bind_datagram::<&'static str>(2).unwrap();
            s.send_to(Addr::new(to, 1), m);
            sleep(Duration::from_secs(1)).await;
        })
    };
    let (ha, hb) = (send(a, b, "a->b"), send(b, a, "b->a"));
    ha.await.unwrap();
    hb.await.unwrap();
    assert_eq!(values(&got_a), vec!["b->a"]);
    assert!(got_b.borrow().is_empty());
}

/// Sends `n` datagrams over a link configured as `link`; returns how many copies
/// arrived.
async fn datagrams_delivered(link: LinkConfig, n: u64) -> usize {
    let (rx, got) = datagram_sink::<u64>("rx", 1);
    sleep(Duration::from_millis(1)).await;
    sim_net::set_link(node::current(), rx, link);
    let s = sim_net::bind_datagram::<u64>(2).unwrap();
    for i in 0..n {
        s.send_to(Addr::new(rx, 1), i);
    }
    sleep(Duration::from_secs(5)).await;
    let n = got.borrow().len();
    n
}

#[sim_runtime::test]
async fn duplication_delivers_twice() {
    let link = LinkConfig::default().with_duplication(Probability::ALWAYS);
    assert_eq!(datagrams_delivered(link, 100).await, 200);
}

#[sim_runtime::test]
async fn loss_never_delivers() {
    let link = LinkConfig::default().with_loss(Probability::ALWAYS);
    assert_eq!(datagrams_delivered(link, 100).await, 0);
}

#[sim_runtime::test]
async fn half_loss_delivers_about_half() {
    let half = LinkConfig::default().with_loss(Probability::of(0.5));
    let got = datagrams_delivered(half, 1000).await;
    // 1,000 fair coins: five standard deviations each side.
    assert!((420..580).contains(&got), "about half arrive: {got}");
}

#[sim_runtime::test]
async fn fifo_within_a_connection_under_jitter() {
    let (server, got) = conn_sink("server");
    sleep(Duration::from_millis(1)).await;
    let wild = LinkConfig::default().with_latency(Latency::Uniform {
        min: Duration::from_millis(1),
        max: Duration::from_millis(200),
    });
    sim_net::set_link(node::current(), server, wild);
    let conn = sim_net::connect::<u64, u64>(Addr::new(server, PORT), Duration::from_secs(5))
        .await
        .unwrap();
    for i in 0..500 {
        conn.send(i).unwrap();
        if i % 7 == 0 {
            sleep(Duration::from_millis(1)).await;
        }
    }
    sleep(Duration::from_secs(5)).await;
    assert_eq!(values(&got), (0..500).collect::<Vec<_>>());
}

#[sim_runtime::test]
async fn datagrams_reorder_under_jitter() {
    let (rx, got) = datagram_sink::<u64>("rx", 1);
    sleep(Duration::from_millis(1)).await;
    let link =
        LinkConfig::default().with_reordering(Probability::of(0.3), Duration::from_millis(50));
    sim_net::set_link(node::current(), rx, link);
    let s = sim_net::bind_datagram::<u64>(2).unwrap();
    for i in 0..200 {
        s.send_to(Addr::new(rx, 1), i);
    }
    sleep(Duration::from_secs(1)).await;
    let got = values(&got);
    assert_eq!(got.len(), 200);
    assert_ne!(
        got,
        (0..200).collect::<Vec<_>>(),
        "some datagrams overtook others"
    );
}

#[sim_runtime::test]
async fn no_message_from_a_killed_node_is_delivered_after_the_kill() {
    let (rx, got) = datagram_sink::<u64>("rx", 1);
    let slow = LinkConfig::default().with_latency(Latency::Constant(Duration::from_millis(100)));
    let tx = node::node("tx").build(move || async move {
        let s = sim_net::bind_datagram::<u64>(2).unwrap();
        let mut i = 0;
        loop {
            s.send_to(Addr::new(rx, 1), i);
            i += 1;
            sleep(Duration::from_millis(10)).await;
        }
    });
    sim_net::set_link(tx, rx, slow);
    sleep(Duration::from_millis(500)).await;
    tx.kill();
    let killed_at = time::now();
    sleep(Duration::from_secs(1)).await;
    let got = got.borrow();
    assert!(!got.is_empty());
    assert!(
        got.iter().all(|(_, t)| *t <= killed_at),
        "a datagram from the dead node arrived after the kill"
    );
}

#[sim_runtime::test]
async fn rule_hook_drops_the_first_reply_only() {
    let (server, addr) = started(echo_server("server")).await;
    let dropped = Rc::new(RefCell::new(Vec::new()));
    let d2 = dropped.clone();
    sim_net::add_rule(move |m| {
        if m.is_reply && m.src.node == server && d2.borrow().is_empty() {
            d2.borrow_mut().push(m.kind);
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    });
    assert_eq!(
        echo(addr, 1, Duration::from_millis(500)).await,
        Err(RpcError::Timeout)
    );
    assert_eq!(echo(addr, 2, Duration::from_millis(500)).await, Ok(2));
    // Rules see the short name of the reply's body, not its envelope's.
    assert_eq!(*dropped.borrow(), ["u64"]);
}

#[sim_runtime::test]
async fn paused_server_makes_calls_time_out_and_resume_answers() {
    let (server, addr) = started(echo_server("server")).await;
    server.pause();
    assert_eq!(
        echo(addr, 1, Duration::from_millis(200)).await,
        Err(RpcError::Timeout)
    );
    server.resume();
    assert_eq!(echo(addr, 2, Duration::from_millis(200)).await, Ok(2));
}

#[sim_runtime::test]
async fn isolate_cuts_a_node_from_everyone_until_rejoin() {
    let (server, addr) = started(echo_server("server")).await;
    sim_net::isolate(server);
    assert_eq!(
        echo(addr, 1, Duration::from_millis(100)).await,
        Err(RpcError::Timeout)
    );
    sim_net::rejoin(server);
    assert_eq!(echo(addr, 2, Duration::from_secs(1)).await, Ok(2));
}

#[sim_runtime::test]
async fn latency_can_change_mid_run() {
    let (server, addr) = started(echo_server("server")).await;
    let me = node::current();
    sim_net::set_link(
        me,
        server,
        LinkConfig::default().with_latency(Latency::Constant(Duration::from_millis(2))),
    );
    echo(addr, 0, Duration::from_secs(1)).await.unwrap();
    let t0 = time::now();
    echo(addr, 1, Duration::from_secs(1)).await.unwrap();
    assert_eq!(time::now() - t0, Duration::from_millis(4));
    sim_net::add_latency(me, server, Duration::from_millis(500));
    let t1 = time::now();
    echo(addr, 2, Duration::from_secs(5)).await.unwrap();
    assert_eq!(time::now() - t1, Duration::from_millis(1004));
    sim_net::reset_link(me, server);
    assert_eq!(sim_net::link(me, server), LinkConfig::default());
}

#[sim_runtime::test]
async fn unknown_node_is_unreachable() {
    let bogus = Addr::new(NodeId(999), PORT);
    assert_eq!(
        echo(bogus, 1, Duration::from_secs(1)).await,
        Err(RpcError::Unreachable)
    );
}

/// A server that answers `d` after `d` milliseconds.
fn slow_server(name: &str) -> NodeId {
    node::node(name).build(|| async {
        sim_net::serve(PORT, |d: u64| async move {
            sleep(Duration::from_millis(d)).await;
            d
        })
        .expect("bind")
        .await
        .ok();
    })
}

#[sim_runtime::test]
async fn every_call_times_out_at_its_own_deadline_on_a_shared_connection() {
    let (_, addr) = started(slow_server("slow")).await;
    let timed = |d: u64, timeout_ms: u64| async move {
        let start = time::now();
        let r = echo(addr, d, Duration::from_millis(timeout_ms)).await;
        (r, time::now() - start)
    };
    // A long-timeout call first, then a shorter one on the same connection: the second
    // must not wait for the first one's deadline.
    let long = spawn(timed(60_000, 5_000));
    sleep(Duration::from_millis(1)).await;
    let short = spawn(timed(60_000, 100));
    let quick = spawn(timed(5, 1_000));
    let (short_r, short_took) = short.await.unwrap();
    assert_eq!(short_r, Err(RpcError::Timeout));
    assert_eq!(short_took, Duration::from_millis(100));
    let (quick_r, _) = quick.await.unwrap();
    assert_eq!(quick_r, Ok(5));
    let (long_r, long_took) = long.await.unwrap();
    assert_eq!(long_r, Err(RpcError::Timeout));
    assert_eq!(long_took, Duration::from_millis(5_000));
}

#[sim_runtime::test]
async fn a_call_dropped_mid_flight_leaves_the_connection_usable() {
    let (_, addr) = started(slow_server("slow")).await;
    for _ in 0..3 {
        // The caller gives up first: the call's future is dropped, its reply later
        // arrives for nobody.
        let r = time::timeout(
            Duration::from_millis(20),
            echo(addr, 50, Duration::from_secs(1)),
        );
        assert!(r.await.is_err());
    }
    assert_eq!(echo(addr, 7, Duration::from_secs(1)).await, Ok(7));
    sleep(Duration::from_millis(100)).await;
    assert_eq!(echo(addr, 8, Duration::from_secs(1)).await, Ok(8));
}

/// A future that counts how often it is polled.
struct Counted<F> {
    inner: std::pin::Pin<Box<F>>,
    polls: Rc<Cell<u32>>,
}

impl<F: std::future::Future> std::future::Future for Counted<F> {
    type Output = F::Output;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        self.polls.set(self.polls.get() + 1);
        self.inner.as_mut().poll(cx)
    }
}

/// A receiver waiting on an empty connection is woken once, when the message arrives:
/// not also when it is sent, only to find it in flight and set a timer of its own.
#[sim_runtime::test]
async fn a_waiting_receiver_wakes_once_at_the_arrival() {
    let polls = Rc::new(Cell::new(0u32));
    let arrivals = Rc::new(RefCell::new(Vec::new()));
    let (p, a) = (polls.clone(), arrivals.clone());
    let server = node::node("server").build(move || {
        let (p, a) = (p.clone(), a.clone());
        async move {
            let mut l = sim_net::bind::<u64, u64>(PORT).unwrap();
            let mut c = l.accept().await.unwrap();
            loop {
                let recv = Counted {
                    inner: Box::pin(c.recv()),
                    polls: p.clone(),
                };
                match recv.await {
                    Ok(x) => a.borrow_mut().push((x, time::now())),
                    Err(_) => break,
                }
            }
        }
    });
    sleep(Duration::from_millis(1)).await;
    let ten = LinkConfig::default().with_latency(Latency::Constant(Duration::from_millis(10)));
    sim_net::set_link(node::current(), server, ten);
    let conn = sim_net::connect::<u64, u64>(Addr::new(server, PORT), Duration::from_secs(1))
        .await
        .unwrap();
    sleep(Duration::from_millis(50)).await;
    polls.set(0);
    let mut sent = Vec::new();
    for i in 0..5u64 {
        sent.push(time::now());
        conn.send(i).unwrap();
        sleep(Duration::from_millis(100)).await;
    }
    let arrived = arrivals.borrow();
    assert_eq!(arrived.len(), 5);
    for ((x, at), t) in arrived.iter().zip(&sent) {
        assert_eq!(*at, *t + Duration::from_millis(10), "message {x} on time");
    }
    // The receiver parked on an empty queue before each message; one more poll takes it.
    assert_eq!(polls.get(), 2 * 5, "two polls per message, not three");
}

/// A receiver whose message is still in flight when the sender's node dies learns of the
/// reset at the crash, not when the lost message would have arrived.
#[sim_runtime::test]
async fn a_reset_reaches_a_receiver_whose_message_is_in_flight() {
    let client = node::node("client").build(|| async {
        sleep(Duration::from_millis(1)).await;
        let server = NodeId::MAIN;
        let conn = sim_net::connect::<u64, u64>(Addr::new(server, PORT), Duration::from_secs(1))
            .await
            .unwrap();
        sleep(Duration::from_millis(10)).await;
        conn.send(7).unwrap();
        std::future::pending::<()>().await;
    });
    let mut l = sim_net::bind::<u64, u64>(PORT).unwrap();
    let slow = LinkConfig::default().with_latency(Latency::Constant(Duration::from_millis(100)));
    sim_net::set_link(node::current(), client, slow);
    let mut c = l.accept().await.unwrap();
    let waiter = spawn(async move {
        let r = c.recv().await;
        (r, time::now())
    });
    // The handshake's answer takes 100 ms to reach the client, which sends 10 ms later:
    // 150 ms from now its message is halfway across the 100 ms link.
    sleep(Duration::from_millis(150)).await;
    let killed_at = time::now();
    client.kill();
    let (r, at) = waiter.await.unwrap();
    assert_eq!(r, Err(NetError::Reset));
    assert_eq!(at, killed_at, "the reset is seen at the crash");
}

/// `Conn::is_open` says whether a send can still succeed: true until the peer crashes.
#[sim_runtime::test]
async fn a_connection_is_open_until_its_peer_crashes() {
    let (server, addr) = started(echo_server("server")).await;
    let conn = sim_net::connect::<u64, u64>(addr, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(conn.is_open());
    assert_eq!(conn.send(1), Ok(()));
    server.kill();
    assert!(!conn.is_open());
    assert_eq!(conn.send(2), Err(NetError::Reset));
}
