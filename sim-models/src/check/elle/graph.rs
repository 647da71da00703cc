//! The dependency graph between transactions, and the two searches the checker runs on it:
//! strongly connected components (Tarjan's algorithm, iterative so that a long chain of
//! transactions cannot overflow the stack) and a breadth-first shortest path restricted to
//! one component and to some edge kinds.

use std::collections::BTreeSet;
use std::fmt;

use super::history::{Element, Key, TxnId};

/// Adya's dependency kinds, as list-append shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdgeKind {
    /// Write-write: `to` appended to `key` right after `from` in the version order.
    Ww,
    /// Write-read: `to` read `key` as it was after `from`'s append of `element`.
    Wr,
    /// Read-write (anti-dependency): `from` read `key` before `to`'s append of `element`,
    /// the next one in the version order.
    Rw,
}

/// One dependency, with what it is about so that a witness can be told in words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    pub from: TxnId,
    pub to: TxnId,
    pub kind: EdgeKind,
    pub key: Key,
    /// ww and rw: the element `to` appended; wr: the element of `from` that `to` read last.
    pub element: Element,
}

/// Transactions as nodes (a node per transaction of the history, whether or not it takes
/// part) and their dependencies as edges; one edge per (from, to, kind), the first found.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    out: Vec<Vec<Edge>>,
    present: BTreeSet<(TxnId, TxnId, EdgeKind)>,
}

impl Graph {
    pub fn new(nodes: usize) -> Self {
        Graph {
            out: vec![Vec::new(); nodes],
            present: BTreeSet::new(),
        }
    }

    pub fn add(&mut self, edge: Edge) {
        if edge.from != edge.to && self.present.insert((edge.from, edge.to, edge.kind)) {
            self.out[edge.from].push(edge);
        }
    }

    pub fn nodes(&self) -> usize {
        self.out.len()
    }

    pub fn edge_count(&self) -> usize {
        self.present.len()
    }

    pub fn out(&self, node: TxnId) -> &[Edge] {
        &self.out[node]
    }

    /// The strongly connected components, over the edges whose kind `allow` accepts, with
    /// more than one node (a cycle needs two transactions: self-edges are never added),
    /// each sorted, in order of their smallest node; and for every node the index of its
    /// component, if it is in one.
    pub fn cyclic_components(
        &self,
        allow: impl Fn(EdgeKind) -> bool,
    ) -> (Vec<Vec<TxnId>>, Vec<Option<usize>>) {
        let n = self.nodes();
        const UNSEEN: usize = usize::MAX;
        let mut index = vec![UNSEEN; n];
        let mut low = vec![0; n];
        let mut on_stack = vec![false; n];
        let mut stack = Vec::new();
        let mut next_index = 0;
        let mut found: Vec<Vec<TxnId>> = Vec::new();
        // Each frame: (node, position in its out-edges).
        let mut frames: Vec<(TxnId, usize)> = Vec::new();
        for root in 0..n {
            if index[root] != UNSEEN {
                continue;
            }
            frames.push((root, 0));
            index[root] = next_index;
            low[root] = next_index;
            next_index += 1;
            stack.push(root);
            on_stack[root] = true;
            while let Some(top) = frames.last_mut() {
                let v = top.0;
                if let Some(e) = self.out[v].get(top.1) {
                    top.1 += 1;
                    if !allow(e.kind) {
                        continue;
                    }
                    let w = e.to;
                    if index[w] == UNSEEN {
                        index[w] = next_index;
                        low[w] = next_index;
                        next_index += 1;
                        stack.push(w);
                        on_stack[w] = true;
                        frames.push((w, 0));
                    } else if on_stack[w] {
                        low[v] = low[v].min(index[w]);
                    }
                    continue;
                }
                frames.pop();
                if let Some(&(parent, _)) = frames.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut members = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        members.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if members.len() > 1 {
                        members.sort_unstable();
                        found.push(members);
                    }
                }
            }
        }
        found.sort_by_key(|c| c[0]);
        let mut component = vec![None; n];
        for (i, c) in found.iter().enumerate() {
            for &t in c {
                component[t] = Some(i);
            }
        }
        (found, component)
    }
}

/// Reusable state of breadth-first searches over a [`Graph`]: the search runs for every
/// candidate edge of a component, so its marks are stamped rather than cleared.
pub struct PathSearch {
    /// Per (node, flag) state: the stamp of the search that reached it.
    seen: Vec<u32>,
    /// The edge a state was reached by, and the state it was taken from.
    via: Vec<Option<(Edge, usize)>>,
    stamp: u32,
    queue: std::collections::VecDeque<usize>,
}

impl PathSearch {
    pub fn new(graph: &Graph) -> Self {
        PathSearch {
            seen: vec![0; graph.nodes() * 2],
            via: vec![None; graph.nodes() * 2],
            stamp: 0,
            queue: std::collections::VecDeque::new(),
        }
    }

    /// The shortest path from `from` to `to` over edges whose kind `allow` accepts and
    /// whose ends are both in `component` (by `of`); with `need_rw`, the path must take at
    /// least one rw edge. The path's edges in order, or `None`.
    pub fn shortest(
        &mut self,
        graph: &Graph,
        path: PathQuery<'_>,
        allow: impl Fn(EdgeKind) -> bool,
    ) -> Option<Vec<Edge>> {
        self.stamp += 1;
        self.queue.clear();
        // State = node * 2 + flag; the flag is "has taken an rw edge" (always set when
        // no rw edge is needed, so that both kinds of search share the code).
        let start = path.from * 2 + usize::from(!path.need_rw);
        let goal = path.to * 2 + 1;
        self.seen[start] = self.stamp;
        self.via[start] = None;
        self.queue.push_back(start);
        while let Some(state) = self.queue.pop_front() {
            if state == goal {
                return Some(self.path_to(goal, start));
            }
            let flag = state % 2 == 1;
            for e in graph.out(state / 2) {
                if !allow(e.kind) || path.of[e.to] != Some(path.component) {
                    continue;
                }
                let next = e.to * 2 + usize::from(flag || e.kind == EdgeKind::Rw);
                if self.seen[next] != self.stamp {
                    self.seen[next] = self.stamp;
                    self.via[next] = Some((*e, state));
                    self.queue.push_back(next);
                }
            }
        }
        None
    }

    fn path_to(&self, goal: usize, start: usize) -> Vec<Edge> {
        let mut edges = Vec::new();
        let mut state = goal;
        while state != start {
            let Some((e, before)) = self.via[state] else {
                break;
            };
            edges.push(e);
            state = before;
        }
        edges.reverse();
        edges
    }
}

/// What [`PathSearch::shortest`] looks for.
pub struct PathQuery<'a> {
    pub from: TxnId,
    pub to: TxnId,
    pub of: &'a [Option<usize>],
    pub component: usize,
    pub need_rw: bool,
}

impl fmt::Display for EdgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EdgeKind::Ww => "ww",
            EdgeKind::Wr => "wr",
            EdgeKind::Rw => "rw",
        })
    }
}
