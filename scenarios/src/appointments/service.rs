//! The appointments API's service logic, written against the simulated PostgreSQL and
//! Redis: list a doctor's free slots (cache first), book a slot.
//!
//! ## The correct variant
//! - Booking is one INSERT against a unique constraint on the slot: of two users racing
//!   for a slot, the loser gets a unique violation, answered 409.
//! - The database sits behind a circuit breaker: after consecutive failures it opens and
//!   the API answers 503 at once instead of waiting on a dead database; after a cool-down
//!   it lets probes through (HALF_OPEN) and closes when they succeed. A business answer
//!   (a 409) is a success for the breaker: the database answered.
//! - Every database wait is bounded (`Params::db_timeout`), below the user's timeout, so
//!   a request never waits its client out: it gets 503.
//! - The free-slot list is cached in Redis under a per-doctor version; a booking bumps
//!   the version before it answers, so no list read after the answer shows the slot. When
//!   Redis fails the API reads the database instead: slower, still correct.
//!
//! ## The buggy variants, each one small, realistic mistake
//! - `select_then_insert`: checks the slot with a SELECT, then INSERTs, at READ COMMITTED
//!   and with no constraint: two concurrent bookings both see the slot free.
//! - `breaker_stuck_open`: the HALF_OPEN probe's success is recorded as a failure, so the
//!   breaker reopens after every probe and never closes: after the database recovers,
//!   bookings fail with 503 for ever.
//! - `stale_cache`: a booking does not invalidate the cached list, which then shows taken
//!   slots until it expires.

use serde::{Deserialize, Serialize};
use sim_runtime::trace::{self, TraceEvent};

use super::deps::{Cache, Db, DepError};
use super::{Params, Variant};
use crate::patterns::{BreakerState, CircuitBreaker};

/// The RPC port of the API instances.
pub const API_PORT: u16 = 8000;

/// The API's requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiRequest {
    /// `GET /doctors/{doctor}/slots?free=true`.
    FreeSlots { doctor: u32 },
    /// `POST /appointments`.
    Book {
        slot: i64,
        doctor: u32,
        patient: String,
    },
}

/// The API's answer, as HTTP would carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiResponse {
    /// 200 with the free slots.
    Slots(Vec<i64>),
    /// 201: the appointment is stored.
    Booked,
    /// 409: the slot is taken.
    Conflict,
    /// 503: the database is unavailable (or the breaker is open); retry later.
    Unavailable,
    /// 500: anything else.
    Failed { reason: String },
}

impl ApiResponse {
    pub fn status(&self) -> u16 {
        match self {
            ApiResponse::Slots(_) => 200,
            ApiResponse::Booked => 201,
            ApiResponse::Conflict => 409,
            ApiResponse::Unavailable => 503,
            ApiResponse::Failed { .. } => 500,
        }
    }
}

/// An API answer (`api.response`), with the breaker's state when it was given, so that
/// checkers can tell a 503 of an open breaker from one of a failing call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TraceEvent)]
#[trace_event(name = "api.response")]
pub struct Answered {
    pub instance: u32,
    pub endpoint: &'static str,
    pub status: u16,
    pub breaker: BreakerState,
    /// Whether the answer came without calling the database (an open breaker, a cache
    /// hit).
    pub db_skipped: bool,
}

/// One API instance.
pub struct Api {
    pub instance: u32,
    pub variant: Variant,
    pub params: Params,
    pub db: Db,
    pub cache: Cache,
    pub breaker: CircuitBreaker,
}

impl Api {
    pub async fn handle(&self, req: ApiRequest) -> ApiResponse {
        let (endpoint, (response, db_skipped)) = match req {
            ApiRequest::FreeSlots { doctor } => ("free_slots", self.free_slots(doctor).await),
            ApiRequest::Book {
                slot,
                doctor,
                patient,
            } => ("book", self.book(slot, doctor, &patient).await),
        };
        trace::emit(&Answered {
            instance: self.instance,
            endpoint,
            status: response.status(),
            breaker: self.breaker.state(),
            db_skipped,
        });
        response
    }

    fn unchecked(&self) -> bool {
        self.variant == Variant::SelectThenInsert
    }

    async fn free_slots(&self, doctor: u32) -> (ApiResponse, bool) {
        // Redis trouble only costs the cache: the database answers instead.
        let cached = self.cache.free_slots(doctor).await.ok();
        if let Some((_, Some(slots))) = &cached {
            return (ApiResponse::Slots(slots.clone()), true);
        }
        if self.breaker.try_acquire().is_err() {
            return (ApiResponse::Unavailable, true);
        }
        match self.db.free_slots(doctor, self.unchecked()).await {
            Ok(slots) => {
                self.db_answered();
                if let Some((version, None)) = cached {
                    let _ = self
                        .cache
                        .store(doctor, &version, &slots, self.params.cache_ttl)
                        .await;
                }
                (ApiResponse::Slots(slots), false)
            }
            Err(e) => (self.db_failed(e), false),
        }
    }

    async fn book(&self, slot: i64, doctor: u32, patient: &str) -> (ApiResponse, bool) {
        if self.breaker.try_acquire().is_err() {
            return (ApiResponse::Unavailable, true);
        }
        let booked = if self.unchecked() {
            self.db.book_checked_by_select(slot, doctor, patient).await
        } else {
            self.db.book(slot, doctor, patient).await
        };
        let response = match booked {
            Ok(()) => {
                self.db_answered();
                if self.variant != Variant::StaleCache {
                    // Before answering: once the user hears 201, no list shows the slot.
                    // If Redis is down its cache went with it, so there is nothing to
                    // invalidate.
                    let _ = self.cache.invalidate(doctor).await;
                }
                ApiResponse::Booked
            }
            Err(DepError::Taken) => {
                self.db_answered();
                ApiResponse::Conflict
            }
            Err(e) => self.db_failed(e),
        };
        (response, false)
    }

    /// The database answered (a success or a business refusal).
    fn db_answered(&self) {
        if self.variant == Variant::BreakerStuckOpen
            && self.breaker.state() == BreakerState::HalfOpen
        {
            // The bug: the probe path reuses the error handler's bookkeeping.
            self.breaker.record_failure();
        } else {
            self.breaker.record_success();
        }
    }

    fn db_failed(&self, e: DepError) -> ApiResponse {
        self.breaker.record_failure();
        match e {
            DepError::Db(_) => ApiResponse::Unavailable,
            other => ApiResponse::Failed {
                reason: other.to_string(),
            },
        }
    }
}
