//! A PostgreSQL-like database (being written).
