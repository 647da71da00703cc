//! Replication over sim-net: the primary streams each committed batch of effects to its
//! replica, which applies it `replication_lag` after the primary committed it.
//!
//! A replica that (re)connects gets a full sync (a copy of the primary's dataset) and then
//! the stream, like Redis when a partial resync is impossible. So a primary restarted
//! empty (persistence `None`) wipes its replica, as in real life. Since the stream rides
//! on sim-net, partitions and crashes delay or cut replication too; what the replica had
//! not applied when `failover` promotes it is lost.

use std::borrow::Cow;
use std::rc::Rc;

use futures::channel::mpsc;
use futures::StreamExt;
use sim_net::{Addr, Conn};
use sim_runtime::task;
use sim_runtime::time::{self, Duration};
use sim_runtime::trace;

use super::event::{FullSyncEvent, ReplApplyEvent, ReplSyncEvent};
use super::persistence::Batch;
use super::server::{NodeCtx, REPLICATION_PORT_OFFSET};
use super::state::Dataset;

/// A replica's hello.
#[derive(Clone, Debug)]
pub struct Sync;

/// What the primary sends a replica.
#[derive(Clone, Debug)]
pub enum ReplMsg {
    FullSync { data: Dataset, offset: u64 },
    Batch(Batch),
}

fn port(ctx: &NodeCtx) -> u16 {
    ctx.shared.config.port.wrapping_add(REPLICATION_PORT_OFFSET)
}

/// Every node listens for replicas; only a primary feeds them (a replica hangs up, and
/// the asking node retries until it finds the primary).
pub(crate) async fn listen(ctx: Rc<NodeCtx>) {
    let Ok(mut listener) = sim_net::bind::<Sync, ReplMsg>(port(&ctx)) else {
        return;
    };
    while let Ok(conn) = listener.accept().await {
        task::spawn_named("kv-repl-feed", feed(ctx.clone(), conn)).detach();
    }
}

async fn feed(ctx: Rc<NodeCtx>, conn: Conn<ReplMsg, Sync>) {
    if ctx.engine.borrow().is_replica() {
        return;
    }
    let (tx, mut rx) = mpsc::unbounded();
    let data = ctx.engine.borrow().dataset().clone();
    let offset = ctx.offset.get();
    ctx.feeds.borrow_mut().push(tx);
    trace::emit(&ReplSyncEvent {
        server: ctx.shared.name.clone(),
        replica: conn.peer(),
        offset,
    });
    if conn.send(ReplMsg::FullSync { data, offset }).is_err() {
        return;
    }
    while let Some(batch) = rx.next().await {
        if conn.send(ReplMsg::Batch(batch)).is_err() {
            return;
        }
    }
}

/// The replica's side: connect to the primary, take the full sync, apply the stream.
pub(crate) async fn follow(ctx: Rc<NodeCtx>) {
    let lag = ctx
        .shared
        .config
        .replica
        .as_ref()
        .map_or(Duration::ZERO, |r| r.replication_lag);
    loop {
        let addr = Addr::new(ctx.shared.primary(), port(&ctx));
        if let Ok(mut conn) = sim_net::connect::<Sync, ReplMsg>(addr, Duration::from_secs(1)).await
        {
            while let Ok(msg) = conn.recv().await {
                match msg {
                    ReplMsg::FullSync { data, offset } => {
                        let keys = data.len();
                        ctx.engine.borrow_mut().replace_dataset(data.clone());
                        ctx.shared.with_disk(ctx.id, |d| d.replace(data, offset));
                        ctx.offset.set(offset);
                        trace::emit(&FullSyncEvent {
                            server: ctx.shared.name.clone(),
                            offset,
                            keys,
                        });
                    }
                    ReplMsg::Batch(batch) => {
                        time::sleep_until_global(batch.at + lag).await;
                        {
                            let mut e = ctx.engine.borrow_mut();
                            for c in &batch.commands {
                                e.apply(c);
                            }
                        }
                        let offset = batch.offset;
                        ctx.persist(batch);
                        ctx.offset.set(offset);
                        trace::emit(&ReplApplyEvent {
                            server: Cow::Borrowed(&ctx.shared.name),
                            offset,
                        });
                    }
                }
            }
        }
        time::sleep(Duration::from_millis(100)).await;
    }
}
