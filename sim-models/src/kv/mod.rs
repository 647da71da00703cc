//! A Redis-like store (being written).
