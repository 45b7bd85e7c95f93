//! Admin APIs, all owned by the `Controller` (topic metadata and configs).

pub mod alter_configs;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_topics;
pub mod describe_configs;

/// DescribeConfigs / AlterConfigs resource types (Kafka's `ConfigResource.Type`).
pub const RESOURCE_TYPE_TOPIC: i8 = 2;
/// The broker resource.
pub const RESOURCE_TYPE_BROKER: i8 = 4;
