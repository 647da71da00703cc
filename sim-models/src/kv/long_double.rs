//! INCRBYFLOAT's arithmetic: Redis 7.0 reads both operands with `strtold`, adds them as
//! C `long double`s (the x87 80-bit format on x86-64: a 64-bit mantissa) and prints the sum
//! with `%.17Lf`, trailing zeros cut. An `f64` gives other digits (`INCRBYFLOAT k
//! 1234.5678` answers `1234.56779999999999997` on Redis, `1234.5678000000000338` in f64),
//! so this module emulates the format exactly: correctly rounded reading, one correctly
//! rounded addition, exact printing, each on a small big-integer type.
//!
//! Subnormal long doubles (below 2^-16382) keep a full mantissa here instead of losing
//! bits; no reply of a realistic workload reaches them.

use std::cmp::Ordering;

/// A non-negative big integer, 32-bit limbs, least significant first, no trailing zeros.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from_u64(v: u64) -> Big {
        let mut b = Big(vec![v as u32, (v >> 32) as u32]);
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn bits(&self) -> u64 {
        match self.0.last() {
            None => 0,
            Some(top) => 32 * (self.0.len() as u64 - 1) + u64::from(32 - top.leading_zeros()),
        }
    }

    fn bit(&self, i: u64) -> bool {
        let limb = (i / 32) as usize;
        self.0.get(limb).is_some_and(|l| (l >> (i % 32)) & 1 == 1)
    }

    /// Whether any bit below `i` is set.
    fn any_below(&self, i: u64) -> bool {
        let full = (i / 32) as usize;
        if self.0.iter().take(full).any(|l| *l != 0) {
            return true;
        }
        let rest = i % 32;
        rest > 0
            && self
                .0
                .get(full)
                .is_some_and(|l| l & ((1u32 << rest) - 1) != 0)
    }

    fn mul_add_small(&mut self, m: u32, a: u32) {
        let mut carry = u64::from(a);
        for l in &mut self.0 {
            let v = u64::from(*l) * u64::from(m) + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    fn pow10(n: u64) -> Big {
        let mut b = Big::from_u64(1);
        for _ in 0..n {
            b.mul_add_small(10, 0);
        }
        b
    }

    fn shl(&self, n: u64) -> Big {
        if self.is_zero() {
            return self.clone();
        }
        let limbs = (n / 32) as usize;
        let bits = (n % 32) as u32;
        let mut out = vec![0u32; limbs];
        let mut carry = 0u32;
        for l in &self.0 {
            if bits == 0 {
                out.push(*l);
            } else {
                out.push((l << bits) | carry);
                carry = l >> (32 - bits);
            }
        }
        if carry > 0 {
            out.push(carry);
        }
        let mut b = Big(out);
        b.trim();
        b
    }

    fn shr(&self, n: u64) -> Big {
        let limbs = (n / 32) as usize;
        if limbs >= self.0.len() {
            return Big(vec![]);
        }
        let bits = (n % 32) as u32;
        let src = &self.0[limbs..];
        let mut out = Vec::with_capacity(src.len());
        for i in 0..src.len() {
            let lo = src[i] >> bits;
            let hi = if bits == 0 {
                0
            } else {
                src.get(i + 1).map_or(0, |h| h << (32 - bits))
            };
            out.push(lo | hi);
        }
        let mut b = Big(out);
        b.trim();
        b
    }

    fn cmp(&self, other: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    fn add(&self, other: &Big) -> Big {
        let mut out = Vec::with_capacity(self.0.len().max(other.0.len()) + 1);
        let mut carry = 0u64;
        for i in 0..self.0.len().max(other.0.len()) {
            let v = u64::from(*self.0.get(i).unwrap_or(&0))
                + u64::from(*other.0.get(i).unwrap_or(&0))
                + carry;
            out.push(v as u32);
            carry = v >> 32;
        }
        if carry > 0 {
            out.push(carry as u32);
        }
        Big(out)
    }

    /// `self - other`, with `self >= other`.
    fn sub(&self, other: &Big) -> Big {
        let mut out = Vec::with_capacity(self.0.len());
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let mut v = i64::from(self.0[i]) - i64::from(*other.0.get(i).unwrap_or(&0)) - borrow;
            borrow = 0;
            if v < 0 {
                v += 1 << 32;
                borrow = 1;
            }
            out.push(v as u32);
        }
        let mut b = Big(out);
        b.trim();
        b
    }

    fn low_u64(&self) -> u64 {
        u64::from(*self.0.first().unwrap_or(&0)) | (u64::from(*self.0.get(1).unwrap_or(&0)) << 32)
    }

    fn to_decimal(&self) -> String {
        if self.is_zero() {
            return "0".into();
        }
        let mut limbs = self.0.clone();
        let mut chunks = Vec::new();
        while !limbs.is_empty() {
            let mut rem = 0u64;
            for l in limbs.iter_mut().rev() {
                let v = (rem << 32) | u64::from(*l);
                *l = (v / 1_000_000_000) as u32;
                rem = v % 1_000_000_000;
            }
            while limbs.last() == Some(&0) {
                limbs.pop();
            }
            chunks.push(rem);
        }
        let mut s = chunks.pop().map(|c| c.to_string()).unwrap_or_default();
        for c in chunks.iter().rev() {
            s.push_str(&format!("{c:09}"));
        }
        s
    }
}

/// A finite long double: `(-1)^negative * mantissa * 2^exponent`, the mantissa's top bit
/// set unless it is zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongDouble {
    negative: bool,
    mantissa: u64,
    exponent: i64,
}

/// What `strtold` read: a finite number, or an infinity (which Redis accepts as an operand
/// and then refuses as a result).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    Finite(LongDouble),
    Infinite,
}

/// The largest binary exponent of a finite long double's leading bit, and the smallest
/// of a subnormal's.
const MAX_LEADING: i64 = 16383;
const MIN_LEADING: i64 = -16445;

/// Rounds `n * 2^exp` to a 64-bit mantissa (ties to even); `None` on overflow to infinity
/// or underflow of a non-zero value to zero (C's ERANGE cases that Redis refuses).
fn round(negative: bool, n: &Big, exp: i64) -> Option<LongDouble> {
    if n.is_zero() {
        return Some(LongDouble {
            negative,
            mantissa: 0,
            exponent: 0,
        });
    }
    let bits = n.bits();
    let (mut mantissa, mut exponent) = if bits <= 64 {
        (n.shl(64 - bits).low_u64(), exp - (64 - bits) as i64)
    } else {
        let drop = bits - 64;
        let kept = n.shr(drop).low_u64();
        let half = n.bit(drop - 1);
        let sticky = n.any_below(drop - 1);
        let up = half && (sticky || kept & 1 == 1);
        match kept.checked_add(u64::from(up)) {
            Some(m) => (m, exp + drop as i64),
            None => (1 << 63, exp + drop as i64 + 1),
        }
    };
    let leading = exponent + 63;
    if leading > MAX_LEADING {
        return None;
    }
    if leading < MIN_LEADING {
        return None;
    }
    if mantissa == 0 {
        exponent = 0;
        mantissa = 0;
    }
    Some(LongDouble {
        negative,
        mantissa,
        exponent,
    })
}

/// `num / den` rounded to a long double (`den` > 0).
fn round_quotient(negative: bool, num: &Big, den: &Big) -> Option<LongDouble> {
    if num.is_zero() {
        return round(negative, num, 0);
    }
    // Scale so that the quotient has 65 or 66 bits, then round it with the remainder as a
    // sticky bit.
    let shift = 66 + den.bits() as i64 - num.bits() as i64;
    let (n, d) = if shift >= 0 {
        (num.shl(shift as u64), den.clone())
    } else {
        (num.clone(), den.shl((-shift) as u64))
    };
    let mut q = Big(vec![]);
    let mut r = n;
    let top = r.bits().saturating_sub(d.bits());
    for i in (0..=top).rev() {
        let ds = d.shl(i);
        if r.cmp(&ds) != Ordering::Less {
            r = r.sub(&ds);
            q = q.add(&Big::from_u64(1).shl(i));
        }
    }
    // A non-zero remainder only matters below the rounding bit: fold it into the lowest.
    if !r.is_zero() {
        q = q.shl(1).add(&Big::from_u64(1));
        return round(negative, &q, -shift - 1);
    }
    round(negative, &q, -shift)
}

/// Redis' `string2ld`: `strtold` over the whole text, which must not be empty, start with
/// a space, be NaN, or overflow or underflow (ERANGE).
pub fn read(s: &str) -> Option<Read> {
    let first = *s.as_bytes().first()?;
    if first.is_ascii_whitespace() || first == 0x0b || s.len() >= 5 * 1024 {
        return None;
    }
    let (negative, body) = match first {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(Read::Infinite);
    }
    if lower.starts_with("nan") {
        return None;
    }
    let finite = match lower.strip_prefix("0x") {
        Some(hex) => read_hex(negative, hex)?,
        None => read_decimal(negative, &lower)?,
    };
    Some(Read::Finite(finite))
}

fn digits_value(digits: &str, radix: u32) -> Option<Big> {
    let mut n = Big(vec![]);
    for c in digits.chars() {
        n.mul_add_small(radix, c.to_digit(radix)?);
    }
    Some(n)
}

/// An exponent's digits (`+12`, `-3`), saturated far beyond any finite long double.
fn exponent_value(e: &str) -> Option<i64> {
    let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let v = digits.parse::<i64>().unwrap_or(1 << 40).min(1 << 40);
    Some(if e.starts_with('-') { -v } else { v })
}

fn read_decimal(negative: bool, body: &str) -> Option<LongDouble> {
    let (mantissa, exp) = match body.split_once('e') {
        Some((m, e)) => (m, exponent_value(e)?),
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let all = format!("{int_part}{frac_part}");
    let n = digits_value(&all, 10)?;
    if n.is_zero() {
        return round(negative, &n, 0);
    }
    let exp10 = exp - frac_part.len() as i64;
    // Beyond these the value is surely infinite or zero (texts are under 5 KiB).
    let magnitude = exp10 + all.len() as i64;
    if !(-5000..=5000).contains(&magnitude) {
        return None;
    }
    if exp10 >= 0 {
        let num = digits_value(&format!("{all}{}", "0".repeat(exp10 as usize)), 10)?;
        round(negative, &num, 0)
    } else {
        round_quotient(negative, &n, &Big::pow10((-exp10) as u64))
    }
}

fn read_hex(negative: bool, hex: &str) -> Option<LongDouble> {
    let (mantissa, exp) = match hex.split_once('p') {
        Some((m, e)) => (m, exponent_value(e)?),
        None => (hex, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let n = digits_value(&format!("{int_part}{frac_part}"), 16)?;
    let exp2 = exp - 4 * frac_part.len() as i64;
    if !n.is_zero() && (exp2 + n.bits() as i64 > 20000 || exp2 + (n.bits() as i64) < -20000) {
        return None;
    }
    round(negative, &n, exp2)
}

impl LongDouble {
    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// The correctly rounded sum; `None` when it overflows to infinity.
    pub fn checked_add(self, other: LongDouble) -> Option<LongDouble> {
        if other.is_zero() {
            return Some(if self.is_zero() {
                // -0 + -0 is -0; any other sum of zeros is +0.
                LongDouble {
                    negative: self.negative && other.negative,
                    ..self
                }
            } else {
                self
            });
        }
        if self.is_zero() {
            return Some(other);
        }
        let e = self.exponent.min(other.exponent);
        let a = Big::from_u64(self.mantissa).shl((self.exponent - e) as u64);
        let b = Big::from_u64(other.mantissa).shl((other.exponent - e) as u64);
        let (negative, sum) = if self.negative == other.negative {
            (self.negative, a.add(&b))
        } else {
            match a.cmp(&b) {
                Ordering::Equal => (false, Big(vec![])),
                Ordering::Greater => (self.negative, a.sub(&b)),
                Ordering::Less => (other.negative, b.sub(&a)),
            }
        };
        round(negative, &sum, e)
    }

    /// `%.17Lf` with the trailing zeros (and a bare point) cut, and `-0` as `0`: Redis'
    /// `ld2string(.., LD_STR_HUMAN)`.
    pub fn to_human(self) -> String {
        let m = Big::from_u64(self.mantissa);
        let digits = if self.exponent >= 0 {
            m.shl(self.exponent as u64).to_decimal() + &"0".repeat(17)
        } else {
            // (m * 10^17) / 2^-e, rounded to nearest, ties to even.
            let x = {
                let mut x = m;
                for _ in 0..17 {
                    x.mul_add_small(10, 0);
                }
                x
            };
            let drop = (-self.exponent) as u64;
            let mut q = x.shr(drop);
            let half = x.bit(drop - 1);
            let sticky = x.any_below(drop - 1);
            if half && (sticky || q.bit(0)) {
                q = q.add(&Big::from_u64(1));
            }
            q.to_decimal()
        };
        let padded = format!("{digits:0>18}");
        let (int, frac) = padded.split_at(padded.len() - 17);
        let frac = frac.trim_end_matches('0');
        let mut out = String::new();
        if self.negative {
            out.push('-');
        }
        out.push_str(int);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        if out == "-0" {
            out = "0".into();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(a: &str, b: &str) -> Option<String> {
        let (Some(Read::Finite(x)), Some(Read::Finite(y))) = (read(a), read(b)) else {
            return None;
        };
        x.checked_add(y).map(LongDouble::to_human)
    }

    /// Replies of a real Redis 7.0.15 on x86-64.
    #[test]
    fn sums_print_as_redis_prints_them() {
        assert_eq!(incr("0", "1234.5678").unwrap(), "1234.56779999999999997");
        assert_eq!(
            incr("1234.56779999999999997", "0.1").unwrap(),
            "1234.66779999999999995"
        );
        assert_eq!(incr("0", "1e20").unwrap(), "100000000000000000000");
        assert_eq!(
            incr("100000000000000000000", "0.3").unwrap(),
            "100000000000000000000"
        );
        assert_eq!(incr("0", "0x10").unwrap(), "16");
        assert_eq!(incr("16", "1.5e-5").unwrap(), "16.000015");
        assert_eq!(incr("3.0", "-3").unwrap(), "0");
        assert_eq!(incr("0", "5.0e3").unwrap(), "5000");
        assert_eq!(incr("0", "-0.0").unwrap(), "0");
        assert_eq!(incr("0.1", "0.2").unwrap(), "0.3");
        assert_eq!(
            incr("0", "123456789012345678901234567890").unwrap(),
            "123456789012345678899921813504"
        );
    }

    #[test]
    fn what_strtold_refuses_or_overflows() {
        assert_eq!(read(" 1"), None);
        assert_eq!(read("1 "), None);
        assert_eq!(read(""), None);
        assert_eq!(read("x"), None);
        assert_eq!(read("nan"), None);
        assert_eq!(read("1e-5000"), None);
        assert_eq!(read("1e5000"), None);
        assert_eq!(read("inf"), Some(Read::Infinite));
        assert_eq!(read("-Infinity"), Some(Read::Infinite));
        assert!(read("0e99999").is_some());
        assert!(read(".5").is_some());
        assert_eq!(read("0x"), None);
        assert_eq!(read("1e"), None);
    }
}
