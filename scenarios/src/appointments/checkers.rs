//! The appointments backend's success criteria as checkers, judged from what the users
//! saw and what the database holds after the run, never from the service's own counters:
//!
//! - no double booking: no slot holds two appointments, and no two users were told they
//!   booked the same slot;
//! - every 201 is stored: each booking a user was told succeeded is in the database;
//! - fail fast, never 500: while the database is unreachable the API answers 503 (the
//!   document's "System returns 503, not 5xx errors"), and no request waits out the
//!   user's timeout;
//! - recovery: once a bound has passed after the last fault healed, every booking reaches
//!   the database again (201 or 409), which a breaker that never closes fails;
//! - fresh lists: no list a user asked for after being told of a booking shows that slot.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sim_runtime::time::{Duration, Instant};

use super::deps::Booking;
use crate::checker::Verdict;

/// A booking a user was told succeeded (201).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acked {
    pub slot: i64,
    pub doctor: u32,
    pub patient: String,
    pub at: Instant,
}

/// A free-slot list a user received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListSeen {
    pub doctor: u32,
    pub slots: Vec<i64>,
    /// When the user sent the request.
    pub start: Instant,
}

/// One booking request, from the user's side: its status, or `None` for no answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub start: Instant,
    pub status: Option<u16>,
}

/// Everything the checkers look at.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observations {
    pub acked: Vec<Acked>,
    pub lists: Vec<ListSeen>,
    pub bookings: Vec<Attempt>,
    /// Requests of any kind answered 500.
    pub server_errors: u64,
    /// Requests of any kind answered 503.
    pub unavailable: u64,
    /// Requests of any kind that got no answer within the user's timeout.
    pub timeouts: u64,
    /// The database's appointments after the run.
    pub stored: Vec<Booking>,
    /// When the last fault healed (the run's start if there were none).
    pub healed_at: Instant,
    pub recovery_bound: Duration,
}

pub fn no_double_booking(o: &Observations) -> Verdict {
    let mut by_slot: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for b in &o.stored {
        by_slot.entry(b.slot).or_default().push(&b.patient);
    }
    if let Some((slot, patients)) = by_slot.iter().find(|(_, p)| p.len() > 1) {
        let doubled = by_slot.values().filter(|p| p.len() > 1).count();
        return Verdict::fail(
            "no_double_booking",
            format!(
                "slot {slot} is booked {} times ({}); {doubled} slot(s) double-booked",
                patients.len(),
                patients.join(", ")
            ),
        );
    }
    let mut told: BTreeMap<i64, &str> = BTreeMap::new();
    for a in &o.acked {
        if let Some(other) = told.insert(a.slot, &a.patient) {
            if other != a.patient {
                return Verdict::fail(
                    "no_double_booking",
                    format!(
                        "both {other} and {} were told they booked slot {}",
                        a.patient, a.slot
                    ),
                );
            }
        }
    }
    Verdict::pass(
        "no_double_booking",
        format!(
            "{} appointments in {} distinct slots",
            o.stored.len(),
            by_slot.len()
        ),
    )
}

pub fn acked_are_stored(o: &Observations) -> Verdict {
    let missing: Vec<&Acked> = o
        .acked
        .iter()
        .filter(|a| {
            !o.stored
                .iter()
                .any(|b| b.slot == a.slot && b.patient == a.patient)
        })
        .collect();
    match missing.first() {
        Some(a) => Verdict::fail(
            "acked_are_stored",
            format!(
                "{} was told slot {} is booked, but the database does not hold it ({} such)",
                a.patient,
                a.slot,
                missing.len()
            ),
        ),
        None => Verdict::pass(
            "acked_are_stored",
            format!("all {} acknowledged bookings are stored", o.acked.len()),
        ),
    }
}

pub fn fails_fast(o: &Observations) -> Verdict {
    Verdict::check(
        "fails_fast",
        o.server_errors == 0 && o.timeouts == 0,
        format!(
            "{} answers were 500 and {} requests waited out the user's timeout",
            o.server_errors, o.timeouts
        ),
    )
}

/// A booking that reached the database: a 201 or a 409.
fn reached_db(a: &Attempt) -> bool {
    matches!(a.status, Some(201 | 409))
}

pub fn recovers(o: &Observations) -> Verdict {
    let deadline = o.healed_at + o.recovery_bound;
    let late: Vec<&Attempt> = o
        .bookings
        .iter()
        .filter(|a| a.start > deadline && !reached_db(a))
        .collect();
    if let Some(first) = late.first() {
        return Verdict::fail(
            "recovers",
            format!(
                "{} bookings failed more than {} ms after the last heal, the first {} ms after it",
                late.len(),
                o.recovery_bound.as_millis(),
                first.start.duration_since(o.healed_at).as_millis()
            ),
        );
    }
    let first_ok = o
        .bookings
        .iter()
        .find(|a| a.start >= o.healed_at && reached_db(a));
    Verdict::pass(
        "recovers",
        match first_ok {
            Some(a) => format!(
                "bookings reached the database {} ms after the last heal, and every one \
                 from {} ms on did",
                a.start.duration_since(o.healed_at).as_millis(),
                o.recovery_bound.as_millis()
            ),
            None => "no booking was tried after the last heal".to_string(),
        },
    )
}

pub fn fresh_lists(o: &Observations) -> Verdict {
    let mut stale = 0;
    let mut worst: Option<(i64, Duration)> = None;
    for a in &o.acked {
        for l in o
            .lists
            .iter()
            .filter(|l| l.doctor == a.doctor && l.start > a.at && l.slots.contains(&a.slot))
        {
            stale += 1;
            let age = l.start.duration_since(a.at);
            if worst.is_none_or(|(_, w)| age > w) {
                worst = Some((a.slot, age));
            }
        }
    }
    match worst {
        Some((slot, age)) => Verdict::fail(
            "fresh_lists",
            format!(
                "{stale} lists showed a slot already booked; slot {slot} was still shown {} ms \
                 after its booking was acknowledged",
                age.as_millis()
            ),
        ),
        None => Verdict::pass(
            "fresh_lists",
            format!(
                "{} lists, none showing a slot booked before it was asked for",
                o.lists.len()
            ),
        ),
    }
}

pub fn check_all(o: &Observations) -> Vec<Verdict> {
    vec![
        no_double_booking(o),
        acked_are_stored(o),
        fails_fast(o),
        recovers(o),
        fresh_lists(o),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::at_ms as at;

    fn clean() -> Observations {
        Observations {
            acked: vec![Acked {
                slot: 3,
                doctor: 0,
                patient: "p1".into(),
                at: at(100),
            }],
            lists: vec![ListSeen {
                doctor: 0,
                slots: vec![4, 5],
                start: at(200),
            }],
            bookings: vec![Attempt {
                start: at(90),
                status: Some(201),
            }],
            stored: vec![Booking {
                slot: 3,
                patient: "p1".into(),
            }],
            recovery_bound: Duration::from_secs(10),
            ..Observations::default()
        }
    }

    #[test]
    fn a_clean_run_passes_every_checker() {
        assert!(check_all(&clean()).iter().all(|v| v.ok));
    }

    #[test]
    fn a_planted_double_booking_is_caught() {
        let mut o = clean();
        o.stored.push(Booking {
            slot: 3,
            patient: "p2".into(),
        });
        let v = no_double_booking(&o);
        assert!(!v.ok);
        assert!(
            v.detail.starts_with("slot 3 is booked 2 times (p1, p2)"),
            "{}",
            v.detail
        );
    }

    #[test]
    fn an_acknowledged_booking_missing_from_the_database_is_caught() {
        let mut o = clean();
        o.stored.clear();
        assert!(!acked_are_stored(&o).ok);
    }

    #[test]
    fn a_stale_list_is_caught() {
        let mut o = clean();
        o.lists[0].slots.push(3);
        let v = fresh_lists(&o);
        assert!(!v.ok);
        assert!(
            v.detail.contains("slot 3 was still shown 100 ms"),
            "{}",
            v.detail
        );
    }

    #[test]
    fn a_breaker_that_never_closes_fails_recovery() {
        let mut o = clean();
        o.healed_at = at(1_000);
        o.bookings = (0..30)
            .map(|k| Attempt {
                start: at(1_000 + k * 1_000),
                status: Some(503),
            })
            .collect();
        assert!(!recovers(&o).ok);
        // A probe that got through now and then is not recovery.
        o.bookings[20].status = Some(409);
        assert!(!recovers(&o).ok);
        for a in &mut o.bookings[10..] {
            a.status = Some(201);
        }
        assert!(recovers(&o).ok);
    }

    #[test]
    fn a_500_or_a_timeout_fails_fast() {
        let mut o = clean();
        o.timeouts = 1;
        assert!(!fails_fast(&o).ok);
    }
}
