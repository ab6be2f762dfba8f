//! The flame-graph tree the web page draws.
//!
//! Stacks are merged into a call tree rooted at `all`, with the command name
//! as the first level (as flame graphs of folded stacks show it), then user
//! frames root first, then kernel frames. Inlined functions are frames of
//! their own. The tree is sent as a struct of arrays in pre-order (a node's
//! children follow it), so the page lays it out in one pass and the JSON
//! stays compact: `names` holds each distinct name once.

use std::collections::HashMap;
use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::model::{FrameKind, Profile, Sample, Stack};
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

/// A node while the tree is built.
struct Node {
    name: u32,
    kind: NodeKind,
    self_count: u64,
    total: u64,
    children: HashMap<(u32, NodeKind), usize>,
}

impl FlameTree {
    /// Merges the profile's stacks into a tree covering `from..until`.
    pub fn from_profile(profile: &Profile, from: u64, until: u64) -> Self {
        let mut names: Vec<String> = vec!["all".to_string()];
        let mut name_index: HashMap<String, u32> = HashMap::from([("all".to_string(), 0)]);
        let mut intern = |name: String| -> u32 {
            if let Some(&i) = name_index.get(&name) {
                return i;
            }
            let i = names.len() as u32;
            names.push(name.clone());
            name_index.insert(name, i);
            i
        };
        let mut nodes = vec![Node {
            name: 0,
            kind: NodeKind::Process,
            self_count: 0,
            total: 0,
            children: HashMap::new(),
        }];
        for sample in &profile.samples {
            let mut at = 0;
            nodes[0].total += sample.count;
            for (name, kind) in path(profile, sample) {
                let key = (intern(name), kind);
                at = match nodes[at].children.get(&key) {
                    Some(&child) => child,
                    None => {
                        nodes.push(Node {
                            name: key.0,
                            kind,
                            self_count: 0,
                            total: 0,
                            children: HashMap::new(),
                        });
                        let child = nodes.len() - 1;
                        nodes[at].children.insert(key, child);
                        child
                    }
                };
                nodes[at].total += sample.count;
            }
            nodes[at].self_count += sample.count;
        }
        FlameTree {
            meta: FlameMeta {
                from,
                until,
                samples: nodes[0].total,
                period_ns: profile.meta.period_ns(),
            },
            names,
            nodes: preorder(&nodes),
        }
    }

    /// Writes the tree as JSON.
    pub fn write<W: Write>(&self, writer: W) -> Result<(), Error> {
        serde_json::to_writer(writer, self).map_err(Error::Json)
    }
}

/// The frames of a sample from the root down: command, user, kernel.
fn path(profile: &Profile, sample: &Sample) -> Vec<(String, NodeKind)> {
    let mut path = vec![(sample.comm.clone(), NodeKind::Process)];
    for stack in [&sample.user, &sample.kernel] {
        if let Stack::Frames(frames) = stack {
            for &index in frames.iter().rev() {
                let kind = profile
                    .locations
                    .get(index)
                    .map_or(NodeKind::User, |l| l.kind.into());
                path.extend(profile.location_names(index).into_iter().map(|n| (n, kind)));
            }
        }
    }
    path
}

/// Flattens the tree in pre-order, children by descending total.
fn preorder(nodes: &[Node]) -> Nodes {
    let mut out = Nodes::default();
    let mut todo: Vec<(usize, i64)> = vec![(0, -1)];
    while let Some((at, parent)) = todo.pop() {
        let node = &nodes[at];
        let index = out.name.len() as i64;
        out.name.push(node.name);
        out.parent.push(parent);
        out.self_count.push(node.self_count);
        out.total.push(node.total);
        out.kind.push(node.kind as u8);
        let mut children: Vec<usize> = node.children.values().copied().collect();
        // Popped from the end: push the smallest first so the largest comes next.
        children.sort_by_key(|&c| (nodes[c].total, std::cmp::Reverse(nodes[c].name)));
        todo.extend(children.into_iter().map(|c| (c, index)));
    }
    out
}
