//! The async shell: a simulated node that accepts connections, runs each command through
//! the pure engine, persists and replicates the effects, and serves blocked pops. Plus
//! [`start`] and [`KvServer`], the handle a test holds, with the fault verbs.
//!
//! A node's death is handled in one place, the lifecycle hook installed by [`start`]: the
//! disk loses what was not fsynced and the one `kv.crash` event says what. So the `crash`
//! verbs, a fault schedule's `node.kill()` and a restart of a running node trace alike.
//!
//! One engine step never awaits, so a command, a transaction or a script is atomic, as on
//! single-threaded Redis. What takes time happens around the step: the `slow` fault and
//! the configured CPU cost before it, fsync and replication after it.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::rc::{Rc, Weak};
use std::task::Poll;

use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use std::borrow::Cow;

use sim_net::{Addr, Conn};
use sim_runtime::node::{self, Lifecycle, NodeId};
use sim_runtime::task::{self, JoinHandle};
use sim_runtime::time::{self, Duration};
use sim_runtime::{trace, Probability, SimRng};

use super::command::{errors, Command, Reply};
use super::event::{
    CmdEvent, CrashEvent, FailoverEvent, Fault, FaultEvent, FsyncEvent, Role, StartEvent,
    WriteEvent,
};
use super::persistence::{Batch, Disk, Persistence};
use super::pubsub::PubSub;
use super::replica;
use super::session::{Session, Step};
use super::state::{ClientId, Dataset, Engine, EngineConfig, Stats};
use super::Config;

/// A client's request: the id pairs it with its response on the connection.
#[derive(Clone, Debug)]
pub struct Request {
    pub id: u64,
    pub cmd: Command,
}

/// The server's answer to the request with the same id.
#[derive(Clone, Debug)]
pub struct Response {
    pub id: u64,
    pub reply: Reply,
}

/// Why `failover()` could not promote the replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FailoverError {
    #[error("this kv server has no replica")]
    NoReplica,
    #[error("the replica is down")]
    ReplicaDown,
}

struct Roles {
    primary: NodeId,
    replica: Option<NodeId>,
}

/// State shared by the handle and the nodes' incarnations; survives crashes.
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) config: Config,
    roles: RefCell<Option<Roles>>,
    disks: RefCell<BTreeMap<NodeId, Disk>>,
    /// Each node's running incarnation, to inspect it (never to keep it alive).
    live: RefCell<BTreeMap<NodeId, (u32, Weak<NodeCtx>)>>,
    slow: Cell<Option<Duration>>,
    fail_rate: Cell<Probability>,
    fault_rng: RefCell<SimRng>,
    next_client: Cell<u64>,
}

impl Shared {
    pub(crate) fn primary(&self) -> NodeId {
        self.roles
            .borrow()
            .as_ref()
            .expect("roles set at start")
            .primary
    }

    fn replica(&self) -> Option<NodeId> {
        self.roles.borrow().as_ref().and_then(|r| r.replica)
    }

    /// The node's current incarnation, if it runs (a killed one may not be dropped yet).
    fn ctx(&self, node: NodeId) -> Option<Rc<NodeCtx>> {
        if !node.is_alive() {
            return None;
        }
        let live = self.live.borrow();
        let (incarnation, weak) = live.get(&node)?;
        (*incarnation == node.incarnation())
            .then(|| weak.upgrade())
            .flatten()
    }

    pub(crate) fn with_disk<R>(&self, node: NodeId, f: impl FnOnce(&mut Disk) -> R) -> R {
        let mut disks = self.disks.borrow_mut();
        let disk = disks
            .entry(node)
            .or_insert_with(|| Disk::new(self.config.persistence));
        f(disk)
    }

    fn emit_fault(&self, fault: Fault) {
        trace::emit(&FaultEvent {
            server: self.name.clone(),
            fault,
        });
    }

    /// The lifecycle hook's reaction to one of this server's nodes dying.
    fn on_killed(&self, node: NodeId) {
        let (lost_batches, durable_offset) =
            self.with_disk(node, |d| (d.crash(), d.synced_offset()));
        trace::emit(&CrashEvent {
            server: self.name.clone(),
            node: node.name(),
            lost_batches,
            durable_offset,
        });
    }
}

/// One incarnation of a node: its engine and the bookkeeping around it. Dropped with the
/// node's tasks when the node dies.
pub(crate) struct NodeCtx {
    pub(crate) shared: Rc<Shared>,
    pub(crate) id: NodeId,
    /// The node's name, for the events of every command.
    name: String,
    pub(crate) engine: RefCell<Engine>,
    waiters: RefCell<BTreeMap<ClientId, oneshot::Sender<Reply>>>,
    pub(crate) feeds: RefCell<Vec<mpsc::UnboundedSender<Batch>>>,
    /// Offset of the last batch committed (primary) or applied (replica).
    pub(crate) offset: Cell<u64>,
    pub(crate) replication: RefCell<Option<JoinHandle<()>>>,
    fsync_pending: Cell<bool>,
    fsync_wake: Option<mpsc::UnboundedSender<()>>,
    /// Who listens to which channel on this incarnation (a restart forgets them all).
    pubsub: RefCell<PubSub>,
    /// Each connection's queue of pushed messages (Pub/Sub), by client.
    outboxes: RefCell<BTreeMap<ClientId, mpsc::UnboundedSender<Reply>>>,
}

/// The request id of a pushed message (a Pub/Sub delivery), which answers no request.
pub const PUSH_ID: u64 = u64::MAX;

impl NodeCtx {
    /// Runs a Pub/Sub command, or any command from a connection in subscribed mode;
    /// `None` when the command is for the session and the engine. Returns every reply
    /// the command gives (SUBSCRIBE confirms each channel), the last answering the request.
    fn pubsub_command(&self, client: ClientId, cmd: &Command) -> Option<Vec<Reply>> {
        use super::pubsub::Kind;
        let subscribed = self.pubsub.borrow().count(client) > 0;
        if !cmd.is_pubsub() && !subscribed {
            return None;
        }
        let mut ps = self.pubsub.borrow_mut();
        Some(match cmd {
            Command::Subscribe { channels } => ps.subscribe(client, Kind::Channel, channels),
            Command::Unsubscribe { channels } => ps.unsubscribe(client, Kind::Channel, channels),
            Command::PSubscribe { patterns } => ps.subscribe(client, Kind::Pattern, patterns),
            Command::PUnsubscribe { patterns } => {
                ps.unsubscribe(client, Kind::Pattern, patterns)
            }
            Command::Ping { .. } if subscribed => vec![Reply::bulks(["pong".into(), String::new()])],
            _ if subscribed => vec![Reply::error(format!(
                "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                cmd.name()
            ))],
            Command::Publish { channel, message } => {
                let deliveries = ps.publish(channel, message);
                let outboxes = self.outboxes.borrow();
                let mut delivered = 0;
                for (to, push) in deliveries {
                    if outboxes.get(&to).is_some_and(|o| o.unbounded_send(push).is_ok()) {
                        delivered += 1;
                    }
                }
                vec![Reply::Int(delivered)]
            }
            Command::PubSubChannels { pattern } => {
                vec![Reply::bulks(ps.active_channels(pattern.as_deref()))]
            }
            Command::PubSubNumSub { channels } => vec![Reply::Array(
                channels
                    .iter()
                    .flat_map(|c| [Reply::bulk(c.clone()), Reply::from_len(ps.subscribers(c))])
                    .collect(),
            )],
            Command::PubSubNumPat => vec![Reply::from_len(ps.pattern_count())],
            _ => return None,
        })
    }

    /// Serves blocked clients and commits the step's effects. Returns the batch offset.
    fn after_step(&self) -> Option<u64> {
        let (served, effects) = {
            let mut e = self.engine.borrow_mut();
            let served = e.serve_blocked();
            (served, e.take_effects())
        };
        for (client, reply) in served {
            if let Some(tx) = self.waiters.borrow_mut().remove(&client) {
                let _ = tx.send(reply);
            }
        }
        if effects.is_empty() {
            return None;
        }
        let offset = self.offset.get() + 1;
        self.offset.set(offset);
        let batch = Batch {
            offset,
            at: time::now_global(),
            commands: effects,
        };
        // The replicas' copies are taken first, so that the disk keeps the batch itself.
        let copies: Vec<Batch> = self.feeds.borrow().iter().map(|_| batch.clone()).collect();
        self.persist(batch);
        let mut copies = copies.into_iter();
        self.feeds
            .borrow_mut()
            .retain(|f| copies.next().is_some_and(|b| f.unbounded_send(b).is_ok()));
        Some(offset)
    }

    /// Writes a batch to this node's disk; `always` is durable before this returns, that
    /// is before the reply is sent.
    pub(crate) fn persist(&self, batch: Batch) {
        let awaits_fsync = self.shared.with_disk(self.id, |d| d.write(batch));
        if awaits_fsync && !self.fsync_pending.replace(true) {
            if let Some(w) = &self.fsync_wake {
                let _ = w.unbounded_send(());
            }
        }
    }

    /// Emits the command's event: `kv.cmd.write` if it wrote (it has a batch offset),
    /// `kv.cmd` otherwise.
    fn emit_cmd(&self, client: ClientId, cmd: &Command, reply: &Reply, offset: Option<u64>) {
        let event = CmdEvent {
            server: Cow::Borrowed(&self.shared.name),
            node: Cow::Borrowed(&self.name),
            client: client.0,
            cmd: Cow::Borrowed(cmd),
            reply: Cow::Borrowed(reply),
            offset,
        };
        if offset.is_some() {
            trace::emit(&WriteEvent(event));
        } else {
            trace::emit(&event);
        }
    }

    /// Runs one command for a connection; `None` when the client went away while blocked.
    async fn execute(
        &self,
        session: &mut Session,
        conn: &mut Conn<Response, Request>,
        pending: &mut VecDeque<Request>,
        cmd: &Command,
    ) -> Option<(Reply, Option<u64>)> {
        if let Some(d) = self.shared.slow.get() {
            time::sleep(d).await;
        }
        let cost = self.shared.config.command_cost;
        if !cost.is_zero() {
            node::compute(cost).await;
        }
        if injectable(cmd)
            && self
                .shared
                .fault_rng
                .borrow_mut()
                .chance(self.shared.fail_rate.get())
        {
            session.flag_error();
            return Some((Reply::error(errors::INJECTED), None));
        }
        let step = session.handle_ref(&mut self.engine.borrow_mut(), cmd, time::now());
        let offset = self.after_step();
        match step {
            Step::Reply(r) => Some((r, offset)),
            Step::Blocked { timeout } => {
                let r = self
                    .wait_blocked(session.id(), timeout, conn, pending)
                    .await?;
                Some((r, None))
            }
        }
    }

    /// Waits for a blocked pop to be served, its timeout (node clock), or the client to
    /// close the connection (then it stops waiting, so no element is popped for nobody).
    async fn wait_blocked(
        &self,
        id: ClientId,
        timeout: Duration,
        conn: &mut Conn<Response, Request>,
        pending: &mut VecDeque<Request>,
    ) -> Option<Reply> {
        let (tx, mut rx) = oneshot::channel();
        self.waiters.borrow_mut().insert(id, tx);
        let mut timer = pin!(async move {
            if timeout.is_zero() {
                std::future::pending::<()>().await;
            } else {
                time::sleep(timeout).await;
            }
        });
        enum Woke {
            Served(Reply),
            Pipelined(Request),
            Gone,
            TimedOut,
        }
        loop {
            let woke = poll_fn(|cx| {
                if let Poll::Ready(r) = Pin::new(&mut rx).poll(cx) {
                    return Poll::Ready(Woke::Served(r.unwrap_or(Reply::Nil)));
                }
                if let Poll::Ready(m) = pin!(conn.recv()).poll(cx) {
                    return Poll::Ready(m.map_or(Woke::Gone, Woke::Pipelined));
                }
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Woke::TimedOut);
                }
                Poll::Pending
            })
            .await;
            match woke {
                Woke::Served(r) => return Some(r),
                // Redis reads a blocked client's next commands but runs them afterwards.
                Woke::Pipelined(req) => pending.push_back(req),
                Woke::Gone | Woke::TimedOut => {
                    self.engine.borrow_mut().unblock(id);
                    self.waiters.borrow_mut().remove(&id);
                    return matches!(woke, Woke::TimedOut).then_some(Reply::Nil);
                }
            }
        }
    }
}

/// Connection-state commands are exempt from `fail_rate`: real Redis does not fail them,
/// and a failed MULTI would silently run a pipelined transaction's commands one by one.
fn injectable(cmd: &Command) -> bool {
    !matches!(
        cmd,
        Command::Multi
            | Command::Exec
            | Command::Discard
            | Command::Watch { .. }
            | Command::Unwatch
    )
}

/// The port replication listens on: the client port plus this (Redis Cluster's bus uses
/// the same offset).
pub const REPLICATION_PORT_OFFSET: u16 = 10_000;

/// A node's main task (its factory's future): load the disk, start the engine, serve.
async fn serve_node(shared: Rc<Shared>) {
    let me = node::current();
    let is_replica = shared.replica() == Some(me);
    let data = shared.with_disk(me, |d| d.load());
    let seed = sim_runtime::rng(&format!(
        "kv.{}.{}.{}",
        shared.name,
        me.name(),
        me.incarnation()
    ))
    .next_u64();
    let cfg = &shared.config;
    let engine_config = EngineConfig {
        maxmemory: cfg.maxmemory,
        eviction_policy: cfg.eviction_policy,
        eviction_samples: cfg.eviction_samples,
        seed,
        unix_time_at_start_ms: i64::try_from(cfg.unix_time_at_start.as_millis())
            .unwrap_or(i64::MAX),
    };
    let keys = data.len();
    let mut engine = Engine::with_dataset(engine_config, data);
    engine.set_replica(is_replica);
    let name = me.name();
    trace::emit(&StartEvent {
        server: shared.name.clone(),
        node: name.clone(),
        role: if is_replica {
            Role::Replica
        } else {
            Role::Primary
        },
        keys,
        incarnation: me.incarnation(),
    });
    let (fsync_tx, fsync_rx) = mpsc::unbounded();
    let everysec = cfg.persistence == Persistence::AofEverySec;
    let offset = shared.with_disk(me, |d| d.synced_offset());
    let ctx = Rc::new(NodeCtx {
        shared: shared.clone(),
        id: me,
        name,
        engine: RefCell::new(engine),
        waiters: RefCell::new(BTreeMap::new()),
        feeds: RefCell::new(Vec::new()),
        offset: Cell::new(offset),
        replication: RefCell::new(None),
        fsync_pending: Cell::new(false),
        fsync_wake: everysec.then_some(fsync_tx),
        pubsub: RefCell::new(PubSub::default()),
        outboxes: RefCell::new(BTreeMap::new()),
    });
    shared
        .live
        .borrow_mut()
        .insert(me, (me.incarnation(), Rc::downgrade(&ctx)));
    if everysec {
        task::spawn_named("kv-fsync", fsync_loop(ctx.clone(), fsync_rx)).detach();
    }
    task::spawn_named("kv-repl-listen", replica::listen(ctx.clone())).detach();
    if is_replica {
        let h = task::spawn_named("kv-replicate", replica::follow(ctx.clone()));
        *ctx.replication.borrow_mut() = Some(h);
    }
    let mut listener = match sim_net::bind::<Request, Response>(cfg.port) {
        Ok(l) => l,
        Err(e) => panic!("kv {}: cannot bind port {}: {e}", shared.name, cfg.port),
    };
    while let Ok(conn) = listener.accept().await {
        task::spawn_named("kv-conn", serve_conn(ctx.clone(), conn)).detach();
    }
}

async fn serve_conn(ctx: Rc<NodeCtx>, mut conn: Conn<Response, Request>) {
    let id = ClientId(ctx.shared.next_client.get());
    ctx.shared.next_client.set(id.0 + 1);
    let mut session = Session::new(id);
    let mut pending: VecDeque<Request> = VecDeque::new();
    let (outbox, mut pushes) = mpsc::unbounded::<Reply>();
    ctx.outboxes.borrow_mut().insert(id, outbox);
    enum Next {
        Request(Request),
        Push(Reply),
        Closed,
    }
    loop {
        let next = match pending.pop_front() {
            Some(r) => Next::Request(r),
            None => {
                poll_fn(|cx| {
                    if let Poll::Ready(Some(push)) = pushes.poll_next_unpin(cx) {
                        return Poll::Ready(Next::Push(push));
                    }
                    pin!(conn.recv())
                        .poll(cx)
                        .map(|m| m.map_or(Next::Closed, Next::Request))
                })
                .await
            }
        };
        let req = match next {
            Next::Request(r) => r,
            Next::Push(reply) => {
                if conn.send(Response { id: PUSH_ID, reply }).is_err() {
                    break;
                }
                continue;
            }
            Next::Closed => break,
        };
        // A raw argument vector is parsed here, where Redis parses it: an unknown command
        // or a wrong argument count is refused before anything runs or is queued, and
        // inside MULTI it dooms the transaction (EXEC answers EXECABORT).
        let req = match req.cmd {
            Command::Raw { argv } => match super::parse::parse_request(&argv) {
                Ok(cmd) => Request { id: req.id, cmd },
                Err(reply) => {
                    session.flag_error();
                    ctx.emit_cmd(id, &Command::Raw { argv }, &reply, None);
                    if conn.send(Response { id: req.id, reply }).is_err() {
                        break;
                    }
                    continue;
                }
            },
            cmd => Request { id: req.id, cmd },
        };
        // Inside MULTI the session queues every command, Pub/Sub ones included.
        let pubsub = (!session.in_multi())
            .then(|| ctx.pubsub_command(id, &req.cmd))
            .flatten();
        if let Some(mut replies) = pubsub {
            let last = replies
                .pop()
                .expect("a Pub/Sub command answers at least once");
            let mut sent = replies
                .into_iter()
                .all(|reply| conn.send(Response { id: PUSH_ID, reply }).is_ok());
            ctx.emit_cmd(id, &req.cmd, &last, None);
            sent = sent
                && conn
                    .send(Response {
                        id: req.id,
                        reply: last,
                    })
                    .is_ok();
            if !sent {
                break;
            }
            continue;
        }
        // The command is kept until its event is written: the engine only borrows it.
        let Some((reply, offset)) = ctx
            .execute(&mut session, &mut conn, &mut pending, &req.cmd)
            .await
        else {
            break;
        };
        ctx.emit_cmd(id, &req.cmd, &reply, offset);
        if conn.send(Response { id: req.id, reply }).is_err() {
            break;
        }
    }
    session.close(&mut ctx.engine.borrow_mut());
    ctx.waiters.borrow_mut().remove(&id);
    ctx.pubsub.borrow_mut().disconnect(id);
    ctx.outboxes.borrow_mut().remove(&id);
}

/// `appendfsync everysec`: once writes are pending, fsync at the next whole second of the
/// node's life. Idle, it sleeps without timers, so an idle store adds no events.
async fn fsync_loop(ctx: Rc<NodeCtx>, mut wake: mpsc::UnboundedReceiver<()>) {
    let start = time::now_global();
    while wake.next().await.is_some() {
        let lived = time::now_global().duration_since(start);
        let next = start + Duration::from_secs(lived.as_secs() + 1);
        time::sleep_until_global(next).await;
        ctx.fsync_pending.set(false);
        let batches = ctx.shared.with_disk(ctx.id, |d| d.fsync());
        let offset = ctx.shared.with_disk(ctx.id, |d| d.synced_offset());
        trace::emit(&FsyncEvent {
            server: ctx.shared.name.clone(),
            node: ctx.name.clone(),
            batches,
            offset,
        });
    }
}

/// A running kv server (a primary node, and a replica node when configured): its
/// address and its fault verbs. Cheap to clone; every clone drives the same server.
#[derive(Clone)]
pub struct KvServer {
    shared: Rc<Shared>,
}

impl std::fmt::Debug for KvServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KvServer({})", self.shared.name)
    }
}

/// Starts a kv server named `name`: a node `name` (the primary) and, with a replica
/// configured, a node `{name}-replica`. Call inside a simulation.
pub fn start(name: &str, config: Config) -> KvServer {
    let fault_rng = sim_runtime::rng(&format!("kv.{name}.faults"));
    let shared = Rc::new(Shared {
        name: name.to_string(),
        config: config.clone(),
        roles: RefCell::new(None),
        disks: RefCell::new(BTreeMap::new()),
        live: RefCell::new(BTreeMap::new()),
        slow: Cell::new(None),
        fail_rate: Cell::new(Probability::NEVER),
        fault_rng: RefCell::new(fault_rng),
        next_client: Cell::new(1),
    });
    let factory = |shared: Rc<Shared>| move || serve_node(shared.clone());
    let primary = node::node(name).build(factory(shared.clone()));
    let replica = config
        .replica
        .as_ref()
        .map(|_| node::node(format!("{name}-replica")).build(factory(shared.clone())));
    *shared.roles.borrow_mut() = Some(Roles { primary, replica });
    // However a node dies (a crash verb, a scenario killing the node, a restart, the OOM
    // killer), this is where the model reacts.
    let weak = Rc::downgrade(&shared);
    node::on_lifecycle(move |id, event| {
        let Some(shared) = weak.upgrade() else { return };
        let ours = shared.primary() == id || shared.replica() == Some(id);
        if ours && event == Lifecycle::Killed {
            shared.on_killed(id);
        }
    });
    KvServer { shared }
}

impl KvServer {
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Waits until the primary listens (its node task runs at the next scheduling step
    /// after `start`, so a client connecting before that is refused, as a real client
    /// racing a starting server would be).
    pub async fn ready(&self) {
        while self.shared.ctx(self.shared.primary()).is_none() {
            time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// The current primary's address (it moves on `failover`).
    pub fn addr(&self) -> Addr {
        Addr::new(self.shared.primary(), self.shared.config.port)
    }

    /// The replica's address, for reads from the replica.
    pub fn replica_addr(&self) -> Option<Addr> {
        self.shared
            .replica()
            .map(|n| Addr::new(n, self.shared.config.port))
    }

    pub fn primary_node(&self) -> NodeId {
        self.shared.primary()
    }

    pub fn replica_node(&self) -> Option<NodeId> {
        self.shared.replica()
    }

    /// Crashes the primary: its node is killed, its memory and unsynced AOF are gone,
    /// clients get resets. The same as killing [`KvServer::primary_node`] any other way.
    pub fn crash(&self) {
        self.shared.primary().kill();
    }

    /// Restarts the primary (crashing it first if it runs); it reloads what its disk kept.
    pub fn restart(&self) {
        self.shared.primary().restart();
    }

    /// Freezes the primary (SIGSTOP): requests queue, clients time out.
    pub fn pause(&self) {
        self.shared.primary().pause();
    }

    pub fn resume(&self) {
        self.shared.primary().resume();
    }

    /// Delays every command by `delay` before it runs, on every node of this server (like
    /// a latency proxy in front of Redis: commands are late, not serialised).
    pub fn slow(&self, delay: Duration) {
        self.shared.emit_fault(Fault::Slow { delay });
        self.shared.slow.set(Some(delay));
    }

    pub fn fast(&self) {
        self.shared.emit_fault(Fault::Fast);
        self.shared.slow.set(None);
    }

    /// Answers each command with an error reply with probability `p` instead of running
    /// it (MULTI/EXEC/DISCARD/WATCH/UNWATCH excepted), until `heal`.
    pub fn fail(&self, p: Probability) {
        self.shared.emit_fault(Fault::Fail { probability: p });
        self.shared.fail_rate.set(p);
    }

    pub fn heal(&self) {
        self.shared.emit_fault(Fault::Heal);
        self.shared.fail_rate.set(Probability::NEVER);
    }

    /// Crashes the replica's node, as `crash` does the primary's.
    pub fn crash_replica(&self) {
        if let Some(n) = self.shared.replica() {
            n.kill();
        }
    }

    /// Restarts the replica node; it resynchronises from the primary (a full sync that
    /// replaces whatever it had).
    pub fn restart_replica(&self) {
        if let Some(n) = self.shared.replica() {
            n.restart();
        }
    }

    /// Promotes the replica, as Sentinel does once the primary is judged down: the old
    /// primary is killed if it still runs (fenced), the replica stops replicating and takes
    /// writes with the data it had applied, and what it had not yet received is lost.
    /// `addr()` then names the new primary; the old primary, once restarted with
    /// `restart_replica`, comes back as its replica.
    pub fn failover(&self) -> Result<(), FailoverError> {
        let old = self.shared.primary();
        let new = self.shared.replica().ok_or(FailoverError::NoReplica)?;
        if !new.is_alive() {
            return Err(FailoverError::ReplicaDown);
        }
        let ctx = self.shared.ctx(new);
        let applied = ctx.as_ref().map_or(0, |c| c.offset.get());
        let primary_offset = self.shared.ctx(old).map_or(0, |c| c.offset.get());
        trace::emit(&FailoverEvent {
            server: self.shared.name.clone(),
            from: old.name(),
            to: new.name(),
            applied,
            primary_offset,
        });
        *self.shared.roles.borrow_mut() = Some(Roles {
            primary: new,
            replica: Some(old),
        });
        if old.is_alive() {
            old.kill();
        }
        if let Some(ctx) = ctx {
            if let Some(mut h) = ctx.replication.borrow_mut().take() {
                h.abort();
            }
            ctx.engine.borrow_mut().set_replica(false);
        }
        Ok(())
    }

    /// The current primary's dataset (`None` while it is down). For assertions.
    pub fn dataset(&self) -> Option<Dataset> {
        self.shared
            .ctx(self.shared.primary())
            .map(|c| c.engine.borrow().dataset().clone())
    }

    pub fn replica_dataset(&self) -> Option<Dataset> {
        let n = self.shared.replica()?;
        self.shared
            .ctx(n)
            .map(|c| c.engine.borrow().dataset().clone())
    }

    /// What the primary's disk would load now.
    pub fn persisted(&self) -> Dataset {
        self.shared.with_disk(self.shared.primary(), |d| d.load())
    }

    pub fn stats(&self) -> Option<Stats> {
        self.shared
            .ctx(self.shared.primary())
            .map(|c| c.engine.borrow().stats())
    }

    /// The offset of the last batch the primary committed and the replica applied.
    pub fn offsets(&self) -> (u64, Option<u64>) {
        let p = self
            .shared
            .ctx(self.shared.primary())
            .map_or(0, |c| c.offset.get());
        let r = self
            .shared
            .replica()
            .map(|n| self.shared.ctx(n).map_or(0, |c| c.offset.get()));
        (p, r)
    }
}
