//! # check: ready-made checkers for the histories that services produce against the models
//!
//! Histories are recorded during a run and judged after it against a model of correct
//! behaviour:
//! - [`elle`]: transactional anomalies (G0, G1a, G1b, G1c, G-single, G2-item, lost update)
//!   in list-append histories, found from the dependency graph in the manner of Elle.
//! - [`linearizable`]: linearizability of key-value histories, per key (WGL search).

pub mod elle;
pub mod linearizable;
