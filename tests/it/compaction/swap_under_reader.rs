//! A consumer that reads slowly, one small fetch at a time, while producers keep updating keys
//! and the cleaner keeps swapping cleaned segments in under it, misses nothing it should see:
//! every record it gets is the one written at that offset, offsets increase, there is no error,
//! and the last value it sees for every key is the key's latest write.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use rdkafka::Offset;

use super::{
    Written, fast_cleaner_broker, latest_by_key, poll_until, produce_many, producer,
    small_fetch_consumer, topic_counter,
};
use crate::support;

const KEYS: usize = 40;
const BEFORE_READ: usize = 600;
const DURING_READ: usize = 600;

fn updates(from: usize, count: usize) -> Vec<(String, Option<String>)> {
    (from..from + count)
        .map(|i| (format!("key-{}", i % KEYS), Some(format!("update {i}"))))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_reader_misses_nothing_while_segments_are_swapped() {
    let broker = fast_cleaner_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let topic = support::topic_name("swap-reader");
    support::create_topic(
        &bootstrap,
        &topic,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "1024"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    )
    .await;
    let producer = producer(&bootstrap);
    let mut written = produce_many(&producer, &topic, updates(0, BEFORE_READ)).await;

    // The reader stops once it has read the last record written during the read; until the
    // writer publishes that offset, it keeps reading.
    let end = Arc::new(AtomicI64::new(i64::MAX));
    let reader = {
        let (bootstrap, topic, end) = (bootstrap.clone(), topic.clone(), Arc::clone(&end));
        tokio::task::spawn_blocking(move || {
            let consumer = small_fetch_consumer(&bootstrap);
            support::assign(&consumer, &topic, 1, Offset::Beginning);
            poll_until(
                &consumer,
                || end.load(Ordering::Acquire),
                Duration::from_secs(60),
                Duration::from_millis(10),
            )
        })
    };
    let written_before = topic_counter(&broker, "kairos_cleaner_bytes_written_total", &topic).await;
    for chunk in 0..DURING_READ / 50 {
        let from = BEFORE_READ + chunk * 50;
        written.extend(produce_many(&producer, &topic, updates(from, 50)).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    end.store(written.last().unwrap().0 + 1, Ordering::Release);
    let seen = reader.await.unwrap();
    let written_after = topic_counter(&broker, "kairos_cleaner_bytes_written_total", &topic).await;
    assert!(
        written_after > written_before,
        "the cleaner swapped segments during the read ({written_before} -> {written_after} bytes)"
    );

    let by_offset: BTreeMap<i64, &Written> = written.iter().map(|w| (w.0, w)).collect();
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "offsets increase");
    for record in &seen {
        assert_eq!(
            Some(&record),
            by_offset.get(&record.0),
            "a record that was written at its offset"
        );
    }
    assert_eq!(
        latest_by_key(&seen),
        latest_by_key(&written),
        "the reader ends with every key's latest write"
    );
    eprintln!(
        "swap_under_reader: {} records written, {} read, cleaner wrote {written_before} bytes \
         before the read and {written_after} after",
        written.len(),
        seen.len()
    );
    broker.shutdown().await.unwrap();
}
