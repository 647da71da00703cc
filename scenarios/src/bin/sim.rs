//! The `sim` program (filled by the flash-sale issue).
fn main() {}
