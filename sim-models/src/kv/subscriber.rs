//! The client side of Pub/Sub: [`Subscription`], a connection of its own in subscribed
//! mode, from which published messages are read as they arrive.
//!
//! A subscription sees only what is published while it is subscribed and connected: a
//! message sent while it was partitioned away, before it subscribed, or while the server
//! restarted is gone, and a broken connection surfaces as a `KvError::Connection` from
//! [`Subscription::next_message`], after which the service must subscribe again (and
//! knows it may have missed messages). That is Redis's at-most-once contract.

use std::collections::VecDeque;

use sim_net::{ConnectionFailure, NetError};
use sim_runtime::time::{self, Duration};

use super::client::{KvClient, KvError, ServerError};
use super::command::{Command, Reply};
use super::server::{Request, Response, PUSH_ID};

/// A message published on a channel this subscription listens to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub channel: String,
    /// The pattern it matched, for a pattern subscription.
    pub pattern: Option<String>,
    pub payload: String,
}

/// A subscribed connection. Dropping it closes the connection, which unsubscribes.
pub struct Subscription {
    conn: sim_net::Conn<Request, Response>,
    next_id: u64,
    timeout: Duration,
    /// Messages that arrived while a (un)subscription was being confirmed.
    early: VecDeque<Message>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Subscription({} early messages)", self.early.len())
    }
}

fn connection(e: NetError) -> KvError {
    KvError::Connection(ConnectionFailure::from(e))
}

/// A pushed reply as a message, or `None` for a confirmation.
fn as_message(reply: Reply) -> Result<Option<Message>, KvError> {
    let Reply::Array(items) = reply else {
        return Err(KvError::Unexpected(reply));
    };
    let text: Vec<Option<String>> = items
        .iter()
        .map(|r| match r {
            Reply::Bulk(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    Ok(match text.as_slice() {
        [Some(kind), Some(channel), Some(payload)] if kind == "message" => Some(Message {
            channel: channel.clone(),
            pattern: None,
            payload: payload.clone(),
        }),
        [Some(kind), Some(pattern), Some(channel), Some(payload)] if kind == "pmessage" => {
            Some(Message {
                channel: channel.clone(),
                pattern: Some(pattern.clone()),
                payload: payload.clone(),
            })
        }
        _ => None,
    })
}

impl KvClient {
    /// Opens a subscription to `channels` (SUBSCRIBE) on a connection of its own.
    pub async fn subscribe(&self, channels: &[&str]) -> Result<Subscription, KvError> {
        let mut s = self.open_subscription().await?;
        s.subscribe(channels).await?;
        Ok(s)
    }

    /// Opens a subscription to the channels matching `patterns` (PSUBSCRIBE).
    pub async fn psubscribe(&self, patterns: &[&str]) -> Result<Subscription, KvError> {
        let mut s = self.open_subscription().await?;
        s.psubscribe(patterns).await?;
        Ok(s)
    }

    async fn open_subscription(&self) -> Result<Subscription, KvError> {
        let timeout = self.config().timeout;
        let conn = sim_net::connect(self.target_addr(), timeout)
            .await
            .map_err(connection)?;
        Ok(Subscription {
            conn,
            next_id: 1,
            timeout,
            early: VecDeque::new(),
        })
    }
}

impl Subscription {
    pub async fn subscribe(&mut self, channels: &[&str]) -> Result<(), KvError> {
        self.change(Command::Subscribe {
            channels: owned(channels),
        })
        .await
    }

    pub async fn unsubscribe(&mut self, channels: &[&str]) -> Result<(), KvError> {
        self.change(Command::Unsubscribe {
            channels: owned(channels),
        })
        .await
    }

    pub async fn psubscribe(&mut self, patterns: &[&str]) -> Result<(), KvError> {
        self.change(Command::PSubscribe {
            patterns: owned(patterns),
        })
        .await
    }

    pub async fn punsubscribe(&mut self, patterns: &[&str]) -> Result<(), KvError> {
        self.change(Command::PUnsubscribe {
            patterns: owned(patterns),
        })
        .await
    }

    /// Sends a (un)subscription and waits, within the client's timeout, for its last
    /// confirmation; messages that arrive meanwhile are kept for `next_message`.
    async fn change(&mut self, cmd: Command) -> Result<(), KvError> {
        let id = self.next_id;
        self.next_id += 1;
        self.conn.send(Request { id, cmd }).map_err(connection)?;
        let wait = async {
            loop {
                let resp = self.conn.recv().await?;
                if resp.id == id {
                    return Ok(resp.reply);
                }
                if resp.id == PUSH_ID {
                    if let Ok(Some(m)) = as_message(resp.reply) {
                        self.early.push_back(m);
                    }
                }
            }
        };
        let reply = match time::timeout(self.timeout, wait).await {
            Ok(r) => r.map_err(connection)?,
            Err(_) => return Err(connection(NetError::Timeout)),
        };
        match reply {
            Reply::Error(e) => Err(KvError::Server(ServerError(e))),
            _ => Ok(()),
        }
    }

    /// The next message, waiting as long as it takes (wrap it in `time::timeout` to
    /// bound the wait). A connection failure ends the subscription.
    pub async fn next_message(&mut self) -> Result<Message, KvError> {
        if let Some(m) = self.early.pop_front() {
            return Ok(m);
        }
        loop {
            let resp = self.conn.recv().await.map_err(connection)?;
            if resp.id != PUSH_ID {
                continue;
            }
            if let Some(m) = as_message(resp.reply)? {
                return Ok(m);
            }
        }
    }
}

fn owned(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}
