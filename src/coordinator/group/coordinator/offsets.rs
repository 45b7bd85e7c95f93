//! Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete.

use kafka_protocol::error::ResponseError;

use super::{Group, GroupCoordinator, GroupKind, code, offset_tombstone};
use crate::coordinator::group::classic::ClassicGroupState;
use crate::coordinator::group::record::partition_for;
use crate::coordinator::group::record::{CoordinatorRecord, OffsetCommitValue, RecordKey};
use crate::coordinator::internal_topic::TxnProducer;

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

/// One partition of an OffsetFetch answer.
#[derive(Debug, Clone)]
pub struct FetchedOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The committed offset, if any.
    pub committed: Option<OffsetCommitValue>,
    /// A per-partition error (UNSTABLE_OFFSET_COMMIT).
    pub error: Option<ResponseError>,
}

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
        self.commit(group_id, committer, offsets, None)
    }

    /// TxnOffsetCommit: the offsets are written inside `producer`'s transaction and become
    /// committed when its COMMIT marker reaches this group's partition
    /// ([`GroupCoordinator::on_transaction_marker`]). The committer is checked against the
    /// group (KIP-447: a zombie from an older generation is fenced).
    ///
    /// # Errors
    /// Group-level errors.
    pub fn txn_commit_offsets(
        &self,
        group_id: &str,
        producer: TxnProducer,
        committer: &Committer,
        offsets: Vec<OffsetCommit>,
    ) -> Result<Vec<i16>, ResponseError> {
        self.commit(group_id, committer, offsets, Some(producer))
    }

    /// A transaction marker was written to `partition` of `__consumer_offsets`: the producer's
    /// pending offsets in that partition's groups are committed or dropped.
    pub fn on_transaction_marker(&self, partition: i32, producer_id: i64, commit: bool) {
        let partitions = self.topic.topic().map_or(1, |t| t.partitions);
        let mut groups = self.groups.lock();
        for (group_id, group) in groups.iter_mut() {
            if partition_for(group_id, partitions) == partition {
                group.offsets.complete_transaction(producer_id, commit);
            }
        }
    }

    fn commit(
        &self,
        group_id: &str,
        committer: &Committer,
        offsets: Vec<OffsetCommit>,
        producer: Option<TxnProducer>,
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
                Some(group) => validate_commit(group, committer, producer.is_some())?,
                None if committer.generation_or_epoch >= 0 => {
                    return Err(if committer.api_version >= 9 {
                        ResponseError::GroupIdNotFound
                    } else {
                        ResponseError::IllegalGeneration
                    });
                }
                None => {}
            }
            let write = self
                .topic
                .append(group_id, &records, producer)
                .map_err(|e| e.code)?;
            let group = groups
                .entry(group_id.to_owned())
                .or_insert_with(|| Group::classic(group_id, now_ms));
            for (topic, partition, value) in accepted {
                match producer {
                    Some(p) => group
                        .offsets
                        .put_pending(p.producer_id, &topic, partition, value),
                    None => group.offsets.put(&topic, partition, value),
                }
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

    /// OffsetFetch for one group: `topics` `None` means every committed offset. An unknown
    /// group answers "no offset" for every requested partition, as Kafka does. A
    /// consumer-protocol member (v9) is checked by its member id and epoch. With
    /// `require_stable`, a partition with a transactional commit not yet committed answers
    /// UNSTABLE_OFFSET_COMMIT (the client retries until the transaction ends).
    ///
    /// # Errors
    /// Group-level errors.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        member_epoch: i32,
        topics: Option<Vec<(String, Vec<i32>)>>,
        require_stable: bool,
    ) -> Result<Vec<FetchedOffset>, ResponseError> {
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
        let fetched = |topic: String, partition: i32| {
            let unstable =
                require_stable && group.is_some_and(|g| g.offsets.has_pending(&topic, partition));
            let committed = group
                .and_then(|g| g.offsets.get(&topic, partition))
                .cloned()
                .filter(|_| !unstable);
            FetchedOffset {
                topic,
                partition,
                committed,
                error: unstable.then_some(ResponseError::UnstableOffsetCommit),
            }
        };
        Ok(match topics {
            Some(topics) => topics
                .into_iter()
                .flat_map(|(topic, partitions)| {
                    partitions.into_iter().map(move |p| (topic.clone(), p))
                })
                .map(|(topic, partition)| fetched(topic, partition))
                .collect(),
            None => group.map_or_else(Vec::new, |g| {
                g.offsets
                    .iter()
                    .map(|(t, p, _)| fetched(t.to_owned(), p))
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
            let write = self
                .topic
                .append(group_id, &records, None)
                .map_err(|e| e.code)?;
            for (topic, partition) in deleted {
                let _ = group.offsets.remove(topic, partition);
            }
            (write, codes)
        };
        self.topic.make_durable(write).map_err(|e| e.code)?;
        Ok(codes)
    }
}

fn validate_commit(
    group: &Group,
    committer: &Committer,
    transactional: bool,
) -> Result<(), ResponseError> {
    // KIP-447: a TxnOffsetCommit without member id and generation (an old client) is not
    // checked against the group.
    if transactional
        && committer.member_id.is_empty()
        && committer.generation_or_epoch < 0
        && committer.group_instance_id.is_none()
    {
        return Ok(());
    }
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
            transactional,
            committer.api_version,
        ),
    }
}
