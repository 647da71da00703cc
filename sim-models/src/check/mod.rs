//! Checkers of what clients of the models saw: histories recorded during a run, judged
//! after it against a model of correct behaviour.

pub mod linearizable;
