//! Interdomestik's claims as checkers, judged from what users were answered, the rows
//! PostgreSQL holds after the run, the database's own deadlock count and the email
//! service's delivery records; never from the service's own counters:
//!
//! - `subscription_with_account`: no account without its subscription ("subscription
//!   setup within same transaction");
//! - `acknowledged_kept`: every registration answered 201 is stored, account and
//!   subscription;
//! - `deadlock_free`: the database detected no deadlock and no user was answered with
//!   one ("consistent lock ordering prevents deadlocks");
//! - `welcome_email_sent`: every registered member got the welcome email at least once by
//!   the end, which comes after the email service recovered;
//! - `rate_limit_held`: no client got more than the limit of registrations stored within
//!   any window of the limit's length (sliding, as the limiter counts);
//! - `registration_isolated`: no registration failed unless the database was down or
//!   slow, or its API instance was killed, around it ("external failures didn't crash the
//!   system": an email outage must not fail registrations).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sim_runtime::time::{Duration, Instant};

use crate::checker::Verdict;

/// A window of virtual time `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from: Instant,
    pub to: Instant,
}

impl Window {
    /// Whether `[start, end]` meets this window stretched by `grace` at its end.
    pub fn meets(&self, start: Instant, end: Instant, grace: Duration) -> bool {
        start < self.to + grace && self.from <= end
    }
}

/// One registration as its user saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationSeen {
    pub client: String,
    pub email: String,
    pub start: Instant,
    pub end: Instant,
    /// The HTTP status, `None` when no answer came (a timeout, a reset connection).
    pub status: Option<u16>,
    /// The error body of a 5xx answer.
    pub reason: String,
}

impl RegistrationSeen {
    pub fn failed(&self) -> bool {
        self.status.is_none_or(|s| s >= 500)
    }
}

/// One account row after the run.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccountRow {
    pub email: String,
    /// The client (agent or address) that registered it.
    pub client: String,
    /// When the API received the registration, in ms of virtual time.
    pub registered_at_ms: u64,
    pub subscribed: bool,
}

/// Everything the checkers look at.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Observations {
    pub registrations: Vec<RegistrationSeen>,
    pub accounts: Vec<AccountRow>,
    /// Welcome emails the email service delivered, per address.
    pub welcome_delivered: BTreeMap<String, u32>,
    /// Deadlocks PostgreSQL detected (its own statistics).
    pub deadlocks_detected: u64,
    /// Windows in which the database was down or slow.
    pub db_faults: Vec<Window>,
    /// Windows in which an API instance was dead (from the kill to its restart).
    pub api_kills: Vec<Window>,
    /// How long after a database fault or a kill a failure is still put down to it (the
    /// pool's dead connections, the load balancer's health marks).
    pub excuse_after: Duration,
    pub rate_limit: u32,
    pub rate_window: Duration,
}

pub fn subscription_with_account(o: &Observations) -> Verdict {
    let bare: Vec<&AccountRow> = o.accounts.iter().filter(|a| !a.subscribed).collect();
    match bare.first() {
        Some(a) => Verdict::fail(
            "subscription_with_account",
            format!(
                "{} has an account but no subscription ({} of {} accounts)",
                a.email,
                bare.len(),
                o.accounts.len()
            ),
        ),
        None => Verdict::pass(
            "subscription_with_account",
            format!("all {} accounts have their subscription", o.accounts.len()),
        ),
    }
}

pub fn acknowledged_kept(o: &Observations) -> Verdict {
    let stored: BTreeSet<&str> = o
        .accounts
        .iter()
        .filter(|a| a.subscribed)
        .map(|a| a.email.as_str())
        .collect();
    let acked: Vec<&RegistrationSeen> = o
        .registrations
        .iter()
        .filter(|r| r.status == Some(201))
        .collect();
    let lost: Vec<&&RegistrationSeen> = acked
        .iter()
        .filter(|r| !stored.contains(r.email.as_str()))
        .collect();
    match lost.first() {
        Some(r) => Verdict::fail(
            "acknowledged_kept",
            format!(
                "{} was answered 201 but is not stored with its subscription ({} of {} lost)",
                r.email,
                lost.len(),
                acked.len()
            ),
        ),
        None => Verdict::pass(
            "acknowledged_kept",
            format!("all {} acknowledged registrations are stored", acked.len()),
        ),
    }
}

pub fn deadlock_free(o: &Observations) -> Verdict {
    let seen = o
        .registrations
        .iter()
        .filter(|r| r.reason.contains("deadlock"))
        .count();
    if o.deadlocks_detected > 0 || seen > 0 {
        Verdict::fail(
            "deadlock_free",
            format!(
                "PostgreSQL detected {} deadlocks; {seen} users were answered with one",
                o.deadlocks_detected
            ),
        )
    } else {
        Verdict::pass("deadlock_free", "no deadlock detected")
    }
}

pub fn welcome_email_sent(o: &Observations) -> Verdict {
    let missing: Vec<&AccountRow> = o
        .accounts
        .iter()
        .filter(|a| o.welcome_delivered.get(&a.email).copied().unwrap_or(0) == 0)
        .collect();
    match missing.first() {
        Some(a) => Verdict::fail(
            "welcome_email_sent",
            format!(
                "{} is registered but never got the welcome email ({} of {} accounts)",
                a.email,
                missing.len(),
                o.accounts.len()
            ),
        ),
        None => Verdict::pass(
            "welcome_email_sent",
            format!(
                "all {} accounts got the welcome email ({} deliveries)",
                o.accounts.len(),
                o.welcome_delivered.values().sum::<u32>()
            ),
        ),
    }
}

pub fn rate_limit_held(o: &Observations) -> Verdict {
    let window = o.rate_window.as_millis() as u64;
    let mut by_client: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for a in &o.accounts {
        by_client
            .entry(a.client.as_str())
            .or_default()
            .push(a.registered_at_ms);
    }
    let limit = o.rate_limit as usize;
    let mut worst: Option<(&str, usize, u64)> = None;
    for (client, times) in &mut by_client {
        times.sort_unstable();
        // The most registrations in a window `(t - window, t]` ending at one of them.
        for (i, &t) in times.iter().enumerate() {
            let first = times[..=i].partition_point(|&s| s + window <= t);
            let n = i + 1 - first;
            if n > limit && worst.is_none_or(|(_, m, _)| n > m) {
                worst = Some((client, n, t));
            }
        }
    }
    match worst {
        Some((client, n, t)) => Verdict::fail(
            "rate_limit_held",
            format!(
                "{client} registered {n} members within {window} ms up to {t} ms (limit {limit})"
            ),
        ),
        None => Verdict::pass(
            "rate_limit_held",
            format!(
                "{} clients, none over {limit} registrations per {window} ms",
                by_client.len()
            ),
        ),
    }
}

pub fn registration_isolated(o: &Observations) -> Verdict {
    let excused = |r: &RegistrationSeen| {
        o.db_faults
            .iter()
            .chain(&o.api_kills)
            .any(|w| w.meets(r.start, r.end, o.excuse_after))
    };
    let failed: Vec<&RegistrationSeen> = o
        .registrations
        .iter()
        .filter(|r| r.failed() && !excused(r))
        .collect();
    match failed.first() {
        Some(r) => Verdict::fail(
            "registration_isolated",
            format!(
                "{}'s registration failed at {} ms with {} while the database was healthy ({} such failures)",
                r.email,
                r.start.elapsed_since_start().as_millis(),
                match r.status {
                    Some(s) => format!("{s} {}", r.reason),
                    None => "no answer".into(),
                },
                failed.len()
            ),
        ),
        None => Verdict::pass(
            "registration_isolated",
            format!(
                "{} registrations failed, all during a database fault or an instance kill",
                o.registrations.iter().filter(|r| r.failed()).count()
            ),
        ),
    }
}

pub fn check_all(o: &Observations) -> Vec<Verdict> {
    vec![
        subscription_with_account(o),
        acknowledged_kept(o),
        deadlock_free(o),
        welcome_email_sent(o),
        rate_limit_held(o),
        registration_isolated(o),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::at_ms;

    fn account(email: &str, client: &str, at: u64) -> AccountRow {
        AccountRow {
            email: email.into(),
            client: client.into(),
            registered_at_ms: at,
            subscribed: true,
        }
    }

    fn seen(email: &str, start: u64, status: Option<u16>, reason: &str) -> RegistrationSeen {
        RegistrationSeen {
            client: "agent-0".into(),
            email: email.into(),
            start: at_ms(start),
            end: at_ms(start + 20),
            status,
            reason: reason.into(),
        }
    }

    /// A healthy run: two members registered, acknowledged, welcomed.
    fn healthy() -> Observations {
        Observations {
            registrations: vec![
                seen("a@x", 0, Some(201), ""),
                seen("b@x", 10, Some(201), ""),
            ],
            accounts: vec![account("a@x", "agent-0", 0), account("b@x", "agent-0", 10)],
            welcome_delivered: [("a@x".to_string(), 1), ("b@x".to_string(), 2)].into(),
            excuse_after: Duration::from_secs(2),
            rate_limit: 5,
            rate_window: Duration::from_secs(60),
            ..Observations::default()
        }
    }

    fn failing(o: &Observations) -> Vec<String> {
        check_all(o)
            .into_iter()
            .filter(|v| !v.ok)
            .map(|v| v.checker)
            .collect()
    }

    #[test]
    fn a_healthy_run_passes_every_checker() {
        assert_eq!(failing(&healthy()), Vec::<String>::new());
    }

    #[test]
    fn an_account_left_without_its_subscription_is_caught() {
        // two_transactions: the API died between the account's commit and the
        // subscription's.
        let mut o = healthy();
        o.accounts[1].subscribed = false;
        assert!(failing(&o).contains(&"subscription_with_account".to_string()));
        // ...and it was acknowledged, so it counts as lost too.
        assert!(failing(&o).contains(&"acknowledged_kept".to_string()));
    }

    #[test]
    fn an_acknowledged_registration_missing_from_the_database_is_caught() {
        let mut o = healthy();
        o.accounts.remove(0);
        assert_eq!(failing(&o), vec!["acknowledged_kept".to_string()]);
    }

    #[test]
    fn a_deadlock_is_caught_even_when_a_retry_hid_it_from_the_user() {
        let mut o = healthy();
        o.deadlocks_detected = 1;
        assert_eq!(failing(&o), vec!["deadlock_free".to_string()]);
        let mut o = healthy();
        o.registrations
            .push(seen("c@x", 30, Some(500), "database: deadlock detected"));
        assert!(failing(&o).contains(&"deadlock_free".to_string()));
    }

    #[test]
    fn a_member_never_welcomed_is_caught() {
        let mut o = healthy();
        o.welcome_delivered.remove("b@x");
        assert_eq!(failing(&o), vec!["welcome_email_sent".to_string()]);
    }

    #[test]
    fn six_registrations_of_one_client_within_a_minute_are_caught() {
        // rate_limit_race: six concurrent requests all read a count under the limit.
        let mut o = healthy();
        for k in 0..4 {
            let email = format!("m{k}@x");
            o.accounts.push(account(&email, "agent-0", 59_000 + k));
            o.welcome_delivered.insert(email, 1);
        }
        assert_eq!(failing(&o), vec!["rate_limit_held".to_string()]);
        // The same six spread over more than a minute are within the limit: the first
        // has left the window when the sixth comes.
        let mut o = healthy();
        for k in 0..4 {
            let email = format!("m{k}@x");
            o.accounts.push(account(&email, "agent-0", 60_000 + k));
            o.welcome_delivered.insert(email, 1);
        }
        assert_eq!(failing(&o), Vec::<String>::new());
        // And other clients have their own limit.
        let mut o = healthy();
        for k in 0..4 {
            let email = format!("m{k}@x");
            o.accounts.push(account(&email, &format!("member-{k}"), 1));
            o.welcome_delivered.insert(email, 1);
        }
        assert_eq!(failing(&o), Vec::<String>::new());
    }

    #[test]
    fn a_failure_while_the_database_is_healthy_is_caught_and_one_in_an_outage_is_not() {
        // email_in_transaction: the email outage failed a registration.
        let mut o = healthy();
        o.registrations
            .push(seen("c@x", 5_000, Some(503), "email: timed out"));
        assert_eq!(failing(&o), vec!["registration_isolated".to_string()]);
        // The same failure while the database was down is excused...
        o.db_faults.push(Window {
            from: at_ms(4_000),
            to: at_ms(5_000),
        });
        assert_eq!(failing(&o), Vec::<String>::new());
        // ...and shortly after it, but not long after.
        o.registrations.push(seen("d@x", 6_900, None, ""));
        assert_eq!(failing(&o), Vec::<String>::new());
        o.registrations.push(seen("e@x", 7_100, None, ""));
        assert_eq!(failing(&o), vec!["registration_isolated".to_string()]);
        // A kill of the instance excuses it the same way.
        o.api_kills.push(Window {
            from: at_ms(7_000),
            to: at_ms(7_050),
        });
        assert_eq!(failing(&o), Vec::<String>::new());
    }
}
