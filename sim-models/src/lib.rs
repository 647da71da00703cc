//! # sim-models: simulated Redis, PostgreSQL and Kafka (filled by their issues).
