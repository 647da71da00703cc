//! The documented differences between the model and PostgreSQL 15 (the list in the sql
//! module's docs, `sim_models::sql`): a first difference that matches one of these is
//! counted apart, not as a divergence. Each entry is narrow: the construct and both
//! sides' answers.

use super::case::StepTrace;
use super::outcome::Answer;

/// Why the model answers `model` where PostgreSQL answered `real` to `sql`, if that is a
/// documented difference.
pub fn classify(sql: &str, model: &Answer, real: &Answer) -> Option<&'static str> {
    let upper = sql.to_ascii_uppercase();
    match (model.sqlstate(), real.sqlstate()) {
        // A refusal names the construct; the generators mostly avoid refused ones.
        (Some("0A000"), _) => Some("refused with 0A000 (feature_not_supported)"),
        // A serializable INSERT of a key a concurrent transaction inserted: PostgreSQL's
        // check before 23505 meets only SIREAD locks on the index's page, the model's also
        // relation locks (a sequential scan's, or the stand-in for another index's page).
        (Some("40001"), Some("23505")) if upper.starts_with("INSERT") => {
            Some("serializable duplicate key: 40001 where PostgreSQL answers 23505")
        }
        // DDL runs only outside a transaction block in the model.
        (Some("25001"), _) if upper.starts_with("CREATE") => {
            Some("DDL inside a transaction block is refused (25001)")
        }
        (None, Some("42883")) => {
            Some("operand types are checked per row, not when planning (42883)")
        }
        // An UPDATE of a unique column over several rows checks each new key as it goes:
        // the model visits rows in key order, PostgreSQL in heap order, so a key moved
        // onto another row's before that row moved on is a duplicate on one side only.
        (Some("23505"), None) | (None, Some("23505")) if upper.starts_with("UPDATE") => {
            Some("an UPDATE visits rows in key order, not heap order (23505)")
        }
        _ => None,
    }
}

/// Whether the model woke the sessions waiting for a transaction in another order than
/// PostgreSQL did when `sql` (its COMMIT or ROLLBACK) ended it: the same sessions, all
/// waiting before the step (`waiting_before`), either finished or wait again on both
/// sides. The model re-runs them in the order they began to wait; PostgreSQL wakes them
/// at once and the operating system's scheduling picks the winner (the sql module's
/// docs, "Several sessions waiting for one transaction"). The winner's work can change
/// what the others do: a row it updated makes an INSERT of the same key wait for it
/// again where, woken first, the INSERT met the committed row and failed with 23505
/// (interleaving seed 1, index 143, seen once in several runs of the same case), so how
/// many finish may differ too.
pub fn classify_wakes(
    sql: &str,
    waiting_before: &[usize],
    model: &StepTrace,
    real: &StepTrace,
) -> Option<&'static str> {
    let upper = sql.to_ascii_uppercase();
    if !(upper.starts_with("COMMIT") || upper.starts_with("ROLLBACK")) || waiting_before.len() < 2 {
        return None;
    }
    let involved = |t: &StepTrace| {
        let mut s: Vec<usize> = t
            .finished
            .iter()
            .map(|(s, _, _)| *s)
            .filter(|s| waiting_before.contains(s))
            .chain(t.waiting.iter().copied())
            .collect();
        s.sort_unstable();
        s
    };
    let waiters_only = |t: &StepTrace| t.waiting.iter().all(|s| waiting_before.contains(s));
    (waiters_only(model) && waiters_only(real) && involved(model) == involved(real))
        .then_some("waiters of one transaction woken in another order")
}
