//! Durable broker metadata: small JSON files written atomically.
//!
//! Format (all under `{data_dir}/__kairos_metadata/`):
//! - `cluster.json`: `{ "cluster_id": "<22 chars base64url>", "next_producer_id": <i64> }`
//! - `topics/{topic}.json`: `{ "name", "topic_id" (UUID), "partitions", "leader_epoch",
//!   "configs": { "<kafka config name>": "<value>" } }`
//!
//! Every write is tmp file + fsync + rename + fsync of the directory, so a crash leaves either the
//! old or the new file, never a torn one. The directory name has no `-<digits>` suffix, so the log
//! manager never mistakes it for a partition directory.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Serialize, de::DeserializeOwned};

/// Name of the metadata directory inside the data directory.
pub const METADATA_DIR_NAME: &str = "__kairos_metadata";

/// Reads and writes the metadata files.
#[derive(Debug)]
pub struct MetadataStore {
    dir: PathBuf,
}

impl MetadataStore {
    /// Opens (creating if needed) the metadata directory under `data_dir`.
    ///
    /// # Errors
    /// I/O errors creating the directories.
    pub fn open(data_dir: &Path) -> io::Result<MetadataStore> {
        let dir = data_dir.join(METADATA_DIR_NAME);
        fs::create_dir_all(dir.join("topics"))?;
        sync_dir(data_dir)?;
        sync_dir(&dir)?;
        Ok(MetadataStore { dir })
    }

    /// Path of the cluster file.
    fn cluster_path(&self) -> PathBuf {
        self.dir.join("cluster.json")
    }

    fn topic_path(&self, name: &str) -> PathBuf {
        self.dir.join("topics").join(format!("{name}.json"))
    }

    /// Reads `cluster.json`, if present.
    ///
    /// # Errors
    /// I/O errors and unparsable contents.
    pub fn read_cluster<T: DeserializeOwned>(&self) -> io::Result<Option<T>> {
        read_json(&self.cluster_path())
    }

    /// Atomically replaces `cluster.json`.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write_cluster<T: Serialize>(&self, value: &T) -> io::Result<()> {
        write_json_atomic(&self.cluster_path(), value)
    }

    /// Every stored topic.
    ///
    /// # Errors
    /// I/O errors and unparsable files.
    pub fn read_topics<T: DeserializeOwned>(&self) -> io::Result<Vec<T>> {
        let mut topics = Vec::new();
        for entry in fs::read_dir(self.dir.join("topics"))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json")
                && let Some(topic) = read_json(&path)?
            {
                topics.push(topic);
            }
        }
        Ok(topics)
    }

    /// Atomically writes one topic's file.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write_topic<T: Serialize>(&self, name: &str, value: &T) -> io::Result<()> {
        write_json_atomic(&self.topic_path(name), value)
    }

    /// Removes one topic's file, durably.
    ///
    /// # Errors
    /// I/O errors other than "already gone".
    pub fn delete_topic(&self, name: &str) -> io::Result<()> {
        match fs::remove_file(self.topic_path(name)) {
            Ok(()) => sync_dir(&self.dir.join("topics")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{path:?}: {e}"))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    {
        let mut file = File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    match path.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(store.read_cluster::<u32>().unwrap(), None);
        store.write_cluster(&7_u32).unwrap();
        assert_eq!(store.read_cluster::<u32>().unwrap(), Some(7));
        store.write_topic("a", &1_u32).unwrap();
        store.write_topic("b", &2_u32).unwrap();
        let mut topics = store.read_topics::<u32>().unwrap();
        topics.sort_unstable();
        assert_eq!(topics, vec![1, 2]);
        store.delete_topic("a").unwrap();
        store.delete_topic("a").unwrap();
        assert_eq!(store.read_topics::<u32>().unwrap(), vec![2]);
    }
}
