//! # scenarios: the seed systems under test (filled by the scenario issues).
