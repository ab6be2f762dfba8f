// The call tree and its flame-graph layout.
//
// A profile arrives as a struct of arrays in pre-order: every node's
// descendants directly follow it, so a subtree is the contiguous index range
// [i, end[i]). That makes "skip this whole subtree" a single jump, which is
// what keeps rendering and searching fast on 100k+ nodes.
//
// Layout is computed once per tree: depth[i] (row) and x[i] (left edge in
// sample units: children are packed left to right from their parent's left
// edge, the parent's self time is the gap on the right). A view then maps
// sample units to pixels with one scale factor.

/** A call tree with its layout; arrays are indexed by node. */
export class Tree {
  /**
   * @param {string[]} names  function names; `name[i]` indexes this
   * @param {{name, parent, self, total, kind}} a  typed arrays, pre-order
   * @param {object} extra    optional per-node arrays (e.g. diff values)
   */
  constructor(names, a, extra = {}) {
    const n = a.name.length;
    this.n = n;
    this.names = names;
    this.name = a.name;
    this.parent = a.parent;
    this.self = a.self;
    this.total = a.total;
    this.kind = a.kind;
    this.extra = extra;
    this.depth = new Int32Array(n);
    this.x = new Float64Array(n);
    this.end = new Int32Array(n);
    const cursor = new Float64Array(n); // next free x inside each node
    let maxDepth = 0;
    for (let i = 1; i < n; i++) {
      const p = this.parent[i];
      const d = (this.depth[i] = this.depth[p] + 1);
      if (d > maxDepth) maxDepth = d;
      this.x[i] = cursor[p];
      cursor[p] += this.total[i];
      cursor[i] = this.x[i];
    }
    // end[i]: one past the last descendant. Walking backwards, every child
    // is final before its parent is reached.
    for (let i = n - 1; i >= 0; i--) {
      if (this.end[i] < i + 1) this.end[i] = i + 1;
      const p = this.parent[i];
      if (p >= 0 && this.end[p] < this.end[i]) this.end[p] = this.end[i];
    }
    this.maxDepth = n ? maxDepth : 0;
  }

  /** Decodes and validates the API's JSON profile. */
  static fromJSON(json) {
    const bad = (why) => { throw new Error(`malformed profile from the server: ${why}`); };
    if (!json || !Array.isArray(json.names) || !json.nodes) bad('missing names or nodes');
    const { name, parent, self, total, kind } = json.nodes;
    const n = Array.isArray(name) ? name.length : -1;
    for (const [k, v] of Object.entries({ parent, self, total })) {
      if (!Array.isArray(v) || v.length !== n) bad(`nodes.${k} has a different length than nodes.name`);
    }
    if (n === 0) {
      return new Tree(['all'], { name: Int32Array.of(0), parent: Int32Array.of(-1), self: Float64Array.of(0), total: Float64Array.of(0), kind: Uint8Array.of(3) });
    }
    const a = {
      name: Int32Array.from(name),
      parent: Int32Array.from(parent),
      self: Float64Array.from(self),
      total: Float64Array.from(total),
      kind: Array.isArray(kind) && kind.length === n ? Uint8Array.from(kind) : new Uint8Array(n),
    };
    if (a.parent[0] !== -1) bad('node 0 must be the root (parent -1)');
    for (let i = 0; i < n; i++) {
      if (a.name[i] < 0 || a.name[i] >= json.names.length) bad(`node ${i} names an unknown function`);
      if (i > 0 && (a.parent[i] < 0 || a.parent[i] >= i)) bad(`node ${i} is not in pre-order`);
    }
    return new Tree(json.names, a);
  }

  /** Name of node i. */
  label(i) {
    return this.names[this.name[i]];
  }

  /** Indices from the root down to i (inclusive). */
  ancestors(i) {
    const out = [];
    for (let j = i; j >= 0; j = this.parent[j]) out.push(j);
    return out.reverse();
  }

  /** Names from below the root down to i: the URL form of a zoom target. */
  path(i) {
    return this.ancestors(i).slice(1).map((j) => this.label(j));
  }

  /** Follows a path of names from the root; returns the node or -1. */
  find(path) {
    let cur = 0;
    for (const want of path) {
      let next = -1;
      for (let c = cur + 1; c < this.end[cur]; c = this.end[c]) {
        if (this.label(c) === want) { next = c; break; }
      }
      if (next < 0) return -1;
      cur = next;
    }
    return cur;
  }
}

/**
 * Builds a Tree by inserting paths of names: the tool behind the sandwich
 * and diff trees. `node()` finds or creates a child; the caller accumulates
 * values into `self[id]`, `total[id]` and `vals[channel][id]`.
 */
export class TreeBuilder {
  constructor(channels = [], rootName = 'all', rootKind = 3) {
    this.names = [];
    this.nameIdx = new Map();
    this.pName = [];
    this.pParent = [];
    this.pKind = [];
    this.self = [];
    this.total = [];
    this.channels = channels; // names of extra per-node value arrays
    this.vals = Object.fromEntries(channels.map((c) => [c, []]));
    this.kids = new Map(); // (parent, name, kind) → child
    this.root = this.node(-1, rootName, rootKind);
  }

  intern(s) {
    let i = this.nameIdx.get(s);
    if (i === undefined) {
      i = this.names.length;
      this.names.push(s);
      this.nameIdx.set(s, i);
    }
    return i;
  }

  /** The child of `parent` named `name` (kind `kind`), created on demand. */
  node(parent, name, kind) {
    const ni = this.intern(name);
    const key = ((parent + 1) * 4194304 + ni) * 8 + kind;
    let id = this.kids.get(key);
    if (id === undefined) {
      id = this.pName.length;
      this.pName.push(ni);
      this.pParent.push(parent);
      this.pKind.push(kind);
      this.self.push(0);
      this.total.push(0);
      for (const c of this.channels) this.vals[c].push(0);
      this.kids.set(key, id);
    }
    return id;
  }

  /** Flattens to a pre-order Tree; siblings sorted by name when `sorted`. */
  build({ sorted = true } = {}) {
    const m = this.pName.length;
    const children = Array.from({ length: m }, () => []);
    for (let i = 1; i < m; i++) children[this.pParent[i]].push(i);
    const order = new Int32Array(m); // new index → builder id
    const newId = new Int32Array(m);
    let k = 0;
    const stack = [0];
    while (stack.length) {
      const id = stack.pop();
      newId[id] = k;
      order[k++] = id;
      const c = children[id];
      if (sorted) c.sort((a, b) => (this.names[this.pName[a]] < this.names[this.pName[b]] ? 1 : -1));
      else c.reverse();
      for (const x of c) stack.push(x);
    }
    const a = {
      name: new Int32Array(m), parent: new Int32Array(m), self: new Float64Array(m),
      total: new Float64Array(m), kind: new Uint8Array(m),
    };
    const extra = Object.fromEntries(this.channels.map((c) => [c, new Float64Array(m)]));
    for (let i = 0; i < m; i++) {
      const id = order[i];
      a.name[i] = this.pName[id];
      a.parent[i] = id === 0 ? -1 : newId[this.pParent[id]];
      a.self[i] = this.self[id];
      a.total[i] = this.total[id];
      a.kind[i] = this.pKind[id];
      for (const c of this.channels) extra[c][i] = this.vals[c][id];
    }
    return new Tree(this.names, a, extra);
  }
}
