//! The linearizability checker on histories the kv model really produces: recorded clients
//! race on a few registers and counters while the server crashes or fails over. AOF
//! `always` loses nothing acknowledged, and every history passes; AOF `everysec` loses the
//! last second's acknowledged writes on a crash, and a failover to a lagging replica loses
//! what it had not applied: the checker rejects those histories with a witness.

use sim_models::check::linearizable::{self, History, Violation};
use sim_models::kv::{self, ClientConfig, Config, KvClient, KvHistory, Persistence, ReplicaConfig};
use sim_runtime::time::{sleep, sleep_until, Duration, Instant};
use sim_runtime::Sim;

/// What strikes the server 300 ms into the run.
#[derive(Clone, Copy, Debug)]
enum Strike {
    /// Nothing.
    Calm,
    /// The host dies and comes back 100 ms later, reloading its AOF.
    CrashRestart,
    /// The lagging replica is promoted.
    Failover,
}

const CLIENTS: u32 = 6;
const OPS_PER_CLIENT: u32 = 150;

/// Runs the workload on a server with `config` and returns what the clients saw.
fn recorded(seed: u64, config: Config, strike: Strike) -> History {
    let result = Sim::new(seed).run(move || async move {
        let server = kv::start("redis", config);
        server.ready().await;
        let history = KvHistory::new();
        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            let client = KvClient::recorded(
                &server,
                ClientConfig {
                    timeout: Duration::from_millis(200),
                },
                &history,
            );
            tasks.push(sim_runtime::spawn(async move {
                let mut rng = sim_runtime::rng(&format!("client-{c}"));
                for i in 0..OPS_PER_CLIENT {
                    sleep(Duration::from_millis(1 + rng.below(6))).await;
                    let register = format!("r{}", rng.below(3));
                    let counter = format!("c{}", rng.below(2));
                    // Results are in the history; errors (a crash's resets) are too.
                    match rng.below(5) {
                        0 | 1 => drop(client.get(&register).await),
                        2 => drop(client.set(&register, &format!("{c}-{i}")).await),
                        3 => drop(client.incr(&counter).await),
                        _ => drop(client.get(&counter).await),
                    }
                }
            }));
        }
        sleep_until(Instant::START + Duration::from_millis(300)).await;
        match strike {
            Strike::Calm => {}
            Strike::CrashRestart => {
                server.crash();
                sleep(Duration::from_millis(100)).await;
                server.restart();
            }
            Strike::Failover => server.failover().expect("a live replica"),
        }
        for t in tasks {
            t.await.unwrap();
        }
        history.history()
    });
    assert!(result.report.is_pass(), "{}", result.report);
    result.output.expect("completed")
}

fn aof(persistence: Persistence) -> Config {
    Config {
        persistence,
        ..Config::default()
    }
}

fn lagging_replica() -> Config {
    Config {
        persistence: Persistence::AofAlways,
        replica: Some(ReplicaConfig {
            replication_lag: Duration::from_millis(100),
        }),
        ..Config::default()
    }
}

const SEEDS: u64 = 3;

#[test]
fn correct_configurations_give_linearizable_histories() {
    for seed in 0..SEEDS {
        for (config, strike) in [
            (aof(Persistence::AofAlways), Strike::Calm),
            (aof(Persistence::AofAlways), Strike::CrashRestart),
            (lagging_replica(), Strike::Calm),
        ] {
            let history = recorded(seed, config, strike);
            assert_eq!(history.len(), (CLIENTS * OPS_PER_CLIENT) as usize);
            if let Err(v) = linearizable::check(&history) {
                panic!("seed {seed} {strike:?}: {v}");
            }
        }
    }
}

fn caught(seed: u64, config: Config, strike: Strike) -> Violation {
    let history = recorded(seed, config, strike);
    match linearizable::check(&history) {
        Ok(l) => panic!("seed {seed} {strike:?}: accepted {l:?}"),
        Err(v) => v,
    }
}

#[test]
fn a_crash_under_aof_everysec_loses_acknowledged_writes_and_is_caught() {
    for seed in 0..SEEDS {
        let v = caught(seed, aof(Persistence::AofEverySec), Strike::CrashRestart);
        // The witness is small and in words: an acknowledged write or increment, then a
        // read or an increment that cannot have followed it.
        assert!(v.witness.len() <= 4, "seed {seed}: {v}");
        let text = v.to_string();
        assert!(
            text.contains("acknowledged") || text.contains("got"),
            "seed {seed}: {v}"
        );
    }
}

#[test]
fn a_failover_to_a_lagging_replica_loses_acknowledged_writes_and_is_caught() {
    for seed in 0..SEEDS {
        let v = caught(seed, lagging_replica(), Strike::Failover);
        assert!(v.witness.len() <= 4, "seed {seed}: {v}");
    }
}

#[test]
fn a_witness_reads_as_a_story() {
    let v = caught(1, aof(Persistence::AofEverySec), Strike::CrashRestart);
    let text = v.to_string();
    assert!(text.starts_with(&format!("key {:?} is not linearizable", v.key)));
    assert!(
        text.ends_with("gives every read and increment the result it returned"),
        "{text}"
    );
    for op in &v.witness {
        assert!(text.contains(&op.to_string()));
    }
}
