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
//! - `rate_limit_held`: no client got more than the limit of registrations, nor of claims,
//!   stored within any window of the limit's length (sliding, as the limiter counts);
//! - `requests_isolated`: no registration or claim failed unless the database was down or
//!   slow, or its API instance was killed, around it ("external failures didn't crash the
//!   system": an email outage must not fail registrations);
//! - `claim_acknowledged_kept`: every claim answered 201 is stored with all its documents
//!   ("no data corruption", "document upload handling");
//! - `claim_by_subscriber`: every stored claim belongs to an account with its
//!   subscription, and no member whose registration was acknowledged was refused a claim
//!   for having none;
//! - `claim_receipt_sent`: every stored claim's receipt reached the email service
//!   ("notification system resilience").

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

/// What a user was answered, and when they asked and heard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub start: Instant,
    pub end: Instant,
    /// The HTTP status, `None` when no answer came (a timeout, a reset connection).
    pub status: Option<u16>,
    /// The error body of a 5xx answer, or why no answer came.
    pub reason: String,
}

impl Answer {
    pub fn failed(&self) -> bool {
        self.status.is_none_or(|s| s >= 500)
    }

    pub fn is(&self, status: u16) -> bool {
        self.status == Some(status)
    }
}

/// One registration as its user saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationSeen {
    pub client: String,
    pub email: String,
    pub answer: Answer,
}

/// One claim as its member saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimSeen {
    pub client: String,
    /// The member's email.
    pub member: String,
    pub reference: String,
    /// Documents uploaded with it.
    pub documents: u32,
    pub answer: Answer,
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

/// One claim row after the run.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClaimRow {
    pub reference: String,
    pub client: String,
    /// When the API received the claim, in ms of virtual time.
    pub submitted_at_ms: u64,
    /// Its document rows.
    pub documents: u32,
    /// Whether its account has a subscription.
    pub subscribed: bool,
}

/// Everything the checkers look at.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Observations {
    pub registrations: Vec<RegistrationSeen>,
    pub claims: Vec<ClaimSeen>,
    pub accounts: Vec<AccountRow>,
    pub claim_rows: Vec<ClaimRow>,
    /// Welcome emails the email service delivered, per address.
    pub welcome_delivered: BTreeMap<String, u32>,
    /// Claim receipts the email service delivered, per claim reference.
    pub receipts_delivered: BTreeMap<String, u32>,
    /// Deadlocks PostgreSQL detected (its own statistics).
    pub deadlocks_detected: u64,
    /// Windows in which the database was down or slow.
    pub db_faults: Vec<Window>,
    /// Windows in which an API instance was dead (from the kill to its restart).
    pub api_kills: Vec<Window>,
    /// How long after a database fault a failure is still put down to it (the pool's
    /// dead connections).
    pub excuse_after: Duration,
    /// How long after a killed instance's restart a failure is still put down to the
    /// kill: the load balancer keeps an instance that refused a connection out for a
    /// while, so with every instance killed and marked, requests find none to go to.
    pub kill_excuse_after: Duration,
    pub rate_limit: u32,
    pub rate_window: Duration,
}

impl Observations {
    /// Every answer users got, registrations and claims.
    fn answers(&self) -> impl Iterator<Item = (&str, &Answer)> {
        let r = self
            .registrations
            .iter()
            .map(|r| (r.email.as_str(), &r.answer));
        let c = self
            .claims
            .iter()
            .map(|c| (c.reference.as_str(), &c.answer));
        r.chain(c)
    }
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
        .filter(|r| r.answer.is(201))
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
        .answers()
        .filter(|(_, a)| a.reason.contains("deadlock"))
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

/// The most stored requests of one client within a window `(t - window, t]` ending at
/// one of them, over every client: (client, count, t) when above `limit`.
fn busiest<'a>(
    stored: impl Iterator<Item = (&'a str, u64)>,
    window: u64,
    limit: usize,
) -> (usize, Option<(&'a str, usize, u64)>) {
    let mut by_client: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (client, at) in stored {
        by_client.entry(client).or_default().push(at);
    }
    let mut worst: Option<(&str, usize, u64)> = None;
    for (client, times) in &mut by_client {
        times.sort_unstable();
        for (i, &t) in times.iter().enumerate() {
            let first = times[..=i].partition_point(|&s| s + window <= t);
            let n = i + 1 - first;
            if n > limit && worst.is_none_or(|(_, m, _)| n > m) {
                worst = Some((client, n, t));
            }
        }
    }
    (by_client.len(), worst)
}

pub fn rate_limit_held(o: &Observations) -> Verdict {
    let window = o.rate_window.as_millis() as u64;
    let limit = o.rate_limit as usize;
    let registrations = o
        .accounts
        .iter()
        .map(|a| (a.client.as_str(), a.registered_at_ms));
    let claims = o
        .claim_rows
        .iter()
        .map(|c| (c.client.as_str(), c.submitted_at_ms));
    let (clients, over_r) = busiest(registrations, window, limit);
    let (claimants, over_c) = busiest(claims, window, limit);
    match over_r
        .map(|w| ("registered", "members", w))
        .or(over_c.map(|w| ("filed", "claims", w)))
    {
        Some((verb, what, (client, n, t))) => Verdict::fail(
            "rate_limit_held",
            format!("{client} {verb} {n} {what} within {window} ms up to {t} ms (limit {limit})"),
        ),
        None => Verdict::pass(
            "rate_limit_held",
            format!(
                "{clients} clients registering and {claimants} filing claims, none over \
                 {limit} of either per {window} ms"
            ),
        ),
    }
}

pub fn requests_isolated(o: &Observations) -> Verdict {
    let excused = |a: &Answer| {
        o.db_faults
            .iter()
            .any(|w| w.meets(a.start, a.end, o.excuse_after))
            || o.api_kills
                .iter()
                .any(|w| w.meets(a.start, a.end, o.kill_excuse_after))
    };
    let failed: Vec<(&str, &Answer)> = o
        .answers()
        .filter(|(_, a)| a.failed() && !excused(a))
        .collect();
    match failed.first() {
        Some((what, a)) => Verdict::fail(
            "requests_isolated",
            format!(
                "{what} failed at {} ms with {} while the database was healthy ({} such failures)",
                a.start.elapsed_since_start().as_millis(),
                match a.status {
                    Some(s) => format!("{s} {}", a.reason),
                    None => "no answer".into(),
                },
                failed.len()
            ),
        ),
        None => Verdict::pass(
            "requests_isolated",
            format!(
                "{} registrations and claims failed, all during a database fault or an instance kill",
                o.answers().filter(|(_, a)| a.failed()).count()
            ),
        ),
    }
}

pub fn claim_acknowledged_kept(o: &Observations) -> Verdict {
    let stored: BTreeMap<&str, u32> = o
        .claim_rows
        .iter()
        .map(|c| (c.reference.as_str(), c.documents))
        .collect();
    let acked: Vec<&ClaimSeen> = o.claims.iter().filter(|c| c.answer.is(201)).collect();
    let lost: Vec<(&ClaimSeen, Option<u32>)> = acked
        .iter()
        .map(|c| (*c, stored.get(c.reference.as_str()).copied()))
        .filter(|(c, kept)| *kept != Some(c.documents))
        .collect();
    match lost.first() {
        Some((c, kept)) => Verdict::fail(
            "claim_acknowledged_kept",
            format!(
                "claim {} was answered 201 with {} documents but {} ({} of {} acknowledged claims)",
                c.reference,
                c.documents,
                match kept {
                    Some(n) => format!("is stored with {n}"),
                    None => "is not stored".into(),
                },
                lost.len(),
                acked.len()
            ),
        ),
        None => Verdict::pass(
            "claim_acknowledged_kept",
            format!(
                "all {} acknowledged claims are stored with their documents",
                acked.len()
            ),
        ),
    }
}

pub fn claim_by_subscriber(o: &Observations) -> Verdict {
    if let Some(c) = o.claim_rows.iter().find(|c| !c.subscribed) {
        return Verdict::fail(
            "claim_by_subscriber",
            format!(
                "claim {} is stored for an account without a subscription",
                c.reference
            ),
        );
    }
    let registered: BTreeSet<&str> = o
        .registrations
        .iter()
        .filter(|r| r.answer.is(201))
        .map(|r| r.email.as_str())
        .collect();
    // A member told they are registered has their subscription: refusing them a claim is
    // reading something other than what was committed.
    if let Some(c) = o
        .claims
        .iter()
        .find(|c| c.answer.is(403) && registered.contains(c.member.as_str()))
    {
        return Verdict::fail(
            "claim_by_subscriber",
            format!(
                "{} was answered 201 to their registration, then refused claim {} for having no subscription",
                c.member, c.reference
            ),
        );
    }
    Verdict::pass(
        "claim_by_subscriber",
        format!(
            "all {} stored claims belong to subscribers; {} claims refused, none of a registered member",
            o.claim_rows.len(),
            o.claims.iter().filter(|c| c.answer.is(403)).count()
        ),
    )
}

pub fn claim_receipt_sent(o: &Observations) -> Verdict {
    let missing: Vec<&ClaimRow> = o
        .claim_rows
        .iter()
        .filter(|c| o.receipts_delivered.get(&c.reference).copied().unwrap_or(0) == 0)
        .collect();
    match missing.first() {
        Some(c) => Verdict::fail(
            "claim_receipt_sent",
            format!(
                "claim {} is stored but its receipt never went out ({} of {} claims)",
                c.reference,
                missing.len(),
                o.claim_rows.len()
            ),
        ),
        None => Verdict::pass(
            "claim_receipt_sent",
            format!(
                "all {} stored claims' receipts went out",
                o.claim_rows.len()
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
        requests_isolated(o),
        claim_acknowledged_kept(o),
        claim_by_subscriber(o),
        claim_receipt_sent(o),
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

    fn answer(start: u64, status: Option<u16>, reason: &str) -> Answer {
        Answer {
            start: at_ms(start),
            end: at_ms(start + 20),
            status,
            reason: reason.into(),
        }
    }

    fn seen(email: &str, start: u64, status: Option<u16>, reason: &str) -> RegistrationSeen {
        RegistrationSeen {
            client: "agent-0".into(),
            email: email.into(),
            answer: answer(start, status, reason),
        }
    }

    fn claim_seen(member: &str, reference: &str, start: u64, status: Option<u16>) -> ClaimSeen {
        ClaimSeen {
            client: member.into(),
            member: member.into(),
            reference: reference.into(),
            documents: 2,
            answer: answer(start, status, ""),
        }
    }

    fn claim_row(reference: &str, client: &str, at: u64) -> ClaimRow {
        ClaimRow {
            reference: reference.into(),
            client: client.into(),
            submitted_at_ms: at,
            documents: 2,
            subscribed: true,
        }
    }

    /// A healthy run: two members registered, acknowledged, welcomed; one of them filed
    /// a claim, stored with its documents, its receipt sent.
    fn healthy() -> Observations {
        Observations {
            registrations: vec![
                seen("a@x", 0, Some(201), ""),
                seen("b@x", 10, Some(201), ""),
            ],
            claims: vec![claim_seen("a@x", "claim-a", 100, Some(201))],
            accounts: vec![account("a@x", "agent-0", 0), account("b@x", "agent-0", 10)],
            claim_rows: vec![claim_row("claim-a", "a@x", 100)],
            welcome_delivered: [("a@x".to_string(), 1), ("b@x".to_string(), 2)].into(),
            receipts_delivered: [("claim-a".to_string(), 1)].into(),
            excuse_after: Duration::from_secs(2),
            kill_excuse_after: Duration::from_secs(5),
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
        o.accounts.remove(1);
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
    fn six_claims_of_one_client_within_a_minute_are_caught_apart_from_registrations() {
        // Claims have their own limit: a client's 2 registrations and 5 claims are within
        // both...
        let mut o = healthy();
        for k in 1..5 {
            let reference = format!("claim-a{k}");
            o.claim_rows.push(claim_row(&reference, "a@x", 100 + k));
            o.receipts_delivered.insert(reference, 1);
        }
        assert_eq!(failing(&o), Vec::<String>::new());
        // ...a sixth claim is not.
        o.claim_rows.push(claim_row("claim-a5", "a@x", 200));
        o.receipts_delivered.insert("claim-a5".into(), 1);
        assert_eq!(failing(&o), vec!["rate_limit_held".to_string()]);
    }

    #[test]
    fn a_failure_while_the_database_is_healthy_is_caught_and_one_in_an_outage_is_not() {
        // email_in_transaction: the email outage failed a registration.
        let mut o = healthy();
        o.registrations
            .push(seen("c@x", 5_000, Some(503), "email: timed out"));
        assert_eq!(failing(&o), vec!["requests_isolated".to_string()]);
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
        assert_eq!(failing(&o), vec!["requests_isolated".to_string()]);
        // A kill of the instance excuses it the same way, for as long as the load
        // balancer may keep the restarted instance out...
        o.api_kills.push(Window {
            from: at_ms(2_100),
            to: at_ms(2_150),
        });
        assert_eq!(failing(&o), Vec::<String>::new());
        // ...and no longer.
        o.registrations.push(seen("f@x", 7_200, None, ""));
        assert_eq!(failing(&o), vec!["requests_isolated".to_string()]);
        o.registrations.pop();
        // A claim failing while all is healthy counts the same as a registration.
        o.claims
            .push(claim_seen("b@x", "claim-b", 20_000, Some(503)));
        assert_eq!(failing(&o), vec!["requests_isolated".to_string()]);
    }

    #[test]
    fn an_acknowledged_claim_lost_or_missing_documents_is_caught() {
        let mut o = healthy();
        o.claim_rows.clear();
        assert_eq!(failing(&o), vec!["claim_acknowledged_kept".to_string()]);
        // Stored, but one upload did not make it into the claim's transaction.
        let mut o = healthy();
        o.claim_rows[0].documents = 1;
        assert_eq!(failing(&o), vec!["claim_acknowledged_kept".to_string()]);
        // A claim that failed need not be stored.
        let mut o = healthy();
        o.claims.push(claim_seen("b@x", "claim-b", 100, Some(500)));
        o.db_faults.push(Window {
            from: at_ms(0),
            to: at_ms(1_000),
        });
        assert_eq!(failing(&o), Vec::<String>::new());
    }

    #[test]
    fn a_claim_without_a_subscription_or_a_registered_member_refused_is_caught() {
        // The claim path checked only that the account exists, and this one lost its
        // subscription's transaction.
        let mut o = healthy();
        o.claim_rows[0].subscribed = false;
        assert_eq!(failing(&o), vec!["claim_by_subscriber".to_string()]);
        // b was told it is registered, then refused a claim for having no subscription.
        let mut o = healthy();
        o.claims.push(claim_seen("b@x", "claim-b", 200, Some(403)));
        assert_eq!(failing(&o), vec!["claim_by_subscriber".to_string()]);
        // A member whose registration was never acknowledged may be refused.
        let mut o = healthy();
        o.claims.push(claim_seen("c@x", "claim-c", 200, Some(403)));
        assert_eq!(failing(&o), Vec::<String>::new());
    }

    #[test]
    fn a_claim_whose_receipt_never_went_out_is_caught() {
        let mut o = healthy();
        o.receipts_delivered.clear();
        assert_eq!(failing(&o), vec!["claim_receipt_sent".to_string()]);
    }
}
