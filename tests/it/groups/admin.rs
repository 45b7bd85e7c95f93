//! The group admin APIs from Rust: FindCoordinator (batched), ListGroups with a state filter,
//! DescribeGroups, OffsetFetch of several groups, OffsetDelete and DeleteGroups. The Python
//! admin clients cover the same APIs in `clients_python`.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, DescribeGroupsRequest, ListGroupsRequest,
    OffsetDeleteRequest, OffsetDeleteResponse,
};
use kafka_protocol::protocol::Decodable;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use super::member::{ConsumedLog, Member};
use super::raw::{self, code};
use super::{blocking, check_no_errors, classic_config, partitions, wait_for_split};
use crate::support;
use crate::wire::Wire;

/// How: one batched FindCoordinator v4 for three groups answers each key with this broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn find_coordinator_answers_every_key_of_a_batch() {
    let broker = support::group_broker().await;
    let address = broker.local_addr();
    let bootstrap = broker.bootstrap_servers();
    blocking(move || {
        let mut wire = Wire::connect(&bootstrap);
        raw::require(
            &mut wire,
            &[(ApiKey::FindCoordinator, raw::FIND_COORDINATOR)],
        );
        let keys = ["g-one", "g-two", "g-three"];
        let response = raw::find_coordinators(&mut wire, &keys);
        let answered: Vec<&str> = response
            .coordinators
            .iter()
            .map(|c| c.key.as_str())
            .collect();
        assert_eq!(answered, keys, "one answer per key, in order");
        for coordinator in &response.coordinators {
            assert_eq!(coordinator.error_code, code::NONE, "{coordinator:?}");
            assert_eq!(coordinator.host.as_str(), address.ip().to_string());
            assert_eq!(coordinator.port, i32::from(address.port()));
            assert!(coordinator.node_id.0 >= 0);
        }
    })
    .await;
    broker.shutdown().await.unwrap();
}

fn offset_delete(
    wire: &mut Wire,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> OffsetDeleteResponse {
    let request = OffsetDeleteRequest::default()
        .with_group_id(raw::group_id(group))
        .with_topics(vec![
            OffsetDeleteRequestTopic::default()
                .with_name(raw::topic_name(topic))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|p| OffsetDeleteRequestPartition::default().with_partition_index(*p))
                        .collect(),
                ),
        ]);
    wire.call(raw::OFFSET_DELETE, &request)
}

fn listed(wire: &mut Wire, states: &[&str]) -> Vec<String> {
    let request = ListGroupsRequest::default()
        .with_states_filter(states.iter().map(|s| raw::text(s)).collect());
    let response = wire.call(raw::LIST_GROUPS, &request);
    assert_eq!(response.error_code, code::NONE);
    response
        .groups
        .iter()
        .map(|g| g.group_id.to_string())
        .collect()
}

/// How: group `active` has a live librdkafka member (Stable); group `empty` had a member that
/// committed and left (Empty); group `simple` only committed outside any generation. Listing,
/// describing, fetching offsets of several groups, deleting offsets and deleting groups each
/// answer per group as Kafka does: a live group's subscribed offsets and the group itself are
/// protected (GROUP_SUBSCRIBED_TO_TOPIC, NON_EMPTY_GROUP), the others go.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_describe_fetch_and_delete_groups_and_offsets() {
    let broker = support::group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("admin");
    support::create_topic(&bootstrap, &topic, 3, &[]).await;
    let active = support::topic_name("admin-active");
    let empty = support::topic_name("admin-empty");
    let simple = support::topic_name("admin-simple");

    let log = Arc::new(ConsumedLog::default());
    let member = Member::start(
        "active",
        &classic_config(&bootstrap, &active),
        &[&topic],
        &log,
    );
    wait_for_split(&[&member], &partitions(&topic, 3), Duration::from_secs(15)).await;
    {
        let (bootstrap, topic, empty, simple) = (
            bootstrap.clone(),
            topic.clone(),
            empty.clone(),
            simple.clone(),
        );
        blocking(move || {
            // A member of `empty` joins, commits, leaves.
            let consumer: BaseConsumer = classic_config(&bootstrap, &empty).create().unwrap();
            consumer.subscribe(&[&topic]).unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            while consumer.assignment().unwrap().count() == 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "member of {empty} never assigned"
                );
                let _ = consumer.poll(Duration::from_millis(50));
            }
            let mut wire = Wire::connect(&bootstrap);
            raw::require_classic(&mut wire);
            let mut list = rdkafka::TopicPartitionList::new();
            for partition in 0..3 {
                list.add_partition_offset(&topic, partition, rdkafka::Offset::Offset(4))
                    .unwrap();
            }
            consumer
                .commit(&list, rdkafka::consumer::CommitMode::Sync)
                .unwrap();
            drop(consumer);
            let errors = raw::commit(&mut wire, &simple, -1, "", &[(&topic, 0, 2)]);
            assert!(errors.values().all(|e| *e == code::NONE), "{errors:?}");
        })
        .await;
    }

    // ListGroups and DescribeGroups through librdkafka (it sends both).
    {
        let (bootstrap, active, empty) = (bootstrap.clone(), active.clone(), empty.clone());
        blocking(move || {
            let consumer = support::consumer(&bootstrap);
            let groups = consumer
                .fetch_group_list(None, Duration::from_secs(10))
                .unwrap();
            let find = |name: &str| {
                groups
                    .groups()
                    .iter()
                    .find(|g| g.name() == name)
                    .unwrap_or_else(|| panic!("{name} not listed"))
            };
            let a = find(&active);
            assert_eq!(
                (a.state(), a.protocol_type(), a.protocol()),
                ("Stable", "consumer", "range")
            );
            assert_eq!(a.members().len(), 1);
            let assignment = a.members()[0].assignment().expect("member assignment");
            let mut bytes = bytes::Bytes::copy_from_slice(assignment);
            let _version = bytes::Buf::get_i16(&mut bytes);
            let decoded = ConsumerProtocolAssignment::decode(&mut bytes, 0).unwrap();
            let assigned: usize = decoded
                .assigned_partitions
                .iter()
                .map(|t| t.partitions.len())
                .sum();
            assert_eq!(
                assigned, 3,
                "DescribeGroups returns the member's assignment"
            );
            let e = find(&empty);
            assert_eq!((e.state(), e.members().len()), ("Empty", 0));
        })
        .await;
    }

    let (address, t) = (bootstrap.clone(), topic.clone());
    let (a, e, s) = (active.clone(), empty.clone(), simple.clone());
    blocking(move || {
        let mut wire = Wire::connect(&address);
        raw::require(
            &mut wire,
            &[
                (ApiKey::ListGroups, raw::LIST_GROUPS),
                (ApiKey::DescribeGroups, raw::DESCRIBE_GROUPS),
                (ApiKey::OffsetDelete, raw::OFFSET_DELETE),
                (ApiKey::DeleteGroups, 2),
            ],
        );
        let stable = listed(&mut wire, &["Stable"]);
        assert!(
            stable.contains(&a) && !stable.contains(&e),
            "Stable filter: {stable:?}"
        );
        let empties = listed(&mut wire, &["Empty"]);
        assert!(
            empties.contains(&e) && !empties.contains(&a),
            "Empty filter: {empties:?}"
        );
        let all = listed(&mut wire, &[]);
        assert!(
            [&a, &e, &s].iter().all(|g| all.contains(g)),
            "no filter: {all:?}"
        );

        let described = wire.call(
            raw::DESCRIBE_GROUPS,
            &DescribeGroupsRequest::default()
                .with_groups(vec![raw::group_id(&a), raw::group_id("never-existed")]),
        );
        assert_eq!(described.groups.len(), 2);
        let (live, unknown) = (&described.groups[0], &described.groups[1]);
        assert_eq!(
            (live.error_code, live.group_state.as_str()),
            (code::NONE, "Stable")
        );
        assert_eq!(live.protocol_data.as_str(), "range");
        assert_eq!(live.members.len(), 1);
        // Before v6 an unknown group is described as Dead with no error (v6 adds
        // GROUP_ID_NOT_FOUND).
        assert_eq!(
            (unknown.error_code, unknown.group_state.as_str()),
            (code::NONE, "Dead"),
            "{unknown:?}"
        );
        assert!(unknown.members.is_empty());

        // OffsetFetch v8: three groups in one request.
        let fetched = raw::fetch_offsets(
            &mut wire,
            &[
                (&e, Some((&t, &[0, 1, 2]))),
                (&s, None),
                (&a, Some((&t, &[0]))),
            ],
        );
        let of_empty = raw::committed_of(&fetched, &e);
        assert!(
            (0..3).all(|p| of_empty[&(t.clone(), p)] == 4),
            "{of_empty:?}"
        );
        assert_eq!(
            raw::committed_of(&fetched, &s),
            [((t.clone(), 0), 2)].into_iter().collect()
        );
        assert_eq!(
            raw::committed_of(&fetched, &a)[&(t.clone(), 0)],
            -1,
            "never committed"
        );

        // OffsetDelete: refused per partition while a member is subscribed to the topic.
        let refused = offset_delete(&mut wire, &a, &t, &[0]);
        assert_eq!(refused.error_code, code::NONE, "{refused:?}");
        assert_eq!(
            refused.topics[0].partitions[0].error_code,
            code::GROUP_SUBSCRIBED_TO_TOPIC
        );
        let deleted = offset_delete(&mut wire, &e, &t, &[0]);
        assert_eq!(deleted.error_code, code::NONE, "{deleted:?}");
        assert_eq!(deleted.topics[0].partitions[0].error_code, code::NONE);
        let after = raw::fetch_offsets(&mut wire, &[(&e, Some((&t, &[0, 1])))]);
        let after = raw::committed_of(&after, &e);
        assert_eq!(
            (after[&(t.clone(), 0)], after[&(t.clone(), 1)]),
            (-1, 4),
            "only partition 0 deleted"
        );
        let missing = offset_delete(&mut wire, "never-existed", &t, &[0]);
        assert_eq!(missing.error_code, code::GROUP_ID_NOT_FOUND, "{missing:?}");
    })
    .await;

    // DeleteGroups through librdkafka's admin client.
    let results = support::admin(&bootstrap)
        .delete_groups(
            &[&empty, &active, &simple, "never-existed"],
            &support::admin_options(),
        )
        .await
        .unwrap();
    // librdkafka sends one request per coordinator and may reorder the answers.
    let results: std::collections::BTreeMap<String, Option<RDKafkaErrorCode>> = results
        .into_iter()
        .map(|r| match r {
            Ok(group) => (group, None),
            Err((group, error)) => (group, Some(error)),
        })
        .collect();
    assert_eq!(results[&empty], None, "an empty group is deleted");
    assert_eq!(
        results[&simple], None,
        "a group of simple commits is deleted"
    );
    assert_eq!(results[&active], Some(RDKafkaErrorCode::NonEmptyGroup));
    assert_eq!(
        results["never-existed"],
        Some(RDKafkaErrorCode::GroupIdNotFound)
    );
    let (address, t) = (bootstrap.clone(), topic.clone());
    let (a, e) = (active.clone(), empty.clone());
    blocking(move || {
        let mut wire = Wire::connect(&address);
        let all = listed(&mut wire, &[]);
        assert!(
            all.contains(&a) && !all.contains(&e),
            "after delete: {all:?}"
        );
        let fetched = raw::fetch_offsets(&mut wire, &[(&e, Some((&t, &[1])))]);
        assert_eq!(
            raw::committed_of(&fetched, &e)[&(t.clone(), 1)],
            -1,
            "offsets went with the group"
        );
    })
    .await;

    // The live group was untouched by all of this.
    assert_eq!(member.state.assignment(), partitions(&topic, 3));
    let member = member.stop().await;
    check_no_errors(&[&member]);
    broker.shutdown().await.unwrap();
}
