//! A group member on its own thread: a librdkafka `BaseConsumer` that subscribes, records every
//! record it processes, commits it synchronously before polling the next one, and records its
//! rebalance callbacks. With commits made that way a partition changes owner exactly at the
//! committed offset, so a correct coordinator gives exactly-once delivery across rebalances,
//! and `check_exactly_once` can demand it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, RebalanceProtocol,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

/// Seconds since the first member log line, so logs of concurrent members line up.
fn stamp() -> f64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// A topic partition, as the assignment sets hold them.
pub(crate) type Partition = (String, i32);

/// One rebalance callback, as librdkafka delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RebalanceEvent {
    Assigned(BTreeSet<Partition>),
    Revoked(BTreeSet<Partition>),
    Error(String),
}

/// A record some member processed (and committed).
#[derive(Debug, Clone)]
pub(crate) struct Consumed {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: String,
    pub(crate) value: String,
    pub(crate) member: String,
}

/// A record the feed produced, as the broker acknowledged it.
#[derive(Debug, Clone)]
pub(crate) struct Produced {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: String,
    pub(crate) value: String,
}

/// Everything every member of one scenario processed, in processing order.
#[derive(Debug, Default)]
pub(crate) struct ConsumedLog {
    records: Mutex<Vec<Consumed>>,
}

impl ConsumedLog {
    pub(crate) fn len(&self) -> usize {
        self.records.lock().len()
    }

    pub(crate) fn records(&self) -> Vec<Consumed> {
        self.records.lock().clone()
    }

    pub(crate) fn count_by(&self, member: &str) -> usize {
        self.records
            .lock()
            .iter()
            .filter(|r| r.member == member)
            .count()
    }

    pub(crate) fn distinct(&self) -> BTreeSet<(i32, i64)> {
        self.records
            .lock()
            .iter()
            .map(|r| (r.partition, r.offset))
            .collect()
    }
}

/// What one member observed; shared between its thread and the test.
#[derive(Debug)]
pub(crate) struct MemberState {
    pub(crate) name: String,
    events: Mutex<Vec<RebalanceEvent>>,
    assignment: Mutex<BTreeSet<Partition>>,
    protocol: Mutex<&'static str>,
    errors: Mutex<Vec<String>>,
    log: Arc<ConsumedLog>,
}

impl MemberState {
    pub(crate) fn assignment(&self) -> BTreeSet<Partition> {
        self.assignment.lock().clone()
    }

    pub(crate) fn events(&self) -> Vec<RebalanceEvent> {
        self.events.lock().clone()
    }

    /// "eager" or "cooperative" once the member joined (librdkafka's `rebalance_protocol`).
    pub(crate) fn protocol(&self) -> &'static str {
        *self.protocol.lock()
    }

    pub(crate) fn errors(&self) -> Vec<String> {
        self.errors.lock().clone()
    }

    fn error(&self, error: String) {
        eprintln!("{:8.3} [{}] ERROR {error}", stamp(), self.name);
        self.errors.lock().push(error);
    }
}

/// The consumer context: records rebalances, prints librdkafka's log lines (with
/// `KAIROS_TEST_RDKAFKA_DEBUG=cgrp,consumer,protocol` they include the group protocol).
pub(crate) struct GroupContext {
    state: Arc<MemberState>,
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        eprintln!(
            "{:8.3} [{}] {level:?} {fac} {log_message}",
            stamp(),
            self.state.name
        );
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Global errors (a connection refused while a broker restarts) are retried by
        // librdkafka; they are printed, not counted.
        eprintln!(
            "{:8.3} [{}] client error {error}: {reason}",
            stamp(),
            self.state.name
        );
    }
}

fn partitions_of(list: &TopicPartitionList) -> BTreeSet<Partition> {
    list.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // No calls back into the consumer here: `assignment()` and `rebalance_protocol()` are
        // requests to librdkafka's group thread, which may be waiting for this very callback
        // (or terminating, during close) and then never answers.
        let mut assignment = self.state.assignment.lock();
        let event = match rebalance {
            Rebalance::Assign(list) => {
                // Eager: the whole new assignment (the previous one was revoked first);
                // cooperative and KIP-848: what is added. Either way, a union.
                let added = partitions_of(list);
                assignment.extend(added.iter().cloned());
                RebalanceEvent::Assigned(added)
            }
            Rebalance::Revoke(list) => {
                let revoked = partitions_of(list);
                assignment.retain(|p| !revoked.contains(p));
                RebalanceEvent::Revoked(revoked)
            }
            Rebalance::Error(error) => RebalanceEvent::Error(error.to_string()),
        };
        eprintln!("{:8.3} [{}] rebalance {event:?}", stamp(), self.state.name);
        self.state.events.lock().push(event);
    }
}

/// A running member. Dropping it stops it (closing the consumer, which leaves the group unless
/// it is a static member).
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) state: Arc<MemberState>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Member {
    /// Starts a member that subscribes to `topics` with `config` (which sets `group.id`).
    pub(crate) fn start(
        name: &str,
        config: &ClientConfig,
        topics: &[&str],
        log: &Arc<ConsumedLog>,
    ) -> Member {
        let state = Arc::new(MemberState {
            name: name.to_owned(),
            events: Mutex::default(),
            assignment: Mutex::default(),
            protocol: Mutex::new("none"),
            errors: Mutex::default(),
            log: Arc::clone(log),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let config = config.clone();
        let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        let thread = {
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            std::thread::Builder::new()
                .name(format!("member-{name}"))
                .spawn(move || run(&state, &stop, &config, &topics))
                .unwrap()
        };
        Member {
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops polling and closes the consumer (bounded); returns what the member observed. The
    /// close runs off the async runtime: it can wait for a rebalance, and a blocked worker
    /// thread would stall the test's other tasks.
    pub(crate) async fn stop(mut self) -> Arc<MemberState> {
        let state = Arc::clone(&self.state);
        tokio::task::spawn_blocking(move || self.join())
            .await
            .expect("member stop");
        state
    }

    fn join(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("member thread");
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.join();
    }
}

fn run(state: &Arc<MemberState>, stop: &AtomicBool, config: &ClientConfig, topics: &[String]) {
    let context = GroupContext {
        state: Arc::clone(state),
    };
    let consumer: BaseConsumer<GroupContext> = match config.create_with_context(context) {
        Ok(consumer) => consumer,
        Err(error) => return state.error(format!("create: {error}")),
    };
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    if let Err(error) = consumer.subscribe(&topic_refs) {
        return state.error(format!("subscribe: {error}"));
    }
    while !stop.load(Ordering::SeqCst) {
        if *state.protocol.lock() == "none" && !state.assignment().is_empty() {
            *state.protocol.lock() = match consumer.rebalance_protocol() {
                RebalanceProtocol::None => "none",
                RebalanceProtocol::Eager => "eager",
                RebalanceProtocol::Cooperative => "cooperative",
            };
        }
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(message)) => {
                state.log.records.lock().push(Consumed {
                    partition: message.partition(),
                    offset: message.offset(),
                    key: text(message.key()),
                    value: text(message.payload()),
                    member: state.name.clone(),
                });
                commit(&consumer, &message, state);
            }
            // librdkafka reports a broker it cannot reach (restarting) through poll too; it
            // reconnects by itself.
            Some(Err(KafkaError::MessageConsumption(
                code
                @ (RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown),
            ))) => eprintln!("{:8.3} [{}] poll: {code:?}", stamp(), state.name),
            Some(Err(error)) => state.error(format!("poll: {error}")),
            None => {}
        }
    }
    close_bounded(consumer, state);
}

fn text(bytes: Option<&[u8]>) -> String {
    bytes.map_or_else(String::new, |b| String::from_utf8_lossy(b).into_owned())
}

/// Commits `message.offset() + 1`, retrying while the coordinator answers with an error that
/// means "not now" rather than "not yours", each of which librdkafka hands to a manual commit
/// as final:
/// - REBALANCE_IN_PROGRESS: a classic group between JoinGroup and SyncGroup refuses commits.
/// - ILLEGAL_GENERATION: with cooperative-sticky a member keeps consuming while it rejoins;
///   librdkafka stamps the commit with the generation it has, and when the commit is read
///   after the rejoin completed (Kafka, too, reads a connection's next request only after
///   answering the JoinGroup) that generation is already the previous one.
/// - STALE_MEMBER_EPOCH: KIP-848; the next heartbeat brings the new epoch.
///
/// The member does not poll meanwhile, so it cannot acknowledge a revocation of this partition
/// before the commit lands: nobody else can own it yet.
fn commit(
    consumer: &BaseConsumer<GroupContext>,
    message: &BorrowedMessage<'_>,
    state: &MemberState,
) {
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(
        message.topic(),
        message.partition(),
        Offset::Offset(message.offset() + 1),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match consumer.commit(&list, CommitMode::Sync) {
            Ok(()) => return,
            Err(KafkaError::ConsumerCommit(
                code @ (RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::StaleMemberEpoch),
            )) if Instant::now() < deadline => {
                eprintln!(
                    "{:8.3} [{}] commit retry after {code:?}",
                    stamp(),
                    state.name
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(error) => {
                return state.error(format!(
                    "commit of {}/{}@{}: {error}",
                    message.topic(),
                    message.partition(),
                    message.offset() + 1
                ));
            }
        }
    }
}

/// Closes the consumer (its revoke callback runs in the polls below), giving up after 15 s so a
/// coordinator that never answers LeaveGroup fails the test instead of hanging it.
fn close_bounded(consumer: BaseConsumer<GroupContext>, state: &MemberState) {
    if let Err(error) = consumer.close_queue() {
        state.error(format!("close: {error}"));
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while !consumer.closed() {
        if Instant::now() > deadline {
            state.error("close did not complete within 15 s".to_owned());
            // Dropping would poll until closed, forever.
            std::mem::forget(consumer);
            return;
        }
        // Records delivered while closing are not processed: they are not committed either,
        // so the next owner delivers them.
        let _ = consumer.poll(Duration::from_millis(100));
    }
}
