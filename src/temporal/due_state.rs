//! `__due_state`: the durable fired state of the due index (DESIGN §5.3), an internal compacted
//! topic keyed by (source topic id, partition, field selector, entity key).
//!
//! A record says "this (topic, partition, key, field) last fired for `due_at_ms`". Compaction
//! keeps the latest per key, which is all the index keeps too (a slot remembers one fired due
//! time). A tombstone forgets the entity: its key was deleted (a tombstone in the source
//! partition) or its topic was. Rebuilding a partition's index without a snapshot loads these
//! records first, so a fire that compaction removed from the source log still counts.
//!
//! Format (big-endian; versioned like Kafka's coordinator record keys and values):
//!
//! ```text
//! key   v0: version   u16       0
//!           topic_id  [u8; 16]  the source topic's id (a topic created again gets a new one)
//!           partition i32
//!           field_len u16
//!           field     [u8; field_len]   the selector as configured, UTF-8
//!           key       [u8; ..]          the entity key: the rest of the record key
//! value v0: version        u16  0
//!           due_at_ms      i64  the due time that fired
//!           source_offset  i64  offset of the version the fire reflected
//!           fire_offset    i64  offset of the fire record in the partition it went to: the
//!                               source partition, or its target topic's partition
//! ```
//!
//! All records of one source partition go to one `__due_state` partition
//! ([`state_partition`]), so loading or deleting a partition's fired state reads one log.

use bytes::{BufMut, Bytes, BytesMut};

/// The topic's name.
pub const DUE_STATE_TOPIC: &str = "__due_state";
/// Partitions when the topic is created. Fixed: [`state_partition`] depends on it, and the
/// topic is read whole per source partition only at (re)index and deletion.
pub const DUE_STATE_PARTITIONS: i32 = 8;
/// `segment.bytes` of the topic: small enough that compaction keeps it near one record per
/// fired entity.
pub const DUE_STATE_SEGMENT_BYTES: i32 = 16 << 20;

const KEY_VERSION: u16 = 0;
const VALUE_VERSION: u16 = 0;
const KEY_PREFIX_BYTES: usize = 2 + 16 + 4;
const VALUE_BYTES: usize = 2 + 8 * 3;

/// The identity of a fired entity, as the key of a `__due_state` record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StateKey {
    /// The source topic's id.
    pub topic_id: uuid::Uuid,
    /// The source partition.
    pub partition: i32,
    /// The field's selector.
    pub field: String,
    /// The entity key.
    pub key: Vec<u8>,
}

/// What fired, as the value of a `__due_state` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FiredValue {
    /// The due time that fired.
    pub due_at_ms: i64,
    /// Offset of the version the fire reflected.
    pub source_offset: i64,
    /// Offset of the fire record.
    pub fire_offset: i64,
}

/// The prefix every key of one source partition starts with.
#[must_use]
pub fn key_prefix(topic_id: uuid::Uuid, partition: i32) -> [u8; KEY_PREFIX_BYTES] {
    let mut out = [0u8; KEY_PREFIX_BYTES];
    out[0..2].copy_from_slice(&KEY_VERSION.to_be_bytes());
    out[2..18].copy_from_slice(topic_id.as_bytes());
    out[18..22].copy_from_slice(&partition.to_be_bytes());
    out
}

impl StateKey {
    /// Encodes the key (see the module docs).
    #[must_use]
    pub fn encode(&self) -> Bytes {
        Self::encode_parts(self.topic_id, self.partition, &self.field, &self.key)
    }

    /// [`Self::encode`] from borrowed parts (the pulse writes one key per fire).
    #[must_use]
    pub fn encode_parts(topic_id: uuid::Uuid, partition: i32, field: &str, key: &[u8]) -> Bytes {
        let field = field.as_bytes();
        let mut out = BytesMut::with_capacity(KEY_PREFIX_BYTES + 2 + field.len() + key.len());
        out.put_slice(&key_prefix(topic_id, partition));
        // Selectors are short (a config value); a longer one is cut rather than mis-framed.
        let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
        out.put_u16(len);
        out.put_slice(&field[..usize::from(len)]);
        out.put_slice(key);
        out.freeze()
    }

    /// Decodes a key; `None` for another version or a malformed key (skipped at load).
    #[must_use]
    pub fn decode(bytes: &[u8]) -> Option<StateKey> {
        let version = u16::from_be_bytes(bytes.get(0..2)?.try_into().ok()?);
        if version != KEY_VERSION {
            return None;
        }
        let topic_id = uuid::Uuid::from_slice(bytes.get(2..18)?).ok()?;
        let partition = i32::from_be_bytes(bytes.get(18..22)?.try_into().ok()?);
        let len = usize::from(u16::from_be_bytes(bytes.get(22..24)?.try_into().ok()?));
        let field = std::str::from_utf8(bytes.get(24..24 + len)?)
            .ok()?
            .to_owned();
        let key = bytes.get(24 + len..)?.to_vec();
        Some(StateKey {
            topic_id,
            partition,
            field,
            key,
        })
    }
}

impl FiredValue {
    /// Encodes the value (see the module docs).
    #[must_use]
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(VALUE_BYTES);
        out.put_u16(VALUE_VERSION);
        out.put_i64(self.due_at_ms);
        out.put_i64(self.source_offset);
        out.put_i64(self.fire_offset);
        out.freeze()
    }

    /// Decodes a value; `None` for another version or a short value (skipped at load).
    #[must_use]
    pub fn decode(bytes: &[u8]) -> Option<FiredValue> {
        let word = |at: usize| -> Option<i64> {
            Some(i64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
        };
        let version = u16::from_be_bytes(bytes.get(0..2)?.try_into().ok()?);
        (version == VALUE_VERSION).then_some(())?;
        Some(FiredValue {
            due_at_ms: word(2)?,
            source_offset: word(10)?,
            fire_offset: word(18)?,
        })
    }
}

/// The `__due_state` partition holding the fired state of `(topic_id, partition)`: xxh3 of the
/// key prefix, so it is stable across restarts and independent of the platform.
#[must_use]
pub fn state_partition(topic_id: uuid::Uuid, partition: i32, partitions: i32) -> i32 {
    let hash = xxhash_rust::xxh3::xxh3_64(&key_prefix(topic_id, partition));
    let partitions = u64::try_from(partitions.max(1)).unwrap_or(1);
    i32::try_from(hash % partitions).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip_and_foreign_versions_are_skipped() {
        let key = StateKey {
            topic_id: uuid::Uuid::from_u128(0x0102_0304),
            partition: 7,
            field: "/validity/end".into(),
            key: b"price-1\x00\xff".to_vec(),
        };
        let encoded = key.encode();
        assert!(encoded.starts_with(&key_prefix(key.topic_id, 7)));
        assert_eq!(StateKey::decode(&encoded), Some(key.clone()));
        let value = FiredValue {
            due_at_ms: 1_800_000_000_000,
            source_offset: 41,
            fire_offset: 42,
        };
        assert_eq!(FiredValue::decode(&value.encode()), Some(value));
        assert_eq!(value.encode().len(), VALUE_BYTES);
        let mut other = encoded.to_vec();
        other[1] = 1;
        assert_eq!(StateKey::decode(&other), None, "key version 1 is not ours");
        assert_eq!(StateKey::decode(&encoded[..23]), None, "short key");
        assert_eq!(
            FiredValue::decode(&value.encode()[..20]),
            None,
            "short value"
        );
        // An empty entity key is still a key.
        let empty = StateKey {
            key: Vec::new(),
            ..key
        };
        assert_eq!(StateKey::decode(&empty.encode()), Some(empty));
    }

    #[test]
    fn a_source_partition_maps_to_one_stable_state_partition() {
        let id = uuid::Uuid::from_u128(99);
        let p = state_partition(id, 3, DUE_STATE_PARTITIONS);
        assert!((0..DUE_STATE_PARTITIONS).contains(&p));
        assert_eq!(p, state_partition(id, 3, DUE_STATE_PARTITIONS));
        let spread: std::collections::HashSet<i32> = (0..64)
            .map(|partition| state_partition(id, partition, DUE_STATE_PARTITIONS))
            .collect();
        assert!(spread.len() > 4, "partitions spread: {spread:?}");
    }
}
