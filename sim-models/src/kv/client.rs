//! The client: one connection over sim-net (opened lazily, reopened after a failure), a
//! timeout on every call, typed methods per command, and errors that keep the network's
//! failures apart from Redis' error replies.
//!
//! Like one redis-rs connection, a client runs one call at a time; clones share the
//! connection and queue behind each other. WATCH state lives on the connection, so a task
//! that uses WATCH should have its own client. After a timeout the connection is dropped
//! (a late reply must never be read as the answer to the next call), and the server-side
//! session, with its WATCH and MULTI state, goes with it.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;

use futures::lock::Mutex;
use sim_net::{Addr, Conn, ConnectionFailure, NetError};
use sim_runtime::time::{self, Duration};
use sim_runtime::trace;

use super::command::{Command, Condition, ExpireFlags, Reply, ScoreBound, SetExpiry, ZAddFlags};
use super::event::ClientErrorEvent;
use super::history::{KvHistory, Pending};
use super::script::Script;
use super::server::{KvServer, Request, Response};

/// An error reply from the server (`ERR ...`, `WRONGTYPE ...`, `OOM ...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError(pub String);

impl ServerError {
    /// The error's prefix: `ERR`, `WRONGTYPE`, `OOM`, `EXECABORT`, `READONLY`.
    pub fn kind(&self) -> &str {
        self.0.split(' ').next().unwrap_or("")
    }

    pub fn message(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a call failed. `Connection` is the network's (the command may or may not have
/// run: a timed-out write can still be applied); `Server` is Redis answering with an error
/// (the command did not run, except inside EXEC and scripts).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    #[error("kv: {0}")]
    Connection(ConnectionFailure),
    #[error("kv error reply: {0}")]
    Server(ServerError),
    /// A reply of the wrong shape for the typed method (a bug in the caller's types).
    #[error("unexpected kv reply: {0}")]
    Unexpected(Reply),
}

impl KvError {
    /// Refused, reset, timeout or unreachable.
    pub fn is_network(&self) -> bool {
        matches!(self, KvError::Connection(_))
    }

    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            KvError::Server(e) => Some(e),
            _ => None,
        }
    }

    pub fn is_oom(&self) -> bool {
        self.server_error().is_some_and(|e| e.kind() == "OOM")
    }

    pub fn is_wrongtype(&self) -> bool {
        self.server_error().is_some_and(|e| e.kind() == "WRONGTYPE")
    }
}

/// Client knobs. `Default`: a 1 s timeout per call (connecting included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    pub timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: Duration::from_secs(1),
        }
    }
}

/// Where a client connects: a fixed address, or a server's current primary (what a
/// Sentinel-aware client does: it follows failovers).
#[derive(Clone, Debug)]
pub enum Target {
    Addr(Addr),
    Server(KvServer),
}

impl Target {
    fn addr(&self) -> Addr {
        match self {
            Target::Addr(a) => *a,
            Target::Server(s) => s.addr(),
        }
    }
}

impl From<Addr> for Target {
    fn from(a: Addr) -> Self {
        Target::Addr(a)
    }
}

impl From<&KvServer> for Target {
    fn from(s: &KvServer) -> Self {
        Target::Server(s.clone())
    }
}

impl From<KvServer> for Target {
    fn from(s: KvServer) -> Self {
        Target::Server(s)
    }
}

struct Inner {
    target: Target,
    config: ClientConfig,
    conn: Mutex<Option<Conn<Request, Response>>>,
    next_id: Cell<u64>,
    /// Where register operations are recorded, and this client's id there.
    history: Option<(KvHistory, u32)>,
}

/// A kv client. Cheap to clone; clones share one connection.
#[derive(Clone)]
pub struct KvClient {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for KvClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KvClient({:?})", self.inner.target)
    }
}

fn s(x: &str) -> String {
    x.to_string()
}

fn strings(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|x| x.to_string()).collect()
}

fn millis(d: Duration) -> i64 {
    // Sub-millisecond TTLs round up: a TTL must not become "no TTL" or "expired now".
    i64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX)
}

fn int(r: Reply) -> Result<i64, KvError> {
    match r {
        Reply::Int(n) => Ok(n),
        other => Err(KvError::Unexpected(other)),
    }
}

fn boolean(r: Reply) -> Result<bool, KvError> {
    int(r).map(|n| n != 0)
}

fn opt_string(r: Reply) -> Result<Option<String>, KvError> {
    match r {
        Reply::Nil => Ok(None),
        Reply::Bulk(s) => Ok(Some(s)),
        other => Err(KvError::Unexpected(other)),
    }
}

fn list(r: Reply) -> Result<Vec<Reply>, KvError> {
    match r {
        Reply::Array(v) => Ok(v),
        other => Err(KvError::Unexpected(other)),
    }
}

fn string_list(r: Reply) -> Result<Vec<String>, KvError> {
    list(r)?
        .into_iter()
        .map(|x| match x {
            Reply::Bulk(s) => Ok(s),
            other => Err(KvError::Unexpected(other)),
        })
        .collect()
}

fn pair(r: Reply) -> Result<Option<(String, String)>, KvError> {
    match r {
        Reply::Nil => Ok(None),
        other => {
            let mut v = string_list(other)?;
            if v.len() != 2 {
                return Err(KvError::Unexpected(Reply::bulks(v)));
            }
            let b = v.pop().expect("two");
            let a = v.pop().expect("two");
            Ok(Some((a, b)))
        }
    }
}

fn ok(r: Reply) -> Result<(), KvError> {
    match r {
        Reply::Status(_) => Ok(()),
        other => Err(KvError::Unexpected(other)),
    }
}

fn score(s: &str) -> Result<f64, KvError> {
    match s {
        "inf" => Ok(f64::INFINITY),
        "-inf" => Ok(f64::NEG_INFINITY),
        _ => s.parse().map_err(|_| KvError::Unexpected(Reply::bulk(s))),
    }
}

impl KvClient {
    pub fn new(target: impl Into<Target>, config: ClientConfig) -> Self {
        KvClient {
            inner: Rc::new(Inner {
                target: target.into(),
                config,
                conn: Mutex::new(None),
                next_id: Cell::new(1),
                history: None,
            }),
        }
    }

    /// A client whose register operations (GET, SET, DEL of one key, INCR and kin) are
    /// recorded into `history` under a client id of their own, with virtual times and
    /// outcomes, for [`crate::check::linearizable`]. Its clones share the id.
    pub fn recorded(target: impl Into<Target>, config: ClientConfig, history: &KvHistory) -> Self {
        KvClient {
            inner: Rc::new(Inner {
                target: target.into(),
                config,
                conn: Mutex::new(None),
                next_id: Cell::new(1),
                history: Some((history.clone(), history.next_client())),
            }),
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Where the client connects (a server's current primary, or a fixed address).
    pub(crate) fn target_addr(&self) -> Addr {
        self.inner.target.addr()
    }

    /// Sends `cmds` pipelined and hands their replies, error replies included, to
    /// `reply` in order. The whole exchange (and connecting) must finish within
    /// `timeout`, or the connection is dropped and the call fails with `Timeout`.
    ///
    /// Commands and replies stream through rather than being collected: nearly every
    /// call is one command, and two vectors per call were a good part of its cost.
    async fn exchange(
        &self,
        cmds: impl ExactSizeIterator<Item = Command>,
        timeout: Option<Duration>,
        mut reply: impl FnMut(Reply),
    ) -> Result<(), KvError> {
        let mut guard = self.inner.conn.lock().await;
        let addr = self.inner.target.addr();
        let connect_timeout = timeout.unwrap_or(self.inner.config.timeout);
        let first_id = self.inner.next_id.get();
        let n = cmds.len();
        self.inner.next_id.set(first_id + n as u64);
        let work = async {
            let mut reqs = cmds.enumerate().map(|(i, cmd)| Request {
                id: first_id + i as u64,
                cmd,
            });
            let first = reqs.next().expect("at least one command");
            // A kept connection may have died since its last use (the server restarted).
            // It is then no longer open, nothing is sent on it, and it is safe to
            // reconnect and send, as clients with a connection pool do. (Asking first
            // spares a copy of the command for a send that might fail.)
            let reused = guard.as_ref().is_some_and(|c| c.is_open());
            if reused {
                guard.as_ref().expect("checked above").send(first)?;
            } else {
                let conn = sim_net::connect(addr, connect_timeout).await?;
                conn.send(first)?;
                *guard = Some(conn);
            }
            let conn = guard.as_mut().expect("connected above");
            for req in reqs {
                conn.send(req)?;
            }
            let mut received = 0;
            while received < n {
                let resp = conn.recv().await?;
                // Ids only grow, so anything older is a stale answer to an abandoned call.
                if resp.id >= first_id {
                    reply(resp.reply);
                    received += 1;
                }
            }
            Ok::<_, NetError>(())
        };
        let result = match timeout {
            Some(d) => match time::timeout(d, work).await {
                Ok(r) => r,
                Err(_) => Err(NetError::Timeout),
            },
            None => work.await,
        };
        result.map_err(|e| {
            *guard = None;
            let failure = ConnectionFailure::from(e);
            trace::emit(&ClientErrorEvent { addr, failure });
            KvError::Connection(failure)
        })
    }

    /// Runs one command and returns its reply; an error reply is `Err(KvError::Server)`.
    ///
    /// SUBSCRIBE and its kin are refused here: a subscribed connection answers nothing
    /// else, so they get a connection of their own through [`KvClient::subscribe`].
    pub async fn call(&self, cmd: Command) -> Result<Reply, KvError> {
        if matches!(
            cmd,
            Command::Subscribe { .. }
                | Command::PSubscribe { .. }
                | Command::Unsubscribe { .. }
                | Command::PUnsubscribe { .. }
        ) {
            return Err(KvError::Server(ServerError(format!(
                "ERR {} on a shared connection: use KvClient::subscribe or psubscribe",
                cmd.name().to_ascii_uppercase()
            ))));
        }
        let timeout = Some(self.inner.config.timeout);
        self.call_with(cmd, timeout).await
    }

    /// Sends an argument vector as redis-cli would (`["SET", "k", "v", "NX"]`) and returns
    /// the reply; the server parses it, so unknown commands, wrong argument counts and bad
    /// arguments get Redis' errors where Redis gives them, inside MULTI included. An error
    /// reply is `Err(KvError::Server)`.
    pub async fn call_argv<S: AsRef<str>>(&self, argv: &[S]) -> Result<Reply, KvError> {
        let argv: Vec<String> = argv.iter().map(|a| a.as_ref().to_string()).collect();
        let subscribes = argv.first().is_some_and(|n| {
            ["subscribe", "psubscribe", "unsubscribe", "punsubscribe"]
                .contains(&n.to_ascii_lowercase().as_str())
        });
        if subscribes {
            // As in `call`: a subscribed connection would answer nothing else.
            return Err(KvError::Server(ServerError(format!(
                "ERR {} on a shared connection: use KvClient::subscribe or psubscribe",
                argv[0].to_ascii_uppercase()
            ))));
        }
        let timeout = Some(self.inner.config.timeout);
        self.call_with(Command::Raw { argv }, timeout).await
    }

    async fn call_with(&self, cmd: Command, timeout: Option<Duration>) -> Result<Reply, KvError> {
        let recording = self.inner.history.as_ref().and_then(|(history, client)| {
            let pending: Pending = history.invoke(*client, &cmd)?;
            Some((history, pending))
        });
        let result = self.call_once(cmd, timeout).await;
        if let Some((history, pending)) = recording {
            history.complete(pending, &result);
        }
        result
    }

    async fn call_once(&self, cmd: Command, timeout: Option<Duration>) -> Result<Reply, KvError> {
        let mut reply = None;
        self.exchange(std::iter::once(cmd), timeout, |r| reply = Some(r))
            .await?;
        match reply.expect("one reply per command") {
            Reply::Error(e) => Err(KvError::Server(ServerError(e))),
            r => Ok(r),
        }
    }

    /// PUBLISH: how many subscribers the message was pushed to.
    pub async fn publish(&self, channel: &str, message: &str) -> Result<i64, KvError> {
        match self
            .call(Command::Publish {
                channel: channel.to_string(),
                message: message.to_string(),
            })
            .await?
        {
            Reply::Int(n) => Ok(n),
            other => Err(KvError::Unexpected(other)),
        }
    }

    pub async fn ping(&self) -> Result<(), KvError> {
        ok(self.call(Command::Ping { message: None }).await?)
    }

    // ---- strings ----

    pub async fn get(&self, key: &str) -> Result<Option<String>, KvError> {
        opt_string(self.call(Command::Get { key: s(key) }).await?)
    }

    pub async fn set(&self, key: &str, value: &str) -> Result<(), KvError> {
        self.set_with(key, value, Condition::Always, SetExpiry::None)
            .await
            .map(|_| ())
    }

    /// SET NX: true when the key was set.
    pub async fn set_nx(&self, key: &str, value: &str) -> Result<bool, KvError> {
        self.set_with(key, value, Condition::Nx, SetExpiry::None)
            .await
    }

    /// SET XX: true when the key existed and was set.
    pub async fn set_xx(&self, key: &str, value: &str) -> Result<bool, KvError> {
        self.set_with(key, value, Condition::Xx, SetExpiry::None)
            .await
    }

    /// SET key value PX ttl: a TTL in milliseconds, named for what it sends.
    pub async fn set_px(&self, key: &str, value: &str, ttl: Duration) -> Result<(), KvError> {
        self.set_with(key, value, Condition::Always, SetExpiry::Px(millis(ttl)))
            .await
            .map(|_| ())
    }

    /// SET key value NX PX ttl: the lock and idempotency-key idiom. True when the key was
    /// set.
    pub async fn set_nx_px(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, KvError> {
        self.set_with(key, value, Condition::Nx, SetExpiry::Px(millis(ttl)))
            .await
    }

    /// SET with any condition and expiry; true when the value was stored.
    pub async fn set_with(
        &self,
        key: &str,
        value: &str,
        condition: Condition,
        expiry: SetExpiry,
    ) -> Result<bool, KvError> {
        let cmd = Command::Set {
            key: s(key),
            value: s(value),
            condition,
            expiry,
            get: false,
        };
        match self.call(cmd).await? {
            Reply::Nil => Ok(false),
            r => ok(r).map(|_| true),
        }
    }

    /// GETSET / SET GET: stores `value`, returns the old value.
    pub async fn getset(&self, key: &str, value: &str) -> Result<Option<String>, KvError> {
        opt_string(
            self.call(Command::GetSet {
                key: s(key),
                value: s(value),
            })
            .await?,
        )
    }

    pub async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<String>>, KvError> {
        list(
            self.call(Command::MGet {
                keys: strings(keys),
            })
            .await?,
        )?
        .into_iter()
        .map(opt_string)
        .collect()
    }

    pub async fn del(&self, keys: &[&str]) -> Result<i64, KvError> {
        int(self
            .call(Command::Del {
                keys: strings(keys),
            })
            .await?)
    }

    pub async fn exists(&self, keys: &[&str]) -> Result<i64, KvError> {
        int(self
            .call(Command::Exists {
                keys: strings(keys),
            })
            .await?)
    }

    pub async fn incr(&self, key: &str) -> Result<i64, KvError> {
        int(self.call(Command::Incr { key: s(key) }).await?)
    }

    pub async fn decr(&self, key: &str) -> Result<i64, KvError> {
        int(self.call(Command::Decr { key: s(key) }).await?)
    }

    pub async fn incr_by(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        int(self.call(Command::IncrBy { key: s(key), delta }).await?)
    }

    pub async fn decr_by(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        int(self.call(Command::DecrBy { key: s(key), delta }).await?)
    }

    // ---- expiry ----

    /// PEXPIRE: true when the key exists and got the TTL.
    pub async fn expire(&self, key: &str, ttl: Duration) -> Result<bool, KvError> {
        let cmd = Command::PExpire {
            key: s(key),
            millis: millis(ttl),
            flags: ExpireFlags::default(),
        };
        boolean(self.call(cmd).await?)
    }

    /// TTL in seconds; -2 when the key does not exist, -1 when it has no TTL.
    pub async fn ttl(&self, key: &str) -> Result<i64, KvError> {
        int(self.call(Command::Ttl { key: s(key) }).await?)
    }

    /// PTTL in milliseconds; -2 / -1 as for `ttl`.
    pub async fn pttl(&self, key: &str) -> Result<i64, KvError> {
        int(self.call(Command::PTtl { key: s(key) }).await?)
    }

    pub async fn persist(&self, key: &str) -> Result<bool, KvError> {
        boolean(self.call(Command::Persist { key: s(key) }).await?)
    }

    // ---- hashes ----

    /// HSET one field; returns 1 when the field is new.
    pub async fn hset(&self, key: &str, field: &str, value: &str) -> Result<i64, KvError> {
        int(self
            .call(Command::HSet {
                key: s(key),
                pairs: vec![(s(field), s(value))],
            })
            .await?)
    }

    pub async fn hget(&self, key: &str, field: &str) -> Result<Option<String>, KvError> {
        opt_string(
            self.call(Command::HGet {
                key: s(key),
                field: s(field),
            })
            .await?,
        )
    }

    pub async fn hdel(&self, key: &str, fields: &[&str]) -> Result<i64, KvError> {
        int(self
            .call(Command::HDel {
                key: s(key),
                fields: strings(fields),
            })
            .await?)
    }

    pub async fn hincr_by(&self, key: &str, field: &str, delta: i64) -> Result<i64, KvError> {
        int(self
            .call(Command::HIncrBy {
                key: s(key),
                field: s(field),
                delta,
            })
            .await?)
    }

    pub async fn hgetall(&self, key: &str) -> Result<BTreeMap<String, String>, KvError> {
        let flat = string_list(self.call(Command::HGetAll { key: s(key) }).await?)?;
        Ok(flat
            .chunks(2)
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect())
    }

    // ---- lists ----

    pub async fn lpush(&self, key: &str, values: &[&str]) -> Result<i64, KvError> {
        int(self
            .call(Command::LPush {
                key: s(key),
                values: strings(values),
            })
            .await?)
    }

    pub async fn rpush(&self, key: &str, values: &[&str]) -> Result<i64, KvError> {
        int(self
            .call(Command::RPush {
                key: s(key),
                values: strings(values),
            })
            .await?)
    }

    pub async fn lpop(&self, key: &str) -> Result<Option<String>, KvError> {
        opt_string(
            self.call(Command::LPop {
                key: s(key),
                count: None,
            })
            .await?,
        )
    }

    pub async fn rpop(&self, key: &str) -> Result<Option<String>, KvError> {
        opt_string(
            self.call(Command::RPop {
                key: s(key),
                count: None,
            })
            .await?,
        )
    }

    pub async fn llen(&self, key: &str) -> Result<i64, KvError> {
        int(self.call(Command::LLen { key: s(key) }).await?)
    }

    pub async fn lrange(&self, key: &str, start: i64, stop: i64) -> Result<Vec<String>, KvError> {
        string_list(
            self.call(Command::LRange {
                key: s(key),
                start,
                stop,
            })
            .await?,
        )
    }

    pub async fn lrem(&self, key: &str, count: i64, value: &str) -> Result<i64, KvError> {
        int(self
            .call(Command::LRem {
                key: s(key),
                count,
                value: s(value),
            })
            .await?)
    }

    /// BLPOP: `(key, value)`, or `None` when `timeout` passed (zero waits forever). The
    /// call's own deadline is the block timeout plus the client timeout.
    pub async fn blpop(
        &self,
        keys: &[&str],
        timeout: Duration,
    ) -> Result<Option<(String, String)>, KvError> {
        self.blocking_pop(
            Command::BLPop {
                keys: strings(keys),
                timeout,
            },
            timeout,
        )
        .await
    }

    pub async fn brpop(
        &self,
        keys: &[&str],
        timeout: Duration,
    ) -> Result<Option<(String, String)>, KvError> {
        self.blocking_pop(
            Command::BRPop {
                keys: strings(keys),
                timeout,
            },
            timeout,
        )
        .await
    }

    async fn blocking_pop(
        &self,
        cmd: Command,
        block: Duration,
    ) -> Result<Option<(String, String)>, KvError> {
        let deadline = (!block.is_zero()).then(|| block + self.inner.config.timeout);
        pair(self.call_with(cmd, deadline).await?)
    }

    // ---- sets ----

    pub async fn sadd(&self, key: &str, members: &[&str]) -> Result<i64, KvError> {
        int(self
            .call(Command::SAdd {
                key: s(key),
                members: strings(members),
            })
            .await?)
    }

    pub async fn srem(&self, key: &str, members: &[&str]) -> Result<i64, KvError> {
        int(self
            .call(Command::SRem {
                key: s(key),
                members: strings(members),
            })
            .await?)
    }

    pub async fn sismember(&self, key: &str, member: &str) -> Result<bool, KvError> {
        boolean(
            self.call(Command::SIsMember {
                key: s(key),
                member: s(member),
            })
            .await?,
        )
    }

    pub async fn scard(&self, key: &str) -> Result<i64, KvError> {
        int(self.call(Command::SCard { key: s(key) }).await?)
    }

    pub async fn smembers(&self, key: &str) -> Result<Vec<String>, KvError> {
        string_list(self.call(Command::SMembers { key: s(key) }).await?)
    }

    // ---- sorted sets ----

    /// ZADD one member; returns 1 when it is new.
    pub async fn zadd(&self, key: &str, score: f64, member: &str) -> Result<i64, KvError> {
        let cmd = Command::ZAdd {
            key: s(key),
            flags: ZAddFlags::default(),
            members: vec![(score, s(member))],
        };
        int(self.call(cmd).await?)
    }

    /// Members with scores in `[min, max]` (bounds may be exclusive), in score order, at
    /// most `limit` of them when given.
    pub async fn zrangebyscore(
        &self,
        key: &str,
        min: ScoreBound,
        max: ScoreBound,
        limit: Option<usize>,
    ) -> Result<Vec<String>, KvError> {
        let limit = limit.map(|n| (0, i64::try_from(n).unwrap_or(i64::MAX)));
        let cmd = Command::ZRangeByScore {
            key: s(key),
            min,
            max,
            with_scores: false,
            limit,
        };
        string_list(self.call(cmd).await?)
    }

    /// Like `zrangebyscore`, with each member's score.
    pub async fn zrangebyscore_with_scores(
        &self,
        key: &str,
        min: ScoreBound,
        max: ScoreBound,
        limit: Option<usize>,
    ) -> Result<Vec<(String, f64)>, KvError> {
        let limit = limit.map(|n| (0, i64::try_from(n).unwrap_or(i64::MAX)));
        let cmd = Command::ZRangeByScore {
            key: s(key),
            min,
            max,
            with_scores: true,
            limit,
        };
        let flat = string_list(self.call(cmd).await?)?;
        flat.chunks(2)
            .map(|c| Ok((c[0].clone(), score(&c[1])?)))
            .collect()
    }

    pub async fn zrem(&self, key: &str, members: &[&str]) -> Result<i64, KvError> {
        int(self
            .call(Command::ZRem {
                key: s(key),
                members: strings(members),
            })
            .await?)
    }

    pub async fn zscore(&self, key: &str, member: &str) -> Result<Option<f64>, KvError> {
        opt_string(
            self.call(Command::ZScore {
                key: s(key),
                member: s(member),
            })
            .await?,
        )?
        .map(|v| score(&v))
        .transpose()
    }

    // ---- transactions ----

    pub async fn watch(&self, keys: &[&str]) -> Result<(), KvError> {
        ok(self
            .call(Command::Watch {
                keys: strings(keys),
            })
            .await?)
    }

    pub async fn unwatch(&self) -> Result<(), KvError> {
        ok(self.call(Command::Unwatch).await?)
    }

    /// Starts building a MULTI/EXEC transaction; nothing is sent until `exec`.
    pub fn multi(&self) -> Transaction<'_> {
        Transaction {
            client: self,
            cmds: Vec::new(),
        }
    }

    // ---- scripts and server ----

    /// Runs `script` atomically on the server with `keys` and `args` (EVAL).
    pub async fn eval(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&str],
    ) -> Result<Reply, KvError> {
        self.call(Command::Eval {
            script: script.clone(),
            keys: strings(keys),
            args: strings(args),
        })
        .await
    }

    pub async fn dbsize(&self) -> Result<i64, KvError> {
        int(self.call(Command::DbSize).await?)
    }

    pub async fn flushall(&self) -> Result<(), KvError> {
        ok(self.call(Command::FlushAll).await?)
    }
}

/// A MULTI/EXEC transaction being built. `exec` sends MULTI, the commands and EXEC in one
/// pipeline; dropping it unsent is a DISCARD that never reached the server.
#[derive(Debug)]
pub struct Transaction<'a> {
    client: &'a KvClient,
    cmds: Vec<Command>,
}

impl Transaction<'_> {
    /// Queues any command.
    pub fn cmd(mut self, cmd: Command) -> Self {
        self.cmds.push(cmd);
        self
    }

    pub fn get(self, key: &str) -> Self {
        self.cmd(Command::Get { key: s(key) })
    }

    pub fn set(self, key: &str, value: &str) -> Self {
        self.cmd(Command::Set {
            key: s(key),
            value: s(value),
            condition: Condition::Always,
            expiry: SetExpiry::None,
            get: false,
        })
    }

    pub fn del(self, key: &str) -> Self {
        self.cmd(Command::Del { keys: vec![s(key)] })
    }

    pub fn incr(self, key: &str) -> Self {
        self.cmd(Command::Incr { key: s(key) })
    }

    pub fn incr_by(self, key: &str, delta: i64) -> Self {
        self.cmd(Command::IncrBy { key: s(key), delta })
    }

    pub fn decr_by(self, key: &str, delta: i64) -> Self {
        self.cmd(Command::DecrBy { key: s(key), delta })
    }

    pub fn hset(self, key: &str, field: &str, value: &str) -> Self {
        self.cmd(Command::HSet {
            key: s(key),
            pairs: vec![(s(field), s(value))],
        })
    }

    pub fn lpush(self, key: &str, value: &str) -> Self {
        self.cmd(Command::LPush {
            key: s(key),
            values: vec![s(value)],
        })
    }

    pub fn rpush(self, key: &str, value: &str) -> Self {
        self.cmd(Command::RPush {
            key: s(key),
            values: vec![s(value)],
        })
    }

    pub fn sadd(self, key: &str, member: &str) -> Self {
        self.cmd(Command::SAdd {
            key: s(key),
            members: vec![s(member)],
        })
    }

    pub fn zadd(self, key: &str, score: f64, member: &str) -> Self {
        self.cmd(Command::ZAdd {
            key: s(key),
            flags: ZAddFlags::default(),
            members: vec![(score, s(member))],
        })
    }

    pub fn zrem(self, key: &str, member: &str) -> Self {
        self.cmd(Command::ZRem {
            key: s(key),
            members: vec![s(member)],
        })
    }

    pub fn expire(self, key: &str, ttl: Duration) -> Self {
        self.cmd(Command::PExpire {
            key: s(key),
            millis: millis(ttl),
            flags: ExpireFlags::default(),
        })
    }

    /// Runs the transaction: `Ok(None)` when a watched key changed (EXEC returned nil),
    /// else each command's reply (error replies included: Redis does not roll back).
    /// `EXECABORT` (a command refused while queueing, e.g. OOM) is `Err(Server)`.
    pub async fn exec(self) -> Result<Option<Vec<Reply>>, KvError> {
        let n = self.cmds.len();
        let mut all = Vec::with_capacity(n + 2);
        all.push(Command::Multi);
        all.extend(self.cmds);
        all.push(Command::Exec);
        let timeout = Some(self.client.inner.config.timeout);
        let mut replies = Vec::with_capacity(n + 2);
        self.client
            .exchange(all.into_iter(), timeout, |r| replies.push(r))
            .await?;
        let exec = replies.pop().expect("one reply per command");
        if let Some(Reply::Error(e)) = replies.first() {
            return Err(KvError::Server(ServerError(e.clone())));
        }
        match exec {
            Reply::Nil => Ok(None),
            Reply::Array(v) => Ok(Some(v)),
            Reply::Error(e) => Err(KvError::Server(ServerError(e))),
            other => Err(KvError::Unexpected(other)),
        }
    }
}
