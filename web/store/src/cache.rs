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
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};

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

/// Hashes dictionary ids for the readers' caches, which take runs of
/// consecutive ids at a time (ids are handed out in order): the low four
/// bits of an id stay the low bits of its hash, so sixteen neighbours share
/// one group of slots and a run fills memory in order; the rest of the id
/// is mixed, so no pattern of ids piles up in one place.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

/// Builds [`IdHasher`]s.
pub(crate) type IdBuild = BuildHasherDefault<IdHasher>;

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Not used for ids; other keys still hash, without the locality.
        self.0 = self.0.rotate_left(5) ^ FastBuild::default().hash_one(bytes);
    }

    #[inline]
    fn write_i64(&mut self, id: i64) {
        let id = id as u64;
        let block = FastBuild::default().hash_one(id >> 4);
        self.0 = self.0.rotate_left(5) ^ ((block << 4) | (id & 15));
    }
}

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
pub(crate) struct TwoGen<K, V, S = FastBuild> {
    young: HashMap<K, V, S>,
    old: HashMap<K, V, S>,
    half: usize,
}

impl<K: Hash + Eq, V, S: BuildHasher + Default> TwoGen<K, V, S> {
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
    fn id_hashes_keep_neighbours_together_and_spread_strides() {
        let hash = |id: i64| IdBuild::default().hash_one(id);
        // Sixteen neighbours: one block, in order.
        let block = hash(4096) >> 4;
        for id in 4096..4112 {
            assert_eq!((hash(id) >> 4, hash(id) & 15), (block, id as u64 & 15));
        }
        // Ids a power of two apart still land in every group of sixteen
        // slots of a table, with varied tags (the top seven bits).
        for stride in [16i64, 1024, 1 << 20] {
            let groups: std::collections::HashSet<u64> =
                (0..1024).map(|i| (hash(i * stride) >> 4) & 63).collect();
            let tags: std::collections::HashSet<u64> =
                (0..1024).map(|i| hash(i * stride) >> 57).collect();
            assert_eq!(groups.len(), 64, "stride {stride}");
            assert!(tags.len() > 100, "stride {stride}: {} tags", tags.len());
        }
    }

    #[test]
    fn stable_hash_is_fnv1a() {
        // Published FNV-1a 64 test vectors: these values are on disk.
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325u64 as i64);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8cu64 as i64);
    }
}
