//! The topic registry of this single node: cluster id, topics with their ids, partition counts,
//! leader epochs and configs. Persisted through [`store::MetadataStore`] and reloaded at start.
//!
//! Reads are lock-then-clone of an `Arc<TopicMetadata>`, so request paths never hold the lock
//! across anything slow. Writes (create, delete, alter) go through the `Controller`, which
//! serialises them and persists before publishing.

pub mod store;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::topic_config::TopicOverrides;
use store::MetadataStore;

/// One topic as the broker knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMetadata {
    /// Topic name.
    pub name: String,
    /// Assigned at creation; a re-created topic gets a new one.
    pub topic_id: Uuid,
    /// Number of partitions.
    pub partitions: i32,
    /// The leader epoch of every partition. It only ever grows (persisted), so clients that
    /// cache it never see it go backwards across restarts.
    pub leader_epoch: i32,
    /// Explicitly set topic configs, by Kafka name.
    pub configs: TopicOverrides,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ClusterFile {
    cluster_id: String,
    /// First producer id of the next block to hand out; see `coordinator::producer_id`.
    next_producer_id: i64,
}

/// The in-memory registry plus its store.
#[derive(Debug)]
pub struct MetadataCache {
    store: MetadataStore,
    cluster_id: String,
    // A readers-writer lock: every request reads topics; only admin requests write.
    topics: RwLock<BTreeMap<String, Arc<TopicMetadata>>>,
    // Serialises the read-modify-write of cluster.json (producer-id blocks).
    cluster_file: parking_lot::Mutex<ClusterFile>,
}

impl MetadataCache {
    /// Loads (or initialises) the metadata under `data_dir`.
    ///
    /// # Errors
    /// I/O errors and unreadable files.
    pub fn open(data_dir: &Path) -> io::Result<MetadataCache> {
        let store = MetadataStore::open(data_dir)?;
        let cluster = if let Some(cluster) = store.read_cluster::<ClusterFile>()? {
            cluster
        } else {
            let cluster = ClusterFile {
                cluster_id: new_cluster_id(),
                next_producer_id: 0,
            };
            store.write_cluster(&cluster)?;
            cluster
        };
        let topics = store
            .read_topics::<TopicMetadata>()?
            .into_iter()
            .map(|t| (t.name.clone(), Arc::new(t)))
            .collect();
        Ok(MetadataCache {
            store,
            cluster_id: cluster.cluster_id.clone(),
            topics: RwLock::new(topics),
            cluster_file: parking_lot::Mutex::new(cluster),
        })
    }

    /// The persisted cluster id.
    #[must_use]
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// A topic by name.
    #[must_use]
    pub fn topic(&self, name: &str) -> Option<Arc<TopicMetadata>> {
        self.topics.read().get(name).cloned()
    }

    /// A topic by id.
    #[must_use]
    pub fn topic_by_id(&self, topic_id: Uuid) -> Option<Arc<TopicMetadata>> {
        self.topics
            .read()
            .values()
            .find(|t| t.topic_id == topic_id)
            .cloned()
    }

    /// All topics, by name.
    #[must_use]
    pub fn topics(&self) -> Vec<Arc<TopicMetadata>> {
        self.topics.read().values().cloned().collect()
    }

    /// Persists and publishes a topic (create or update). Blocking: fsyncs.
    ///
    /// # Errors
    /// I/O errors; the in-memory state is unchanged when writing fails.
    pub fn put_topic(&self, topic: TopicMetadata) -> io::Result<Arc<TopicMetadata>> {
        self.store.write_topic(&topic.name, &topic)?;
        let topic = Arc::new(topic);
        let _previous = self
            .topics
            .write()
            .insert(topic.name.clone(), Arc::clone(&topic));
        Ok(topic)
    }

    /// Removes a topic durably. Blocking: fsyncs.
    ///
    /// # Errors
    /// I/O errors.
    pub fn remove_topic(&self, name: &str) -> io::Result<()> {
        self.store.delete_topic(name)?;
        let _removed = self.topics.write().remove(name);
        Ok(())
    }

    /// Reserves `count` producer ids durably and returns the first. Blocking: fsyncs.
    ///
    /// # Errors
    /// I/O errors; nothing is reserved then.
    pub fn reserve_producer_ids(&self, count: i64) -> io::Result<i64> {
        let mut cluster = self.cluster_file.lock();
        let first = cluster.next_producer_id;
        let next = ClusterFile {
            cluster_id: cluster.cluster_id.clone(),
            next_producer_id: first + count,
        };
        self.store.write_cluster(&next)?;
        *cluster = next;
        Ok(first)
    }
}

/// A Kafka-style cluster id: a random UUID in unpadded URL-safe base64 (22 characters).
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = Uuid::new_v4().as_u128();
    // 128 bits = 21 full sextets plus 2 bits; emit the sextets from the top.
    (0..22)
        .map(|i| {
            let shift = 128_i32 - 6 * (i + 1);
            let sextet = if shift >= 0 {
                (bits >> shift) & 0x3f
            } else {
                (bits << -shift) & 0x3f
            };
            char::from(ALPHABET[usize::try_from(sextet).unwrap_or(0)])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str) -> TopicMetadata {
        TopicMetadata {
            name: name.into(),
            topic_id: Uuid::new_v4(),
            partitions: 3,
            leader_epoch: 0,
            configs: TopicOverrides::new(),
        }
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let cache = MetadataCache::open(dir.path()).unwrap();
        let cluster_id = cache.cluster_id().to_owned();
        assert_eq!(cluster_id.len(), 22);
        let a = cache.put_topic(topic("a")).unwrap();
        let _b = cache.put_topic(topic("b")).unwrap();
        cache.remove_topic("b").unwrap();
        assert_eq!(cache.reserve_producer_ids(1000).unwrap(), 0);
        drop(cache);

        let cache = MetadataCache::open(dir.path()).unwrap();
        assert_eq!(cache.cluster_id(), cluster_id);
        assert_eq!(cache.topic("a").as_deref(), Some(&*a));
        assert_eq!(cache.topic_by_id(a.topic_id).unwrap().name, "a");
        assert!(cache.topic("b").is_none());
        assert_eq!(cache.reserve_producer_ids(1000).unwrap(), 1000);
    }
}
