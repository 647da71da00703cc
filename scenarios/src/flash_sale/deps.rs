//! The flash sale's dependencies: one Redis, one Kafka broker and one PostgreSQL, started
//! as sim-models nodes, and thin typed wrappers the service code uses. Everything that
//! depends on the models' APIs lives here, so the service logic reads like service logic.

use std::rc::Rc;

use sim_models::kv::{self, Command, Condition, KvClient, Reply, Script, ScriptContext, SetExpiry};
use sim_models::queue::{self, Acks, Cluster, Consumer, Producer};
use sim_models::sql::{self, Pool, PoolConfig, ToSql};
use sim_runtime::time::{self, Duration};
use sim_runtime::trace::{self, Capture};
use sim_runtime::NodeId;

use super::checkers::{FinalState, OrderRow};
use super::service::{stock_key, Order, GROUP, OUTBOX, TOPIC};
use super::Params;
pub use crate::deps::DepError;
use crate::deps::KvPool;

/// The product on sale.
pub const PRODUCT: &str = "iphone-15";

/// What the atomic reserve script decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reservation {
    Reserved { order_id: String },
    Duplicate { order_id: String },
    SoldOut,
}

/// The name of the reserve script in `kv.cmd` events.
pub const RESERVE: &str = "flash.reserve";

/// The atomic reservation, as the service's Lua script reads:
///
/// ```lua
/// -- KEYS: stock, [idempotency key]
/// -- ARGV: order id, idempotency key, user, product, [outbox list]
/// if KEYS[2] then
///   local id = redis.call('GET', KEYS[2])
///   if id then return {'duplicate', id} end
/// end
/// if tonumber(redis.call('GET', KEYS[1]) or '0') <= 0 then return {'sold_out'} end
/// local left = redis.call('DECR', KEYS[1])
/// if KEYS[2] then redis.call('SET', KEYS[2], ARGV[1]) end
/// if ARGV[5] then
///   redis.call('RPUSH', ARGV[5], cjson.encode({order_id = ARGV[1], ...}))
/// end
/// return {'reserved', ARGV[1], left}
/// ```
fn reserve_script() -> Script {
    Script::new(
        RESERVE,
        |ctx: &mut ScriptContext<'_>, keys: &[String], args: &[String]| {
            let (stock, idempotency) = (&keys[0], keys.get(1));
            let order_id = &args[0];
            if let Some(idempotency) = idempotency {
                if let Reply::Bulk(existing) = ctx.get(idempotency) {
                    return Reply::Array(vec![Reply::bulk("duplicate"), Reply::Bulk(existing)]);
                }
            }
            let left = match ctx.get(stock) {
                Reply::Bulk(s) => s.parse::<i64>().unwrap_or(0),
                _ => 0,
            };
            if left <= 0 {
                return Reply::Array(vec![Reply::bulk("sold_out")]);
            }
            let left = ctx.call(Command::Decr { key: stock.clone() });
            if let Some(idempotency) = idempotency {
                ctx.call(Command::Set {
                    key: idempotency.clone(),
                    value: order_id.clone(),
                    condition: Condition::Always,
                    expiry: SetExpiry::None,
                    get: false,
                });
            }
            if let Some(outbox) = args.get(4) {
                let order = Order {
                    order_id: order_id.clone(),
                    idempotency_key: args[1].clone(),
                    user: args[2].parse().unwrap_or_default(),
                    product: args[3].clone(),
                };
                ctx.call(Command::RPush {
                    key: outbox.clone(),
                    values: vec![order.to_json()],
                });
            }
            Reply::Array(vec![
                Reply::bulk("reserved"),
                Reply::bulk(order_id.clone()),
                left,
            ])
        },
    )
}

/// The name of the relay lease script in `kv.cmd` events.
const LEASE: &str = "flash.relay_lease";

/// KEYS: lock; ARGV: owner, ttl in ms. Takes or renews the lease; 1 if `owner` holds it.
fn lease_script() -> Script {
    Script::new(
        LEASE,
        |ctx: &mut ScriptContext<'_>, keys: &[String], args: &[String]| {
            match ctx.get(&keys[0]) {
                Reply::Bulk(holder) if holder != args[0] => Reply::Int(0),
                _ => {
                    // Parsed rather than typed: the TTL is text, and a malformed one gets
                    // Redis' own answer (the SET is refused; the script goes on).
                    if let Ok(set) = kv::parse(&["SET", &keys[0], &args[0], "PX", &args[1]]) {
                        ctx.call(set);
                    }
                    Reply::Int(1)
                }
            }
        },
    )
}

/// The name of the outbox acknowledgement script in `kv.cmd` events.
const OUTBOX_ACK: &str = "flash.outbox_ack";

/// KEYS: outbox; ARGV: published entries. Removes one copy of each, atomically and in one
/// round trip for a whole batch; returns how many were removed.
fn outbox_ack_script() -> Script {
    Script::new(
        OUTBOX_ACK,
        |ctx: &mut ScriptContext<'_>, keys: &[String], args: &[String]| {
            let mut removed = 0;
            for entry in args {
                let cmd = Command::LRem {
                    key: keys[0].clone(),
                    count: 1,
                    value: entry.clone(),
                };
                if let Reply::Int(n) = ctx.call(cmd) {
                    removed += n;
                }
            }
            Reply::Int(removed)
        },
    )
}

/// Redis as the API sees it: a small pool of connections (the kv client runs one request
/// at a time per connection, and a Node.js API would pipeline), with a per-call timeout.
#[derive(Clone)]
pub struct Redis {
    connections: KvPool,
    script: Script,
    lease: Script,
    outbox_ack: Script,
}

impl Redis {
    /// Takes or renews the relay lease for `ttl`; true while `owner` holds it.
    pub async fn lease(&self, lock: &str, owner: &str, ttl: Duration) -> Result<bool, DepError> {
        let ms = ttl.as_millis().to_string();
        Ok(matches!(
            self.client()
                .eval(&self.lease, &[lock], &[owner, &ms])
                .await?,
            Reply::Int(1)
        ))
    }

    fn client(&self) -> &KvClient {
        self.connections.client()
    }

    /// Runs the atomic reserve script for `order`: with the idempotency key `idempotency`
    /// if the variant checks one, and pushing the order onto `outbox` if it has one.
    pub async fn reserve(
        &self,
        stock: &str,
        idempotency: Option<&str>,
        outbox: Option<&str>,
        order: &Order,
    ) -> Result<Reservation, DepError> {
        let keys: Vec<&str> = [Some(stock), idempotency].into_iter().flatten().collect();
        let user = order.user.to_string();
        let fields = [
            &order.order_id,
            &order.idempotency_key,
            &user,
            &order.product,
        ];
        let args: Vec<&str> = fields
            .into_iter()
            .map(String::as_str)
            .chain(outbox)
            .collect();
        let reply = self.client().eval(&self.script, &keys, &args).await?;
        let Reply::Array(parts) = reply else {
            return Err(DepError::Redis(format!("unexpected reply {reply:?}")));
        };
        // The reply is ours to take apart: its strings move into the reservation.
        let mut parts = parts.into_iter().map(|p| match p {
            Reply::Bulk(s) => s,
            _ => String::new(),
        });
        let kind = parts.next().unwrap_or_default();
        let mut order_id = || parts.next().unwrap_or_default();
        Ok(match kind.as_str() {
            "reserved" => Reservation::Reserved {
                order_id: order_id(),
            },
            "duplicate" => Reservation::Duplicate {
                order_id: order_id(),
            },
            _ => Reservation::SoldOut,
        })
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>, DepError> {
        Ok(self.client().get(key).await?)
    }

    pub async fn get_i64(&self, key: &str) -> Result<Option<i64>, DepError> {
        Ok(self.get(key).await?.and_then(|s| s.parse().ok()))
    }

    pub async fn set(&self, key: &str, value: &str) -> Result<(), DepError> {
        Ok(self.client().set(key, value).await?)
    }

    pub async fn set_nx(&self, key: &str, value: &str) -> Result<bool, DepError> {
        Ok(self.client().set_nx(key, value).await?)
    }

    pub async fn del(&self, key: &str) -> Result<(), DepError> {
        self.client().del(&[key]).await?;
        Ok(())
    }

    pub async fn decr(&self, key: &str) -> Result<i64, DepError> {
        Ok(self.client().decr(key).await?)
    }

    pub async fn incr(&self, key: &str) -> Result<i64, DepError> {
        Ok(self.client().incr(key).await?)
    }

    pub async fn rpush(&self, key: &str, value: &str) -> Result<(), DepError> {
        self.client().rpush(key, &[value]).await?;
        Ok(())
    }

    pub async fn lrange(&self, key: &str, start: i64, stop: i64) -> Result<Vec<String>, DepError> {
        Ok(self.client().lrange(key, start, stop).await?)
    }

    /// Removes published entries from the outbox `key`, one copy each, in one call.
    pub async fn outbox_remove(&self, key: &str, entries: &[&str]) -> Result<(), DepError> {
        self.client()
            .eval(&self.outbox_ack, &[key], entries)
            .await?;
        Ok(())
    }

    pub async fn llen(&self, key: &str) -> Result<i64, DepError> {
        Ok(self.client().llen(key).await?)
    }
}

/// The order producer: acks=all, idempotent, bounded by a delivery timeout.
#[derive(Clone)]
pub struct Kafka {
    producer: Producer<String>,
}

impl Kafka {
    pub async fn send(&self, order: &Order) -> Result<(), DepError> {
        self.producer
            .send(TOPIC, Some(order.order_id.clone()), order.to_json())
            .await?;
        Ok(())
    }
}

/// The worker's consumer: manual commits, starting from the earliest offset.
pub struct KafkaConsumer {
    consumer: Consumer<String>,
}

impl KafkaConsumer {
    pub async fn poll(&mut self, max: usize) -> Result<Vec<Order>, DepError> {
        let records = self
            .consumer
            .poll(max, Duration::from_millis(200))
            .await
            .map_err(|e| DepError::Kafka(e.to_string()))?;
        Ok(records
            .into_iter()
            .filter_map(|r| Order::from_json(&r.value))
            .collect())
    }

    pub async fn commit(&self) -> Result<(), DepError> {
        self.consumer
            .commit()
            .await
            .map_err(|e| DepError::Kafka(e.to_string()))
    }
}

/// The database as the worker sees it: a connection pool.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
}

/// The worker's write, one per table: the order, unless an order with its idempotency
/// key (or id) is there already.
const INSERT_ORDER: &str = "INSERT INTO orders (order_id, idempotency_key, user_id, product_id) \
     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
const INSERT_ORDER_NO_UNIQUE: &str = "INSERT INTO orders_no_unique \
     (order_id, idempotency_key, user_id, product_id) VALUES ($1, $2, $3, $4) \
     ON CONFLICT DO NOTHING";
const TAKE_STOCK: &str = "UPDATE products SET stock = stock - 1 WHERE id = $1";

impl Db {
    /// Writes a batch of orders, one transaction per order as the document's worker
    /// does: insert the order and take it off `products.stock`. A redelivered order
    /// changes nothing. Returns how many orders were new; on an error, the orders before
    /// the failing one stay written (and are skipped as duplicates on the retry).
    pub async fn insert_orders(
        &self,
        orders: &[Order],
        unique_keys: bool,
    ) -> Result<u64, DepError> {
        let mut conn = self.pool.acquire().await?;
        let insert = if unique_keys {
            INSERT_ORDER
        } else {
            INSERT_ORDER_NO_UNIQUE
        };
        let mut new = 0;
        for order in orders {
            let mut tx = conn.transaction().await?;
            let user = i64::from(order.user);
            let params: [&dyn ToSql; 4] = [
                &order.order_id,
                &order.idempotency_key,
                &user,
                &order.product,
            ];
            if tx.execute(insert, &params).await? == 1 {
                new += 1;
                tx.execute(TAKE_STOCK, &[&PRODUCT]).await?;
            }
            tx.commit().await?;
        }
        Ok(new)
    }
}

/// The running dependencies and their fault handles.
#[derive(Clone)]
pub struct Deps {
    redis: kv::KvServer,
    kafka: Rc<Cluster<String>>,
    db: sql::SqlServer,
    admin: Rc<std::cell::OnceCell<Pool>>,
    /// The harness's Redis client for backlog checks, connected once.
    admin_redis: Rc<std::cell::OnceCell<Redis>>,
}

/// The database's schema, as the service's migration creates it.
const SCHEMA: [&str; 3] = [
    "CREATE TABLE products (id text PRIMARY KEY, stock bigint NOT NULL)",
    "CREATE TABLE orders (
        order_id text PRIMARY KEY,
        idempotency_key text NOT NULL UNIQUE,
        user_id bigint NOT NULL,
        product_id text NOT NULL
    )",
    // The same without the unique idempotency key: only the worker's own check guards it.
    "CREATE TABLE orders_no_unique (
        order_id text PRIMARY KEY,
        idempotency_key text NOT NULL,
        user_id bigint NOT NULL,
        product_id text NOT NULL
    )",
];

/// Starts Redis (AOF `always`: an acknowledged reservation survives a Redis crash), one
/// Kafka broker with the `orders` topic, and PostgreSQL with the products row.
pub async fn start(params: &Params) -> Deps {
    let redis = kv::start(
        "redis",
        kv::Config {
            persistence: kv::Persistence::AofAlways,
            ..kv::Config::default()
        },
    );
    let kafka = Rc::new(queue::start::<String>("kafka", queue::Config::default()));
    let db = sql::start("postgres", sql::Config::default());
    let deps = Deps {
        redis,
        kafka,
        db,
        admin: Rc::default(),
        admin_redis: Rc::default(),
    };
    // Set up the sale: the stock in Redis and in the products table, and the topic.
    let admin = deps.redis_client(Duration::from_secs(5));
    let items = params.items.to_string();
    while admin.set(&stock_key(PRODUCT), &items).await.is_err() {
        time::sleep(Duration::from_millis(10)).await;
    }
    while deps.kafka.create_topic(TOPIC, 3, 1).await.is_err() {
        time::sleep(Duration::from_millis(10)).await;
    }
    let pool = Pool::new(
        deps.db.addr(),
        PoolConfig {
            max_size: 2,
            ..PoolConfig::default()
        },
    );
    loop {
        let attempt = async {
            let mut c = pool.acquire().await?;
            for ddl in SCHEMA {
                c.execute(ddl, &[]).await?;
            }
            c.execute(
                "INSERT INTO products (id, stock) VALUES ($1, $2)",
                &[&PRODUCT, &i64::from(params.items)],
            )
            .await?;
            Ok::<_, sql::SqlError>(())
        };
        if attempt.await.is_ok() {
            break;
        }
        time::sleep(Duration::from_millis(10)).await;
    }
    deps
}

impl Deps {
    pub fn redis_node(&self) -> NodeId {
        self.redis.primary_node()
    }

    pub fn redis_client(&self, timeout: Duration) -> Redis {
        let config = kv::ClientConfig { timeout };
        Redis {
            connections: KvPool::new(8, |_| KvClient::new(self.redis.addr(), config.clone())),
            script: reserve_script(),
            lease: lease_script(),
            outbox_ack: outbox_ack_script(),
        }
    }

    pub fn producer(&self, delivery_timeout: Duration) -> Kafka {
        let config = queue::producer::ProducerConfig {
            acks: Acks::All,
            idempotent: true,
            delivery_timeout,
            request_timeout: delivery_timeout.min(Duration::from_millis(500)),
            retry_backoff: Duration::from_millis(50),
            ..queue::producer::ProducerConfig::default()
        };
        Kafka {
            producer: Producer::new(self.kafka.addrs(), config),
        }
    }

    /// Joins the worker's consumer group, retrying until the brokers answer.
    pub async fn consumer(&self) -> KafkaConsumer {
        let config = queue::consumer::ConsumerConfig {
            client_id: "inventory-worker".into(),
            session_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(1),
            auto_commit_interval: None,
            auto_offset_reset: queue::consumer::OffsetReset::Earliest,
            ..queue::consumer::ConsumerConfig::default()
        };
        loop {
            match Consumer::join(self.kafka.addrs(), GROUP, &[TOPIC], config.clone()).await {
                Ok(consumer) => return KafkaConsumer { consumer },
                Err(_) => time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    pub fn db(&self) -> Db {
        let config = PoolConfig {
            max_size: 4,
            acquire_timeout: Duration::from_secs(2),
            ..PoolConfig::default()
        };
        Db {
            pool: Pool::new(self.db.addr(), config),
        }
    }

    pub fn kafka_down(&self) {
        for b in 0..self.kafka.broker_count() {
            self.kafka.crash(b as queue::BrokerId);
        }
    }

    pub fn kafka_up(&self) {
        for b in 0..self.kafka.broker_count() {
            self.kafka.restart(b as queue::BrokerId);
        }
    }

    pub fn db_down(&self) {
        self.db.refuse();
    }

    pub fn db_up(&self) {
        self.db.accept();
    }

    /// Records every write from now on (the `kv.cmd.write` events: only a command that
    /// wrote can have moved the stock).
    pub fn capture_stock(&self) -> Capture<kv::CmdEvent<'static>> {
        trace::capture::<kv::WriteEvent<'_>>()
    }

    /// Orders reserved but not yet processed: outbox entries plus consumer lag.
    pub async fn backlog(&self) -> Result<u64, DepError> {
        let outbox = self
            .admin_redis
            .get_or_init(|| self.redis_client(Duration::from_secs(1)))
            .llen(OUTBOX)
            .await? as u64;
        let mut lag = 0;
        for p in 0..3u32 {
            let leader = self
                .kafka
                .leader(TOPIC, p)
                .ok_or_else(|| DepError::Kafka("no leader".into()))?;
            let end = self
                .kafka
                .log_end_offset(leader, TOPIC, p)
                .ok_or_else(|| DepError::Kafka("no log".into()))?;
            // The coordinator's view, not the consumer's: a commit whose answer was lost
            // in a crash still counts.
            let committed = self.kafka.committed_offset(GROUP, TOPIC, p).unwrap_or(0);
            lag += end.saturating_sub(committed);
        }
        Ok(outbox + lag)
    }

    /// `SELECT COUNT(*) FROM orders` (both tables).
    pub async fn order_count(&self) -> Result<u64, DepError> {
        let mut c = self.admin_pool().acquire().await?;
        let mut n = 0;
        for count in [
            "SELECT count(*) FROM orders",
            "SELECT count(*) FROM orders_no_unique",
        ] {
            n += c.query_one(count, &[]).await?.get::<_, i64>(0)?;
        }
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn admin_pool(&self) -> Pool {
        self.admin
            .get_or_init(|| {
                Pool::new(
                    self.db.addr(),
                    PoolConfig {
                        max_size: 1,
                        ..PoolConfig::default()
                    },
                )
            })
            .clone()
    }

    /// The document's verification queries, and the Redis stock.
    pub async fn final_state(&self) -> FinalState {
        let redis = self.redis_client(Duration::from_secs(5));
        let redis_stock = loop {
            match redis.get_i64(&stock_key(PRODUCT)).await {
                Ok(v) => break v.unwrap_or(0),
                Err(_) => time::sleep(Duration::from_millis(100)).await,
            }
        };
        let backlog = self.backlog().await.unwrap_or(u64::MAX);
        let pool = Pool::new(
            self.db.addr(),
            PoolConfig {
                max_size: 1,
                ..PoolConfig::default()
            },
        );
        loop {
            let read = async {
                let mut c = pool.acquire().await?;
                let mut orders = Vec::new();
                for select in [
                    "SELECT order_id, idempotency_key, user_id FROM orders",
                    "SELECT order_id, idempotency_key, user_id FROM orders_no_unique",
                ] {
                    for r in c.query(select, &[]).await? {
                        orders.push(OrderRow {
                            order_id: r.get::<_, String>("order_id")?,
                            idempotency_key: r.get::<_, String>("idempotency_key")?,
                            user: r.get::<_, i64>("user_id")? as u32,
                        });
                    }
                }
                let db_stock = c
                    .query_opt("SELECT stock FROM products WHERE id = $1", &[&PRODUCT])
                    .await?
                    .map(|p| p.get::<_, i64>("stock"))
                    .transpose()?
                    .unwrap_or(0);
                Ok::<_, sql::SqlError>((orders, db_stock))
            };
            match read.await {
                Ok((mut orders, db_stock)) => {
                    orders.sort();
                    return FinalState {
                        orders,
                        db_stock,
                        redis_stock,
                        backlog,
                    };
                }
                Err(_) => time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flash_sale::service::idempotency_key;

    fn order(user: u32) -> Order {
        Order {
            order_id: format!("o-{user}"),
            idempotency_key: format!("u{user}-k"),
            user,
            product: PRODUCT.to_string(),
        }
    }

    /// Runs `f` against freshly started dependencies with `items` in stock.
    fn with_redis<T: 'static>(items: u32, f: impl AsyncFnOnce(Redis) -> T + 'static) -> T {
        let r = sim_runtime::Sim::new(1).run(move || async move {
            let params = Params {
                items,
                ..Params::default()
            };
            let deps = start(&params).await;
            f(deps.redis_client(Duration::from_secs(1))).await
        });
        assert!(r.report.is_pass(), "{}", r.report);
        r.output.expect("finished")
    }

    #[test]
    fn a_reservation_writes_the_order_json_to_the_outbox_and_a_sold_out_one_nothing() {
        let (first, second, outbox) = with_redis(1, async |redis: Redis| {
            let stock = stock_key(PRODUCT);
            let mut replies = Vec::new();
            for user in [1, 2] {
                let o = order(user);
                let idem = idempotency_key(&o.idempotency_key);
                replies.push(redis.reserve(&stock, Some(&idem), Some(OUTBOX), &o).await);
            }
            let outbox = redis.lrange(OUTBOX, 0, -1).await.unwrap();
            (replies.remove(0), replies.remove(0), outbox)
        });
        assert_eq!(
            first.unwrap(),
            Reservation::Reserved {
                order_id: "o-1".into()
            }
        );
        assert_eq!(second.unwrap(), Reservation::SoldOut);
        let entries: Vec<_> = outbox.iter().map(|e| Order::from_json(e)).collect();
        assert_eq!(entries, vec![Some(order(1))], "one entry, the whole order");
    }

    #[test]
    fn the_outbox_ack_removes_one_copy_of_each_published_entry() {
        let left = with_redis(1, async |redis: Redis| {
            let client = redis.client();
            client.rpush(OUTBOX, &["a", "b", "a", "c"]).await.unwrap();
            redis.outbox_remove(OUTBOX, &["a", "c", "z"]).await.unwrap();
            redis.lrange(OUTBOX, 0, -1).await.unwrap()
        });
        assert_eq!(left, vec!["b".to_string(), "a".to_string()]);
    }
}
