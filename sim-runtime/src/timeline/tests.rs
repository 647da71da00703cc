use super::*;
use crate::node::node;
use crate::time::{now, sleep, Duration};
use crate::trace::{emit_message, SharedBuffer};
use crate::Sim;

/// A small run with everything a timeline draws: two nodes, a request, messages (one
/// lost), a kill and its restart, and a pause left open at the end.
fn traced_run(seed: u64) -> (String, u64) {
    let buffer = SharedBuffer::default();
    let result = Sim::new(seed).trace_jsonl(buffer.clone()).run(|| async {
        let server = node("server").build(|| async {
            sleep(Duration::from_secs(60)).await;
        });
        let client = node("client").build(|| async {});
        let start = now();
        emit_message("net.send", (0, 1), (server.0, 80), "Ask");
        sleep(Duration::from_millis(3)).await;
        emit_message("net.deliver", (0, 1), (server.0, 80), "Ask");
        emit_message("net.send", (0, 1), (client.0, 81), "Lost");
        sleep(Duration::from_millis(2)).await;
        record_request("ask", start, RequestResult::Error);
        server.kill();
        sleep(Duration::from_millis(10)).await;
        server.restart();
        client.pause();
        sleep(Duration::from_millis(5)).await;
    });
    (buffer.text(), result.report.fingerprint)
}

fn info() -> RunInfo {
    RunInfo {
        title: "t".into(),
        details: Vec::new(),
        outcome: "pass".into(),
        failed: false,
    }
}

#[test]
fn a_run_becomes_lanes_spans_arrows_and_fault_windows() {
    let (jsonl, _) = traced_run(3);
    let t = Timeline::from_jsonl(&jsonl, info(), &[], None).unwrap();
    let names: Vec<&str> = t.lanes.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["main", "server", "client"]);
    assert_eq!(t.spans.len(), 1);
    let Span(lane, row, start, end, result, _) = t.spans[0];
    assert_eq!((lane, row, start, end), (0, 0, 0, 5_000_000));
    assert_eq!(RequestResult::ALL[result as usize], RequestResult::Error);
    assert_eq!(t.lanes[0].rows, 1);
    // The delivered message has both ends; the lost one none.
    let arrows = &t.messages.arrows;
    assert_eq!(arrows.len(), 2);
    assert_eq!(
        (arrows[0].0, arrows[0].1, arrows[0].2, arrows[0].3),
        (0, 1, 0, 3_000_000)
    );
    assert_eq!((arrows[1].1, arrows[1].3, arrows[1].6), (2, -1, -1));
    assert_eq!(t.messages.kinds, ["Ask", "Lost"]);
    // The kill closes at the restart; the pause lasts to the end of the run.
    let kinds: Vec<(&str, u64, u64)> = t
        .faults
        .iter()
        .map(|f| (f.kind.as_str(), f.start_ns, f.end_ns))
        .collect();
    assert_eq!(
        kinds,
        [
            ("kill", 5_000_000, 15_000_000),
            ("pause", 15_000_000, t.end_ns)
        ]
    );
    assert_eq!(t.faults[0].lanes, [1]);
    assert_eq!(t.faults[0].events.len(), 2, "opened and closed");
    assert_eq!(t.end_ns, 20_000_000);
}

#[test]
fn the_same_seed_twice_gives_the_same_timeline() {
    let (a, fa) = traced_run(9);
    let (b, fb) = traced_run(9);
    assert_eq!(fa, fb);
    let (ta, tb) = (
        Timeline::from_jsonl(&a, info(), &[], None).unwrap(),
        Timeline::from_jsonl(&b, info(), &[], None).unwrap(),
    );
    assert_eq!(ta.to_html(), tb.to_html());
}

#[test]
fn a_violation_marks_the_events_it_names() {
    let (jsonl, _) = traced_run(3);
    let kill_seq = jsonl
        .lines()
        .find(|l| l.contains("\"node.kill\""))
        .and_then(|l| serde_json::from_str::<Value>(l).ok())
        .and_then(|v| v["seq"].as_u64())
        .unwrap();
    let v = Violation {
        at_ns: 7,
        checker: "c".into(),
        message: "m".into(),
        seqs: vec![kill_seq, 999_999],
    };
    let t = Timeline::from_jsonl(&jsonl, info(), &[], Some(&v)).unwrap();
    let mark = t.violation.unwrap();
    assert_eq!(mark.marks.len(), 1, "an unknown seq is left out");
    let (lane, at, idx) = mark.marks[0];
    assert_eq!((lane, at), (1, 5_000_000));
    assert_eq!(t.events[idx as usize]["event"], "node.kill");
}

#[test]
fn network_faults_pair_with_what_undoes_them() {
    let line = |seq: u64, t: u64, fields: &str| {
        format!(r#"{{"event":"net.fault","node":0,"seq":{seq},"t_ns":{t},"fields":{fields}}}"#)
    };
    let jsonl = [
        line(1, 10, r#"{"fault":"partition","a":[1],"b":[2,3]}"#),
        line(2, 20, r#"{"fault":"clog","a":[4],"b":[]}"#),
        line(3, 30, r#"{"fault":"repair","a":[2,3],"b":[1]}"#),
        r#"{"event":"net.link","node":0,"seq":4,"t_ns":35,"fields":{"from":1,"to":2,"config":{"latency":5}}}"#.into(),
        r#"{"event":"net.link","node":0,"seq":5,"t_ns":45,"fields":{"from":1,"to":2,"config":null}}"#.into(),
    ]
    .join("\n");
    let scheduled = [ScheduledWindow {
        label: "db_down".into(),
        start_ns: 5,
        end_ns: None,
    }];
    let t = Timeline::from_jsonl(&jsonl, info(), &scheduled, None).unwrap();
    let got: Vec<(&str, u64, u64)> = t
        .faults
        .iter()
        .map(|f| (f.kind.as_str(), f.start_ns, f.end_ns))
        .collect();
    assert_eq!(
        got,
        [
            ("scheduled", 5, 45),
            ("partition", 10, 30),
            ("clog", 20, 45),
            ("latency", 35, 45)
        ]
    );
}

#[test]
fn many_messages_are_sampled_whole() {
    let mut lines = Vec::new();
    let n = MAX_ARROWS * 2 + 2;
    for i in 0..n as u64 {
        for ev in ["net.send", "net.deliver"] {
            lines.push(format!(
                r#"{{"event":"{ev}","node":0,"seq":{},"t_ns":{},"fields":{{"src":[0,1],"dst":[1,2],"kind":"K"}}}}"#,
                lines.len(),
                i * 10 + u64::from(ev == "net.deliver")
            ));
        }
    }
    let t = Timeline::from_jsonl(&lines.join("\n"), info(), &[], None).unwrap();
    assert_eq!(t.messages.total, n as u64);
    assert_eq!(t.messages.sampled_every, 3);
    assert!(t.messages.arrows.len() <= MAX_ARROWS);
    // Each kept message is delivered 1 ns after it was sent: sampling kept pairs whole.
    assert!(t.messages.arrows.iter().all(|a| a.3 == a.2 as i64 + 1));
}

#[test]
fn a_bad_line_is_an_error_with_its_number() {
    let e = Timeline::from_jsonl("{\"event\":\"x\"}\nnot json", info(), &[], None).unwrap_err();
    assert!(
        e.to_string().starts_with("trace line 2 is not an event"),
        "{e}"
    );
}

#[test]
fn a_failing_test_seed_writes_its_timeline() {
    let harness = crate::harness::Harness::new("sim-runtime", "timeline::demo");
    let body = || async {
        sleep(Duration::from_millis(4)).await;
        Err::<(), String>("the counter lost an increment".into())
    };
    let path = std::env::temp_dir().join(format!("sim-timeline-{}.html", std::process::id()));
    let path_text = path.to_string_lossy().into_owned();
    harness.write_timeline(11, &body, &path_text).unwrap();
    let page = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(page.contains("<title>timeline::demo seed 0xb</title>"));
    assert!(page.contains(
        r#""checker":"test","message":"test returned Err: \"the counter lost an increment\"""#
    ));
    assert!(page.contains(r#""at_ns":4000000"#));
}
