//! An Asynq-like job queue on the Redis model's lists and sorted sets, as Asynq lays it out:
//!
//! - `pending`: a list; enqueue pushes on the left, workers take from the right;
//! - `active` + `lease`: a list of the jobs being processed and a sorted set of their lease
//!   deadlines; a job whose lease ran out belongs to a worker that died, and goes back;
//! - `retry`: a sorted set scored by when each failed job may run again (exponential
//!   backoff with jitter, decided by the worker);
//! - `completed` and `archived` (the dead-letter set): sorted sets scored by when the job
//!   got there; a job's hash holds its payload, its state and how often it was retried.
//!
//! Every transition is one script (Asynq's Lua scripts, here closures run atomically on
//! the server), so a crash between two commands cannot leave a job half moved. A job
//! reaches `completed` or `archived` once: the scripts refuse a second terminal move.

use std::rc::Rc;

use serde::{Deserialize, Serialize};
use sim_models::kv::{self, KvClient, Reply, ScoreBound, Script, ScriptContext};
use sim_runtime::time::Instant;

use super::deps::DepError;

const PENDING: &str = "asynq:{default}:pending";
const ACTIVE: &str = "asynq:{default}:active";
const LEASE: &str = "asynq:{default}:lease";
const RETRY: &str = "asynq:{default}:retry";
const COMPLETED: &str = "asynq:{default}:completed";
const ARCHIVED: &str = "asynq:{default}:archived";
const TASK_PREFIX: &str = "asynq:{default}:t:";

fn task_key(id: &str) -> String {
    format!("{TASK_PREFIX}{id}")
}

/// Milliseconds of virtual time, the scores of the sorted sets.
fn ms(at: Instant) -> String {
    at.elapsed_since_start().as_millis().to_string()
}

/// `redis.call(...)` inside a script: the argument vector as Redis would parse it.
fn call(ctx: &mut ScriptContext<'_>, argv: &[&str]) -> Reply {
    match kv::parse(argv) {
        Ok(cmd) => ctx.call(cmd),
        Err(refused) => refused,
    }
}

fn is_terminal(ctx: &mut ScriptContext<'_>, task: &str) -> bool {
    matches!(call(ctx, &["HGET", task, "state"]), Reply::Bulk(s) if s == "completed" || s == "archived")
}

/// Takes `id` out of the in-flight structures (its lease, the active list, the retry
/// set): the first step of every transition that ends an attempt.
fn release(ctx: &mut ScriptContext<'_>, id: &str) {
    call(ctx, &["ZREM", LEASE, id]);
    call(ctx, &["LREM", ACTIVE, "0", id]);
    call(ctx, &["ZREM", RETRY, id]);
}

/// The job in `task`'s hash, as `[id, phone, text, retried]`.
fn job_reply(ctx: &mut ScriptContext<'_>, id: &str) -> Reply {
    let task = task_key(id);
    let field = |ctx: &mut ScriptContext<'_>, f: &str| match call(ctx, &["HGET", &task, f]) {
        Reply::Bulk(s) => s,
        _ => String::new(),
    };
    let (phone, text, retried) = (
        field(ctx, "phone"),
        field(ctx, "text"),
        field(ctx, "retried"),
    );
    Reply::bulks([id.to_string(), phone, text, retried])
}

/// ARGV: id, phone, text. 0 when the id is taken (Asynq's task ID conflict).
fn enqueue_script() -> Script {
    Script::new("asynq.enqueue", |ctx, _keys, args| {
        let (id, phone, text) = (&args[0], &args[1], &args[2]);
        let task = task_key(id);
        if matches!(call(ctx, &["EXISTS", &task]), Reply::Int(1)) {
            return Reply::Int(0);
        }
        call(
            ctx,
            &[
                "HSET", &task, "phone", phone, "text", text, "state", "pending", "retried", "0",
            ],
        );
        call(ctx, &["LPUSH", PENDING, id]);
        Reply::Int(1)
    })
}

/// ARGV: lease deadline (ms). Moves the oldest pending job to active under a lease.
fn dequeue_script() -> Script {
    Script::new("asynq.dequeue", |ctx, _keys, args| loop {
        let id = match call(ctx, &["RPOP", PENDING]) {
            Reply::Bulk(id) => id,
            _ => return Reply::Nil,
        };
        let task = task_key(&id);
        // A job that finished while it waited (a late acknowledgement of an abandoned
        // lease) is dropped here rather than run again.
        if is_terminal(ctx, &task) {
            continue;
        }
        call(ctx, &["LPUSH", ACTIVE, &id]);
        call(ctx, &["ZADD", LEASE, &args[0], &id]);
        call(ctx, &["HSET", &task, "state", "active"]);
        return job_reply(ctx, &id);
    })
}

/// The bug of `pop_then_crash_loses_job`: RPOP and nothing else. Until the worker reports
/// back, the job exists only in the worker's memory.
fn pop_script() -> Script {
    Script::new("asynq.pop", |ctx, _keys, _args| {
        match call(ctx, &["RPOP", PENDING]) {
            Reply::Bulk(id) => {
                call(ctx, &["HSET", &task_key(&id), "state", "active"]);
                job_reply(ctx, &id)
            }
            _ => Reply::Nil,
        }
    })
}

/// ARGV: id, now (ms), and the terminal set (`completed` or `archived`). 0 when the job
/// was terminal already.
fn finish_script() -> Script {
    Script::new("asynq.finish", |ctx, _keys, args| {
        let (id, now, to) = (&args[0], &args[1], &args[2]);
        release(ctx, id);
        let task = task_key(id);
        if is_terminal(ctx, &task) {
            return Reply::Int(0);
        }
        let set = if to == "completed" {
            COMPLETED
        } else {
            ARCHIVED
        };
        call(ctx, &["ZADD", set, now, id]);
        call(ctx, &["HSET", &task, "state", to]);
        Reply::Int(1)
    })
}

/// ARGV: id, and when it may run again (ms). Counts the retry.
fn retry_script() -> Script {
    Script::new("asynq.retry", |ctx, _keys, args| {
        let (id, at) = (&args[0], &args[1]);
        release(ctx, id);
        let task = task_key(id);
        if is_terminal(ctx, &task) {
            return Reply::Int(0);
        }
        call(ctx, &["HINCRBY", &task, "retried", "1"]);
        call(ctx, &["ZADD", RETRY, at, id]);
        call(ctx, &["HSET", &task, "state", "retry"]);
        Reply::Int(1)
    })
}

/// The bug of `retry_without_backoff`: straight back to pending, however often it failed.
fn requeue_script() -> Script {
    Script::new("asynq.requeue", |ctx, _keys, args| {
        let id = &args[0];
        release(ctx, id);
        let task = task_key(id);
        call(ctx, &["HINCRBY", &task, "retried", "1"]);
        call(ctx, &["LPUSH", PENDING, id]);
        call(ctx, &["HSET", &task, "state", "pending"]);
        Reply::Int(1)
    })
}

/// ARGV: now (ms). Moves the retries that are due to pending (Asynq's forwarder).
fn forward_script() -> Script {
    Script::new("asynq.forward", |ctx, _keys, args| {
        let due = match call(
            ctx,
            &[
                "ZRANGEBYSCORE",
                RETRY,
                "-inf",
                &args[0],
                "LIMIT",
                "0",
                "100",
            ],
        ) {
            Reply::Array(ids) => ids,
            _ => Vec::new(),
        };
        let mut moved = 0;
        for id in due {
            if let Reply::Bulk(id) = id {
                call(ctx, &["ZREM", RETRY, &id]);
                call(ctx, &["LPUSH", PENDING, &id]);
                call(ctx, &["HSET", &task_key(&id), "state", "pending"]);
                moved += 1;
            }
        }
        Reply::Int(moved)
    })
}

/// The queue's depth in one step: read key by key, a retry forwarded between the reads
/// of pending and of the retry set would be counted nowhere and the queue seen empty.
fn depth_script() -> Script {
    Script::new("asynq.depth", |ctx, _keys, _args| {
        Reply::Array(vec![
            call(ctx, &["LLEN", PENDING]),
            call(ctx, &["LLEN", ACTIVE]),
            call(ctx, &["ZCARD", RETRY]),
        ])
    })
}

/// A job as a worker receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    pub phone: String,
    pub text: String,
    /// Retries so far (0 on the first attempt).
    pub retried: u32,
}

impl Job {
    fn from_reply(reply: Reply) -> Option<Job> {
        let Reply::Array(fields) = reply else {
            return None;
        };
        let mut text = fields.into_iter().map(|f| match f {
            Reply::Bulk(s) => s,
            _ => String::new(),
        });
        Some(Job {
            id: text.next()?,
            phone: text.next()?,
            text: text.next()?,
            retried: text.next()?.parse().unwrap_or(0),
        })
    }
}

/// Where a job ended up, read after the run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueState {
    pub pending: Vec<String>,
    pub active: Vec<String>,
    pub retry: Vec<String>,
    pub completed: Vec<String>,
    pub archived: Vec<String>,
}

/// Jobs waiting or in flight at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Depth {
    pub pending: u64,
    pub active: u64,
    pub retry: u64,
}

impl Depth {
    pub fn is_empty(&self) -> bool {
        self.pending + self.active + self.retry == 0
    }
}

struct Scripts {
    enqueue: Script,
    dequeue: Script,
    pop: Script,
    finish: Script,
    retry: Script,
    requeue: Script,
    forward: Script,
    depth: Script,
}

/// The queue as a client (the API, a worker, an inspector) sees it.
#[derive(Clone)]
pub struct JobQueue {
    client: KvClient,
    scripts: Rc<Scripts>,
}

fn int(reply: Reply) -> Result<i64, DepError> {
    match reply {
        Reply::Int(n) => Ok(n),
        other => Err(DepError::Redis(format!("unexpected reply {other:?}"))),
    }
}

impl JobQueue {
    pub fn new(client: KvClient) -> Self {
        JobQueue {
            client,
            scripts: Rc::new(Scripts {
                enqueue: enqueue_script(),
                dequeue: dequeue_script(),
                pop: pop_script(),
                finish: finish_script(),
                retry: retry_script(),
                requeue: requeue_script(),
                forward: forward_script(),
                depth: depth_script(),
            }),
        }
    }

    /// Enqueues a confirmation; false when a job with this id exists already.
    pub async fn enqueue(&self, id: &str, phone: &str, text: &str) -> Result<bool, DepError> {
        let r = self
            .client
            .eval(&self.scripts.enqueue, &[PENDING], &[id, phone, text])
            .await?;
        Ok(int(r)? == 1)
    }

    /// The oldest pending job, leased until `lease_until`.
    pub async fn dequeue(&self, lease_until: Instant) -> Result<Option<Job>, DepError> {
        let r = self
            .client
            .eval(&self.scripts.dequeue, &[PENDING], &[&ms(lease_until)])
            .await?;
        Ok(Job::from_reply(r))
    }

    /// The oldest pending job, popped with no lease.
    pub async fn pop(&self) -> Result<Option<Job>, DepError> {
        let r = self.client.eval(&self.scripts.pop, &[PENDING], &[]).await?;
        Ok(Job::from_reply(r))
    }

    async fn finish(&self, id: &str, now: Instant, to: &str) -> Result<bool, DepError> {
        let r = self
            .client
            .eval(&self.scripts.finish, &[ACTIVE], &[id, &ms(now), to])
            .await?;
        Ok(int(r)? == 1)
    }

    /// The job succeeded; false when it was terminal already.
    pub async fn complete(&self, id: &str, now: Instant) -> Result<bool, DepError> {
        self.finish(id, now, "completed").await
    }

    /// The job goes to the dead-letter set; false when it was terminal already.
    pub async fn archive(&self, id: &str, now: Instant) -> Result<bool, DepError> {
        self.finish(id, now, "archived").await
    }

    /// The job runs again at `at`.
    pub async fn retry(&self, id: &str, at: Instant) -> Result<bool, DepError> {
        let r = self
            .client
            .eval(&self.scripts.retry, &[RETRY], &[id, &ms(at)])
            .await?;
        Ok(int(r)? == 1)
    }

    /// The job goes straight back to pending.
    pub async fn requeue(&self, id: &str) -> Result<bool, DepError> {
        let r = self
            .client
            .eval(&self.scripts.requeue, &[PENDING], &[id])
            .await?;
        Ok(int(r)? == 1)
    }

    /// Moves the retries due at `now` to pending; how many moved.
    pub async fn forward_due(&self, now: Instant) -> Result<i64, DepError> {
        let r = self
            .client
            .eval(&self.scripts.forward, &[RETRY], &[&ms(now)])
            .await?;
        int(r)
    }

    /// Leased jobs whose lease ran out by `now`, with their retries so far.
    pub async fn expired_leases(&self, now: Instant) -> Result<Vec<(String, u32)>, DepError> {
        let ids = self
            .client
            .zrangebyscore(
                LEASE,
                ScoreBound::NEG_INF,
                ScoreBound::inclusive(now.elapsed_since_start().as_millis() as f64),
                None,
            )
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let retried = self
                .client
                .hget(&task_key(&id), "retried")
                .await?
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            out.push((id, retried));
        }
        Ok(out)
    }

    pub async fn depth(&self) -> Result<Depth, DepError> {
        let r = self
            .client
            .eval(&self.scripts.depth, &[PENDING, ACTIVE, RETRY], &[])
            .await?;
        let counts = match r {
            Reply::Array(counts) if counts.len() == 3 => counts,
            other => return Err(DepError::Redis(format!("unexpected reply {other:?}"))),
        };
        let mut counts = counts.into_iter().map(|c| int(c).map(|n| n as u64));
        let mut next = || counts.next().unwrap_or(Ok(0));
        Ok(Depth {
            pending: next()?,
            active: next()?,
            retry: next()?,
        })
    }

    /// Every job's place, for the checkers.
    pub async fn state(&self) -> Result<QueueState, DepError> {
        let all = |key: &'static str| async move {
            self.client
                .zrangebyscore(key, ScoreBound::NEG_INF, ScoreBound::POS_INF, None)
                .await
        };
        Ok(QueueState {
            pending: self.client.lrange(PENDING, 0, -1).await?,
            active: self.client.lrange(ACTIVE, 0, -1).await?,
            retry: all(RETRY).await?,
            completed: all(COMPLETED).await?,
            archived: all(ARCHIVED).await?,
        })
    }
}
