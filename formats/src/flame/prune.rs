//! Pruning: the tree as a first paint needs it, without the nodes too
//! narrow to draw.
//!
//! A node stays when its total is at least `min_share` of all samples (so
//! its ancestors stay too). The children a kept node loses become one node
//! of kind [`NodeKind::Pruned`] named [`PRUNED_NAME`], whose self and total
//! are their summed totals: every kept node keeps its own total and self,
//! and its children still add up to what they did. `meta.pruned` counts the
//! nodes left out, so a reader knows the tree is partial and can ask for
//! the whole one. Names no kept node uses are left out too.

use std::sync::Arc;

use super::{FlameMeta, FlameTree, NodeKind, Nodes};
use crate::model::UNKNOWN;

/// The name of a node standing for the pruned children of its parent.
pub const PRUNED_NAME: &str = "[smaller frames]";

/// `tree` without nodes below `min_share` of its samples (see the module
/// docs). A share of 0 or less (or NaN) keeps everything.
pub fn pruned(tree: &FlameTree, min_share: f64) -> FlameTree {
    let kept = pruned_nodes(&tree.nodes, tree.names.len(), min_share);
    let names = kept
        .names
        .iter()
        .map(|name| match *name {
            KeptName::Name(old) => tree
                .names
                .get(old as usize)
                .map_or_else(|| Arc::from(UNKNOWN), Arc::clone),
            KeptName::Pruned => Arc::from(PRUNED_NAME),
        })
        .collect();
    FlameTree {
        meta: FlameMeta {
            pruned: tree.meta.pruned + kept.left_out,
            ..tree.meta.clone()
        },
        names,
        nodes: kept.nodes,
    }
}

/// The nodes [`pruned`] keeps, for a caller that names them itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunedNodes {
    /// The nodes, their names numbered anew (see `names`).
    pub nodes: Nodes,
    /// What each new name index stands for.
    pub names: Vec<KeptName>,
    /// Nodes left out.
    pub left_out: u64,
}

/// A name of the pruned tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptName {
    /// The name with this index in the tree that was pruned (an index
    /// past its names stands for `[unknown]`).
    Name(u32),
    /// [`PRUNED_NAME`].
    Pruned,
}

/// The pruning of [`pruned`], on nodes whose names (`names` of them) are
/// numbered but not needed: the kept nodes and the names they use.
pub fn pruned_nodes(nodes: &Nodes, names: usize, min_share: f64) -> PrunedNodes {
    // Arrays of unequal lengths (only a hand-made tree has them): the common part.
    let n = [
        nodes.name.len(),
        nodes.parent.len(),
        nodes.self_count.len(),
        nodes.total.len(),
        nodes.kind.len(),
    ]
    .into_iter()
    .min()
    .unwrap_or(0);
    let samples = nodes.total.first().copied().unwrap_or(0);
    let min_total = if min_share > 0.0 {
        (min_share * samples as f64).ceil() as u64
    } else {
        0
    };
    let mut out = Nodes::default();
    let mut kept_names = Vec::new();
    // Old name index → new one (u32::MAX: not used yet); one more slot
    // for a name index pointing nowhere, shown as `[unknown]`.
    let mut name_map = vec![u32::MAX; names + 1];
    let mut rename = |old: u32, kept_names: &mut Vec<KeptName>| -> u32 {
        let slot = (old as usize).min(names);
        if name_map[slot] == u32::MAX {
            name_map[slot] = kept_names.len() as u32;
            kept_names.push(KeptName::Name(slot as u32));
        }
        name_map[slot]
    };
    let mut pruned_name = None;
    // Old node index → new one, or -1 when left out.
    let mut new_index = vec![-1i64; n];
    // For each kept node, the index of its pruned-children node, once made.
    let mut pruned_child = vec![-1i64; n];
    let mut left_out = 0u64;
    for i in 0..n {
        let parent = nodes.parent[i];
        let new_parent = usize::try_from(parent)
            .ok()
            .filter(|&p| p < i)
            .map_or(-1, |p| new_index[p]);
        if i > 0 && new_parent < 0 {
            // Inside a subtree already left out (or malformed): counted only.
            left_out += 1;
            continue;
        }
        if i == 0 || nodes.total[i] >= min_total {
            new_index[i] = out.name.len() as i64;
            out.name.push(rename(nodes.name[i], &mut kept_names));
            out.parent.push(new_parent);
            out.self_count.push(nodes.self_count[i]);
            out.total.push(nodes.total[i]);
            out.kind.push(nodes.kind[i]);
            continue;
        }
        // The first child of a kept node to go: siblings come by descending
        // total, so every kept sibling (and its subtree) came before it.
        left_out += 1;
        let p = parent as usize;
        let at = match pruned_child[p] {
            -1 => {
                let name = *pruned_name.get_or_insert_with(|| {
                    kept_names.push(KeptName::Pruned);
                    kept_names.len() as u32 - 1
                });
                pruned_child[p] = out.name.len() as i64;
                out.name.push(name);
                out.parent.push(new_parent);
                out.self_count.push(0);
                out.total.push(0);
                out.kind.push(NodeKind::Pruned as u8);
                out.name.len() - 1
            }
            at => at as usize,
        };
        out.self_count[at] += nodes.total[i];
        out.total[at] += nodes.total[i];
    }
    PrunedNodes {
        nodes: out,
        names: kept_names,
        left_out,
    }
}
