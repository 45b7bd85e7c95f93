//! Embedding Kairos in a Rust program (or an integration test): start a broker on an ephemeral
//! port with a temporary data directory, use it with any Kafka client, shut it down.
//!
//! Run with `cargo run --example embedded`.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let broker = kairos::Broker::builder()
        .temp_dir()
        .listener("127.0.0.1:0")
        .config("num.partitions", "1")
        .start()
        .await?;
    let bootstrap = broker.bootstrap_servers();

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()?;
    let delivery = producer
        .send(
            FutureRecord::to("greetings")
                .key("k")
                .payload("hello, kairos"),
            Duration::from_secs(5),
        )
        .await
        .map_err(|(error, _)| error)?;
    println!("produced at offset {}", delivery.offset);

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "example")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset("greetings", 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    if let Some(message) = consumer.poll(Duration::from_secs(5)) {
        let message = message?;
        println!("consumed {:?}", message.payload_view::<str>());
    }
    drop((producer, consumer));

    broker.shutdown().await?;
    Ok(())
}
