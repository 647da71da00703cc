//! Transitional: hand-written JSON strings, byte for byte what serde_json writes, still
//! used by the sql and queue models' trace writers; kv's own events are typed now.

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

#[cfg(test)]
mod tests {
    use super::*;

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
