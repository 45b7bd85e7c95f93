//! Offsets committed inside transactions, on a raw socket: AddOffsetsToTxn, TxnOffsetCommit,
//! OffsetFetch `require_stable` while they are pending, their fate at commit and abort, and
//! KIP-447's fencing of a stale group member.

use std::time::Duration;

use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, ApiKey, GroupId, OffsetFetchRequest, ProducerId, TxnOffsetCommitRequest,
};

use super::raw::{self, code, text, topic_name, txn_id};
use super::txn_broker;
use crate::groups::blocking;
use crate::groups::raw as group_raw;
use crate::wire::Wire;

const ADD_OFFSETS_TO_TXN: i16 = 3;
const TXN_OFFSET_COMMIT: i16 = 3;
const OFFSET_FETCH: i16 = 8;
const UNSTABLE_OFFSET_COMMIT: i16 = 88;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;

fn group_id(name: &str) -> GroupId {
    GroupId(text(name))
}

fn add_offsets(wire: &mut Wire, id: &str, (pid, epoch): (i64, i16), group: &str) -> i16 {
    let request = AddOffsetsToTxnRequest::default()
        .with_transactional_id(txn_id(id))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_group_id(group_id(group));
    wire.call(ADD_OFFSETS_TO_TXN, &request).error_code
}

/// Who commits: the group member's id and generation (`""` and -1 outside any generation).
struct Member<'a> {
    id: &'a str,
    generation: i32,
}

const NO_MEMBER: Member<'static> = Member {
    id: "",
    generation: -1,
};

/// TxnOffsetCommit v3 of `offset` for `topic`-0: the partition's error.
fn txn_commit(
    wire: &mut Wire,
    id: &str,
    (pid, epoch): (i64, i16),
    group: &str,
    member: &Member<'_>,
    (topic, offset): (&str, i64),
) -> i16 {
    let request = TxnOffsetCommitRequest::default()
        .with_transactional_id(txn_id(id))
        .with_group_id(group_id(group))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_generation_id(member.generation)
        .with_member_id(text(member.id))
        .with_topics(vec![
            TxnOffsetCommitRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![
                    TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(-1),
                ]),
        ]);
    let response = wire.call(TXN_OFFSET_COMMIT, &request);
    response.topics[0].partitions[0].error_code
}

/// OffsetFetch v8 of `topic`-0 for `group`: `(partition error, committed offset)`.
fn fetch_offset(wire: &mut Wire, group: &str, topic: &str, require_stable: bool) -> (i16, i64) {
    let request = OffsetFetchRequest::default()
        .with_require_stable(require_stable)
        .with_groups(vec![
            OffsetFetchRequestGroup::default()
                .with_group_id(group_id(group))
                .with_topics(Some(vec![
                    OffsetFetchRequestTopics::default()
                        .with_name(topic_name(topic))
                        .with_partition_indexes(vec![0]),
                ])),
        ]);
    let response = wire.call(OFFSET_FETCH, &request);
    let found = &response.groups[0];
    assert_eq!(found.error_code, code::NONE, "{found:?}");
    let partition = &found.topics[0].partitions[0];
    (partition.error_code, partition.committed_offset)
}

/// Waits until `require_stable` OffsetFetch answers without UNSTABLE_OFFSET_COMMIT.
fn stable_offset(wire: &mut Wire, group: &str, topic: &str) -> i64 {
    let mut answer = fetch_offset(wire, group, topic, true);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while answer.0 == UNSTABLE_OFFSET_COMMIT && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        answer = fetch_offset(wire, group, topic, true);
    }
    assert_eq!(answer.0, code::NONE, "{group}: still unstable");
    answer.1
}

/// How: a group without members (offsets only, generation -1). A TxnOffsetCommit before
/// AddOffsetsToTxn is refused (the offsets partition is not part of the transaction: KIP-890's
/// verification, INVALID_TXN_STATE at v3). After AddOffsetsToTxn the commit of offset 10 is
/// accepted but pending: OffsetFetch with `require_stable` answers UNSTABLE_OFFSET_COMMIT and
/// without it the previous offset (none, -1). At EndTxn COMMIT it becomes the group's offset. A
/// second transaction commits 20 and aborts: the offset stays 10.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transactional_offsets_are_pending_until_the_transaction_ends() {
    let broker = txn_broker().await;
    let address = broker.bootstrap_servers();
    blocking(move || {
        let mut wire = Wire::connect(&address);
        raw::require(
            &mut wire,
            &[
                (ApiKey::AddOffsetsToTxn, ADD_OFFSETS_TO_TXN),
                (ApiKey::TxnOffsetCommit, TXN_OFFSET_COMMIT),
            ],
        );
        let (topic, group, id) = ("offsets-in", "txn-offsets-group", "txn-offsets");
        raw::create_topic(&mut wire, topic, 1);
        let producer = raw::init(&mut wire, id);
        assert_eq!(
            txn_commit(&mut wire, id, producer, group, &NO_MEMBER, (topic, 5)),
            code::INVALID_TXN_STATE,
            "TxnOffsetCommit without AddOffsetsToTxn"
        );
        assert_eq!(add_offsets(&mut wire, id, producer, group), code::NONE);
        assert_eq!(
            txn_commit(&mut wire, id, producer, group, &NO_MEMBER, (topic, 10)),
            code::NONE
        );
        assert_eq!(
            fetch_offset(&mut wire, group, topic, true).0,
            UNSTABLE_OFFSET_COMMIT
        );
        assert_eq!(
            fetch_offset(&mut wire, group, topic, false),
            (code::NONE, -1),
            "a pending offset is not the group's offset"
        );
        assert_eq!(raw::end_txn(&mut wire, id, producer, true), code::NONE);
        assert_eq!(stable_offset(&mut wire, group, topic), 10);

        assert_eq!(add_offsets(&mut wire, id, producer, group), code::NONE);
        assert_eq!(
            txn_commit(&mut wire, id, producer, group, &NO_MEMBER, (topic, 20)),
            code::NONE
        );
        assert_eq!(raw::end_txn(&mut wire, id, producer, false), code::NONE);
        assert_eq!(stable_offset(&mut wire, group, topic), 10, "aborted");
    })
    .await;
    broker.shutdown().await.unwrap();
}

/// How: a classic member joins the group on its own (generation `g`). Inside a transaction,
/// TxnOffsetCommit as that member at generation `g + 1` is ILLEGAL_GENERATION and as an unknown
/// member UNKNOWN_MEMBER_ID (KIP-447: a zombie that lost its partitions in a rebalance cannot
/// commit for them); at `g` it is accepted and, after the commit, is the group's offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn txn_offset_commit_is_fenced_by_group_generation() {
    let broker = txn_broker().await;
    let address = broker.bootstrap_servers();
    blocking(move || {
        let mut wire = Wire::connect(&address);
        let (topic, group, id) = ("kip447-in", "kip447-group", "kip447");
        raw::create_topic(&mut wire, topic, 1);
        let member = group_raw::member(&mut wire, group, topic, &[0]);
        let producer = raw::init(&mut wire, id);
        assert_eq!(add_offsets(&mut wire, id, producer, group), code::NONE);
        let as_member = |generation| Member {
            id: &member.member_id,
            generation,
        };
        assert_eq!(
            txn_commit(
                &mut wire,
                id,
                producer,
                group,
                &as_member(member.generation + 1),
                (topic, 3)
            ),
            ILLEGAL_GENERATION
        );
        let stranger = Member {
            id: "not-a-member",
            generation: member.generation,
        };
        assert_eq!(
            txn_commit(&mut wire, id, producer, group, &stranger, (topic, 3)),
            UNKNOWN_MEMBER_ID
        );
        assert_eq!(
            txn_commit(
                &mut wire,
                id,
                producer,
                group,
                &as_member(member.generation),
                (topic, 7)
            ),
            code::NONE
        );
        assert_eq!(raw::end_txn(&mut wire, id, producer, true), code::NONE);
        assert_eq!(stable_offset(&mut wire, group, topic), 7);
    })
    .await;
    broker.shutdown().await.unwrap();
}
