//! Hand-written JSON for the `kv.cmd` trace event, byte for byte what serde_json writes
//! for the same values: the event is emitted once per command, so it skips serde's
//! machinery and the copies that building a [`super::CmdEvent`] would need.

use super::command::Reply;

/// The bytes JSON must escape in a string: control characters, `"` and `\`. Looked up in
/// a table, as serde_json does, the check costs one load and one branch a byte where three
/// comparisons cost three branches (the check runs over every byte of every command).
static ESCAPED: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Appends `s` as a JSON string. Most arguments need no escaping and are copied whole;
/// the rest go through serde_json, so the escaping is exactly serde's. Inlined: every
/// argument of every command passes through here, the strings are short, and a call's
/// overhead is a good part of writing one (`#[inline]` alone left it a call); serde's
/// path stays out of line.
#[inline(always)]
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    if !needs_escape(s) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        write_escaped(out, s);
    }
}

/// Appends what [`write_str`] writes between the quotes: for JSON strings assembled
/// from pieces (the SQL text of a `sql.stmt` event), each escaped as it goes. JSON
/// escapes character by character, so the pieces' escapes make the whole's.
#[inline(always)]
pub(crate) fn write_str_contents(out: &mut Vec<u8>, s: &str) {
    if !needs_escape(s) {
        out.extend_from_slice(s.as_bytes());
    } else {
        let start = out.len();
        write_escaped(out, s);
        // Drop the quotes serde wrote around it.
        out.pop();
        out.remove(start);
    }
}

#[inline(always)]
fn needs_escape(s: &str) -> bool {
    s.bytes().any(|b| ESCAPED[usize::from(b)])
}

#[cold]
#[inline(never)]
fn write_escaped(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

/// Appends a reply as serde's externally tagged form: `"Nil"`, `{"Int":1}`, ...
pub(crate) fn write_reply(out: &mut Vec<u8>, reply: &Reply) {
    let tagged = |out: &mut Vec<u8>, tag: &[u8], s: &str| {
        out.extend_from_slice(tag);
        write_str(out, s);
        out.push(b'}');
    };
    match reply {
        Reply::Nil => out.extend_from_slice(b"\"Nil\""),
        Reply::Status(s) => tagged(out, b"{\"Status\":", s),
        Reply::Bulk(s) => tagged(out, b"{\"Bulk\":", s),
        Reply::Error(s) => tagged(out, b"{\"Error\":", s),
        Reply::Int(n) => {
            out.extend_from_slice(b"{\"Int\":");
            if *n < 0 {
                out.push(b'-');
            }
            sim_runtime::trace::write_u64(out, n.unsigned_abs());
            out.push(b'}');
        }
        Reply::Array(items) => {
            out.extend_from_slice(b"{\"Array\":[");
            for (i, r) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_reply(out, r);
            }
            out.extend_from_slice(b"]}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_serde_writes() {
        let replies = [
            Reply::Nil,
            Reply::ok(),
            Reply::Int(-42),
            Reply::Int(i64::MIN),
            Reply::Int(7),
            Reply::bulk("say \"hi\"\n\t\u{1}\\ é"),
            Reply::error("ERR nope"),
            Reply::Array(vec![
                Reply::bulk("a"),
                Reply::Array(vec![]),
                Reply::Nil,
                Reply::Int(0),
            ]),
        ];
        for r in replies {
            let mut ours = Vec::new();
            write_reply(&mut ours, &r);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&r).unwrap(),
                "{r:?}"
            );
        }
        let mut s = Vec::new();
        write_str(&mut s, "{\"order_id\":\"o-1\"}");
        assert_eq!(s, br#""{\"order_id\":\"o-1\"}""#);
    }

    #[test]
    fn escapes_every_byte_as_serde_does() {
        // Every ASCII byte, at every offset of a word and of the overlapping last word,
        // in strings shorter and longer than a word, with a clean run or another escape
        // after it.
        let tails = ["", "a", "tail-of-run é", "\"x\u{1}yz\\0123456"];
        let mut samples = Vec::new();
        for b in 0u8..0x80 {
            for pad in 0..18 {
                for tail in tails {
                    let mut s = "x".repeat(pad);
                    s.push(char::from(b));
                    s.push_str(tail);
                    samples.push(s);
                }
            }
        }
        samples.push(String::new());
        samples.push("é\u{7f}\u{1f}\"\\".repeat(5));
        for s in samples {
            let serde = serde_json::to_string(&s).unwrap();
            let mut ours = Vec::new();
            write_str(&mut ours, &s);
            assert_eq!(String::from_utf8(ours).unwrap(), serde, "{s:?}");
            // The contents alone, after something already written.
            let mut contents = b"[".to_vec();
            write_str_contents(&mut contents, &s);
            assert_eq!(
                String::from_utf8(contents).unwrap(),
                format!("[{}", &serde[1..serde.len() - 1]),
                "{s:?}"
            );
        }
    }
}
