//! The page's flame tree, built straight from the dictionaries.
//!
//! [`FlameTree::from_profile`] over a materialised [`Profile`] gives the
//! same tree, but goes through a string per frame name and a location per
//! frame of every sample first. Here each dictionary level is resolved once
//! (as `materialise` does) and the tree is built from the ids: a location's
//! frames are named once, by string id, and a name is copied out of the
//! dictionary only once for the whole tree. What the tree does not show
//! (source files, build ids, pids) is not read at all.
//!
//! The result is byte for byte the tree `from_profile` builds: names are
//! interned by content in first-use order, samples come in trace id order,
//! and children are ordered the same way (see `finish`).
//!
//! [`Profile`]: scorch_formats::Profile

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::Transaction;
use scorch_formats::flame::{FlameMeta, FlameTree, NodeKind, Nodes};
use scorch_formats::model::UNKNOWN;
use scorch_formats::{Mapping, Meta};

use crate::cache::{FastBuild, IdMap};
use crate::codec::{LocationEntry, MappingEntry, StackRef, TraceEntry};
use crate::dict::{self, DictCache, Kind};
use crate::error::Error;
use crate::materialise::Numbering;

/// The flame tree of `(trace id, count)` pairs (sorted by id), covering
/// `from..until`.
pub(crate) fn tree(
    tx: &Transaction<'_>,
    cache: &mut DictCache,
    traces: &[(i64, u64)],
    meta: &Meta,
    (from, until): (u64, u64),
) -> Result<FlameTree, Error> {
    let entries = Entries::resolve(tx, cache, traces)?;
    let mut builder = Builder::new(&entries);
    for &(id, count) in traces {
        if let Some(trace) = entries.traces.get(&id) {
            builder.add(trace, count);
        }
    }
    let (names, nodes) = builder.finish();
    Ok(FlameTree {
        meta: FlameMeta {
            from,
            until,
            samples: nodes.total.first().copied().unwrap_or(0),
            period_ns: meta.period_ns(),
            pruned: 0,
        },
        names,
        nodes,
    })
}

/// The dictionary entries a tree names: traces, their stacks, the
/// locations of those, the mappings of unsymbolized locations, and the
/// strings of commands, functions and those mappings' files.
struct Entries {
    traces: IdMap<TraceEntry>,
    stacks: IdMap<Arc<[i64]>>,
    locations: IdMap<Arc<LocationEntry>>,
    mappings: IdMap<MappingEntry>,
    strings: IdMap<Arc<str>>,
}

impl Entries {
    fn resolve(
        tx: &Transaction<'_>,
        cache: &mut DictCache,
        traces: &[(i64, u64)],
    ) -> Result<Self, Error> {
        let traces: IdMap<TraceEntry> = dict::resolve(
            tx,
            Kind::Trace,
            &mut cache.traces,
            traces.iter().map(|&(id, _)| id),
            TraceEntry::decode,
        )?;
        let stack_ids: Vec<i64> = traces
            .values()
            .flat_map(|t| [t.user, t.kernel])
            .filter_map(|s| match s {
                StackRef::Frames(id) => Some(id),
                _ => None,
            })
            .collect();
        let stacks = dict::resolve(
            tx,
            Kind::Stack,
            &mut cache.stacks,
            stack_ids,
            dict::decode_stack,
        )?;
        let location_ids: Vec<i64> = stacks.values().flat_map(|s| s.iter().copied()).collect();
        let locations = dict::resolve(
            tx,
            Kind::Location,
            &mut cache.locations,
            location_ids,
            dict::decode_location,
        )?;
        let mapping_ids: Vec<i64> = locations
            .values()
            .filter(|l| l.lines.is_empty())
            .filter_map(|l| l.mapping)
            .collect();
        let mappings = dict::resolve(
            tx,
            Kind::Mapping,
            &mut cache.mappings,
            mapping_ids,
            MappingEntry::decode,
        )?;
        let string_ids: Vec<i64> = traces
            .values()
            .map(|t| t.comm)
            .chain(
                locations
                    .values()
                    .flat_map(|l| l.lines.iter().map(|line| line.function)),
            )
            .chain(mappings.values().map(|m| m.file))
            .collect();
        let strings = dict::resolve(
            tx,
            Kind::String,
            &mut cache.strings,
            string_ids,
            dict::decode_string,
        )?;
        Ok(Entries {
            traces,
            stacks,
            locations,
            mappings,
            strings,
        })
    }

    /// The string of `id` (resolved above; `[unknown]` keeps this free of
    /// panics).
    fn string(&self, id: i64) -> &str {
        self.strings.get(&id).map_or(UNKNOWN, |s| s)
    }

    /// How an unsymbolized location is named: `module+0xoffset` in its
    /// mapping, else `[unknown]` (as `Profile::location_name` names it).
    fn offset_name(&self, location: &LocationEntry) -> String {
        let Some(id) = location.mapping else {
            return UNKNOWN.to_string();
        };
        let mapping = match self.mappings.get(&id) {
            Some(m) => Mapping {
                start: m.start,
                limit: m.limit,
                offset: m.offset,
                file: self.string(m.file).to_string(),
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
}

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

/// Builds the tree in two passes. The first, in trace order, names each
/// location's frames on first use (so names are numbered in first-use
/// order) and writes every trace's path: its command, then its frames root
/// first. The second sorts the paths, so paths sharing a prefix are
/// neighbours, and makes the tree by walking them in that order: a path's
/// nodes are those of the path before it up to where the two differ, then
/// new ones. No node is looked up by (parent, name) at all.
struct Builder<'a> {
    entries: &'a Entries,
    names: Vec<Cow<'a, str>>,
    /// Name index by content: what makes two ids of one name one node.
    name_index: HashMap<Cow<'a, str>, u32, FastBuild>,
    /// Name index by string id, in front of `name_index`.
    string_names: IdMap<u32>,
    /// Each named location's slot in `location_frames`, by id.
    location_slot: Numbering,
    /// Where each named location's frames are in `frames`, root-most first:
    /// (start, length).
    location_frames: Vec<(u32, u32)>,
    frames: Vec<Frame>,
    /// Every path's frames, one after the other.
    path_frames: Vec<Frame>,
    /// Each path: where its frames start in `path_frames`, and its count.
    paths: Vec<(usize, u64)>,
}

impl<'a> Builder<'a> {
    fn new(entries: &'a Entries) -> Self {
        // Sized for the usual case, where most locations are one frame with
        // a name of its own.
        let locations = entries.locations.len();
        let mut builder = Builder {
            entries,
            names: Vec::with_capacity(locations + 1),
            name_index: HashMap::with_capacity_and_hasher(locations + 1, FastBuild::default()),
            string_names: IdMap::with_capacity_and_hasher(locations + 1, FastBuild::default()),
            location_slot: Numbering::for_ids(entries.locations.keys().copied()),
            location_frames: Vec::with_capacity(locations),
            frames: Vec::with_capacity(locations),
            path_frames: Vec::new(),
            paths: Vec::with_capacity(entries.traces.len() + 1),
        };
        builder.intern(Cow::Borrowed("all"));
        builder
    }

    fn intern(&mut self, name: Cow<'a, str>) -> u32 {
        if let Some(&i) = self.name_index.get(name.as_ref()) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.clone());
        self.name_index.insert(name, i);
        i
    }

    /// The name index of string `id`.
    fn intern_string(&mut self, id: i64) -> u32 {
        if let Some(&i) = self.string_names.get(&id) {
            return i;
        }
        let entries = self.entries;
        let i = self.intern(Cow::Borrowed(entries.string(id)));
        self.string_names.insert(id, i);
        i
    }

    /// Adds one trace's path: command, user frames, kernel frames.
    fn add(&mut self, trace: &TraceEntry, count: u64) {
        self.paths.push((self.path_frames.len(), count));
        let comm = self.intern_string(trace.comm);
        self.path_frames.push(frame(comm, NodeKind::Process));
        for stack in [trace.user, trace.kernel] {
            let StackRef::Frames(id) = stack else {
                continue;
            };
            let entries = self.entries;
            let locations = entries.stacks.get(&id).map_or(&[][..], |s| s);
            for &location in locations.iter().rev() {
                let (start, len) = self.frames_of(location);
                self.path_frames
                    .extend_from_slice(&self.frames[start..start + len]);
            }
        }
    }

    /// Where the frames of location `id` are in `frames`, named on first
    /// use; a location not resolved is `[unknown]`.
    fn frames_of(&mut self, id: i64) -> (usize, usize) {
        if let Some(slot) = self.location_slot.get(id) {
            let (start, len) = self.location_frames[slot];
            return (start as usize, len as usize);
        }
        let start = self.frames.len();
        let entries = self.entries;
        match entries.locations.get(&id) {
            Some(location) if !location.lines.is_empty() => {
                let kind = location.kind.into();
                // Outermost first: the caller, then what was inlined into it.
                for line in location.lines.iter().rev() {
                    let name = self.intern_string(line.function);
                    self.frames.push(frame(name, kind));
                }
            }
            Some(location) => {
                let name = self.intern(Cow::Owned(entries.offset_name(location)));
                self.frames.push(frame(name, location.kind.into()));
            }
            None => {
                let name = self.intern(Cow::Borrowed(UNKNOWN));
                self.frames.push(frame(name, NodeKind::User));
            }
        }
        let len = self.frames.len() - start;
        self.location_slot.insert(id, self.location_frames.len());
        self.location_frames.push((start as u32, len as u32));
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

    /// The names and the nodes in pre-order, children by descending total
    /// (then by first appearance of their name, then by kind).
    fn finish(self) -> (Vec<String>, Nodes) {
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
        let names = self.names.into_iter().map(Cow::into_owned).collect();
        (names, tree.pre_order())
    }
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

    /// The nodes in pre-order, children by descending total, then by first
    /// appearance of their name, then by kind (siblings differ in one or
    /// the other, so the order is the same however the nodes were made).
    fn pre_order(self) -> Nodes {
        let n = self.frame.len();
        // Children lists as one array: kids[first[p]..first[p + 1]].
        let mut first = vec![0usize; n + 1];
        for &p in &self.parent[1..] {
            first[p as usize + 1] += 1;
        }
        for i in 0..n {
            first[i + 1] += first[i];
        }
        let mut fill = first.clone();
        let mut kids = vec![0u32; n.saturating_sub(1)];
        for (child, &p) in self.parent.iter().enumerate().skip(1) {
            kids[fill[p as usize]] = child as u32;
            fill[p as usize] += 1;
        }
        let mut out = Nodes {
            name: Vec::with_capacity(n),
            parent: Vec::with_capacity(n),
            self_count: Vec::with_capacity(n),
            total: Vec::with_capacity(n),
            kind: Vec::with_capacity(n),
        };
        let mut todo: Vec<(u32, i64)> = vec![(0, -1)];
        while let Some((at, parent)) = todo.pop() {
            let at = at as usize;
            let index = out.name.len() as i64;
            out.name.push(name_of(self.frame[at]));
            out.parent.push(parent);
            out.self_count.push(self.self_count[at]);
            out.total.push(self.total[at]);
            out.kind.push(kind_of(self.frame[at]) as u8);
            let children = &mut kids[first[at]..first[at + 1]];
            // Popped from the end: push the smallest first so the largest comes next.
            children.sort_unstable_by_key(|&c| {
                let c = c as usize;
                (
                    self.total[c],
                    Reverse(name_of(self.frame[c])),
                    Reverse(kind_of(self.frame[c]) as u8),
                )
            });
            todo.extend(children.iter().map(|&c| (c, index)));
        }
        out
    }
}
