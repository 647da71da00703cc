//! The network's trace: every message a core `net.send` / `net.deliver` event naming its
//! endpoints and kind; connections, refusals, drops, faults, link changes and node
//! deaths as typed events that checkers capture.

mod support;

use std::borrow::Cow;

use sim_net::events::{
    Bind, Connect, DropReason, Dropped, Fault, FaultKind, LinkChange, NodeDown, Refused,
};
use sim_net::{Addr, LinkConfig};
use sim_runtime::node;
use sim_runtime::time::{sleep, Duration};
use sim_runtime::{trace, Probability};

use support::{echo, echo_server, started, PORT};

#[sim_runtime::test]
async fn message_events_name_both_ends_and_the_short_kind() {
    // Messages are core events, read whole by name.
    let log = trace::capture_prefix("net.send");
    let (server, addr) = started(echo_server("server")).await;
    echo(addr, 7, Duration::from_secs(1)).await.unwrap();
    let events = log.snapshot();
    assert_eq!(events.len(), 2, "request and reply");
    let request: serde_json::Value = events[0].fields().expect("valid JSON");
    assert_eq!(request["src"][0], serde_json::json!(0));
    assert_eq!(request["dst"], serde_json::json!([server.0, PORT]));
    assert_eq!(
        request["kind"], "u64",
        "the body's kind, not the envelope's"
    );
    let reply: serde_json::Value = events[1].fields().unwrap();
    assert_eq!(reply["src"], serde_json::json!([server.0, PORT]));
}

#[sim_runtime::test]
async fn binds_connections_refusals_and_node_deaths_are_typed_events() {
    let binds = trace::capture::<Bind>();
    let connects = trace::capture::<Connect>();
    let refusals = trace::capture::<Refused>();
    let deaths = trace::capture::<NodeDown>();
    let (server, addr) = started(echo_server("server")).await;
    echo(addr, 1, Duration::from_secs(1)).await.unwrap();
    server.kill();
    assert!(echo(addr, 2, Duration::from_secs(1)).await.is_err());
    assert_eq!(binds.values(), [Bind { addr }]);
    let connect = connects.values();
    assert_eq!(connect.len(), 1);
    assert_eq!(connect[0].remote, addr);
    assert_eq!(connect[0].local.node, node::current());
    assert_eq!(refusals.values(), [Refused { addr }]);
    assert_eq!(deaths.values(), [NodeDown { node: server }]);
}

#[sim_runtime::test]
async fn faults_and_link_changes_are_typed_events_with_node_ids() {
    let faults = trace::capture::<Fault<'static>>();
    let links = trace::capture::<LinkChange>();
    let a = node::node("a").build(|| async {});
    let b = node::node("b").build(|| async {});
    sim_net::partition(&[a], &[b]);
    sim_net::repair(&[a], &[b]);
    sim_net::clog(a);
    sim_net::unclog(a);
    let slow = LinkConfig::default().with_loss(Probability::of(0.1));
    sim_net::set_link_oneway(a, b, slow);
    sim_net::reset_link(a, b);
    let fault = |fault, a: &[_], b: &[_]| Fault {
        fault,
        a: Cow::Owned(a.to_vec()),
        b: Cow::Owned(b.to_vec()),
    };
    assert_eq!(
        faults.values(),
        [
            fault(FaultKind::Partition, &[a], &[b]),
            fault(FaultKind::Repair, &[a], &[b]),
            fault(FaultKind::Clog, &[a], &[]),
            fault(FaultKind::Unclog, &[a], &[]),
        ]
    );
    let change = |from, to, config| LinkChange {
        from: Some(from),
        to: Some(to),
        config,
    };
    assert_eq!(
        links.values(),
        [
            change(a, b, Some(slow)),
            change(a, b, None),
            change(b, a, None)
        ]
    );
}

#[sim_runtime::test]
async fn a_dropped_datagram_says_where_it_went_and_why() {
    let drops = trace::capture::<Dropped>();
    let rx = node::node("rx").build(|| async {});
    sleep(Duration::from_millis(1)).await;
    let s = sim_net::bind_datagram::<u64>(2).unwrap();
    let dst = Addr::new(rx, 9);
    s.send_to(dst, 1);
    sim_net::partition(&[node::current()], &[rx]);
    s.send_to(dst, 2);
    assert_eq!(
        drops.values(),
        [DropReason::NoSocket, DropReason::Partition].map(|reason| Dropped {
            src: s.local_addr(),
            dst,
            kind: "u64",
            reason,
        })
    );
}
