//! The producer client: partitioning, `acks`, retries with backoff inside a delivery
//! timeout, and the idempotent mode.
//!
//! Sends to one partition go one at a time (Kafka's `max.in.flight.requests.per.connection
//! = 1`), so a retry never overtakes a later record: per-partition order is the order of
//! `send` calls. Without idempotence a retry after a lost acknowledgement appends the
//! record a second time; with it, the broker recognises the producer id and sequence
//! number and answers with the first offset instead.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use futures::lock::Mutex;
use serde::{Deserialize, Serialize};
use sim_net::{rpc, Addr, ConnectionFailure};
use sim_runtime::task;
use sim_runtime::time::{self, Duration, Instant};
use sim_runtime::trace;

use super::controller::ClusterMetadata;
use super::error::{ErrorCode, ProduceError};
use super::events::{AckEvent, RetryEvent, SendEvent, SendFailedEvent};
use super::log::ProducerStamp;
use super::partitioner::{partition_for_key, RoundRobin};
use super::protocol::{Request, Response};
use super::state::NewRecord;
use super::types::{Acks, ClusterAddrs, RecordId, RecordMeta, TopicPartition};

/// Producer settings. `Default` is Kafka 3.x's: `acks=all`, idempotence on, retries
/// unbounded within a two-minute delivery timeout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProducerConfig {
    pub acks: Acks,
    /// `enable.idempotence`. Kafka requires `acks=all` for it; so does this model.
    pub idempotent: bool,
    /// How many times a failed attempt is retried (`retries`).
    pub retries: u32,
    /// Wait between attempts (`retry.backoff.ms`).
    pub retry_backoff: Duration,
    /// Upper bound on a `send`, retries included (`delivery.timeout.ms`).
    pub delivery_timeout: Duration,
    /// How long one attempt waits for its answer (`request.timeout.ms`).
    pub request_timeout: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            idempotent: true,
            retries: u32::MAX,
            retry_backoff: Duration::from_millis(100),
            delivery_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Ids for producers (and their record ids), unique within a run.
#[derive(Default)]
struct ProducerIds {
    next: Cell<u64>,
}

fn next_producer_id() -> u64 {
    let ids = sim_runtime::extension::<ProducerIds>();
    let id = ids.next.get() + 1;
    ids.next.set(id);
    id
}

struct Inner {
    /// This producer's identity in record ids and traces.
    id: u64,
    addrs: Vec<Addr>,
    config: ProducerConfig,
    metadata: RefCell<ClusterMetadata>,
    next_n: Cell<u64>,
    round_robin: RefCell<RoundRobin>,
    /// The idempotence producer id; replaced (a new "epoch") when a sequence breaks.
    pid: Cell<u64>,
    sequences: RefCell<BTreeMap<TopicPartition, u32>>,
    in_flight: RefCell<BTreeMap<TopicPartition, Rc<Mutex<()>>>>,
    next_bootstrap: Cell<usize>,
}

/// A producer. Cheap to clone; clones share the connection state and sequence numbers.
#[derive(Clone)]
pub struct Producer<V> {
    inner: Rc<Inner>,
    _values: std::marker::PhantomData<fn(V)>,
}

impl<V> std::fmt::Debug for Producer<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Producer(p{})", self.inner.id)
    }
}

/// What went wrong with one attempt, before deciding whether to retry.
#[derive(Clone, Copy, Debug)]
enum AttemptError {
    Code(ErrorCode),
    Connection(ConnectionFailure),
    NoLeader,
}

impl AttemptError {
    fn to_produce_error(self) -> ProduceError {
        match self {
            AttemptError::Code(ErrorCode::NotLeaderOrFollower) => ProduceError::NotLeader,
            AttemptError::Code(ErrorCode::UnknownTopicOrPartition) => ProduceError::UnknownTopic,
            AttemptError::Code(ErrorCode::NotEnoughReplicas) => ProduceError::NotEnoughReplicas,
            AttemptError::Code(ErrorCode::NotEnoughReplicasAfterAppend) => {
                ProduceError::NotEnoughReplicasAfterAppend
            }
            AttemptError::Code(ErrorCode::OutOfOrderSequence) => ProduceError::OutOfOrderSequence,
            AttemptError::Code(_) => ProduceError::Timeout,
            AttemptError::Connection(f) => f.into(),
            AttemptError::NoLeader => ProduceError::BrokerUnavailable,
        }
    }

    fn describe(self) -> String {
        match self {
            AttemptError::Code(c) => c.to_string(),
            AttemptError::Connection(f) => f.to_string(),
            AttemptError::NoLeader => "no leader known".to_string(),
        }
    }
}

impl<V: Clone + 'static> Producer<V> {
    /// A producer bootstrapping from `cluster_addrs` ([`super::Cluster::addrs`]).
    ///
    /// # Panics
    /// With `idempotent` and `acks` other than `all`, a configuration Kafka refuses.
    pub fn new(cluster_addrs: ClusterAddrs<V>, config: ProducerConfig) -> Self {
        assert!(
            !config.idempotent || config.acks == Acks::All,
            "enable.idempotence requires acks=all (Kafka refuses this configuration)"
        );
        assert!(
            !cluster_addrs.addrs().is_empty(),
            "a producer needs at least one broker address"
        );
        let id = next_producer_id();
        Producer {
            inner: Rc::new(Inner {
                id,
                addrs: cluster_addrs.addrs().to_vec(),
                config,
                metadata: RefCell::new(ClusterMetadata::default()),
                next_n: Cell::new(0),
                round_robin: RefCell::new(RoundRobin::default()),
                pid: Cell::new(next_producer_id() << 32 | id),
                sequences: RefCell::new(BTreeMap::new()),
                in_flight: RefCell::new(BTreeMap::new()),
                next_bootstrap: Cell::new(0),
            }),
            _values: std::marker::PhantomData,
        }
    }

    /// This producer's id in record ids and trace events.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    pub fn config(&self) -> &ProducerConfig {
        &self.inner.config
    }

    /// Sends one record and waits for its acknowledgement (or, with `acks=0`, only for it
    /// to be handed to the network). With a key, the partition is murmur2(key) modulo the
    /// partition count; without, partitions take turns.
    pub async fn send(
        &self,
        topic: &str,
        key: Option<String>,
        value: V,
    ) -> Result<RecordMeta, ProduceError> {
        let inner = &self.inner;
        let config = &inner.config;
        let n = inner.next_n.get();
        inner.next_n.set(n + 1);
        let id = RecordId {
            producer: inner.id,
            n,
        };
        let deadline = time::now() + config.delivery_timeout;
        let partitions = match self.partition_count(topic, deadline).await {
            Ok(p) => p,
            Err(e) => {
                self.failed(id, topic, 0, &e);
                return Err(e);
            }
        };
        let partition = match &key {
            Some(k) => partition_for_key(k, partitions),
            None => inner.round_robin.borrow_mut().next(topic, partitions),
        };
        let tp = TopicPartition::new(topic, partition);
        trace::emit(&SendEvent {
            producer: inner.id,
            id,
            topic: Cow::Borrowed(topic),
            partition,
            key: key.as_deref().map(Cow::Borrowed),
            acks: config.acks,
        });
        // One request in flight per partition keeps retries from reordering records.
        let lock = Rc::clone(inner.in_flight.borrow_mut().entry(tp.clone()).or_default());
        let _turn = lock.lock().await;
        let mut stamp = config.idempotent.then(|| self.next_stamp(&tp));
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let record = NewRecord {
                id,
                key: key.clone(),
                value: value.clone(),
                stamp,
            };
            let err = match self.attempt(&tp, record, deadline).await {
                Ok(offset) => {
                    trace::emit(&AckEvent {
                        producer: inner.id,
                        id,
                        topic: Cow::Borrowed(topic),
                        partition,
                        offset,
                        attempts,
                    });
                    return Ok(RecordMeta {
                        partition,
                        offset,
                        id,
                    });
                }
                Err(e) => e,
            };
            if let AttemptError::Code(ErrorCode::OutOfOrderSequence) = err {
                // The partition lost this producer's earlier records (an unclean or
                // acks-less failover): start a new producer epoch, as Kafka's producer
                // does, and send this record as the first of it.
                if stamp.is_some() {
                    self.bump_epoch();
                    stamp = Some(self.next_stamp(&tp));
                }
            }
            let out_of_time = time::now() + config.retry_backoff >= deadline;
            if attempts > config.retries || out_of_time {
                let e = if out_of_time {
                    ProduceError::Timeout
                } else {
                    err.to_produce_error()
                };
                self.failed(id, topic, partition, &e);
                return Err(e);
            }
            trace::emit(&RetryEvent {
                producer: inner.id,
                id,
                attempt: attempts,
                error: err.describe(),
            });
            let _ = self.refresh_metadata(deadline).await;
            time::sleep(config.retry_backoff).await;
        }
    }

    fn failed(&self, id: RecordId, topic: &str, partition: u32, e: &ProduceError) {
        if self.inner.config.idempotent {
            // The record's fate is unknown (it may still be appended later), so its
            // sequence number can never be filled in: start a new epoch, as Kafka's
            // producer does for unresolved sequences, or every later send would be out of
            // order.
            self.bump_epoch();
        }
        trace::emit(&SendFailedEvent {
            producer: self.inner.id,
            id,
            topic: topic.to_string(),
            partition,
            error: e.to_string(),
        });
    }

    fn next_stamp(&self, tp: &TopicPartition) -> ProducerStamp {
        let mut seqs = self.inner.sequences.borrow_mut();
        let seq = seqs.entry(tp.clone()).or_insert(0);
        let stamp = ProducerStamp {
            producer_id: self.inner.pid.get(),
            seq: *seq,
        };
        *seq = seq.wrapping_add(1);
        stamp
    }

    fn bump_epoch(&self) {
        self.inner.pid.set(next_producer_id() << 32 | self.inner.id);
        self.inner.sequences.borrow_mut().clear();
    }

    /// One produce request to the current leader.
    async fn attempt(
        &self,
        tp: &TopicPartition,
        record: NewRecord<V>,
        deadline: Instant,
    ) -> Result<Option<u64>, AttemptError> {
        let config = &self.inner.config;
        let leader = self
            .inner
            .metadata
            .borrow()
            .partition(tp)
            .and_then(|p| p.leader);
        let Some(leader) = leader else {
            return Err(AttemptError::NoLeader);
        };
        let addr = self.inner.addrs[leader as usize];
        let timeout = config
            .request_timeout
            .min(deadline.duration_since(time::now()));
        let req = Request::Produce {
            tp: tp.clone(),
            acks: config.acks,
            record,
            timeout,
        };
        if config.acks == Acks::Zero {
            // Nobody waits for the answer: hand the request to the network and go on.
            task::spawn_named("queue-produce-acks0", async move {
                let _ = rpc::call::<Request<V>, Response<V>>(addr, req, timeout).await;
            })
            .detach();
            return Ok(None);
        }
        match rpc::call::<Request<V>, Response<V>>(addr, req, timeout).await {
            Ok(Response::Produce(Ok((offset, _dup)))) => Ok(Some(offset)),
            Ok(Response::Produce(Err(code))) => Err(AttemptError::Code(code)),
            Ok(_) => Err(AttemptError::Code(ErrorCode::RequestTimedOut)),
            Err(f) => Err(AttemptError::Connection(f)),
        }
    }

    /// The topic's partition count, fetching metadata until the topic is known. Fails
    /// with `UnknownTopic` if some broker answered without it, else with `Timeout`.
    async fn partition_count(&self, topic: &str, deadline: Instant) -> Result<u32, ProduceError> {
        // Any answer counts: the last refresh may have been cut short by the deadline.
        let mut answered = false;
        loop {
            if let Some(n) = self.inner.metadata.borrow().partition_count(topic) {
                return Ok(n);
            }
            answered |= self.refresh_metadata(deadline).await;
            if let Some(n) = self.inner.metadata.borrow().partition_count(topic) {
                return Ok(n);
            }
            if time::now() + self.inner.config.retry_backoff >= deadline {
                return Err(if answered {
                    ProduceError::UnknownTopic
                } else {
                    ProduceError::Timeout
                });
            }
            time::sleep(self.inner.config.retry_backoff).await;
        }
    }

    /// Asks the brokers in turn for metadata; keeps the newest view. Returns whether any
    /// broker answered.
    async fn refresh_metadata(&self, deadline: Instant) -> bool {
        let inner = &self.inner;
        for _ in 0..inner.addrs.len() {
            let i = inner.next_bootstrap.get() % inner.addrs.len();
            inner.next_bootstrap.set(i + 1);
            let remaining = deadline.duration_since(time::now());
            if remaining.is_zero() {
                return false;
            }
            let timeout = inner.config.request_timeout.min(remaining);
            let answer =
                rpc::call::<Request<V>, Response<V>>(inner.addrs[i], Request::Metadata, timeout)
                    .await;
            if let Ok(Response::Metadata(md)) = answer {
                let mut current = inner.metadata.borrow_mut();
                if md.version >= current.version {
                    *current = md;
                }
                return true;
            }
        }
        false
    }
}
