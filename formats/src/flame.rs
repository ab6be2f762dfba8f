//! The flame-graph tree the web page draws.
//!
//! Stacks are merged into a call tree rooted at `all`, with the command name
//! as the first level (as flame graphs of folded stacks show it), then user
//! frames root first, then kernel frames. Inlined functions are frames of
//! their own. The tree is sent as a struct of arrays in pre-order (a node's
//! children follow it), so the page lays it out in one pass and the JSON
//! stays compact: `names` holds each distinct name once.

mod build;
pub mod prune;

use std::io::Write;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{FrameKind, Profile};
use crate::Error;

/// What a node is, as the page colours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum NodeKind {
    /// A user-space frame.
    User = 0,
    /// A kernel frame.
    Kernel = 1,
    /// JIT-compiled code.
    Jit = 2,
    /// The command name at the top of a stack (and the root).
    Process = 3,
    /// Children of one node left out of a pruned tree, as one node (see
    /// [`prune`]).
    Pruned = 4,
}

impl From<FrameKind> for NodeKind {
    fn from(kind: FrameKind) -> Self {
        match kind {
            FrameKind::User => NodeKind::User,
            FrameKind::Kernel => NodeKind::Kernel,
            FrameKind::Jit => NodeKind::Jit,
        }
    }
}

/// Range and totals of the tree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlameMeta {
    /// Start of the range, ns since the Unix epoch.
    pub from: u64,
    /// End of the range, ns since the Unix epoch.
    pub until: u64,
    /// Total samples.
    pub samples: u64,
    /// CPU time one sample stands for, ns.
    pub period_ns: u64,
    /// Nodes left out of this tree by [`FlameTree::pruned`]; 0 when the
    /// tree is complete.
    #[serde(default)]
    pub pruned: u64,
}

/// The nodes, one entry per node in each array, in pre-order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nodes {
    /// Index into [`FlameTree::names`].
    pub name: Vec<u32>,
    /// Index of the parent node; -1 for the root.
    pub parent: Vec<i64>,
    /// Samples in this node itself.
    #[serde(rename = "self")]
    pub self_count: Vec<u64>,
    /// Samples in this node and below.
    pub total: Vec<u64>,
    /// [`NodeKind`] as a number.
    pub kind: Vec<u8>,
}

impl Nodes {
    /// The nodes of a tree given by parent links (node 0 is the root), in
    /// pre-order: children by descending total, then by first appearance of
    /// their name (a smaller name id first), then by kind, so the order is
    /// the same however the tree was built.
    pub fn in_pre_order(
        parent: &[u32],
        self_count: &[u64],
        total: &[u64],
        name: impl Fn(usize) -> u32,
        kind: impl Fn(usize) -> u8,
    ) -> Nodes {
        let n = parent.len();
        // Children lists as one array: kids[first[p]..first[p + 1]].
        let mut first = vec![0usize; n + 1];
        for &p in parent.iter().skip(1) {
            first[p as usize + 1] += 1;
        }
        for i in 0..n {
            first[i + 1] += first[i];
        }
        let mut fill = first.clone();
        let mut kids = vec![0u32; n.saturating_sub(1)];
        for (child, &p) in parent.iter().enumerate().skip(1) {
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
        let mut todo: Vec<(u32, i64)> = if n == 0 { Vec::new() } else { vec![(0, -1)] };
        while let Some((at, up)) = todo.pop() {
            let at = at as usize;
            let index = out.name.len() as i64;
            out.name.push(name(at));
            out.parent.push(up);
            out.self_count.push(self_count[at]);
            out.total.push(total[at]);
            out.kind.push(kind(at));
            let children = &mut kids[first[at]..first[at + 1]];
            // Popped from the end: push the smallest first so the largest comes next.
            children.sort_unstable_by_key(|&c| {
                let c = c as usize;
                (
                    total[c],
                    std::cmp::Reverse(name(c)),
                    std::cmp::Reverse(kind(c)),
                )
            });
            todo.extend(children.iter().map(|&c| (c, index)));
        }
        out
    }
}

/// The flame-graph tree as the page's API serves it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlameTree {
    /// Range and totals.
    pub meta: FlameMeta,
    /// Distinct names (shared: the store hands out its dictionary's
    /// strings rather than copies).
    pub names: Vec<Arc<str>>,
    /// The tree.
    pub nodes: Nodes,
}

impl FlameTree {
    /// Merges the profile's stacks into a tree covering `from..until`.
    pub fn from_profile(profile: &Profile, from: u64, until: u64) -> Self {
        let (names, nodes) = build::tree(profile);
        FlameTree {
            meta: FlameMeta {
                from,
                until,
                samples: nodes.total.first().copied().unwrap_or(0),
                period_ns: profile.meta.period_ns(),
                pruned: 0,
            },
            names,
            nodes,
        }
    }

    /// The tree without the nodes whose total is below `min_share` of all
    /// samples (see [`prune`]).
    pub fn pruned(&self, min_share: f64) -> FlameTree {
        prune::pruned(self, min_share)
    }

    /// Writes the tree as JSON.
    pub fn write<W: Write>(&self, writer: W) -> Result<(), Error> {
        serde_json::to_writer(writer, self).map_err(Error::Json)
    }
}
