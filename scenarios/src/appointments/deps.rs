//! The appointments backend's dependencies: PostgreSQL (doctors, slots, appointments) and
//! a Redis cache, started as sim-models nodes, and the thin wrappers the service uses.
//! Everything that touches the models' APIs is here, so the service reads like a service.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use sim_models::kv::{self, Command, KvClient, Reply, Script, ScriptContext};
use sim_models::sql::{Pool, SqlError};
use sim_runtime::time::Duration;
use sim_runtime::{NodeId, SimRng};

use super::Params;
pub use crate::deps::DepError;
use crate::deps::{bounded_pool, execute_all, until_ok, Stores};

/// The schema, as the service's migration creates it. `appointments_unchecked` is the
/// same table without the unique slot constraint, for the variant that relies on a
/// SELECT instead. The indexes serve the lookups by doctor (free-slot lists) and, without
/// the unique constraint's index, by slot (the variant's check).
const SCHEMA: [&str; 8] = [
    "CREATE TABLE doctors (id bigint PRIMARY KEY, name text NOT NULL)",
    "CREATE TABLE slots (
        id bigint PRIMARY KEY,
        doctor_id bigint NOT NULL REFERENCES doctors (id),
        starts_at bigint NOT NULL
    )",
    "CREATE TABLE appointments (
        id serial PRIMARY KEY,
        slot_id bigint NOT NULL UNIQUE REFERENCES slots (id),
        doctor_id bigint NOT NULL,
        patient text NOT NULL
    )",
    "CREATE TABLE appointments_unchecked (
        id serial PRIMARY KEY,
        slot_id bigint NOT NULL REFERENCES slots (id),
        doctor_id bigint NOT NULL,
        patient text NOT NULL
    )",
    "CREATE INDEX slots_doctor_id ON slots (doctor_id)",
    "CREATE INDEX appointments_doctor_id ON appointments (doctor_id)",
    "CREATE INDEX appointments_unchecked_doctor_id ON appointments_unchecked (doctor_id)",
    "CREATE INDEX appointments_unchecked_slot_id ON appointments_unchecked (slot_id)",
];

/// Slot `k` of doctor `d`: ids are dense per doctor, so a slot names its doctor.
pub fn slot_id(params: &Params, doctor: u32, k: u32) -> i64 {
    i64::from(doctor) * i64::from(params.slots_per_doctor) + i64::from(k)
}

/// The running dependencies and their fault handles.
#[derive(Clone)]
pub struct Deps {
    stores: Stores,
}

/// Starts PostgreSQL with the schema and the doctors' slots, and Redis as a pure cache
/// (no persistence: a restart empties it).
pub async fn start(params: &Params) -> Deps {
    let deps = Deps {
        stores: Stores::start(kv::Persistence::None),
    };
    until_ok(|| deps.seed(params)).await;
    deps
}

impl Deps {
    async fn seed(&self, params: &Params) -> Result<(), SqlError> {
        let mut c = self.stores.admin.acquire().await?;
        execute_all(&mut c, &SCHEMA).await?;
        // One statement per table, as a migration's seed data would be written.
        let doctors: Vec<String> = (0..params.doctors)
            .map(|d| format!("({d}, 'doctor-{d}')"))
            .collect();
        c.execute(
            &format!(
                "INSERT INTO doctors (id, name) VALUES {}",
                doctors.join(", ")
            ),
            &[],
        )
        .await?;
        // Half-hour slots from nine o'clock.
        let slots: Vec<String> = (0..params.doctors)
            .flat_map(|d| {
                (0..params.slots_per_doctor)
                    .map(move |k| (d, k))
                    .collect::<Vec<_>>()
            })
            .map(|(d, k)| {
                let starts_at = 9 * 60 + i64::from(k) * 30;
                format!("({}, {d}, {starts_at})", slot_id(params, d, k))
            })
            .collect();
        c.execute(
            &format!(
                "INSERT INTO slots (id, doctor_id, starts_at) VALUES {}",
                slots.join(", ")
            ),
            &[],
        )
        .await?;
        Ok(())
    }

    pub fn db_node(&self) -> NodeId {
        self.stores.db.node()
    }

    pub fn redis_node(&self) -> NodeId {
        self.stores.redis.primary_node()
    }

    /// The database as an API instance uses it: a small pool whose every wait (for a
    /// connection, for a reply) is bounded by `timeout`.
    pub fn db(&self, timeout: Duration) -> Db {
        Db {
            pool: bounded_pool(self.stores.db.addr(), 5, timeout),
            slots: Rc::default(),
        }
    }

    /// The cache as an API instance uses it; `rng` draws its fresh generations.
    pub fn cache(&self, timeout: Duration, rng: SimRng) -> Cache {
        Cache::new(
            KvClient::new(&self.stores.redis, kv::ClientConfig { timeout }),
            rng,
        )
    }

    /// PostgreSQL and Redis, for their faults.
    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    /// Every appointment row, from both tables, as a checker reads them after the run.
    pub async fn final_appointments(&self) -> Result<Vec<Booking>, SqlError> {
        let mut c = self.stores.admin.acquire().await?;
        let mut out = Vec::new();
        for table in ["appointments", "appointments_unchecked"] {
            let rows = c
                .query(
                    &format!("SELECT slot_id, patient FROM {table} ORDER BY id"),
                    &[],
                )
                .await?;
            for r in rows {
                out.push(Booking {
                    slot: r.get("slot_id")?,
                    patient: r.get("patient")?,
                });
            }
        }
        Ok(out)
    }
}

/// One stored appointment.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Booking {
    pub slot: i64,
    pub patient: String,
}

/// The database as the API sees it.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    /// Each doctor's slots, read once: the timetable does not change while the service
    /// runs, the appointments do.
    slots: Rc<RefCell<BTreeMap<u32, Vec<i64>>>>,
}

impl Db {
    /// The doctor's slots that no appointment holds, in time order.
    pub async fn free_slots(&self, doctor: u32, unchecked: bool) -> Result<Vec<i64>, DepError> {
        let mut c = self.pool.acquire().await?;
        let known = self.slots.borrow().get(&doctor).cloned();
        let slots = match known {
            Some(slots) => slots,
            None => {
                let slots: Vec<i64> = c
                    .query(
                        "SELECT id FROM slots WHERE doctor_id = $1 ORDER BY id",
                        &[&i64::from(doctor)],
                    )
                    .await?
                    .iter()
                    .map(|r| r.get("id"))
                    .collect::<Result<_, _>>()?;
                self.slots.borrow_mut().insert(doctor, slots.clone());
                slots
            }
        };
        let doctor = i64::from(doctor);
        let booked_sql = if unchecked {
            "SELECT slot_id FROM appointments_unchecked WHERE doctor_id = $1"
        } else {
            "SELECT slot_id FROM appointments WHERE doctor_id = $1"
        };
        let booked: BTreeSet<i64> = c
            .query(booked_sql, &[&doctor])
            .await?
            .iter()
            .map(|r| r.get("slot_id"))
            .collect::<Result<_, _>>()?;
        Ok(slots
            .into_iter()
            .filter(|id| !booked.contains(id))
            .collect())
    }

    /// Books the slot; the unique constraint on the slot makes the loser of a race get
    /// `Taken`.
    pub async fn book(&self, slot: i64, doctor: u32, patient: &str) -> Result<(), DepError> {
        let mut c = self.pool.acquire().await?;
        c.execute(
            "INSERT INTO appointments (slot_id, doctor_id, patient) VALUES ($1, $2, $3)",
            &[&slot, &i64::from(doctor), &patient],
        )
        .await?;
        Ok(())
    }

    /// Books the slot after checking with a SELECT that nobody holds it, in one READ
    /// COMMITTED transaction and with no constraint behind it: two bookings that both
    /// check before either inserts both succeed.
    pub async fn book_checked_by_select(
        &self,
        slot: i64,
        doctor: u32,
        patient: &str,
    ) -> Result<(), DepError> {
        let mut c = self.pool.acquire().await?;
        let mut tx = c.transaction().await?;
        let taken: i64 = tx
            .query_one(
                "SELECT count(*) AS n FROM appointments_unchecked WHERE slot_id = $1",
                &[&slot],
            )
            .await?
            .get("n")?;
        if taken > 0 {
            tx.rollback().await?;
            return Err(DepError::Taken);
        }
        tx.execute(
            "INSERT INTO appointments_unchecked (slot_id, doctor_id, patient) VALUES ($1, $2, $3)",
            &[&slot, &i64::from(doctor), &patient],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The free-slot cache as the API sees it. Lists are stored under a per-doctor
/// generation, so that invalidating is one INCR: a list computed before a booking can only
/// be stored under the generation the booking left behind, where no later reader looks.
///
/// A generation starts at a random number, never at 0 or 1: Redis forgets the counter
/// when it restarts, and a counter that started again from 0 would give a list computed
/// before the restart (and stored after it) the very generation new readers use. Found by
/// the swarm: Redis restarting between a slow read and its store showed a booked slot for
/// eleven seconds.
///
/// Reading (the generation, then the list under it) and invalidating (INCR, or a fresh
/// generation when Redis has none) are each one script, as a service would write them in
/// Lua: one round trip each instead of two or three, and no other client's command in
/// between.
#[derive(Clone)]
pub struct Cache {
    client: KvClient,
    rng: Rc<RefCell<SimRng>>,
    scripts: Rc<CacheScripts>,
}

struct CacheScripts {
    read: Script,
    invalidate: Script,
}

fn generation_key(doctor: u32) -> String {
    format!("slots:{doctor}:generation")
}

fn list_key(doctor: &str, generation: &str) -> String {
    format!("slots:{doctor}:g{generation}")
}

/// The doctor's generation in `key`, set to `fresh` first if Redis has none.
fn current_generation(ctx: &mut ScriptContext<'_>, key: &str, fresh: &str) -> String {
    match ctx.get(key) {
        Reply::Bulk(generation) => generation,
        _ => {
            ctx.call(Command::SetNx {
                key: key.to_string(),
                value: fresh.to_string(),
            });
            fresh.to_string()
        }
    }
}

/// KEYS: the generation. ARGV: a fresh generation, the doctor. Replies
/// `[generation, list or nil]`.
fn read_script() -> Script {
    Script::new("appointments.cached_slots", |ctx, keys, args| {
        let generation = current_generation(ctx, &keys[0], &args[0]);
        let list = ctx.get(&list_key(&args[1], &generation));
        Reply::Array(vec![Reply::Bulk(generation), list])
    })
}

/// KEYS: the generation. ARGV: a fresh generation, used when Redis has none (an INCR
/// would start it at 1).
fn invalidate_script() -> Script {
    Script::new("appointments.invalidate", |ctx, keys, args| {
        let key = &keys[0];
        if matches!(ctx.get(key), Reply::Bulk(_)) {
            ctx.call(Command::Incr { key: key.clone() })
        } else {
            ctx.call(Command::SetNx {
                key: key.clone(),
                value: args[0].clone(),
            })
        }
    })
}

impl Cache {
    fn new(client: KvClient, rng: SimRng) -> Self {
        Cache {
            client,
            rng: Rc::new(RefCell::new(rng)),
            scripts: Rc::new(CacheScripts {
                read: read_script(),
                invalidate: invalidate_script(),
            }),
        }
    }

    /// A generation no earlier Redis can have used (60 random bits, room for INCRs).
    fn fresh_generation(&self) -> String {
        (self.rng.borrow_mut().next_u64() >> 4).to_string()
    }

    /// The cached list, and the generation it was read at (the one to store a fresh
    /// list under on a miss).
    pub async fn free_slots(&self, doctor: u32) -> Result<(String, Option<Vec<i64>>), DepError> {
        let fresh = self.fresh_generation();
        let reply = self
            .client
            .eval(
                &self.scripts.read,
                &[&generation_key(doctor)],
                &[&fresh, &doctor.to_string()],
            )
            .await?;
        let (generation, list) = match reply {
            Reply::Array(mut parts) if parts.len() == 2 => {
                let list = parts.pop().expect("two parts");
                match (parts.pop().expect("two parts"), list) {
                    (Reply::Bulk(g), Reply::Bulk(list)) => (g, Some(list)),
                    (Reply::Bulk(g), _) => (g, None),
                    (other, _) => return Err(unexpected(other)),
                }
            }
            other => return Err(unexpected(other)),
        };
        let slots = list.map(|text| {
            text.split(',')
                .filter(|s| !s.is_empty())
                .filter_map(|s| s.parse().ok())
                .collect()
        });
        Ok((generation, slots))
    }

    pub async fn store(
        &self,
        doctor: u32,
        generation: &str,
        slots: &[i64],
        ttl: Duration,
    ) -> Result<(), DepError> {
        let text = slots
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        self.client
            .set_px(&list_key(&doctor.to_string(), generation), &text, ttl)
            .await?;
        Ok(())
    }

    /// Makes every cached list of the doctor's unreachable.
    pub async fn invalidate(&self, doctor: u32) -> Result<(), DepError> {
        let fresh = self.fresh_generation();
        self.client
            .eval(
                &self.scripts.invalidate,
                &[&generation_key(doctor)],
                &[&fresh],
            )
            .await?;
        Ok(())
    }
}

fn unexpected(reply: Reply) -> DepError {
    DepError::Redis(format!("unexpected reply {reply:?}"))
}
