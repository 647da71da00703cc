//! Kafka's documented guarantees, one test each, where no real broker is there to compare
//! with. Each test names the sentence of Kafka's documentation (or the Jepsen finding) it
//! checks; the guarantees covered elsewhere are listed here with their tests, so that this
//! file is the one index of what the queue model promises and why.
//!
//! | Documented behaviour | Source | Test |
//! |---|---|---|
//! | `acks=0`: "no guarantee can be made that the server has received the record" | producer config `acks` | queue_produce: `acks_0_does_not_wait_and_can_lose_records_silently` |
//! | `acks=1`: "the leader will write the record to its local log but will respond without awaiting full acknowledgement from all followers ... if the leader fail[s] immediately after acknowledging the record but before the followers have replicated it then the record will be lost" | producer config `acks` | queue_replication: `acks_1_leader_crash_loses_an_acknowledged_record_and_the_checker_finds_it` |
//! | `acks=all` with `min.insync.replicas`: "the producer will raise an exception (either NotEnoughReplicas or NotEnoughReplicasAfterAppend)" when the minimum cannot be met | broker config `min.insync.replicas` | queue_replication: `too_small_an_isr_refuses_acks_all_but_not_acks_1`, `acks_all_with_min_isr_2_loses_nothing_under_the_same_schedule` |
//! | `unclean.leader.election.enable`: "replicas not in the ISR set [may] be elected as leader as a last resort, even though doing so may result in data loss" | broker config | here: `without_unclean_election_a_partition_whose_only_in_sync_replica_died_stays_offline_and_loses_nothing`, `unclean_election_loses_records_acknowledged_with_acks_all_by_a_lone_leader` |
//! | the ISR may shrink to the leader alone, which then acknowledges `acks=all` writes by itself: a following leader loss drops them | Jepsen, "Kafka" (2013) | here: `unclean_election_loses_records_acknowledged_with_acks_all_by_a_lone_leader` |
//! | idempotence: "retries will not introduce duplicates" (the broker keeps the last sequence numbers per producer id and partition) | producer config `enable.idempotence`, KIP-98 | queue_produce: `idempotent_retry_after_a_lost_ack_does_not_duplicate` |
//! | a partition that lost an idempotent producer's earlier records answers `OUT_OF_ORDER_SEQUENCE_NUMBER`; the producer starts a new epoch and goes on, instead of failing every later send | KIP-98, KIP-360 | here: `unclean_election_loses_records_acknowledged_with_acks_all_by_a_lone_leader` |
//! | without idempotence, a retry after a lost acknowledgement writes the record twice | producer config `retries` | queue_produce: `non_idempotent_retry_after_a_lost_ack_duplicates_the_record_with_acks_1` |
//! | "only committed messages are ever given out to the consumer" (up to the high watermark) | design docs, "Replication" | here: `a_consumer_sees_a_record_only_once_every_in_sync_replica_has_it` |
//! | `auto.offset.reset`: "earliest: automatically reset the offset to the earliest offset; latest: automatically reset the offset to the latest offset" | consumer config | here: `a_group_with_no_committed_offset_starts_where_auto_offset_reset_says` |
//! | "the committed offset should be the next message your application will consume" | `KafkaConsumer` javadoc, "Offsets and Consumer Position" | queue_groups: `an_explicit_offset_commit_commits_exactly_that_record`, `seek_rewinds_and_commits_outlive_the_consumer` |
//! | a consumer that fails before committing: its partitions move to another member, which starts at the last committed offset, so records are delivered again (at least once) | `KafkaConsumer` javadoc, "Consumer Groups and Topic Subscriptions" | queue_groups: `a_consumer_that_crashes_before_committing_sees_its_records_again` |
//! | a member that stops heartbeating for `session.timeout.ms` is removed and its partitions reassigned | consumer config `session.timeout.ms` | queue_groups: `a_rebalance_after_a_members_session_timeout_moves_its_partitions` |
//! | auto-commit commits what `poll` returned: records processed after `poll` returned can be lost, records polled since the last commit redelivered | `KafkaConsumer` javadoc, "Automatic Offset Committing" | queue_groups: `auto_commit_loses_records_processed_after_poll_returned`, `auto_commit_duplicates_what_was_polled_since_the_last_commit` |
//! | "Kafka only provides a total order over records within a partition" | design docs, "Consumer Position" / "Guarantees" | queue_produce: `order_within_a_partition_is_preserved` |

mod queue_support;

use queue_support::{
    after_follower_poll, producer_config, read_all, replicated, values, wait_until,
};
use sim_models::queue::checker::Checker;
use sim_models::queue::{
    self, Acks, BrokerId, Cluster, Config, Consumer, ConsumerConfig, OffsetReset, Producer,
    ProducerConfig,
};
use sim_runtime::time::{self, Duration};

/// Three brokers with `min.insync.replicas=1` (Kafka's default) and the given unclean
/// election setting.
fn cluster_config(unclean_leader_election: bool) -> Config {
    Config {
        unclean_leader_election,
        ..replicated(1)
    }
}

/// The schedule of Jepsen's 2013 Kafka test: records 0..10 reach every replica; then the
/// followers are cut off from the leader until they drop out of the ISR, the leader, alone
/// in the ISR, acknowledges records 10..15 with `acks=all`, crashes, and the links heal.
/// Returns the cluster, the producer that wrote everything, and the dead leader.
async fn lone_leader_acknowledges_then_dies(
    unclean: bool,
) -> (Cluster<u64>, Producer<u64>, BrokerId) {
    let cluster = queue::start::<u64>("kafka", cluster_config(unclean));
    cluster.create_topic("t", 1, 3).await.unwrap();
    let producer = Producer::new(cluster.addrs(), producer_config(Acks::All));
    for v in 0..10 {
        producer.send("t", None, v).await.unwrap();
    }
    let leader = cluster.leader("t", 0).unwrap();
    let leader_node = [cluster.broker_node(leader)];
    let followers: Vec<_> = (0..3)
        .filter(|b| *b != leader)
        .map(|b| cluster.broker_node(b))
        .collect();
    sim_net::partition(&leader_node, &followers);
    // replica.lag.time.max.ms (5 s here) later, the followers are out of the ISR.
    wait_until(Duration::from_secs(15), || {
        cluster.isr("t", 0) == vec![leader]
    })
    .await;
    for v in 10..15 {
        let meta = producer.send("t", None, v).await.unwrap();
        assert_eq!(meta.offset, Some(v), "acknowledged by the lone leader");
    }
    cluster.crash(leader);
    sim_net::repair(&leader_node, &followers);
    (cluster, producer, leader)
}

#[sim_runtime::test]
async fn without_unclean_election_a_partition_whose_only_in_sync_replica_died_stays_offline_and_loses_nothing(
) {
    let checker = Checker::capture();
    let (cluster, _, dead) = lone_leader_acknowledges_then_dies(false).await;
    // Well past broker.session.timeout.ms: the dead leader is fenced, and no live
    // replica may take over because none is in the ISR.
    time::sleep(Duration::from_secs(10)).await;
    assert_eq!(cluster.leader("t", 0), None, "offline, not unclean");
    let impatient = Producer::new(
        cluster.addrs(),
        ProducerConfig {
            delivery_timeout: Duration::from_secs(3),
            ..producer_config(Acks::All)
        },
    );
    assert!(
        impatient.send("t", None, 99).await.is_err(),
        "no leader, no write"
    );
    cluster.restart(dead);
    wait_until(Duration::from_secs(20), || {
        cluster.leader("t", 0) == Some(dead)
    })
    .await;
    let found = read_all(&cluster, 15, Duration::from_secs(20)).await;
    assert_eq!(
        found,
        (0..15).collect::<Vec<_>>(),
        "every acknowledged record"
    );
    let report = checker.check();
    assert!(report.lost.is_empty(), "{report:#?}");
}

#[sim_runtime::test]
async fn unclean_election_loses_records_acknowledged_with_acks_all_by_a_lone_leader() {
    let checker = Checker::capture();
    let (cluster, producer, dead) = lone_leader_acknowledges_then_dies(true).await;
    wait_until(Duration::from_secs(20), || {
        cluster.leader("t", 0).is_some_and(|l| l != dead)
    })
    .await;
    // The producer's sequence numbers run ahead of what the new leader holds: the leader
    // answers OUT_OF_ORDER_SEQUENCE_NUMBER, and the producer starts a new epoch (KIP-360)
    // whose first record takes the offset the first lost record had.
    let meta = producer.send("t", None, 15).await.unwrap();
    assert_eq!(meta.offset, Some(10));
    for v in 16..20 {
        producer.send("t", None, v).await.unwrap();
    }
    cluster.restart(dead);
    let found = read_all(&cluster, 15, Duration::from_secs(20)).await;
    let expected: Vec<u64> = (0..10).chain(15..20).collect();
    assert_eq!(found, expected, "records 10..15 are gone");
    // The restarted broker truncated its copy to the new leader's log.
    time::sleep(Duration::from_secs(3)).await;
    assert_eq!(cluster.log_end_offset(dead, "t", 0), Some(15));
    let report = checker.check();
    let mut lost: Vec<u64> = report.lost.iter().map(|l| l.offset).collect();
    lost.sort_unstable();
    assert_eq!(lost, (10..15).collect::<Vec<_>>(), "{report:#?}");
}

#[sim_runtime::test]
async fn a_consumer_sees_a_record_only_once_every_in_sync_replica_has_it() {
    // Followers poll once a second, so a record sits on the leader alone for a while.
    let config = Config {
        replica_fetch_delay: Duration::from_secs(1),
        ..replicated(1)
    };
    let cluster = queue::start::<u64>("kafka", config);
    cluster.create_topic("t", 1, 3).await.unwrap();
    let consumer = Consumer::<u64>::join(cluster.addrs(), "g", &["t"], earliest("c"))
        .await
        .unwrap();
    let leader = cluster.leader("t", 0).unwrap();
    let follower = (0..3).find(|b| *b != leader).unwrap();
    // Write just after the leader answered a follower's poll, so the next copy is a whole
    // delay away.
    after_follower_poll(&cluster, leader, follower).await;
    let producer = Producer::new(cluster.addrs(), producer_config(Acks::One));
    producer.send("t", None, 7).await.unwrap();
    assert_eq!(cluster.log_end_offset(leader, "t", 0), Some(1));
    let early = consumer.poll(10, Duration::from_millis(200)).await.unwrap();
    assert!(
        early.is_empty(),
        "above the high watermark: {:?}",
        values(&early)
    );
    let later = consumer.poll(10, Duration::from_secs(3)).await.unwrap();
    assert_eq!(values(&later), vec![7], "committed once the ISR has it");
}

#[sim_runtime::test]
async fn a_group_with_no_committed_offset_starts_where_auto_offset_reset_says() {
    let cluster = queue::start::<u64>("kafka", Config::default());
    cluster.create_topic("t", 1, 1).await.unwrap();
    let producer = Producer::new(cluster.addrs(), ProducerConfig::default());
    for v in 0..5 {
        producer.send("t", None, v).await.unwrap();
    }
    let from_start = Consumer::<u64>::join(cluster.addrs(), "a", &["t"], earliest("a"))
        .await
        .unwrap();
    let latest = ConsumerConfig {
        auto_offset_reset: OffsetReset::Latest,
        ..earliest("b")
    };
    let from_now = Consumer::<u64>::join(cluster.addrs(), "b", &["t"], latest)
        .await
        .unwrap();
    assert_eq!(
        values(&from_start.poll(10, Duration::from_secs(2)).await.unwrap()),
        vec![0, 1, 2, 3, 4]
    );
    assert!(from_now
        .poll(10, Duration::from_secs(1))
        .await
        .unwrap()
        .is_empty());
    for v in 5..8 {
        producer.send("t", None, v).await.unwrap();
    }
    assert_eq!(
        values(&from_now.poll(10, Duration::from_secs(2)).await.unwrap()),
        vec![5, 6, 7],
        "latest: only what was produced after the group started"
    );
}

/// A consumer that starts at the earliest offset when its group has none committed.
fn earliest(client_id: &str) -> ConsumerConfig {
    queue_support::group_config(client_id)
}
