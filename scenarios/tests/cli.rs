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
    assert_user_error(
        &["run", "flash-sale", "--seed", "0xZZ"],
        "invalid value '0xZZ' for '--seed <SEED>': not a seed",
    );
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
        &format!(
            "malformed schedule file {}: at faults[0].fault.fault: unknown variant `asteroid`",
            bad.display()
        ),
    );
    std::fs::write(
        &bad,
        "{\"faults\": [{\"at_ms\": \"soon\", \"fault\": {\"fault\": \"kafka_down\", \"for_ms\": 5}}]}",
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
        "at faults[0].at_ms: invalid type: string \"soon\"",
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
    assert_user_error(
        &[
            "run",
            "flash-sale",
            "--seed",
            "1",
            "--fault",
            "none",
            "--schedule",
            "s.json",
        ],
        "cannot be used with",
    );
}

#[test]
fn scenario_options_belong_to_the_scenario() {
    assert_user_error(
        &["run", "flash-sale", "--seed", "1", "--userz", "5"],
        "unexpected argument '--userz'",
    );
    assert_user_error(
        &["run", "flash-sale", "--seed", "1", "--users", "0"],
        "invalid value '0' for '--users <USERS>'",
    );
    assert_user_error(
        &["explore", "flash-sale", "--items", "lots"],
        "invalid value 'lots' for '--items <ITEMS>'",
    );
    assert_user_error(
        &["report", "flash-sale", "--spawn-rate", "0"],
        "expected a positive number",
    );
    // Before the scenario, a scenario's option is nobody's.
    assert_user_error(
        &["run", "--users", "5", "flash-sale", "--seed", "1"],
        "unexpected argument '--users'",
    );
}

/// The value of `label` in `sim`'s output (`fingerprint: 0x…`).
fn field<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} line in {out}"))
        .trim()
}

/// Runs a printed `cargo run … --bin sim -- …` line with the test's binary.
fn sim_line(line: &str) -> (i32, String, String) {
    let args = line
        .strip_prefix("cargo run --release -p scenarios --bin sim -- ")
        .unwrap_or_else(|| panic!("not a sim command line: {line}"));
    let args: Vec<&str> = args.split_whitespace().collect();
    sim(&args)
}

#[test]
fn a_failing_run_prints_a_replay_line_that_reproduces_its_fingerprint() {
    let (code, out, _) = sim(&[
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
        "--api-instances",
        "3",
    ]);
    assert_eq!(code, 1, "the buggy variant fails: {out}");
    assert!(out.contains("[FAIL] no_oversell"), "{out}");
    assert!(
        field(&out, "outcome:").starts_with("FAIL: no_oversell: "),
        "the outcome is the run's verdict: {out}"
    );
    let fingerprint = field(&out, "fingerprint:");
    let line = field(&out, "replay:");
    for option in ["--users 200", "--items 20", "--api-instances 3"] {
        assert!(line.contains(option), "{line} lacks {option}");
    }
    let (code, again, _) = sim_line(line);
    assert_eq!(code, 1, "still failing, as the original: {again}");
    assert_eq!(field(&again, "fingerprint:"), fingerprint, "{line}");
    // The options made a difference: without them the run is another one.
    let (_, default, _) = sim(&[
        "run",
        "flash-sale",
        "--variant",
        "check_then_decrement",
        "--fault",
        "none",
        "--seed",
        "7",
    ]);
    assert_ne!(field(&default, "fingerprint:"), fingerprint);
}

#[test]
fn explore_prints_a_replay_line_with_the_scenario_options_and_the_fingerprint() {
    let (code, out, err) = sim(&[
        "explore",
        "flash-sale",
        "--variant",
        "check_then_decrement",
        "--seeds",
        "20",
        "--jobs",
        "1",
        "--users",
        "120",
        "--items",
        "12",
        "--spawn-rate",
        "40",
    ]);
    assert_eq!(code, 1, "exploration finds the oversell: {out}{err}");
    let line = field(&out, "replay:");
    assert!(line.contains(" --fault swarm "), "{line}");
    assert!(line.contains("--users 120"), "{line}");
    assert!(line.contains("--spawn-rate 40"), "{line}");
    assert!(line.contains(" --expect 0x"), "{line}");
    let (code, replayed, _) = sim_line(line);
    assert!(
        replayed.contains("fingerprint matches: the failure reproduced exactly"),
        "a matched failure says so, unlike a mismatch: {line}: {replayed}"
    );
    assert_eq!(code, 1, "still failing");
}

#[test]
fn explore_all_streams_every_failure_and_sums_them_up() {
    let (code, out, err) = sim(&[
        "explore",
        "flash-sale",
        "--variant",
        "check_then_decrement",
        "--seeds",
        "6",
        "--all",
        "--users",
        "120",
        "--items",
        "12",
        "--spawn-rate",
        "40",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    let printed = out.matches("FAILURE at seed ").count();
    assert!(printed > 1, "{out}");
    assert_eq!(out.matches("  replay:      ").count(), printed, "{out}");
    assert!(
        out.contains(&format!(
            "{printed} failing seeds in 6; the lowest is seed "
        )),
        "{out}"
    );
}

#[test]
fn list_names_every_variant_fault_and_option() {
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
        "--users <USERS>",
        "--items <ITEMS>",
        "--api-instances <API_INSTANCES>",
        "--spawn-rate <SPAWN_RATE>",
    ] {
        assert!(out.contains(name), "sim list lacks {name}: {out}");
    }
}

/// A short fault-free run of the correct variant at `seed`.
fn small_run(seed: &str) -> Vec<&str> {
    vec![
        "run",
        "flash-sale",
        "--variant",
        "correct",
        "--fault",
        "none",
        "--seed",
        seed,
        "--users",
        "20",
        "--items",
        "5",
    ]
}

#[test]
fn a_trace_that_cannot_be_written_is_an_error_not_a_pass() {
    // /dev/full accepts the open and fails every write, as a full disk does.
    if !std::path::Path::new("/dev/full").exists() {
        return;
    }
    let mut args = small_run("1");
    args.extend(["--trace", "/dev/full"]);
    assert_user_error(&args, "cannot write trace file /dev/full");
    // The same run with a writable trace passes.
    let path = std::env::temp_dir().join(format!("sim-trace-{}.jsonl", std::process::id()));
    let path_text = path.display().to_string();
    *args.last_mut().unwrap() = &path_text;
    let (code, _, err) = sim(&args);
    assert_eq!(code, 0, "{err}");
    let lines = std::fs::read_to_string(&path).unwrap();
    assert!(lines.lines().count() > 100);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn run_json_gives_the_seed_and_fingerprint_as_the_hex_text_the_text_output_prints() {
    let args = small_run("0xfedcba9876543210");
    let (code, text, err) = sim(&args);
    assert_eq!(code, 0, "{err}");
    let mut json_args = args.clone();
    json_args.push("--json");
    let (code, json, err) = sim(&json_args);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON object");
    // A u64 this large does not survive a JSON number read as a double.
    assert_eq!(v["report"]["seed"], "0xfedcba9876543210");
    let fingerprint = v["report"]["fingerprint"].as_str().expect("a hex string");
    assert!(
        text.contains(&format!("fingerprint: {fingerprint}")),
        "{text} should print {fingerprint}"
    );
}

#[test]
fn jobs_expect_and_shrink_out_are_checked_before_any_work() {
    assert_user_error(
        &["explore", "flash-sale", "--seeds", "1", "--jobs", "0"],
        "at least 1 worker thread",
    );
    assert_user_error(
        &["replay", "flash-sale", "--seed", "1", "--expect", "zz"],
        "not a fingerprint",
    );
    let (code, out, err) = sim(&[
        "shrink",
        "flash-sale",
        "--variant",
        "commit_before_write",
        "--fault",
        "worker_crash",
        "--seed",
        "1",
        "--out",
        "/nonexistent-dir/shrunk.json",
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("/nonexistent-dir does not exist"), "{err}");
    assert!(
        !out.contains("shrunk schedule"),
        "no shrinking happened: {out}"
    );
}

/// Starts `sim explore` over every seed there is, waits for its first line on stdout
/// (`--json`) or stderr, lets it run a little, interrupts it as ^C would, and returns its
/// exit code and whole output.
fn interrupted_explore(json: bool) -> (i32, String, String) {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    let mut args = vec![
        "explore",
        "flash-sale",
        "--seeds",
        "18446744073709551615",
        "--jobs",
        "2",
        "--users",
        "20",
    ];
    if json {
        args.push("--json");
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sim binary runs");
    let (mut out, mut err) = (String::new(), String::new());
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    // The first line comes after the handler is in place and before any seed runs.
    let first = if json {
        &mut stdout
    } else {
        &mut stderr as &mut dyn BufRead
    };
    let into = if json { &mut out } else { &mut err };
    first.read_line(into).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    stdout.read_to_string(&mut out).unwrap();
    stderr.read_to_string(&mut err).unwrap();
    let code = child.wait().unwrap().code().unwrap_or(-1);
    (code, out, err)
}

#[test]
fn an_interrupted_exploration_of_every_seed_says_what_it_covered() {
    let (code, out, err) = interrupted_explore(false);
    assert_eq!(code, 130, "{out}{err}");
    assert!(
        err.contains("exploring 18446744073709551615 seeds"),
        "{err}"
    );
    let covered = out
        .lines()
        .find_map(|l| l.strip_prefix("interrupted: "))
        .unwrap_or_else(|| panic!("no summary in {out:?}"));
    let runs: u64 = covered.split(' ').next().unwrap().parse().unwrap();
    assert!(runs > 0, "{covered}");
    assert!(
        covered.contains(&format!("every seed index from 0 to {}", runs - 1)),
        "{covered}"
    );
    assert!(out.contains("no failure in the seeds that ran"), "{out}");

    let (code, out, err) = interrupted_explore(true);
    assert_eq!(code, 130, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    let summary: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    let summary = &summary["summary"];
    assert_eq!(summary["interrupted"], true, "{summary}");
    assert_eq!(summary["seeds"], u64::MAX, "{summary}");
    assert_eq!(
        summary["runs"],
        (lines.len() - 1) as u64,
        "one line per seed that ran, then the summary"
    );
}

/// Runs a printed command line through a real shell, with the test's binary in place of
/// `cargo run`: what a user pasting it gets.
fn sim_shell(line: &str) -> (i32, String, String) {
    let args = line
        .strip_prefix("cargo run --release -p scenarios --bin sim -- ")
        .unwrap_or_else(|| panic!("not a sim command line: {line}"));
    let bin = env!("CARGO_BIN_EXE_sim").replace('\'', r"'\''");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("'{bin}' {args}"))
        .output()
        .expect("sh runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_printed_replay_line_survives_a_shell_with_a_space_and_a_quote_in_the_schedule_path() {
    let dir = std::env::temp_dir().join(format!("sim chaos 'runs' {}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let schedule = dir.join("worker crash.json");
    std::fs::write(
        &schedule,
        r#"{"faults": [{"at_ms": 800, "fault": {"fault": "worker_crash", "down_ms": 5000}}]}"#,
    )
    .unwrap();
    let (code, out, err) = sim(&[
        "run",
        "flash-sale",
        "--variant",
        "commit_before_write",
        "--seed",
        "3",
        "--users",
        "200",
        "--items",
        "20",
        "--schedule",
        schedule.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    let line = field(&out, "replay:");
    let (code, again, err) = sim_shell(line);
    assert_eq!(code, 1, "{line}: {again}{err}");
    assert_eq!(
        field(&again, "fingerprint:"),
        field(&out, "fingerprint:"),
        "{line}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_huge_bad_value_is_quoted_in_part_not_echoed_whole() {
    let huge = std::env::temp_dir().join(format!("sim-huge-schedule-{}.json", std::process::id()));
    let name = "x".repeat(50_000_000);
    std::fs::write(
        &huge,
        format!(r#"{{"faults": [{{"at_ms": 1, "fault": {{"fault": "{name}"}}}}]}}"#),
    )
    .unwrap();
    let (code, _, err) = sim(&[
        "run",
        "flash-sale",
        "--seed",
        "1",
        "--schedule",
        huge.to_str().unwrap(),
    ]);
    std::fs::remove_file(&huge).unwrap();
    assert_eq!(code, 2);
    assert!(err.len() < 1000, "{} bytes of error", err.len());
    assert!(
        err.contains("at faults[0].fault.fault: unknown variant `xxx"),
        "{err}"
    );
    assert!(err.contains("bytes left out"), "{err}");
    assert!(
        err.contains("expected one of"),
        "the end of the message stays: {err}"
    );

    let seed = "9".repeat(100_000);
    let (code, _, err) = sim(&["run", "flash-sale", "--seed", &seed]);
    assert_eq!(code, 2);
    assert!(err.len() < 1000, "{} bytes of error", err.len());
    assert!(err.contains("for '--seed <SEED>': not a seed"), "{err}");
}

#[test]
fn a_schedule_that_cannot_run_is_refused_at_load_naming_file_fault_and_field() {
    let path = std::env::temp_dir().join(format!("sim-kill-3-{}.json", std::process::id()));
    std::fs::write(
        &path,
        r#"{"faults": [{"at_ms": 10, "fault": {"fault": "api_kill", "instance": 3, "down_ms": null}}]}"#,
    )
    .unwrap();
    assert_user_error(
        &["run", "flash-sale", "--seed", "1", "--schedule", path.to_str().unwrap()],
        &format!(
            "invalid schedule file {}: at faults[0].fault.instance: api_kill of instance 3, but there are 2 API instances",
            path.display()
        ),
    );
    std::fs::remove_file(&path).unwrap();
}

/// The line of `sim`'s output that starts with `label`, whole.
fn line_after<'a>(out: &'a str, label: &str) -> &'a str {
    let at = out
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {out}"));
    out[at + label.len()..].lines().next().unwrap_or("").trim()
}

/// Explores `variant` of `scenario` under `fault` (with the scenario's `options`) on one
/// core until it fails, expects the first violation to be `checker`, replays the printed
/// line in a new process, shrinks the seed, and runs the shrunk schedule from its file.
fn found_replayed_and_shrunk(
    scenario: &str,
    (variant, fault, checker): (&str, &str, &str),
    seeds: &str,
    options: &[&str],
    dir: &std::path::Path,
) {
    let mut explore = vec![
        "explore",
        scenario,
        "--variant",
        variant,
        "--fault",
        fault,
        "--seeds",
        seeds,
        "--jobs",
        "1",
    ];
    explore.extend_from_slice(options);
    let (code, out, err) = sim(&explore);
    assert_eq!(code, 1, "{variant} is found in {seeds} seeds: {out}{err}");
    assert!(
        line_after(&out, "violated:").starts_with(checker),
        "{variant}: {out}"
    );
    let replay = field(&out, "replay:");
    let (code, replayed, _) = sim_line(replay);
    assert_eq!(code, 1, "{replay}: {replayed}");
    assert!(
        replayed.contains("fingerprint matches: the failure reproduced exactly"),
        "{replay}: {replayed}"
    );

    let seed = line_after(&out, "FAILURE at seed ")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let shrunk = dir.join(format!("{scenario}-{variant}.json"));
    let mut shrink = vec![
        "shrink",
        scenario,
        "--variant",
        variant,
        "--fault",
        fault,
        "--seed",
        &seed,
        "--out",
        shrunk.to_str().unwrap(),
    ];
    shrink.extend_from_slice(options);
    let (code, out, err) = sim(&shrink);
    assert_eq!(code, 0, "{variant}: {out}{err}");
    assert!(
        line_after(&out, "still fails: ").starts_with(checker),
        "{variant}: {out}"
    );
    // The shrunk schedule, run from its file, fails the same way.
    let (code, rerun, _) = sim_line(field(&out, "run it with:"));
    assert_eq!(code, 1, "{rerun}");
    assert!(rerun.contains(&format!("[FAIL] {checker}")), "{rerun}");
}

/// `seeds` swarm seeds of the correct variant of `scenario` (with `options`) find nothing.
fn correct_survives_swarm(scenario: &str, seeds: &str, options: &[&str]) {
    let mut explore = vec![
        "explore",
        scenario,
        "--variant",
        "correct",
        "--fault",
        "swarm",
        "--seeds",
        seeds,
        "--jobs",
        "2",
    ];
    explore.extend_from_slice(options);
    let (code, out, err) = sim(&explore);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("FAILURE"), "{out}");
}

/// A fresh directory for one test's files.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn each_buggy_appointments_variant_is_found_replayed_in_a_new_process_and_shrunk() {
    let dir = scratch("appointments");
    // A stuck breaker shows once users still arrive after the database is back: the
    // default 300 users at 100/s outlast the outage, 120 do not.
    for (expectation, users) in [
        (("select_then_insert", "swarm", "no_double_booking"), "120"),
        (("breaker_stuck_open", "db_down", "recovers"), "300"),
        (("stale_cache", "swarm", "fresh_lists"), "120"),
    ] {
        found_replayed_and_shrunk("appointments", expectation, "32", &["--users", users], &dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_correct_appointments_backend_survives_swarm_exploration() {
    correct_survives_swarm("appointments", "24", &["--users", "120"]);
}

#[test]
fn each_buggy_medistream_variant_is_found_replayed_in_a_new_process_and_shrunk() {
    let dir = scratch("medistream");
    for expectation in [
        ("pop_then_crash_loses_job", "swarm", "no_job_lost"),
        ("auth_after_db", "swarm", "auth_before_work"),
        ("retry_without_backoff", "swarm", "jobs_terminal"),
        (
            "shared_pool_for_signup",
            "signup_flood",
            "booking_latency_in_flood",
        ),
    ] {
        found_replayed_and_shrunk("medistream", expectation, "500", &[], &dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_correct_medistream_survives_500_swarm_seeds() {
    correct_survives_swarm("medistream", "500", &[]);
}

/// The Markdown tables of a report: each a list of rows of trimmed cells, header first.
fn markdown_tables(report: &str) -> Vec<Vec<Vec<String>>> {
    let mut tables: Vec<Vec<Vec<String>>> = Vec::new();
    let mut in_table = false;
    for line in report.lines() {
        let Some(inner) = line
            .trim()
            .strip_prefix('|')
            .and_then(|l| l.strip_suffix('|'))
        else {
            in_table = false;
            continue;
        };
        if inner.starts_with("---") {
            continue;
        }
        let cells = inner.split('|').map(|c| c.trim().to_string()).collect();
        if !in_table {
            tables.push(Vec::new());
            in_table = true;
        }
        tables.last_mut().unwrap().push(cells);
    }
    tables
}

#[test]
fn the_medistream_report_fills_every_table() {
    let (code, out, err) = sim(&["report", "medistream"]);
    assert_eq!(code, 0, "{out}{err}");
    let tables = markdown_tables(&out);
    // Cores against throughput, the document's figures, queue depth, the flood, the matrix.
    assert_eq!(tables.len(), 5, "{out}");
    for table in &tables {
        assert!(table.len() > 1, "a table with no rows: {table:?}");
        let width = table[0].len();
        for row in table {
            assert_eq!(row.len(), width, "{row:?} in {table:?}");
            assert!(row.iter().all(|c| !c.is_empty()), "an empty cell: {row:?}");
        }
    }
    let cores: Vec<&str> = tables[0][1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        cores,
        ["1", "2", "4"],
        "the plateau against 1, 2 and 4 cores"
    );
    for heading in [
        "CPU saturation",
        "Observed results",
        "queue depth",
        "signup flood",
        "fault matrix",
    ] {
        assert!(out.contains(heading), "no {heading:?} section: {out}");
    }
}
