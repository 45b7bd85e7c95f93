//! Shared helpers: start a broker (embedded or the real binary), build rdkafka clients, and the
//! `check_*` helpers tests are written against.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kairos::{Broker, BrokerHandle};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};

/// A test broker: in-process, or the `kairos` binary as a child process.
pub(crate) enum TestBroker {
    Embedded(BrokerHandle),
    Binary(BinaryBroker),
}

impl TestBroker {
    pub(crate) fn bootstrap(&self) -> String {
        match self {
            TestBroker::Embedded(handle) => handle.bootstrap_servers(),
            TestBroker::Binary(binary) => binary.bootstrap.clone(),
        }
    }

    pub(crate) async fn stop(self) {
        match self {
            TestBroker::Embedded(handle) => handle.shutdown().await.unwrap(),
            TestBroker::Binary(mut binary) => binary.terminate(),
        }
    }
}

/// An embedded broker on an ephemeral port with a temporary data dir and fast test settings.
pub(crate) async fn embedded() -> BrokerHandle {
    Broker::builder()
        .temp_dir()
        .listener("127.0.0.1:0")
        .start()
        .await
        .expect("embedded broker starts")
}

/// An embedded broker over an existing data dir.
pub(crate) async fn embedded_in(dir: &Path) -> BrokerHandle {
    Broker::builder()
        .data_dir(dir)
        .listener("127.0.0.1:0")
        .start()
        .await
        .expect("embedded broker starts")
}

/// Broker configs that shrink the group coordinator's timers (tests must not wait for Kafka's
/// defaults): an empty group's first rebalance waits 100 ms, not 3 s; classic sessions down to
/// 500 ms are accepted (clients use 6 s); KIP-848 members heartbeat every 300 ms and expire after
/// 6 s, not 5 s and 45 s. Three offsets partitions, so groups share them.
pub(crate) const GROUP_CONFIGS: &[(&str, &str)] = &[
    ("group.initial.rebalance.delay.ms", "100"),
    ("group.min.session.timeout.ms", "500"),
    ("group.max.session.timeout.ms", "60000"),
    ("group.consumer.heartbeat.interval.ms", "300"),
    ("group.consumer.session.timeout.ms", "6000"),
    ("offsets.topic.num.partitions", "3"),
];

/// A builder with `GROUP_CONFIGS` on an ephemeral port; add a data dir (or `temp_dir`).
pub(crate) fn group_broker_builder() -> kairos::BrokerBuilder {
    GROUP_CONFIGS.iter().fold(
        Broker::builder().listener("127.0.0.1:0"),
        |builder, (name, value)| builder.config(name, value),
    )
}

/// An embedded broker with `GROUP_CONFIGS` and a temporary data dir.
pub(crate) async fn group_broker() -> BrokerHandle {
    group_broker_builder()
        .temp_dir()
        .start()
        .await
        .expect("embedded broker starts")
}

/// An embedded broker with `GROUP_CONFIGS` over an existing data dir.
pub(crate) async fn group_broker_in(dir: &Path) -> BrokerHandle {
    group_broker_builder()
        .data_dir(dir)
        .start()
        .await
        .expect("embedded broker starts")
}

/// `GROUP_CONFIGS` as `kairos` binary flags (`-o name=value`).
pub(crate) fn group_binary_args() -> Vec<String> {
    GROUP_CONFIGS
        .iter()
        .flat_map(|(name, value)| ["-o".to_owned(), format!("{name}={value}")])
        .collect()
}

/// Both kinds, for tests that must pass against each.
pub(crate) async fn each_broker(dir: &Path) -> Vec<(&'static str, TestBroker)> {
    vec![
        ("embedded", TestBroker::Embedded(embedded().await)),
        ("binary", TestBroker::Binary(BinaryBroker::start(dir, &[]))),
    ]
}

/// The `kairos` binary running as a child process.
pub(crate) struct BinaryBroker {
    pub(crate) child: Child,
    pub(crate) bootstrap: String,
}

impl BinaryBroker {
    /// Starts the binary on an ephemeral port and waits for its "listening on" line.
    pub(crate) fn start(data_dir: &Path, extra: &[&str]) -> BinaryBroker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kairos"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listener", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("kairos binary spawns");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("kairos prints its address");
        let bootstrap = line
            .trim()
            .strip_prefix("kairos listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        BinaryBroker { child, bootstrap }
    }

    /// SIGTERM and wait: a clean shutdown.
    pub(crate) fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "kairos exited with {exit}");
    }

    /// SIGKILL: a crash.
    pub(crate) fn kill9(&mut self) {
        self.child.kill().unwrap();
        let _ = self.child.wait();
    }
}

impl Drop for BinaryBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "10000")
        .set("topic.metadata.refresh.interval.ms", "1000");
    config
}

pub(crate) fn producer(bootstrap: &str, acks: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut config = client_config(bootstrap);
    config
        .set("acks", acks)
        .set("message.timeout.ms", "20000")
        .set("linger.ms", "5");
    if acks != "all" {
        config.set("enable.idempotence", "false");
    }
    for (key, value) in extra {
        config.set(*key, *value);
    }
    config.create().expect("producer")
}

pub(crate) fn consumer(bootstrap: &str) -> BaseConsumer {
    consumer_with(bootstrap, &[])
}

/// [`consumer`] with `extra` settings on top.
pub(crate) fn consumer_with(bootstrap: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut config = client_config(bootstrap);
    config
        .set("group.id", "kairos-tests")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .set("enable.partition.eof", "false")
        // Verify every fetched batch's CRC: stored bytes must be exactly what was validated.
        .set("check.crcs", "true");
    for (key, value) in extra {
        config.set(*key, *value);
    }
    config.create().expect("consumer")
}

pub(crate) fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    client_config(bootstrap).create().expect("admin client")
}

pub(crate) fn admin_options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))
}

/// Creates a topic and asserts success.
pub(crate) async fn create_topic(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (key, value) in configs {
        topic = topic.set(key, value);
    }
    let results = admin(bootstrap)
        .create_topics([&topic], &admin_options())
        .await
        .expect("create_topics request");
    for result in results {
        result.unwrap_or_else(|(topic, code)| panic!("creating {topic}: {code:?}"));
    }
}

/// Assigns `partitions` of `topic` to `consumer`, from `offset`.
pub(crate) fn assign(consumer: &BaseConsumer, topic: &str, partitions: i32, offset: Offset) {
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition_offset(topic, partition, offset).unwrap();
    }
    consumer.assign(&list).unwrap();
}

/// Polls until `count` messages arrived or `timeout` passed; returns them as owned values.
pub(crate) fn consume(
    consumer: &BaseConsumer,
    count: usize,
    timeout: Duration,
) -> Vec<rdkafka::message::OwnedMessage> {
    use rdkafka::Message;
    let deadline = std::time::Instant::now() + timeout;
    let mut messages = Vec::with_capacity(count);
    while messages.len() < count && std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => messages.push(message.detach()),
            Some(Err(error)) => panic!("consume error: {error}"),
            None => {}
        }
    }
    let _ = messages.first().map(Message::offset);
    messages
}

/// A unique topic name per test.
pub(crate) fn topic_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `GET path` on the admin HTTP listener; returns the body of a 200 answer.
pub(crate) async fn http_get(address: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}
