//! Pub/Sub through real connections: messages reach the subscribers connected at the time
//! of publishing, channel and pattern subscriptions alike, and nobody else; a server
//! restart breaks every subscription and forgets it, so messages sent meanwhile are lost.

mod kv_support;

use kv_support::start;
use sim_models::kv::subscriber::Message;
use sim_models::kv::{self, Config, KvClient, KvServer, Reply};
use sim_runtime::time::{self, Duration};

fn client(server: &KvServer) -> KvClient {
    kv_support::client(server, 500)
}

fn message(channel: &str, pattern: Option<&str>, payload: &str) -> Message {
    Message {
        channel: channel.into(),
        pattern: pattern.map(Into::into),
        payload: payload.into(),
    }
}

#[sim_runtime::test]
async fn subscribers_get_what_is_published_while_they_listen() {
    let server = start(Config::default()).await;
    let publisher = client(&server);
    assert_eq!(
        publisher.publish("orders", "before").await,
        Ok(0),
        "nobody listens yet"
    );
    let mut exact = client(&server).subscribe(&["orders"]).await.unwrap();
    let mut pattern = client(&server).psubscribe(&["ord*"]).await.unwrap();
    assert_eq!(publisher.publish("orders", "o-1").await, Ok(2));
    assert_eq!(publisher.publish("other", "x").await, Ok(0));
    assert_eq!(
        exact.next_message().await,
        Ok(message("orders", None, "o-1"))
    );
    assert_eq!(
        pattern.next_message().await,
        Ok(message("orders", Some("ord*"), "o-1"))
    );
    // Nothing else arrives: the message published before subscribing is not replayed.
    assert!(time::timeout(Duration::from_secs(1), exact.next_message())
        .await
        .is_err());
    let numsub = publisher
        .call(kv::parse(&["PUBSUB", "NUMSUB", "orders", "none"]).unwrap())
        .await;
    assert_eq!(
        numsub,
        Ok(Reply::Array(vec![
            Reply::Bulk("orders".into()),
            Reply::Int(1),
            Reply::Bulk("none".into()),
            Reply::Int(0)
        ]))
    );
    exact.unsubscribe(&["orders"]).await.unwrap();
    assert_eq!(
        publisher.publish("orders", "o-2").await,
        Ok(1),
        "the pattern only"
    );
}

#[sim_runtime::test]
async fn a_restart_breaks_subscriptions_and_loses_what_was_sent_meanwhile() {
    let server = start(Config::default()).await;
    let mut sub = client(&server)
        .subscribe(&["cache-invalidate"])
        .await
        .unwrap();
    server.crash();
    let broken = sub.next_message().await;
    assert!(
        broken.as_ref().is_err_and(|e| e.is_network()),
        "the subscriber learns its connection is gone: {broken:?}"
    );
    server.restart();
    server.ready().await;
    let publisher = client(&server);
    assert_eq!(
        publisher.publish("cache-invalidate", "user:1").await,
        Ok(0),
        "a restart forgets subscriptions: this invalidation reaches nobody"
    );
    let mut again = client(&server)
        .subscribe(&["cache-invalidate"])
        .await
        .unwrap();
    assert_eq!(publisher.publish("cache-invalidate", "user:2").await, Ok(1));
    assert_eq!(
        again.next_message().await,
        Ok(message("cache-invalidate", None, "user:2"))
    );
}

#[sim_runtime::test]
async fn subscribing_on_the_shared_connection_is_refused() {
    let server = start(Config::default()).await;
    let c = client(&server);
    let refused = c.call(kv::parse(&["SUBSCRIBE", "x"]).unwrap()).await;
    assert!(refused.is_err());
    assert_eq!(c.ping().await, Ok(()), "the shared connection still works");
}

/// Publishers and subscribers racing, for the determinism check: who got what depends
/// on the seed's network delays and scheduling, and nothing else.
async fn chatter() -> Vec<Message> {
    let server = start(Config::default()).await;
    let mut sub = client(&server).psubscribe(&["room.*"]).await.unwrap();
    let mut publishers = Vec::new();
    for p in 0..3 {
        let c = client(&server);
        publishers.push(sim_runtime::spawn(async move {
            for i in 0..5 {
                c.publish(&format!("room.{p}"), &format!("m{i}"))
                    .await
                    .unwrap();
                time::sleep(Duration::from_millis(sim_runtime::rng("pace").below(20))).await;
            }
        }));
    }
    for p in publishers {
        p.await.unwrap();
    }
    let mut got = Vec::new();
    while let Ok(Ok(m)) = time::timeout(Duration::from_millis(100), sub.next_message()).await {
        got.push(m);
    }
    got
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    let (a, fa) = kv_support::run_fingerprint(11, chatter);
    let (b, fb) = kv_support::run_fingerprint(11, chatter);
    assert_eq!(a.len(), 15);
    assert_eq!((a, fa), (b, fb));
}
