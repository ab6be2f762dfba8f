//! Bounded in-memory caches and the hashes they (and the store) use.
//!
//! [`TwoGen`] is a cheap approximation of LRU: entries live in a young map
//! until it holds half the capacity; then the young map becomes the old one
//! (dropping the previous old map) and a hit in the old map moves the entry
//! back to the young one. Memory stays bounded by the capacity, and entries
//! in use survive.
//!
//! [`stable_hash`] is stored on disk (it indexes dictionary entries by
//! content), so it must never change; [`FastBuild`]'s hasher only lives in memory,
//! for the writer's content caches and the query's merge loop, the two hot
//! paths.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};

pub(crate) use scorch_formats::fast_hash::FastBuild;

/// FNV-1a, 64 bits: the content hash stored with dictionary entries.
pub(crate) fn stable_hash(bytes: &[u8]) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

/// A map from dictionary ids.
pub(crate) type IdMap<V> = HashMap<i64, V, FastBuild>;

/// 128-bit fingerprints of content: two SipHash-1-3 with independent random
/// keys. The writer's caches are keyed by fingerprint rather than by the
/// content itself, so a lookup is one probe of a compact table with no key
/// to fetch and compare; with 128 bits and secret keys, two different
/// entries sharing one is not a practical possibility.
#[derive(Clone)]
pub(crate) struct FingerprintKeys(RandomState, RandomState);

impl FingerprintKeys {
    /// Fresh random keys.
    pub(crate) fn new() -> Self {
        Self(RandomState::new(), RandomState::new())
    }

    /// The fingerprint of a byte string.
    pub(crate) fn of(&self, bytes: &[u8]) -> u128 {
        let high = self.0.hash_one(bytes);
        let low = self.1.hash_one(bytes);
        (u128::from(high) << 64) | u128::from(low)
    }
}

/// A bounded cache that keeps recently used entries (see the module docs).
pub(crate) struct TwoGen<K, V> {
    young: HashMap<K, V, FastBuild>,
    old: HashMap<K, V, FastBuild>,
    half: usize,
}

impl<K: Hash + Eq, V> TwoGen<K, V> {
    /// A cache holding at most `capacity` entries (at least 2).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            young: HashMap::default(),
            old: HashMap::default(),
            half: (capacity / 2).max(1),
        }
    }

    /// The entry for `key`, refreshed as recently used.
    pub(crate) fn get<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        if let Some(value) = self.young.get(key) {
            return Some(value.clone());
        }
        let (key, value) = self.old.remove_entry(key)?;
        self.insert(key, value.clone());
        Some(value)
    }

    /// Inserts an entry, making room by aging the young map when full.
    pub(crate) fn insert(&mut self, key: K, value: V) {
        if self.young.len() >= self.half && !self.young.contains_key(&key) {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, value);
    }

    /// Makes room for `additional` inserts without growing the young map
    /// step by step (as many as fit before it ages).
    pub(crate) fn reserve(&mut self, additional: usize) {
        let room = self.half.saturating_sub(self.young.len());
        self.young.reserve(additional.min(room));
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.young.clear();
        self.old.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_gen_stays_bounded_and_keeps_what_is_used() {
        let mut cache: TwoGen<u32, u32> = TwoGen::new(100);
        cache.insert(0, 0);
        for i in 1..10_000 {
            cache.insert(i, i);
            // Entry 0 is used all the time, so it survives.
            assert_eq!(cache.get(&0), Some(0));
            assert!(cache.young.len() + cache.old.len() <= 100);
        }
        assert!(cache.get(&1).is_none());
        cache.clear();
        assert!(cache.get(&0).is_none());
    }

    #[test]
    fn stable_hash_is_fnv1a() {
        // Published FNV-1a 64 test vectors: these values are on disk.
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325u64 as i64);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8cu64 as i64);
    }
}
