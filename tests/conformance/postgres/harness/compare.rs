//! Runs a case on both sides, finds the first difference, tells documented differences
//! from divergences, and shrinks a diverging case to a minimal one.

use std::fmt;

use super::case::{Case, Trace};
use super::known;
use super::outcome::Answer;
use super::{model_side, real_side};

/// Where the traces first differ, and both sides' view there.
#[derive(Clone, Debug)]
pub struct Difference {
    pub at: String,
    /// The statement there, if the difference is in one statement's answer.
    pub sql: Option<String>,
    pub model: String,
    pub postgres: String,
    /// The documented reason, if this is a deliberate difference.
    pub documented: Option<&'static str>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {}", self.at)?;
        if let Some(sql) = &self.sql {
            write!(f, " ({sql})")?;
        }
        write!(f, ": model {} / postgres {}", self.model, self.postgres)?;
        if let Some(why) = self.documented {
            write!(f, " [documented: {why}]")?;
        }
        Ok(())
    }
}

fn answer_difference(at: String, sql: Option<&str>, m: &Answer, p: &Answer) -> Difference {
    Difference {
        documented: sql.and_then(|s| known::classify(s, m, p)),
        at,
        sql: sql.map(str::to_owned),
        model: m.to_string(),
        postgres: p.to_string(),
    }
}

/// The first difference between the model's and PostgreSQL's traces of `case`.
pub fn first_difference(case: &Case, model: &Trace, real: &Trace) -> Option<Difference> {
    for (i, (m, p)) in model.setup.iter().zip(&real.setup).enumerate() {
        if m != p {
            return Some(answer_difference(
                format!("setup {i}"),
                case.setup.get(i).map(String::as_str),
                m,
                p,
            ));
        }
    }
    for (k, (m, p)) in model.steps.iter().zip(&real.steps).enumerate() {
        if m == p {
            continue;
        }
        // One statement's answer, or who finished and who waits?
        if m.waiting == p.waiting && m.finished.len() == p.finished.len() {
            for ((ms, mi, ma), (ps, pi, pa)) in m.finished.iter().zip(&p.finished) {
                if (ms, mi) == (ps, pi) && ma != pa {
                    let sql = case.steps.get(*mi).map(|s| s.sql.as_str());
                    return Some(answer_difference(
                        format!("step {mi} (session {ms})"),
                        sql,
                        ma,
                        pa,
                    ));
                }
            }
        }
        // The steps before were the same on both sides.
        let before = k
            .checked_sub(1)
            .map_or(&[][..], |j| &model.steps[j].waiting[..]);
        return Some(Difference {
            at: format!("step {k} (session {})", case.steps[k].session),
            sql: Some(case.steps[k].sql.clone()),
            model: m.to_string(),
            postgres: p.to_string(),
            documented: known::classify_wakes(&case.steps[k].sql, before, m, p),
        });
    }
    if model.finish != real.finish {
        let m = model
            .finish
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>();
        let p = real
            .finish
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>();
        return Some(Difference {
            at: "the final ROLLBACKs".into(),
            sql: None,
            model: m.join(" | "),
            postgres: p.join(" | "),
            documented: None,
        });
    }
    for (i, (m, p)) in model.tables.iter().zip(&real.tables).enumerate() {
        if m != p {
            return Some(Difference {
                at: format!("final contents of {}", case.tables[i]),
                sql: None,
                model: m.to_string(),
                postgres: p.to_string(),
                documented: None,
            });
        }
    }
    if model.setup.len() != real.setup.len() || model.tables.len() != real.tables.len() {
        return Some(Difference {
            at: "the trace's shape".into(),
            sql: None,
            model: format!("{model:?}"),
            postgres: format!("{real:?}"),
            documented: None,
        });
    }
    None
}

/// Runs `case` on both sides.
pub fn compare(case: &Case, url: &str, seed: u64) -> (Option<Difference>, usize) {
    let model = model_side::run(case, seed);
    let real = real_side::run(case, url);
    let statements = case.setup.len() + case.steps.len();
    (first_difference(case, &model, &real), statements)
}

/// The smallest case found, by dropping one step at a time, that still diverges (a
/// divergence that is not documented), with its difference; `None` if the case does not
/// diverge again (the real server's timing decided it: reported as such).
pub fn shrink(
    case: &Case,
    url: &str,
    seed: u64,
    attempts_max: usize,
) -> Option<(Case, Difference)> {
    let diverges = |c: &Case| match compare(c, url, seed).0 {
        Some(d) if d.documented.is_none() => Some(d),
        _ => None,
    };
    let mut best = case.clone();
    let mut diff = diverges(&best)?;
    let mut attempts = 0;
    let mut i = best.steps.len();
    while i > 0 && attempts < attempts_max {
        i -= 1;
        let mut smaller = best.clone();
        smaller.steps.remove(i);
        attempts += 1;
        if let Some(d) = diverges(&smaller) {
            best = smaller;
            diff = d;
        }
    }
    Some((best, diff))
}

/// Figures of a run of many cases.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub cases: usize,
    pub statements: usize,
    pub identical: usize,
    /// Cases whose first difference is documented, by reason, with the first example.
    pub documented: std::collections::BTreeMap<&'static str, (usize, String)>,
    /// Diverging cases, shrunk, as SQL per session with their difference.
    pub divergences: Vec<String>,
}

impl Tally {
    pub fn add(&mut self, case: &Case, url: &str, seed: u64) {
        let (diff, statements) = compare(case, url, seed);
        self.cases += 1;
        self.statements += statements;
        match diff {
            None => self.identical += 1,
            Some(d) => match d.documented {
                Some(why) => {
                    let e = self
                        .documented
                        .entry(why)
                        .or_insert_with(|| (0, format!("{}: {d}", case.name)));
                    e.0 += 1;
                }
                None => self.divergences.push(match shrink(case, url, seed, 40) {
                    Some((small, d)) => format!("{d}\n{}", small.as_sql()),
                    None => format!(
                        "{d} (did not diverge when run again: timing on the real server)\n{}",
                        case.as_sql()
                    ),
                }),
            },
        }
    }

    pub fn merge(&mut self, other: Tally) {
        self.cases += other.cases;
        self.statements += other.statements;
        self.identical += other.identical;
        for (k, (n, example)) in other.documented {
            self.documented.entry(k).or_insert((0, example)).0 += n;
        }
        self.divergences.extend(other.divergences);
    }
}

impl Tally {
    /// The figures, without the divergences' cases.
    pub fn figures(&self) -> String {
        let mut out = String::new();
        self.write_figures(&mut out).expect("writing to a String");
        out
    }

    fn write_figures(&self, f: &mut impl fmt::Write) -> fmt::Result {
        let pct = |n: usize| 100.0 * n as f64 / self.cases.max(1) as f64;
        writeln!(
            f,
            "{} cases, {} statements: {} identical ({:.1} %), {} documented differences, \
             {} divergences",
            self.cases,
            self.statements,
            self.identical,
            pct(self.identical),
            self.documented.values().map(|(n, _)| n).sum::<usize>(),
            self.divergences.len()
        )?;
        for (why, (n, example)) in &self.documented {
            writeln!(f, "  documented x{n}: {why}\n    e.g. {example}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_figures(f)?;
        for d in &self.divergences {
            writeln!(f, "DIVERGENCE {d}")?;
        }
        Ok(())
    }
}
