//! How fast the linearizability checker decides a large history: 100,000 operations
//! (reads, writes, increments) from 10 concurrent clients over 1,000 keys, linearizable by
//! construction (each operation takes effect at a drawn instant inside its call and
//! answer), plus the same history with one stale read planted, which it must reject.
//!
//! Run with `cargo bench -p sim-models --bench linearizable_bench`. With
//! `LIN_HISTORY_OUT=<dir>` it also writes both histories (`linearizable.jsonl`,
//! `planted.jsonl`: one operation a line) and its own times (`ours.txt`) there, for
//! `tests/peer-bench/porcupine/run.sh` to give Porcupine the very same histories.

use sim_models::check::linearizable::{self, Call, History, Op, Outcome};
use sim_runtime::time::{Duration, Instant};
use sim_runtime::SimRng;

const OPS: usize = 100_000;
const CLIENTS: u32 = 10;
const KEYS: u64 = 1_000;

/// Each client runs its operations one after another, each 50 to 500 µs long with a
/// 0 to 100 µs pause between; every operation takes effect at a drawn instant of its span
/// and its result is computed from the registers in that order.
fn history(seed: u64) -> History {
    let mut rng = SimRng::new(seed);
    let mut spans = Vec::with_capacity(OPS);
    let mut clock = vec![0u64; CLIENTS as usize];
    for i in 0..OPS {
        let client = (i % CLIENTS as usize) as u32;
        let start = clock[client as usize] + rng.below(100_000);
        let end = start + 50_000 + rng.below(450_000);
        let effect = start + rng.below(end - start + 1);
        clock[client as usize] = end;
        let key = format!("key:{}", rng.below(KEYS));
        let call = match rng.below(10) {
            0..=4 => Call::Read,
            5..=8 => Call::Write(Some(format!("v{i}"))),
            _ => Call::Add(1),
        };
        spans.push((effect, client, key, call, start, end));
    }
    spans.sort_by_key(|s| s.0);
    let mut registers: std::collections::BTreeMap<String, Option<String>> = Default::default();
    let mut ops = Vec::with_capacity(OPS);
    for (_, client, key, call, start, end) in spans {
        let value = registers.entry(key.clone()).or_default();
        let outcome = match &call {
            Call::Read => Outcome::Read(value.clone()),
            Call::Write(v) => {
                value.clone_from(v);
                Outcome::Written
            }
            Call::Add(d) => match value.as_deref().map_or(Some(0), |s| s.parse::<i64>().ok()) {
                Some(n) => {
                    *value = Some((n + d).to_string());
                    Outcome::Added(n + d)
                }
                // Redis refuses to increment text: an error reply, which changes nothing.
                None => Outcome::Failed,
            },
        };
        ops.push(Op {
            client,
            key,
            call,
            invoked: Instant::START + Duration::from_nanos(start),
            completed: Instant::START + Duration::from_nanos(end),
            outcome,
        });
    }
    History { ops }
}

// The one place wall-clock time is allowed: measuring how fast the checker runs.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
fn main() {
    let good = history(42);
    let keys = {
        let mut k: Vec<&str> = good.ops.iter().map(|o| o.key.as_str()).collect();
        k.sort_unstable();
        k.dedup();
        k.len()
    };
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = std::time::Instant::now();
        let verdict = linearizable::check(&good);
        times.push(start.elapsed().as_secs_f64());
        assert!(verdict.is_ok(), "{}", verdict.unwrap_err());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "linearizable: {} ops from {CLIENTS} clients over {keys} keys checked in {:.1} ms \
         (median of 5; best {:.1} ms), {:.2} µs per operation",
        good.len(),
        median * 1e3,
        times[0] * 1e3,
        median * 1e6 / good.len() as f64
    );
    // A stale read planted after the last write of some key, of the write before it: the
    // checker must say no.
    let mut bad = good.clone();
    let last_write = bad
        .ops
        .iter()
        .rposition(|o| matches!(o.call, Call::Write(Some(_))))
        .expect("writes");
    let key = bad.ops[last_write].key.clone();
    let earlier = bad.ops[..last_write]
        .iter()
        .rev()
        .find_map(|o| match &o.call {
            Call::Write(v) if o.key == key && v.is_some() => Some(v.clone()),
            _ => None,
        })
        .unwrap_or(None);
    let mut stale = bad.ops[last_write].clone();
    stale.call = Call::Read;
    stale.outcome = Outcome::Read(earlier);
    stale.invoked = stale.completed + Duration::from_millis(1);
    stale.completed = stale.invoked + Duration::from_millis(1);
    bad.ops.push(stale);
    let mut bad_times = Vec::new();
    let mut violation = None;
    for _ in 0..5 {
        let start = std::time::Instant::now();
        let verdict = linearizable::check(&bad);
        bad_times.push(start.elapsed().as_secs_f64());
        violation = Some(verdict.expect_err("a planted stale read"));
    }
    let v = violation.expect("five runs");
    bad_times.sort_by(f64::total_cmp);
    println!(
        "linearizable: the same history with one stale read rejected in {:.1} ms \
         (median of 5; best {:.1} ms), witness of {} operations",
        bad_times[bad_times.len() / 2] * 1e3,
        bad_times[0] * 1e3,
        v.witness.len()
    );
    if let Some(dir) = std::env::var_os("LIN_HISTORY_OUT") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("LIN_HISTORY_OUT");
        write_history(&dir.join("linearizable.jsonl"), &good);
        write_history(&dir.join("planted.jsonl"), &bad);
        // One line per history: name, verdict, median and best in ns, then every run's ns.
        let line = |name: &str, verdict: &str, t: &[f64]| {
            let ns: Vec<String> = t.iter().map(|s| format!("{:.0}", s * 1e9)).collect();
            format!(
                "{name} {verdict} {:.0} {:.0} {}\n",
                t[t.len() / 2] * 1e9,
                t[0] * 1e9,
                ns.join(",")
            )
        };
        let text = line("linearizable", "ok", &times)
            + &line("planted", &format!("illegal:{}", v.key), &bad_times);
        std::fs::write(dir.join("ours.txt"), text).expect("ours.txt");
        println!(
            "linearizable: both histories and these times written to {}",
            dir.display()
        );
    }
    println!(
        "Porcupine (Go) on these very histories: tests/peer-bench/porcupine/run.sh \
         (README.md, \"Linearizability of kv histories\", has the figures)."
    );
}

/// One operation a line, as JSON: `client`, `key`, `call` (`read`, `write`, `add`), `arg`
/// (a write's value or null for a delete; an add's delta), `invoked` and `completed` (ns
/// of virtual time), `outcome` (`read`, `written`, `added`, `failed`, `unknown`) and
/// `result` (a read's value or null for absent; an add's result).
fn write_history(path: &std::path::Path, history: &History) {
    use serde_json::{json, Value};
    let mut text = String::new();
    for op in &history.ops {
        let (call, arg) = match &op.call {
            Call::Read => ("read", Value::Null),
            Call::Write(v) => ("write", json!(v)),
            Call::Add(d) => ("add", json!(d)),
        };
        let (outcome, result) = match &op.outcome {
            Outcome::Read(v) => ("read", json!(v)),
            Outcome::Written => ("written", Value::Null),
            Outcome::Added(n) => ("added", json!(n)),
            Outcome::Failed => ("failed", Value::Null),
            Outcome::Unknown => ("unknown", Value::Null),
        };
        let line = json!({
            "client": op.client,
            "key": op.key,
            "call": call,
            "arg": arg,
            "invoked": op.invoked.as_nanos(),
            "completed": op.completed.as_nanos(),
            "outcome": outcome,
            "result": result,
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    std::fs::write(path, text).expect("history file");
}
