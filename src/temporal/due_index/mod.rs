//! `DueIndex`: the per-partition set of entities waiting for a due time, ordered by
//! `(due_at_ms, entity)`, with a key → entry map for moves and cancels.
//!
//! Memory is the design constraint (target ≤ 48 B resident per entity):
//! - **Slots** (32 B each) live in a chunked arena, so growth never copies or doubles it. A slot
//!   holds the 64-bit key hash, a 16-bit check from an independent part of the same 128-bit hash,
//!   the field index, the pending due time, the offset of the latest indexed version, and the
//!   last due time that fired. Keys themselves are not kept: the fire path reads the record at
//!   the offset. Two keys are one entity only if all 80 hash bits collide (about 1 in 10^10 for
//!   16 million entities).
//! - **The map** is a `hashbrown::HashTable<u32>` of slot ids (4 B + 1 control byte a bucket).
//! - **Far entries** sit in coarse time buckets ([`BUCKET_MS`] wide) as bare `u32` slot ids.
//!   When the earliest bucket is needed it is sorted once into **the near run** of
//!   `(due, slot)`, so only entries due soon pay for ordering, and a mass drain (millions due at
//!   one instant) pops in O(1) each. Entries that arrive already inside the near window (past
//!   due at write time) go to a small heap beside the run; pops take the smaller head.
//!
//! Moves and cancels do not search the buckets or the heap: they change the slot, and the stale
//! bucket or heap element is skipped when met (its due time no longer matches the slot). Stale
//! elements are counted, and the structures are rebuilt when they outnumber the live entries,
//! so garbage stays bounded.
//!
//! Exactly-once bookkeeping: a slot remembers the last due time that fired for its (key, field).
//! A later version with that same due time does not queue it again (DESIGN §5.3); any other due
//! time does.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use hashbrown::HashTable;

mod near;
mod slot;

use near::Near;
use slot::Slot;

/// Width of a far bucket: about 70 minutes. A year of uniformly spread entities fills ~7,500
/// buckets, so per-bucket overhead is negligible next to 4 B per entry.
pub const BUCKET_MS: i64 = 1 << 22;
const SLOTS_PER_CHUNK: usize = 4096;
const NO_DUE: i64 = -1;
/// Field index of a released slot; live entities have at most `MAX_FIELDS` (16) fields.
const DEAD_FIELD: u8 = u8::MAX;
const _: () = assert!(super::selector::MAX_FIELDS < DEAD_FIELD as usize);

/// Identity of an entity in one partition: a key and a field index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntityId {
    hash: u64,
    check: u16,
    field: u8,
}

impl EntityId {
    /// The entity of `key` for the field at `field` in `temporal.fields`.
    #[must_use]
    pub fn new(key: &[u8], field: u8) -> Self {
        let h = xxhash_rust::xxh3::xxh3_128(key);
        // Truncation takes the low and high halves of the 128-bit hash.
        let (low, high) = (h as u64, (h >> 64) as u64);
        Self {
            hash: low ^ u64::from(field).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            check: (high >> 48) as u16,
            field,
        }
    }

    /// The field index.
    #[must_use]
    pub fn field(self) -> u8 {
        self.field
    }

    /// `(hash, check, field)`, for snapshots.
    #[must_use]
    pub fn parts(self) -> (u64, u16, u8) {
        (self.hash, self.check, self.field)
    }

    /// The inverse of [`EntityId::parts`].
    #[must_use]
    pub fn from_parts(hash: u64, check: u16, field: u8) -> Self {
        Self { hash, check, field }
    }
}

/// One entity as a snapshot stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotEntry {
    /// The entity.
    pub id: EntityId,
    /// Pending due time, or -1.
    pub due_ms: i64,
    /// Latest indexed version.
    pub offset: i64,
    /// Last fired due time, or -1.
    pub fired_ms: i64,
}

/// A due entry handed to the fire path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueEntry {
    /// The entity.
    pub id: EntityId,
    /// When it fell due.
    pub due_ms: i64,
    /// Offset of the version the fire reflects.
    pub offset: i64,
    /// The slot it was popped from: a hint that saves a hash lookup when it is confirmed.
    slot: u32,
}

impl DueEntry {
    /// An entry not popped from an index (tests, benches, replays).
    #[must_use]
    pub fn new(id: EntityId, due_ms: i64, offset: i64) -> Self {
        Self {
            id,
            due_ms,
            offset,
            slot: u32::MAX,
        }
    }
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// A new pending entry.
    Queued,
    /// The pending entry moved to another due time.
    Moved {
        /// The due time it had.
        from_ms: i64,
    },
    /// Same due time as pending: the entry now points at the newer version.
    Refreshed,
    /// This due time already fired for the entity: nothing is queued.
    AlreadyFired,
}

/// See the module docs.
#[derive(Debug, Default, Clone)]
pub struct DueIndex {
    chunks: Vec<Box<[Slot]>>,
    slots_used: u32,
    free: Vec<u32>,
    table: HashTable<u32>,
    far: BTreeMap<i64, Vec<u32>>,
    near: Near,
    /// Every pending entry with due before this is in `near`; the others are in `far`.
    near_until_ms: i64,
    pending: usize,
    stale: usize,
}

fn bucket_of(due_ms: i64) -> i64 {
    due_ms.div_euclid(BUCKET_MS)
}

impl DueIndex {
    /// An empty index.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty index with room for `entities` without rehashing.
    #[must_use]
    pub fn with_capacity(entities: usize) -> Self {
        let mut index = Self::default();
        index.table.reserve(entities, |_| 0);
        index
    }

    /// The live entities, for a snapshot, each once: pending ones in due-bucket order (so a
    /// restore appends to one bucket at a time), then the ones only remembered as fired.
    #[must_use]
    pub fn snapshot_entries(&self) -> Vec<SnapshotEntry> {
        let mut seen = vec![false; self.slots_used as usize];
        let mut out = Vec::with_capacity(self.table.len());
        let mut take = |idx: u32, out: &mut Vec<SnapshotEntry>| {
            let slot = self.slot(idx);
            if std::mem::replace(&mut seen[idx as usize], true) || slot.id().field == DEAD_FIELD {
                return;
            }
            out.push(SnapshotEntry {
                id: slot.id(),
                due_ms: slot.due_ms,
                offset: slot.offset(),
                fired_ms: slot.fired_ms(),
            });
        };
        let mut near: Vec<(i64, u32)> = self.near.run.iter().copied().collect();
        near.extend(self.near.heap.iter().map(|Reverse(e)| *e));
        near.sort_unstable();
        for (due, idx) in near {
            if self.slot(idx).due_ms == due {
                take(idx, &mut out);
            }
        }
        for (&bucket, ids) in &self.far {
            for &idx in ids {
                let due = self.slot(idx).due_ms;
                if due != NO_DUE && bucket_of(due) == bucket {
                    take(idx, &mut out);
                }
            }
        }
        for idx in 0..self.slots_used {
            take(idx, &mut out);
        }
        out
    }

    /// Adds an entity from a snapshot (which holds each entity once).
    pub fn restore(&mut self, entry: SnapshotEntry) {
        let idx = self.allocate(Slot::new(
            entry.id,
            entry.due_ms,
            entry.offset,
            entry.fired_ms,
        ));
        let chunks = &self.chunks;
        let _ = self.table.insert_unique(entry.id.hash, idx, |&i| {
            chunks[i as usize / SLOTS_PER_CHUNK][i as usize % SLOTS_PER_CHUNK].hash
        });
        if entry.due_ms != NO_DUE {
            self.enqueue(idx, entry.due_ms);
        }
    }

    fn slot(&self, idx: u32) -> &Slot {
        let idx = idx as usize;
        &self.chunks[idx / SLOTS_PER_CHUNK][idx % SLOTS_PER_CHUNK]
    }

    fn slot_mut(&mut self, idx: u32) -> &mut Slot {
        let idx = idx as usize;
        &mut self.chunks[idx / SLOTS_PER_CHUNK][idx % SLOTS_PER_CHUNK]
    }

    fn find(&self, id: EntityId) -> Option<u32> {
        self.table
            .find(id.hash, |&idx| self.slot(idx).id() == id)
            .copied()
    }

    /// The slot of a popped entry: its hint if the slot still holds that entity, else a lookup.
    fn locate(&self, entry: &DueEntry) -> Option<u32> {
        // A released slot carries DEAD_FIELD, which no live entity has, so an id match means
        // the slot is live and still this entity's.
        if entry.slot < self.slots_used && self.slot(entry.slot).id() == entry.id {
            return Some(entry.slot);
        }
        self.find(entry.id)
    }

    fn allocate(&mut self, slot: Slot) -> u32 {
        if let Some(idx) = self.free.pop() {
            *self.slot_mut(idx) = slot;
            return idx;
        }
        let idx = self.slots_used;
        if idx as usize / SLOTS_PER_CHUNK == self.chunks.len() {
            self.chunks
                .push(vec![slot; SLOTS_PER_CHUNK].into_boxed_slice());
        }
        *self.slot_mut(idx) = slot;
        self.slots_used += 1;
        idx
    }

    fn enqueue(&mut self, idx: u32, due_ms: i64) {
        if due_ms < self.near_until_ms {
            self.near.push((due_ms, idx));
        } else {
            let bucket = bucket_of(due_ms);
            // Restores and bursts of similar due times hit the newest bucket: skip the search.
            match self.far.last_entry() {
                Some(mut last) if *last.key() == bucket => last.get_mut().push(idx),
                _ => self.far.entry(bucket).or_default().push(idx),
            }
        }
        self.pending += 1;
    }

    /// Indexes a version of an entity: `offset` is its latest version, due at `due_ms`.
    pub fn upsert(&mut self, id: EntityId, due_ms: i64, offset: i64) -> Upsert {
        let Some(idx) = self.find(id) else {
            let idx = self.allocate(Slot::new(id, due_ms, offset, NO_DUE));
            let chunks = &self.chunks;
            let _ = self.table.insert_unique(id.hash, idx, |&i| {
                chunks[i as usize / SLOTS_PER_CHUNK][i as usize % SLOTS_PER_CHUNK].hash
            });
            self.enqueue(idx, due_ms);
            return Upsert::Queued;
        };
        let slot = *self.slot(idx);
        self.slot_mut(idx).set_offset(offset);
        if slot.due_ms == due_ms {
            return Upsert::Refreshed;
        }
        if slot.due_ms != NO_DUE {
            self.unqueue(idx);
        }
        if slot.fired_ms() == due_ms {
            return Upsert::AlreadyFired;
        }
        self.slot_mut(idx).due_ms = due_ms;
        self.enqueue(idx, due_ms);
        if slot.due_ms == NO_DUE {
            Upsert::Queued
        } else {
            Upsert::Moved {
                from_ms: slot.due_ms,
            }
        }
    }

    /// Marks a queued slot as no longer pending; its bucket or heap element becomes stale.
    fn unqueue(&mut self, idx: u32) {
        self.slot_mut(idx).due_ms = NO_DUE;
        self.pending -= 1;
        self.stale += 1;
        self.maybe_compact();
    }

    /// A version without the field: the pending entry is cancelled, but the fired state stays,
    /// so the same due time coming back does not fire twice. Returns whether something was
    /// pending.
    pub fn cancel(&mut self, id: EntityId, offset: i64) -> bool {
        let Some(idx) = self.find(id) else {
            return false;
        };
        self.slot_mut(idx).set_offset(offset);
        let was_pending = self.slot(idx).due_ms != NO_DUE;
        if was_pending {
            self.unqueue(idx);
        }
        if self.slot(idx).fired_ms() == NO_DUE {
            self.release(idx);
        }
        was_pending
    }

    /// A tombstone for the key: the entity and its fired state are forgotten (the durable fired
    /// state is tombstoned alongside). Returns whether something was pending.
    pub fn remove(&mut self, id: EntityId) -> bool {
        let Some(idx) = self.find(id) else {
            return false;
        };
        let was_pending = self.slot(idx).due_ms != NO_DUE;
        if was_pending {
            self.unqueue(idx);
        }
        self.release(idx);
        was_pending
    }

    fn release(&mut self, idx: u32) {
        let hash = self.slot(idx).hash;
        if let Ok(entry) = self.table.find_entry(hash, |&i| i == idx) {
            let _ = entry.remove();
        }
        *self.slot_mut(idx) = Slot::new(
            EntityId {
                hash: 0,
                check: 0,
                field: DEAD_FIELD,
            },
            NO_DUE,
            0,
            NO_DUE,
        );
        self.free.push(idx);
    }

    /// Restores fired state (from the durable fired-state log or a snapshot) for an entity.
    pub fn restore_fired(&mut self, id: EntityId, fired_ms: i64, offset: i64) {
        let idx = match self.find(id) {
            Some(idx) => idx,
            None => {
                let idx = self.allocate(Slot::new(id, NO_DUE, offset, fired_ms));
                let chunks = &self.chunks;
                let _ = self.table.insert_unique(id.hash, idx, |&i| {
                    chunks[i as usize / SLOTS_PER_CHUNK][i as usize % SLOTS_PER_CHUNK].hash
                });
                return;
            }
        };
        self.slot_mut(idx).set_fired(fired_ms);
        if self.slot(idx).due_ms == fired_ms {
            self.unqueue(idx);
        }
    }

    /// The earliest pending due time.
    pub fn next_due(&mut self) -> Option<i64> {
        loop {
            self.promote_if_needed();
            let (due, idx) = self.near.peek()?;
            if self.slot(idx).due_ms == due {
                return Some(due);
            }
            let _ = self.near.pop();
            self.stale = self.stale.saturating_sub(1);
        }
    }

    /// Sorts the earliest far bucket into the near run when nothing near is left.
    fn promote_if_needed(&mut self) {
        while self.near.is_empty() {
            let Some((bucket, ids)) = self.far.pop_first() else {
                return;
            };
            self.near_until_ms = (bucket + 1) * BUCKET_MS;
            let mut run: Vec<(i64, u32)> = Vec::with_capacity(ids.len());
            for idx in ids {
                let due = self.slot(idx).due_ms;
                if due != NO_DUE && bucket_of(due) == bucket {
                    run.push((due, idx));
                } else {
                    self.stale = self.stale.saturating_sub(1);
                }
            }
            run.sort_unstable();
            run.dedup();
            self.near.run = run.into();
        }
    }

    /// Pops up to `max` entries due at or before `now_ms`, in due order, into `out`. They stop
    /// being pending; the caller fires each and then calls [`DueIndex::fired`], or
    /// [`DueIndex::retry`] if the fire could not be appended.
    pub fn pop_due(&mut self, now_ms: i64, max: usize, out: &mut Vec<DueEntry>) {
        while out.len() < max {
            match self.next_due() {
                Some(due) if due <= now_ms => {}
                _ => return,
            }
            let Some((due, idx)) = self.near.pop() else {
                return;
            };
            let slot = *self.slot(idx);
            // A duplicate heap element for the same (slot, due) can exist after a move back and
            // forth; the first pop clears due_ms, so the second is skipped by next_due.
            self.slot_mut(idx).due_ms = NO_DUE;
            self.pending -= 1;
            out.push(DueEntry {
                id: slot.id(),
                due_ms: due,
                offset: slot.offset(),
                slot: idx,
            });
        }
    }

    /// Records that `entry` fired. Returns false if the entity changed since it was popped
    /// (the caller must then not have appended the fire; see the pulse).
    pub fn fired(&mut self, entry: &DueEntry) -> bool {
        let Some(idx) = self.locate(entry) else {
            return false;
        };
        self.slot_mut(idx).set_fired(entry.due_ms);
        true
    }

    /// Puts a popped entry back, unless a newer version changed the entity meanwhile.
    pub fn retry(&mut self, entry: &DueEntry) {
        if let Some(idx) = self.locate(entry) {
            let slot = *self.slot(idx);
            if slot.due_ms == NO_DUE && slot.offset() == entry.offset {
                self.slot_mut(idx).due_ms = entry.due_ms;
                self.enqueue(idx, entry.due_ms);
            }
        }
    }

    /// Whether `entry` still describes the entity's latest indexed version and is not
    /// re-queued: the check a fire must pass under the partition's append order.
    #[must_use]
    pub fn is_current(&self, entry: &DueEntry) -> bool {
        self.locate(entry).is_some_and(|idx| {
            let slot = self.slot(idx);
            slot.offset() == entry.offset
                && slot.due_ms == NO_DUE
                && slot.fired_ms() != entry.due_ms
        })
    }

    /// The pending entry of an entity: `(due_ms, offset)`.
    #[must_use]
    pub fn pending_of(&self, id: EntityId) -> Option<(i64, i64)> {
        let slot = self.slot(self.find(id)?);
        (slot.due_ms != NO_DUE).then_some((slot.due_ms, slot.offset()))
    }

    /// The last fired due time of an entity.
    #[must_use]
    pub fn fired_of(&self, id: EntityId) -> Option<i64> {
        let slot = self.slot(self.find(id)?);
        (slot.fired_ms() != NO_DUE).then_some(slot.fired_ms())
    }

    /// Entries due at or before `now_ms` (the backlog), as an upper bound: elements left stale
    /// by moves are counted until they are skipped. Cheap enough to call after every pulse
    /// step even during a drain of millions: a binary search of the near run plus the lengths
    /// of far buckets that are already due.
    #[must_use]
    pub fn count_due(&self, now_ms: i64) -> usize {
        let near_run = self.near.run.partition_point(|&(due, _)| due <= now_ms);
        let near_heap = self
            .near
            .heap
            .iter()
            .filter(|Reverse((due, _))| *due <= now_ms)
            .count();
        let far: usize = self
            .far
            .range(..=bucket_of(now_ms))
            .map(|(_, ids)| ids.len())
            .sum();
        near_run + near_heap + far
    }

    /// Number of pending entries.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Number of entities tracked (pending or remembered as fired).
    #[must_use]
    pub fn entities(&self) -> usize {
        self.table.len()
    }

    /// The next `limit` pending entries in due order, without changing anything.
    #[must_use]
    pub fn peek_next(&self, limit: usize) -> Vec<DueEntry> {
        let mut all: Vec<DueEntry> = (0..self.slots_used)
            .map(|idx| *self.slot(idx))
            .filter(|s| s.due_ms != NO_DUE && self.find(s.id()).is_some())
            .map(|s| DueEntry::new(s.id(), s.due_ms, s.offset()))
            .collect();
        all.sort_unstable_by_key(|e| (e.due_ms, e.id.hash));
        all.truncate(limit);
        all
    }

    /// Approximate resident bytes: arena chunks, map buckets, far buckets and the near heap.
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        let arena = self.chunks.len() * SLOTS_PER_CHUNK * std::mem::size_of::<Slot>();
        let table = self.table.capacity() * (std::mem::size_of::<u32>() + 1);
        let far: usize = self
            .far
            .values()
            .map(|v| v.capacity() * 4 + std::mem::size_of::<Vec<u32>>() + 16)
            .sum();
        let near = self.near.capacity_bytes();
        arena + table + far + near + self.free.capacity() * 4
    }

    /// Rebuilds the far buckets and the near heap without stale elements when they outnumber
    /// the pending entries, bounding garbage from moves and cancels.
    fn maybe_compact(&mut self) {
        if self.stale <= self.pending.max(1024) {
            return;
        }
        let mut far: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
        let mut near = Vec::new();
        for idx in 0..self.slots_used {
            let slot = self.slot(idx);
            if slot.due_ms == NO_DUE || self.find(slot.id()) != Some(idx) {
                continue;
            }
            if slot.due_ms < self.near_until_ms {
                near.push((slot.due_ms, idx));
            } else {
                far.entry(bucket_of(slot.due_ms)).or_default().push(idx);
            }
        }
        for ids in far.values_mut() {
            ids.shrink_to_fit();
        }
        self.far = far;
        near.sort_unstable();
        self.near = Near {
            run: near.into(),
            heap: BinaryHeap::new(),
        };
        self.stale = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(key: &str) -> EntityId {
        EntityId::new(key.as_bytes(), 0)
    }

    fn pop_all(index: &mut DueIndex, now: i64) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        index.pop_due(now, usize::MAX, &mut out);
        for e in &out {
            assert!(index.fired(e));
        }
        out.iter().map(|e| (e.due_ms, e.offset)).collect()
    }

    #[test]
    fn pops_in_due_order_across_near_and_far() {
        let mut index = DueIndex::new();
        let times = [5 * BUCKET_MS + 3, 7, BUCKET_MS * 100, 2, 5 * BUCKET_MS + 1];
        for (i, &t) in times.iter().enumerate() {
            let _ = index.upsert(id(&format!("k{i}")), t, i64::try_from(i).unwrap());
        }
        assert_eq!(index.next_due(), Some(2));
        assert_eq!(
            pop_all(&mut index, 6 * BUCKET_MS),
            vec![
                (2, 3),
                (7, 1),
                (5 * BUCKET_MS + 1, 4),
                (5 * BUCKET_MS + 3, 0)
            ]
        );
        assert_eq!(index.pending(), 1);
        assert_eq!(index.next_due(), Some(BUCKET_MS * 100));
    }

    #[test]
    fn latest_version_wins_moves_cancels_and_refreshes() {
        let mut index = DueIndex::new();
        assert_eq!(index.upsert(id("a"), 100, 0), Upsert::Queued);
        assert_eq!(index.upsert(id("a"), 50, 1), Upsert::Moved { from_ms: 100 });
        assert_eq!(index.upsert(id("a"), 50, 2), Upsert::Refreshed);
        assert_eq!(index.pending_of(id("a")), Some((50, 2)));
        assert_eq!(
            pop_all(&mut index, 1000),
            vec![(50, 2)],
            "one fire, newest value"
        );
        assert_eq!(index.upsert(id("b"), 10, 3), Upsert::Queued);
        assert!(index.cancel(id("b"), 4));
        assert!(pop_all(&mut index, 1000).is_empty());
        assert_eq!(index.entities(), 1, "cancelled and never fired: forgotten");
    }

    #[test]
    fn a_fired_due_time_never_fires_again_but_another_does() {
        let mut index = DueIndex::new();
        let _ = index.upsert(id("p"), 100, 0);
        assert_eq!(pop_all(&mut index, 100).len(), 1);
        // The fired record itself, and a later update with the same expiration: no re-fire.
        assert_eq!(index.upsert(id("p"), 100, 1), Upsert::AlreadyFired);
        assert_eq!(index.upsert(id("p"), 100, 2), Upsert::AlreadyFired);
        assert!(pop_all(&mut index, 10_000).is_empty());
        // Field removed, then back with the same time: still no re-fire.
        let _ = index.cancel(id("p"), 3);
        assert_eq!(index.upsert(id("p"), 100, 4), Upsert::AlreadyFired);
        // A new expiration fires by the normal rules.
        assert_eq!(index.upsert(id("p"), 200, 5), Upsert::Queued);
        assert_eq!(pop_all(&mut index, 10_000), vec![(200, 5)]);
        // A tombstone forgets everything.
        let _ = index.remove(id("p"));
        assert_eq!(index.entities(), 0);
    }

    #[test]
    fn fields_of_one_key_are_separate_entities() {
        let mut index = DueIndex::new();
        let _ = index.upsert(EntityId::new(b"k", 0), 10, 0);
        let _ = index.upsert(EntityId::new(b"k", 1), 20, 0);
        assert_eq!(index.entities(), 2);
        let mut out = Vec::new();
        index.pop_due(100, 10, &mut out);
        assert_eq!(
            out.iter().map(|e| e.id.field()).collect::<Vec<_>>(),
            vec![0, 1]
        );
    }

    #[test]
    fn retry_requeues_only_unchanged_entries() {
        let mut index = DueIndex::new();
        let _ = index.upsert(id("a"), 10, 0);
        let _ = index.upsert(id("b"), 10, 0);
        let mut out = Vec::new();
        index.pop_due(10, 10, &mut out);
        assert!(out.iter().all(|e| index.is_current(e)));
        // A newer version of b lands before its fire is appended: the popped entry is stale,
        // and the newer version is queued by itself.
        assert_eq!(index.upsert(id("b"), 10, 7), Upsert::Queued);
        let (a, b) = if out[0].id == id("a") {
            (out[0], out[1])
        } else {
            (out[1], out[0])
        };
        assert!(index.is_current(&a));
        assert!(!index.is_current(&b));
        index.retry(&a);
        index.retry(&b);
        let mut again = pop_all(&mut index, 10);
        again.sort_unstable();
        assert_eq!(again, vec![(10, 0), (10, 7)]);
    }

    #[test]
    fn garbage_from_moves_stays_bounded() {
        let mut index = DueIndex::new();
        for round in 0..50i64 {
            for k in 0..1000 {
                let _ = index.upsert(id(&format!("k{k}")), (round + 1) * BUCKET_MS * 3 + k, round);
            }
        }
        assert_eq!(index.pending(), 1000);
        let far_len: usize = index.far.values().map(Vec::len).sum();
        assert!(
            far_len + index.near.len() <= 1000 + 1024 + 1000 + 1,
            "{far_len}"
        );
        assert_eq!(pop_all(&mut index, i64::MAX).len(), 1000);
    }

    #[test]
    fn resident_bytes_per_entity_fit_the_budget() {
        let mut index = DueIndex::new();
        let n: u32 = 200_000;
        for k in 0..n {
            let _ = index.upsert(
                EntityId::new(&k.to_be_bytes(), 0),
                i64::from(k) * 150_000,
                0,
            );
        }
        let per = index.memory_bytes() / n as usize;
        assert!(per <= 48, "{per} B per entity");
    }
}

#[cfg(test)]
mod footprint {
    use super::*;

    /// Run with `--ignored --nocapture` to print resident bytes per entity at scale.
    #[test]
    #[ignore = "prints a measurement; slow in debug builds"]
    fn print_bytes_per_entity() {
        for n in [1_000_000u32, 4_000_000] {
            let mut index = DueIndex::new();
            let year_ms = 365 * 24 * 3_600_000i64;
            for k in 0..n {
                let due = i64::from(k.wrapping_mul(2_654_435_761)) % year_ms;
                let _ = index.upsert(EntityId::new(&k.to_be_bytes(), 0), due, i64::from(k));
            }
            println!("{n} entities: {} B each", index.memory_bytes() / n as usize);
        }
    }
}
