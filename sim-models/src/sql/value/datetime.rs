//! `timestamp`, `timestamptz` and `interval`, as PostgreSQL 15 keeps them: microseconds
//! since 2000-01-01 00:00:00 (UTC for `timestamptz`), and an interval of months, days and
//! microseconds. The session's `TimeZone` is UTC, so a `timestamptz` prints with `+00`
//! and converts to and from `timestamp` unchanged.
//!
//! The model's clock: `now()` is virtual time after the Unix epoch (virtual time zero is
//! 1970-01-01 00:00:00 UTC), the same clock as the kv model's default, truncated to
//! microseconds as PostgreSQL's.
//!
//! Input takes ISO dates (`2024-01-01`, `2024-01-01 10:00:00.25+02`, `T` or a blank between
//! date and time, `Z`, `UTC`, `+hh`, `+hh:mm`, `+hhmm`) and `epoch`; other forms that
//! PostgreSQL reads (`Jan 1 2024`, `today`, `infinity`, ...) are refused with 0A000 rather
//! than read differently. Intervals take `number unit` pairs (fractions for hours and
//! smaller units), `hh:mm[:ss]` and `ago`.

use std::fmt;

use sim_runtime::time::Instant;

use crate::sql::error::SqlError;

pub const USECS_PER_SEC: i64 = 1_000_000;
pub const USECS_PER_MINUTE: i64 = 60 * USECS_PER_SEC;
pub const USECS_PER_HOUR: i64 = 60 * USECS_PER_MINUTE;
pub const USECS_PER_DAY: i64 = 24 * USECS_PER_HOUR;
/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const UNIX_TO_PG_DAYS: i64 = 10_957;
/// The smallest and one past the largest timestamp (4714-11-24 BC and 294277-01-01).
const MIN_TIMESTAMP: i64 = -211_813_488_000_000_000;
const END_TIMESTAMP: i64 = 9_223_371_331_200_000_000;

fn out_of_range() -> SqlError {
    SqlError::DatetimeFieldOverflow {
        detail: "timestamp out of range".into(),
    }
}

fn field_out_of_range(s: &str) -> SqlError {
    SqlError::DatetimeFieldOverflow {
        detail: format!("date/time field value out of range: \"{s}\""),
    }
}

fn refused(what: &str, s: &str) -> SqlError {
    SqlError::FeatureNotSupported {
        feature: format!("the {what} input \"{s}\" (the model reads ISO forms only)"),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (year 0 is 1 BC).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 31,
    }
}

/// The timestamp of virtual time `t` on the model's clock (see the module docs).
pub fn from_instant(t: Instant) -> i64 {
    let micros = (t.as_nanos() / 1_000) as i64;
    micros.saturating_add(-UNIX_TO_PG_DAYS * USECS_PER_DAY)
}

/// The virtual time of a timestamp on the model's clock, if it is not before the start.
pub fn to_instant(ts: i64) -> Option<Instant> {
    let unix = ts.checked_add(UNIX_TO_PG_DAYS * USECS_PER_DAY)?;
    let nanos = u64::try_from(unix).ok()?.checked_mul(1_000)?;
    Some(Instant::from_nanos(nanos))
}

/// Reads `n` digits (at least `min`) at the start of `s`.
fn digits(s: &str, min: usize, max: usize) -> Option<(i64, &str)> {
    let n = s.bytes().take(max).take_while(u8::is_ascii_digit).count();
    if n < min {
        return None;
    }
    Some((s[..n].parse().ok()?, &s[n..]))
}

/// A time zone suffix in seconds east of UTC, if `s` (trimmed) is one.
fn zone(s: &str) -> Option<i64> {
    let s = s.trim();
    if ["z", "utc", "gmt", "zulu", "etc/utc", "ut"].contains(&s.to_ascii_lowercase().as_str()) {
        return Some(0);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, rest) = digits(rest, 1, 2)?;
    let (m, sec, rest) = if let Some(r) = rest.strip_prefix(':') {
        let (m, r) = digits(r, 2, 2)?;
        match r.strip_prefix(':') {
            Some(r) => {
                let (sec, r) = digits(r, 2, 2)?;
                (m, sec, r)
            }
            None => (m, 0, r),
        }
    } else if rest.len() == 2 && h < 100 && s.len() == 5 {
        let (m, r) = digits(rest, 2, 2)?;
        (m, 0, r)
    } else {
        (0, 0, rest)
    };
    if !rest.is_empty() || h > 15 || m > 59 || sec > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60 + sec))
}

/// Reads a timestamp (`with_tz`: a `timestamptz`, whose zone is applied; otherwise the
/// zone is ignored, as PostgreSQL ignores it for `timestamp`).
pub fn parse_timestamp(s: &str, with_tz: bool) -> Result<i64, SqlError> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("epoch") {
        return Ok(-UNIX_TO_PG_DAYS * USECS_PER_DAY);
    }
    let what = if with_tz {
        "timestamp with time zone"
    } else {
        "timestamp"
    };
    let refuse = || refused(what, s);
    let (y, rest) = digits(t, 4, 4).ok_or_else(refuse)?;
    let rest = rest.strip_prefix('-').ok_or_else(refuse)?;
    let (mo, rest) = digits(rest, 1, 2).ok_or_else(refuse)?;
    let rest = rest.strip_prefix('-').ok_or_else(refuse)?;
    let (d, rest) = digits(rest, 1, 2).ok_or_else(refuse)?;
    let (mut h, mut mi, mut sec, mut frac) = (0, 0, 0, 0i64);
    let mut rest = rest;
    let after_date = rest.strip_prefix(['T', 't']).or_else(|| {
        let r = rest.trim_start();
        (r.len() < rest.len() && r.as_bytes().first().is_some_and(u8::is_ascii_digit)).then_some(r)
    });
    if let Some(r) = after_date {
        let (hh, r) = digits(r, 1, 2).ok_or_else(refuse)?;
        let r = r.strip_prefix(':').ok_or_else(refuse)?;
        let (mm, r) = digits(r, 2, 2).ok_or_else(refuse)?;
        h = hh;
        mi = mm;
        rest = r;
        if let Some(r) = rest.strip_prefix(':') {
            let (ss, r) = digits(r, 2, 2).ok_or_else(refuse)?;
            sec = ss;
            rest = r;
            if let Some(r) = rest.strip_prefix('.') {
                let n = r.bytes().take_while(u8::is_ascii_digit).count();
                if n == 0 || n > 6 {
                    return Err(refuse());
                }
                frac = r[..n].parse::<i64>().map_err(|_| refuse())? * 10_i64.pow(6 - n as u32);
                rest = &r[n..];
            }
        }
    }
    let offset = if rest.trim().is_empty() {
        0
    } else {
        zone(rest).ok_or_else(refuse)?
    };
    if !(1..=12).contains(&mo) || d < 1 || d > i64::from(days_in_month(y, mo as u32)) || y == 0 {
        return Err(field_out_of_range(s));
    }
    if h > 24 || mi > 59 || sec > 60 || (h == 24 && (mi > 0 || sec > 0 || frac > 0)) {
        return Err(field_out_of_range(s));
    }
    let days = days_from_civil(y, mo as u32, d as u32) - UNIX_TO_PG_DAYS;
    let mut ts = days * USECS_PER_DAY
        + h * USECS_PER_HOUR
        + mi * USECS_PER_MINUTE
        + sec * USECS_PER_SEC
        + frac;
    if with_tz {
        ts -= offset * USECS_PER_SEC;
    }
    Ok(ts)
}

/// Checks a timestamp computed by arithmetic against PostgreSQL's range.
pub fn checked(ts: Option<i64>) -> Result<i64, SqlError> {
    match ts {
        Some(ts) if (MIN_TIMESTAMP..END_TIMESTAMP).contains(&ts) => Ok(ts),
        _ => Err(out_of_range()),
    }
}

/// `2024-01-01 10:00:00.25` (`+00` added for a `timestamptz`), as PostgreSQL's ISO
/// output writes it (` BC` for years before 1).
pub fn write_timestamp(f: &mut impl fmt::Write, ts: i64, with_tz: bool) -> fmt::Result {
    let days = ts.div_euclid(USECS_PER_DAY);
    let time = ts.rem_euclid(USECS_PER_DAY);
    let (y, m, d) = civil_from_days(days + UNIX_TO_PG_DAYS);
    let (bc, y) = if y <= 0 { (true, 1 - y) } else { (false, y) };
    write!(
        f,
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        time / USECS_PER_HOUR,
        time % USECS_PER_HOUR / USECS_PER_MINUTE,
        time % USECS_PER_MINUTE / USECS_PER_SEC
    )?;
    write_fraction(f, time % USECS_PER_SEC)?;
    if with_tz {
        f.write_str("+00")?;
    }
    if bc {
        f.write_str(" BC")?;
    }
    Ok(())
}

/// `.25` for 250000 µs; nothing for 0.
fn write_fraction(f: &mut impl fmt::Write, micros: i64) -> fmt::Result {
    if micros == 0 {
        return Ok(());
    }
    let s = format!("{:06}", micros.abs());
    write!(f, ".{}", s.trim_end_matches('0'))
}

/// An interval: months, days and microseconds, kept apart as PostgreSQL keeps them (a
/// month is not a fixed number of days, nor a day of hours across a DST change).
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

impl Interval {
    /// The span `interval_cmp` orders by: a month as 30 days, a day as 24 hours.
    pub(crate) fn span(&self) -> i128 {
        (i128::from(self.months) * 30 + i128::from(self.days)) * i128::from(USECS_PER_DAY)
            + i128::from(self.micros)
    }

    pub fn neg(&self) -> Result<Interval, SqlError> {
        let overflow = || SqlError::DatetimeFieldOverflow {
            detail: "interval out of range".into(),
        };
        Ok(Interval {
            months: self.months.checked_neg().ok_or_else(overflow)?,
            days: self.days.checked_neg().ok_or_else(overflow)?,
            micros: self.micros.checked_neg().ok_or_else(overflow)?,
        })
    }

    /// `interval_in` for the forms the model reads (see the module docs).
    pub fn parse(s: &str) -> Result<Interval, SqlError> {
        let refuse = || refused("interval", s);
        let overflow = || SqlError::DatetimeFieldOverflow {
            detail: format!("interval field value out of range: \"{s}\""),
        };
        let mut words: Vec<&str> = s.split_whitespace().collect();
        if words.first() == Some(&"@") {
            words.remove(0);
        }
        let ago = words.last().is_some_and(|w| w.eq_ignore_ascii_case("ago"));
        if ago {
            words.pop();
        }
        if words.is_empty() {
            return Err(refuse());
        }
        let mut iv = Interval {
            months: 0,
            days: 0,
            micros: 0,
        };
        let mut i = 0;
        while i < words.len() {
            let w = words[i];
            if w.contains(':') {
                iv.micros = iv
                    .micros
                    .checked_add(clock(w).ok_or_else(refuse)?)
                    .ok_or_else(overflow)?;
                i += 1;
                continue;
            }
            // `5 minutes` or `5minutes`.
            let split = w.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(w.len());
            let (number, mut unit) = w.split_at(split);
            if unit.is_empty() {
                unit = words.get(i + 1).copied().ok_or_else(refuse)?;
                i += 1;
            }
            i += 1;
            let number = number.trim();
            let whole_ok = number
                .strip_prefix(['+', '-'])
                .unwrap_or(number)
                .bytes()
                .all(|b| b.is_ascii_digit());
            let per_micros = match unit.to_ascii_lowercase().as_str() {
                "microsecond" | "microseconds" | "us" | "usec" | "usecs" => Some(1),
                "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" => Some(1_000),
                "second" | "seconds" | "s" | "sec" | "secs" => Some(USECS_PER_SEC),
                "minute" | "minutes" | "m" | "min" | "mins" => Some(USECS_PER_MINUTE),
                "hour" | "hours" | "h" | "hr" | "hrs" => Some(USECS_PER_HOUR),
                _ => None,
            };
            if let Some(per) = per_micros {
                let x: f64 = number.parse().map_err(|_| refuse())?;
                let micros = if whole_ok {
                    number
                        .parse::<i64>()
                        .ok()
                        .and_then(|n| n.checked_mul(per))
                        .ok_or_else(overflow)?
                } else {
                    let m = (x * per as f64).round();
                    if !m.is_finite() || m.abs() > 9.2e18 {
                        return Err(overflow());
                    }
                    m as i64
                };
                iv.micros = iv.micros.checked_add(micros).ok_or_else(overflow)?;
                continue;
            }
            if !whole_ok || number.is_empty() {
                return Err(refuse());
            }
            let n: i32 = number.parse().map_err(|_| overflow())?;
            let (days, months) = match unit.to_ascii_lowercase().as_str() {
                "day" | "days" | "d" => (Some(n), None),
                "week" | "weeks" | "w" => (Some(n.checked_mul(7).ok_or_else(overflow)?), None),
                "month" | "months" | "mon" | "mons" => (None, Some(n)),
                "year" | "years" | "y" | "yr" | "yrs" => {
                    (None, Some(n.checked_mul(12).ok_or_else(overflow)?))
                }
                _ => return Err(refuse()),
            };
            if let Some(d) = days {
                iv.days = iv.days.checked_add(d).ok_or_else(overflow)?;
            }
            if let Some(m) = months {
                iv.months = iv.months.checked_add(m).ok_or_else(overflow)?;
            }
        }
        if ago {
            iv = iv.neg()?;
        }
        Ok(iv)
    }
}

/// `[-]hh:mm[:ss[.f]]` in microseconds.
fn clock(w: &str) -> Option<i64> {
    let (sign, w) = match w.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, w.strip_prefix('+').unwrap_or(w)),
    };
    let mut parts = w.split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let s = parts.next().unwrap_or("0");
    if parts.next().is_some() || m > 59 {
        return None;
    }
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let sec: i64 = whole.parse().ok()?;
    if sec > 59 || frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let f: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse::<i64>().ok()? * 10_i64.pow(6 - frac.len() as u32)
    };
    Some(sign * (h.checked_mul(USECS_PER_HOUR)? + m * USECS_PER_MINUTE + sec * USECS_PER_SEC + f))
}

/// As `interval_eq`: by span, so `1 mon` = `30 days`.
impl PartialEq for Interval {
    fn eq(&self, other: &Self) -> bool {
        self.span() == other.span()
    }
}

impl Eq for Interval {}

impl std::hash::Hash for Interval {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.span().hash(state);
    }
}

impl PartialOrd for Interval {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// `interval_cmp`: by span (`1 mon` equals `30 days`).
impl Ord for Interval {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.span().cmp(&other.span())
    }
}

/// `IntervalStyle = postgres`: `1 year 2 mons 3 days 04:05:06.5`, `-1 days +02:00:00`,
/// `00:00:00`.
impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut is_zero = true;
        let mut is_before = false;
        let mut part = |f: &mut fmt::Formatter<'_>, value: i64, unit: &str| -> fmt::Result {
            if value == 0 {
                return Ok(());
            }
            write!(
                f,
                "{}{}{value} {unit}{}",
                if is_zero { "" } else { " " },
                if is_before && value > 0 { "+" } else { "" },
                if value != 1 { "s" } else { "" }
            )?;
            is_before = value < 0;
            is_zero = false;
            Ok(())
        };
        let months = i64::from(self.months);
        part(f, months / 12, "year")?;
        part(f, months % 12, "mon")?;
        part(f, i64::from(self.days), "day")?;
        let t = self.micros;
        if is_zero || t != 0 {
            let minus = t < 0;
            let a = t.unsigned_abs();
            let hour = a / USECS_PER_HOUR as u64;
            let min = a % USECS_PER_HOUR as u64 / USECS_PER_MINUTE as u64;
            let sec = a % USECS_PER_MINUTE as u64 / USECS_PER_SEC as u64;
            write!(
                f,
                "{}{}{hour:02}:{min:02}:{sec:02}",
                if is_zero { "" } else { " " },
                if minus {
                    "-"
                } else if is_before {
                    "+"
                } else {
                    ""
                }
            )?;
            write_fraction(f, (a % USECS_PER_SEC as u64) as i64)?;
        }
        Ok(())
    }
}

/// `timestamp + interval`: months first (the day clamped to the month's last), then
/// days, then microseconds, as `timestamp_pl_interval` in UTC.
pub fn add_interval(ts: i64, iv: &Interval) -> Result<i64, SqlError> {
    let mut ts = ts;
    if iv.months != 0 {
        let days = ts.div_euclid(USECS_PER_DAY);
        let time = ts.rem_euclid(USECS_PER_DAY);
        let (y, m, d) = civil_from_days(days + UNIX_TO_PG_DAYS);
        let total = y * 12 + i64::from(m) - 1 + i64::from(iv.months);
        let (y, m) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
        let d = d.min(days_in_month(y, m));
        ts = (days_from_civil(y, m, d) - UNIX_TO_PG_DAYS) * USECS_PER_DAY + time;
        ts = checked(Some(ts))?;
    }
    let ts = ts.checked_add(
        i64::from(iv.days)
            .checked_mul(USECS_PER_DAY)
            .ok_or_else(out_of_range)?,
    );
    let ts = ts.and_then(|t| t.checked_add(iv.micros));
    checked(ts)
}

/// `timestamp - timestamp`: the difference in days and time (`interval_justify_hours`).
pub fn difference(a: i64, b: i64) -> Result<Interval, SqlError> {
    let micros = a
        .checked_sub(b)
        .ok_or_else(|| SqlError::DatetimeFieldOverflow {
            detail: "interval out of range".into(),
        })?;
    Ok(Interval {
        months: 0,
        days: (micros / USECS_PER_DAY) as i32,
        micros: micros % USECS_PER_DAY,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> String {
        let mut out = String::new();
        write_timestamp(&mut out, parse_timestamp(s, true).unwrap(), true).unwrap();
        out
    }

    #[test]
    fn timestamps_read_and_print_as_postgres_in_utc() {
        assert_eq!(ts("2024-01-01 10:00:00+00"), "2024-01-01 10:00:00+00");
        assert_eq!(ts("2024-01-01 10:00:00.5+02"), "2024-01-01 08:00:00.5+00");
        assert_eq!(
            ts("2024-02-29T23:59:59.123456Z"),
            "2024-02-29 23:59:59.123456+00"
        );
        assert_eq!(ts("2024-01-01"), "2024-01-01 00:00:00+00");
        assert_eq!(ts(" 1999-12-31 23:00 -01:30 "), "2000-01-01 00:30:00+00");
        assert_eq!(ts("epoch"), "1970-01-01 00:00:00+00");
        let plain = parse_timestamp("2024-01-01 10:00:00+05", false).unwrap();
        let mut out = String::new();
        write_timestamp(&mut out, plain, false).unwrap();
        assert_eq!(out, "2024-01-01 10:00:00", "a timestamp ignores the zone");
        assert_eq!(
            parse_timestamp("2023-02-29", true).unwrap_err().sqlstate(),
            Some("22008")
        );
        assert_eq!(
            parse_timestamp("Jan 1 2024", true).unwrap_err().sqlstate(),
            Some("0A000")
        );
        assert_eq!(
            from_instant(Instant::START),
            parse_timestamp("epoch", true).unwrap()
        );
    }

    #[test]
    fn intervals_add_and_print_as_postgres() {
        let iv = |s: &str| Interval::parse(s).unwrap();
        assert_eq!(iv("5 minutes").to_string(), "00:05:00");
        assert_eq!(iv("1 day 2 hours").to_string(), "1 day 02:00:00");
        assert_eq!(iv("-1 days 2 hours").to_string(), "-1 days +02:00:00");
        assert_eq!(
            iv("1 year 2 months 3 days").to_string(),
            "1 year 2 mons 3 days"
        );
        assert_eq!(iv("1.5 hours").to_string(), "01:30:00");
        assert_eq!(iv("90 seconds ago").to_string(), "-00:01:30");
        assert_eq!(iv("0 days").to_string(), "00:00:00");
        assert_eq!(iv("25:00").to_string(), "25:00:00");
        assert!(iv("1 mon") == iv("30 days"));
        let t = parse_timestamp("2024-01-31 10:00:00+00", true).unwrap();
        let mut out = String::new();
        write_timestamp(&mut out, add_interval(t, &iv("1 month")).unwrap(), true).unwrap();
        assert_eq!(out, "2024-02-29 10:00:00+00");
        let d = difference(t, parse_timestamp("2024-01-30 09:00:00+00", true).unwrap()).unwrap();
        assert_eq!(d.to_string(), "1 day 01:00:00");
        assert_eq!(
            Interval::parse("1.5 days").unwrap_err().sqlstate(),
            Some("0A000")
        );
    }
}
