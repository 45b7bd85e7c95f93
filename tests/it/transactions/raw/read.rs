//! Reading back: ListOffsets, Fetch, the batches of a partition as a fetcher is given them,
//! and what a read_committed consumer hands its application.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, ListOffsetsRequest};
use kairos_storage::batch::Batches;
use kairos_storage::control::{ControlRecordType, parse_marker};
use kairos_storage::record::RecordBytes;

use super::{FETCH, LIST_OFFSETS, READ_COMMITTED, READ_UNCOMMITTED, code, topic_name};
use crate::wire::Wire;

/// ListOffsets for one partition: `(error, offset)` of `timestamp` (-1 latest, -2 earliest)
/// under `isolation`.
pub(crate) fn list_offset(
    wire: &mut Wire,
    (topic, partition): (&str, i32),
    timestamp: i64,
    isolation: i8,
) -> (i16, i64) {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation)
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(partition)
                        .with_timestamp(timestamp),
                ]),
        ]);
    let response = wire.call(LIST_OFFSETS, &request);
    let answer = &response.topics[0].partitions[0];
    (answer.error_code, answer.offset)
}

/// Latest offset under `isolation`: the high watermark, or the LSO for read_committed.
pub(crate) fn latest(wire: &mut Wire, target: (&str, i32), isolation: i8) -> i64 {
    let (error, offset) = list_offset(wire, target, -1, isolation);
    assert_eq!(
        error,
        code::NONE,
        "ListOffsets {target:?} isolation {isolation}"
    );
    offset
}

/// One Fetch answer for one partition.
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    pub(crate) error: i16,
    pub(crate) high_watermark: i64,
    pub(crate) last_stable_offset: i64,
    pub(crate) aborted: Vec<(i64, i64)>,
    pub(crate) records: Bytes,
}

/// Fetch v12 of one partition from `offset` under `isolation`, without waiting.
pub(crate) fn fetch(
    wire: &mut Wire,
    (topic, partition): (&str, i32),
    offset: i64,
    isolation: i8,
) -> Fetched {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_isolation_level(isolation)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let response = wire.call(FETCH, &request);
    let answer = &response.responses[0].partitions[0];
    Fetched {
        error: answer.error_code,
        high_watermark: answer.high_watermark,
        last_stable_offset: answer.last_stable_offset,
        aborted: answer
            .aborted_transactions
            .iter()
            .flatten()
            .map(|a| (a.producer_id.0, a.first_offset))
            .collect(),
        records: answer.records.clone().unwrap_or_default(),
    }
}

/// A batch as read back: where it is, who wrote it, and its records (or its marker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogBatch {
    pub(crate) base_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) transactional: bool,
    /// The marker of a control batch.
    pub(crate) marker: Option<ControlRecordType>,
    /// `(offset, value)` of each record of a data batch.
    pub(crate) records: Vec<(i64, String)>,
}

/// Decodes concatenated batches (a Fetch answer's `records`).
pub(crate) fn decode(bytes: &[u8]) -> Vec<LogBatch> {
    let mut out = Vec::new();
    for framed in Batches::new(bytes) {
        let Ok((_, batch)) = framed else { break };
        batch.verify_crc().expect("fetched batch has a valid CRC");
        let marker = if batch.is_control() {
            Some(
                parse_marker(&batch)
                    .expect("a control batch holds a marker")
                    .kind,
            )
        } else {
            None
        };
        let mut records = Vec::new();
        if marker.is_none() {
            let decoded = RecordBytes::of(&batch).expect("records decode");
            for record in decoded.records() {
                let record = record.expect("record decodes");
                records.push((
                    batch.base_offset() + i64::from(record.offset_delta),
                    String::from_utf8_lossy(record.value.unwrap_or_default()).into_owned(),
                ));
            }
        }
        out.push(LogBatch {
            base_offset: batch.base_offset(),
            last_offset: batch.last_offset(),
            producer_id: batch.producer_id(),
            producer_epoch: batch.producer_epoch(),
            transactional: batch.is_transactional(),
            marker,
            records,
        });
    }
    out
}

/// Everything a fetcher under `isolation` is given, from offset 0 to the end it is told
/// (the high watermark, or the LSO for read_committed): the batches and the aborted
/// transactions listed along the way.
pub(crate) fn read_log(
    wire: &mut Wire,
    target: (&str, i32),
    isolation: i8,
) -> (Vec<LogBatch>, Vec<(i64, i64)>) {
    let (mut batches, mut aborted) = (Vec::<LogBatch>::new(), Vec::new());
    let mut offset = 0;
    loop {
        let fetched = fetch(wire, target, offset, isolation);
        assert_eq!(fetched.error, code::NONE, "fetch {target:?} at {offset}");
        let end = if isolation == READ_COMMITTED {
            fetched.last_stable_offset
        } else {
            fetched.high_watermark
        };
        for entry in fetched.aborted {
            if !aborted.contains(&entry) {
                aborted.push(entry);
            }
        }
        let new = decode(&fetched.records);
        if new.is_empty() {
            assert!(
                offset >= end,
                "{target:?}: nothing returned at {offset} < end {end}"
            );
            return (batches, aborted);
        }
        for batch in new {
            if batch.last_offset >= offset {
                offset = batch.last_offset + 1;
                batches.push(batch);
            }
        }
        if offset >= end {
            return (batches, aborted);
        }
    }
}

/// What a read_committed consumer hands its application, as Kafka's consumers compute it: data
/// batches in offset order, minus control batches, minus the batches of a producer between an
/// aborted transaction's first offset (from `aborted`) and that producer's ABORT marker.
pub(crate) fn committed_view(batches: &[LogBatch], aborted: &[(i64, i64)]) -> Vec<(i64, String)> {
    let mut pending: Vec<(i64, i64)> = aborted.to_vec();
    pending.sort_by_key(|(_, first)| *first);
    let mut aborting: Vec<i64> = Vec::new();
    let mut view = Vec::new();
    for batch in batches {
        // Transactions whose first offset is reached start being skipped.
        while let Some(&(pid, first)) = pending.first() {
            if first > batch.last_offset {
                break;
            }
            aborting.push(pid);
            let _ = pending.remove(0);
        }
        match batch.marker {
            Some(ControlRecordType::Abort) => aborting.retain(|p| *p != batch.producer_id),
            Some(ControlRecordType::Commit) => {}
            None if batch.transactional && aborting.contains(&batch.producer_id) => {}
            None => view.extend(batch.records.iter().cloned()),
        }
    }
    view
}

/// The read_committed view of a partition, read from the broker.
pub(crate) fn read_committed(wire: &mut Wire, target: (&str, i32)) -> Vec<(i64, String)> {
    let (batches, aborted) = read_log(wire, target, READ_COMMITTED);
    committed_view(&batches, &aborted)
}

/// Polls `condition` every 20 ms until it holds; panics with `what()` after `timeout`.
pub(crate) fn poll_until(
    timeout: Duration,
    what: impl Fn() -> String,
    mut condition: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {}",
            what()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until every transaction on `target` has its marker: the LSO reached the high
/// watermark. Returns that offset.
pub(crate) fn wait_stable(wire: &mut Wire, target: (&str, i32), timeout: Duration) -> i64 {
    let deadline = Instant::now() + timeout;
    loop {
        let stable = latest(wire, target, READ_COMMITTED);
        let high = latest(wire, target, READ_UNCOMMITTED);
        if stable == high {
            return high;
        }
        assert!(
            Instant::now() < deadline,
            "{target:?}: LSO {stable} never reached the high watermark {high} within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
