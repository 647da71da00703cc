//! Ids built on the hot paths of a run (a flash sale builds several per request, and a
//! thousand requests per seed): numbers appended in place, without a `String` per number.

use std::fmt::Write;

/// Appends `n` in decimal.
pub fn push_decimal(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Appends `n` as exactly eight lowercase hexadecimal digits.
pub fn push_hex8(out: &mut String, n: u32) {
    // Writing to a String cannot fail.
    let _ = write!(out, "{n:08x}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_format() {
        for n in [0u64, 7, 10, 99, 12_345, u64::MAX] {
            let mut s = String::from("x");
            push_decimal(&mut s, n);
            assert_eq!(s, format!("x{n}"));
        }
        for (n, hex) in [
            (0u32, "00000000"),
            (0xa, "0000000a"),
            (0xdead_beef, "deadbeef"),
        ] {
            let mut s = String::new();
            push_hex8(&mut s, n);
            assert_eq!(s, hex);
        }
    }
}
