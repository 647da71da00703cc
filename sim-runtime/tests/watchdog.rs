//! The busy-loop watchdog: a task that loops without awaiting cannot be stopped from
//! inside the simulation, so the process ends with a report naming the seed, the virtual
//! time and the task. Each case runs in a child process (this test binary, re-run on one
//! test), since the watchdog ends the process it watches.

use std::process::Command;

use sim_runtime::time::{sleep, Duration};
use sim_runtime::{Sim, SimConfig};

/// Set in the child: run the stuck simulation instead of watching it.
const CHILD: &str = "SIM_WATCHDOG_TEST_CHILD";

fn watched(limit_ms: u64) -> Sim {
    Sim::new(0x5eed_b05e).config(SimConfig {
        busy_loop_limit: Some(Duration::from_millis(limit_ms)),
        ..SimConfig::default()
    })
}

/// Runs `test` of this binary in a child process; returns its exit code and stderr.
fn in_child(test: &str) -> (Option<i32>, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_task_that_never_awaits_is_reported_with_its_seed_time_and_name() {
    if std::env::var_os(CHILD).is_some() {
        watched(300).run(|| async {
            sleep(Duration::from_millis(1500)).await;
            let spinner = sim_runtime::spawn_named("spinner", async {
                let mut n = 0u64;
                loop {
                    // Never awaits: the executor never gets control back.
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            });
            let _ = spinner.await;
        });
        return;
    }
    let (code, err) = in_child("a_task_that_never_awaits_is_reported_with_its_seed_time_and_name");
    assert_eq!(code, Some(101), "{err}");
    assert!(
        err.contains("sim-runtime watchdog: seed 0x5eedb05e"),
        "{err}"
    );
    assert!(err.contains("a loop that never awaits?"), "{err}");
    assert!(err.contains("virtual time: 1.500000s"), "{err}");
    assert!(
        err.contains("\"spinner\", spawned at sim-runtime/tests/watchdog.rs:"),
        "{err}"
    );
    assert!(err.contains("on node main"), "{err}");
}

#[test]
// The child measures wall time to be sure it ran well past the limit.
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
fn a_run_that_keeps_polling_is_left_alone() {
    if std::env::var_os(CHILD).is_some() {
        let started = std::time::Instant::now();
        let result = watched(100).run(move || async move {
            // Four times the limit in all, every poll a tenth of it.
            while started.elapsed() < std::time::Duration::from_millis(400) {
                let poll = std::time::Instant::now();
                while poll.elapsed() < std::time::Duration::from_millis(10) {}
                sleep(Duration::from_millis(1)).await;
            }
        });
        assert!(result.report.is_pass());
        return;
    }
    let (code, err) = in_child("a_run_that_keeps_polling_is_left_alone");
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("watchdog"), "{err}");
}
