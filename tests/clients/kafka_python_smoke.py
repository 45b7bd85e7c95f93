"""kafka-python against Kairos: admin, produce, fetch.

Usage: python kafka_python_smoke.py HOST:PORT
Exits 0 and prints OK on success; any failure raises.
"""

import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic

bootstrap = sys.argv[1]
topic = "python-smoke-%d" % int(time.time() * 1000)

admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kairos-python-smoke")
# kafka-python guesses the broker release from ApiVersions; the advertised table is meant to be
# coherent with Apache Kafka 4.0 (a private method, pinned by requirements.txt).
assert admin._client.check_version() == (4, 0), admin._client.check_version()
admin.create_topics(
    [NewTopic(name=topic, num_partitions=2, replication_factor=1,
              topic_configs={"retention.ms": "3600000"})]
)
assert topic in admin.list_topics(), "created topic is listed"

described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
text = repr(described)
assert "retention.ms" in text and "3600000" in text, text

admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "7200000"})])
text = repr(admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)]))
assert "7200000" in text, text

admin.create_partitions({topic: NewPartitions(total_count=3)})

producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
futures = []
for i in range(300):
    futures.append(producer.send(
        topic, key=b"key-%d" % i, value=b"value-%d" % i, partition=i % 3,
        headers=[("seq", str(i).encode())]))
producer.flush()
offsets = [f.get(timeout=10) for f in futures]
assert all(m.topic == topic for m in offsets)
producer.close()

consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                         auto_offset_reset="earliest", consumer_timeout_ms=10000)
partitions = [TopicPartition(topic, p) for p in range(3)]
consumer.assign(partitions)
consumer.seek_to_beginning()
seen = {}
for message in consumer:
    seen.setdefault(message.partition, []).append(message)
    if sum(len(v) for v in seen.values()) == 300:
        break
assert sum(len(v) for v in seen.values()) == 300, {p: len(v) for p, v in seen.items()}
for partition, messages in seen.items():
    for index, message in enumerate(messages):
        i = index * 3 + partition
        assert message.offset == index, (partition, index, message.offset)
        assert message.key == b"key-%d" % i and message.value == b"value-%d" % i, message
        assert message.headers == [("seq", str(i).encode())], message.headers
end = consumer.end_offsets(partitions)
assert end == {tp: 100 for tp in partitions}, end
consumer.close()

admin.delete_topics([topic])
assert topic not in admin.list_topics(), "deleted topic is gone"
admin.close()
print("OK")
