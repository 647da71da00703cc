//! Tables of commands against the pure engine (no network), written as a redis-cli
//! transcript: one row a line, `client ms COMMAND => REPLY`, the reply as redis-cli prints
//! it for Redis 7.0.15 (errors as exact strings). A command is split at spaces. Requests
//! go through the server's own parsing (`parse_request`): a command refused while queued
//! dooms the MULTI, as in Redis.

use std::collections::BTreeMap;

use sim_models::kv::parse::parse_request;
use sim_models::kv::{ClientId, Engine, EngineConfig, Session, Step};
use sim_runtime::time::Instant;

/// A fresh engine with the default configuration.
pub fn engine() -> Engine {
    Engine::new(EngineConfig::default())
}

/// Runs every row of `transcript` on `engine`, asserting each reply and that the memory
/// accounting never drifts. A client blocked by a row prints `(blocked)`; a client a row
/// serves is appended as ` | served cN REPLY`.
pub fn run_table(engine: &mut Engine, transcript: &str) {
    let mut sessions: BTreeMap<u64, Session> = BTreeMap::new();
    for (i, row) in transcript.lines().enumerate() {
        // Only the indentation goes: a reply may end with a space.
        let row = row.trim_start();
        if row.is_empty() || row.starts_with("//") {
            continue;
        }
        let (client, at_ms, line, expected) = split_row(row);
        let argv: Vec<&str> = line.split_whitespace().collect();
        let session = sessions
            .entry(client)
            .or_insert_with(|| Session::new(ClientId(client)));
        let got = match parse_request(&argv) {
            Err(e) => {
                session.flag_error();
                e.to_string()
            }
            Ok(cmd) => {
                let now = Instant::from_nanos(at_ms * 1_000_000);
                let step = session.handle(engine, cmd, now);
                let mut out = match step {
                    Step::Reply(r) => r.to_string(),
                    Step::Blocked { .. } => "(blocked)".to_string(),
                };
                for (c, r) in engine.serve_blocked() {
                    out.push_str(&format!(" | served c{} {}", c.0, r));
                }
                out
            }
        };
        assert_eq!(
            got, expected,
            "line {i}: client {client} at {at_ms}ms: {line}"
        );
        assert_eq!(
            engine.dataset().used_memory(),
            engine.dataset().used_memory_recomputed(),
            "line {i}: memory accounting drifted after {line}"
        );
    }
}

/// `client ms COMMAND => REPLY`, with `\0`, `\r`, `\n` and `\t` written escaped.
fn split_row(row: &str) -> (u64, u64, String, String) {
    let parsed = row.split_once(" => ").and_then(|(head, expected)| {
        let mut parts = head.splitn(3, ' ');
        let client = parts.next()?.parse().ok()?;
        let at_ms = parts.next()?.parse().ok()?;
        Some((client, at_ms, unescape(parts.next()?), expected.to_string()))
    });
    parsed.unwrap_or_else(|| panic!("a row is `client ms COMMAND => REPLY`: {row}"))
}

fn unescape(s: &str) -> String {
    s.replace("\\0", "\0")
        .replace("\\r", "\r")
        .replace("\\n", "\n")
        .replace("\\t", "\t")
}
