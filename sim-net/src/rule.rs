//! The per-message rule hook: user code sees each message's source, destination and
//! kind, and decides its fate. This is how targeted faults like "drop the first reply
//! from the broker" are written.

use sim_runtime::time::Duration;

use crate::Addr;

/// What a rule sees of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageInfo {
    pub src: Addr,
    pub dst: Addr,
    /// The message's short type name, as the trace shows it: `Request` for
    /// `my_service::api::Request` (for RPC, the request or response type inside the
    /// envelope).
    pub kind: &'static str,
    /// True for the replies of `rpc`, false for requests and other messages.
    pub is_reply: bool,
}

/// A rule's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Delay(Duration),
    Drop,
    Duplicate,
}

/// The handle of an installed rule, for `remove_rule`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RuleId(pub(crate) u64);

pub(crate) type Rule = Box<dyn FnMut(&MessageInfo) -> Verdict>;
