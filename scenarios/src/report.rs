//! Resilience reports: the tables of a seed document, filled with exact numbers from
//! simulation, as Markdown for people and JSON for tools.

use serde::Serialize;

use sim_runtime::schedule::FaultSchedule;
use sim_runtime::time::{Duration, Instant};
use sim_runtime::timeline::{html_page, PageAssets};

use crate::checker::Verdict;
use crate::inject::Windowed;
use crate::metrics::{over_time, Bucket, Sample};
use crate::scenario::{simulate_flow, Flow, Scenario, ServiceVariant};
use crate::timeline::scheduled_windows;

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
    /// Chaos tests over virtual time, for the HTML report (`sim report --html`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plots: Vec<ChaosPlot>,
}

/// A fault's window on a plot, in seconds of virtual time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlotWindow {
    pub label: String,
    pub start_s: f64,
    pub end_s: f64,
}

/// One line of a panel: `(seconds, value)` points, `None` where there is no value.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, Option<f64>)>,
}

/// One chart: a measure over time, a line per run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Panel {
    pub title: String,
    pub unit: String,
    pub lines: Vec<Line>,
}

/// One chaos test over virtual time: its panels share the time axis and the fault windows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChaosPlot {
    pub test: String,
    /// The heading of the section it belongs under.
    pub section: String,
    pub end_s: f64,
    pub faults: Vec<PlotWindow>,
    pub panels: Vec<Panel>,
}

/// Width of a plot's time buckets: the finest of these that keeps a run under
/// [`PLOT_BUCKETS_MAX`] buckets, so a few seconds' run (Interdomestik's chaos tests) shows
/// its fault window as well as a minutes-long one, and 1 s beyond that.
const PLOT_BUCKET_WIDTHS: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
];
const PLOT_BUCKETS_MAX: u128 = 120;

fn plot_bucket(end: Instant) -> Duration {
    let run = end.elapsed_since_start().as_nanos();
    PLOT_BUCKET_WIDTHS
        .into_iter()
        .find(|w| run.div_ceil(w.as_nanos()) <= PLOT_BUCKETS_MAX)
        .unwrap_or(Duration::from_secs(1))
}

impl ChaosPlot {
    /// Throughput, p50 and p99 latency and error rate over time for each run of a chaos
    /// test (`runs`: a name and its request samples), with the fault-matrix entry
    /// `fault`'s windows shaded.
    pub fn of_requests<S: Scenario>(
        test: &str,
        section: &str,
        fault: &str,
        runs: &[(&str, &[Sample])],
        end: Instant,
    ) -> ChaosPlot {
        Self::of_requests_in(test, section, entry_windows::<S>(fault), runs, end)
    }

    /// [`ChaosPlot::of_requests`] for a run whose faults are not a fault-matrix entry's
    /// (a report's own schedule: [`schedule_windows`]).
    pub fn of_requests_in(
        test: &str,
        section: &str,
        faults: Vec<PlotWindow>,
        runs: &[(&str, &[Sample])],
        end: Instant,
    ) -> ChaosPlot {
        let width = plot_bucket(end);
        let series: Vec<(&str, Vec<Bucket>)> = runs
            .iter()
            .map(|(name, samples)| (*name, over_time(samples, width, end)))
            .collect();
        let panel = |title: &str, unit: &str, value: fn(&Bucket) -> Option<f64>| Panel {
            title: title.into(),
            unit: unit.into(),
            lines: series
                .iter()
                .map(|(name, buckets)| Line {
                    name: name.to_string(),
                    points: buckets.iter().map(|b| (b.start_s, value(b))).collect(),
                })
                .collect(),
        };
        ChaosPlot {
            test: test.into(),
            section: section.into(),
            end_s: end.elapsed_since_start().as_secs_f64(),
            faults,
            panels: vec![
                panel("throughput", "requests/s", |b| Some(b.throughput_per_s)),
                panel("latency p50", "ms", |b| b.p50_ms),
                panel("latency p99", "ms", |b| b.p99_ms),
                panel("error rate", "% errors and timeouts", |b| b.error_pct),
            ],
        }
    }

    /// The plot with one more panel (a queue's depth, a backlog).
    pub fn with_panel(mut self, panel: Panel) -> ChaosPlot {
        self.panels.push(panel);
        self
    }

    /// The plot with a panel counting events per second over its time buckets (calls
    /// to a database, messages sent): a line per run, from each event's instant.
    pub fn with_rate_panel(self, title: &str, unit: &str, runs: &[(&str, &[Instant])]) -> Self {
        let end = Instant::from_nanos((self.end_s * 1e9).round() as u64);
        let width = plot_bucket(end);
        let width_ns = width.as_nanos().max(1);
        let count = usize::try_from(end.elapsed_since_start().as_nanos().div_ceil(width_ns))
            .unwrap_or(usize::MAX)
            .max(1);
        let lines = runs
            .iter()
            .map(|(name, events)| {
                let mut counts = vec![0u64; count];
                for t in events.iter() {
                    let i = usize::try_from(t.elapsed_since_start().as_nanos() / width_ns)
                        .unwrap_or(usize::MAX);
                    if let Some(c) = counts.get_mut(i) {
                        *c += 1;
                    }
                }
                Line {
                    name: name.to_string(),
                    points: counts
                        .iter()
                        .enumerate()
                        .map(|(i, &c)| {
                            let start_s = i as f64 * width.as_secs_f64();
                            (start_s, Some(c as f64 / width.as_secs_f64()))
                        })
                        .collect(),
                }
            })
            .collect();
        self.with_panel(Panel {
            title: title.into(),
            unit: unit.into(),
            lines,
        })
    }
}

/// The windows of fault-matrix entry `fault`'s schedule, named.
pub fn entry_windows<S: Scenario>(fault: &str) -> Vec<PlotWindow> {
    S::matrix()
        .into_iter()
        .filter(|(info, _)| info.name == fault)
        .flat_map(|(_, schedule)| schedule_windows(&schedule))
        .collect()
}

/// A schedule's windows, named, in seconds.
pub fn schedule_windows<F: Windowed + Serialize>(schedule: &FaultSchedule<F>) -> Vec<PlotWindow> {
    let secs = |ns: u64| ns as f64 / 1e9;
    scheduled_windows(schedule)
        .into_iter()
        .map(|w| PlotWindow {
            label: w.label,
            start_s: secs(w.start_ns),
            // A window to the end of the run is drawn to the plot's end.
            end_s: w.end_ns.map_or(f64::MAX, secs),
        })
        .collect()
}

impl ScenarioReport {
    /// The report as one self-contained HTML page: its tables, and its plots over
    /// virtual time under the sections they belong to.
    pub fn to_html(&self) -> String {
        let data = serde_json::to_string(self).unwrap_or_else(|_| "null".into());
        html_page(&self.title, &data, PageAssets::REPORT)
    }

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
