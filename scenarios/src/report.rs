//! Resilience reports: the tables of a seed document, filled with exact numbers from
//! simulation, as Markdown for people and JSON for tools.

use serde::Serialize;

use crate::checker::Verdict;
use crate::scenario::{simulate_flow, Flow, Scenario, ServiceVariant};

/// A Markdown table.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!("| {} |\n", self.headers.join(" | ")));
        s.push_str(&format!(
            "|{}\n",
            self.headers.iter().map(|_| "---|").collect::<String>()
        ));
        for r in &self.rows {
            s.push_str(&format!("| {} |\n", r.join(" | ")));
        }
        s
    }
}

/// One section of a report: a heading, a paragraph and a table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Section {
    pub heading: String,
    pub text: String,
    pub table: Table,
}

/// A whole report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScenarioReport {
    pub title: String,
    pub preamble: String,
    pub sections: Vec<Section>,
    /// The raw figures behind the tables.
    pub data: serde_json::Value,
}

impl ScenarioReport {
    pub fn to_markdown(&self) -> String {
        let mut s = format!("# {}\n\n{}\n", self.title, self.preamble);
        for sec in &self.sections {
            s.push_str(&format!("\n## {}\n\n", sec.heading));
            if !sec.text.is_empty() {
                s.push_str(&sec.text);
                s.push_str("\n\n");
            }
            s.push_str(&sec.table.to_markdown());
        }
        s
    }
}

/// Why a report could not be written: one of its runs did not complete (a bug in the
/// scenario or a model; the outcome says which).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the report's {run} run did not complete: {outcome}")]
pub struct ReportError {
    pub run: String,
    pub outcome: String,
}

/// Runs seed `seed` of `variant` with `params` under the fault-matrix entry named `fault`,
/// for a report: the run's data, or a [`ReportError`] saying which run did not complete
/// and why.
pub fn run_entry<S: Scenario>(
    seed: u64,
    variant: S::Variant,
    params: S::Params,
    fault: &str,
) -> Result<<S::Params as Flow>::Data, ReportError> {
    let incomplete = |outcome: String| ReportError {
        run: format!("{} under {fault}", variant.name()),
        outcome,
    };
    let (_, schedule) = S::matrix()
        .into_iter()
        .find(|(i, _)| i.name == fault)
        .ok_or_else(|| incomplete("no such fault-matrix entry".into()))?;
    let (report, data) = simulate_flow(seed, variant, params, schedule, None);
    data.ok_or_else(|| incomplete(report.outcome.to_string()))
}

/// A table's cell for a run's verdicts: `all pass`, or the failing checkers.
pub fn verdicts_cell(verdicts: &[Verdict]) -> String {
    let failed: Vec<&str> = verdicts
        .iter()
        .filter(|v| !v.ok)
        .map(|v| v.checker.as_str())
        .collect();
    if failed.is_empty() {
        "all pass".into()
    } else {
        format!("FAIL: {}", failed.join(", "))
    }
}

/// A comparison of service variants: one row of `t` per variant, its name first and then
/// the cells `row` gives, and `row`'s JSON value under the variant's name.
pub fn variant_rows<V: ServiceVariant>(
    t: &mut Table,
    variants: &[V],
    mut row: impl FnMut(V) -> Result<(Vec<String>, serde_json::Value), ReportError>,
) -> Result<serde_json::Value, ReportError> {
    let mut data = serde_json::Map::new();
    for &variant in variants {
        let (cells, value) = row(variant)?;
        let mut full = vec![variant.name().to_string()];
        full.extend(cells);
        t.row(full);
        data.insert(variant.name().into(), value);
    }
    Ok(serde_json::Value::Object(data))
}

/// The variants a fault-matrix entry's rows show: `correct`, then each buggy variant that
/// `contrasts` pairs with the entry (the fault that exposes it).
pub fn entry_variants<V: Copy>(entry: &str, correct: V, contrasts: &[(&str, V)]) -> Vec<V> {
    let mut variants = vec![correct];
    variants.extend(
        contrasts
            .iter()
            .filter(|(f, _)| *f == entry)
            .map(|(_, v)| *v),
    );
    variants
}

/// Formats milliseconds for a table: `12.3 ms`, or `timeout` past the client's limit.
pub fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} ms")
    }
}

pub fn pct(v: f64) -> String {
    if v == 0.0 || v == 100.0 {
        format!("{v:.0} %")
    } else {
        format!("{v:.2} %")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_table_shape() {
        let mut t = Table::new(&["a", "b"]);
        t.row(vec!["1".into(), "2".into()]);
        assert_eq!(t.to_markdown(), "| a | b |\n|---|---|\n| 1 | 2 |\n");
    }
}
