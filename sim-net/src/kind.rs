//! Message kinds: the short type name (`Request` for `sim_models::kv::command::Request`)
//! that the trace and the per-message rules see.
//!
//! A typed endpoint (a connection, a listener, a socket, an RPC client or server) knows
//! its message types, so it names them once, when it is made, and carries the names:
//! nothing per message looks at a type name.

/// The kind of messages of type `T`.
pub(crate) fn of<T: ?Sized>() -> &'static str {
    short(std::any::type_name::<T>())
}

/// `sim_models::kv::command::Request` -> `Request`, and
/// `sim_net::rpc::Envelope<alloc::string::String>` -> `Envelope<alloc::string::String>`:
/// the outer type's path goes, its parameters stay (and a tuple or an array, which has
/// no path, stays whole).
pub(crate) fn short(type_name: &str) -> &str {
    let base_end = type_name.find(['<', '(', '[']).unwrap_or(type_name.len());
    let start = type_name[..base_end].rfind("::").map_or(0, |i| i + 2);
    &type_name[start..]
}

#[cfg(test)]
mod tests {
    use super::short;

    #[test]
    fn short_drops_the_path_of_the_outer_type_only() {
        assert_eq!(short("u64"), "u64");
        assert_eq!(short("sim_models::kv::command::Request"), "Request");
        assert_eq!(
            short("sim_net::rpc::Envelope<alloc::string::String>"),
            "Envelope<alloc::string::String>"
        );
        assert_eq!(
            short("(u64, alloc::string::String)"),
            "(u64, alloc::string::String)"
        );
        assert_eq!(
            short("[alloc::string::String; 2]"),
            "[alloc::string::String; 2]"
        );
    }

    #[test]
    fn of_names_a_type_by_its_last_segment() {
        struct Ping;
        assert_eq!(super::of::<Ping>(), "Ping");
        assert_eq!(super::of::<u64>(), "u64");
    }
}
