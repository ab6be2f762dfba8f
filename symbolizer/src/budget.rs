//! The memory ceiling of the symbolizer's caches, and which entries go
//! first when it is crossed.
//!
//! Every cached entry (a process snapshot, a parsed file, a resolved
//! address) has an estimated size and the tick of its last use. When the
//! total passes the ceiling, the least recently used entries of every kind
//! are evicted together until the total is an eighth below the ceiling, so
//! that a cache hovering at the ceiling does not evict on every call.

/// One cached entry that may be evicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry<K> {
    /// What to evict.
    pub(crate) key: K,
    /// Its estimated size.
    pub(crate) bytes: u64,
    /// When it was last used; smaller is older.
    pub(crate) last_used: u64,
}

/// The level eviction brings the total down to, below `limit`.
pub(crate) fn low_water(limit: u64) -> u64 {
    limit - limit / 8
}

/// The entries to evict, oldest first, for `used` bytes to fit under
/// `limit`: none while `used` is within it.
pub(crate) fn victims<K>(mut entries: Vec<Entry<K>>, used: u64, limit: u64) -> Vec<K> {
    if used <= limit {
        return Vec::new();
    }
    let mut excess = used - low_water(limit);
    entries.sort_by_key(|e| e.last_used);
    let mut keys = Vec::new();
    for entry in entries {
        if excess == 0 {
            break;
        }
        excess = excess.saturating_sub(entry.bytes);
        keys.push(entry.key);
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: char, bytes: u64, last_used: u64) -> Entry<char> {
        Entry {
            key,
            bytes,
            last_used,
        }
    }

    #[test]
    fn nothing_is_evicted_within_the_limit() {
        let entries = vec![entry('a', 50, 1), entry('b', 50, 2)];
        assert!(victims(entries, 100, 100).is_empty());
    }

    #[test]
    fn the_least_recently_used_go_first_down_to_the_low_water_mark() {
        let entries = vec![
            entry('c', 30, 3),
            entry('a', 30, 1),
            entry('d', 30, 4),
            entry('b', 30, 2),
        ];
        // 120 used, limit 100, low water 88: 32 bytes must go, so a and b.
        assert_eq!(victims(entries, 120, 100), vec!['a', 'b']);
    }

    #[test]
    fn one_large_entry_may_be_enough() {
        let entries = vec![entry('s', 1, 5), entry('B', 1000, 1)];
        assert_eq!(victims(entries, 1001, 100), vec!['B']);
    }

    #[test]
    fn everything_goes_when_the_fixed_part_alone_is_over() {
        // `used` includes bytes no entry accounts for (a kernel table).
        let entries = vec![entry('a', 10, 2), entry('b', 10, 1)];
        assert_eq!(victims(entries, 500, 100), vec!['b', 'a']);
    }
}
