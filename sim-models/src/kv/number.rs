//! Doubles as Redis 7.0 reads and prints them: C's `strtod` (decimal, hexadecimal,
//! `inf`/`infinity`, `nan`), Redis' stricter `string2d` on top of it, and `%.17g`, which
//! Redis 7.0 uses for every double it replies with (ZSCORE, WITHSCORES). Rust's own
//! `parse` rejects hexadecimal and its `Display` prints the shortest round-trip text, so
//! neither matches byte for byte.

/// C's `strtod` over the whole text: leading whitespace allowed, nothing may follow the
/// number. An empty text (or only whitespace) reads as 0, as `strtod` leaves the end
/// pointer at the (empty) end. `None` when something follows the number.
pub fn strtod_all(s: &str) -> Option<f64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    if t.is_empty() {
        return Some(0.0);
    }
    read(t).map(|(v, _)| v)
}

/// Redis' `string2d`: `strtod` that must consume the whole non-empty text, with no leading
/// space, no NaN, and no overflow (`1e400`) or underflow to zero (`1e-400`).
pub fn string2d(s: &str) -> Option<f64> {
    let first = *s.as_bytes().first()?;
    if first.is_ascii_whitespace() || first == 0x0b {
        return None;
    }
    let (v, range_error) = read(s)?;
    if v.is_nan() || range_error {
        return None;
    }
    Some(v)
}

/// Reads a whole number: its value and whether `strtod` would set `ERANGE` with an
/// infinite or zero result.
fn read(t: &str) -> Option<(f64, bool)> {
    let (negative, body) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let lower = body.to_ascii_lowercase();
    let (v, range_error) = if lower == "inf" || lower == "infinity" {
        (f64::INFINITY, false)
    } else if lower == "nan" {
        (f64::NAN, false)
    } else if let Some(hex) = lower.strip_prefix("0x") {
        hex_float(hex)?
    } else {
        decimal(body)?
    };
    Some((if negative { -v } else { v }, range_error))
}

fn decimal(body: &str) -> Option<(f64, bool)> {
    // Rust accepts the same decimal grammar as strtod once words and signs are handled,
    // but also "inf"/"nan" (handled above) and a sign after the one we stripped.
    let b = body.as_bytes();
    if b.is_empty() || !(b[0].is_ascii_digit() || b[0] == b'.') {
        return None;
    }
    let v: f64 = body.parse().ok()?;
    let mantissa = body.split(['e', 'E']).next().unwrap_or("");
    let nonzero = mantissa.bytes().any(|c| (b'1'..=b'9').contains(&c));
    let range_error = v.is_infinite() || (v == 0.0 && nonzero);
    Some((v, range_error))
}

/// The digits after `0x`: hex digits with an optional point, then an optional binary
/// exponent `p[+-]digits`.
fn hex_float(hex: &str) -> Option<(f64, bool)> {
    let (mantissa, exponent) = match hex.split_once('p') {
        Some((m, e)) => (m, Some(e)),
        None => (hex, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int_part.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac_part.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    if let Some(e) = exponent {
        let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let n: i32 = e.parse().unwrap_or(if e.starts_with('-') {
            i32::MIN
        } else {
            i32::MAX
        });
        v *= 2f64.powi(n);
    }
    let range_error =
        v.is_infinite() || (v == 0.0 && mantissa.chars().any(|c| c != '0' && c != '.'));
    Some((v, range_error))
}

/// C's `printf("%.17g", x)`, with Redis' `inf`/`-inf` (and `nan`) spellings.
pub fn fmt_g17(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // 17 significant digits, correctly rounded, as `d.dddde±x`.
    let sci = format!("{x:.16e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e}'s exponent is an integer");
    if !(-4..17).contains(&exp) {
        let m = trim_fraction(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.unsigned_abs());
    }
    let decimals = usize::try_from(16 - exp).unwrap_or(0);
    trim_fraction(&format!("{x:.decimals$}")).to_string()
}

/// `%g` drops trailing zeros of the fraction, and the point when nothing is left.
fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g17_matches_redis_7_0s_replies() {
        // Each pair is what Redis 7.0.15 answered to ZSCORE after ZADD of the text.
        for (x, want) in [
            (16.0, "16"),
            (0.1, "0.10000000000000001"),
            (1e20, "1e+20"),
            (1.5, "1.5"),
            (-2.0, "-2"),
            (1e-5, "1.0000000000000001e-05"),
            (123456789.0, "123456789"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (0.0001, "0.0001"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(fmt_g17(x), want, "{x}");
        }
    }

    #[test]
    fn string2d_reads_what_strtod_reads_and_refuses_what_redis_refuses() {
        assert_eq!(string2d("0x10"), Some(16.0));
        assert_eq!(string2d("-0x1.8p1"), Some(-3.0));
        assert_eq!(string2d("1e3"), Some(1000.0));
        assert_eq!(string2d(".5"), Some(0.5));
        assert_eq!(string2d("+inf"), Some(f64::INFINITY));
        assert_eq!(string2d("-Infinity"), Some(f64::NEG_INFINITY));
        for bad in [
            "", " 1", "1 ", "nan", "abc", "1e400", "1e-400", "0x", "--1", "1.5x",
        ] {
            assert_eq!(string2d(bad), None, "{bad:?}");
        }
        assert_eq!(strtod_all(""), Some(0.0));
        assert_eq!(strtod_all(" 2"), Some(2.0));
    }
}
