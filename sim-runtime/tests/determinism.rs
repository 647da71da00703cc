//! Determinism: the same seed gives the same trace, bit for bit, in one process and
//! across processes; the determinism check catches planted non-determinism and shows
//! where the runs split; the trace of a small program is pinned by a snapshot.
//!
//! Every test here compares runs of one seed or reads a run's report, so each builds its
//! runs with `Sim::new` (or the harness) by hand.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::rc::Rc;

use serde::Serialize;
use sim_runtime::harness::Harness;
use sim_runtime::time::{sleep, Duration};
use sim_runtime::trace::{self, EventKind, TraceEvent};
use sim_runtime::{node, spawn_named, Sim, SimConfig};

/// `svc.counter`: a service's counter, as its trace reports it.
#[derive(Clone, Debug, Serialize, TraceEvent)]
#[trace_event(name = "svc.counter")]
struct Counter(u64);

/// `store.write`: a store wrote version `version` of `key`.
#[derive(Clone, Debug, PartialEq, Serialize, TraceEvent)]
#[trace_event(name = "store.write")]
struct StoreWrite {
    key: &'static str,
    version: u32,
}

/// `client.read`: a client read `key`.
#[derive(Clone, Debug, Serialize, TraceEvent)]
#[trace_event(name = "client.read")]
struct ClientRead {
    key: &'static str,
}

/// The example's program, compiled into this test too, so the in-process fingerprint
/// can be compared with the example binary's.
#[path = "../examples/fingerprint.rs"]
#[allow(dead_code)]
mod fingerprint_example;

#[test]
fn the_same_seed_gives_the_same_fingerprint_in_one_process() {
    for seed in [0, 1, 0x5eed_1234, u64::MAX] {
        let a = Sim::new(seed).run(fingerprint_example::program);
        let b = Sim::new(seed).run(fingerprint_example::program);
        assert!(a.report.is_pass(), "{}", a.report);
        assert_eq!(a.report.fingerprint, b.report.fingerprint, "seed {seed:#x}");
        assert_eq!(a.report.events, b.report.events);
        assert_eq!(a.report.steps, b.report.steps);
        assert_eq!(a.report.time, b.report.time);
        assert_eq!(a.output, b.output);
        assert_eq!(a.report.last_events, b.report.last_events);
    }
    let fingerprints: std::collections::BTreeSet<u64> = (0..16)
        .map(|s| {
            Sim::new(s)
                .run(fingerprint_example::program)
                .report
                .fingerprint
        })
        .collect();
    assert_eq!(fingerprints.len(), 16, "different seeds, different traces");
}

/// The fingerprint example binary: built by `cargo test` next to this test's binary
/// (`target/<profile>/examples/`), or built here when only this test was compiled.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in <target>/<profile>/deps");
    let name = format!("fingerprint{}", std::env::consts::EXE_SUFFIX);
    let built = profile_dir.join("examples").join(&name);
    if built.exists() {
        return built;
    }
    // `cargo test --test determinism` builds no examples: build it into a target dir of
    // its own, since the outer cargo may still hold the lock on ours.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let target = profile_dir.join("fingerprint-example-target");
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "sim-runtime",
            "--example",
            "fingerprint",
        ])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo to build the fingerprint example");
    assert!(status.success(), "building the fingerprint example failed");
    target.join("debug").join("examples").join(name)
}

fn run_example(seed: &str) -> String {
    let out = Command::new(example_binary())
        .arg(seed)
        .output()
        .expect("run the fingerprint example");
    assert!(
        out.status.success(),
        "example failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

#[test]
fn the_same_seed_gives_the_same_fingerprint_across_processes() {
    let first = run_example("0x5eed_1234");
    let second = run_example("0x5eed_1234");
    assert!(first.contains("fingerprint=0x"), "{first}");
    assert_eq!(first, second, "two processes, one seed, two traces");
    // The seed parses the same in hex and decimal, and the example runs the same program
    // as this process does.
    assert_eq!(run_example(&0x5eed_1234u64.to_string()), first);
    assert_eq!(fingerprint_example::run(0x5eed_1234), first);
    assert_ne!(run_example("0x5eed_1235"), first);
}

thread_local! {
    /// Planted non-determinism: state that survives from one run to the next.
    static LEAK: Cell<u64> = const { Cell::new(0) };
}

async fn leaky_body() {
    let n = node::node("svc").build(|| async {
        sleep(Duration::from_millis(3)).await;
    });
    let _ = n;
    sleep(Duration::from_millis(1)).await;
    trace::emit(&Counter(LEAK.with(|c| c.get())));
    LEAK.with(|c| c.set(c.get() + 1));
    sleep(Duration::from_millis(5)).await;
}

#[test]
fn the_determinism_check_catches_state_leaking_between_runs_and_shows_both_events() {
    let harness = Harness::new("sim-runtime", "leaky");
    let failure = harness
        .run_seed(0x5eed, true, &leaky_body)
        .expect_err("leaked state must be caught");
    let divergence = failure.divergence.as_ref().expect("a divergence");
    let first = divergence.first.as_ref().expect("the first run's event");
    let second = divergence.second.as_ref().expect("the second run's event");
    assert_eq!(first.name(), "svc.counter");
    assert_eq!(second.name(), "svc.counter");
    assert_eq!(first.seq, second.seq, "the runs split at the same position");
    let (a, b): (u64, u64) = (first.fields().unwrap(), second.fields().unwrap());
    assert_eq!(b, a + 1);
    let text = failure.to_string();
    assert!(text.contains("non-determinism"), "{text}");
    assert!(
        text.contains("first run:") && text.contains("second run:"),
        "{text}"
    );
    assert!(
        text.contains("SIM_SEED=0x5eed cargo test -p sim-runtime leaky"),
        "{text}"
    );

    // A deterministic body passes the same check.
    let clean = || async {
        sleep(Duration::from_millis(1)).await;
        trace::emit(&Counter(7));
    };
    let report = harness
        .run_seed(0x5eed, true, &clean)
        .expect("deterministic");
    assert!(report.is_pass());
}

#[test]
fn a_run_that_is_longer_the_second_time_is_a_divergence_too() {
    thread_local! {
        static RUNS: Cell<u32> = const { Cell::new(0) };
    }
    let body = || async {
        let run = RUNS.with(|r| {
            r.set(r.get() + 1);
            r.get()
        });
        sleep(Duration::from_millis(1)).await;
        if run > 1 {
            sleep(Duration::from_millis(1)).await;
        }
    };
    let failure = Harness::new("sim-runtime", "longer")
        .run_seed(1, true, &body)
        .expect_err("an extra timer is caught");
    let d = failure.divergence.expect("a divergence");
    assert!(d.first.is_none() || d.second.is_some());
    assert!(d.first.is_some() || d.second.is_some());
}

/// A `Write` that the test can read back after the run.
#[derive(Clone, Default)]
struct SharedBuf(Rc<RefCell<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Two nodes trade work; the trace of this program is pinned by a snapshot.
async fn small_program() {
    let store = node::node("store").build(|| async {
        for i in 0..2u32 {
            sleep(Duration::from_millis(2)).await;
            trace::emit(&StoreWrite {
                key: "k",
                version: i,
            });
        }
    });
    let _ = store;
    let client = node::node("client").build(|| async {
        spawn_named("reader", async {
            sleep(Duration::from_millis(3)).await;
            trace::emit(&ClientRead { key: "k" });
        })
        .detach();
    });
    sleep(Duration::from_millis(1)).await;
    client.pause();
    sleep(Duration::from_millis(3)).await;
    client.resume();
    sleep(Duration::from_millis(2)).await;
    store.kill();
}

#[test]
fn the_trace_of_a_small_fixed_seed_program_matches_its_snapshot() {
    let buf = SharedBuf::default();
    let result = Sim::new(0x5eed).trace_jsonl(buf.clone()).run(small_program);
    assert!(result.report.is_pass(), "{}", result.report);
    let lines: Vec<String> = result
        .report
        .last_events
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(result.report.events < 64, "the whole trace fits the tail");
    insta::assert_snapshot!(
        "small_program_trace",
        format!(
            "fingerprint {:#018x}\n{}",
            result.report.fingerprint,
            lines.join("\n")
        )
    );
    // JSON lines carry the same events, one object per line.
    let jsonl = String::from_utf8(buf.0.borrow().clone()).unwrap();
    let objects: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(objects.len() as u64, result.report.events);
    assert_eq!(objects[0]["event"], "task.spawn");
    let write = objects
        .iter()
        .find(|o| o["event"] == "store.write")
        .expect("custom event in the JSON lines");
    assert_eq!(write["fields"]["key"], "k");
    assert_eq!(write["t_ns"], 2_000_000);
}

#[test]
fn captures_collect_matching_events_with_time_node_and_fields() {
    let result = Sim::new(3).run(|| async {
        let writes = trace::capture::<StoreWrite>();
        let by_name = trace::capture_prefix("store.");
        let everything = trace::capture_prefix("");
        small_program().await;
        (writes.to_vec(), by_name.snapshot(), everything.len())
    });
    let (writes, by_name, all) = result.output.unwrap();
    let values: Vec<&StoreWrite> = writes.iter().map(|c| &c.event).collect();
    assert_eq!(
        values,
        [
            &StoreWrite {
                key: "k",
                version: 0
            },
            &StoreWrite {
                key: "k",
                version: 1
            }
        ]
    );
    assert_eq!(writes[1].time.as_nanos(), 4_000_000);
    assert_eq!(
        writes[1].node,
        node::NodeId(1),
        "the store, the first node built"
    );
    // The by-name capture has the same events, whole, their fields as JSON.
    assert_eq!(by_name.len(), 2);
    assert!(by_name.iter().all(|e| e.name() == "store.write"));
    assert_eq!(
        by_name.iter().map(|e| e.seq).collect::<Vec<_>>(),
        writes.iter().map(|c| c.seq).collect::<Vec<_>>()
    );
    let v: serde_json::Value = by_name[1].fields().unwrap();
    assert_eq!(v, serde_json::json!({ "key": "k", "version": 1 }));
    assert_eq!(
        by_name[0].kind,
        EventKind::Custom {
            name: "store.write"
        }
    );
    assert!(all as u64 > 2 && (all as u64) < result.report.events);
    // Outside a simulation, emitting is a no-op rather than a panic.
    trace::emit(&Counter(1));
}

#[test]
fn a_capture_of_step_events_sees_every_kind_while_other_captures_do_not_disturb_them() {
    // Step events take a fast path unless a capture could want them: a capture of
    // "store." must not hide them from a capture of "task." or "timer." taken later.
    // A short ring: the fast path is taken once the ring is full.
    let config = || SimConfig {
        tail_events: 4,
        ..SimConfig::default()
    };
    let result = Sim::new(3).config(config()).run(|| async {
        let _writes = trace::capture_prefix("store.");
        let tasks = trace::capture_prefix("task.");
        let timers = trace::capture_prefix("timer.");
        small_program().await;
        let names: std::collections::BTreeSet<String> = tasks
            .snapshot()
            .iter()
            .chain(timers.snapshot().iter())
            .map(|e| e.name().to_string())
            .collect();
        names
    });
    let names = result.output.unwrap();
    for kind in ["task.spawn", "task.poll", "task.complete", "timer.fire"] {
        assert!(names.contains(kind), "{kind} missing from {names:?}");
    }
    // And the fingerprint does not depend on who listens.
    let quiet = Sim::new(3)
        .config(config())
        .run(|| async { small_program().await });
    assert_eq!(quiet.report.fingerprint, result.report.fingerprint);
}

/// A `tracing` writer the test reads back (`tracing` needs `Send` writers).
#[derive(Clone, Default)]
struct LogBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for LogBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn log_lines_are_stamped_with_virtual_time_node_and_task() {
    let buf = LogBuf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_timer(sim_runtime::log::SimStamp)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_target(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("before any simulation");
        let result = Sim::new(1).run(|| async {
            let api = node::node("api").build(|| async {
                sleep(Duration::from_millis(5)).await;
                tracing::warn!(order = 17, "payment declined");
            });
            let _ = api;
            sleep(Duration::from_millis(10)).await;
            tracing::info!("main done");
        });
        assert!(result.report.is_pass());
    });
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("[-]"), "{text}");
    assert!(lines[1].starts_with("[0.005000s api t1]"), "{text}");
    assert!(lines[1].contains("payment declined") && lines[1].contains("order=17"));
    assert!(lines[2].starts_with("[0.010000s main t0]"), "{text}");
}

#[test]
fn the_fingerprint_does_not_depend_on_how_the_trace_is_observed() {
    let run = |tail_events: usize, capture: bool| {
        let config = sim_runtime::SimConfig {
            tail_events,
            ..Default::default()
        };
        let result = Sim::new(0x0b5e).config(config).run(move || async move {
            let _log = capture.then(|| trace::capture_prefix(""));
            fingerprint_example::program().await
        });
        assert!(result.report.is_pass());
        (result.report.fingerprint, result.report.events)
    };
    let reference = run(64, false);
    for tail in [0, 1, 7, 64, 1 << 20] {
        assert_eq!(run(tail, false), reference, "tail of {tail} events");
        assert_eq!(
            run(tail, true),
            reference,
            "tail of {tail} events, captured"
        );
    }
    // The tail holds the last events, oldest first, numbered by their position.
    let config = sim_runtime::SimConfig {
        tail_events: 7,
        ..Default::default()
    };
    let result = Sim::new(0x0b5e)
        .config(config)
        .run(fingerprint_example::program);
    let seqs: Vec<u64> = result.report.last_events.iter().map(|e| e.seq).collect();
    let n = result.report.events;
    assert_eq!(seqs, (n - 7..n).collect::<Vec<_>>());
}
