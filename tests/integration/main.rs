//! The workspace integration tests: one binary, one module per concern.

mod appointments;
mod flash_sale;
mod interdomestik;
mod medistream;
mod readme;
mod support;
mod timeline;
