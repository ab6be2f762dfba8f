// Top functions: self and total per function name across the whole tree.
//
// A function's total counts each stack once even when the function recurses:
// while walking the pre-order arrays we keep how many times each name is on
// the current path, and add a node's total only when its name is not already
// on the path (the outermost frame covers the nested ones).

import { fmtCount, fmtPct, fmtDeltaPct, fmtWait } from './format.js';
import { KIND_NAMES, frameHSL } from './render.js';

/** Per-name { self, total } (Float64Array over tree.names) and the kind of each name's first frame. */
export function functionStats(tree) {
  const m = tree.names.length;
  const self = new Float64Array(m), total = new Float64Array(m), seen = new Uint8Array(m), kind = new Uint8Array(m);
  const onPath = new Int32Array(m);
  const path = [];
  const { name, end } = tree;
  for (let i = 1; i < tree.n; i++) {
    while (path.length && end[path[path.length - 1]] <= i) onPath[name[path.pop()]]--;
    const f = name[i];
    self[f] += tree.self[i];
    if (onPath[f] === 0) total[f] += tree.total[i];
    if (!seen[f]) {
      seen[f] = 1;
      kind[f] = tree.kind[i];
    }
    onPath[f]++;
    path.push(i);
  }
  return { self, total, seen, kind };
}

/** Rows of the table for a profile tree: [{ name, kind, self, total }]. */
export function profileRows(tree) {
  const s = functionStats(tree);
  const rows = [];
  for (let f = 0; f < tree.names.length; f++) {
    if (s.seen[f]) rows.push({ name: tree.names[f], kind: s.kind[f], self: s.self[f], total: s.total[f] });
  }
  return rows;
}

/** Rows for a diff: shares of self/total in baseline and comparison, and their change. */
export function diffRows(base, cmp) {
  const a = functionStats(base), b = functionStats(cmp);
  const A = base.total[0] || 1, B = cmp.total[0] || 1;
  const byName = new Map();
  const put = (tree, s, side) => {
    for (let f = 0; f < tree.names.length; f++) {
      if (!s.seen[f]) continue;
      const nm = tree.names[f];
      let r = byName.get(nm);
      if (!r) byName.set(nm, (r = { name: nm, kind: s.kind[f], aSelf: 0, aTotal: 0, bSelf: 0, bTotal: 0 }));
      r[`${side}Self`] = s.self[f];
      r[`${side}Total`] = s.total[f];
    }
  };
  put(base, a, 'a');
  put(cmp, b, 'b');
  const rows = [...byName.values()];
  for (const r of rows) {
    r.self = r.bSelf / B; // comparison share (sort key "self")
    r.delta = r.bSelf / B - r.aSelf / A;
    r.total = r.bTotal / B - r.aTotal / A; // sort key "total" in the diff table: change of total
    r.aShare = r.aSelf / A;
  }
  return rows;
}

const PAGE = 200;

export class TopTable {
  /**
   * @param {HTMLElement} host
   * @param {object} o  { onPick(name), onSandwich(name), onSort(key, dir) }
   */
  constructor(host, o) {
    this.o = o;
    this.rows = [];
    this.mode = 'profile';
    this.whole = 1;
    this.sort = 'self';
    this.dir = 'desc';
    this.limit = PAGE;
    this.match = null;
    this.selected = '';
    this.dark = false;
    this.el = document.createElement('div');
    this.el.className = 'table-wrap';
    this.table = document.createElement('table');
    this.table.className = 'top-table';
    this.caption = document.createElement('caption');
    this.thead = document.createElement('thead');
    this.tbody = document.createElement('tbody');
    this.table.append(this.caption, this.thead, this.tbody);
    this.more = document.createElement('button');
    this.more.type = 'button';
    this.more.className = 'btn more';
    this.more.addEventListener('click', () => {
      this.limit += PAGE * 5;
      this.render();
    });
    this.el.append(this.table, this.more);
    host.append(this.el);
    this.tbody.addEventListener('click', (e) => {
      const btn = e.target.closest('button');
      if (!btn) return;
      const name = btn.closest('tr').dataset.name;
      if (btn.classList.contains('sw')) this.o.onSandwich(name);
      else this.o.onPick(name);
    });
  }

  /**
   * rows, mode ('profile'|'diff'), whole (total samples), measure ('cpu'|'off-cpu':
   * counts are samples or nanoseconds), match (RegExp|null),
   * selected (name), sort/dir. Rows are re-sorted and rebuilt only when the
   * rows or the order change; a new search or selection just re-marks them.
   */
  setData({ rows, mode, whole, measure = 'cpu', match = null, selected = '', dark = false, sort = this.sort, dir = this.dir }) {
    const rebuild = rows !== this.rows || mode !== this.mode || dark !== this.dark || sort !== this.sort || dir !== this.dir || measure !== this.measure;
    if (rows !== this.rows) this.limit = PAGE;
    Object.assign(this, { rows, mode, whole: whole || 1, measure, match, selected, dark, sort, dir });
    if (rebuild) this.render();
    else this.mark();
  }

  /** Updates the search/selection marks of the rendered rows. */
  mark() {
    for (const tr of this.tbody.children) {
      const name = tr.dataset.name;
      tr.classList.toggle('match', !!(this.match && this.match.test(name)));
      tr.classList.toggle('selected', name === this.selected);
    }
  }

  columns() {
    if (this.mode === 'diff') {
      return [
        { key: null, label: 'Baseline self', num: true },
        { key: 'self', label: 'Comparison self', num: true },
        { key: 'delta', label: 'Δ self', num: true },
        { key: 'total', label: 'Δ total', num: true },
        { key: 'name', label: 'Function' },
      ];
    }
    return [
      { key: 'self', label: 'Self', num: true },
      { key: 'total', label: 'Total', num: true },
      { key: 'name', label: 'Function' },
    ];
  }

  /**
   * The first `limit` rows in table order. Numeric orders pick the top rows
   * with a native typed-array sort of the values first, so 100k functions do
   * not go through a comparator sort to show 200 of them.
   */
  top(limit) {
    const key = `${this.sort}/${this.dir}/${limit}`;
    if (this.cache && this.cache.rows === this.rows && this.cache.key === key) return this.cache.top;
    const k = this.sort === 'delta' && this.mode !== 'diff' ? 'self' : this.sort;
    const sign = this.dir === 'asc' ? 1 : -1;
    const byName = (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    let rows = this.rows;
    if (k === 'name') rows = rows.slice().sort((a, b) => sign * byName(a, b));
    else {
      if (rows.length > limit * 2) {
        const vals = Float64Array.from(rows, (r) => r[k]).sort();
        const cut = sign < 0 ? vals[rows.length - limit] : vals[limit - 1];
        rows = rows.filter((r) => (sign < 0 ? r[k] >= cut : r[k] <= cut));
      } else rows = rows.slice();
      rows.sort((a, b) => sign * (a[k] - b[k]) || byName(a, b));
    }
    const top = rows.slice(0, limit);
    this.cache = { rows: this.rows, key, top };
    return top;
  }

  render() {
    const cols = this.columns();
    // Header: sortable columns are buttons; aria-sort tells assistive tech.
    const tr = document.createElement('tr');
    for (const c of cols) {
      const th = document.createElement('th');
      th.scope = 'col';
      if (c.num) th.className = 'num';
      if (c.key) {
        const active = this.sort === c.key || (c.key === 'self' && this.sort === 'delta' && this.mode !== 'diff');
        if (active) th.setAttribute('aria-sort', this.dir === 'asc' ? 'ascending' : 'descending');
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'sort';
        b.dataset.key = c.key;
        b.textContent = c.label + (active ? (this.dir === 'asc' ? ' ▲' : ' ▼') : '');
        b.addEventListener('click', () => {
          const dir = active ? (this.dir === 'desc' ? 'asc' : 'desc') : c.key === 'name' ? 'asc' : 'desc';
          this.o.onSort(c.key, dir);
        });
        th.append(b);
      } else th.textContent = c.label;
      tr.append(th);
    }
    this.thead.replaceChildren(tr);
    const all = this.rows.length;
    const rows = this.top(this.limit);
    const count = document.createElement('span');
    count.className = 'muted';
    count.textContent = `${fmtCount(all)} functions · click a name to highlight it${this.mode === 'diff' ? '' : ', ⇅ for its sandwich view'}`;
    this.caption.replaceChildren('Top functions', count);
    const frag = document.createDocumentFragment();
    for (const r of rows) frag.append(this.row(r));
    this.tbody.replaceChildren(frag);
    this.more.hidden = all <= rows.length;
    this.more.textContent = `Show more (${fmtCount(all - rows.length)} left)`;
  }

  row(r) {
    const tr = document.createElement('tr');
    tr.dataset.name = r.name;
    if (this.match && this.match.test(r.name)) tr.classList.add('match');
    if (r.name === this.selected) tr.classList.add('selected');
    const num = (text, share, cls = '') => {
      const td = document.createElement('td');
      td.className = `num ${cls}`;
      td.textContent = text;
      if (share !== null) td.style.setProperty('--share', `${Math.max(0, Math.min(1, share)) * 100}%`);
      tr.append(td);
    };
    if (this.mode === 'diff') {
      num(fmtPct(r.aShare), r.aShare, 'bar');
      num(fmtPct(r.self), r.self, 'bar');
      num(fmtDeltaPct(r.delta), null, r.delta > 0 ? 'up' : r.delta < 0 ? 'down' : '');
      num(fmtDeltaPct(r.total), null, r.total > 0 ? 'up' : r.total < 0 ? 'down' : '');
    } else {
      const sp = r.self / this.whole, tp = r.total / this.whole;
      const amount = this.measure === 'off-cpu' ? fmtWait : fmtCount;
      num(`${amount(r.self)}  ${fmtPct(sp)}`, sp, 'bar');
      num(`${amount(r.total)}  ${fmtPct(tp)}`, tp, 'bar');
    }
    const td = document.createElement('td');
    td.className = 'fn-cell';
    const sw = document.createElement('span');
    sw.className = 'swatch';
    const [h, s, l] = frameHSL(r.name, r.kind, this.dark);
    sw.style.background = `hsl(${h},${s}%,${l}%)`;
    sw.title = KIND_NAMES[r.kind] || '';
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'fn';
    b.textContent = r.name;
    b.title = `Highlight ${r.name} in the graph`;
    const s2 = document.createElement('button');
    s2.type = 'button';
    s2.className = 'sw';
    s2.title = `Sandwich view of ${r.name}`;
    s2.setAttribute('aria-label', `Sandwich view of ${r.name}`);
    s2.textContent = '⇅';
    td.append(sw, b, s2);
    tr.append(td);
    return tr;
  }
}
