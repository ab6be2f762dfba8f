//! The answer cache: flame trees already built, kept for the next request
//! that asks for the same windows.
//!
//! A tree is keyed by its query (range, label filters, measure), by the
//! share it was pruned to (a pruned first paint is kept apart from the
//! whole tree) and by the [`WindowSet`] it was merged from, so a window
//! written into (or deleted from) the range makes the entry unreachable:
//! the next request sees a different window set, builds anew and the stale
//! entry ages out. Memory
//! is bounded by the estimated size of the trees held; the least recently
//! used go first. A tree larger than the whole budget is not kept.
//!
//! A tree is built once however many requests ask for it at the same time:
//! the first builds, the others wait for its tree (see
//! [`AnswerCache::answer`]). If that build fails, each waiter tries again.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

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
    /// For a pruned tree, the bits of its `min_share`; `None` for the
    /// whole tree.
    pub pruned_to: Option<u64>,
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
            pruned_to: None,
        }
    }

    /// The key of this tree pruned to `min_share`.
    pub fn pruned(&self, min_share: f64) -> Self {
        Self {
            pruned_to: Some(min_share.to_bits()),
            ..self.clone()
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
    /// Trees being built, by the key they were asked for.
    building: HashMap<AnswerKey, Arc<Building>>,
}

impl Entries {
    /// The tree for `key`, if held; marks it recently used.
    fn get(&mut self, key: &AnswerKey) -> Option<Arc<FlameTree>> {
        self.clock += 1;
        let now = self.clock;
        let entry = self.list.iter_mut().find(|e| &e.key == key)?;
        entry.last_used = now;
        Some(Arc::clone(&entry.tree))
    }
}

/// Where an answer's tree came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The cache held it.
    Hit,
    /// This request built it.
    Built,
    /// Another request was building it; this one waited for it.
    Shared,
}

/// A build in progress, which requests for the same key wait for.
#[derive(Default)]
struct Building {
    /// `None` while running; then the tree, or `None` if the build failed.
    outcome: Mutex<Option<Option<Arc<FlameTree>>>>,
    done: Condvar,
}

impl Building {
    /// Blocks until the build ends: its tree, or `None` if it failed.
    fn wait(&self) -> Option<Arc<FlameTree>> {
        let mut outcome = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(tree) = &*outcome {
                return tree.clone();
            }
            outcome = self.done.wait(outcome).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Ends a build when dropped (also when the build fails or panics): the
/// key is no longer being built and the waiters are woken with `tree`.
struct Finish<'a> {
    cache: &'a AnswerCache,
    key: &'a AnswerKey,
    building: Arc<Building>,
    tree: Option<Arc<FlameTree>>,
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.cache.lock().building.remove(self.key);
        let mut outcome = self
            .building
            .outcome
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *outcome = Some(self.tree.take());
        self.building.done.notify_all();
    }
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
                building: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The tree for `key`, if held; marks it recently used.
    pub fn get(&self, key: &AnswerKey) -> Option<Arc<FlameTree>> {
        self.lock().get(key)
    }

    /// Requests waiting for the build of `key`.
    #[cfg(test)]
    fn waiting(&self, key: &AnswerKey) -> usize {
        self.lock()
            .building
            .get(key)
            .map_or(0, |b| Arc::strong_count(b) - 2)
    }

    /// The tree for `key`: from the cache, else from the build of another
    /// request for the same key running now, else from `build`, which
    /// returns the tree and the key of the windows it actually read (kept
    /// under that key). Blocks while another request builds the tree.
    pub fn answer<E>(
        &self,
        key: &AnswerKey,
        build: impl FnOnce() -> Result<(AnswerKey, Arc<FlameTree>), E>,
    ) -> Result<(Arc<FlameTree>, Source), E> {
        let building = loop {
            let pending = {
                let mut entries = self.lock();
                if let Some(tree) = entries.get(key) {
                    return Ok((tree, Source::Hit));
                }
                match entries.building.get(key) {
                    Some(pending) => Arc::clone(pending),
                    None => {
                        let building = Arc::new(Building::default());
                        entries.building.insert(key.clone(), Arc::clone(&building));
                        break building;
                    }
                }
            };
            if let Some(tree) = pending.wait() {
                return Ok((tree, Source::Shared));
            }
            // That build failed: try again, maybe building it here.
        };
        let mut finish = Finish {
            cache: self,
            key,
            building,
            tree: None,
        };
        let (built_key, tree) = build()?;
        // Kept before the build ends, so a request never finds neither.
        self.insert(built_key, Arc::clone(&tree));
        finish.tree = Some(Arc::clone(&tree));
        Ok((tree, Source::Built))
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
        .map(|n| n.len() + std::mem::size_of::<Arc<str>>() + 2 * std::mem::size_of::<usize>())
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::thread;

    fn tree(names: usize) -> Arc<FlameTree> {
        Arc::new(FlameTree {
            names: (0..names)
                .map(|i| Arc::from(format!("function_{i:06}")))
                .collect(),
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

    /// Runs `answer` for `key` on another thread with a build that waits
    /// for `release` before returning `tree`, counting builds in `builds`.
    fn answer_on_thread(
        cache: &Arc<AnswerCache>,
        key: AnswerKey,
        builds: &Arc<AtomicUsize>,
        release: mpsc::Receiver<Option<Arc<FlameTree>>>,
    ) -> thread::JoinHandle<Result<(Arc<FlameTree>, Source), String>> {
        let (cache, builds) = (Arc::clone(cache), Arc::clone(builds));
        thread::spawn(move || {
            cache.answer(&key.clone(), || {
                builds.fetch_add(1, Ordering::SeqCst);
                match release.recv().unwrap() {
                    Some(tree) => Ok((key, tree)),
                    None => Err("the build failed".to_string()),
                }
            })
        })
    }

    /// Waits (without a deadline that a slow machine could miss) until
    /// `n` requests wait for the build of `key`.
    fn until_waiting(cache: &AnswerCache, key: &AnswerKey, n: usize) {
        while cache.waiting(key) < n {
            thread::yield_now();
        }
    }

    #[test]
    fn concurrent_requests_for_one_key_build_once() {
        let cache = Arc::new(AnswerCache::new(1 << 20));
        let builds = Arc::new(AtomicUsize::new(0));
        let (release_first, first_rx) = mpsc::channel();
        let (_release_second, second_rx) = mpsc::channel();
        let first = answer_on_thread(&cache, key(0, 1), &builds, first_rx);
        while builds.load(Ordering::SeqCst) == 0 {
            thread::yield_now();
        }
        // The second request arrives while the first is building.
        let second = answer_on_thread(&cache, key(0, 1), &builds, second_rx);
        until_waiting(&cache, &key(0, 1), 1);
        let t = tree(10);
        release_first.send(Some(Arc::clone(&t))).unwrap();
        let (a, source_a) = first.join().unwrap().unwrap();
        let (b, source_b) = second.join().unwrap().unwrap();
        assert_eq!(builds.load(Ordering::SeqCst), 1, "built once");
        assert_eq!((source_a, source_b), (Source::Built, Source::Shared));
        assert!(Arc::ptr_eq(&a, &t) && Arc::ptr_eq(&b, &t));
        // And kept: the next request is a hit.
        let (c, source) = cache
            .answer(&key(0, 1), || Err::<(AnswerKey, _), _>("not built"))
            .unwrap();
        assert_eq!(source, Source::Hit);
        assert!(Arc::ptr_eq(&c, &t));
        // Another key is built on its own.
        let (_, source) = cache
            .answer(&key(1, 1), || Ok::<_, String>((key(1, 1), tree(1))))
            .unwrap();
        assert_eq!(source, Source::Built);
        assert_eq!(cache.waiting(&key(0, 1)), 0, "no build left behind");
    }

    #[test]
    fn a_failed_build_lets_a_waiting_request_build_instead() {
        // Cache off: waiters get the tree from the build, not the cache.
        let cache = Arc::new(AnswerCache::new(0));
        let builds = Arc::new(AtomicUsize::new(0));
        let (release_first, first_rx) = mpsc::channel();
        let (release_second, second_rx) = mpsc::channel();
        let first = answer_on_thread(&cache, key(0, 1), &builds, first_rx);
        while builds.load(Ordering::SeqCst) == 0 {
            thread::yield_now();
        }
        let second = answer_on_thread(&cache, key(0, 1), &builds, second_rx);
        until_waiting(&cache, &key(0, 1), 1);
        release_first.send(None).unwrap();
        assert_eq!(first.join().unwrap().unwrap_err(), "the build failed");
        let t = tree(3);
        release_second.send(Some(Arc::clone(&t))).unwrap();
        let (b, source) = second.join().unwrap().unwrap();
        assert_eq!(source, Source::Built);
        assert!(Arc::ptr_eq(&b, &t));
        assert_eq!(builds.load(Ordering::SeqCst), 2);
        assert_eq!(cache.len(), 0, "budget 0 keeps nothing");
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
