//! Kairos: a single-node, embeddable Kafka-compatible broker with a due index.
pub mod temporal;
