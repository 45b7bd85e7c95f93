//! `OffsetMap`: key hash → latest offset, in a fixed amount of memory (Kafka's
//! `SkimpyOffsetMap`, `log.cleaner.dedupe.buffer.size`).
//!
//! Keys are identified by a 128-bit xxh3 hash, as Kafka uses 128-bit MD5: with 64 bits a
//! collision between two live keys would make the cleaner drop one key's latest record. Slots
//! are 24 bytes (hash + offset) in an open-addressing table that is never resized; when it
//! reaches its load factor, the cleaner stops the pass there and cleans the rest next time.

/// Bytes per slot.
pub(crate) const SLOT_BYTES: usize = 24;
const LOAD_FACTOR_PERCENT: usize = 90;
const EMPTY: i64 = -1;

#[derive(Debug, Clone, Copy)]
struct Slot {
    hash_high: u64,
    hash_low: u64,
    offset: i64,
}

/// See the module docs.
#[derive(Debug)]
pub struct OffsetMap {
    slots: Vec<Slot>,
    entries: usize,
    max_entries: usize,
}

/// The map is at its load factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapFull;

impl OffsetMap {
    /// A map using about `memory_bytes` (at least 1024 slots).
    #[must_use]
    pub fn with_memory(memory_bytes: usize) -> Self {
        let capacity = (memory_bytes / SLOT_BYTES).max(1024);
        Self {
            slots: vec![
                Slot {
                    hash_high: 0,
                    hash_low: 0,
                    offset: EMPTY
                };
                capacity
            ],
            entries: 0,
            max_entries: capacity * LOAD_FACTOR_PERCENT / 100,
        }
    }

    /// Forgets everything, keeping the memory.
    pub fn clear(&mut self) {
        for slot in &mut self.slots {
            slot.offset = EMPTY;
        }
        self.entries = 0;
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// How many keys fit before [`MapFull`].
    #[must_use]
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    fn hash(key: &[u8]) -> (u64, u64) {
        let h = xxhash_rust::xxh3::xxh3_128(key);
        // Splitting the 128-bit hash into its halves; truncation is the intent.
        ((h >> 64) as u64, h as u64)
    }

    fn probe(&self, (high, low): (u64, u64)) -> usize {
        let mut at = (low as usize) % self.slots.len();
        loop {
            let slot = self.slots[at];
            if slot.offset == EMPTY || (slot.hash_high == high && slot.hash_low == low) {
                return at;
            }
            at = (at + 1) % self.slots.len();
        }
    }

    /// Records `offset` as the latest for `key` (offsets only grow, so the later call wins).
    ///
    /// # Errors
    /// [`MapFull`] when a new key would pass the load factor.
    pub fn put(&mut self, key: &[u8], offset: i64) -> Result<(), MapFull> {
        let hash = Self::hash(key);
        let at = self.probe(hash);
        if self.slots[at].offset == EMPTY {
            if self.entries >= self.max_entries {
                return Err(MapFull);
            }
            self.entries += 1;
        }
        self.slots[at] = Slot {
            hash_high: hash.0,
            hash_low: hash.1,
            offset,
        };
        Ok(())
    }

    /// The latest offset recorded for `key`.
    #[must_use]
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        let slot = self.slots[self.probe(Self::hash(key))];
        (slot.offset != EMPTY).then_some(slot.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_offsets_win_and_the_map_reports_full() {
        let mut map = OffsetMap::with_memory(0);
        assert_eq!(map.max_entries(), 921);
        map.put(b"a", 1).unwrap();
        map.put(b"b", 2).unwrap();
        map.put(b"a", 3).unwrap();
        assert_eq!(
            (map.get(b"a"), map.get(b"b"), map.get(b"c")),
            (Some(3), Some(2), None)
        );
        for i in 2..921u32 {
            map.put(&i.to_be_bytes(), i64::from(i)).unwrap();
        }
        assert_eq!(map.put(b"one more", 9), Err(MapFull));
        map.put(b"a", 10).unwrap();
        map.clear();
        assert!(map.is_empty() && map.get(b"a").is_none());
    }
}
