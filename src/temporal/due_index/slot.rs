//! The packed 32-byte record of one entity in the due index.

use super::{EntityId, NO_DUE};

/// One entity, packed into 32 bytes: offsets and due times fit 48 bits (offsets to 2.8e14,
/// times past the year 10000), leaving room for the 16-bit hash check and the field index.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub(super) hash: u64,
    /// Pending due time, or [`NO_DUE`] when nothing is queued.
    pub(super) due_ms: i64,
    /// Offset of the latest indexed version (low 48 bits) and the hash check (high 16).
    offset_word: u64,
    /// Last due time that fired (low 48 bits, all ones for none) and the field index (top 8).
    fired_word: u64,
}

const MASK48: u64 = (1 << 48) - 1;

impl Slot {
    pub(super) fn new(id: EntityId, due_ms: i64, offset: i64, fired_ms: i64) -> Self {
        let mut slot = Self {
            hash: id.hash,
            due_ms,
            offset_word: u64::from(id.check) << 48,
            fired_word: u64::from(id.field) << 56,
        };
        slot.set_offset(offset);
        slot.set_fired(fired_ms);
        slot
    }
    pub(super) fn id(&self) -> EntityId {
        EntityId {
            hash: self.hash,
            check: (self.offset_word >> 48) as u16,
            field: (self.fired_word >> 56) as u8,
        }
    }
    pub(super) fn offset(&self) -> i64 {
        i64::try_from(self.offset_word & MASK48).unwrap_or(i64::MAX)
    }
    pub(super) fn set_offset(&mut self, offset: i64) {
        debug_assert!(
            (0..=MASK48 as i64).contains(&offset),
            "offset {offset} fits 48 bits"
        );
        let offset = u64::try_from(offset).unwrap_or(0) & MASK48;
        self.offset_word = (self.offset_word & !MASK48) | offset;
    }
    pub(super) fn fired_ms(&self) -> i64 {
        match self.fired_word & MASK48 {
            MASK48 => NO_DUE,
            ms => i64::try_from(ms).unwrap_or(NO_DUE),
        }
    }
    pub(super) fn set_fired(&mut self, fired_ms: i64) {
        let bits = u64::try_from(fired_ms).map_or(MASK48, |ms| ms.min(MASK48 - 1));
        self.fired_word = (self.fired_word & !MASK48) | bits;
    }
}

const _: () = assert!(std::mem::size_of::<Slot>() == 32);
