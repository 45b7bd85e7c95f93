//! Committed offsets of one group, the transactional ones not committed yet, and when
//! offsets expire (`offsets.retention.minutes`).

use std::collections::{BTreeMap, HashMap};

use super::record::OffsetCommitValue;

/// A group's committed offsets by (topic, partition).
#[derive(Debug, Default)]
pub struct OffsetStore {
    offsets: BTreeMap<(String, i32), OffsetCommitValue>,
    // TxnOffsetCommit offsets by producer id, applied when its COMMIT marker is written.
    pending: HashMap<i64, BTreeMap<(String, i32), OffsetCommitValue>>,
}

impl OffsetStore {
    /// The committed offset of a partition.
    #[must_use]
    pub fn get(&self, topic: &str, partition: i32) -> Option<&OffsetCommitValue> {
        self.offsets.get(&(topic.to_owned(), partition))
    }

    /// Records a commit.
    pub fn put(&mut self, topic: &str, partition: i32, value: OffsetCommitValue) {
        let _ = self.offsets.insert((topic.to_owned(), partition), value);
    }

    /// Forgets a partition's offset; whether there was one.
    pub fn remove(&mut self, topic: &str, partition: i32) -> bool {
        self.offsets
            .remove(&(topic.to_owned(), partition))
            .is_some()
    }

    /// Records a transactional commit that waits for its transaction's marker.
    pub fn put_pending(
        &mut self,
        producer_id: i64,
        topic: &str,
        partition: i32,
        value: OffsetCommitValue,
    ) {
        let _ = self
            .pending
            .entry(producer_id)
            .or_default()
            .insert((topic.to_owned(), partition), value);
    }

    /// Ends `producer_id`'s transaction: its offsets become committed, or are dropped.
    pub fn complete_transaction(&mut self, producer_id: i64, commit: bool) {
        if let Some(pending) = self.pending.remove(&producer_id)
            && commit
        {
            self.offsets.extend(pending);
        }
    }

    /// Whether a transaction has an offset for the partition that is not committed yet
    /// (OffsetFetch with `require_stable` answers UNSTABLE_OFFSET_COMMIT then).
    #[must_use]
    pub fn has_pending(&self, topic: &str, partition: i32) -> bool {
        let key = (topic.to_owned(), partition);
        self.pending.values().any(|p| p.contains_key(&key))
    }

    /// Whether any transaction has uncommitted offsets here.
    #[must_use]
    pub fn has_any_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Every committed offset, ordered by topic then partition.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i32, &OffsetCommitValue)> {
        self.offsets
            .iter()
            .map(|((topic, partition), value)| (topic.as_str(), *partition, value))
    }

    /// The partitions of `topic` that have an offset.
    #[must_use]
    pub fn partitions_of(&self, topic: &str) -> Vec<i32> {
        self.offsets
            .range((topic.to_owned(), i32::MIN)..=(topic.to_owned(), i32::MAX))
            .map(|((_, partition), _)| *partition)
            .collect()
    }

    /// Whether there is no offset.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Offsets whose retention has passed: `now - max(base, commit time) >= retention`, where
    /// `base` is when the group became empty (Kafka's KIP-211: offsets of an empty group
    /// expire a retention period after the group emptied, not after each commit).
    #[must_use]
    pub fn expired(
        &self,
        now_ms: i64,
        retention_ms: i64,
        base_ms: Option<i64>,
    ) -> Vec<(String, i32)> {
        self.offsets
            .iter()
            .filter(|(_, value)| {
                let since = base_ms.map_or(value.commit_timestamp, |base| {
                    base.max(value.commit_timestamp)
                });
                let explicit = value.expire_timestamp >= 0 && value.expire_timestamp <= now_ms;
                explicit || now_ms.saturating_sub(since) >= retention_ms
            })
            .map(|(key, _)| key.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(offset: i64, at: i64) -> OffsetCommitValue {
        OffsetCommitValue {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: at,
            expire_timestamp: -1,
        }
    }

    #[test]
    fn expiry_counts_from_the_later_of_empty_time_and_commit() {
        let mut store = OffsetStore::default();
        store.put("t", 0, value(5, 1_000));
        store.put("t", 1, value(6, 5_000));
        assert_eq!(
            store.expired(10_999, 10_000, None),
            Vec::<(String, i32)>::new()
        );
        assert_eq!(store.expired(11_000, 10_000, None), vec![("t".into(), 0)]);
        assert!(store.expired(11_000, 10_000, Some(3_000)).is_empty());
        assert_eq!(store.partitions_of("t"), vec![0, 1]);
        assert!(store.remove("t", 0));
        assert!(!store.remove("t", 0));
    }
}
