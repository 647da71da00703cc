//! A Kafka-like log (being written).
