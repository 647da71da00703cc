//! Cycle anomalies: in each strongly connected component of the dependency graph, the
//! shortest cycle of each kind, found as an edge of the kind that defines it followed by
//! a shortest path back over the edges the kind allows:
//!
//! - G0: a ww edge, then ww edges only;
//! - G1c: a wr edge, then ww and wr edges;
//! - G-single: an rw edge, then ww and wr edges (exactly one rw);
//! - G2-item: an rw edge, then any edges including at least one more rw.
//!
//! A component (of the graph of the edges the kind allows) yields at most one witness per kind, the shortest found. Once one is found,
//! only a bounded number of further candidate edges is tried: the witness is already in
//! hand, and a huge component must not make the search quadratic.

use super::anomalies::{Anomaly, AnomalyKind};
use super::graph::{Edge, EdgeKind, Graph, PathQuery, PathSearch};
use super::history::TxnId;

/// Candidate edges tried after the first witness of a kind in a component.
const MORE_CANDIDATES: usize = 32;

struct Rule {
    kind: AnomalyKind,
    first: EdgeKind,
    allow: fn(EdgeKind) -> bool,
    need_rw: bool,
}

const RULES: [Rule; 4] = [
    Rule {
        kind: AnomalyKind::G0,
        first: EdgeKind::Ww,
        allow: |k| k == EdgeKind::Ww,
        need_rw: false,
    },
    Rule {
        kind: AnomalyKind::G1c,
        first: EdgeKind::Wr,
        allow: |k| k != EdgeKind::Rw,
        need_rw: false,
    },
    Rule {
        kind: AnomalyKind::GSingle,
        first: EdgeKind::Rw,
        allow: |k| k != EdgeKind::Rw,
        need_rw: false,
    },
    Rule {
        kind: AnomalyKind::G2Item,
        first: EdgeKind::Rw,
        allow: |_| true,
        need_rw: true,
    },
];

pub(super) fn find(graph: &Graph) -> Vec<Anomaly> {
    let mut search = PathSearch::new(graph);
    let mut found = Vec::new();
    for rule in &RULES {
        // A cycle of only the kinds a rule allows lies in one component of the graph of
        // those kinds, so G0 and G1c are sought there: a component of the whole graph
        // holds many edges that lie on no such cycle, each a futile search. A G-single
        // cycle's first edge is rw, so it needs the whole graph's components.
        let (components, of) = if rule.first == EdgeKind::Rw {
            graph.cyclic_components(|_| true)
        } else {
            graph.cyclic_components(rule.allow)
        };
        for (c, members) in components.iter().enumerate() {
            if let Some(cycle) = shortest_cycle(graph, &mut search, members, &of, c, rule) {
                found.push(Anomaly::Cycle {
                    kind: rule.kind,
                    cycle,
                });
            }
        }
    }
    // Strongest anomaly first, then by where it is.
    found.sort_by_key(|a| a.kind());
    found
}

fn shortest_cycle(
    graph: &Graph,
    search: &mut PathSearch,
    members: &[TxnId],
    of: &[Option<usize>],
    component: usize,
    rule: &Rule,
) -> Option<Vec<Edge>> {
    let mut best: Option<Vec<Edge>> = None;
    let mut tries_left = usize::MAX;
    let candidates = members
        .iter()
        .flat_map(|&t| graph.out(t))
        .filter(|e| e.kind == rule.first && of[e.to] == Some(component));
    for e in candidates {
        if tries_left == 0 {
            break;
        }
        tries_left -= 1;
        let query = PathQuery {
            from: e.to,
            to: e.from,
            of,
            component,
            need_rw: rule.need_rw,
        };
        if let Some(back) = search.shortest(graph, query, rule.allow) {
            // A path that must take an rw edge may pass through its start twice (once
            // before the rw, once after): that is two cycles, each reported on its own.
            if !is_simple(e, &back) {
                continue;
            }
            if best.as_ref().is_none_or(|b| back.len() + 1 < b.len()) {
                let mut cycle = vec![*e];
                cycle.extend(back);
                let shortest_possible = cycle.len() == 2;
                best = Some(cycle);
                if shortest_possible {
                    break;
                }
            }
            tries_left = tries_left.min(MORE_CANDIDATES);
        }
    }
    best
}

/// Whether the cycle `first` + `back` visits each transaction once.
fn is_simple(first: &Edge, back: &[Edge]) -> bool {
    let mut nodes: Vec<TxnId> = back.iter().map(|e| e.from).collect();
    nodes.push(first.from);
    nodes.sort_unstable();
    nodes.windows(2).all(|w| w[0] != w[1])
}
