//! Cheap string building for the hot paths of a run: numbers appended in place.
//!
//! `format!` goes through `core::fmt`'s dynamic machinery, about a thousand
//! instructions for a short id; a flash sale builds several ids per request, and a
//! thousand requests per seed.

/// Appends `n` in decimal.
pub fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    push_ascii(out, &digits[i..]);
}

/// Appends `n` as exactly eight lowercase hexadecimal digits (`{n:08x}`).
pub fn push_hex8(out: &mut String, n: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 8];
    for (k, d) in digits.iter_mut().enumerate() {
        *d = HEX[(n >> (4 * (7 - k))) as usize & 0xf];
    }
    push_ascii(out, &digits);
}

/// Appends ASCII bytes: one reservation, then plain pushes (validating them as UTF-8, or
/// extending by an iterator of chars, costs more than the digits themselves).
fn push_ascii(out: &mut String, ascii: &[u8]) {
    out.reserve(ascii.len());
    for &b in ascii {
        out.push(char::from(b));
    }
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
        for n in [0u32, 0xa, 0xdead_beef, u32::MAX] {
            let mut s = String::new();
            push_hex8(&mut s, n);
            assert_eq!(s, format!("{n:08x}"));
        }
    }
}
