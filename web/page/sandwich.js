// Sandwich view of one function: who calls it (callers, an inverted tree with
// the function at its root) and what it calls (callees, all its subtrees
// merged). Only outermost occurrences count — a frame of the function with
// no ancestor of the same function — so recursion is not counted twice and
// both trees' roots weigh exactly the function's total.

import { TreeBuilder } from './tree.js';

/** Outermost nodes of tree named `fnName`. */
export function outermost(tree, fnName) {
  const out = [];
  for (let i = 0; i < tree.n; ) {
    if (tree.label(i) === fnName) {
      out.push(i);
      i = tree.end[i];
    } else i++;
  }
  return out;
}

/** { callers, callees, total } trees for `fnName`, or null if absent. */
export function sandwich(tree, fnName) {
  const occ = outermost(tree, fnName);
  if (!occ.length) return null;

  // Callers: path upwards from each occurrence, weighted by its total.
  const kind = tree.kind[occ[0]];
  const up = new TreeBuilder([], fnName, kind);
  const upRoot = 0;
  for (const o of occ) {
    const w = tree.total[o];
    let cur = upRoot;
    up.total[cur] += w;
    for (let p = tree.parent[o]; p > 0; p = tree.parent[p]) {
      cur = up.node(cur, tree.label(p), tree.kind[p]);
      up.total[cur] += w;
    }
    up.self[cur] += w; // the outermost caller is where this path ends
  }

  // Callees: every occurrence's subtree merged under one root.
  const down = new TreeBuilder([], fnName, kind);
  const downRoot = 0;
  const map = new Int32Array(tree.n);
  for (const o of occ) {
    map[o] = downRoot;
    down.total[downRoot] += tree.total[o];
    down.self[downRoot] += tree.self[o];
    for (let j = o + 1; j < tree.end[o]; j++) {
      const id = (map[j] = down.node(map[tree.parent[j]], tree.label(j), tree.kind[j]));
      down.total[id] += tree.total[j];
      down.self[id] += tree.self[j];
    }
  }
  return { callers: up.build(), callees: down.build(), total: up.total[0] };
}
