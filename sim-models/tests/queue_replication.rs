//! Replication on three brokers: a leader crash elects an in-sync replica; with `acks=1`
//! a record acknowledged by the old leader but not yet copied is lost (and the checker
//! finds it), with `acks=all` and `min.insync.replicas=2` the same schedule loses nothing;
//! a too-small ISR refuses `acks=all` writes; a paused leader comes back as a follower.

mod queue_support;

use queue_support::{after_follower_poll, producer_config, read_all, replicated};
use sim_models::queue::checker::{CheckReport, Checker, OrderViolation};
use sim_models::queue::{
    self, Acks, BrokerId, Cluster, Config, ProduceError, Producer, ProducerConfig,
};
use sim_runtime::time::{self, Duration};

/// Waits until the controller names a leader other than `old`.
async fn new_leader<V: Clone + 'static>(cluster: &Cluster<V>, old: BrokerId) -> BrokerId {
    for _ in 0..200 {
        if let Some(l) = cluster.leader("t", 0) {
            if l != old {
                return l;
            }
        }
        time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no new leader elected");
}

/// The shared schedule: ten records, then the leader is cut off from its followers, takes
/// record 100, crashes, and the links heal; five more records go to the new leader, the
/// old one restarts, and a consumer reads everything. Returns the checker's report and
/// the values read.
async fn leader_crash_run(acks: Acks, min_isr: usize) -> (CheckReport, Vec<u64>) {
    let checker = Checker::capture();
    let cluster = queue::start::<u64>("kafka", replicated(min_isr));
    cluster.create_topic("t", 1, 3).await.unwrap();
    let producer = Producer::new(cluster.addrs(), producer_config(acks));
    for i in 0..10 {
        producer.send("t", None, i).await.unwrap();
    }
    time::sleep(Duration::from_secs(1)).await;
    let old = cluster.leader("t", 0).unwrap();
    let isr_before = cluster.isr("t", 0);
    assert_eq!(isr_before.len(), 3);
    let leader_node = cluster.broker_node(old);
    let followers: Vec<_> = (0..3)
        .filter(|b| *b != old)
        .map(|b| cluster.broker_node(b))
        .collect();
    sim_net::partition(&[leader_node], &followers);

    let p = producer.clone();
    let pending = sim_runtime::spawn(async move { p.send("t", None, 100).await });
    time::sleep(Duration::from_millis(200)).await;
    cluster.crash(old);
    sim_net::repair(&[leader_node], &followers);

    let leader = new_leader(&cluster, old).await;
    assert!(
        isr_before.contains(&leader),
        "only an in-sync replica may lead"
    );
    let meta = pending
        .await
        .unwrap()
        .expect("acknowledged, by the old or the new leader");
    assert!(meta.offset.is_some());
    for i in 101..106 {
        producer.send("t", None, i).await.unwrap();
    }
    cluster.restart(old);
    let found = read_all(&cluster, 16, Duration::from_secs(20)).await;
    // The restarted broker catches up with the new leader's log.
    time::sleep(Duration::from_secs(3)).await;
    let ends: Vec<_> = (0..3).map(|b| cluster.log_end_offset(b, "t", 0)).collect();
    assert!(
        ends.iter().all(|e| *e == ends[0]),
        "replicas converge: {ends:?}"
    );
    (checker.check(), found)
}

#[sim_runtime::test]
async fn acks_1_leader_crash_loses_an_acknowledged_record_and_the_checker_finds_it() {
    let (report, found) = leader_crash_run(Acks::One, 1).await;
    assert!(
        !found.contains(&100),
        "record 100 was truncated away: {found:?}"
    );
    assert_eq!(found.len(), 15);
    assert_eq!(report.lost.len(), 1, "{report:#?}");
    let lost = &report.lost[0];
    assert_eq!(lost.offset, 10);
    assert!(
        lost.overwritten_by.is_some(),
        "the new leader reused offset 10"
    );
    assert!(report
        .order
        .iter()
        .any(|v| matches!(v, OrderViolation::InconsistentOffset { offset: 10, .. })));
    assert!(!report.is_valid());
}

#[sim_runtime::test]
async fn acks_all_with_min_isr_2_loses_nothing_under_the_same_schedule() {
    let (report, found) = leader_crash_run(Acks::All, 2).await;
    assert!(report.is_valid(), "{report:#?}");
    assert!(report.lost.is_empty() && report.unseen.is_empty());
    assert!(report.duplicates.is_empty(), "idempotent: {report:#?}");
    assert_eq!(found.iter().filter(|v| **v == 100).count(), 1);
    assert_eq!(found.len(), 16);
}

#[sim_runtime::test]
async fn too_small_an_isr_refuses_acks_all_but_not_acks_1() {
    let cluster = queue::start::<u32>("kafka", replicated(2));
    cluster.create_topic("t", 1, 3).await.unwrap();
    let leader = cluster.leader("t", 0).unwrap();
    let once = ProducerConfig {
        retries: 0,
        ..producer_config(Acks::All)
    };
    let all = Producer::new(cluster.addrs(), once);
    let one = Producer::new(cluster.addrs(), producer_config(Acks::One));
    // Retried: a follower that asked before the leader knew it leads backs off a second.
    let warm_up = Producer::new(cluster.addrs(), producer_config(Acks::All));
    warm_up.send("t", None, 1).await.unwrap();
    let followers: Vec<BrokerId> = (0..3).filter(|b| *b != leader).collect();
    for f in &followers {
        cluster.crash(*f);
    }
    // Fenced followers leave the ISR.
    time::sleep(Duration::from_secs(4)).await;
    assert_eq!(cluster.isr("t", 0), vec![leader]);
    assert_eq!(
        all.send("t", None, 2).await,
        Err(ProduceError::NotEnoughReplicas)
    );
    one.send("t", None, 3).await.unwrap();
    for f in &followers {
        cluster.restart(*f);
    }
    // They catch up and are added back; acks=all works again.
    time::sleep(Duration::from_secs(4)).await;
    assert_eq!(cluster.isr("t", 0).len(), 3, "{:?}", cluster.isr("t", 0));
    all.send("t", None, 4).await.unwrap();
}

#[sim_runtime::test]
async fn a_paused_leader_is_replaced_and_comes_back_as_a_follower() {
    let checker = Checker::capture();
    let cluster = queue::start::<u64>("kafka", replicated(2));
    cluster.create_topic("t", 1, 3).await.unwrap();
    let producer = Producer::new(cluster.addrs(), producer_config(Acks::All));
    for i in 0..5 {
        producer.send("t", None, i).await.unwrap();
    }
    let old = cluster.leader("t", 0).unwrap();
    cluster.pause(old);
    for i in 5..10 {
        producer.send("t", None, i).await.unwrap();
    }
    assert_ne!(cluster.leader("t", 0), Some(old));
    cluster.resume(old);
    time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        cluster.log_end_offset(old, "t", 0),
        Some(10),
        "caught up as a follower"
    );
    let found = read_all(&cluster, 10, Duration::from_secs(10)).await;
    assert_eq!(found, (0..10).collect::<Vec<_>>());
    let report = checker.check();
    assert!(
        report.is_valid() && report.duplicates.is_empty(),
        "{report:#?}"
    );
}

#[sim_runtime::test]
async fn a_follower_cut_off_from_its_leader_leaves_the_isr_and_rejoins_after_catching_up() {
    let checker = Checker::capture();
    let cluster = queue::start::<u64>("kafka", replicated(2));
    cluster.create_topic("t", 1, 3).await.unwrap();
    let producer = Producer::new(cluster.addrs(), producer_config(Acks::All));
    for i in 0..5 {
        producer.send("t", None, i).await.unwrap();
    }
    let leader = cluster.leader("t", 0).unwrap();
    let follower = (0..3).find(|b| *b != leader).unwrap();
    let (l, f) = (cluster.broker_node(leader), cluster.broker_node(follower));
    // Only the replication link is cut: the follower still heartbeats to the controller,
    // so it is not fenced; the leader must shrink the ISR itself once the follower lagged
    // for replica.lag.time.max (5 s).
    sim_net::partition(&[f], &[l]);
    let started = time::now();
    producer.send("t", None, 5).await.unwrap();
    assert!(
        time::now() - started >= Duration::from_secs(5),
        "acks=all waited for the shrink"
    );
    assert!(!cluster.isr("t", 0).contains(&follower));
    assert_eq!(cluster.isr("t", 0).len(), 2, "still min.insync.replicas");
    sim_net::repair(&[f], &[l]);
    for _ in 0..100 {
        if cluster.isr("t", 0).len() == 3 {
            break;
        }
        time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(cluster.isr("t", 0).len(), 3, "caught up and added back");
    assert_eq!(cluster.log_end_offset(follower, "t", 0), Some(6));
    let found = read_all(&cluster, 6, Duration::from_secs(10)).await;
    assert_eq!(found, (0..6).collect::<Vec<_>>());
    let report = checker.check();
    assert!(
        report.is_valid() && report.duplicates.is_empty(),
        "{report:#?}"
    );
}

#[sim_runtime::test]
async fn replica_fetch_delay_leaves_acks_1_records_on_the_leader_alone_for_a_while() {
    let config = Config {
        replica_fetch_delay: Duration::from_secs(1),
        ..replicated(1)
    };
    let cluster = queue::start::<u64>("kafka", config);
    cluster.create_topic("t", 1, 3).await.unwrap();
    let producer = Producer::new(cluster.addrs(), producer_config(Acks::One));
    time::sleep(Duration::from_secs(2)).await;
    let leader = cluster.leader("t", 0).unwrap();
    let follower = (0..3).find(|b| *b != leader).unwrap();
    // Send just after the leader answered one of the follower's polls: its next poll is
    // a whole delay away.
    after_follower_poll(&cluster, leader, follower).await;
    producer.send("t", None, 1).await.unwrap();
    assert_eq!(cluster.log_end_offset(leader, "t", 0), Some(1));
    assert_eq!(
        cluster.log_end_offset(follower, "t", 0),
        Some(0),
        "not copied yet"
    );
    time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        cluster.log_end_offset(follower, "t", 0),
        Some(1),
        "copied on the next poll"
    );
}
