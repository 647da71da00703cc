//! The `sim` program's contract with its users: bad input gets a clear message and exit
//! code 2, never a panic; a run prints its fingerprint and replays to the same one.

use std::process::Command;

fn sim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .output()
        .expect("the sim binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_user_error(args: &[&str], needle: &str) {
    let (code, _, err) = sim(args);
    assert_eq!(code, 2, "{args:?} should exit 2, stderr: {err}");
    assert!(
        err.contains(needle),
        "{args:?}: {err:?} should mention {needle:?}"
    );
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
}

#[test]
fn bad_input_exits_2_with_a_message() {
    assert_user_error(
        &["run", "flash-sael", "--seed", "1"],
        "unknown scenario \"flash-sael\"",
    );
    assert_user_error(
        &["run", "flash-sale", "--variant", "nope", "--seed", "1"],
        "unknown variant \"nope\"",
    );
    assert_user_error(
        &["run", "flash-sale", "--fault", "meteor", "--seed", "1"],
        "unknown fault \"meteor\"",
    );
    assert_user_error(&["run", "flash-sale", "--seed", "0xZZ"], "is not a seed");
    assert_user_error(&["explore", "flash-sale", "--shard", "3/2"], "--shard");
    assert_user_error(
        &[
            "run",
            "flash-sale",
            "--seed",
            "1",
            "--schedule",
            "/nonexistent/s.json",
        ],
        "cannot read schedule file",
    );
    let bad = std::env::temp_dir().join(format!("sim-bad-schedule-{}.json", std::process::id()));
    std::fs::write(
        &bad,
        "{\"faults\": [{\"at_ms\": 5, \"fault\": {\"fault\": \"asteroid\"}}]}",
    )
    .unwrap();
    assert_user_error(
        &[
            "run",
            "flash-sale",
            "--seed",
            "1",
            "--schedule",
            bad.to_str().unwrap(),
        ],
        "malformed schedule",
    );
    std::fs::write(&bad, "not json").unwrap();
    assert_user_error(
        &[
            "run",
            "flash-sale",
            "--seed",
            "1",
            "--schedule",
            bad.to_str().unwrap(),
        ],
        "malformed schedule file",
    );
    let _ = std::fs::remove_file(&bad);
    assert_user_error(&["frobnicate"], "unrecognized subcommand");
}

#[test]
fn a_failing_run_prints_a_replay_line_that_reproduces_its_fingerprint() {
    let args = [
        "run",
        "flash-sale",
        "--variant",
        "check_then_decrement",
        "--fault",
        "none",
        "--seed",
        "7",
        "--users",
        "200",
        "--items",
        "20",
    ];
    let (code, out, _) = sim(&args);
    assert_eq!(code, 1, "the buggy variant fails: {out}");
    assert!(out.contains("[FAIL] no_oversell"), "{out}");
    let fingerprint = out
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint: "))
        .expect("fingerprint line")
        .trim()
        .to_string();
    assert!(out.contains("replay:      cargo run --release -p scenarios --bin sim -- replay flash-sale --variant check_then_decrement --seed 0x7 --fault none --users 200 --items 20"), "{out}");
    let (code, out, _) = sim(&[
        "replay",
        "flash-sale",
        "--variant",
        "check_then_decrement",
        "--fault",
        "none",
        "--seed",
        "0x7",
        "--users",
        "200",
        "--items",
        "20",
        "--expect",
        &fingerprint,
    ]);
    assert!(out.contains("fingerprint matches"), "{out}");
    assert_eq!(code, 1, "still failing, as the original");
}

#[test]
fn list_names_every_variant_and_fault() {
    let (code, out, _) = sim(&["list"]);
    assert_eq!(code, 0);
    for name in [
        "correct",
        "check_then_decrement",
        "commit_before_write",
        "no_idempotency",
        "kafka_down_no_compensation",
        "worker_crash",
        "redis_latency_500",
        "kafka_down",
        "db_down",
        "api_kill",
        "partition_api_redis",
        "swarm",
    ] {
        assert!(out.contains(name), "sim list lacks {name}");
    }
}
