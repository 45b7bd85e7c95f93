"""kafka-python's group admin API against Kairos, for what confluent-kafka lacks: OffsetDelete
(delete_group_offsets). Also its own list, describe and multi-group offset fetch.

Usage: python kafka_python_groups.py HOST:PORT
Exits 0 and prints OK on success; any failure raises.
"""

import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import GroupIdNotFoundError, GroupSubscribedToTopicError, NoError
from kafka.structs import OffsetAndMetadata

bootstrap = sys.argv[1]
suffix = "%d" % int(time.time() * 1000)
topic, other = "kp-groups-" + suffix, "kp-other-" + suffix
idle_group, live_group = "kp-idle-" + suffix, "kp-live-" + suffix

admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kairos-python-groups")
admin.create_topics([NewTopic(name=t, num_partitions=2, replication_factor=1) for t in (topic, other)])

# A group without members: offsets committed outside any generation.
alter = admin.alter_group_offsets(idle_group, {
    TopicPartition(topic, 0): OffsetAndMetadata(7, "a", -1),
    TopicPartition(topic, 1): OffsetAndMetadata(8, "b", -1),
    TopicPartition(other, 0): OffsetAndMetadata(9, "c", -1),
})
assert all(error is NoError for error in alter.values()), alter

# A group with a live member subscribed to `topic`, which has committed offsets.
consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=live_group,
                         enable_auto_commit=False, auto_offset_reset="earliest",
                         session_timeout_ms=6000, heartbeat_interval_ms=200)
deadline = time.time() + 15
while len(consumer.assignment()) < 2:
    assert time.time() < deadline, "the live member never got its partitions"
    consumer.poll(timeout_ms=50)
consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(1, "", -1)})

# Dicts with the ListGroups / DescribeGroups response fields (kafka-python 3).
listed = {group["group_id"]: group for group in admin.list_groups()}
assert {idle_group, live_group} <= set(listed), listed
stable = {group["group_id"] for group in admin.list_groups(states_filter=["Stable"])}
assert live_group in stable and idle_group not in stable, stable
described = admin.describe_groups([live_group])[live_group]
assert described["group_state"] == "Stable" and len(described["members"]) == 1, described

fetched = admin.list_group_offsets({idle_group: None, live_group: None})
assert {tp: om.offset for tp, om in fetched[idle_group].items()} == {
    TopicPartition(topic, 0): 7, TopicPartition(topic, 1): 8, TopicPartition(other, 0): 9,
}, fetched
assert fetched[live_group][TopicPartition(topic, 0)].offset == 1, fetched

# OffsetDelete on the idle group removes only the named partitions.
result = admin.delete_group_offsets(idle_group, [TopicPartition(topic, 0), TopicPartition(topic, 1)])
assert all(error is NoError for error in result.values()), result
left = admin.list_group_offsets({idle_group: None})[idle_group]
assert {tp: om.offset for tp, om in left.items()} == {TopicPartition(other, 0): 9}, left

# A live member's subscribed topic is protected, per partition.
result = admin.delete_group_offsets(live_group, [TopicPartition(topic, 0)])
assert result == {TopicPartition(topic, 0): GroupSubscribedToTopicError}, result

try:
    admin.delete_group_offsets("kp-never-" + suffix, [TopicPartition(topic, 0)])
    raise AssertionError("OffsetDelete on an unknown group succeeded")
except GroupIdNotFoundError:
    pass

consumer.close()
admin.close()
print("OK")
