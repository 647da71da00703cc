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
//! Inside EXEC, each element compares by the rule of the command it answers.

use sim_models::kv::Reply;

/// The indexes of the commands whose replies differ. MULTI state is followed on the real
/// server's replies, to know which command each EXEC element answers.
pub fn differing(argvs: &[Vec<String>], model: &[Reply], real: &[Reply]) -> Vec<usize> {
    let mut queued: Option<Vec<&[String]>> = None;
    let mut out = Vec::new();
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
            _ => same_reply(argv, m, r),
        };
        if matches!(name.as_str(), "EXEC" | "DISCARD") && queued.is_some() {
            queued = None;
        }
        if !same {
            out.push(i);
        }
    }
    out
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
        ("TTL", Reply::Int(a), Reply::Int(b)) if *a >= 0 && *b >= 0 => a.abs_diff(*b) <= 1,
        ("PTTL", Reply::Int(a), Reply::Int(b)) if *a >= 0 && *b >= 0 => a.abs_diff(*b) <= 1000,
        ("DBSIZE", Reply::Int(a), Reply::Int(b)) => a <= b,
        _ => m == r,
    }
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
        assert_eq!(differing(&argvs, &model, &real), Vec::<usize>::new());
        real[3] = exec(["b", "a"], "2");
        assert_eq!(differing(&argvs, &model, &real), vec![3]);
    }
}
