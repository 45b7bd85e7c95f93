"""confluent-kafka's group admin API against Kairos: list (state and type filters), describe
(classic and KIP-848 groups), list and alter committed offsets, delete groups.

Usage: python confluent_groups.py HOST:PORT
Exits 0 and prints OK on success; any failure raises.
"""

import sys
import time

from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    ConsumerGroupType,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap = sys.argv[1]
suffix = "%d" % int(time.time() * 1000)
topic = "cf-groups-" + suffix
classic_group = "cf-classic-" + suffix
kip848_group = "cf-kip848-" + suffix
empty_group = "cf-empty-" + suffix

admin = AdminClient({"bootstrap.servers": bootstrap, "broker.address.family": "v4"})
admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(10)


def member(group, kip848):
    """A subscribed consumer that holds all three partitions (polled until it does)."""
    config = {
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    if kip848:
        config["group.protocol"] = "consumer"
    else:
        config.update({"session.timeout.ms": 6000, "heartbeat.interval.ms": 200})
    consumer = Consumer(config)
    consumer.subscribe([topic])
    deadline = time.time() + 15
    while len(consumer.assignment()) < 3:
        assert time.time() < deadline, "%s never got its partitions" % group
        consumer.poll(0.05)
    return consumer


classic = member(classic_group, kip848=False)
kip848 = member(kip848_group, kip848=True)

# An Empty classic group with committed offsets: a member commits, then leaves.
leaver = member(empty_group, kip848=False)
leaver.commit(offsets=[TopicPartition(topic, p, 3 + p) for p in range(3)], asynchronous=False)
leaver.close()


def listed(**filters):
    result = admin.list_consumer_groups(request_timeout=10, **filters).result()
    assert not result.errors, result.errors
    return {g.group_id: g for g in result.valid}


everything = listed()
assert {classic_group, kip848_group, empty_group} <= set(everything), everything
assert everything[classic_group].state == ConsumerGroupState.STABLE, everything[classic_group]
assert everything[empty_group].state == ConsumerGroupState.EMPTY, everything[empty_group]
stable = listed(states={ConsumerGroupState.STABLE})
assert classic_group in stable and empty_group not in stable, stable
empty = listed(states={ConsumerGroupState.EMPTY})
assert empty_group in empty and classic_group not in empty, empty
consumer_type = listed(types={ConsumerGroupType.CONSUMER})
assert kip848_group in consumer_type and classic_group not in consumer_type, consumer_type
classic_type = listed(types={ConsumerGroupType.CLASSIC})
assert classic_group in classic_type and kip848_group not in classic_type, classic_type

futures = admin.describe_consumer_groups([classic_group, kip848_group, empty_group], request_timeout=10)
described = {group: future.result() for group, future in futures.items()}
for group, kind in ((classic_group, ConsumerGroupType.CLASSIC), (kip848_group, ConsumerGroupType.CONSUMER)):
    d = described[group]
    assert d.state == ConsumerGroupState.STABLE, d
    assert d.type == kind, (group, d.type)
    assert not d.is_simple_consumer_group, d
    assert len(d.members) == 1, d.members
    partitions = sorted((tp.topic, tp.partition) for tp in d.members[0].assignment.topic_partitions)
    assert partitions == [(topic, 0), (topic, 1), (topic, 2)], (group, partitions)
assert described[classic_group].partition_assignor == "range", described[classic_group]
assert described[empty_group].state == ConsumerGroupState.EMPTY, described[empty_group]
assert described[empty_group].members == [], described[empty_group]


def committed(group):
    request = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(3)])]
    result = admin.list_consumer_group_offsets(request, request_timeout=10)[group].result()
    return {tp.partition: tp.offset for tp in result.topic_partitions}


assert committed(empty_group) == {0: 3, 1: 4, 2: 5}, committed(empty_group)
altered = admin.alter_consumer_group_offsets(
    [ConsumerGroupTopicPartitions(empty_group, [TopicPartition(topic, 0, 1)])], request_timeout=10)
altered[empty_group].result()
assert committed(empty_group) == {0: 1, 1: 4, 2: 5}, committed(empty_group)

deleted = admin.delete_consumer_groups([empty_group, classic_group], request_timeout=10)
deleted[empty_group].result()
try:
    deleted[classic_group].result()
    raise AssertionError("a group with a live member was deleted")
except KafkaException as e:
    assert e.args[0].code() == KafkaError.NON_EMPTY_GROUP, e
remaining = listed()
assert empty_group not in remaining and classic_group in remaining, remaining

classic.close()
kip848.close()
print("OK")
