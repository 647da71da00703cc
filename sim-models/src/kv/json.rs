//! Hand-written JSON for the `kv.cmd` trace event, byte for byte what serde_json writes
//! for the same values: the event is emitted once per command, so it skips serde's
//! machinery and the copies that building a [`super::CmdEvent`] would need.

use super::command::Reply;

/// Appends `s` as a JSON string, escaped exactly as serde_json escapes it: `"` and `\`
/// with a backslash, the control characters `\b \t \n \f \r` by name and the others as
/// `\u00xx` (lowercase hex), every other character as is. Runs between escapes are copied
/// whole, and the scan for the next escape looks at eight bytes at a time: every argument
/// of every command passes through here (inlined for the same reason: the strings are
/// short, and a call's overhead is a good part of writing one).
#[inline]
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    while let Some(i) = next_escape(bytes, start) {
        out.extend_from_slice(&bytes[start..i]);
        write_escape(out, bytes[i]);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

const LOWS: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const ONES: u64 = 0x0101_0101_0101_0101;

/// The high bit of each zero byte of `w`, exactly: unlike the shorter borrow trick, a zero
/// byte never flags the byte above it, so the mask can be cut at any byte.
fn zero_bytes(w: u64) -> u64 {
    !(((w & LOWS).wrapping_add(LOWS)) | w | LOWS)
}

/// The high bit of each byte of `w` (eight bytes, little endian) that JSON must escape.
fn escapes_in(w: u64) -> u64 {
    zero_bytes(w & (ONES * 0xe0))
        | zero_bytes(w ^ (ONES * u64::from(b'"')))
        | zero_bytes(w ^ (ONES * u64::from(b'\\')))
}

fn word(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"))
}

/// The index of the first byte at or after `from` that JSON must escape, looking at eight
/// bytes at a time; the last, partial word is read overlapping the one before it.
fn next_escape(bytes: &[u8], from: usize) -> Option<usize> {
    let len = bytes.len();
    let mut i = from;
    while i + 8 <= len {
        let m = escapes_in(word(bytes, i));
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    if i == len {
        return None;
    }
    if len < 8 {
        return bytes[i..]
            .iter()
            .position(|&b| needs_escape(b))
            .map(|p| i + p);
    }
    // The bytes of the window below `i` were looked at already: cut them off.
    let seen = i - (len - 8);
    let m = escapes_in(word(bytes, len - 8)) >> (8 * seen);
    (m != 0).then(|| i + (m.trailing_zeros() / 8) as usize)
}

fn write_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let named = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x09 => b't',
        0x0a => b'n',
        0x0c => b'f',
        0x0d => b'r',
        _ => {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', named]);
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
            let mut ours = Vec::new();
            write_str(&mut ours, &s);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&s).unwrap(),
                "{s:?}"
            );
        }
    }
}
