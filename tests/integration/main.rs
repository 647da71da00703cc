//! The workspace integration tests: one binary, one module per concern.

mod appointments;
mod flash_sale;
mod interdomestik;
mod medistream;
mod probes;
mod readme;
mod story_backend;
mod support;
mod timeline;
