//! What one statement answered, in a form both sides can produce: the rows as PostgreSQL's
//! text format (what psql prints), the row count of the command tag, or the SQLSTATE.

use std::fmt;

/// A statement's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The rows in text format (`None` is NULL) and the command tag's row count.
    Rows {
        rows: Vec<Vec<Option<String>>>,
        count: u64,
    },
    /// The SQLSTATE of the error (or, for a failure without one, a short description).
    Error(String),
}

impl Answer {
    /// The answer with its rows in a canonical order: PostgreSQL promises no order
    /// without ORDER BY (an UPDATE appends the new row version at the heap's end, the
    /// model keeps its key order), so such results are compared as multisets.
    pub fn normalized(mut self, ordered: bool) -> Answer {
        if let Answer::Rows { rows, .. } = &mut self {
            if !ordered {
                rows.sort();
            }
        }
        self
    }

    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Answer::Error(code) => Some(code),
            Answer::Rows { .. } => None,
        }
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Error(code) => write!(f, "ERROR {code}"),
            Answer::Rows { rows, count } => {
                write!(f, "{count} [")?;
                for (i, row) in rows.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str("(")?;
                    for (j, v) in row.iter().enumerate() {
                        if j > 0 {
                            f.write_str(",")?;
                        }
                        f.write_str(v.as_deref().unwrap_or("NULL"))?;
                    }
                    f.write_str(")")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// Whether a statement's rows come in a defined order.
pub fn is_ordered(sql: &str) -> bool {
    sql.to_ascii_uppercase().contains("ORDER BY")
}

/// A float8 as PostgreSQL 15 prints it (shortest text that reads back exactly; exponent
/// form outside 1e-4 ..< 1e15, with a sign and at least two exponent digits).
pub fn float8_text(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let a = x.abs();
    if a != 0.0 && !(1e-4..1e15).contains(&a) {
        let e = format!("{x:e}");
        let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    if x == 0.0 && x.is_sign_negative() {
        return "-0".into();
    }
    format!("{x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_postgres_prints_them() {
        assert_eq!(float8_text(3.0), "3");
        assert_eq!(float8_text(0.1), "0.1");
        assert_eq!(float8_text(1e20), "1e+20");
        assert_eq!(float8_text(1.5e-5), "1.5e-05");
        assert_eq!(float8_text(f64::INFINITY), "Infinity");
    }

    #[test]
    fn unordered_rows_compare_as_multisets() {
        let a = |v: &[&str]| Answer::Rows {
            rows: v.iter().map(|s| vec![Some(s.to_string())]).collect(),
            count: v.len() as u64,
        };
        assert_eq!(
            a(&["2", "1"]).normalized(false),
            a(&["1", "2"]).normalized(false)
        );
        assert_ne!(
            a(&["2", "1"]).normalized(true),
            a(&["1", "2"]).normalized(true)
        );
    }
}
