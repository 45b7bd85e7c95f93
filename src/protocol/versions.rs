//! The advertised API versions: an explicit `[min, max]` per API key.
//!
//! The minimum of each range is Apache Kafka 4.0's baseline (KIP-896 removed everything older).
//! The maximum is the highest version Kairos implements completely, flexible versions and tagged
//! fields included; it is deliberately not the kafka-protocol crate's maximum, which only says
//! what the codec can encode. Python clients guess the broker release from these numbers, so the
//! set stays coherent with one Kafka release (4.0) where it can.
//!
//! Every key listed here has a handler in `crate::handlers`; a unit test checks that every
//! listed version decodes with the crate.

use kafka_protocol::messages::ApiKey;

/// An advertised version range (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRange {
    /// Oldest version accepted.
    pub min: i16,
    /// Newest version accepted.
    pub max: i16,
}

const fn range(min: i16, max: i16) -> VersionRange {
    VersionRange { min, max }
}

/// The table. Order is the order ApiVersions lists them in.
pub static SUPPORTED_APIS: &[(ApiKey, VersionRange)] = &[
    (ApiKey::Produce, range(3, 12)),
    (ApiKey::Fetch, range(4, 17)),
    // v10 adds `timeout_ms`, which only bounds waits on tiered storage: answered at once.
    (ApiKey::ListOffsets, range(1, 10)),
    // v13 adds a top-level error code (REBOOTSTRAP_REQUIRED), never needed on one node.
    (ApiKey::Metadata, range(0, 13)),
    (ApiKey::ApiVersions, range(0, 4)),
    (ApiKey::CreateTopics, range(2, 7)),
    (ApiKey::DeleteTopics, range(1, 6)),
    (ApiKey::DeleteRecords, range(0, 2)),
    (ApiKey::InitProducerId, range(0, 5)),
    (ApiKey::DescribeConfigs, range(1, 4)),
    (ApiKey::AlterConfigs, range(0, 2)),
    (ApiKey::CreatePartitions, range(0, 3)),
    (ApiKey::IncrementalAlterConfigs, range(0, 1)),
    // v2 adds fenced brokers; a single node is never fenced.
    (ApiKey::DescribeCluster, range(0, 2)),
    // v6 only adds the share key type, answered INVALID_REQUEST (no share groups).
    (ApiKey::FindCoordinator, range(0, 6)),
    (ApiKey::JoinGroup, range(2, 9)),
    (ApiKey::SyncGroup, range(0, 5)),
    (ApiKey::Heartbeat, range(0, 4)),
    (ApiKey::LeaveGroup, range(0, 5)),
    (ApiKey::OffsetCommit, range(2, 9)),
    (ApiKey::OffsetFetch, range(1, 9)),
    (ApiKey::OffsetDelete, range(0, 0)),
    (ApiKey::ListGroups, range(0, 5)),
    (ApiKey::DescribeGroups, range(0, 6)),
    (ApiKey::DeleteGroups, range(0, 2)),
    // KIP-848. v1 adds the member-generated id requirement and regex subscriptions.
    (ApiKey::ConsumerGroupHeartbeat, range(0, 1)),
    (ApiKey::ConsumerGroupDescribe, range(0, 1)),
    // Transactions. v4+ of AddPartitionsToTxn batches transactions and can verify only.
    (ApiKey::AddPartitionsToTxn, range(0, 5)),
    (ApiKey::AddOffsetsToTxn, range(0, 4)),
    (ApiKey::EndTxn, range(0, 5)),
    (ApiKey::TxnOffsetCommit, range(0, 5)),
    (ApiKey::DescribeProducers, range(0, 0)),
    (ApiKey::DescribeTransactions, range(0, 0)),
    // v2 adds a transactional-id pattern (Kafka 4.1); v1's duration filter is the newest here.
    (ApiKey::ListTransactions, range(0, 1)),
];

/// The advertised range of `api_key`, or `None` if it is not implemented.
#[must_use]
pub fn supported_range(api_key: ApiKey) -> Option<VersionRange> {
    SUPPORTED_APIS
        .iter()
        .find(|(key, _)| *key == api_key)
        .map(|(_, range)| *range)
}

/// Whether `version` of `api_key` is advertised.
#[must_use]
pub fn is_supported(api_key: ApiKey, version: i16) -> bool {
    supported_range(api_key).is_some_and(|r| (r.min..=r.max).contains(&version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Message;

    fn crate_range(key: ApiKey) -> kafka_protocol::protocol::VersionRange {
        match key {
            ApiKey::Produce => ProduceRequest::VERSIONS,
            ApiKey::Fetch => FetchRequest::VERSIONS,
            ApiKey::ListOffsets => ListOffsetsRequest::VERSIONS,
            ApiKey::Metadata => MetadataRequest::VERSIONS,
            ApiKey::ApiVersions => ApiVersionsRequest::VERSIONS,
            ApiKey::CreateTopics => CreateTopicsRequest::VERSIONS,
            ApiKey::DeleteTopics => DeleteTopicsRequest::VERSIONS,
            ApiKey::DeleteRecords => DeleteRecordsRequest::VERSIONS,
            ApiKey::InitProducerId => InitProducerIdRequest::VERSIONS,
            ApiKey::DescribeConfigs => DescribeConfigsRequest::VERSIONS,
            ApiKey::AlterConfigs => AlterConfigsRequest::VERSIONS,
            ApiKey::CreatePartitions => CreatePartitionsRequest::VERSIONS,
            ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsRequest::VERSIONS,
            ApiKey::DescribeCluster => DescribeClusterRequest::VERSIONS,
            ApiKey::FindCoordinator => FindCoordinatorRequest::VERSIONS,
            ApiKey::JoinGroup => JoinGroupRequest::VERSIONS,
            ApiKey::SyncGroup => SyncGroupRequest::VERSIONS,
            ApiKey::Heartbeat => HeartbeatRequest::VERSIONS,
            ApiKey::LeaveGroup => LeaveGroupRequest::VERSIONS,
            ApiKey::OffsetCommit => OffsetCommitRequest::VERSIONS,
            ApiKey::OffsetFetch => OffsetFetchRequest::VERSIONS,
            ApiKey::OffsetDelete => OffsetDeleteRequest::VERSIONS,
            ApiKey::ListGroups => ListGroupsRequest::VERSIONS,
            ApiKey::DescribeGroups => DescribeGroupsRequest::VERSIONS,
            ApiKey::DeleteGroups => DeleteGroupsRequest::VERSIONS,
            ApiKey::ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest::VERSIONS,
            ApiKey::ConsumerGroupDescribe => ConsumerGroupDescribeRequest::VERSIONS,
            ApiKey::AddPartitionsToTxn => AddPartitionsToTxnRequest::VERSIONS,
            ApiKey::AddOffsetsToTxn => AddOffsetsToTxnRequest::VERSIONS,
            ApiKey::EndTxn => EndTxnRequest::VERSIONS,
            ApiKey::TxnOffsetCommit => TxnOffsetCommitRequest::VERSIONS,
            ApiKey::DescribeProducers => DescribeProducersRequest::VERSIONS,
            ApiKey::DescribeTransactions => DescribeTransactionsRequest::VERSIONS,
            ApiKey::ListTransactions => ListTransactionsRequest::VERSIONS,
            other => panic!("{other:?} is advertised but missing from this test"),
        }
    }

    #[test]
    fn advertised_ranges_are_within_the_codec() {
        for (key, advertised) in SUPPORTED_APIS {
            let codec = crate_range(*key);
            assert!(advertised.min <= advertised.max, "{key:?}");
            assert!(
                codec.min <= advertised.min && advertised.max <= codec.max,
                "{key:?}"
            );
        }
    }

    #[test]
    fn lookups() {
        assert!(is_supported(ApiKey::Produce, 12));
        assert!(!is_supported(ApiKey::Produce, 13));
        assert!(!is_supported(ApiKey::Produce, 2));
        assert!(!is_supported(ApiKey::JoinGroup, 0));
        assert!(is_supported(ApiKey::JoinGroup, 9));
    }
}
