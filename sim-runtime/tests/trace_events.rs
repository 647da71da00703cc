//! Typed trace events: emitting, capturing, rendering, and what the fingerprint sees.

use std::io::Write;

use serde::{Deserialize, Serialize};
use sim_runtime::time::{sleep, Duration};
use sim_runtime::trace::{self, TraceEvent};
use sim_runtime::{node, Sim};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TraceEvent)]
#[trace_event(name = "test.deposit")]
struct Deposit {
    account: u32,
    amount: i64,
    memo: String,
}

/// An event that borrows what it reports, as hot paths do, with an owned twin for
/// captures.
#[derive(Serialize)]
struct Lookup<'a> {
    key: &'a str,
    hit: bool,
}

#[derive(Clone, Debug, PartialEq)]
struct LookupOwned {
    key: String,
    hit: bool,
}

impl TraceEvent for Lookup<'_> {
    const NAME: &'static str = "test.lookup";
    type Owned = LookupOwned;
    fn to_owned_event(&self) -> LookupOwned {
        LookupOwned {
            key: self.key.to_string(),
            hit: self.hit,
        }
    }
}

/// A program that emits both kinds from two nodes, over virtual time.
async fn bank(amounts: [i64; 3]) {
    let teller = node::node("teller").build(move || async move {
        for (i, amount) in amounts.into_iter().enumerate() {
            sleep(Duration::from_millis(10)).await;
            trace::emit(&Deposit {
                account: i as u32,
                amount,
                memo: format!("deposit \"{i}\""),
            });
        }
    });
    let key = String::from("balance:7");
    for hit in [false, true] {
        sleep(Duration::from_millis(15)).await;
        trace::emit(&Lookup { key: &key, hit });
    }
    sleep(Duration::from_millis(30)).await;
    let _ = teller;
}

#[sim_runtime::test(seeds = 4)]
async fn a_capture_keeps_typed_copies_with_their_time_and_node() {
    let deposits = trace::capture::<Deposit>();
    let lookups = trace::capture::<Lookup<'_>>();
    bank([5, -2, 9]).await;
    let deposits = deposits.to_vec();
    assert_eq!(deposits.len(), 3);
    assert_eq!(
        deposits.iter().map(|d| d.event.amount).collect::<Vec<_>>(),
        [5, -2, 9]
    );
    assert_eq!(deposits[1].event.memo, "deposit \"1\"");
    let teller = node::lookup("teller").expect("teller node");
    assert!(deposits.iter().all(|d| d.node == teller));
    assert_eq!(deposits[0].time.as_nanos(), 10_000_000);
    assert!(deposits.windows(2).all(|w| w[0].seq < w[1].seq));
    let lookups = lookups.values();
    assert_eq!(
        lookups,
        vec![
            LookupOwned {
                key: "balance:7".into(),
                hit: false
            },
            LookupOwned {
                key: "balance:7".into(),
                hit: true
            }
        ]
    );
}

#[sim_runtime::test]
async fn a_capture_sees_only_events_after_it_starts_and_take_empties_it() {
    trace::emit(&Deposit {
        account: 0,
        amount: 1,
        memo: String::new(),
    });
    let deposits = trace::capture::<Deposit>();
    assert!(deposits.is_empty());
    trace::emit(&Deposit {
        account: 1,
        amount: 2,
        memo: String::new(),
    });
    assert_eq!(deposits.take().len(), 1);
    assert!(deposits.is_empty());
}

#[test]
fn the_same_seed_gives_the_same_fingerprint_and_a_different_field_another() {
    let run = |amounts| Sim::new(11).run(move || bank(amounts)).report;
    let (a, b) = (run([5, -2, 9]), run([5, -2, 9]));
    assert!(a.is_pass(), "{a}");
    assert_eq!(a.fingerprint, b.fingerprint);
    assert_eq!(a.events, b.events);
    // One field of one event differs: the fingerprint must see it.
    let c = run([5, -3, 9]);
    assert_eq!(a.events, c.events);
    assert_ne!(a.fingerprint, c.fingerprint);
}

/// A `Write` that keeps what it is given, shared with the test.
#[derive(Clone, Default)]
struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn json_lines_render_typed_events_as_serde_json_would() {
    let out = Shared::default();
    let result = Sim::new(3).trace_jsonl(out.clone()).run(|| bank([1, 2, 3]));
    assert!(result.report.is_pass());
    assert!(result.trace_error.is_none());
    let text = String::from_utf8(out.0.borrow().clone()).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(events.len() as u64, result.report.events);
    let deposit = events
        .iter()
        .find(|e| e["event"] == "test.deposit")
        .expect("a deposit");
    assert_eq!(
        deposit["fields"],
        serde_json::to_value(Deposit {
            account: 0,
            amount: 1,
            memo: "deposit \"0\"".into()
        })
        .unwrap()
    );
    let lookup = events.iter().find(|e| e["event"] == "test.lookup").unwrap();
    assert_eq!(
        lookup["fields"],
        serde_json::json!({"key": "balance:7", "hit": false})
    );
}

/// A `Write` that always fails, as a full disk does.
struct Full;

impl Write for Full {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "no space left on device",
        ))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_trace_output_is_reported_and_leaves_the_run_unchanged() {
    let plain = Sim::new(5).run(|| bank([1, 2, 3]));
    let failing = Sim::new(5).trace_jsonl(Full).run(|| bank([1, 2, 3]));
    let error = failing.trace_error.expect("the write error is kept");
    assert_eq!(error.kind(), std::io::ErrorKind::StorageFull);
    assert_eq!(plain.report.fingerprint, failing.report.fingerprint);
}

#[test]
fn a_failure_tail_shows_typed_events_as_json() {
    let result = Sim::new(9).run(|| async {
        trace::emit(&Deposit {
            account: 4,
            amount: 40,
            memo: "last".to_string(),
        });
        panic!("planted");
    });
    assert!(!result.report.is_pass());
    let last = result
        .report
        .last_events
        .iter()
        .rev()
        .find(|e| e.name() == "test.deposit")
        .expect("the deposit is in the tail");
    assert_eq!(last.fields::<Deposit>().unwrap().amount, 40);
    assert!(last.to_string().contains(r#""memo":"last""#), "{last}");
}
