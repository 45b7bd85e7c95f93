//! One pulse pass over every temporal partition: each catches up and fires what is due, on up
//! to [`PULSE_THREADS`] threads when several have something due (see [`DueService::pass`]),
//! and each step's fired state is recorded before anything else (rule 1 of the service's
//! module docs).

use kairos_storage::TopicPartition;

use super::{DueService, FIRES_PER_STEP, Tracked, apply_clean_limits};
use crate::temporal::indexer::FiredChange;
use crate::temporal::pulse::{FireTarget, fire_due_clocked};
use crate::temporal::target_mark::{remove_mark, write_mark};

/// Most threads a pass steps partitions on.
const PULSE_THREADS: usize = 4;
/// Longest a pass keeps stepping one partition with a backlog (other partitions of the same
/// thread, and the next pass, wait at most about this long).
const STEP_BUDGET: std::time::Duration = std::time::Duration::from_millis(100);

/// What one pulse pass over every partition found.
#[derive(Debug, Clone, Copy, Default)]
pub(in crate::temporal) struct Pass {
    /// Fires appended.
    pub(in crate::temporal) fired: usize,
    /// Fires appended to a target topic: its own indexer (if temporal) has new versions.
    pub(in crate::temporal) fired_elsewhere: usize,
    /// The earliest due time left.
    pub(in crate::temporal) next_due: Option<i64>,
    /// Whether a step failed (it is retried after a pause).
    pub(in crate::temporal) failed: bool,
    /// Partitions with due fires whose target partition does not exist.
    pub(in crate::temporal) blocked: usize,
}

impl Pass {
    /// Adds what another share of the same pass found.
    fn merge(&mut self, other: Pass) {
        self.fired += other.fired;
        self.fired_elsewhere += other.fired_elsewhere;
        self.next_due = min_of(self.next_due, other.next_due);
        self.failed |= other.failed;
        self.blocked += other.blocked;
    }
}

/// The earlier of two optional times.
fn min_of(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl DueService {
    /// [`Self::step`], again while it fires whole slices, for up to [`STEP_BUDGET`]; then
    /// notes the partition's next due time in `pass`. Stepping on, rather than returning to
    /// the pass after one slice, lets the threads of a pass drift apart, so one computes while
    /// another waits for its fsyncs.
    fn step_and_peek(
        &self,
        tp: &TopicPartition,
        tracked: &mut Tracked,
        now_ms: i64,
        pass: &mut Pass,
    ) {
        let started = crate::clock::Stopwatch::start();
        loop {
            let before = pass.fired;
            self.step(tp, tracked, now_ms, pass);
            let whole_slice = pass.fired - before >= FIRES_PER_STEP;
            if !whole_slice || pass.failed || started.elapsed() >= STEP_BUDGET {
                break;
            }
        }
        let next = tracked.indexer.index_mut().next_due();
        pass.next_due = min_of(pass.next_due, next);
    }

    /// Records `changes` of a tracked partition; on failure they wait in `unflushed`.
    fn record(
        &self,
        tp: &TopicPartition,
        tracked: &mut Tracked,
        changes: Vec<FiredChange>,
        now_ms: i64,
    ) -> bool {
        if changes.is_empty() {
            return true;
        }
        let fires = match (&tracked.target, &tracked.target_log) {
            (Some(_), Some(target)) => target,
            _ => &tracked.log,
        };
        match self.state.record(
            tracked.topic_id,
            tp.partition,
            &tracked.config.fields,
            fires,
            &changes,
            now_ms,
        ) {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%tp, ?error, "fired state not recorded; retrying before firing again");
                tracked.unflushed = changes;
                false
            }
        }
    }

    /// One partition's share of a pass: record what waits, then fire and record, until the
    /// indexer has caught up (it stops early to hand over fired-state changes).
    fn step(&self, tp: &TopicPartition, tracked: &mut Tracked, now_ms: i64, pass: &mut Pass) {
        let waiting = std::mem::take(&mut tracked.unflushed);
        if !self.record(tp, tracked, waiting, now_ms) {
            pass.failed = true;
            return;
        }
        loop {
            let mark_path = self.mark_path(tp, tracked.topic_id);
            let mut marked = None;
            let result = match (&tracked.target, &tracked.target_log) {
                (None, _) => fire_due_clocked(
                    &tracked.log,
                    FireTarget::Source,
                    &mut tracked.indexer,
                    &tracked.config,
                    now_ms,
                    self.clock.as_ref(),
                    FIRES_PER_STEP,
                ),
                (Some(target), Some(target_log)) => {
                    let mut before_append = |end: i64| {
                        // Rule 4: the target keeps what may lack its fired state, and the
                        // mark is durable before the first fire can be.
                        target_log.set_clean_limit(end.min(target_log.clean_limit()));
                        write_mark(&mark_path, end, target).map_err(|source| {
                            kairos_storage::Error::Io {
                                op: "write target mark",
                                path: mark_path.clone(),
                                source,
                            }
                        })?;
                        marked = Some(end);
                        Ok(())
                    };
                    fire_due_clocked(
                        &tracked.log,
                        FireTarget::Topic {
                            source_topic: &tp.topic,
                            log: target_log,
                            before_append: &mut before_append,
                        },
                        &mut tracked.indexer,
                        &tracked.config,
                        now_ms,
                        self.clock.as_ref(),
                        FIRES_PER_STEP,
                    )
                }
                (Some(_), None) => {
                    // The target partition does not exist (yet): index, fire nothing, and
                    // retry with backoff while something is due (DESIGN §5.2).
                    if tracked.indexer.index().count_due(now_ms) > 0 {
                        pass.blocked += 1;
                        pass.failed = true;
                    }
                    fire_due_clocked(
                        &tracked.log,
                        FireTarget::Source,
                        &mut tracked.indexer,
                        &tracked.config,
                        now_ms,
                        self.clock.as_ref(),
                        0,
                    )
                }
            };
            if marked.is_some() {
                tracked.target_mark = marked;
            }
            let mut changes = tracked.indexer.take_changes();
            let behind = match result {
                Ok(report) => {
                    pass.fired += report.fired;
                    if tracked.target.is_some() {
                        pass.fired_elsewhere += report.fired;
                    }
                    for lateness_ms in report.lateness_ms {
                        // Milliseconds to seconds for Prometheus; exact for any realistic value.
                        self.metrics
                            .lateness_seconds
                            .observe(lateness_ms as f64 / 1000.0);
                    }
                    changes.extend(report.fires);
                    report.behind
                }
                Err(error) => {
                    tracing::warn!(%tp, %error, "due fires could not be appended; retrying");
                    let _ = self.metrics.append_failures.inc();
                    pass.failed = true;
                    false
                }
            };
            // Rule 1 of the module docs: nothing else happens between a step's fires and
            // their state records.
            if !self.record(tp, tracked, changes, now_ms) {
                pass.failed = true;
                return;
            }
            // Rule 4: every fire since the mark is recorded; the mark goes (durably: a stale
            // one could restore a fire whose entity was forgotten since). The target's clean
            // limit is released at the end of the pass.
            if tracked.target_mark.is_some() {
                match remove_mark(&mark_path) {
                    Ok(()) => tracked.target_mark = None,
                    Err(error) => {
                        tracing::warn!(?mark_path, %error, "target mark not removed; retrying");
                        pass.failed = true;
                        return;
                    }
                }
            }
            if !behind {
                return;
            }
        }
    }

    /// One pulse pass: every partition catches up and fires what is due at `now_ms`.
    ///
    /// When more than one partition has something due, the partitions that fire into
    /// themselves are stepped on up to [`PULSE_THREADS`] scoped threads, each with its own
    /// share: a step only touches its own partition and `__due_state` (whose appends are safe
    /// from any thread), and this lock is held throughout, so the rules of the module docs hold
    /// as in a sequential pass. A backlog then drains on every core instead of one.
    pub(in crate::temporal) fn pass(&self, now_ms: i64) -> Pass {
        let mut partitions = self.partitions.lock();
        let mut due = 0;
        for tracked in partitions.values_mut() {
            if tracked
                .indexer
                .index_mut()
                .next_due()
                .is_some_and(|d| d <= now_ms)
            {
                due += 1;
            }
        }
        // Not capped at the core count: a step spends part of its time waiting for fsyncs,
        // which another partition's step fills.
        let threads = PULSE_THREADS.min(due);
        let mut pass = Pass::default();
        if threads <= 1 {
            for (tp, tracked) in partitions.iter_mut() {
                self.step_and_peek(tp, tracked, now_ms, &mut pass);
            }
        } else {
            // Partitions firing into a target topic hold two log locks at once (source, then
            // target); two of them on different threads could wait for each other when targets
            // form a cycle (A → B → A). They are stepped here, one after another, and only
            // partitions firing into themselves (one log lock at a time) share the threads.
            let (same_topic, targeted): (Vec<_>, Vec<_>) = partitions
                .iter_mut()
                .partition(|(_, tracked)| tracked.target.is_none());
            for (tp, tracked) in targeted {
                self.step_and_peek(tp, tracked, now_ms, &mut pass);
            }
            let mut shares: Vec<Vec<(&TopicPartition, &mut Tracked)>> =
                (0..threads).map(|_| Vec::new()).collect();
            for (i, entry) in same_topic.into_iter().enumerate() {
                if let Some(share) = shares.get_mut(i % threads) {
                    share.push(entry);
                }
            }
            std::thread::scope(|scope| {
                let workers: Vec<_> = shares
                    .into_iter()
                    .map(|share| {
                        scope.spawn(move || {
                            let mut pass = Pass::default();
                            for (tp, tracked) in share {
                                self.step_and_peek(tp, tracked, now_ms, &mut pass);
                            }
                            pass
                        })
                    })
                    .collect();
                for worker in workers {
                    match worker.join() {
                        Ok(share) => pass.merge(share),
                        Err(_) => pass.failed = true,
                    }
                }
            });
        }
        apply_clean_limits(&partitions, Vec::new());
        let _ = self.metrics.fires.inc_by(pass.fired as u64);
        let _ = self
            .metrics
            .blocked_partitions
            .set(i64::try_from(pass.blocked).unwrap_or(i64::MAX));
        let (mut backlog, mut oldest) = (0usize, None::<i64>);
        let (mut entities, mut malformed, mut null_keys) = (0u64, 0u64, 0u64);
        for tracked in partitions.values_mut() {
            // The earliest pending time is the next due time (amortised O(1)); only a
            // partition with something due has a backlog to count. Both matter: a pass runs
            // after every append, and a scan of a large index each time was a visible share
            // of produce and drain CPU.
            let next = tracked.indexer.index_mut().next_due();
            let index = tracked.indexer.index();
            if next.is_some_and(|due| due <= now_ms) {
                backlog += index.count_due(now_ms);
            }
            oldest = min_of(oldest, next);
            entities += index.entities() as u64;
            let stats = tracked.indexer.stats();
            malformed += stats.malformed;
            null_keys += stats.null_keys;
        }
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let _ = self.metrics.backlog.set(clamp(backlog as u64));
        let _ = self.metrics.entities.set(clamp(entities));
        let _ = self.metrics.malformed.set(clamp(malformed));
        let _ = self.metrics.null_keys.set(clamp(null_keys));
        let age = oldest
            .filter(|&due| due <= now_ms)
            .map_or(0, |due| now_ms - due);
        let _ = self.metrics.oldest_backlog_age_ms.set(age);
        pass
    }
}
