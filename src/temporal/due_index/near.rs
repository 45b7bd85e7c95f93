//! The near part of the due index: entries due before the end of the current window.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Entries due before `near_until_ms`: a sorted run from a promoted bucket plus a heap of
/// entries inserted into the window afterwards.
#[derive(Debug, Default, Clone)]
pub(super) struct Near {
    pub(super) run: VecDeque<(i64, u32)>,
    pub(super) heap: BinaryHeap<Reverse<(i64, u32)>>,
}

impl Near {
    pub(super) fn push(&mut self, entry: (i64, u32)) {
        self.heap.push(Reverse(entry));
    }
    pub(super) fn peek(&self) -> Option<(i64, u32)> {
        match (self.run.front(), self.heap.peek()) {
            (Some(&r), Some(&Reverse(h))) => Some(r.min(h)),
            (Some(&r), None) => Some(r),
            (None, Some(&Reverse(h))) => Some(h),
            (None, None) => None,
        }
    }
    pub(super) fn pop(&mut self) -> Option<(i64, u32)> {
        let head = self.peek()?;
        if self.run.front() == Some(&head) {
            self.run.pop_front()
        } else {
            self.heap.pop().map(|Reverse(e)| e)
        }
    }
    pub(super) fn is_empty(&self) -> bool {
        self.run.is_empty() && self.heap.is_empty()
    }
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.run.len() + self.heap.len()
    }
    pub(super) fn capacity_bytes(&self) -> usize {
        (self.run.capacity() + self.heap.capacity()) * std::mem::size_of::<(i64, u32)>()
    }
}
