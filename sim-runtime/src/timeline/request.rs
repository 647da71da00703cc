//! The `request` trace event: one per request a user (or a test's client) made, emitted
//! when the reply (or the give-up) comes, so the timeline draws it as a span coloured by
//! how it ended. The trace cannot tell a request from its messages: whoever waits for the
//! reply says so.

use serde::Serialize;

use crate::time::Instant;
use crate::trace::{emit, TraceEvent};

/// The `request` event's name in the trace.
pub const NAME: &str = "request";

/// How a request ended, as the timeline colours it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestResult {
    /// Success.
    Ok,
    /// A deliberate refusal: sold out, 409, 429 (the 4xx family).
    Rejected,
    /// An error answer (5xx).
    Error,
    /// No answer in time.
    Timeout,
}

impl RequestResult {
    /// Every result, in the order the page's data indexes them.
    pub const ALL: [RequestResult; 4] = [
        RequestResult::Ok,
        RequestResult::Rejected,
        RequestResult::Error,
        RequestResult::Timeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestResult::Ok => "ok",
            RequestResult::Rejected => "rejected",
            RequestResult::Error => "error",
            RequestResult::Timeout => "timeout",
        }
    }
}

/// `request`: a request that started at `start_ns` (virtual nanoseconds) ended now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Request {
    pub start_ns: u64,
    pub result: RequestResult,
    /// What was asked, e.g. `order` or `GET /slots`.
    pub what: &'static str,
}

impl TraceEvent for Request {
    const NAME: &'static str = NAME;
    type Owned = Request;
    fn to_owned_event(&self) -> Request {
        *self
    }
}

/// Records that a request started at `start` ended now with `result`.
pub fn record_request(what: &'static str, start: Instant, result: RequestResult) {
    let start_ns = u64::try_from(start.elapsed_since_start().as_nanos()).unwrap_or(u64::MAX);
    emit(&Request {
        start_ns,
        result,
        what,
    });
}
