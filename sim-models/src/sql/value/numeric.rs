//! `numeric`: PostgreSQL's exact decimal, as `digits × 10^-scale` over an
//! arbitrary-precision integer, so that the model has PostgreSQL's precision (131,072
//! digits before the point, 16,383 after) rather than a fixed-width decimal's 28 or 38
//! digits, and every rule below is PostgreSQL 15's own (`numeric.c`):
//!
//! - the scale is the display scale: `1.50` keeps its zero; `+`/`-` take the larger
//!   scale, `*` the sum of the scales, `/` `select_div_scale` (at least 16 significant
//!   digits, never fewer decimals than either operand), all rounded half away from zero;
//! - equality and order ignore the scale (`1.5 = 1.50`), so a unique index holds one of
//!   them;
//! - input (`numeric_in`) takes an exponent (`1.5e3`) and text output never writes one.
//!
//! `NaN` and the infinities (which PostgreSQL 15's numeric has) are refused with 0A000.

use std::cmp::Ordering;
use std::fmt;

use num_bigint::{BigInt, Sign};
use num_traits::{Signed, ToPrimitive, Zero};

use crate::sql::error::SqlError;

/// An exact decimal: `digits × 10^-scale`, `scale` being the digits written after the
/// point.
#[derive(Clone, Debug)]
pub struct Numeric {
    digits: BigInt,
    scale: u32,
}

/// `NUMERIC_MIN_SIG_DIGITS`: the least significant digits of a quotient.
const MIN_SIG_DIGITS: i64 = 16;
/// `NUMERIC_MAX_DISPLAY_SCALE`.
const MAX_DISPLAY_SCALE: i64 = 1000;
/// `NUMERIC_DSCALE_MAX`: the largest scale a value can carry.
const DSCALE_MAX: u32 = 0x3FFF;
/// Digits before the point PostgreSQL's format holds (`NUMERIC_WEIGHT_MAX + 1` groups
/// of four).
const INTEGER_DIGITS_MAX: u64 = 131_072;
/// `NUMERIC_MAX_PRECISION`: the largest exponent of an input and precision of a type.
pub const MAX_PRECISION: i64 = 1000;

fn pow10(n: u32) -> BigInt {
    BigInt::from(10u32).pow(n)
}

fn overflow() -> SqlError {
    SqlError::NumericValueOutOfRange {
        detail: "value overflows numeric format".into(),
    }
}

fn refused_special(s: &str) -> SqlError {
    SqlError::FeatureNotSupported {
        feature: format!("the numeric {s} (NaN and infinities are not modelled)"),
    }
}

impl Numeric {
    pub fn zero() -> Numeric {
        Numeric {
            digits: BigInt::zero(),
            scale: 0,
        }
    }

    /// `value × 10^-scale`.
    pub fn new(digits: impl Into<BigInt>, scale: u32) -> Numeric {
        Numeric {
            digits: digits.into(),
            scale,
        }
    }

    pub fn from_i64(i: i64) -> Numeric {
        Numeric::new(i, 0)
    }

    /// The display scale: digits after the point.
    pub fn scale(&self) -> u32 {
        self.scale
    }

    pub fn is_zero(&self) -> bool {
        self.digits.is_zero()
    }

    pub fn is_negative(&self) -> bool {
        self.digits.sign() == Sign::Minus
    }

    /// `numeric_in`: optional surrounding whitespace, a sign, digits with at most one
    /// point, an optional exponent within ±1000; 22P02 otherwise.
    pub fn parse(s: &str) -> Result<Numeric, SqlError> {
        let invalid = || SqlError::InvalidTextRepresentation {
            detail: format!("type numeric: \"{s}\""),
        };
        let t = s.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\u{b}');
        let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
        if ["nan", "infinity", "inf"].contains(&unsigned.to_ascii_lowercase().as_str())
            && (unsigned.len() == t.len() || !unsigned.eq_ignore_ascii_case("nan"))
        {
            return Err(refused_special(t));
        }
        let negative = t.starts_with('-');
        let bytes = unsigned.as_bytes();
        let mut i = 0;
        let mut text = String::with_capacity(bytes.len());
        let mut fraction: i64 = 0;
        let mut point = false;
        while i < bytes.len() {
            match bytes[i] {
                b @ b'0'..=b'9' => {
                    text.push(b as char);
                    if point {
                        fraction += 1;
                    }
                }
                b'.' if !point => point = true,
                _ => break,
            }
            i += 1;
        }
        if text.is_empty() {
            return Err(invalid());
        }
        let mut exponent: i64 = 0;
        if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
            // strtol: leading blanks and a sign, then digits.
            let rest = unsigned[i + 1..].trim_start_matches(|c: char| c.is_ascii_whitespace());
            let (sign, digits) = match rest.strip_prefix('-') {
                Some(d) => (-1, d),
                None => (1, rest.strip_prefix('+').unwrap_or(rest)),
            };
            let n = digits.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return Err(invalid());
            }
            let value: i64 = digits[..n].parse().unwrap_or(i64::MAX);
            if value > MAX_PRECISION {
                return Err(invalid());
            }
            exponent = sign * value;
            i = unsigned.len() - (digits.len() - n);
        }
        if i != unsigned.len() {
            return Err(invalid());
        }
        let mut digits: BigInt = text.parse().map_err(|_| invalid())?;
        if negative {
            digits = -digits;
        }
        let scale = fraction - exponent;
        let n = if scale < 0 {
            Numeric::new(digits * pow10((-scale) as u32), 0)
        } else {
            Numeric::new(digits, scale as u32)
        };
        n.checked()
    }

    /// 22003 beyond the 131,072 digits before the point of PostgreSQL's format.
    fn checked(self) -> Result<Numeric, SqlError> {
        // Only a very long number needs the exact count.
        let bits = self.digits.bits();
        if bits > (INTEGER_DIGITS_MAX + u64::from(self.scale)) * 3 {
            let integer_digits =
                (self.digits.abs().to_string().len() as u64).saturating_sub(u64::from(self.scale));
            if integer_digits > INTEGER_DIGITS_MAX {
                return Err(overflow());
            }
        }
        Ok(self)
    }

    /// The digits at a scale at least `self.scale`.
    fn digits_at(&self, scale: u32) -> BigInt {
        debug_assert!(scale >= self.scale);
        if scale == self.scale {
            self.digits.clone()
        } else {
            &self.digits * pow10(scale - self.scale)
        }
    }

    pub fn add(&self, other: &Numeric) -> Result<Numeric, SqlError> {
        let scale = self.scale.max(other.scale);
        Numeric::new(self.digits_at(scale) + other.digits_at(scale), scale).checked()
    }

    pub fn sub(&self, other: &Numeric) -> Result<Numeric, SqlError> {
        let scale = self.scale.max(other.scale);
        Numeric::new(self.digits_at(scale) - other.digits_at(scale), scale).checked()
    }

    /// The exact product, rounded to 16,383 decimals if it has more (as
    /// `numeric_mul_opt_error`).
    pub fn mul(&self, other: &Numeric) -> Result<Numeric, SqlError> {
        let n = Numeric::new(&self.digits * &other.digits, self.scale + other.scale);
        let n = if n.scale > DSCALE_MAX {
            n.round(i64::from(DSCALE_MAX))
        } else {
            n
        };
        n.checked()
    }

    /// The quotient at `select_div_scale`'s scale, rounded half away from zero; 22012 for
    /// a zero divisor.
    pub fn div(&self, other: &Numeric) -> Result<Numeric, SqlError> {
        if other.is_zero() {
            return Err(SqlError::DivisionByZero);
        }
        let scale = self.div_scale(other);
        // digits1 × 10^(scale + s2 - s1) / digits2 is the quotient × 10^scale.
        let shift = scale + other.scale - self.scale;
        let n = &self.digits * pow10(shift);
        let q = &n / &other.digits;
        let r = &n % &other.digits;
        let q = if (r.abs() * 2u32) >= other.digits.abs() {
            if (n.sign() == Sign::Minus) != (other.digits.sign() == Sign::Minus) {
                q - 1
            } else {
                q + 1
            }
        } else {
            q
        };
        Numeric::new(q, scale).checked()
    }

    /// `a % b`: `a - trunc(a / b) × b`, at the larger scale; 22012 for a zero divisor.
    pub fn rem(&self, other: &Numeric) -> Result<Numeric, SqlError> {
        if other.is_zero() {
            return Err(SqlError::DivisionByZero);
        }
        let scale = self.scale.max(other.scale);
        Ok(Numeric::new(
            self.digits_at(scale) % other.digits_at(scale),
            scale,
        ))
    }

    pub fn neg(&self) -> Numeric {
        Numeric::new(-&self.digits, self.scale)
    }

    pub fn abs(&self) -> Numeric {
        Numeric::new(self.digits.abs(), self.scale)
    }

    /// PostgreSQL's weight (in base-10000 digits) and first base-10000 digit of a
    /// non-zero value, as `select_div_scale` reads them; (0, 0) for zero.
    fn weight_and_first_digit(&self) -> (i64, u32) {
        if self.is_zero() {
            return (0, 0);
        }
        let text = self.digits.abs().to_string();
        // The decimal exponent of the leading digit.
        let e = text.len() as i64 - 1 - i64::from(self.scale);
        let weight = e.div_euclid(4);
        let lead = (e - 4 * weight + 1) as usize;
        let mut first = 0u32;
        for k in 0..lead {
            let d = text.as_bytes().get(k).map_or(0, |b| u32::from(b - b'0'));
            first = first * 10 + d;
        }
        (weight, first)
    }

    /// `select_div_scale`: enough decimals for 16 significant digits, at least either
    /// operand's scale, at most 1000.
    fn div_scale(&self, other: &Numeric) -> u32 {
        let (w1, f1) = self.weight_and_first_digit();
        let (w2, f2) = other.weight_and_first_digit();
        let mut qweight = w1 - w2;
        if f1 <= f2 {
            qweight -= 1;
        }
        let scale = (MIN_SIG_DIGITS - qweight * 4)
            .max(i64::from(self.scale))
            .max(i64::from(other.scale))
            .clamp(0, MAX_DISPLAY_SCALE);
        scale as u32
    }

    /// Rounded half away from zero to `scale` decimals, which it then has (a negative
    /// scale rounds to tens, hundreds...; the result then has no decimals).
    pub fn round(&self, scale: i64) -> Numeric {
        if scale >= i64::from(self.scale) {
            // More decimals: the same value, written with them (`round(1.5, 3)` = 1.500).
            let scale = scale.min(i64::from(DSCALE_MAX)) as u32;
            return Numeric::new(self.digits_at(scale), scale);
        }
        let drop = (i64::from(self.scale) - scale) as u32;
        let unit = pow10(drop);
        let q = &self.digits / &unit;
        let r = &self.digits % &unit;
        let q = if r.abs() * 2u32 >= unit {
            if self.is_negative() {
                q - 1
            } else {
                q + 1
            }
        } else {
            q
        };
        if scale >= 0 {
            Numeric::new(q, scale as u32)
        } else {
            Numeric::new(q * pow10((-scale) as u32), 0)
        }
    }

    /// The value stored in a `numeric(precision, scale)` column: rounded to the scale, and
    /// 22003 (numeric field overflow) if it then needs more than `precision - scale`
    /// digits before the point.
    pub fn with_typmod(&self, precision: u32, scale: i32) -> Result<Numeric, SqlError> {
        let rounded = self.round(i64::from(scale));
        let integer_digits = i64::from(precision) - i64::from(scale);
        // |value| < 10^integer_digits, on the digits: < 10^(integer_digits + scale).
        let exp = integer_digits + i64::from(rounded.scale);
        let magnitude = rounded.digits.abs();
        let too_big = if exp < 0 {
            !magnitude.is_zero()
        } else {
            magnitude >= pow10(exp as u32)
        };
        if too_big {
            return Err(SqlError::NumericValueOutOfRange {
                detail: format!(
                    "numeric field overflow: a field with precision {precision}, scale {scale} \
                     must round to an absolute value less than 10^{integer_digits}"
                ),
            });
        }
        Ok(rounded)
    }

    /// `numeric_int8`: rounded half away from zero; 22003 outside bigint.
    pub fn to_i64(&self) -> Result<i64, SqlError> {
        self.round(0)
            .digits
            .to_i64()
            .ok_or_else(|| SqlError::NumericValueOutOfRange {
                detail: "bigint out of range".into(),
            })
    }

    /// The value if it is a whole number within bigint.
    pub fn as_exact_i64(&self) -> Option<i64> {
        let unit = pow10(self.scale);
        if !(&self.digits % &unit).is_zero() {
            return None;
        }
        (&self.digits / unit).to_i64()
    }

    /// `numeric_float8`: the nearest double to the decimal (its text read by `strtod`);
    /// 22003 beyond the double's range.
    pub fn to_f64(&self) -> Result<f64, SqlError> {
        let text = self.to_string();
        let x: f64 = text.parse().unwrap_or(f64::NAN);
        if x.is_infinite() {
            return Err(SqlError::NumericValueOutOfRange {
                detail: format!("\"{text}\" is out of range for type double precision"),
            });
        }
        Ok(x)
    }

    /// `float8_numeric`: the double's 15 significant digits (`%.15g`) read as a numeric.
    pub fn from_f64(x: f64) -> Result<Numeric, SqlError> {
        if !x.is_finite() {
            return Err(refused_special(&format!("{x}")));
        }
        if x == 0.0 {
            return Ok(Numeric::zero());
        }
        let e = format!("{x:.14e}");
        let (mantissa, exp) = e.split_once('e').expect("exponent form");
        let exp: i64 = exp.parse().expect("an exponent");
        let negative = mantissa.starts_with('-');
        let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
        let digits = digits.trim_end_matches('0');
        let digits = if digits.is_empty() { "0" } else { digits };
        // value = digits × 10^(exp - (len - 1))
        let power = exp - (digits.len() as i64 - 1);
        let mut m: BigInt = digits.parse().expect("digits");
        if negative {
            m = -m;
        }
        Ok(if power >= 0 {
            Numeric::new(m * pow10(power as u32), 0)
        } else {
            Numeric::new(m, (-power) as u32)
        })
    }

    /// Same value whatever the scale (`1.5` and `1.50`): the digits without trailing
    /// zeros, for hashing.
    pub(crate) fn normalized(&self) -> (BigInt, u32) {
        let mut digits = self.digits.clone();
        let mut scale = self.scale;
        let ten = BigInt::from(10u32);
        while scale > 0 && !digits.is_zero() && (&digits % &ten).is_zero() {
            digits /= &ten;
            scale -= 1;
        }
        if digits.is_zero() {
            scale = 0;
        }
        (digits, scale)
    }
}

impl PartialEq for Numeric {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Numeric {}

impl PartialOrd for Numeric {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// By value, whatever the scales.
impl Ord for Numeric {
    fn cmp(&self, other: &Self) -> Ordering {
        if self.scale == other.scale {
            return self.digits.cmp(&other.digits);
        }
        let sign = |n: &Numeric| n.digits.sign();
        match (sign(self), sign(other)) {
            (a, b) if a != b => a.cmp(&b),
            _ => {
                let scale = self.scale.max(other.scale);
                self.digits_at(scale).cmp(&other.digits_at(scale))
            }
        }
    }
}

impl std::hash::Hash for Numeric {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let (digits, scale) = self.normalized();
        digits.hash(state);
        scale.hash(state);
    }
}

/// `numeric_out`: plain digits, the scale's decimals, no exponent.
impl fmt::Display for Numeric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.digits.abs().to_string();
        if self.is_negative() {
            f.write_str("-")?;
        }
        let scale = self.scale as usize;
        if scale == 0 {
            return f.write_str(&text);
        }
        if text.len() > scale {
            let (int, frac) = text.split_at(text.len() - scale);
            write!(f, "{int}.{frac}")
        } else {
            write!(f, "0.{}{text}", "0".repeat(scale - text.len()))
        }
    }
}

impl serde::Serialize for Numeric {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Numeric {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Numeric::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Numeric {
        Numeric::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn input_and_output_as_postgres() {
        for (input, out) in [
            ("1.50", "1.50"),
            ("  -0.00 ", "0.00"),
            ("+12", "12"),
            (".5", "0.5"),
            ("1.", "1"),
            ("1e2", "100"),
            ("1.0e1", "10"),
            ("1.5E-3", "0.0015"),
            ("-000123.4500", "-123.4500"),
            (
                "12345678901234567890123456789012345678901234.5",
                "12345678901234567890123456789012345678901234.5",
            ),
        ] {
            assert_eq!(n(input).to_string(), out, "{input}");
        }
        for bad in ["", "abc", "1.2.3", "1e", "1e1001", "- 1", "1 2", "e5"] {
            let e = Numeric::parse(bad).unwrap_err();
            assert_eq!(e.sqlstate(), Some("22P02"), "{bad}: {e}");
        }
        for special in ["NaN", "-Infinity", "inf"] {
            assert_eq!(
                Numeric::parse(special).unwrap_err().sqlstate(),
                Some("0A000")
            );
        }
    }

    #[test]
    fn arithmetic_keeps_postgres_scales() {
        type Op = fn(&Numeric, &Numeric) -> Result<Numeric, SqlError>;
        let cases: [(&str, Op, &str, &str); 12] = [
            ("1.50", Numeric::add, "1", "2.50"),
            ("1.5", Numeric::sub, "0.25", "1.25"),
            ("1.50", Numeric::mul, "2.0", "3.000"),
            ("1", Numeric::div, "3", "0.33333333333333333333"),
            ("10", Numeric::div, "4", "2.5000000000000000"),
            ("3.75", Numeric::div, "2", "1.8750000000000000"),
            ("2", Numeric::div, "3", "0.66666666666666666667"),
            ("-2", Numeric::div, "3", "-0.66666666666666666667"),
            ("123456789", Numeric::div, "0.001", "123456789000.00000000"),
            ("1", Numeric::div, "7.00000", "0.14285714285714285714"),
            ("7.5", Numeric::rem, "2", "1.5"),
            ("-7.5", Numeric::rem, "2", "-1.5"),
        ];
        for (a, op, b, want) in cases {
            assert_eq!(op(&n(a), &n(b)).unwrap().to_string(), want, "{a} op {b}");
        }
        assert_eq!(n("1").div(&n("0.0")).unwrap_err().sqlstate(), Some("22012"));
    }

    #[test]
    fn comparison_ignores_the_scale() {
        assert_eq!(n("1.5"), n("1.50"));
        assert!(n("-1") < n("0.5"));
        assert!(n("10") > n("9.999"));
        use std::hash::BuildHasher;
        let h = crate::fixed_hash::FixedState::default();
        assert_eq!(h.hash_one(n("1.5")), h.hash_one(n("1.500")));
        assert_eq!(h.hash_one(n("0")), h.hash_one(n("0.00")));
    }

    #[test]
    fn typmod_rounds_and_overflows() {
        assert_eq!(n("1.005").with_typmod(5, 2).unwrap().to_string(), "1.01");
        assert_eq!(n("-1.005").with_typmod(5, 2).unwrap().to_string(), "-1.01");
        assert_eq!(n("2").with_typmod(5, 2).unwrap().to_string(), "2.00");
        assert_eq!(
            n("999.994").with_typmod(5, 2).unwrap().to_string(),
            "999.99"
        );
        let e = n("999.995").with_typmod(5, 2).unwrap_err();
        assert_eq!(e.sqlstate(), Some("22003"));
        assert_eq!(n("1234").with_typmod(2, -2).unwrap().to_string(), "1200");
    }

    #[test]
    fn conversions() {
        assert_eq!(n("2.5").to_i64().unwrap(), 3);
        assert_eq!(n("-2.5").to_i64().unwrap(), -3);
        assert_eq!(n("1e30").to_i64().unwrap_err().sqlstate(), Some("22003"));
        assert_eq!(Numeric::from_f64(0.1).unwrap().to_string(), "0.1");
        assert_eq!(
            Numeric::from_f64(1.0 / 3.0).unwrap().to_string(),
            "0.333333333333333"
        );
        assert_eq!(
            Numeric::from_f64(1e20).unwrap().to_string(),
            "100000000000000000000"
        );
        assert_eq!(
            Numeric::from_f64(-2.5e-7).unwrap().to_string(),
            "-0.00000025"
        );
        assert_eq!(n("0.1").to_f64().unwrap(), 0.1);
    }
}
