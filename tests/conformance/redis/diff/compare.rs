//! When two replies count as the same: equal as values (type and content; errors by their
//! whole text, prefix included), except where Redis leaves something unspecified or the
//! clocks differ:
//! - SMEMBERS, SINTER, SUNION and KEYS: Redis' order is its hash table's, so members
//!   compare as sorted lists;
//! - TTL within 1 s and PTTL within 1,000 ms: the model's virtual clock and the real one
//!   advance differently during a sequence (the generator keeps every TTL far above that).
//! - DBSIZE: the model's count may be lower. Redis counts a key whose TTL has passed until
//!   an access or its active expiry cycle (sampling, ten times a second) reclaims it;
//!   the model reclaims every such key before the next command (a documented difference,
//!   see the kv module's docs).
//!
//! - SPOP and SRANDMEMBER: the members are random on both sides, so the replies compare by
//!   shape (nil or not, how many, distinct when the count is not negative) and each
//!   member must be in the set as that side's `SMEMBERS` just before showed it.
//! - XADD with `*`: both IDs are `<ms>-<seq>` (the clocks differ).
//! - SCAN, HSCAN, SSCAN, ZSCAN: each side has iterated to cursor 0 (`scan_to_end`); the
//!   union of what came back compares as a set (of pairs for HSCAN and ZSCAN). Where one
//!   call returns what is the model's business, as it is Redis'.
//! - XPENDING's extended form: idle times within 1,000 ms.
//! - PUBSUB CHANNELS: as a set.
//!
//! Inside EXEC, each element compares by the rule of the command it answers.
//!
//! A difference the kv module documents (the model refusing to split a UTF-8 character)
//! is counted apart, not as a divergence.

use sim_models::kv::Reply;

/// The indexes of the commands whose replies differ, and of those whose difference is a
/// documented one. MULTI state is followed on the real server's replies, to know which
/// command each EXEC element answers.
pub fn differing(
    argvs: &[Vec<String>],
    model: &[Reply],
    real: &[Reply],
) -> (Vec<usize>, Vec<usize>) {
    let mut queued: Option<Vec<&[String]>> = None;
    let mut out = Vec::new();
    let mut documented = Vec::new();
    for (i, argv) in argvs.iter().enumerate() {
        let name = argv[0].to_ascii_uppercase();
        let (m, r) = (&model[i], &real[i]);
        let same = match (name.as_str(), queued.as_mut()) {
            ("EXEC", Some(q)) => exec_same(q, m, r),
            ("MULTI", None) => {
                if *r == Reply::ok() {
                    queued = Some(Vec::new());
                }
                m == r
            }
            (_, Some(q)) => {
                if *r == Reply::queued() {
                    q.push(argv);
                }
                m == r
            }
            ("SPOP" | "SRANDMEMBER", None) => {
                // The set as each side showed it just before, when it did.
                let before = i
                    .checked_sub(1)
                    .filter(|&j| {
                        argvs[j][0].eq_ignore_ascii_case("SMEMBERS")
                            && argvs[j].get(1) == argv.get(1)
                    })
                    .map(|j| (&model[j], &real[j]));
                random_same(argv, m, r, before)
            }
            _ => same_reply(argv, m, r),
        };
        if matches!(name.as_str(), "EXEC" | "DISCARD") && queued.is_some() {
            queued = None;
        }
        if !same {
            if is_documented(m) {
                documented.push(i);
            } else {
                out.push(i);
            }
        }
    }
    (out, documented)
}

/// The model's refusals that the kv module documents as deliberate differences.
pub fn is_documented(m: &Reply) -> bool {
    matches!(m, Reply::Error(e) if e == sim_models::kv::errors::NOT_UTF8)
}

/// SPOP/SRANDMEMBER: same shape, members drawn from each side's own set.
fn random_same(argv: &[String], m: &Reply, r: &Reply, before: Option<(&Reply, &Reply)>) -> bool {
    let count: Option<i64> = argv.get(2).and_then(|c| c.parse().ok());
    let within = |reply: &Reply, set: Option<&Reply>| -> bool {
        let Some(Reply::Array(set)) = set else {
            return true;
        };
        let members: Vec<&Reply> = match reply {
            Reply::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        members.iter().all(|x| set.contains(x))
    };
    let distinct = |reply: &Reply| match reply {
        Reply::Array(items) => {
            let mut v: Vec<String> = items.iter().map(|r| r.to_string()).collect();
            v.sort();
            v.dedup();
            v.len() == items.len()
        }
        _ => true,
    };
    let shape = match (m, r) {
        (Reply::Error(a), Reply::Error(b)) => return a == b,
        (Reply::Nil, Reply::Nil) => return true,
        (Reply::Bulk(_), Reply::Bulk(_)) => true,
        (Reply::Array(a), Reply::Array(b)) => {
            a.len() == b.len() && (count.is_some_and(|c| c < 0) || (distinct(m) && distinct(r)))
        }
        _ => false,
    };
    shape && within(m, before.map(|(bm, _)| bm)) && within(r, before.map(|(_, br)| br))
}

fn exec_same(queued: &[&[String]], m: &Reply, r: &Reply) -> bool {
    match (m, r) {
        (Reply::Array(ms), Reply::Array(rs))
            if ms.len() == rs.len() && rs.len() == queued.len() =>
        {
            queued
                .iter()
                .zip(ms.iter().zip(rs))
                .all(|(argv, (m, r))| same_reply(argv, m, r))
        }
        _ => m == r,
    }
}

/// Whether `m` (the model's) and `r` (Redis') are the same reply to `argv`.
pub fn same_reply(argv: &[String], m: &Reply, r: &Reply) -> bool {
    let name = argv[0].to_ascii_uppercase();
    match (name.as_str(), m, r) {
        ("SMEMBERS" | "SINTER" | "SUNION" | "KEYS", Reply::Array(a), Reply::Array(b)) => {
            sorted(a) == sorted(b)
        }
        ("PUBSUB", Reply::Array(a), Reply::Array(b))
            if argv.get(1).is_some_and(|s| s.eq_ignore_ascii_case("channels")) =>
        {
            sorted(a) == sorted(b)
        }
        ("SCAN" | "HSCAN" | "SSCAN" | "ZSCAN", Reply::Array(a), Reply::Array(b)) => {
            match (a.as_slice(), b.as_slice()) {
                ([ca, Reply::Array(ia)], [cb, Reply::Array(ib)]) => {
                    let pairs = matches!(name.as_str(), "HSCAN" | "ZSCAN");
                    ca == cb && scanned(ia, pairs) == scanned(ib, pairs)
                }
                _ => m == r,
            }
        }
        ("XADD", Reply::Bulk(a), Reply::Bulk(b)) if argv.iter().any(|x| x == "*") => {
            stream_id(a) && stream_id(b)
        }
        ("XPENDING", Reply::Array(a), Reply::Array(b)) if argv.len() > 3 => {
            a.len() == b.len()
                && a.iter().zip(b).all(|(x, y)| match (x, y) {
                    (Reply::Array(x), Reply::Array(y)) if x.len() == 4 && y.len() == 4 => {
                        x[..2] == y[..2]
                            && x[3] == y[3]
                            && matches!((&x[2], &y[2]), (Reply::Int(p), Reply::Int(q)) if p.abs_diff(*q) <= 1000)
                    }
                    _ => x == y,
                })
        }
        ("TTL", Reply::Int(a), Reply::Int(b)) if *a >= 0 && *b >= 0 => a.abs_diff(*b) <= 1,
        ("PTTL", Reply::Int(a), Reply::Int(b)) if *a >= 0 && *b >= 0 => a.abs_diff(*b) <= 1000,
        ("DBSIZE", Reply::Int(a), Reply::Int(b)) => a <= b,
        _ => m == r,
    }
}

/// What a whole SCAN iteration returned, as a set (of pairs for HSCAN and ZSCAN).
fn scanned(items: &[Reply], pairs: bool) -> Vec<String> {
    let mut v: Vec<String> = if pairs {
        items
            .chunks(2)
            .map(|c| {
                c.iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    } else {
        items.iter().map(|r| r.to_string()).collect()
    };
    v.sort();
    v.dedup();
    v
}

fn stream_id(s: &str) -> bool {
    s.split_once('-').is_some_and(|(ms, seq)| {
        !ms.is_empty()
            && !seq.is_empty()
            && ms.bytes().all(|c| c.is_ascii_digit())
            && seq.bytes().all(|c| c.is_ascii_digit())
    })
}

fn sorted(items: &[Reply]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|r| r.to_string()).collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn ttls_within_the_tolerance_are_the_same_and_beyond_it_are_not() {
        assert!(same_reply(
            &argv("TTL a"),
            &Reply::Int(100),
            &Reply::Int(99)
        ));
        assert!(!same_reply(
            &argv("TTL a"),
            &Reply::Int(100),
            &Reply::Int(97)
        ));
        assert!(!same_reply(&argv("TTL a"), &Reply::Int(-1), &Reply::Int(0)));
        assert!(same_reply(
            &argv("PTTL a"),
            &Reply::Int(100_000),
            &Reply::Int(99_990)
        ));
        assert!(!same_reply(
            &argv("PTTL a"),
            &Reply::Int(100_000),
            &Reply::Int(90_000)
        ));
    }

    #[test]
    fn dbsize_may_be_lower_on_the_model_but_never_higher() {
        assert!(same_reply(&argv("DBSIZE"), &Reply::Int(0), &Reply::Int(1)));
        assert!(!same_reply(&argv("DBSIZE"), &Reply::Int(2), &Reply::Int(1)));
    }

    #[test]
    fn smembers_ignores_order_but_not_content_and_other_arrays_keep_order() {
        let ab = Reply::bulks(["a".into(), "b".into()]);
        let ba = Reply::bulks(["b".into(), "a".into()]);
        let ac = Reply::bulks(["a".into(), "c".into()]);
        assert!(same_reply(&argv("SMEMBERS s"), &ab, &ba));
        assert!(!same_reply(&argv("SMEMBERS s"), &ab, &ac));
        assert!(!same_reply(&argv("LRANGE l 0 -1"), &ab, &ba));
    }

    #[test]
    fn exec_elements_compare_by_their_own_commands() {
        let argvs = vec![
            argv("MULTI"),
            argv("SMEMBERS s"),
            argv("GET a"),
            argv("EXEC"),
        ];
        let queued = [Reply::ok(), Reply::queued(), Reply::queued()];
        let exec = |members: [&str; 2], get: &str| {
            Reply::Array(vec![
                Reply::bulks(members.map(String::from)),
                Reply::bulk(get),
            ])
        };
        let mut model = queued.to_vec();
        model.push(exec(["a", "b"], "1"));
        let mut real = queued.to_vec();
        real.push(exec(["b", "a"], "1"));
        assert_eq!(differing(&argvs, &model, &real).0, Vec::<usize>::new());
        real[3] = exec(["b", "a"], "2");
        assert_eq!(differing(&argvs, &model, &real).0, vec![3]);
    }
}
