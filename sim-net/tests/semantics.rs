//! One test per network fault and crash semantic, each a small simulated program.

use std::cell::RefCell;
use std::rc::Rc;

use sim_net::{Addr, Latency, LinkConfig, NetError, RpcError, Verdict};
use sim_runtime::node::{self, NodeId};
use sim_runtime::time::{self, sleep, Duration};
use sim_runtime::{spawn, Probability, Sim};

const PORT: u16 = 7000;

/// An echo RPC server node.
fn echo_server(name: &str) -> NodeId {
    node::node(name).build(|| async {
        sim_net::serve(PORT, |x: u64| async move { x })
            .expect("bind")
            .await
            .ok();
    })
}

/// A server node once it listens (its factory binds within the first millisecond), and
/// its address.
async fn started(server: NodeId) -> (NodeId, Addr) {
    sleep(Duration::from_millis(1)).await;
    (server, Addr::new(server, PORT))
}

/// One call to an echo server.
async fn echo(addr: Addr, x: u64, timeout: Duration) -> Result<u64, RpcError> {
    sim_net::call::<u64, u64>(addr, x, timeout).await
}

fn run<T: 'static>(seed: u64, f: impl std::future::Future<Output = T> + 'static) -> T {
    let r = Sim::new(seed).run(|| f);
    assert!(r.report.is_pass(), "{}", r.report);
    r.output.expect("main completed")
}

#[test]
fn rpc_round_trip_works() {
    let got = run(1, async {
        let (_, addr) = started(echo_server("server")).await;
        let mut out = Vec::new();
        for i in 0..10u64 {
            out.push(echo(addr, i, Duration::from_secs(1)).await.unwrap());
        }
        out
    });
    assert_eq!(got, (0..10).collect::<Vec<_>>());
}

#[test]
fn partition_gives_timeouts_not_refusals_and_repair_heals() {
    run(2, async {
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
    });
}

#[test]
fn crash_gives_refused_at_once_and_resets_open_connections() {
    run(3, async {
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
    });
}

#[test]
fn restart_binds_again_and_old_connections_stay_dead() {
    run(4, async {
        let (server, addr) = started(echo_server("server")).await;
        let mut old = sim_net::connect::<sim_net::rpc::Envelope<u64>, sim_net::rpc::Envelope<u64>>(
            addr,
            Duration::from_secs(1),
        )
        .await
        .unwrap();
        server.restart();
        sleep(Duration::from_millis(1)).await;
        assert_eq!(
            old.send(sim_net::rpc::Envelope { id: 0, body: 1 }).err(),
            Some(NetError::Reset)
        );
        assert_eq!(old.recv().await.err(), Some(NetError::Reset));
        assert_eq!(echo(addr, 5, Duration::from_secs(1)).await, Ok(5));
    });
}

#[test]
fn clog_holds_messages_then_delivers_them_in_order() {
    run(5, async {
        let got = Rc::new(RefCell::new(Vec::new()));
        let sink = got.clone();
        let server = node::node("server").build(move || {
            let sink = sink.clone();
            async move {
                let mut l = sim_net::bind::<u64, u64>(PORT).unwrap();
                let mut c = l.accept().await.unwrap();
                while let Ok(x) = c.recv().await {
                    sink.borrow_mut().push((x, time::now()));
                }
            }
        });
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
        let got = got.borrow();
        assert_eq!(
            got.iter().map(|(x, _)| *x).collect::<Vec<_>>(),
            (0..20).collect::<Vec<_>>()
        );
        assert!(got.iter().all(|(_, t)| *t >= unclogged_at));
    });
}

#[test]
fn hold_and_release_one_link_only() {
    run(6, async {
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
    });
}

#[test]
fn one_way_partition_cuts_only_one_direction() {
    run(7, async {
        let a = node::node("a").build(|| async {});
        let b = node::node("b").build(|| async {});
        let got = Rc::new(RefCell::new(Vec::new()));
        let (ga, gb) = (got.clone(), got.clone());
        node::spawn_on_node(a, "a", async move {
            let mut s = sim_net::bind_datagram::<&'static str>(1).unwrap();
            while let Ok((_, m)) = s.recv_from().await {
                ga.borrow_mut().push(m);
            }
        })
        .detach();
        node::spawn_on_node(b, "b", async move {
            let mut s = sim_net::bind_datagram::<&'static str>(1).unwrap();
            while let Ok((_, m)) = s.recv_from().await {
                gb.borrow_mut().push(m);
            }
        })
        .detach();
        sleep(Duration::from_millis(1)).await;
        sim_net::partition_oneway(&[a], &[b]);
        let ha = node::spawn_on_node(a, "send-a", async move {
            let s = sim_net::bind_datagram::<&'static str>(2).unwrap();
            s.send_to(Addr::new(b, 1), "a->b");
            sleep(Duration::from_secs(1)).await;
        });
        let hb = node::spawn_on_node(b, "send-b", async move {
            let s = sim_net::bind_datagram::<&'static str>(2).unwrap();
            s.send_to(Addr::new(a, 1), "b->a");
            sleep(Duration::from_secs(1)).await;
        });
        ha.await.unwrap();
        hb.await.unwrap();
        assert_eq!(*got.borrow(), vec!["b->a"]);
    });
}

/// Runs `n` datagrams over a link and returns how many copies arrived.
fn datagrams_delivered(seed: u64, link: LinkConfig, n: u64) -> u64 {
    run(seed, async move {
        let count = Rc::new(RefCell::new(0u64));
        let c2 = count.clone();
        let rx = node::node("rx").build(move || {
            let c2 = c2.clone();
            async move {
                let mut s = sim_net::bind_datagram::<u64>(1).unwrap();
                while s.recv_from().await.is_ok() {
                    *c2.borrow_mut() += 1;
                }
            }
        });
        sleep(Duration::from_millis(1)).await;
        sim_net::set_link(node::current(), rx, link);
        let s = sim_net::bind_datagram::<u64>(2).unwrap();
        for i in 0..n {
            s.send_to(Addr::new(rx, 1), i);
        }
        sleep(Duration::from_secs(5)).await;
        let n = *count.borrow();
        n
    })
}

#[test]
fn duplication_delivers_twice() {
    let link = LinkConfig::default().with_duplication(Probability::ALWAYS);
    assert_eq!(datagrams_delivered(8, link, 100), 200);
}

#[test]
fn loss_never_delivers() {
    let link = LinkConfig::default().with_loss(Probability::ALWAYS);
    assert_eq!(datagrams_delivered(9, link, 100), 0);
    let half = LinkConfig::default().with_loss(Probability::of(0.5));
    let got = datagrams_delivered(9, half, 1000);
    assert!((420..580).contains(&got), "about half arrive: {got}");
}

#[test]
fn fifo_within_a_connection_under_jitter() {
    let got = run(10, async {
        let got = Rc::new(RefCell::new(Vec::new()));
        let sink = got.clone();
        let server = node::node("server").build(move || {
            let sink = sink.clone();
            async move {
                let mut l = sim_net::bind::<u64, u64>(PORT).unwrap();
                let mut c = l.accept().await.unwrap();
                while let Ok(x) = c.recv().await {
                    sink.borrow_mut().push(x);
                }
            }
        });
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
        let v = got.borrow().clone();
        v
    });
    assert_eq!(got, (0..500).collect::<Vec<_>>());
}

#[test]
fn datagrams_reorder_under_jitter() {
    let got = run(11, async {
        let got = Rc::new(RefCell::new(Vec::new()));
        let sink = got.clone();
        let rx = node::node("rx").build(move || {
            let sink = sink.clone();
            async move {
                let mut s = sim_net::bind_datagram::<u64>(1).unwrap();
                while let Ok((_, x)) = s.recv_from().await {
                    sink.borrow_mut().push(x);
                }
            }
        });
        sleep(Duration::from_millis(1)).await;
        let link =
            LinkConfig::default().with_reordering(Probability::of(0.3), Duration::from_millis(50));
        sim_net::set_link(node::current(), rx, link);
        let s = sim_net::bind_datagram::<u64>(2).unwrap();
        for i in 0..200 {
            s.send_to(Addr::new(rx, 1), i);
        }
        sleep(Duration::from_secs(1)).await;
        let v = got.borrow().clone();
        v
    });
    assert_eq!(got.len(), 200);
    assert_ne!(
        got,
        (0..200).collect::<Vec<_>>(),
        "some datagrams overtook others"
    );
}

#[test]
fn no_message_from_a_killed_node_is_delivered_after_the_kill() {
    run(12, async {
        let got = Rc::new(RefCell::new(Vec::new()));
        let sink = got.clone();
        let rx = node::node("rx").build(move || {
            let sink = sink.clone();
            async move {
                let mut s = sim_net::bind_datagram::<u64>(1).unwrap();
                while let Ok((_, x)) = s.recv_from().await {
                    sink.borrow_mut().push((x, time::now()));
                }
            }
        });
        let slow =
            LinkConfig::default().with_latency(Latency::Constant(Duration::from_millis(100)));
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
    });
}

#[test]
fn rule_hook_drops_the_first_reply_only() {
    run(13, async {
        let server = echo_server("server");
        sleep(Duration::from_millis(1)).await;
        let dropped = Rc::new(RefCell::new(0));
        let d2 = dropped.clone();
        sim_net::add_rule(move |m| {
            if m.is_reply && m.src.node == server && *d2.borrow() == 0 {
                *d2.borrow_mut() += 1;
                Verdict::Drop
            } else {
                Verdict::Pass
            }
        });
        let addr = Addr::new(server, PORT);
        assert_eq!(
            echo(addr, 1, Duration::from_millis(500)).await,
            Err(RpcError::Timeout)
        );
        assert_eq!(echo(addr, 2, Duration::from_millis(500)).await, Ok(2));
        assert_eq!(*dropped.borrow(), 1);
    });
}

#[test]
fn paused_server_makes_calls_time_out_and_resume_answers() {
    run(14, async {
        let (server, addr) = started(echo_server("server")).await;
        server.pause();
        assert_eq!(
            echo(addr, 1, Duration::from_millis(200)).await,
            Err(RpcError::Timeout)
        );
        server.resume();
        assert_eq!(echo(addr, 2, Duration::from_millis(200)).await, Ok(2));
    });
}

#[test]
fn isolate_cuts_a_node_from_everyone_until_rejoin() {
    run(15, async {
        let (server, addr) = started(echo_server("server")).await;
        sim_net::isolate(server);
        assert_eq!(
            echo(addr, 1, Duration::from_millis(100)).await,
            Err(RpcError::Timeout)
        );
        sim_net::rejoin(server);
        assert_eq!(echo(addr, 2, Duration::from_secs(1)).await, Ok(2));
    });
}

#[test]
fn latency_can_change_mid_run() {
    run(16, async {
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
    });
}

#[test]
fn unknown_node_is_unreachable() {
    run(17, async {
        let bogus = Addr::new(NodeId(999), PORT);
        assert_eq!(
            echo(bogus, 1, Duration::from_secs(1)).await,
            Err(RpcError::Unreachable)
        );
    });
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

#[test]
fn every_call_times_out_at_its_own_deadline_on_a_shared_connection() {
    run(3, async {
        let (_, addr) = started(slow_server("slow")).await;
        let timed = |d: u64, timeout_ms: u64| async move {
            let start = time::now();
            let r = echo(addr, d, Duration::from_millis(timeout_ms)).await;
            (r, time::now() - start)
        };
        // A long-timeout call first, then a shorter one on the same connection: the
        // second must not wait for the first one's deadline.
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
    });
}

#[test]
fn a_call_dropped_mid_flight_leaves_the_connection_usable() {
    run(4, async {
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
    });
}

/// A future that counts how often it is polled.
struct Counted<F> {
    inner: std::pin::Pin<Box<F>>,
    polls: Rc<std::cell::Cell<u32>>,
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
#[test]
fn a_waiting_receiver_wakes_once_at_the_arrival() {
    let (polls, arrivals) = run(17, async {
        let polls = Rc::new(std::cell::Cell::new(0u32));
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
        let arrived = arrivals.borrow().clone();
        assert_eq!(arrived.len(), 5);
        for ((x, at), t) in arrived.iter().zip(&sent) {
            assert_eq!(*at, *t + Duration::from_millis(10), "message {x} on time");
        }
        (polls.get(), arrived.len() as u32)
    });
    // The receiver parked on an empty queue before each message; one more poll takes it.
    assert_eq!(polls, 2 * arrivals, "two polls per message, not three");
}

/// A receiver whose message is still in flight when the sender's node dies learns of the
/// reset at the crash, not when the lost message would have arrived.
#[test]
fn a_reset_reaches_a_receiver_whose_message_is_in_flight() {
    run(18, async {
        let client = node::node("client").build(|| async {
            sleep(Duration::from_millis(1)).await;
            let server = NodeId::MAIN;
            let conn =
                sim_net::connect::<u64, u64>(Addr::new(server, PORT), Duration::from_secs(1))
                    .await
                    .unwrap();
            sleep(Duration::from_millis(10)).await;
            conn.send(7).unwrap();
            std::future::pending::<()>().await;
        });
        let mut l = sim_net::bind::<u64, u64>(PORT).unwrap();
        let slow =
            LinkConfig::default().with_latency(Latency::Constant(Duration::from_millis(100)));
        sim_net::set_link(node::current(), client, slow);
        let mut c = l.accept().await.unwrap();
        let waiter = spawn(async move {
            let r = c.recv().await;
            (r, time::now())
        });
        // The handshake's answer takes 100 ms to reach the client, which sends 10 ms
        // later: 150 ms from now its message is halfway across the 100 ms link.
        sleep(Duration::from_millis(150)).await;
        let killed_at = time::now();
        client.kill();
        let (r, at) = waiter.await.unwrap();
        assert_eq!(r, Err(NetError::Reset));
        assert_eq!(at, killed_at, "the reset is seen at the crash");
    });
}

/// `Conn::is_open` says whether a send can still succeed: true until the peer crashes.
#[test]
fn a_connection_is_open_until_its_peer_crashes() {
    run(19, async {
        let (server, addr) = started(echo_server("server")).await;
        let conn = sim_net::connect::<u64, u64>(addr, Duration::from_secs(1))
            .await
            .unwrap();
        assert!(conn.is_open());
        assert_eq!(conn.send(1), Ok(()));
        server.kill();
        assert!(!conn.is_open());
        assert_eq!(conn.send(2), Err(NetError::Reset));
    });
}
