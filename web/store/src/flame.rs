//! The page's flame tree, built straight from the dictionaries.
//!
//! [`FlameTree::from_profile`] over a materialised [`Profile`] gives the
//! same tree, but goes through a string per frame name and a location per
//! frame of every sample first. Here each dictionary level is resolved once
//! ([`Chain`], as for `materialise`) and the tree is built from the ids.
//! What the tree does not show (source files, build ids, pids) is not read
//! at all.
//!
//! Three steps. Every sample's path (its command, then its frames root
//! first) is written with names still pending: a string id, or the
//! location of an unsymbolized address; meanwhile the query's thread reads
//! the strings from the dictionary, as the two need nothing of each other.
//! Then the pending names are interned by content in first-use order, and
//! the paths renamed. Last, the paths are sorted, so paths sharing a prefix
//! are neighbours, and the tree is made by walking them in that order: a
//! path's nodes are those of the path before it up to where the two differ,
//! then new ones, so no node is looked up by (parent, name) at all.
//!
//! The result is byte for byte the tree `from_profile` builds: names are
//! numbered in first-use order, samples come in trace id order, and
//! siblings are ordered the same way (see [`Tree::pre_order`]).
//!
//! The first paint's pruned tree ([`pruned_tree`]) writes the same paths,
//! but keys their names instead of reading them, and reads only the names
//! of the nodes that stay.
//!
//! [`Profile`]: scorch_formats::Profile

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use rusqlite::Transaction;
use scorch_formats::flame::{FlameMeta, FlameTree, NodeKind, Nodes};
use scorch_formats::model::UNKNOWN;
use scorch_formats::{Mapping, Meta};

use crate::cache::{FastBuild, IdMap};
use crate::codec::{LocationEntry, MappingEntry, StackRef, TraceEntry};
use crate::dict::{self, DictCache};
use crate::error::Error;
use crate::resolved::{Chain, Detail, Resolved};

mod pruned;

pub(crate) use pruned::pruned_tree;

/// The flame tree of `(trace id, count)` pairs (sorted by id), covering
/// `from..until`.
pub(crate) fn tree(
    tx: &Transaction<'_>,
    cache: &mut DictCache,
    traces: &[(i64, u64)],
    meta: &Meta,
    (from, until): (u64, u64),
) -> Result<FlameTree, Error> {
    let chain = Chain::resolve(tx, cache, traces, Detail::Names)?;
    let write_paths = || Paths::of(&chain, traces);
    let resolve_strings = |strings| dict::resolve_strings(tx, strings, chain.string_ids());
    let (paths, strings) = std::thread::scope(|scope| {
        let writer = std::thread::Builder::new()
            .name("scorch-paths".into())
            .spawn_scoped(scope, write_paths);
        match writer {
            Ok(writer) => {
                let strings = resolve_strings(&mut cache.strings);
                let paths = writer
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (paths, strings)
            }
            // No thread to be had (a process at its limit): one after the other.
            Err(_) => (write_paths(), resolve_strings(&mut cache.strings)),
        }
    });
    let strings = strings?;
    let names = Names::of(&paths.pending, &chain, &strings);
    let nodes = paths.into_nodes(&names.index);
    Ok(FlameTree {
        meta: flame_meta(&nodes, meta, (from, until), 0),
        names: names.names,
        nodes,
    })
}

/// The tree's meta: its range, samples (the root's total), sampling period
/// and the nodes left out of it.
fn flame_meta(nodes: &Nodes, meta: &Meta, (from, until): (u64, u64), pruned: u64) -> FlameMeta {
    FlameMeta {
        from,
        until,
        samples: nodes.total.first().copied().unwrap_or(0),
        period_ns: meta.period_ns(),
        pruned,
    }
}

/// A location not named yet, in [`Paths::location_frames`].
const UNNAMED: (u32, u32) = (u32::MAX, 0);

/// A frame of a path as one sortable word: name index, then kind.
type Frame = u64;

fn frame(name: u32, kind: NodeKind) -> Frame {
    (u64::from(name) << 8) | kind as u64
}

fn name_of(frame: Frame) -> u32 {
    (frame >> 8) as u32
}

fn kind_of(frame: Frame) -> NodeKind {
    match frame & 0xff {
        1 => NodeKind::Kernel,
        2 => NodeKind::Jit,
        3 => NodeKind::Process,
        4 => NodeKind::Pruned,
        _ => NodeKind::User,
    }
}

/// A name before the strings are read.
enum Pending {
    /// A literal name (the root's, `[unknown]`).
    Literal(&'static str),
    /// A dictionary string.
    String(i64),
    /// The `module+0xoffset` name of an unsymbolized location, by its
    /// position in the chain's locations.
    Offset(usize),
}

/// Each string id's index in [`Paths::pending`]: in an array over the span
/// of the string ids a chain names when they are compact (the usual case:
/// ids are handed out in order), else in a map.
enum StringSlots {
    Dense { first: i64, index: Vec<u32> },
    Sparse(IdMap<u32>),
}

/// A string not named yet, in [`StringSlots::Dense`].
const NO_SLOT: u32 = u32::MAX;

impl StringSlots {
    /// Slots for the strings a tree of `chain` names: commands, functions.
    fn for_chain(chain: &Chain) -> Self {
        let (mut first, mut last, mut lines) = (i64::MAX, i64::MIN, 1i64);
        for trace in chain.traces.values() {
            (first, last) = (first.min(trace.comm), last.max(trace.comm));
        }
        for line in chain.locations.values().iter().flat_map(|l| l.lines.iter()) {
            let id = line.function;
            (first, last, lines) = (first.min(id), last.max(id), lines + 1);
        }
        // Up to 16 MiB, and eight slots per line (commands are few).
        match last.checked_sub(first) {
            Some(span) if span < 1 << 22 && span < lines.saturating_mul(8) => StringSlots::Dense {
                first,
                index: vec![NO_SLOT; span as usize + 1],
            },
            _ => StringSlots::Sparse(IdMap::default()),
        }
    }

    /// The index of string `id`, which becomes `next` if it has none yet.
    fn get_or_insert(&mut self, id: i64, next: u32) -> u32 {
        let slot = match self {
            StringSlots::Dense { first, index } => {
                match usize::try_from(id.wrapping_sub(*first))
                    .ok()
                    .and_then(|at| index.get_mut(at))
                {
                    Some(slot) => slot,
                    // Outside the span (no string the chain names): a name
                    // of its own, merged with its equals when names are
                    // numbered.
                    None => return next,
                }
            }
            StringSlots::Sparse(map) => map.entry(id).or_insert(next),
        };
        if *slot == NO_SLOT {
            *slot = next;
        }
        *slot
    }
}

/// Every sample's path, named with [`Pending`] indices.
struct Paths {
    /// Pending names, in first-use order; 0 is the root's.
    pending: Vec<Pending>,
    /// Each string id's index in `pending`.
    string_pending: StringSlots,
    /// Where each location's frames are in `frames`, root-most first, by
    /// the location's position in the chain: (start, length); [`UNNAMED`]
    /// until its first use.
    location_frames: Vec<(u32, u32)>,
    frames: Vec<Frame>,
    /// Every path's frames, one after the other.
    path_frames: Vec<Frame>,
    /// Each path: where its frames start in `path_frames`, and its count.
    paths: Vec<(usize, u64)>,
}

impl Paths {
    /// The paths of `traces`, in trace order, so pending names come in
    /// first-use order.
    fn of(chain: &Chain, traces: &[(i64, u64)]) -> Self {
        let locations = chain.locations.len();
        let mut paths = Paths {
            pending: Vec::with_capacity(locations + 1),
            string_pending: StringSlots::for_chain(chain),
            location_frames: vec![UNNAMED; locations],
            frames: Vec::with_capacity(locations),
            path_frames: Vec::new(),
            paths: Vec::with_capacity(traces.len()),
        };
        paths.pending.push(Pending::Literal("all"));
        for &(id, count) in traces {
            if let Some(trace) = chain.traces.get(id) {
                paths.add(chain, trace, count);
            }
        }
        paths
    }

    /// The pending name of string `id`.
    fn string(&mut self, id: i64) -> u32 {
        let next = self.pending.len() as u32;
        let index = self.string_pending.get_or_insert(id, next);
        if index == next {
            self.pending.push(Pending::String(id));
        }
        index
    }

    /// A pending name of its own.
    fn other(&mut self, name: Pending) -> u32 {
        self.pending.push(name);
        self.pending.len() as u32 - 1
    }

    /// Adds one trace's path: command, user frames, kernel frames.
    fn add(&mut self, chain: &Chain, trace: &TraceEntry, count: u64) {
        self.paths.push((self.path_frames.len(), count));
        let comm = self.string(trace.comm);
        self.path_frames.push(frame(comm, NodeKind::Process));
        for stack in [trace.user, trace.kernel] {
            let StackRef::Frames(id) = stack else {
                continue;
            };
            let locations = chain.stacks.get(id).map_or(&[][..], |s| s);
            for &location in locations.iter().rev() {
                let (start, len) = self.frames_of(chain, location);
                self.path_frames
                    .extend_from_slice(&self.frames[start..start + len]);
            }
        }
    }

    /// Where the frames of location `id` are in `frames`, named on first
    /// use; a location not resolved (which `Chain::resolve` rules out) is
    /// `[unknown]`.
    fn frames_of(&mut self, chain: &Chain, id: i64) -> (usize, usize) {
        let Some(at) = chain.locations.position(id) else {
            let name = self.other(Pending::Literal(UNKNOWN));
            self.frames.push(frame(name, NodeKind::User));
            return (self.frames.len() - 1, 1);
        };
        if self.location_frames[at] != UNNAMED {
            let (start, len) = self.location_frames[at];
            return (start as usize, len as usize);
        }
        let start = self.frames.len();
        let location = chain.locations.at(at);
        let kind = location.kind.into();
        if location.lines.is_empty() {
            let name = self.other(Pending::Offset(at));
            self.frames.push(frame(name, kind));
        }
        // Outermost first: the caller, then what was inlined into it.
        for line in location.lines.iter().rev() {
            let name = self.string(line.function);
            self.frames.push(frame(name, kind));
        }
        let len = self.frames.len() - start;
        self.location_frames[at] = (start as u32, len as u32);
        (start, len)
    }

    /// The frames of path `i`.
    fn path(&self, i: usize) -> &[Frame] {
        let start = self.paths[i].0;
        let end = self
            .paths
            .get(i + 1)
            .map_or(self.path_frames.len(), |p| p.0);
        &self.path_frames[start..end]
    }

    /// The nodes in pre-order, each pending name `i` renamed `index[i]`:
    /// paths renamed, sorted and walked (see the module docs).
    fn into_nodes(mut self, index: &[u32]) -> Nodes {
        for f in &mut self.path_frames {
            *f = frame(index[name_of(*f) as usize], kind_of(*f));
        }
        let mut order: Vec<usize> = (0..self.paths.len()).collect();
        order.sort_unstable_by(|&a, &b| self.path(a).cmp(self.path(b)));
        let mut tree = Tree::new(self.path_frames.len() + 1);
        // The nodes of the previous path, below the root.
        let mut at: Vec<u32> = Vec::new();
        let mut previous: &[Frame] = &[];
        for i in order {
            let path = self.path(i);
            let count = self.paths[i].1;
            let shared = previous
                .iter()
                .zip(path)
                .take_while(|(a, b)| a == b)
                .count();
            at.truncate(shared);
            for &f in &path[shared..] {
                let parent = at.last().copied().unwrap_or(0);
                at.push(tree.node(parent, f));
            }
            tree.total[0] += count;
            for &node in &at {
                tree.total[node as usize] += count;
            }
            tree.self_count[at.last().copied().unwrap_or(0) as usize] += count;
            previous = path;
        }
        tree.pre_order()
    }
}

/// The names of a tree, each once, in first-use order.
struct Names {
    names: Vec<Arc<str>>,
    /// Each pending name's index in `names`.
    index: Vec<u32>,
}

impl Names {
    /// The pending names interned by content.
    fn of(pending: &[Pending], chain: &Chain, strings: &Resolved<Arc<str>>) -> Self {
        let string = |id: i64| -> &str { strings.get(id).map_or(UNKNOWN, |s| s) };
        let contents: Vec<Arc<str>> = pending
            .iter()
            .map(|name| match name {
                Pending::Literal(s) => Arc::from(*s),
                Pending::String(id) => strings
                    .get(*id)
                    .map_or_else(|| Arc::from(UNKNOWN), Arc::clone),
                Pending::Offset(at) => Arc::from(offset_name(
                    chain.locations.at(*at),
                    &chain.mappings,
                    string,
                )),
            })
            .collect();
        let (index, firsts) = numbered(contents.iter());
        let names = firsts
            .into_iter()
            .map(|at| Arc::clone(&contents[at]))
            .collect();
        Names { names, index }
    }
}

/// Numbers `keys` in first-use order, equal keys alike: each key's number,
/// and where each number was first used.
fn numbered<K: Hash + Eq>(keys: impl ExactSizeIterator<Item = K>) -> (Vec<u32>, Vec<usize>) {
    let mut numbers: HashMap<K, u32, FastBuild> =
        HashMap::with_capacity_and_hasher(keys.len(), FastBuild::default());
    let mut index = Vec::with_capacity(keys.len());
    let mut firsts = Vec::new();
    for (at, key) in keys.enumerate() {
        let next = firsts.len() as u32;
        let number = *numbers.entry(key).or_insert(next);
        if number == next {
            firsts.push(at);
        }
        index.push(number);
    }
    (index, firsts)
}

/// How an unsymbolized location is named: `module+0xoffset` in its
/// mapping, else `[unknown]` (as `Profile::location_name` names it).
fn offset_name<'s>(
    location: &LocationEntry,
    mappings: &Resolved<MappingEntry>,
    string: impl Fn(i64) -> &'s str,
) -> String {
    let Some(id) = location.mapping else {
        return UNKNOWN.to_string();
    };
    let mapping = match mappings.get(id) {
        Some(m) => Mapping {
            start: m.start,
            limit: m.limit,
            offset: m.offset,
            file: string(m.file).to_string(),
            build_id: None,
        },
        None => Mapping {
            start: 0,
            limit: 0,
            offset: 0,
            file: UNKNOWN.to_string(),
            build_id: None,
        },
    };
    mapping.offset_name(location.address)
}

/// The nodes as made, in flat arrays; 0 is the root.
struct Tree {
    frame: Vec<Frame>,
    parent: Vec<u32>,
    self_count: Vec<u64>,
    total: Vec<u64>,
}

impl Tree {
    fn new(capacity: usize) -> Self {
        let mut tree = Tree {
            frame: Vec::with_capacity(capacity),
            parent: Vec::with_capacity(capacity),
            self_count: Vec::with_capacity(capacity),
            total: Vec::with_capacity(capacity),
        };
        tree.node(0, frame(0, NodeKind::Process));
        tree
    }

    /// A new node under `parent`.
    fn node(&mut self, parent: u32, frame: Frame) -> u32 {
        self.frame.push(frame);
        self.parent.push(parent);
        self.self_count.push(0);
        self.total.push(0);
        self.frame.len() as u32 - 1
    }

    /// The nodes in pre-order ([`Nodes::in_pre_order`]).
    fn pre_order(self) -> Nodes {
        Nodes::in_pre_order(
            &self.parent,
            &self.self_count,
            &self.total,
            |at| name_of(self.frame[at]),
            |at| kind_of(self.frame[at]) as u8,
        )
    }
}
