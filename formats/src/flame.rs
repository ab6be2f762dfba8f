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

/// The flame-graph tree as the page's API serves it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlameTree {
    /// Range and totals.
    pub meta: FlameMeta,
    /// Distinct names.
    pub names: Vec<String>,
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
