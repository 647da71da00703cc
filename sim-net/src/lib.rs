//! # sim-net: messages between nodes (filled by the sim-net issue).
