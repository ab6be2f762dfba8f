//! Building the tree from a profile's samples.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use crate::fast_hash::FastBuild;

use super::{NodeKind, Nodes};
use crate::model::{Profile, Sample, Stack};

/// The names and the nodes, in pre-order, of the profile's merged stacks.
pub(super) fn tree(profile: &Profile) -> (Vec<Arc<str>>, Nodes) {
    let mut builder = Builder::new(profile);
    for sample in &profile.samples {
        builder.add(sample);
    }
    builder.finish()
}

/// Builds the tree: names interned once per location (not per frame of
/// every sample) and borrowed from the profile until the end, nodes in flat
/// arrays, children found through one map keyed by (parent, name, kind).
struct Builder<'a> {
    profile: &'a Profile,
    names: Vec<Cow<'a, str>>,
    name_index: HashMap<Cow<'a, str>, u32, FastBuild>,
    /// Where each location's (name, kind) frames are in `frames`, root-most
    /// first: (start, length); `UNSEEN` until first used.
    location_frames: Vec<(u32, u32)>,
    frames: Vec<(u32, NodeKind)>,
    /// Nodes by index; 0 is the root.
    name: Vec<u32>,
    kind: Vec<NodeKind>,
    parent: Vec<u32>,
    self_count: Vec<u64>,
    total: Vec<u64>,
    children: HashMap<(u32, u32, u8), u32, FastBuild>,
}

/// A location whose frames are not interned yet.
const UNSEEN: (u32, u32) = (u32::MAX, 0);

impl<'a> Builder<'a> {
    fn new(profile: &'a Profile) -> Self {
        // Sized for the usual case, where most locations are one frame with
        // a name of its own and most frames are one node: growing these
        // step by step (rehashing every entry) costs more than building.
        let locations = profile.locations.len();
        let nodes = locations + profile.samples.len() + 1;
        let mut builder = Builder {
            profile,
            names: Vec::with_capacity(locations + 1),
            name_index: HashMap::with_capacity_and_hasher(locations + 1, FastBuild::default()),
            location_frames: vec![UNSEEN; locations],
            frames: Vec::with_capacity(locations),
            name: Vec::with_capacity(nodes),
            kind: Vec::with_capacity(nodes),
            parent: Vec::with_capacity(nodes),
            self_count: Vec::with_capacity(nodes),
            total: Vec::with_capacity(nodes),
            children: HashMap::with_capacity_and_hasher(nodes, FastBuild::default()),
        };
        builder.name.push(0);
        builder.kind.push(NodeKind::Process);
        builder.parent.push(0);
        builder.self_count.push(0);
        builder.total.push(0);
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

    /// Adds one sample along its path: command, user frames, kernel frames.
    fn add(&mut self, sample: &'a Sample) {
        let count = sample.count;
        self.total[0] += count;
        let comm = self.intern(Cow::Borrowed(&sample.comm));
        let mut at = self.child(0, comm, NodeKind::Process, count);
        for stack in [&sample.user, &sample.kernel] {
            let Stack::Frames(frames) = stack else {
                continue;
            };
            for &index in frames.iter().rev() {
                let (start, len) = self.frames_of(index);
                for k in start..start + len {
                    let (name, kind) = self.frames[k];
                    at = self.child(at, name, kind, count);
                }
            }
        }
        self.self_count[at as usize] += count;
    }

    /// Where the frames of location `index` are in `frames`, interned on
    /// first use; an index pointing nowhere is `[unknown]`.
    fn frames_of(&mut self, index: usize) -> (usize, usize) {
        let seen = self.location_frames.get(index).copied().unwrap_or(UNSEEN);
        if seen != UNSEEN {
            return (seen.0 as usize, seen.1 as usize);
        }
        let start = self.frames.len();
        let profile = self.profile;
        match profile.locations.get(index) {
            Some(location) if !location.lines.is_empty() => {
                let kind = location.kind.into();
                // Outermost first: the caller, then what was inlined into it.
                for line in location.lines.iter().rev() {
                    let name = self.intern(Cow::Borrowed(&line.function));
                    self.frames.push((name, kind));
                }
            }
            location => {
                let kind = location.map_or(NodeKind::User, |l| l.kind.into());
                let name = self.intern(Cow::Owned(profile.location_name(index)));
                self.frames.push((name, kind));
            }
        }
        let len = self.frames.len() - start;
        if let Some(slot) = self.location_frames.get_mut(index) {
            *slot = (start as u32, len as u32);
        }
        (start, len)
    }

    /// The child of `at` for (name, kind), created on demand, with `count`
    /// added to its total.
    fn child(&mut self, at: u32, name: u32, kind: NodeKind, count: u64) -> u32 {
        let next = self.name.len() as u32;
        let child = *self.children.entry((at, name, kind as u8)).or_insert(next);
        if child == next {
            self.name.push(name);
            self.kind.push(kind);
            self.parent.push(at);
            self.self_count.push(0);
            self.total.push(0);
        }
        self.total[child as usize] += count;
        child
    }

    /// The names and the nodes in pre-order, children by descending total
    /// (then by first appearance of their name, then by kind).
    fn finish(self) -> (Vec<Arc<str>>, Nodes) {
        let out = Nodes::in_pre_order(
            &self.parent,
            &self.self_count,
            &self.total,
            |at| self.name[at],
            |at| self.kind[at] as u8,
        );
        let names = self.names.iter().map(|n| Arc::from(&**n)).collect();
        (names, out)
    }
}
