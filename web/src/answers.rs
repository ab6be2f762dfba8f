//! The answer cache: flame trees already built, kept for the next request
//! that asks for the same windows.
//!
//! A tree is keyed by its query (range and label filters) and by the
//! [`WindowSet`] it was merged from, so a window written into (or deleted
//! from) the range makes the entry unreachable: the next request sees a
//! different window set, builds anew and the stale entry ages out. Memory
//! is bounded by the estimated size of the trees held; the least recently
//! used go first. A tree larger than the whole budget is not kept.

use std::sync::{Arc, Mutex};

use scorch_formats::flame::FlameTree;
use scorch_formats::Measure;
use scorch_store::WindowSet;

/// The default memory budget: a few of the largest trees the page handles
/// (the 125k-node test fixture takes about 13 MiB).
pub const DEFAULT_ANSWER_CACHE_BYTES: u64 = 64 << 20;

/// What a tree answers: the query and the windows it read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AnswerKey {
    /// Range start, ns since the Unix epoch.
    pub from: u64,
    /// Range end, ns since the Unix epoch.
    pub until: u64,
    /// Label filters, sorted (their order does not change the answer).
    pub labels: Vec<(String, String)>,
    /// The windows the tree was merged from.
    pub windows: WindowSet,
    /// What the tree's counts measure (on-CPU unless set): trees of
    /// different measures never answer for each other.
    pub measure: Measure,
}

impl AnswerKey {
    /// The key of a query over `windows`.
    pub fn new(from: u64, until: u64, labels: &[(String, String)], windows: WindowSet) -> Self {
        let mut labels = labels.to_vec();
        labels.sort();
        labels.dedup();
        Self {
            from,
            until,
            labels,
            windows,
            measure: Measure::OnCpuSamples,
        }
    }
}

struct Entry {
    key: AnswerKey,
    tree: Arc<FlameTree>,
    bytes: u64,
    last_used: u64,
}

struct Entries {
    list: Vec<Entry>,
    bytes: u64,
    clock: u64,
}

/// Built trees, at most `max_bytes` of them (estimated).
pub struct AnswerCache {
    max_bytes: u64,
    entries: Mutex<Entries>,
}

impl AnswerCache {
    /// An empty cache holding at most `max_bytes` (0 turns it off).
    pub fn new(max_bytes: u64) -> Self {
        Self {
            max_bytes,
            entries: Mutex::new(Entries {
                list: Vec::new(),
                bytes: 0,
                clock: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The tree for `key`, if held; marks it recently used.
    pub fn get(&self, key: &AnswerKey) -> Option<Arc<FlameTree>> {
        let mut entries = self.lock();
        entries.clock += 1;
        let now = entries.clock;
        let entry = entries.list.iter_mut().find(|e| &e.key == key)?;
        entry.last_used = now;
        Some(Arc::clone(&entry.tree))
    }

    /// Keeps `tree` for `key`, evicting the least recently used trees to
    /// stay within the budget.
    pub fn insert(&self, key: AnswerKey, tree: Arc<FlameTree>) {
        let bytes = tree_bytes(&tree);
        if bytes > self.max_bytes {
            return;
        }
        let mut entries = self.lock();
        if let Some(i) = entries.list.iter().position(|e| e.key == key) {
            let old = entries.list.swap_remove(i);
            entries.bytes -= old.bytes;
        }
        while entries.bytes + bytes > self.max_bytes {
            let Some(oldest) = (0..entries.list.len()).min_by_key(|&i| entries.list[i].last_used)
            else {
                break;
            };
            let old = entries.list.swap_remove(oldest);
            entries.bytes -= old.bytes;
        }
        entries.clock += 1;
        let last_used = entries.clock;
        entries.bytes += bytes;
        entries.list.push(Entry {
            key,
            tree,
            bytes,
            last_used,
        });
    }

    /// Estimated bytes held.
    #[cfg(test)]
    fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    /// Trees held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().list.len()
    }
}

/// The memory a tree takes in the cache, as the cache counts it against its
/// budget (an estimate: its names and its node arrays).
pub fn tree_bytes(tree: &FlameTree) -> u64 {
    let names: usize = tree
        .names
        .iter()
        .map(|n| n.capacity() + std::mem::size_of::<String>())
        .sum();
    let nodes = &tree.nodes;
    let arrays = nodes.name.capacity() * 4
        + nodes.parent.capacity() * 8
        + nodes.self_count.capacity() * 8
        + nodes.total.capacity() * 8
        + nodes.kind.capacity();
    (names + arrays + std::mem::size_of::<FlameTree>()) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use scorch_formats::flame::Nodes;

    fn tree(names: usize) -> Arc<FlameTree> {
        Arc::new(FlameTree {
            names: (0..names).map(|i| format!("function_{i:06}")).collect(),
            nodes: Nodes {
                name: vec![0; names],
                parent: vec![-1; names],
                self_count: vec![0; names],
                total: vec![0; names],
                kind: vec![0; names],
            },
            ..FlameTree::default()
        })
    }

    fn key(from: u64, newest_id: i64) -> AnswerKey {
        AnswerKey::new(
            from,
            from + 10,
            &[],
            WindowSet {
                windows: 1,
                newest_id,
            },
        )
    }

    #[test]
    fn holds_trees_by_query_and_window_set() {
        let cache = AnswerCache::new(1 << 20);
        let t = tree(10);
        cache.insert(key(0, 1), Arc::clone(&t));
        assert!(Arc::ptr_eq(&cache.get(&key(0, 1)).unwrap(), &t));
        // Another window set (a window written) or another range: no answer.
        assert!(cache.get(&key(0, 2)).is_none());
        assert!(cache.get(&key(5, 1)).is_none());
        // Another measure: no answer, whatever else matches.
        let off_cpu = AnswerKey {
            measure: Measure::OffCpuNanoseconds,
            ..key(0, 1)
        };
        assert!(cache.get(&off_cpu).is_none());
        // The order of label filters does not matter.
        let w = WindowSet {
            windows: 1,
            newest_id: 1,
        };
        let ab = [("a".into(), "1".into()), ("b".into(), "2".into())];
        let ba = [("b".into(), "2".into()), ("a".into(), "1".into())];
        cache.insert(AnswerKey::new(0, 10, &ab, w), tree(1));
        assert!(cache.get(&AnswerKey::new(0, 10, &ba, w)).is_some());
    }

    #[test]
    fn stays_within_its_budget_dropping_the_least_recently_used() {
        let one = tree_bytes(&tree(100));
        let cache = AnswerCache::new(one * 3 + one / 2);
        for i in 0..3 {
            cache.insert(key(i, 1), tree(100));
        }
        assert_eq!(cache.len(), 3);
        // Use the oldest, then add a fourth: the second-oldest goes.
        assert!(cache.get(&key(0, 1)).is_some());
        cache.insert(key(3, 1), tree(100));
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&key(0, 1)).is_some());
        assert!(cache.get(&key(1, 1)).is_none());
        assert!(cache.bytes() <= one * 3 + one / 2);
        // Many more: never over budget.
        for i in 10..100 {
            cache.insert(key(i, 1), tree(100 + i as usize));
            assert!(cache.bytes() <= one * 3 + one / 2, "over budget at {i}");
        }
        // A tree larger than the budget is not kept; the rest stays.
        let held = cache.len();
        cache.insert(key(500, 1), tree(1000));
        assert!(cache.get(&key(500, 1)).is_none());
        assert_eq!(cache.len(), held);
        // Budget 0: off.
        let off = AnswerCache::new(0);
        off.insert(key(0, 1), tree(1));
        assert_eq!((off.len(), off.bytes()), (0, 0));
    }
}
