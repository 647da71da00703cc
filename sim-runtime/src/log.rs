//! A `tracing` subscriber whose every line is stamped with virtual time, node and task,
//! so logs of a simulated run read like logs of a real cluster and stay deterministic.

use std::fmt;

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

use crate::world;

/// Formats the "time" column as `[12.000345s api-1 t17]` inside a simulation, `[-]`
/// outside one.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimStamp;

impl FormatTime for SimStamp {
    fn format_time(&self, out: &mut Writer<'_>) -> fmt::Result {
        world::try_with(|w| {
            let node = w.node_name(w.current_node());
            match w.current_task() {
                Some(task) => write!(out, "[{} {node} {task}]", w.now),
                None => write!(out, "[{} {node} -]", w.now),
            }
        })
        .unwrap_or_else(|| out.write_str("[-]"))
    }
}

/// Installs a global `tracing` subscriber that writes to the test's captured output with
/// [`SimStamp`] stamps, filtered by `RUST_LOG` (default `warn`). Safe to call many times.
pub fn init() {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_string());
    let level = filter
        .parse::<tracing::Level>()
        .unwrap_or(tracing::Level::WARN);
    let _ = tracing_subscriber::fmt()
        .with_timer(SimStamp)
        .with_max_level(level)
        .with_test_writer()
        .with_target(false)
        .try_init();
}
