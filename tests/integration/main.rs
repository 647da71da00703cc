//! The workspace integration tests: one binary, one module per concern.

mod flash_sale;
mod readme;
