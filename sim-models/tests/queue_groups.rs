//! Consumer groups: redelivery after a crash before a commit, rebalances on session
//! timeout and on join (never two owners at once), seek, and auto-commit's windows.

mod queue_support;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use queue_support::{group_config, produce, replicated, topic_with, values, wait_until};
use sim_models::queue::checker::{Checker, Duplicate};
use sim_models::queue::events::{AssignEvent, GroupChange, GroupEvent};
use sim_models::queue::{
    self, Config, ConsumeError, Consumer, ConsumerConfig, Producer, ProducerConfig, TopicPartition,
};
use sim_runtime::node;
use sim_runtime::time::{self, Duration};
use sim_runtime::trace::{self, Capture};

#[sim_runtime::test]
async fn a_consumer_that_crashes_before_committing_sees_its_records_again() {
    let checker = Checker::capture();
    let cluster = topic_with(0..10).await;
    // The worker processes one record at a time and commits after the fifth only.
    let processed: Rc<RefCell<Vec<u64>>> = Rc::default();
    let (c, p) = (cluster.clone(), Rc::clone(&processed));
    let worker = node::node("worker").build(move || {
        let (cluster, processed) = (c.clone(), Rc::clone(&p));
        async move {
            let consumer =
                Consumer::<u64>::join(cluster.addrs(), "g", &["t"], group_config("worker"))
                    .await
                    .unwrap();
            loop {
                for r in consumer.poll(1, Duration::from_secs(1)).await.unwrap() {
                    processed.borrow_mut().push(r.value);
                    if r.value == 4 {
                        consumer.commit().await.unwrap();
                    }
                }
            }
        }
    });
    wait_until(Duration::from_secs(20), || processed.borrow().len() == 10).await;
    worker.kill();
    worker.restart();
    wait_until(Duration::from_secs(20), || processed.borrow().len() == 15).await;
    let expected: Vec<u64> = (0..10).chain(5..10).collect();
    assert_eq!(
        *processed.borrow(),
        expected,
        "resumed from the committed offset 5"
    );
    let report = checker.check();
    assert!(report.is_valid(), "{report:#?}");
    let again: BTreeSet<u64> = report
        .delivered_twice()
        .iter()
        .map(|d| match d {
            Duplicate::DeliveredTwice { offset, .. } => *offset,
            Duplicate::StoredTwice { .. } => unreachable!(),
        })
        .collect();
    assert_eq!(
        again,
        (5..10).collect(),
        "the uncommitted records, delivered twice"
    );
}

/// Who owns which partition, per consumer, from the `queue.assign` events.
fn ownership(assigns: &Capture<AssignEvent>) -> Vec<(String, Vec<TopicPartition>)> {
    assigns
        .events()
        .iter()
        .map(|a| (a.event.consumer.clone(), a.event.partitions.clone()))
        .collect()
}

/// Replays assignment changes and asserts no partition ever had two owners.
fn assert_never_two_owners(changes: &[(String, Vec<TopicPartition>)]) {
    let mut owned: BTreeMap<String, BTreeSet<TopicPartition>> = BTreeMap::new();
    for (consumer, partitions) in changes {
        owned.insert(consumer.clone(), partitions.iter().cloned().collect());
        let mut seen = BTreeSet::new();
        for set in owned.values() {
            for tp in set {
                assert!(
                    seen.insert(tp.clone()),
                    "{tp} owned twice after {consumer}'s change: {owned:?}"
                );
            }
        }
    }
}

#[sim_runtime::test]
async fn a_rebalance_after_a_members_session_timeout_moves_its_partitions() {
    let assigns = trace::capture::<AssignEvent>();
    let group_changes = trace::capture::<GroupEvent>();
    let cluster = queue::start::<u64>("kafka", Config::default());
    cluster.create_topic("t", 4, 1).await.unwrap();
    // A member on its own node, polling forever.
    let c = cluster.clone();
    let first = node::node("w1").build(move || {
        let cluster = c.clone();
        async move {
            let consumer = Consumer::<u64>::join(cluster.addrs(), "g", &["t"], group_config("w1"))
                .await
                .unwrap();
            loop {
                let _ = consumer.poll(10, Duration::from_secs(1)).await;
            }
        }
    });
    time::sleep(Duration::from_secs(1)).await;
    let second = Consumer::<u64>::join(cluster.addrs(), "g", &["t"], group_config("w2"))
        .await
        .unwrap();
    wait_until(Duration::from_secs(10), || second.assignment().len() == 2).await;
    assert_eq!(
        second.assignment(),
        vec![TopicPartition::new("t", 2), TopicPartition::new("t", 3)]
    );

    // w1 stops (a long GC pause): after the 3 s session timeout its partitions move.
    first.pause();
    let paused_at = time::now();
    time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        second.assignment().len(),
        2,
        "still within the session timeout"
    );
    wait_until(Duration::from_secs(10), || second.assignment().len() == 4).await;
    assert!(time::now() - paused_at >= Duration::from_secs(3));
    let expired: Vec<GroupEvent> = group_changes
        .values()
        .into_iter()
        .filter(|g| g.change == GroupChange::Expire)
        .collect();
    assert_eq!(expired.len(), 1);
    assert!(expired[0].member.starts_with("w1"));

    // Back from its pause, the zombie learns it was removed: it gives up what it held
    // (uncommitted), re-joins as a new member, and the group splits the partitions
    // again.
    first.resume();
    wait_until(Duration::from_secs(10), || second.assignment().len() == 2).await;
    let w1_owns = |n: usize| {
        let last = ownership(&assigns)
            .into_iter()
            .rfind(|(c, _)| c.starts_with("w1"));
        last.is_some_and(|(_, p)| p.len() == n)
    };
    wait_until(Duration::from_secs(10), || w1_owns(2)).await;
    let w1: Vec<Vec<TopicPartition>> = ownership(&assigns)
        .into_iter()
        .filter(|(c, _)| c.starts_with("w1"))
        .map(|(_, p)| p)
        .collect();
    let n = w1.len();
    assert!(n >= 3, "{w1:?}");
    assert_eq!(
        (w1[n - 3].len(), w1[n - 2].len(), w1[n - 1].len()),
        (2, 0, 2),
        "owned, given up when fenced, assigned again: {w1:?}"
    );
}

#[sim_runtime::test]
async fn a_joining_member_takes_partitions_only_after_the_owner_let_them_go() {
    let checker = Checker::capture();
    let assigns = trace::capture::<AssignEvent>();
    let cluster = queue::start::<u64>("kafka", Config::default());
    cluster.create_topic("t", 4, 1).await.unwrap();
    produce(&cluster, "t", 0..40).await;
    let a = Rc::new(
        Consumer::<u64>::join(cluster.addrs(), "g", &["t"], group_config("a"))
            .await
            .unwrap(),
    );
    assert_eq!(a.assignment().len(), 4);
    let seen: Rc<RefCell<Vec<u64>>> = Rc::default();
    let (a2, s2) = (Rc::clone(&a), Rc::clone(&seen));
    let poller = sim_runtime::spawn(async move {
        loop {
            for r in a2.poll(5, Duration::from_millis(200)).await.unwrap() {
                s2.borrow_mut().push(r.value);
            }
            a2.commit().await.unwrap();
        }
    });
    time::sleep(Duration::from_millis(300)).await;
    let b = Consumer::<u64>::join(cluster.addrs(), "g", &["t"], group_config("b"))
        .await
        .unwrap();
    assert!(b.assignment().is_empty(), "a still owns everything");
    let p = cluster.clone();
    let more = sim_runtime::spawn(async move { produce(&p, "t", 40..80).await });
    let mut b_seen = Vec::new();
    let deadline = time::now() + Duration::from_secs(20);
    while seen.borrow().len() + b_seen.len() < 80 && time::now() < deadline {
        b_seen.extend(
            b.poll(10, Duration::from_millis(200))
                .await
                .unwrap()
                .iter()
                .map(|r| r.value),
        );
    }
    more.await.unwrap();
    drop(poller);
    assert_eq!(a.assignment().len(), 2);
    assert_eq!(b.assignment().len(), 2);
    assert!(!b_seen.is_empty());
    assert_never_two_owners(&ownership(&assigns));
    let report = checker.check();
    assert!(report.is_valid() && report.lost.is_empty(), "{report:#?}");
    let all: BTreeSet<u64> = seen.borrow().iter().chain(b_seen.iter()).copied().collect();
    assert_eq!(all.len(), 80, "every record consumed by someone");
}

#[sim_runtime::test]
async fn seek_rewinds_and_commits_outlive_the_consumer() {
    let checker = Checker::capture();
    let cluster = topic_with(0..6).await;
    let c = Consumer::<u64>::join(cluster.addrs(), "g", &["t"], group_config("c"))
        .await
        .unwrap();
    let first = values(&c.poll(10, Duration::from_secs(2)).await.unwrap());
    assert_eq!(first, vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(
        c.seek("other", 0, 1),
        Err(ConsumeError::NotAssigned(TopicPartition::new("other", 0)))
    );
    c.seek("t", 0, 2).unwrap();
    let again = values(&c.poll(2, Duration::from_secs(2)).await.unwrap());
    assert_eq!(again, vec![2, 3]);
    c.commit().await.unwrap();
    c.close().await.unwrap();
    // A new member resumes at the committed position, 4.
    let d = Consumer::<u64>::join(cluster.addrs(), "g", &["t"], group_config("d"))
        .await
        .unwrap();
    let rest = values(&d.poll(10, Duration::from_secs(2)).await.unwrap());
    assert_eq!(rest, vec![4, 5]);
    let report = checker.check();
    assert!(report.is_valid(), "a seek is not a reorder: {report:#?}");
}

#[sim_runtime::test]
async fn an_explicit_offset_commit_commits_exactly_that_record() {
    let cluster = topic_with(0..6).await;
    let c = Consumer::<u64>::join(cluster.addrs(), "g", &["t"], group_config("c"))
        .await
        .unwrap();
    let polled = c.poll(10, Duration::from_secs(2)).await.unwrap();
    assert_eq!(values(&polled), vec![0, 1, 2, 3, 4, 5]);
    // Commit the record with value 1 before processing it, as at-most-once code does;
    // the position (6) is not what gets committed.
    let record = &polled[1];
    let tp = TopicPartition::new(&record.topic, record.partition);
    c.commit_offsets(&[(tp.clone(), record.offset + 1)])
        .await
        .unwrap();
    assert_eq!(
        cluster.committed_offset("g", "t", 0),
        Some(record.offset + 1)
    );
    assert_eq!(
        c.commit_offsets(&[(TopicPartition::new("other", 0), 1)])
            .await,
        Err(ConsumeError::NotAssigned(TopicPartition::new("other", 0)))
    );
    c.close().await.unwrap();
    let d = Consumer::<u64>::join(cluster.addrs(), "g", &["t"], group_config("d"))
        .await
        .unwrap();
    let rest = values(&d.poll(10, Duration::from_secs(2)).await.unwrap());
    assert_eq!(rest, vec![2, 3, 4, 5]);
}

/// Auto-commit (every 5 s, inside `poll`) with a worker node that crashes at `crash_at`.
/// With `async_processing` the worker hands records to a slow background task, as an
/// application that processes after `poll` returned would. Returns the values processed
/// before the crash and those a second member processed afterwards.
async fn auto_commit_run(async_processing: bool, crash_at: Duration) -> (Vec<u64>, Vec<u64>) {
    let cluster = topic_with(0..10).await;
    let processed: Rc<RefCell<Vec<u64>>> = Rc::default();
    let (c, p) = (cluster.clone(), Rc::clone(&processed));
    let worker = node::node("worker").build(move || {
        let (cluster, processed) = (c.clone(), Rc::clone(&p));
        async move {
            let config = ConsumerConfig {
                auto_commit_interval: Some(Duration::from_secs(5)),
                ..group_config("worker")
            };
            let consumer = Consumer::<u64>::join(cluster.addrs(), "g", &["t"], config)
                .await
                .unwrap();
            loop {
                let batch = consumer.poll(10, Duration::from_secs(1)).await.unwrap();
                if async_processing {
                    let processed = Rc::clone(&processed);
                    sim_runtime::spawn(async move {
                        for r in batch {
                            time::sleep(Duration::from_secs(2)).await;
                            processed.borrow_mut().push(r.value);
                        }
                    })
                    .detach();
                } else {
                    processed.borrow_mut().extend(batch.iter().map(|r| r.value));
                }
            }
        }
    });
    time::sleep(crash_at).await;
    worker.kill();
    let before = processed.borrow().clone();
    let after = Consumer::<u64>::join(cluster.addrs(), "g", &["t"], group_config("after"))
        .await
        .unwrap();
    let mut later = Vec::new();
    let deadline = time::now() + Duration::from_secs(10);
    while time::now() < deadline {
        later.extend(
            after
                .poll(10, Duration::from_millis(500))
                .await
                .unwrap()
                .iter()
                .map(|r| r.value),
        );
    }
    (before, later)
}

#[sim_runtime::test]
async fn auto_commit_duplicates_what_was_polled_since_the_last_commit() {
    // Processed all ten, crashed before the 5 s auto-commit: all ten come again.
    let (before, after) = auto_commit_run(false, Duration::from_secs(3)).await;
    assert_eq!(before, (0..10).collect::<Vec<_>>());
    assert_eq!(after, (0..10).collect::<Vec<_>>());
}

#[sim_runtime::test]
async fn auto_commit_loses_records_processed_after_poll_returned() {
    // The 5 s auto-commit covers all ten records, but the background task had processed
    // only a few when the worker crashed at 8 s: the rest are never processed.
    let (before, after) = auto_commit_run(true, Duration::from_secs(8)).await;
    assert!(before.len() < 10, "{before:?}");
    assert!(after.is_empty(), "committed, so not redelivered: {after:?}");
    let missing: Vec<u64> = (0..10).filter(|v| !before.contains(v)).collect();
    assert!(!missing.is_empty(), "lost to the auto-commit window");
}

#[sim_runtime::test]
async fn consumption_survives_a_coordinator_crash_without_loss() {
    let checker = Checker::capture();
    let cluster = queue::start::<u64>("kafka", replicated(2));
    cluster.create_topic("t", 2, 3).await.unwrap();
    let p = cluster.clone();
    let producing = sim_runtime::spawn(async move {
        let producer = Producer::new(p.addrs(), ProducerConfig::default());
        for v in 0..100 {
            producer.send("t", None, v).await.unwrap();
            time::sleep(Duration::from_millis(30)).await;
        }
    });
    let consumer = Consumer::<u64>::join(cluster.addrs(), "g", &["t"], group_config("c"))
        .await
        .unwrap();
    let coordinator = cluster.leader(sim_models::queue::OFFSETS_TOPIC, 0).unwrap();
    let mut seen = BTreeSet::new();
    let mut crashed = false;
    let deadline = time::now() + Duration::from_secs(60);
    while seen.len() < 100 && time::now() < deadline {
        for r in consumer.poll(10, Duration::from_millis(300)).await.unwrap() {
            seen.insert(r.value);
        }
        // Commits fail while the coordinator moves; the next one covers them.
        let _ = consumer.commit().await;
        if !crashed && seen.len() >= 30 {
            cluster.crash(coordinator);
            crashed = true;
        }
    }
    producing.await.unwrap();
    assert_eq!(seen.len(), 100);
    assert_ne!(
        cluster.leader(sim_models::queue::OFFSETS_TOPIC, 0),
        Some(coordinator)
    );
    let report = checker.check();
    assert!(report.is_valid(), "{report:#?}");
    assert!(report.lost.is_empty() && report.stored_twice().is_empty());
}

#[sim_runtime::test]
async fn a_partition_whose_leader_died_is_fetched_again_while_the_others_keep_flowing() {
    // Records keep arriving on one partition the whole time after the other's leader
    // dies: a consumer that refreshed its metadata only when a poll came back empty would
    // never learn the new leader, and would stall on that partition for good.
    let cluster = queue::start::<u64>("kafka", replicated(2));
    cluster.create_topic("t", 2, 3).await.unwrap();
    // The victim leads one partition and is not the group coordinator: its death
    // then causes no rebalance, which would refresh the metadata by another path.
    let coordinator = cluster.leader(sim_models::queue::OFFSETS_TOPIC, 0);
    let leaders = [cluster.leader("t", 0), cluster.leader("t", 1)];
    assert_ne!(leaders[0], leaders[1], "the test needs two leaders");
    let victim = leaders
        .into_iter()
        .flatten()
        .find(|l| Some(*l) != coordinator)
        .expect("a leader that is not the coordinator");
    let done = Rc::new(std::cell::Cell::new(false));
    let (p, stop) = (cluster.clone(), Rc::clone(&done));
    let producing = sim_runtime::spawn(async move {
        let producer = Producer::new(p.addrs(), ProducerConfig::default());
        // Round-robin over both partitions until the consumer is done.
        let mut v = 0;
        while !stop.get() {
            producer.send("t", None, v).await.unwrap();
            v += 1;
            time::sleep(Duration::from_millis(30)).await;
        }
    });
    let consumer = Consumer::<u64>::join(cluster.addrs(), "g", &["t"], group_config("c"))
        .await
        .unwrap();
    let mut seen = BTreeSet::new();
    let mut crashed = false;
    let deadline = time::now() + Duration::from_secs(30);
    while (0..100).any(|v| !seen.contains(&v)) && time::now() < deadline {
        for r in consumer.poll(10, Duration::from_millis(300)).await.unwrap() {
            seen.insert(r.value);
        }
        if !crashed && seen.len() >= 30 {
            cluster.crash(victim);
            crashed = true;
        }
    }
    done.set(true);
    producing.await.unwrap();
    let missing: Vec<u64> = (0..100).filter(|v| !seen.contains(v)).collect();
    assert!(missing.is_empty(), "never consumed: {missing:?}");
}
