//! Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete.

use kafka_protocol::error::ResponseError;

use super::{Group, GroupCoordinator, GroupKind, code, offset_tombstone};
use crate::coordinator::group::classic::ClassicGroupState;
use crate::coordinator::group::record::{CoordinatorRecord, OffsetCommitValue, RecordKey};

/// One partition of an OffsetCommit.
#[derive(Debug, Clone)]
pub struct OffsetCommit {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Leader epoch or -1.
    pub leader_epoch: i32,
    /// Metadata (null is stored as empty).
    pub metadata: Option<String>,
}

/// Who commits: the member and generation (classic) or member epoch (KIP-848).
#[derive(Debug, Clone)]
pub struct Committer {
    /// Member id (empty for admin/simple commits).
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// Generation (classic) or member epoch (consumer protocol); -1 for none.
    pub generation_or_epoch: i32,
    /// The request version (OffsetCommit v9 carries member epochs).
    pub api_version: i16,
}

type Fetched = Vec<(String, i32, Option<OffsetCommitValue>)>;

impl GroupCoordinator {
    /// OffsetCommit: validates the committer, appends the offsets, waits until they are
    /// durable, then applies them. Per partition: an error code.
    ///
    /// # Errors
    /// Group-level errors (they apply to every partition).
    pub fn commit_offsets(
        &self,
        group_id: &str,
        committer: &Committer,
        offsets: Vec<OffsetCommit>,
    ) -> Result<Vec<i16>, ResponseError> {
        self.check(group_id)?;
        let now_ms = self.clock.now_ms();
        let max_metadata = self.config.offset_metadata_max_bytes();
        let mut codes = Vec::with_capacity(offsets.len());
        let mut accepted = Vec::new();
        let mut records = Vec::new();
        for commit in offsets {
            let error = self
                .validate_partition(&commit.topic, commit.partition)
                .err()
                .or_else(|| {
                    (commit.metadata.as_deref().map_or(0, str::len) > max_metadata)
                        .then_some(ResponseError::OffsetMetadataTooLarge)
                });
            codes.push(error.map_or(0, code));
            if error.is_some() {
                continue;
            }
            let value = OffsetCommitValue {
                offset: commit.offset,
                leader_epoch: commit.leader_epoch,
                metadata: commit.metadata.unwrap_or_default(),
                commit_timestamp: now_ms,
                expire_timestamp: -1,
            };
            records.push(CoordinatorRecord {
                key: RecordKey::Offset {
                    group: group_id.to_owned(),
                    topic: commit.topic.clone(),
                    partition: commit.partition,
                }
                .encode(),
                value: Some(value.encode()),
            });
            accepted.push((commit.topic, commit.partition, value));
        }
        let write = {
            let mut groups = self.groups.lock();
            match groups.get(group_id) {
                Some(group) => validate_commit(group, committer)?,
                None if committer.generation_or_epoch >= 0 => {
                    return Err(if committer.api_version >= 9 {
                        ResponseError::GroupIdNotFound
                    } else {
                        ResponseError::IllegalGeneration
                    });
                }
                None => {}
            }
            let write = self.topic.append(group_id, &records).map_err(|e| e.code)?;
            let group = groups
                .entry(group_id.to_owned())
                .or_insert_with(|| Group::classic(group_id, now_ms));
            for (topic, partition, value) in accepted {
                group.offsets.put(&topic, partition, value);
            }
            write
        };
        self.topic.make_durable(write).map_err(|e| e.code)?;
        Ok(codes)
    }

    fn validate_partition(&self, topic: &str, partition: i32) -> Result<(), ResponseError> {
        match self.metadata.topic(topic) {
            Some(t) if (0..t.partitions).contains(&partition) => Ok(()),
            _ => Err(ResponseError::UnknownTopicOrPartition),
        }
    }

    /// OffsetFetch for one group: `topics` `None` means every committed offset. Each entry is
    /// `(topic, partition, committed)`; an unknown group answers "no offset" for every
    /// requested partition, as Kafka does. A consumer-protocol member (v9) is checked by its
    /// member id and epoch.
    ///
    /// # Errors
    /// Group-level errors.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        member_epoch: i32,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<Fetched, ResponseError> {
        self.check(group_id)?;
        let groups = self.groups.lock();
        let group = groups.get(group_id);
        if let Some(Group {
            kind: GroupKind::Consumer(consumer),
            ..
        }) = group
        {
            consumer.validate_offset_fetch(member_id, member_epoch)?;
        }
        Ok(match topics {
            Some(topics) => topics
                .into_iter()
                .flat_map(|(topic, partitions)| {
                    partitions.into_iter().map(move |p| (topic.clone(), p))
                })
                .map(|(topic, partition)| {
                    let value = group
                        .and_then(|g| g.offsets.get(&topic, partition))
                        .cloned();
                    (topic, partition, value)
                })
                .collect(),
            None => group.map_or_else(Vec::new, |g| {
                g.offsets
                    .iter()
                    .map(|(t, p, v)| (t.to_owned(), p, Some(v.clone())))
                    .collect()
            }),
        })
    }

    /// OffsetDelete: per partition an error code (GROUP_SUBSCRIBED_TO_TOPIC where a member
    /// consumes the topic).
    ///
    /// # Errors
    /// GROUP_ID_NOT_FOUND.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<i16>, ResponseError> {
        self.check(group_id)?;
        let (write, codes) = {
            let mut groups = self.groups.lock();
            let group = groups
                .get_mut(group_id)
                .ok_or(ResponseError::GroupIdNotFound)?;
            if let GroupKind::Classic(classic) = &group.kind
                && classic.state() == ClassicGroupState::Dead
            {
                return Err(ResponseError::GroupIdNotFound);
            }
            let mut codes = Vec::with_capacity(partitions.len());
            let mut records = Vec::new();
            let mut deleted = Vec::new();
            for (topic, partition) in partitions {
                if group.is_subscribed_to(topic) {
                    codes.push(code(ResponseError::GroupSubscribedToTopic));
                    continue;
                }
                codes.push(0);
                if group.offsets.get(topic, *partition).is_some() {
                    records.push(offset_tombstone(group_id, topic, *partition));
                    deleted.push((topic, *partition));
                }
            }
            let write = self.topic.append(group_id, &records).map_err(|e| e.code)?;
            for (topic, partition) in deleted {
                let _ = group.offsets.remove(topic, partition);
            }
            (write, codes)
        };
        self.topic.make_durable(write).map_err(|e| e.code)?;
        Ok(codes)
    }
}

fn validate_commit(group: &Group, committer: &Committer) -> Result<(), ResponseError> {
    match &group.kind {
        GroupKind::Classic(classic) => classic.validate_offset_commit(
            &committer.member_id,
            committer.group_instance_id.as_deref(),
            committer.generation_or_epoch,
        ),
        GroupKind::Consumer(consumer) => consumer.validate_offset_commit(
            &committer.member_id,
            committer.group_instance_id.as_deref(),
            committer.generation_or_epoch,
            false,
            committer.api_version,
        ),
    }
}
