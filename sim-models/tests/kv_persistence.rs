//! What survives a crash under each persistence mode, asserted exactly, and what a
//! failover loses: exactly the writes the replica had not applied.

mod kv_support;

use std::collections::BTreeSet;

use kv_support::{at_ms, start, Commands};
use sim_models::kv::{
    self, ClientConfig, CmdEvent, Command, Config, CrashEvent, KvClient, KvServer, Persistence,
    ReplicaConfig,
};
use sim_runtime::time::{self, sleep, sleep_until, Duration};
use sim_runtime::trace;

fn client(server: &KvServer) -> KvClient {
    kv_support::client(server, 500)
}

/// Writes `w{i}` at `first_ms + i * step_ms` for i in 0..n, sequentially; returns the keys
/// the server acknowledged.
async fn write_series(c: &KvClient, n: usize, first_ms: u64, step_ms: u64) -> Vec<String> {
    let mut acked = Vec::new();
    for i in 0..n {
        sleep_until(at_ms(first_ms + i as u64 * step_ms)).await;
        let key = format!("w{i}");
        if c.set(&key, "x").await.is_ok() {
            acked.push(key);
        }
    }
    acked
}

async fn keys_after_restart(server: &kv::KvServer) -> BTreeSet<String> {
    server.restart();
    server.ready().await;
    server
        .dataset()
        .expect("restarted")
        .strings(time::now())
        .into_keys()
        .collect()
}

fn names(range: std::ops::Range<usize>) -> BTreeSet<String> {
    range.map(|i| format!("w{i}")).collect()
}

#[sim_runtime::test(seeds = 5)]
async fn no_persistence_loses_everything_on_crash() {
    let server = start(Config {
        persistence: Persistence::None,
        ..Config::default()
    })
    .await;
    let acked = write_series(&client(&server), 10, 10, 100).await;
    assert_eq!(acked.len(), 10);
    server.crash();
    assert_eq!(keys_after_restart(&server).await, BTreeSet::new());
}

#[sim_runtime::test(seeds = 5)]
async fn aof_always_keeps_every_acknowledged_write() {
    let server = start(Config {
        persistence: Persistence::AofAlways,
        ..Config::default()
    })
    .await;
    let c = client(&server);
    // Crash in the middle of a stream of writes, at a seed-dependent moment.
    let writer = {
        let c = c.clone();
        sim_runtime::spawn(async move { write_series(&c, 100, 10, 7).await })
    };
    let crash_at = 200 + sim_runtime::with_rng(|r| r.below(300));
    sleep_until(at_ms(crash_at)).await;
    server.crash();
    let acked: BTreeSet<String> = writer.await.unwrap().into_iter().collect();
    let survived = keys_after_restart(&server).await;
    assert!(acked.len() > 20, "{}", acked.len());
    // Every acknowledged write survived; at most the one in flight survived unacked.
    assert!(
        acked.is_subset(&survived),
        "lost {:?}",
        acked.difference(&survived)
    );
    assert!(survived.len() <= acked.len() + 1);
}

#[sim_runtime::test(seeds = 5)]
async fn aof_everysec_loses_exactly_the_writes_since_the_last_fsync() {
    let crashes = trace::capture::<CrashEvent>();
    let server = start(Config::default()).await;
    assert_eq!(
        server.config().persistence,
        Persistence::AofEverySec,
        "the default"
    );
    // w0 at 50 ms ... w22 at 2250 ms; fsyncs happen at 1 s and 2 s of the node's life.
    let acked = write_series(&client(&server), 23, 50, 100).await;
    assert_eq!(acked.len(), 23);
    sleep_until(at_ms(2_330)).await;
    server.crash();
    // Written before the fsync at 2 s: kept. w20, w21, w22 (2050..2250 ms): lost.
    assert_eq!(keys_after_restart(&server).await, names(0..20));
    let crash = &crashes.values()[0];
    assert_eq!((crash.lost_batches, crash.durable_offset), (3, 20));
}

/// What a crash traces and loses does not depend on who killed the node: the `crash`
/// verb, or a fault schedule killing the primary's node directly.
#[test]
fn crash_is_the_nodes_kill_whoever_kills_it() {
    let run = |by_verb: bool| {
        kv_support::run_fingerprint(7, move || async move {
            let crashes = trace::capture::<CrashEvent>();
            let server = start(Config::default()).await;
            write_series(&client(&server), 15, 50, 100).await;
            sleep_until(at_ms(1_800)).await;
            if by_verb {
                server.crash();
            } else {
                server.primary_node().kill();
            }
            let survived = keys_after_restart(&server).await;
            (crashes.values(), survived)
        })
    };
    let ((crashes, survived), fingerprint) = run(true);
    assert_eq!(
        crashes,
        [CrashEvent {
            server: "redis".into(),
            node: "redis".into(),
            lost_batches: 5,
            durable_offset: 10,
        }],
        "one crash event; w0..w9 were fsynced at 1 s, w10..w14 were not"
    );
    assert_eq!(survived, names(0..10));
    let ((crashes_by_kill, survived_by_kill), fingerprint_by_kill) = run(false);
    assert_eq!(crashes_by_kill, crashes);
    assert_eq!(survived_by_kill, survived);
    assert_eq!(
        fingerprint_by_kill, fingerprint,
        "the same trace, event for event"
    );
}

#[sim_runtime::test]
async fn restart_reloads_all_types_and_ttls() {
    let server = start(Config {
        persistence: Persistence::AofAlways,
        ..Config::default()
    })
    .await;
    let c = client(&server);
    c.ping().await.unwrap();
    let set_at = time::now();
    c.set_px("session", "s", Duration::from_secs(5))
        .await
        .unwrap();
    c.set_px("short", "s", Duration::from_millis(100))
        .await
        .unwrap();
    c.hset("h", "f", "1").await.unwrap();
    c.rpush("jobs", &["a", "b"]).await.unwrap();
    c.sadd("seen", &["x"]).await.unwrap();
    c.zadd("retry", 5.0, "job-1").await.unwrap();
    c.incr("n").await.unwrap();
    c.incr("n").await.unwrap();
    c.lpop("jobs").await.unwrap();
    server.crash();
    sleep(Duration::from_millis(200)).await;
    server.restart();
    server.ready().await;
    assert_eq!(c.get("n").await.unwrap(), Some("2".into()));
    assert_eq!(c.lrange("jobs", 0, -1).await.unwrap(), vec!["b"]);
    assert_eq!(c.hget("h", "f").await.unwrap(), Some("1".into()));
    assert!(c.sismember("seen", "x").await.unwrap());
    assert_eq!(c.zscore("retry", "job-1").await.unwrap(), Some(5.0));
    // Expiry is absolute: the downtime counted, and the short key is gone.
    assert_eq!(c.get("short").await.unwrap(), None);
    let ttl = c.pttl("session").await.unwrap();
    let left = 5_000 - (time::now() - set_at).as_millis() as i64;
    // The server's clock ran for less than ours by the SET's trip and the reply's (1 to
    // 5 ms each; the connection was open before `set_at`).
    assert!((left + 1..=left + 10).contains(&ttl), "{ttl} vs {left}");
}

/// The acknowledged SETs on `node`, with their batch offsets.
fn acked_sets(writes: &[CmdEvent<'static>], node: &str) -> Vec<(String, u64)> {
    writes
        .iter()
        .filter(|e| e.node == node && *e.reply == kv::Reply::ok())
        .filter_map(|e| match &*e.cmd {
            Command::Set { key, .. } => Some((key.clone(), e.offset.expect("a write"))),
            _ => None,
        })
        .collect()
}

#[sim_runtime::test(seeds = 5)]
async fn failover_loses_exactly_the_unreplicated_writes() {
    let commands = Commands::capture();
    let server = start(Config {
        replica: Some(ReplicaConfig {
            replication_lag: Duration::from_millis(100),
        }),
        ..Config::default()
    })
    .await;
    let c = client(&server);
    // w0 at 10 ms ... w9 at 460 ms; failover at 480 ms. A write committed at t is applied
    // on the replica at t + 100 ms, so w0..w7 (committed by ~365 ms) made it and w8, w9
    // (~410 and ~460 ms) did not.
    let acked = write_series(&c, 10, 10, 50).await;
    assert_eq!(acked.len(), 10);
    sleep_until(at_ms(480)).await;
    let (_, applied) = server.offsets();
    let applied = applied.expect("a replica");
    server.failover().unwrap();
    assert_eq!(server.addr().node, server.primary_node());
    assert_eq!(server.primary_node().name(), "redis-replica");
    let lost_by_offset: BTreeSet<String> = acked_sets(&commands.writes(), "redis")
        .into_iter()
        .filter(|(_, o)| *o > applied)
        .map(|(k, _)| k)
        .collect();
    // The client follows the failover to the new primary.
    let mut present = BTreeSet::new();
    for k in &acked {
        if c.get(k).await.unwrap().is_some() {
            present.insert(k.clone());
        }
    }
    assert_eq!(present, names(0..8));
    let lost: BTreeSet<String> = acked.into_iter().filter(|k| !present.contains(k)).collect();
    assert_eq!(lost, names(8..10));
    assert_eq!(
        lost, lost_by_offset,
        "lost = acked writes past the replica's offset"
    );
    c.set("after", "failover").await.unwrap();
    // The old primary comes back as a replica and drops its divergent writes.
    server.restart_replica();
    sleep(Duration::from_millis(300)).await;
    let replica = server
        .replica_dataset()
        .expect("old primary is back")
        .strings(time::now());
    let primary = server.dataset().unwrap().strings(time::now());
    assert!(primary.contains_key("after"));
    assert_eq!(replica, primary);
}

#[sim_runtime::test]
async fn a_primary_restarted_empty_wipes_its_replica() {
    let config = Config {
        persistence: Persistence::None,
        replica: Some(ReplicaConfig {
            replication_lag: Duration::from_millis(10),
        }),
        ..Config::default()
    };
    let server = start(config).await;
    let c = client(&server);
    c.set("k", "v").await.unwrap();
    sleep(Duration::from_millis(100)).await;
    assert_eq!(server.replica_dataset().unwrap().len(), 1);
    server.crash();
    server.restart();
    server.ready().await;
    sleep(Duration::from_millis(300)).await;
    // The replica resynchronised from the empty primary: the data is gone everywhere.
    assert_eq!(server.replica_dataset().unwrap().len(), 0);
}

#[sim_runtime::test]
async fn the_replica_serves_stale_reads_and_refuses_writes() {
    let config = Config {
        replica: Some(ReplicaConfig {
            replication_lag: Duration::from_millis(200),
        }),
        ..Config::default()
    };
    let server = start(config).await;
    let primary = client(&server);
    let replica = KvClient::new(server.replica_addr().unwrap(), ClientConfig::default());
    sleep(Duration::from_millis(50)).await;
    primary.set("k", "1").await.unwrap();
    // Within the lag the replica still has the old state.
    assert_eq!(replica.get("k").await.unwrap(), None);
    sleep(Duration::from_millis(250)).await;
    assert_eq!(replica.get("k").await.unwrap(), Some("1".into()));
    let e = replica.set("k", "2").await.unwrap_err();
    assert_eq!(e.server_error().unwrap().message(), kv::errors::READONLY);
    // A TTL the primary set hides the key on the replica too once it passes.
    primary
        .set_px("t", "x", Duration::from_millis(100))
        .await
        .unwrap();
    sleep(Duration::from_millis(400)).await;
    assert_eq!(replica.get("t").await.unwrap(), None);
}
