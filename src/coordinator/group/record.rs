//! The records of `__consumer_offsets`, in Apache Kafka's layouts so that Kafka's own tools
//! (`kafka-dump-log --offsets-decoder`) read a Kairos log.
//!
//! Every record key starts with an `int16` version that names the record type:
//!
//! | key version | record | value |
//! |---|---|---|
//! | 0, 1 | `OffsetCommitKey` (group, topic, partition) | `OffsetCommitValue` v3 (written) / v0–v4 (read) |
//! | 2 | `GroupMetadataKey` (group) | `GroupMetadataValue` v3 (written) / v0–v4 (read) |
//! | 3–8, 16 | KIP-848 consumer-group records (group, …) | see `consumer::record` |
//!
//! A null value is a tombstone: the key's state is deleted, and compaction removes both.

use bytes::Bytes;

use super::codec::{CodecError, Reader, Writer};

pub use crate::coordinator::internal_topic::CoordinatorRecord;

/// A decoded key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    /// A committed offset.
    Offset {
        /// Group id.
        group: String,
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// A classic group's metadata.
    GroupMetadata {
        /// Group id.
        group: String,
    },
    /// A KIP-848 consumer-group record; the consumer module decodes the rest of the key.
    ConsumerGroup {
        /// The key version (the record type).
        version: i16,
        /// Group id (every consumer-group key starts with it).
        group: String,
        /// The key bytes after the group id.
        rest: Bytes,
    },
}

impl RecordKey {
    /// The group the record belongs to.
    #[must_use]
    pub fn group(&self) -> &str {
        match self {
            RecordKey::Offset { group, .. }
            | RecordKey::GroupMetadata { group }
            | RecordKey::ConsumerGroup { group, .. } => group,
        }
    }

    /// Decodes a key.
    ///
    /// # Errors
    /// A truncated key or an unknown version.
    pub fn decode(key: &[u8]) -> Result<RecordKey, CodecError> {
        let mut r = Reader::new(key);
        let version = r.i16()?;
        let group = r.string()?;
        match version {
            0 | 1 => Ok(RecordKey::Offset {
                group,
                topic: r.string()?,
                partition: r.i32()?,
            }),
            2 => Ok(RecordKey::GroupMetadata { group }),
            3..=8 | 16 => {
                let consumed = key.len() - r.remaining();
                Ok(RecordKey::ConsumerGroup {
                    version,
                    group,
                    rest: Bytes::copy_from_slice(&key[consumed..]),
                })
            }
            _ => Err(CodecError("unknown record key version")),
        }
    }

    /// Encodes a key (offset keys as version 1, Kafka's current one).
    #[must_use]
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        match self {
            RecordKey::Offset {
                group,
                topic,
                partition,
            } => {
                w.i16(1).string(group).string(topic).i32(*partition);
            }
            RecordKey::GroupMetadata { group } => {
                w.i16(2).string(group);
            }
            RecordKey::ConsumerGroup {
                version,
                group,
                rest,
            } => {
                w.i16(*version).string(group);
                let mut bytes = bytes::BytesMut::from(&w.finish()[..]);
                bytes.extend_from_slice(rest);
                return bytes.freeze();
            }
        }
        w.finish()
    }
}

/// `OffsetCommitValue`: one committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    /// The committed offset (the next record to consume).
    pub offset: i64,
    /// The leader epoch of the last consumed record, or -1.
    pub leader_epoch: i32,
    /// Client metadata (bounded by `offset.metadata.max.bytes`).
    pub metadata: String,
    /// When the commit was made.
    pub commit_timestamp: i64,
    /// Explicit expiry from OffsetCommit v1 (read only; -1 when absent).
    pub expire_timestamp: i64,
}

impl OffsetCommitValue {
    /// Encodes as version 3 (non-flexible, with the leader epoch).
    #[must_use]
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        w.i16(3)
            .i64(self.offset)
            .i32(self.leader_epoch)
            .string(&self.metadata)
            .i64(self.commit_timestamp);
        w.finish()
    }

    /// Decodes versions 0 to 4.
    ///
    /// # Errors
    /// A truncated value or an unknown version.
    pub fn decode(value: &[u8]) -> Result<OffsetCommitValue, CodecError> {
        let mut r = Reader::new(value);
        let version = r.i16()?;
        if !(0..=4).contains(&version) {
            return Err(CodecError("unknown offset commit value version"));
        }
        let offset = r.i64()?;
        let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
        let metadata = if version >= 4 {
            r.compact_string()?
        } else {
            r.string()?
        };
        let commit_timestamp = r.i64()?;
        let expire_timestamp = if version == 1 { r.i64()? } else { -1 };
        Ok(OffsetCommitValue {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp,
            expire_timestamp,
        })
    }
}

/// One member of a classic group, as persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadata {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// The subscription metadata of the chosen protocol.
    pub subscription: Bytes,
    /// The assignment from the leader.
    pub assignment: Bytes,
}

/// `GroupMetadataValue`: a classic group after a rebalance completed (or emptied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    /// E.g. `consumer`.
    pub protocol_type: String,
    /// Generation.
    pub generation: i32,
    /// The chosen protocol (assignor), if any member.
    pub protocol: Option<String>,
    /// The leader member id.
    pub leader: Option<String>,
    /// When the state last changed.
    pub current_state_timestamp: i64,
    /// Members and their assignments.
    pub members: Vec<MemberMetadata>,
}

impl GroupMetadataValue {
    /// Encodes as version 3.
    #[must_use]
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        w.i16(3)
            .string(&self.protocol_type)
            .i32(self.generation)
            .nullable_string(self.protocol.as_deref())
            .nullable_string(self.leader.as_deref())
            .i64(self.current_state_timestamp)
            .array_len(self.members.len());
        for m in &self.members {
            w.string(&m.member_id)
                .nullable_string(m.group_instance_id.as_deref())
                .string(&m.client_id)
                .string(&m.client_host)
                .i32(m.rebalance_timeout_ms)
                .i32(m.session_timeout_ms)
                .bytes(&m.subscription)
                .bytes(&m.assignment);
        }
        w.finish()
    }

    /// Decodes versions 0 to 4 (v4 is v3 in the flexible encoding).
    ///
    /// # Errors
    /// A truncated value or an unknown version.
    pub fn decode(value: &[u8]) -> Result<GroupMetadataValue, CodecError> {
        let mut r = Reader::new(value);
        let version = r.i16()?;
        match version {
            0..=3 => Self::decode_classic(&mut r, version),
            4 => Self::decode_flexible(&mut r),
            _ => Err(CodecError("unknown group metadata value version")),
        }
    }

    fn decode_classic(r: &mut Reader<'_>, version: i16) -> Result<GroupMetadataValue, CodecError> {
        let protocol_type = r.string()?;
        let generation = r.i32()?;
        let protocol = r.nullable_string()?;
        let leader = r.nullable_string()?;
        let current_state_timestamp = if version >= 2 { r.i64()? } else { -1 };
        let count = r.array_len()?;
        let mut members = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            let member_id = r.string()?;
            let group_instance_id = if version >= 3 {
                r.nullable_string()?
            } else {
                None
            };
            let client_id = r.string()?;
            let client_host = r.string()?;
            let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { -1 };
            let session_timeout_ms = r.i32()?;
            let subscription = r.bytes()?;
            let assignment = r.bytes()?;
            members.push(MemberMetadata {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance_timeout_ms: if rebalance_timeout_ms < 0 {
                    session_timeout_ms
                } else {
                    rebalance_timeout_ms
                },
                session_timeout_ms,
                subscription,
                assignment,
            });
        }
        Ok(GroupMetadataValue {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp,
            members,
        })
    }

    fn decode_flexible(r: &mut Reader<'_>) -> Result<GroupMetadataValue, CodecError> {
        let protocol_type = r.compact_string()?;
        let generation = r.i32()?;
        let protocol = r.compact_nullable_string()?;
        let leader = r.compact_nullable_string()?;
        let current_state_timestamp = r.i64()?;
        let count = r.compact_array_len()?;
        let mut members = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            members.push(MemberMetadata {
                member_id: r.compact_string()?,
                group_instance_id: r.compact_nullable_string()?,
                client_id: r.compact_string()?,
                client_host: r.compact_string()?,
                rebalance_timeout_ms: r.i32()?,
                session_timeout_ms: r.i32()?,
                subscription: r.compact_bytes()?,
                assignment: r.compact_bytes()?,
            });
            r.skip_tagged_fields()?;
        }
        r.skip_tagged_fields()?;
        Ok(GroupMetadataValue {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp,
            members,
        })
    }
}

/// Kafka's `String.hashCode()` over UTF-16 code units: the group → partition mapping must be
/// Kafka's so that the partition holding a group is the one Kafka's tools expect.
#[must_use]
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The `__consumer_offsets` partition of `group` (Kafka's `Utils.abs(hashCode) % partitions`).
#[must_use]
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    // Kafka's `Utils.abs` maps i32::MIN to 0 rather than overflowing.
    let hash = java_string_hash(group);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_records_round_trip() {
        let key = RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
        };
        assert_eq!(RecordKey::decode(&key.encode()).unwrap(), key);
        let value = OffsetCommitValue {
            offset: 42,
            leader_epoch: 0,
            metadata: "m".into(),
            commit_timestamp: 7,
            expire_timestamp: -1,
        };
        assert_eq!(OffsetCommitValue::decode(&value.encode()).unwrap(), value);
    }

    #[test]
    fn group_metadata_round_trips() {
        let value = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            current_state_timestamp: 99,
            members: vec![MemberMetadata {
                member_id: "m-1".into(),
                group_instance_id: Some("i".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300,
                session_timeout_ms: 100,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        assert_eq!(GroupMetadataValue::decode(&value.encode()).unwrap(), value);
        let key = RecordKey::GroupMetadata { group: "g".into() };
        assert_eq!(RecordKey::decode(&key.encode()).unwrap(), key);
    }

    #[test]
    fn partitioning_matches_java() {
        // Values of "...".hashCode() computed by the JVM.
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("hello", 50), 99_162_322 % 50);
    }

    #[test]
    fn consumer_group_keys_pass_through() {
        let key = RecordKey::ConsumerGroup {
            version: 5,
            group: "g".into(),
            rest: Bytes::from_static(&[0, 1, b'm']),
        };
        assert_eq!(RecordKey::decode(&key.encode()).unwrap(), key);
        assert!(RecordKey::decode(&[0, 9, 0, 0]).is_err());
    }
}
