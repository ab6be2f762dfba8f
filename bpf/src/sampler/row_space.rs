//! Which ranges of the unwind row map are taken.
//!
//! Every file's table is one contiguous range of rows. Tables come and go
//! (a whole-host profiler evicts the least recently used when the map is
//! full), so the free space is the gaps between the ranges taken: a new
//! table goes in the first gap wide enough.

use std::collections::BTreeMap;

/// The taken ranges of a row map of a fixed capacity.
#[derive(Debug)]
pub(super) struct RowSpace {
    capacity: u32,
    /// First row → row count, for every range taken.
    taken: BTreeMap<u32, u32>,
    used: u64,
}

impl RowSpace {
    /// An empty map of `capacity` rows.
    pub(super) fn new(capacity: u32) -> Self {
        Self {
            capacity,
            taken: BTreeMap::new(),
            used: 0,
        }
    }

    /// Rows the map holds in all.
    pub(super) fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Rows taken.
    pub(super) fn used(&self) -> u64 {
        self.used
    }

    /// Takes `count` rows from the first gap wide enough; `None` when none is.
    pub(super) fn take(&mut self, count: u32) -> Option<u32> {
        let mut gap_start = 0u32;
        let mut found = None;
        for (&first, &len) in &self.taken {
            if first - gap_start >= count {
                found = Some(gap_start);
                break;
            }
            gap_start = first + len;
        }
        let first = match found {
            Some(first) => first,
            None if self.capacity - gap_start >= count => gap_start,
            None => return None,
        };
        self.taken.insert(first, count);
        self.used += u64::from(count);
        Some(first)
    }

    /// Gives back the range that starts at `first`.
    pub(super) fn free(&mut self, first: u32) {
        if let Some(count) = self.taken.remove(&first) {
            self.used -= u64::from(count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_go_in_the_first_gap_wide_enough() {
        let mut space = RowSpace::new(100);
        assert_eq!(space.take(40), Some(0));
        assert_eq!(space.take(40), Some(40));
        assert_eq!(space.take(30), None, "20 rows left");
        assert_eq!(space.take(20), Some(80));
        assert_eq!(space.used(), 100);
        space.free(0);
        assert_eq!(space.take(50), None, "the gap is 40 wide");
        assert_eq!(space.take(10), Some(0));
        assert_eq!(space.take(30), Some(10));
        space.free(40);
        space.free(80);
        assert_eq!(space.used(), 40);
        assert_eq!(space.take(60), Some(40), "freed neighbours make one gap");
    }
}
