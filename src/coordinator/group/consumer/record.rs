//! The KIP-848 records of `__consumer_offsets`, in Apache Kafka 4.0's layouts.
//!
//! Format (keys are non-flexible, values flexible; every value starts with an `int16` version,
//! 0 for all of them; `[]` is a compact array, strings are compact strings, `tags` an empty
//! tagged-field section on write and skipped on read):
//!
//! ```text
//! key  3 ConsumerGroupMetadata            { group }
//! val      ConsumerGroupMetadataValue       { epoch: int32, tags }
//! key  4 ConsumerGroupPartitionMetadata   { group }
//! val      ConsumerGroupPartitionMetadataValue
//!            { topics: [{ topic_id: uuid, name, partitions: int32, partition_metadata: [] , tags }], tags }
//! key  5 ConsumerGroupMemberMetadata      { group, member_id }
//! val      { instance_id?, rack_id?, client_id, client_host, subscribed_topic_names: [string],
//!            subscribed_topic_regex?, rebalance_timeout_ms: int32, server_assignor?, tags }
//! key  6 ConsumerGroupTargetAssignmentMetadata { group }
//! val      { assignment_epoch: int32, tags }
//! key  7 ConsumerGroupTargetAssignmentMember   { group, member_id }
//! val      { topic_partitions: [{ topic_id: uuid, partitions: [int32], tags }], tags }
//! key  8 ConsumerGroupCurrentMemberAssignment  { group, member_id }
//! val      { member_epoch: int32, previous_member_epoch: int32, state: int8,
//!            assigned: [TopicPartitions], pending_revocation: [TopicPartitions], tags }
//! key 16 ConsumerGroupRegularExpression   { group, regex }
//! val      { topics: [string], version: int64, timestamp: int64, tags }
//! ```
//!
//! The per-partition rack list of key 4 (deprecated in Kafka 4.0) is written empty: the
//! assignors here do not use racks. Tagged fields added by later Kafka versions (the metadata
//! hash of key 3, assignment epochs of key 8, classic member metadata of key 5) are skipped on
//! read, as the flexible-schema rules allow.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use uuid::Uuid;

use super::member::{Assignment, ConsumerGroupMember, MemberState};
use crate::coordinator::group::codec::{CodecError, Reader, Writer};
use crate::coordinator::group::record::{CoordinatorRecord, RecordKey};

/// Key version of `ConsumerGroupMetadata`.
pub const GROUP_METADATA: i16 = 3;
/// Key version of `ConsumerGroupPartitionMetadata`.
pub const PARTITION_METADATA: i16 = 4;
/// Key version of `ConsumerGroupMemberMetadata`.
pub const MEMBER_METADATA: i16 = 5;
/// Key version of `ConsumerGroupTargetAssignmentMetadata`.
pub const TARGET_ASSIGNMENT_METADATA: i16 = 6;
/// Key version of `ConsumerGroupTargetAssignmentMember`.
pub const TARGET_ASSIGNMENT_MEMBER: i16 = 7;
/// Key version of `ConsumerGroupCurrentMemberAssignment`.
pub const CURRENT_MEMBER_ASSIGNMENT: i16 = 8;
/// Key version of `ConsumerGroupRegularExpression`.
pub const REGULAR_EXPRESSION: i16 = 16;

/// One subscribed topic as the group last saw it (`ConsumerGroupPartitionMetadataValue.Topics`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribedTopic {
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition count.
    pub partitions: i32,
}

/// A regular expression resolved to topic names (`ConsumerGroupRegularExpressionValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRegex {
    /// The matching topics.
    pub topics: BTreeSet<String>,
    /// Kafka stores the metadata image offset it resolved against; Kairos has no metadata
    /// log offset and stores the group epoch at resolution, for information only.
    pub version: i64,
    /// When it was resolved.
    pub timestamp_ms: i64,
}

fn key(version: i16, group: &str, member: Option<&str>) -> Bytes {
    let mut rest = Writer::new();
    if let Some(member) = member {
        rest.string(member);
    }
    RecordKey::ConsumerGroup {
        version,
        group: group.to_owned(),
        rest: rest.finish(),
    }
    .encode()
}

fn record(key: Bytes, value: Option<Writer>) -> CoordinatorRecord {
    CoordinatorRecord {
        key,
        value: value.map(Writer::finish),
    }
}

fn value_writer() -> Writer {
    let mut w = Writer::new();
    w.i16(0);
    w
}

/// `ConsumerGroupMetadata`: the group epoch.
#[must_use]
pub fn group_epoch_record(group: &str, epoch: i32) -> CoordinatorRecord {
    let mut w = value_writer();
    w.i32(epoch).no_tagged_fields();
    record(key(GROUP_METADATA, group, None), Some(w))
}

/// `ConsumerGroupPartitionMetadata`: the subscribed topics' metadata.
#[must_use]
pub fn partition_metadata_record(
    group: &str,
    topics: &BTreeMap<String, SubscribedTopic>,
) -> CoordinatorRecord {
    let mut w = value_writer();
    w.compact_len(topics.len());
    for (name, topic) in topics {
        w.uuid(topic.topic_id)
            .compact_string(name)
            .i32(topic.partitions)
            .compact_len(0)
            .no_tagged_fields();
    }
    w.no_tagged_fields();
    record(key(PARTITION_METADATA, group, None), Some(w))
}

/// `ConsumerGroupMemberMetadata`: a member's subscription.
#[must_use]
pub fn member_metadata_record(group: &str, member: &ConsumerGroupMember) -> CoordinatorRecord {
    let mut w = value_writer();
    w.compact_nullable_string(member.instance_id.as_deref())
        .compact_nullable_string(member.rack_id.as_deref())
        .compact_string(&member.client_id)
        .compact_string(&member.client_host)
        .compact_len(member.subscribed_topic_names.len());
    for name in &member.subscribed_topic_names {
        w.compact_string(name);
    }
    w.compact_nullable_string(member.subscribed_topic_regex.as_deref())
        .i32(member.rebalance_timeout_ms)
        .compact_nullable_string(member.server_assignor.as_deref())
        .no_tagged_fields();
    record(
        key(MEMBER_METADATA, group, Some(&member.member_id)),
        Some(w),
    )
}

/// `ConsumerGroupTargetAssignmentMetadata`: the epoch of the target assignment.
#[must_use]
pub fn target_assignment_epoch_record(group: &str, epoch: i32) -> CoordinatorRecord {
    let mut w = value_writer();
    w.i32(epoch).no_tagged_fields();
    record(key(TARGET_ASSIGNMENT_METADATA, group, None), Some(w))
}

/// `ConsumerGroupTargetAssignmentMember`: one member's target assignment.
#[must_use]
pub fn target_assignment_record(
    group: &str,
    member_id: &str,
    assignment: &Assignment,
) -> CoordinatorRecord {
    let mut w = value_writer();
    write_topic_partitions(&mut w, assignment);
    w.no_tagged_fields();
    record(
        key(TARGET_ASSIGNMENT_MEMBER, group, Some(member_id)),
        Some(w),
    )
}

/// `ConsumerGroupCurrentMemberAssignment`: a member's reconciliation state.
#[must_use]
pub fn current_assignment_record(group: &str, member: &ConsumerGroupMember) -> CoordinatorRecord {
    let mut w = value_writer();
    w.i32(member.member_epoch)
        .i32(member.previous_member_epoch)
        .i8(member.state.value());
    write_topic_partitions(&mut w, &member.assigned_partitions);
    write_topic_partitions(&mut w, &member.partitions_pending_revocation);
    w.no_tagged_fields();
    record(
        key(CURRENT_MEMBER_ASSIGNMENT, group, Some(&member.member_id)),
        Some(w),
    )
}

/// `ConsumerGroupRegularExpression`: a resolved regular expression.
#[must_use]
pub fn regex_record(group: &str, regex: &str, resolved: &ResolvedRegex) -> CoordinatorRecord {
    let mut w = value_writer();
    w.compact_len(resolved.topics.len());
    for topic in &resolved.topics {
        w.compact_string(topic);
    }
    w.i64(resolved.version)
        .i64(resolved.timestamp_ms)
        .no_tagged_fields();
    record(key(REGULAR_EXPRESSION, group, Some(regex)), Some(w))
}

/// A tombstone for the record of `version` (with the member id or regex for keys that have
/// one).
#[must_use]
pub fn tombstone(version: i16, group: &str, member_or_regex: Option<&str>) -> CoordinatorRecord {
    record(key(version, group, member_or_regex), None)
}

fn write_topic_partitions(w: &mut Writer, assignment: &Assignment) {
    w.compact_len(assignment.len());
    for (topic_id, partitions) in assignment {
        w.uuid(*topic_id).compact_len(partitions.len());
        for partition in partitions {
            w.i32(*partition);
        }
        w.no_tagged_fields();
    }
}

/// Reads the member id (or regex) that follows the group id in keys 5, 7, 8 and 16.
///
/// # Errors
/// A truncated key.
pub fn decode_key_string(rest: &[u8]) -> Result<String, CodecError> {
    Reader::new(rest).string()
}

fn value_reader(value: &[u8]) -> Result<Reader<'_>, CodecError> {
    let mut r = Reader::new(value);
    if r.i16()? != 0 {
        // Version 0 is the only one Kafka has defined for these values; a newer one may
        // reorder non-tagged fields, so reading it as 0 could silently mis-load the group.
        return Err(CodecError("unknown consumer group value version"));
    }
    Ok(r)
}

/// Decodes an epoch value (keys 3 and 6).
///
/// # Errors
/// A truncated value or an unknown version.
pub fn decode_epoch(value: &[u8]) -> Result<i32, CodecError> {
    let mut r = value_reader(value)?;
    let epoch = r.i32()?;
    r.skip_tagged_fields()?;
    Ok(epoch)
}

/// Decodes a `ConsumerGroupPartitionMetadataValue`.
///
/// # Errors
/// A truncated value or an unknown version.
pub fn decode_partition_metadata(
    value: &[u8],
) -> Result<BTreeMap<String, SubscribedTopic>, CodecError> {
    let mut r = value_reader(value)?;
    let mut topics = BTreeMap::new();
    for _ in 0..r.compact_array_len()? {
        let topic_id = r.uuid()?;
        let name = r.compact_string()?;
        let partitions = r.i32()?;
        for _ in 0..r.compact_array_len()? {
            let _partition = r.i32()?;
            for _ in 0..r.compact_array_len()? {
                let _rack = r.compact_string()?;
            }
            r.skip_tagged_fields()?;
        }
        r.skip_tagged_fields()?;
        topics.insert(
            name,
            SubscribedTopic {
                topic_id,
                partitions,
            },
        );
    }
    r.skip_tagged_fields()?;
    Ok(topics)
}

/// Applies a `ConsumerGroupMemberMetadataValue` to `member`.
///
/// # Errors
/// A truncated value or an unknown version.
pub fn decode_member_metadata(
    value: &[u8],
    member: &mut ConsumerGroupMember,
) -> Result<(), CodecError> {
    let mut r = value_reader(value)?;
    member.instance_id = r.compact_nullable_string()?;
    member.rack_id = r.compact_nullable_string()?;
    member.client_id = r.compact_string()?;
    member.client_host = r.compact_string()?;
    let mut names = BTreeSet::new();
    for _ in 0..r.compact_array_len()? {
        let _ = names.insert(r.compact_string()?);
    }
    member.subscribed_topic_names = names;
    member.subscribed_topic_regex = r.compact_nullable_string()?;
    member.rebalance_timeout_ms = r.i32()?;
    member.server_assignor = r.compact_nullable_string()?;
    r.skip_tagged_fields()?;
    Ok(())
}

/// Decodes a `ConsumerGroupTargetAssignmentMemberValue`.
///
/// # Errors
/// A truncated value or an unknown version.
pub fn decode_target_assignment(value: &[u8]) -> Result<Assignment, CodecError> {
    let mut r = value_reader(value)?;
    let assignment = read_topic_partitions(&mut r)?;
    r.skip_tagged_fields()?;
    Ok(assignment)
}

/// Applies a `ConsumerGroupCurrentMemberAssignmentValue` to `member`.
///
/// # Errors
/// A truncated value or an unknown version.
pub fn decode_current_assignment(
    value: &[u8],
    member: &mut ConsumerGroupMember,
) -> Result<(), CodecError> {
    let mut r = value_reader(value)?;
    member.member_epoch = r.i32()?;
    member.previous_member_epoch = r.i32()?;
    member.state = MemberState::from_value(r.i8()?);
    member.assigned_partitions = read_topic_partitions(&mut r)?;
    member.partitions_pending_revocation = read_topic_partitions(&mut r)?;
    r.skip_tagged_fields()?;
    Ok(())
}

/// Decodes a `ConsumerGroupRegularExpressionValue`.
///
/// # Errors
/// A truncated value or an unknown version.
pub fn decode_regex(value: &[u8]) -> Result<ResolvedRegex, CodecError> {
    let mut r = value_reader(value)?;
    let mut topics = BTreeSet::new();
    for _ in 0..r.compact_array_len()? {
        let _ = topics.insert(r.compact_string()?);
    }
    let version = r.i64()?;
    let timestamp_ms = r.i64()?;
    r.skip_tagged_fields()?;
    Ok(ResolvedRegex {
        topics,
        version,
        timestamp_ms,
    })
}

fn read_topic_partitions(r: &mut Reader<'_>) -> Result<Assignment, CodecError> {
    let mut assignment = Assignment::new();
    for _ in 0..r.compact_array_len()? {
        let topic_id = r.uuid()?;
        let mut partitions = BTreeSet::new();
        for _ in 0..r.compact_array_len()? {
            let _ = partitions.insert(r.i32()?);
        }
        r.skip_tagged_fields()?;
        if !partitions.is_empty() {
            assignment.entry(topic_id).or_default().extend(partitions);
        }
    }
    Ok(assignment)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member() -> ConsumerGroupMember {
        let mut m = ConsumerGroupMember::new("m-1");
        m.instance_id = Some("i".into());
        m.client_id = "c".into();
        m.client_host = "/127.0.0.1".into();
        m.subscribed_topic_names = ["a".to_string(), "b".to_string()].into();
        m.subscribed_topic_regex = Some("t.*".into());
        m.rebalance_timeout_ms = 300;
        m.server_assignor = Some("range".into());
        m.member_epoch = 4;
        m.previous_member_epoch = 3;
        m.state = MemberState::UnrevokedPartitions;
        m.assigned_partitions = [(Uuid::from_u128(1), [0, 2].into())].into();
        m.partitions_pending_revocation = [(Uuid::from_u128(2), [1].into())].into();
        m
    }

    fn value(record: &CoordinatorRecord) -> &[u8] {
        record.value.as_deref().unwrap()
    }

    #[test]
    fn member_records_round_trip() {
        let original = member();
        let mut decoded = ConsumerGroupMember::new("m-1");
        decode_member_metadata(value(&member_metadata_record("g", &original)), &mut decoded)
            .unwrap();
        decode_current_assignment(
            value(&current_assignment_record("g", &original)),
            &mut decoded,
        )
        .unwrap();
        assert_eq!(decoded, original);
    }

    #[test]
    fn group_records_round_trip() {
        assert_eq!(decode_epoch(value(&group_epoch_record("g", 7))).unwrap(), 7);
        assert_eq!(
            decode_epoch(value(&target_assignment_epoch_record("g", 9))).unwrap(),
            9
        );
        let topics: BTreeMap<_, _> = [(
            "t".to_string(),
            SubscribedTopic {
                topic_id: Uuid::from_u128(5),
                partitions: 3,
            },
        )]
        .into();
        assert_eq!(
            decode_partition_metadata(value(&partition_metadata_record("g", &topics))).unwrap(),
            topics
        );
        let assignment: Assignment = [(Uuid::from_u128(5), [0, 1].into())].into();
        assert_eq!(
            decode_target_assignment(value(&target_assignment_record("g", "m", &assignment)))
                .unwrap(),
            assignment
        );
        let resolved = ResolvedRegex {
            topics: ["t1".to_string()].into(),
            version: 2,
            timestamp_ms: 3,
        };
        assert_eq!(
            decode_regex(value(&regex_record("g", "t.*", &resolved))).unwrap(),
            resolved
        );
    }

    #[test]
    fn keys_carry_kafka_versions_and_member_ids() {
        let record = current_assignment_record("g", &member());
        let RecordKey::ConsumerGroup {
            version,
            group,
            rest,
        } = RecordKey::decode(&record.key).unwrap()
        else {
            panic!("not a consumer group key");
        };
        assert_eq!((version, group.as_str()), (8, "g"));
        assert_eq!(decode_key_string(&rest).unwrap(), "m-1");
        // The exact bytes of Kafka's ConsumerGroupMetadataKey: version 3, then "g".
        assert_eq!(&group_epoch_record("g", 1).key[..], &[0, 3, 0, 1, b'g']);
        // ConsumerGroupMetadataValue v0 with epoch 1 and no tagged fields.
        assert_eq!(value(&group_epoch_record("g", 1)), &[0, 0, 0, 0, 0, 1, 0]);
    }

    #[test]
    fn damaged_values_are_errors() {
        let bytes = current_assignment_record("g", &member()).value.unwrap();
        for len in 0..bytes.len() {
            let mut m = ConsumerGroupMember::new("m");
            assert!(decode_current_assignment(&bytes[..len], &mut m).is_err());
        }
        assert!(decode_epoch(&[0, 1, 0, 0, 0, 1, 0]).is_err());
    }
}
