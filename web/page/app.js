// The page controller: owns the state (mirrored in the URL), fetches what the
// state needs from the API, and hands trees to the widgets.
//
// Flow: an action changes the state with commit() → the URL is updated →
// load() fetches whatever the new state needs (cached by URL, stale
// responses dropped) → apply() renders from the state and the data. Zooming,
// searching and theme changes only re-apply; they never refetch.
//
// A new range is drawn first from a pruned tree (frames under 1/10000 of the
// samples merged into one "smaller frames" node per parent, totals intact),
// then from the whole tree, fetched right after the first paint. While only
// the pruned tree is there (D.partial), what needs every frame (the table,
// the search share, the sandwich view) waits for the whole tree.

import * as api from './api.js';
import * as urlstate from './urlstate.js';
import { Tree } from './tree.js';
import { FlameView } from './flame.js';
import { profilePainter, KIND, KIND_NAMES } from './render.js';
import { compile, matchNames, matchStats } from './search.js';
import { sandwich } from './sandwich.js';
import { diffTree, relChange, classify, diffColor } from './diff.js';
import { Timeline } from './timeline.js';
import { TopTable, profileRows, diffRows } from './table.js';
import { fmtCount, fmtPct, fmtDuration, fmtRange, fmtDeltaPct, fmtAmount, escapeRegex } from './format.js';

const $ = (id) => document.getElementById(id);
const HOUR = 3600e9;
// Timeline buckets: multiples of the agent's 10 s window, so no bucket gets
// one window more than its neighbour (which would draw a comb).
const STEPS = [10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map((s) => s * 1e9);
const LABEL_ORDER = ['host', 'comm', 'pid', 'exe'];

// ---- state -----------------------------------------------------------------

let S = urlstate.parse(location.search);
const D = {
  tree: null, meta: null, profileURL: '', rows: null, // the profile of [from, until)
  partial: false, // D.tree is the first paint's pruned tree
  offTree: null, offURL: '', // measure=both: the off-CPU tree of [from, until)
  base: null, cmp: null, diff: null, diffURLs: '', diffRows: null, // diff view
  sw: null, swKey: '', // sandwich trees
  timeline: null, timelineURL: '',
  labelKeys: null, labelValues: {}, labelValuesKey: '',
  error: '', searchError: '', matched: null, loading: 0,
};
const metrics = {
  start: performance.now(), firstRender: 0, fetchMs: 0, buildMs: 0, drawMs: 0, nodes: 0, names: 0, profile: {}, applied: 0,
  firstNodes: 0, complete: 0, wholeFetchMs: 0, whole: {}, // the whole tree after a pruned first paint
};
let generation = 0;
let controller = null;
let pending = 0; // async work in flight (for the test hook's idle())
let resolveReady;
const ready = new Promise((r) => (resolveReady = r));

/** Fills in a missing range (last hour, whole seconds) and diff ranges. */
function normalize(s) {
  if (s.until === null) s.until = Math.floor(Date.now() / 10000) * 10e9;
  if (s.from === null) s.from = s.until - HOUR;
  if (s.view === 'diff') {
    const mid = Math.round((s.from + s.until) / 2 / 1e9) * 1e9;
    if (s.bfrom === null || s.buntil === null) [s.bfrom, s.buntil] = [s.from, mid];
    if (s.cfrom === null || s.cuntil === null) [s.cfrom, s.cuntil] = [mid, s.until];
  }
  return s;
}

function writeURL(push) {
  const url = `${location.pathname}?${urlstate.serialize(S)}`;
  if (url !== `${location.pathname}${location.search}`) history[push ? 'pushState' : 'replaceState'](null, '', url);
}

/** Changes the state, records it in the URL (a history entry when `push`), and updates the page. */
function commit(patch, push = true) {
  S = normalize({ ...S, ...patch });
  writeURL(push);
  load();
}

// ---- widgets ---------------------------------------------------------------

const tooltip = $('tooltip');
const graphHeight = () => Math.max(240, Math.round(innerHeight * 0.6));
const paneHeight = () => Math.max(160, Math.round(innerHeight * 0.36));

/** The measure of the main graph, table and timeline: 'both' shows on-CPU there. */
const M = () => (S.measure === 'both' ? 'cpu' : S.measure);

const flame = new FlameView($('graph'), {
  tooltip, maxHeight: graphHeight, label: 'Flame graph',
  describe: (i) => (S.view === 'diff' ? describeDiff(i) : describe(flame, i)),
  onZoom: (i) => zoomTo(i),
  onDraw: (ms) => firstDraw(ms),
});
const callers = new FlameView($('sw-callers'), {
  tooltip, maxHeight: paneHeight, label: 'Callers',
  describe: (i) => describe(callers, i), onZoom: (i) => callers.setFocus(i),
});
const callees = new FlameView($('sw-callees'), {
  tooltip, maxHeight: paneHeight, label: 'Callees',
  describe: (i) => describe(callees, i), onZoom: (i) => callees.setFocus(i),
});
callees.setIcicle(true);
// With measure=both: the off-CPU graph of the same range and filters, below.
const offFlame = new FlameView($('graph-off'), {
  tooltip, maxHeight: paneHeight, label: 'Off-CPU flame graph',
  describe: (i) => describeOff(i), onZoom: (i) => offFlame.setFocus(i),
});
const views = [flame, callers, callees];

const mainTimeline = new Timeline($('timelines'), {
  label: 'Samples over time — drag to select a range', tone: 'main',
  onSelect: (from, until) => commit({ from, until }),
});
const baseTimeline = new Timeline($('timelines'), {
  label: 'Baseline — drag to select', tone: 'base', height: 40,
  onSelect: (a, b) => commit({ bfrom: a, buntil: b }),
});
const cmpTimeline = new Timeline($('timelines'), {
  label: 'Comparison — drag to select', tone: 'cmp', height: 40,
  onSelect: (a, b) => commit({ cfrom: a, cuntil: b }),
});

const table = new TopTable($('table'), {
  onPick: (name) => {
    if (S.view === 'sandwich') commit({ fn: name });
    else commit({ q: `^${escapeRegex(name)}$` });
  },
  onSandwich: (name) => commit({ view: 'sandwich', fn: name }),
  onSort: (sort, dir) => commit({ sort, dir }, false),
});

// ---- loading ---------------------------------------------------------------

function step() {
  const span = S.until - S.from;
  const target = Math.max(30, Math.min(300, Math.floor(($('timelines').clientWidth || 1000) / 5)));
  return STEPS.find((s) => span / s <= target) || STEPS[STEPS.length - 1];
}

/** Fetches what the current state needs, then applies it. */
async function load() {
  const gen = ++generation;
  if (controller) controller.abort();
  controller = new AbortController();
  const signal = controller.signal;
  pending++;
  D.loading++;
  document.body.classList.add('loading');
  syncControls();
  const fresh = () => gen === generation;
  const errors = [];
  const guard = (p) => p.catch((e) => {
    if (e.name !== 'AbortError') errors.push(e.message);
  });
  try {
    // The profile is the critical path: ask for it first.
    const main = S.view === 'diff' ? guard(loadDiff(signal, fresh)) : guard(loadProfile(signal, fresh));
    const side = [guard(loadTimeline(signal, fresh)), guard(loadLabels(signal, fresh)), guard(loadOffCpu(signal, fresh))];
    await main;
    if (!fresh()) return;
    setError(errors[0] || '');
    apply();
    if (D.partial && S.view !== 'diff') {
      await guard(loadProfile(signal, fresh));
      if (!fresh()) return;
      setError(errors[0] || '');
      apply();
    }
    await Promise.all(side);
    if (!fresh()) return;
    if (errors.length) setError(errors[0]);
  } finally {
    pending--;
    D.loading--;
    if (!D.loading) document.body.classList.remove('loading');
    if (fresh()) requestAnimationFrame(() => resolveReady());
  }
}

/** Responses for ranges that end more than a minute ago can be cached; recent ones still grow. */
const settled = (until) => until < Date.now() * 1e6 - 60e9;

/** Whether the view can start from a pruned tree: the graph, unzoomed (boot.js decides alike). */
const firstPaintFits = () => S.view === 'graph' && S.zoom.length === 0;

/**
 * Loads the profile of the range: the pruned first-paint tree when the range
 * is new and the view allows it, else (or when called again) the whole tree.
 */
async function loadProfile(signal, fresh) {
  const url = api.profileURL(S.from, S.until, S.labels, 'json', M());
  if (url === D.profileURL && D.tree && !D.partial) return;
  const first = url !== D.profileURL && firstPaintFits();
  const fetchURL = first ? api.firstPaintURL(S.from, S.until, S.labels, M()) : url;
  const t0 = performance.now();
  let json;
  try {
    json = await api.getJSON(fetchURL, { signal, timing: first ? metrics.profile : metrics.whole, cached: settled(S.until) });
  } catch (e) {
    if (fresh() && e.name !== 'AbortError') {
      D.tree = null;
      D.profileURL = '';
      D.partial = false;
    }
    throw e;
  }
  if (!fresh()) return;
  const t1 = performance.now();
  D.tree = Tree.fromJSON(json);
  D.meta = json.meta || {};
  D.partial = first && D.meta.pruned > 0;
  D.profileURL = url;
  D.rows = null;
  D.sw = null;
  D.swKey = '';
  if (first || !metrics.fetchMs) {
    metrics.fetchMs = t1 - t0;
    metrics.buildMs = performance.now() - t1;
    metrics.firstNodes = D.tree.n;
  } else metrics.wholeFetchMs = t1 - t0;
  metrics.nodes = D.tree.n;
  metrics.names = D.tree.names.length;
}

async function loadDiff(signal, fresh) {
  const ua = api.profileURL(S.bfrom, S.buntil, S.labels, 'json', M());
  const ub = api.profileURL(S.cfrom, S.cuntil, S.labels, 'json', M());
  const key = `${ua}|${ub}`;
  if (key === D.diffURLs && D.diff) return;
  let a, b;
  try {
    [a, b] = await Promise.all([
      api.getJSON(ua, { signal, cached: settled(S.buntil) }),
      api.getJSON(ub, { signal, cached: settled(S.cuntil) }),
    ]);
  } catch (e) {
    if (fresh() && e.name !== 'AbortError') {
      D.diff = null;
      D.diffURLs = '';
    }
    throw e;
  }
  if (!fresh()) return;
  D.base = Tree.fromJSON(a);
  D.cmp = Tree.fromJSON(b);
  D.diff = diffTree(D.base, D.cmp);
  D.diff.meta = { base: a.meta || {}, cmp: b.meta || {} };
  D.diffRows = null;
  D.diffURLs = key;
}

async function loadTimeline(signal, fresh) {
  const url = `api/timeline?${api.query([...api.rangePairs(S.from, S.until, S.labels, M()), ['step', step()]])}`;
  if (url === D.timelineURL) return applyTimeline();
  const t = await api.getJSON(url, { signal, cached: settled(S.until) });
  if (!fresh()) return;
  if (!t || !Array.isArray(t.buckets)) throw new api.ApiError('malformed timeline from the server');
  D.timeline = { from: S.from, until: S.until, step: t.step || step(), buckets: t.buckets, measure: M() };
  D.timelineURL = url;
  applyTimeline();
}

/** With measure=both in the graph view, the off-CPU tree shown below the graph. */
async function loadOffCpu(signal, fresh) {
  const shown = S.measure === 'both' && S.view === 'graph';
  $('off-cpu').hidden = !shown;
  if (!shown) return;
  const url = api.profileURL(S.from, S.until, S.labels, 'json', 'off-cpu');
  if (url !== D.offURL) {
    const json = await api.getJSON(url, { signal, cached: settled(S.until) });
    if (!fresh()) return;
    D.offTree = Tree.fromJSON(json);
    D.offURL = url;
  }
  const tree = D.offTree;
  offFlame.setIcicle(S.icicle);
  if (offFlame.tree !== tree) offFlame.setTree(tree, profilePainter(tree, { dark: dark() }), 0);
  offFlame.showMessage(tree.total[0] > 0 ? null : 'No off-CPU time in this range (the agent records it with --off-cpu).');
  $('off-cpu-total').textContent = `${fmtAmount(tree.total[0], 'off-cpu')} off CPU`;
}

/** Label values in a natural order: numbers (pids) numerically, the rest alphabetically. */
function byValue(a, b) {
  const na = /^\d+$/.test(a), nb = /^\d+$/.test(b);
  if (na && nb) return Number(a) - Number(b);
  return na !== nb ? (na ? -1 : 1) : a < b ? -1 : a > b ? 1 : 0;
}

async function loadLabels(signal, fresh) {
  if (!D.labelKeys) {
    const r = await api.getJSON('api/labels', { signal });
    const keys = Array.isArray(r && r.keys) ? r.keys : [];
    D.labelKeys = [...LABEL_ORDER.filter((k) => keys.includes(k)), ...keys.filter((k) => !LABEL_ORDER.includes(k)).sort()];
    buildFilters();
  }
  const key = `${S.from}-${S.until}`;
  if (key === D.labelValuesKey) return syncFilters();
  const lists = await Promise.all(D.labelKeys.map((k) =>
    api.getJSON(`api/label-values?${api.query([['key', k], ['from', S.from], ['until', S.until]])}`, { signal })
      .then((r) => (Array.isArray(r && r.values) ? r.values.map(String).sort(byValue) : []))));
  if (!fresh()) return;
  D.labelKeys.forEach((k, j) => (D.labelValues[k] = lists[j]));
  D.labelValuesKey = key;
  syncFilters();
}

// ---- rendering the state ---------------------------------------------------

const dark = () => document.documentElement.dataset.theme === 'dark';

/** Renders everything from S and D (no fetching). */
function apply() {
  syncControls();
  const view = S.view;
  $('graph').hidden = view === 'sandwich';
  $('sandwich').hidden = view !== 'sandwich';
  $('legend').hidden = view !== 'diff';
  $('crumbs').hidden = view === 'sandwich';
  applyTimeline();
  if (D.offTree && offFlame.tree === D.offTree) offFlame.setPainter(profilePainter(D.offTree, { dark: dark() }));

  const { re, error } = compile(S.q);
  D.searchError = error || '';
  const tree = view === 'diff' ? D.diff : D.tree;
  if (!tree) {
    flame.setTree(null, null);
    flame.showMessage(D.error ? 'Could not load the profile (see the message above).' : 'Loading…');
    $('match').textContent = '';
    renderTable(null, re);
    return;
  }
  const match = re ? matchNames(tree.names, re) : null;

  // Zoom target from its path; an unknown path falls back to the root
  // (only shown, not written, while the tree is pruned: the whole one may have it).
  let focus = S.zoom.length ? tree.find(S.zoom) : 0;
  if (focus < 0) {
    focus = 0;
    if (!(D.partial && view !== 'diff')) {
      S.zoom = [];
      writeURL(false);
    }
  }
  const painter = view === 'diff' ? diffPainter(tree, match) : profilePainter(tree, { dark: dark(), match });

  if (view !== 'sandwich') {
    flame.setIcicle(S.icicle);
    if (flame.tree !== tree) flame.setTree(tree, painter, focus);
    else {
      flame.setPainter(painter);
      if (flame.focus !== focus) flame.setFocus(focus);
    }
    const none = M() === 'off-cpu'
      ? 'No off-CPU time in this range (the agent records it with --off-cpu). Pick a wider range or clear the filters.'
      : 'No samples in this range. Pick a wider range or clear the filters.';
    flame.showMessage(tree.total[0] > 0 ? null : none);
    renderCrumbs(tree, focus);
  } else {
    renderSandwich(re);
  }

  // Search summary: matched share of the whole profile and of the zoomed view.
  if (D.searchError) {
    $('match').textContent = `Invalid regex: ${D.searchError}`;
    $('match').className = 'match invalid';
    D.matched = null;
  } else if (match && D.partial && view !== 'diff') {
    $('match').textContent = 'Searching all frames…';
    $('match').className = 'match';
    D.matched = null;
  } else if (match) {
    const all = matchStats(tree, match, 0);
    const inView = focus > 0 ? matchStats(tree, match, focus) : all;
    const whole = tree.total[0] || 1;
    D.matched = { samples: all.samples, nodes: all.nodes, pct: all.samples / whole, viewPct: inView.samples / (tree.total[focus] || 1) };
    let text = all.nodes
      ? `Matched ${fmtPct(D.matched.pct)} of the profile`
      : 'No match';
    if (all.nodes && view !== 'diff') text += ` (${fmtCount(all.samples)} samples)`;
    if (all.nodes && focus > 0) text += `, ${fmtPct(D.matched.viewPct)} of the view`;
    $('match').textContent = text;
    $('match').className = 'match';
  } else {
    $('match').textContent = '';
    D.matched = null;
  }
  renderStatus(tree);
  scheduleTable(re);
  metrics.applied = performance.now();
}

function diffPainter(tree, match) {
  const d = dark();
  const dim = d ? { fill: 'hsl(220,6%,22%)', text: '#7d838c' } : { fill: 'hsl(40,8%,93%)', text: '#8a8d93' };
  const col = (i) => (match && !match[tree.name[i]] ? dim : diffColor(relChange(tree, i), S.palette, d));
  return {
    fill: (i) => col(i).fill,
    text: (i) => col(i).text,
    tag: (i) => classify(tree, i),
  };
}

function renderCrumbs(tree, focus) {
  const nav = $('crumbs');
  nav.replaceChildren();
  const path = tree.ancestors(focus);
  path.forEach((i, k) => {
    if (k) {
      const sep = document.createElement('span');
      sep.className = 'sep';
      sep.setAttribute('aria-hidden', 'true');
      sep.textContent = '›';
      nav.append(sep);
    }
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'crumb';
    b.textContent = k === 0 ? 'all' : tree.label(i);
    b.title = k === 0 ? 'Reset zoom (Esc)' : `Zoom to ${tree.label(i)}`;
    if (i === focus) b.setAttribute('aria-current', 'true');
    b.addEventListener('click', () => zoomTo(i));
    nav.append(b);
  });
  if (focus > 0) {
    const info = document.createElement('span');
    info.className = 'crumb-info muted';
    info.textContent = `${fmtPct(tree.total[focus] / (tree.total[0] || 1))} of the profile`;
    nav.append(info);
  }
}

function renderSandwich(re) {
  const tree = D.tree;
  let fn = S.fn;
  if (!fn || !tree.names.includes(fn)) {
    // Default: the function with the most self time.
    let best = -1;
    for (let i = 1; i < tree.n; i++) if (best < 0 || tree.self[i] > tree.self[best]) best = i;
    fn = best > 0 ? tree.label(best) : '';
  }
  $('sw-fn').textContent = fn || '—';
  const key = `${D.profileURL}#${fn}`;
  if (key !== D.swKey) {
    D.sw = fn ? sandwich(tree, fn) : null;
    D.swKey = key;
  }
  const sw = D.sw;
  for (const [view, t] of [[callers, sw && sw.callers], [callees, sw && sw.callees]]) {
    if (!t) {
      view.setTree(null, null);
      view.showMessage(tree.total[0] > 0 ? 'Pick a function in the table (⇅) or press s over a frame.' : 'No samples in this range.');
      continue;
    }
    const painter = profilePainter(t, { dark: dark(), match: re ? matchNames(t.names, re) : null });
    if (view.tree !== t) view.setTree(t, painter, 0);
    else view.setPainter(painter);
  }
  $('sw-info').textContent = sw
    ? `total ${fmtAmount(sw.total, M())}, ${fmtPct(sw.total / (tree.total[0] || 1))} of the profile`
    : '';
}

function renderStatus(tree) {
  const parts = [];
  if (S.view === 'diff') {
    parts.push(`baseline ${fmtAmount(tree.A, M())}`, `comparison ${fmtAmount(tree.B, M())}`);
  } else if (M() === 'off-cpu') {
    parts.push(`${fmtAmount(tree.total[0], M())} off CPU`);
  } else {
    const period = (D.meta && D.meta.period_ns) || 0;
    parts.push(`${fmtCount(tree.total[0])} samples`);
    if (period) parts.push(`${fmtDuration(tree.total[0] * period)} CPU`, `${Math.round(1e9 / period)} Hz`);
  }
  if (D.partial && S.view !== 'diff') parts.push(`loading ${fmtCount(D.meta.pruned)} more frames…`);
  else parts.push(`${fmtCount(tree.n)} frames`, `${fmtCount(tree.names.length)} functions`);
  parts.push(`depth ${tree.maxDepth}`);
  $('status').textContent = parts.join(' · ');
}

let tableTimer = 0;
/** The table is built after the graph's first paint, so big profiles show the graph first. */
function scheduleTable(re) {
  if (tableTimer) return;
  pending++;
  tableTimer = requestAnimationFrame(() => setTimeout(() => {
    tableTimer = 0;
    pending--;
    renderTable(S.view === 'diff' ? D.diff : D.tree, compile(S.q).re);
  }, 0));
}

function renderTable(tree, re) {
  if (!tree || (D.partial && S.view !== 'diff')) {
    table.setData({ rows: [], mode: 'profile', whole: 1 });
    return;
  }
  let rows, mode = 'profile';
  if (S.view === 'diff') {
    rows = D.diffRows || (D.diffRows = diffRows(D.base, D.cmp));
    mode = 'diff';
  } else rows = D.rows || (D.rows = profileRows(tree));
  const exact = /^\^(.*)\$$/.exec(S.q);
  const selected = S.view === 'sandwich' ? $('sw-fn').textContent : exact ? exact[1].replace(/\\(.)/g, '$1') : '';
  table.setData({ rows, mode, whole: tree.total[0], match: re, selected, dark: dark(), sort: S.sort, dir: S.dir, measure: M() });
}

function applyTimeline() {
  const t = D.timeline;
  const diff = S.view === 'diff';
  mainTimeline.el.hidden = diff;
  baseTimeline.el.hidden = cmpTimeline.el.hidden = !diff;
  if (!t) return;
  for (const tl of diff ? [baseTimeline, cmpTimeline] : [mainTimeline]) if (tl.data !== t) tl.setData(t);
  mainTimeline.setSelection(null, null);
  baseTimeline.setSelection(S.bfrom, S.buntil);
  cmpTimeline.setSelection(S.cfrom, S.cuntil);
}

// ---- tooltips --------------------------------------------------------------

function describeOff(i) {
  const t = offFlame.tree;
  return {
    title: t.label(i),
    sub: KIND_NAMES[t.kind[i]] ? `${KIND_NAMES[t.kind[i]]} frame · depth ${t.depth[i]} · off CPU` : 'off CPU',
    rows: [
      ['Total', fmtAmount(t.total[i], 'off-cpu')],
      ['Self', fmtAmount(t.self[i], 'off-cpu')],
      ['Of off-CPU', fmtPct(t.total[i] / (t.total[0] || 1))],
    ],
    hint: 'Click to zoom',
  };
}

function describe(view, i) {
  const t = view.tree;
  if (t.kind[i] === KIND.PRUNED) {
    return {
      title: `${fmtAmount(t.total[i], M())} in smaller frames`,
      sub: 'frames too narrow to draw, merged for the first paint; all frames load in a moment',
      rows: [['Of profile', fmtPct(t.total[i] / (t.total[0] || 1))]],
      hint: 'Click to zoom into the caller',
    };
  }
  const period = (M() === 'cpu' && D.meta && D.meta.period_ns) || 0;
  const whole = D.tree ? D.tree.total[0] : t.total[0];
  const inView = t.total[view.focus] || 1;
  const dur = (n) => (period ? ` · ${fmtDuration(n * period)}` : '');
  return {
    title: t.label(i),
    sub: KIND_NAMES[t.kind[i]] ? `${KIND_NAMES[t.kind[i]]} frame · depth ${t.depth[i]}` : '',
    rows: [
      ['Total', `${fmtAmount(t.total[i], M())}${dur(t.total[i])}`],
      ['Self', `${fmtAmount(t.self[i], M())}${dur(t.self[i])}`],
      ['Of view', fmtPct(t.total[i] / inView)],
      ['Of profile', fmtPct(t.total[i] / (whole || 1))],
    ],
    hint: view === flame ? 'Click to zoom · s: sandwich view' : 'Click to zoom',
  };
}

function describeDiff(i) {
  const t = D.diff, A = t.A || 1, B = t.B || 1;
  const a = t.extra.a[i], b = t.extra.b[i];
  const rel = relChange(t, i);
  const cls = classify(t, i);
  return {
    title: t.label(i),
    sub: `${KIND_NAMES[t.kind[i]] || ''} frame · ${cls === 'same' ? 'about the same' : cls}`,
    rows: [
      ['Baseline', `${fmtAmount(a, M())} · ${fmtPct(a / A)}`],
      ['Comparison', `${fmtAmount(b, M())} · ${fmtPct(b / B)}`],
      ['Change', `${fmtDeltaPct(b / B - a / A)} (${rel > 0 ? '+' : ''}${Math.round(rel * 100)}% relative)`, cls],
      ['Self', `${fmtPct(t.extra.aSelf[i] / A)} → ${fmtPct(t.extra.bSelf[i] / B)}`],
    ],
    hint: 'Click to zoom',
  };
}

// ---- actions ---------------------------------------------------------------

function zoomTo(i) {
  const tree = flame.tree;
  if (!tree) return;
  if (tree.kind[i] === KIND.PRUNED) i = tree.parent[i];
  commit({ zoom: i > 0 ? tree.path(i) : [] });
}

function zoomOutOne() {
  const tree = flame.tree;
  if (tree && flame.focus > 0) zoomTo(tree.parent[flame.focus]);
}

function setError(msg) {
  D.error = msg;
  $('error').hidden = !msg;
  $('error-text').textContent = msg;
}

function syncControls() {
  for (const b of document.querySelectorAll('.views button')) b.setAttribute('aria-pressed', String(b.dataset.view === S.view));
  for (const b of document.querySelectorAll('.measures button')) b.setAttribute('aria-pressed', String(b.dataset.measure === S.measure));
  document.body.dataset.measure = S.measure;
  const search = $('search');
  if (document.activeElement !== search && search.value !== S.q) search.value = S.q;
  $('icicle').setAttribute('aria-pressed', String(S.icicle));
  $('palette').setAttribute('aria-pressed', String(S.palette === 'cb'));
  document.body.dataset.palette = S.palette;
  document.body.dataset.view = S.view;
  const span = S.until - S.from;
  for (const b of document.querySelectorAll('.presets button')) b.setAttribute('aria-pressed', String(Number(b.dataset.span) * 1e9 === span));
  $('range-text').textContent = `${fmtRange(S.from, S.until)} (${fmtDuration(span)})`;
  // Export: the current range (the comparison range in the diff view) and filters.
  const [ef, eu] = S.view === 'diff' ? [S.cfrom, S.cuntil] : [S.from, S.until];
  for (const f of ['folded', 'pprof', 'svg']) $(`exp-${f}`).href = api.profileURL(ef, eu, S.labels, f, M());
  syncFilters();
}

function buildFilters() {
  const box = $('filters');
  box.replaceChildren();
  for (const k of D.labelKeys) {
    const label = document.createElement('label');
    label.className = 'filter';
    const span = document.createElement('span');
    span.textContent = k;
    const sel = document.createElement('select');
    sel.dataset.key = k;
    sel.addEventListener('change', () => {
      const labels = S.labels.filter(([key]) => key !== k);
      if (sel.value) labels.push([k, sel.value]);
      commit({ labels, zoom: [] });
    });
    label.append(span, sel);
    box.append(label);
  }
  const clear = document.createElement('button');
  clear.type = 'button';
  clear.className = 'btn small';
  clear.id = 'clear-filters';
  clear.textContent = 'Clear filters';
  clear.addEventListener('click', () => commit({ labels: [], zoom: [] }));
  box.append(clear);
  box.hidden = !D.labelKeys.length;
}

function syncFilters() {
  if (!D.labelKeys) return;
  for (const sel of document.querySelectorAll('#filters select')) {
    const k = sel.dataset.key;
    const current = (S.labels.find(([key]) => key === k) || [])[1] || '';
    const values = (D.labelValues[k] || []).slice(0, 5000);
    if (current && !values.includes(current)) values.unshift(current);
    const sig = values.join('\u0000');
    if (sel.dataset.sig !== sig) {
      sel.dataset.sig = sig;
      const any = new Option(`any (${fmtCount(values.length)})`, '');
      sel.replaceChildren(any, ...values.map((v) => new Option(v, v)));
    }
    sel.value = current;
    sel.classList.toggle('active', !!current);
  }
  $('clear-filters').hidden = !S.labels.length;
}

// ---- first render metric and test hook -------------------------------------

function firstDraw(ms) {
  metrics.drawMs = ms;
  if (!metrics.firstRender && flame.tree && flame.tree.total[0] > 0) metrics.firstRender = performance.now();
  if (!metrics.complete && metrics.firstRender && flame.tree === D.tree && !D.partial) metrics.complete = performance.now();
}

function idle() {
  return new Promise((resolve) => {
    const quiet = () => pending === 0 && !views.some((v) => v.busy);
    const check = () => {
      if (quiet()) requestAnimationFrame(() => (quiet() ? resolve() : setTimeout(check, 10)));
      else setTimeout(check, 10);
    };
    check();
  });
}

window.__scorch = {
  ready,
  idle,
  metrics,
  /** Rectangles drawn in the last frame of a pane: 'graph', 'callers', 'callees' or 'off' (measure=both). */
  drawn: (pane = 'graph') => ({ graph: flame, callers, callees, off: offFlame }[pane]).drawn(),
  state: () => ({
    ...structuredClone(S),
    theme: document.documentElement.dataset.theme,
    focus: flame.tree && flame.focus > 0 ? flame.tree.label(flame.focus) : 'all',
    matched: D.matched,
    searchError: D.searchError,
    error: D.error,
    samples: D.tree ? D.tree.total[0] : 0,
    partial: D.partial,
    sandwich: S.view === 'sandwich' ? $('sw-fn').textContent : '',
  }),
};

// ---- theme -----------------------------------------------------------------

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  $('theme').setAttribute('aria-pressed', String(theme === 'dark'));
  const css = getComputedStyle(document.documentElement);
  const v = (name) => css.getPropertyValue(name).trim();
  for (const view of views) view.setStyle({ merged: v('--merged'), accent: v('--hover') });
  for (const tl of [mainTimeline, baseTimeline, cmpTimeline]) {
    const tone = tl === baseTimeline ? 'base' : tl === cmpTimeline ? 'cmp' : 'main';
    tl.setColors({
      bar: v(`--tl-${tone}`), sel: v(`--tl-${tone}-sel`), edge: v(`--tl-${tone}-edge`),
      text: v('--muted'), grid: v('--grid'), shade: v('--tl-shade'),
    });
  }
}

function storedTheme() {
  try {
    return localStorage.getItem('scorch-theme');
  } catch {
    return null;
  }
}

const schemeQuery = matchMedia('(prefers-color-scheme: dark)');
applyTheme(storedTheme() || (schemeQuery.matches ? 'dark' : 'light'));
schemeQuery.addEventListener('change', (e) => {
  if (!storedTheme()) {
    applyTheme(e.matches ? 'dark' : 'light');
    apply();
  }
});

function toggleTheme() {
  const next = dark() ? 'light' : 'dark';
  try {
    localStorage.setItem('scorch-theme', next);
  } catch { /* private mode: the toggle still works for this page */ }
  applyTheme(next);
  apply();
}

// ---- events ----------------------------------------------------------------

for (const b of document.querySelectorAll('.views button')) {
  b.addEventListener('click', () => commit({ view: b.dataset.view }));
}
for (const b of document.querySelectorAll('.measures button')) {
  // Another measure is another profile: the zoom path may not exist in it.
  b.addEventListener('click', () => commit({ measure: b.dataset.measure, zoom: [] }));
}
for (const b of document.querySelectorAll('.presets button')) {
  b.addEventListener('click', () => {
    const until = Math.floor(Date.now() / 10000) * 10e9;
    commit({ from: until - Number(b.dataset.span) * 1e9, until, bfrom: null, buntil: null, cfrom: null, cuntil: null });
  });
}
$('time-out').addEventListener('click', () => {
  const span = S.until - S.from;
  const now = Math.ceil(Date.now() / 1000) * 1e9;
  const until = Math.min(now, S.until + Math.round(span / 2e9) * 1e9);
  commit({ from: until - 2 * span, until, bfrom: null, buntil: null, cfrom: null, cuntil: null });
});
$('icicle').addEventListener('click', () => commit({ icicle: !S.icicle }, false));
$('palette').addEventListener('click', () => commit({ palette: S.palette === 'cb' ? 'rb' : 'cb' }, false));
$('theme').addEventListener('click', toggleTheme);
$('error-close').addEventListener('click', () => setError(''));

const help = $('help');
// A native modal <dialog>: it keeps focus inside, closes on Esc and gives
// focus back to where it was.
function toggleHelp() {
  if (help.open) help.close();
  else {
    tooltip.hidden = true;
    help.showModal();
    $('help-close').focus();
  }
}
help.addEventListener('click', (e) => {
  if (e.target === help) help.close(); // click on the backdrop
});
$('help-btn').addEventListener('click', toggleHelp);

let searchTimer = 0;
/** Applies the search box, now or after a short pause in typing. */
function searchSoon(delay, push) {
  if (searchTimer) clearTimeout(searchTimer);
  else pending++;
  searchTimer = setTimeout(() => {
    searchTimer = 0;
    pending--;
    commit({ q: $('search').value }, push);
  }, delay);
}
$('search').addEventListener('input', () => searchSoon(120, false));
$('search').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') searchSoon(0, true);
});

document.addEventListener('keydown', (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
  const typing = e.target.closest && e.target.closest('input, select, textarea');
  if (e.key === 'Escape') {
    if (help.open) return; // the dialog closes itself
    tooltip.hidden = true;
    if (typing) e.target.blur();
    else if (S.view !== 'sandwich' && flame.focus > 0) commit({ zoom: [] });
    else if (S.q) commit({ q: '' });
    return;
  }
  if (typing) return;
  switch (e.key) {
    case '/':
      e.preventDefault();
      $('search').focus();
      $('search').select();
      break;
    case '?':
      e.preventDefault();
      toggleHelp();
      break;
    case 'i':
      commit({ icicle: !S.icicle }, false);
      break;
    case 't':
      toggleTheme();
      break;
    case 'u':
      zoomOutOne();
      break;
    case 's': {
      const v = views.find((x) => x.hover >= 0);
      if (v) commit({ view: 'sandwich', fn: v.tree.label(v.hover) });
      break;
    }
    case '1': case '2': case '3':
      commit({ view: urlstate.VIEWS[Number(e.key) - 1] });
      break;
  }
});

addEventListener('popstate', () => {
  S = normalize(urlstate.parse(location.search));
  load();
});
addEventListener('resize', () => {
  for (const v of views) v.resize();
});
// A tooltip never outlives the pointer leaving the window or a scroll.
addEventListener('blur', () => (tooltip.hidden = true));
addEventListener('scroll', () => (tooltip.hidden = true), { passive: true });

// ---- start -----------------------------------------------------------------

S = normalize(S);
writeURL(false);
load();
