//! A client-side connection pool, in the manner of HikariCP or deadpool: at most
//! `max_size` connections, callers wait up to `acquire_timeout` for one (then get a typed
//! [`SqlError::PoolTimeout`]), idle connections are closed after `idle_timeout`, and an
//! idle connection is validated with a round trip before it is handed out, so that the
//! connections a server restart killed are replaced instead of failing the caller.
//!
//! A connection returned inside an open transaction (a dropped `Transaction`, a manual
//! BEGIN) or after a connection error is closed rather than reused: closing it makes the
//! server roll the transaction back.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::rc::Rc;

use futures::channel::oneshot;
use serde::Serialize;
use sim_net::Addr;
use sim_runtime::time::{self, Duration, Instant};
use sim_runtime::trace;

use super::client::{Client, ClientConfig};
use super::error::SqlError;
use super::events::PoolTimeoutEvent;

#[derive(Clone, Debug)]
pub struct PoolConfig {
    pub max_size: usize,
    /// How long `acquire` waits for a connection before `PoolTimeout` (HikariCP's
    /// `connectionTimeout`, 30 s).
    pub acquire_timeout: Duration,
    /// Idle connections older than this are closed (`None`: never; HikariCP: 10 min).
    pub idle_timeout: Option<Duration>,
    /// Validate an idle connection with a round trip before handing it out.
    pub validate_on_acquire: bool,
    pub validation_timeout: Duration,
    /// Timeouts of each connection.
    pub client: ClientConfig,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_size: 10,
            acquire_timeout: Duration::from_secs(30),
            idle_timeout: Some(Duration::from_secs(600)),
            validate_on_acquire: true,
            validation_timeout: Duration::from_secs(1),
            client: ClientConfig::default(),
        }
    }
}

/// A point-in-time view of the pool.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PoolStatus {
    /// Connections open or being opened (checked out + idle).
    pub open: usize,
    pub idle: usize,
    /// Callers waiting in `acquire`.
    pub waiting: usize,
    /// Totals since the pool was created.
    pub acquired: u64,
    pub timeouts: u64,
    pub connects: u64,
    pub discarded: u64,
}

struct Idle {
    client: Client,
    since: Instant,
}

struct State {
    idle: Vec<Idle>,
    open: usize,
    waiters: VecDeque<oneshot::Sender<()>>,
    status: PoolStatus,
}

struct Inner {
    addr: Addr,
    config: PoolConfig,
    state: RefCell<State>,
}

impl Inner {
    /// Wakes the longest waiting caller still waiting.
    fn notify_one(&self) {
        loop {
            let Some(tx) = self.state.borrow_mut().waiters.pop_front() else {
                return;
            };
            if tx.send(()).is_ok() {
                return;
            }
        }
    }

    fn discard(&self, client: Client) {
        {
            let mut st = self.state.borrow_mut();
            st.open -= 1;
            st.status.discarded += 1;
        }
        client.close();
        self.notify_one();
    }

    /// Closes idle connections past their idle timeout.
    fn reap_idle(&self) {
        let Some(limit) = self.config.idle_timeout else {
            return;
        };
        let now = time::now();
        let expired: Vec<Idle> = {
            let mut st = self.state.borrow_mut();
            let (old, keep): (Vec<Idle>, Vec<Idle>) = std::mem::take(&mut st.idle)
                .into_iter()
                .partition(|i| now.duration_since(i.since) >= limit);
            st.idle = keep;
            old
        };
        for i in expired {
            self.discard(i.client);
        }
    }

    fn release(&self, client: Client) {
        if client.is_broken() || client.in_transaction() {
            self.discard(client);
            return;
        }
        self.state.borrow_mut().idle.push(Idle {
            client,
            since: time::now(),
        });
        self.notify_one();
    }
}

/// A connection pool (cheap to clone; clones share the connections).
#[derive(Clone)]
pub struct Pool {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("addr", &self.inner.addr)
            .field("status", &self.status())
            .finish()
    }
}

impl Pool {
    /// A pool of connections to `addr`; connections are opened on demand.
    pub fn new(addr: Addr, config: PoolConfig) -> Pool {
        Pool {
            inner: Rc::new(Inner {
                addr,
                config,
                state: RefCell::new(State {
                    idle: Vec::new(),
                    open: 0,
                    waiters: VecDeque::new(),
                    status: PoolStatus::default(),
                }),
            }),
        }
    }

    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    pub fn status(&self) -> PoolStatus {
        let st = self.inner.state.borrow();
        PoolStatus {
            open: st.open,
            idle: st.idle.len(),
            waiting: st.waiters.iter().filter(|w| !w.is_canceled()).count(),
            ..st.status.clone()
        }
    }

    /// A connection: an idle one (validated), a new one if the pool is not full, or the
    /// next one released within `acquire_timeout`.
    pub async fn acquire(&self) -> Result<PooledConn, SqlError> {
        let inner = &self.inner;
        let start = time::now();
        let deadline = start + inner.config.acquire_timeout;
        loop {
            inner.reap_idle();
            // Most recently used first, so that surplus connections age out.
            let idle = inner.state.borrow_mut().idle.pop();
            if let Some(Idle { mut client, .. }) = idle {
                if inner.config.validate_on_acquire {
                    let ok = time::timeout(inner.config.validation_timeout, client.ping()).await;
                    if !matches!(ok, Ok(Ok(()))) {
                        inner.discard(client);
                        continue;
                    }
                }
                return Ok(self.checked_out(client));
            }
            let room = {
                let mut st = inner.state.borrow_mut();
                let room = st.open < inner.config.max_size;
                if room {
                    st.open += 1;
                    st.status.connects += 1;
                }
                room
            };
            if room {
                let left = deadline.duration_since(time::now());
                let mut cfg = inner.config.client.clone();
                cfg.connect_timeout = cfg.connect_timeout.min(left);
                return match Client::connect(inner.addr, &cfg).await {
                    Ok(client) => Ok(self.checked_out(client)),
                    Err(e) => {
                        inner.state.borrow_mut().open -= 1;
                        inner.notify_one();
                        Err(e)
                    }
                };
            }
            let (tx, mut rx) = oneshot::channel();
            inner.state.borrow_mut().waiters.push_back(tx);
            let left = deadline.duration_since(time::now());
            let woken = time::timeout(left, &mut rx).await;
            if !matches!(woken, Ok(Ok(()))) {
                // A wake-up that raced with the timeout belongs to the next waiter.
                if let Ok(Some(())) = rx.try_recv() {
                    inner.notify_one();
                }
                let waited = time::now().duration_since(start);
                inner.state.borrow_mut().status.timeouts += 1;
                trace::emit(&PoolTimeoutEvent {
                    addr: inner.addr,
                    waited_ns: waited.as_nanos() as u64,
                    max_size: inner.config.max_size as u64,
                });
                return Err(SqlError::PoolTimeout { waited });
            }
        }
    }

    fn checked_out(&self, client: Client) -> PooledConn {
        self.inner.state.borrow_mut().status.acquired += 1;
        PooledConn {
            client: Some(client),
            pool: self.inner.clone(),
        }
    }
}

/// A connection borrowed from a [`Pool`]; it goes back when dropped.
pub struct PooledConn {
    client: Option<Client>,
    pool: Rc<Inner>,
}

impl std::fmt::Debug for PooledConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PooledConn").field(&self.client).finish()
    }
}

impl PooledConn {
    /// Closes the connection instead of returning it to the pool.
    pub fn detach(mut self) {
        if let Some(c) = self.client.take() {
            self.pool.discard(c);
        }
    }
}

impl Deref for PooledConn {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("present until drop")
    }
}

impl DerefMut for PooledConn {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("present until drop")
    }
}

impl Drop for PooledConn {
    fn drop(&mut self) {
        // After the simulation ended there is no pool to return to.
        if !sim_runtime::is_running() {
            return;
        }
        if let Some(c) = self.client.take() {
            self.pool.release(c);
        }
    }
}
