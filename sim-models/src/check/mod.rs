//! # check: ready-made checkers for the histories that services produce against the models
//!
//! - [`elle`]: transactional anomalies (G0, G1a, G1b, G1c, G-single, G2-item, lost update)
//!   in list-append histories, found from the dependency graph in the manner of Elle.

pub mod elle;
