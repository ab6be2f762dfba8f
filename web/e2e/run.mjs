// Browser tests for the scorch page.
//
//   node web/e2e/run.mjs [name-filter]
//
// Starts the fixture server (or uses SCORCH_URL, a server loaded with the
// same fixture dataset), drives headless Chromium, prints one line per test
// and exits non-zero when any fails. Expectations are computed here from the
// fixture stacks (fixtures.mjs), independently of any server.

import { launch, target, newPage, open, idle, state, drawn } from './lib.mjs';
import { buildDataset, mergeStacks, frameName, RANGES, T0 } from './fixtures.mjs';
import { fmtWait } from '../page/format.js';

const DS = buildDataset();
const SMALL = { from: RANGES.small.from, until: RANGES.small.until };
const DIFF = {
  from: RANGES.diff.from, until: RANGES.diff.until, view: 'diff',
  bfrom: RANGES.diffBase.from, buntil: RANGES.diffBase.until, cfrom: RANGES.diffCmp.from, cuntil: RANGES.diffCmp.until,
};
const BIG = { from: RANGES.big.from, until: RANGES.big.until };

// ---- reference model ---------------------------------------------------------

/** Stacks of a range as arrays of frame names, with sums the tests need. */
function model(range, labels = []) {
  const stacks = [...mergeStacks(DS, range.from, range.until, labels)].map(([l, n]) => [l.split(';').map(frameName), n]);
  const sum = (pred) => stacks.reduce((s, [f, n]) => s + (pred(f) ? n : 0), 0);
  return {
    stacks,
    total: sum(() => true),
    prefix: (path) => sum((f) => path.every((p, i) => f[i] === p)),
    matched: (re) => sum((f) => f.some((x) => re.test(x))), // a stack counts once
    self: (fn) => sum((f) => f[f.length - 1] === fn),
    fnTotal: (fn) => sum((f) => f.includes(fn)),
    names: new Set(stacks.flatMap(([f]) => f)),
  };
}

function pct(f) {
  const p = f * 100;
  return p >= 10 ? `${p.toFixed(1)}%` : p >= 0.1 ? `${p.toFixed(2)}%` : `${p.toPrecision(2)}%`;
}

// ---- assertions ----------------------------------------------------------------

class Failure extends Error {}
function ok(cond, msg) {
  if (!cond) throw new Failure(msg);
}
function eq(a, b, msg) {
  const ja = JSON.stringify(a), jb = JSON.stringify(b);
  if (ja !== jb) throw new Failure(`${msg}: expected ${jb}, got ${ja}`);
}
function near(a, b, tol, msg) {
  if (!(Math.abs(a - b) <= tol)) throw new Failure(`${msg}: expected ${b} ± ${tol}, got ${a}`);
}

// ---- page helpers ----------------------------------------------------------------

const byName = (rects, name) => rects.filter((r) => r.name === name);
const one = (rects, name) => {
  const r = byName(rects, name);
  ok(r.length >= 1, `frame "${name}" is drawn (drawn: ${[...new Set(rects.map((x) => x.name))].slice(0, 30).join(', ')})`);
  return r[0];
};

/** Page coordinates of the centre of a drawn rectangle. */
async function centre(page, r, pane = '#graph') {
  const box = await page.locator(`${pane} .flame-overlay`).boundingBox();
  return { x: box.x + r.x + Math.min(r.w / 2, 40), y: box.y + r.y + r.h / 2 };
}

async function clickFrame(page, name, pane = '#graph', paneName = 'graph') {
  const r = one(await drawn(page, paneName), name);
  const c = await centre(page, r, pane);
  await page.mouse.click(c.x, c.y);
  await idle(page);
}

/** Non-transparent pixels of a canvas, and the RGBA at a CSS-pixel point. */
function pixels(page, selector, at = null) {
  return page.evaluate(([sel, at]) => {
    const c = document.querySelector(sel);
    const ctx = c.getContext('2d');
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let painted = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) painted++;
    let px = null;
    if (at) {
      const k = c.width / c.clientWidth;
      px = [...ctx.getImageData(Math.floor(at[0] * k), Math.floor(at[1] * k), 1, 1).data];
    }
    return { painted, area: c.width * c.height, px };
  }, [selector, at]);
}

const hue = (fill) => Number(/^hsl\((\d+(?:\.\d+)?)/.exec(fill)[1]);
const profileReqs = (guard) => guard.requests.filter((u) => u.includes('/api/profile?') && !u.includes('format=folded'));

// ---- tests -------------------------------------------------------------------

const tests = [];
const test = (name, fn, opts = {}) => tests.push({ name, fn, opts });

test('renders the flame graph (hook and pixels)', async ({ page, guard }) => {
  const m = model(SMALL);
  await open(page, BASE, SMALL);
  eq(profileReqs(guard).length, 1, 'the profile is requested once (boot.js prefetch adopted)');
  const rects = await drawn(page);
  const root = one(rects, 'all');
  eq(root.total, m.total, 'root total = fixture samples');
  for (const n of ['api', 'db', 'worker', 'main', 'handle_request', 'parse_json', 'compare', 'walk', 'visit', 'vfs_read']) one(rects, n);
  const hr = one(rects, 'handle_request');
  eq(hr.total, m.prefix(['api', 'main', 'handle_request']), 'handle_request total');
  near(hr.w / root.w, hr.total / m.total, 0.01, 'handle_request width is its share of the root');
  const vfs = one(rects, 'vfs_read');
  eq(vfs.kind, 1, 'vfs_read is a kernel frame');
  eq(one(rects, 'api').kind, 3, 'process frame kind');
  ok(root.y > hr.y, 'flame orientation: root below its descendants');
  const px = await pixels(page, '#graph .flame-canvas', [root.x + root.w / 2, root.y + root.h / 2]);
  ok(px.painted > px.area * 0.1, `canvas is not blank (${px.painted} painted px of ${px.area})`);
  ok(px.px[3] === 255, 'root rectangle is painted');
  const s = await state(page);
  eq(s.samples, m.total, 'state samples');
  const status = await page.textContent('#status');
  ok(status.includes(`${m.total} samples`), `status shows sample count (${status})`);
});

test('without a range in the URL the page shows the last hour', async ({ page, guard }) => {
  const before = Date.now() * 1e6;
  await page.goto(BASE.url);
  await page.evaluate(() => window.__scorch.ready);
  await idle(page);
  const s = await state(page);
  ok(s.until >= before - 20e9 && s.until <= Date.now() * 1e6 + 1e9, `until is now (${s.until})`);
  eq(s.until - s.from, 3600e9, 'from is an hour earlier');
  eq(s.until % 1e9, 0, 'whole seconds');
  const u = new URL(page.url()).searchParams;
  eq([u.get('from'), u.get('until')], [String(s.from), String(s.until)], 'range written to the URL');
  const reqs = profileReqs(guard);
  eq(reqs.length, 1, 'one profile request');
  eq(new URL(reqs[0]).searchParams.get('until'), String(s.until), 'for that range');
  ok(await page.isVisible('#graph'), 'graph pane shown');
});

test('hover tooltip shows self, total and percentages, and does not trap', async ({ page }) => {
  const m = model(SMALL);
  await open(page, BASE, SMALL);
  const hr = one(await drawn(page), 'handle_request');
  const c = await centre(page, hr);
  await page.mouse.move(c.x, c.y);
  await page.waitForSelector('#tooltip:not([hidden])');
  const text = await page.textContent('#tooltip');
  const total = m.prefix(['api', 'main', 'handle_request']);
  ok(text.includes('handle_request'), 'tooltip names the frame');
  ok(text.includes(`${total} samples`), `tooltip total ${total} (${text})`);
  ok(text.includes(`Self0 samples`), `tooltip self (${text})`);
  ok(text.includes(`Of view${pct(total / m.total)}`), `tooltip % of view (${text})`);
  ok(text.includes(`Of profile${pct(total / m.total)}`), `tooltip % of profile (${text})`);
  eq(await page.$eval('#tooltip', (t) => getComputedStyle(t).pointerEvents), 'none', 'tooltip ignores the pointer');
  await page.mouse.move(c.x, c.y + 400);
  await page.waitForSelector('#tooltip', { state: 'hidden' });
  // After zooming, % of view and % of profile differ.
  await clickFrame(page, 'main');
  const parse = one(await drawn(page), 'parse_json');
  const pc = await centre(page, parse);
  await page.mouse.move(pc.x, pc.y);
  await page.waitForSelector('#tooltip:not([hidden])');
  const t2 = await page.textContent('#tooltip');
  ok(t2.includes(`Of view${pct(m.self('parse_json') / m.prefix(['api', 'main']))}`), `zoomed % of view (${t2})`);
  ok(t2.includes(`Of profile${pct(m.self('parse_json') / m.total)}`), `zoomed % of profile (${t2})`);
});

test('click zooms into a frame; breadcrumb and Esc zoom back out', async ({ page }) => {
  await open(page, BASE, SMALL);
  const before = await drawn(page);
  const width = one(before, 'all').w;
  await clickFrame(page, 'handle_request');
  let s = await state(page);
  eq(s.zoom, ['api', 'main', 'handle_request'], 'zoom path in state');
  eq(s.focus, 'handle_request', 'focus');
  ok(new URL(page.url()).searchParams.get('zoom') === 'api;main;handle_request', 'zoom in the URL');
  let rects = await drawn(page);
  const hr = one(rects, 'handle_request');
  near(hr.x, 0, 1, 'zoomed frame starts at the left edge');
  near(hr.w, width, 2, 'zoomed frame spans the width');
  eq(byName(rects, 'db').length, 0, 'frames outside the zoomed subtree are not drawn');
  ok(one(rects, 'main').ancestor, 'ancestors are drawn as context');
  ok(one(rects, 'parse_json').w > one(before, 'parse_json').w * 1.5, 'children got wider');
  const crumbs = await page.$$eval('#crumbs .crumb', (b) => b.map((x) => x.textContent));
  eq(crumbs, ['all', 'api', 'main', 'handle_request'], 'breadcrumb trail');
  // Breadcrumb back to "main", then to "all".
  await page.click('#crumbs .crumb:nth-of-type(3)');
  await idle(page);
  eq((await state(page)).focus, 'main', 'breadcrumb zooms out to main');
  await page.click('#crumbs .crumb:first-of-type');
  await idle(page);
  s = await state(page);
  eq(s.zoom, [], 'breadcrumb "all" resets the zoom');
  one(await drawn(page), 'db');
  // Click an ancestor bar to zoom out; Esc resets; browser back restores.
  await clickFrame(page, 'parse_json');
  await clickFrame(page, 'api');
  eq((await state(page)).focus, 'api', 'click on an ancestor zooms out to it');
  await page.keyboard.press('Escape');
  await idle(page);
  eq((await state(page)).zoom, [], 'Esc resets the zoom');
  await page.goBack();
  await idle(page);
  eq((await state(page)).focus, 'api', 'browser back restores the previous zoom');
  await page.keyboard.press('u');
  await idle(page);
  eq((await state(page)).focus, 'all', 'u zooms out one level');
});

test('regex search highlights matches and reports the matched share', async ({ page }) => {
  const m = model(SMALL);
  await open(page, BASE, SMALL);
  await page.fill('#search', 'walk');
  await idle(page);
  const expected = m.matched(/walk/i);
  let s = await state(page);
  eq(s.matched.samples, expected, 'matched samples count recursion once');
  ok(expected < m.fnTotal('walk') * 3, 'fixture has recursion');
  const text = await page.textContent('#match');
  ok(text.includes(pct(expected / m.total)), `match summary shows ${pct(expected / m.total)} (${text})`);
  const rects = await drawn(page);
  for (const r of rects) eq(r.tag, /walk/i.test(r.name) ? 'match' : 'dim', `highlight of ${r.name}`);
  eq(new URL(page.url()).searchParams.get('q'), 'walk', 'search in the URL');
  // Matching frames keep their colour, others are greyed: compare saturation via pixels.
  const w = one(rects, 'walk'), d = one(rects, 'db');
  const pw = (await pixels(page, '#graph .flame-canvas', [w.x + 2, w.y + 2])).px;
  const pd = (await pixels(page, '#graph .flame-canvas', [d.x + 2, d.y + 2])).px;
  const sat = ([r, g, b]) => Math.max(r, g, b) - Math.min(r, g, b);
  ok(sat(pw) > sat(pd) + 40, `match is vivid (${pw}) and non-match greyed (${pd})`);
  // Alternation and anchors.
  await page.fill('#search', '^(parse_json|deflate)$');
  await idle(page);
  eq((await state(page)).matched.samples, m.matched(/^(parse_json|deflate)$/), 'regex alternation');
  // Smart case: an upper-case letter makes the search case-sensitive.
  await page.fill('#search', 'Walk');
  await idle(page);
  ok((await page.textContent('#match')).includes('No match'), 'case-sensitive with a capital');
  // Invalid regex: a message, no exception, the graph still drawn.
  await page.fill('#search', 'parse(');
  await idle(page);
  s = await state(page);
  ok(s.searchError, 'invalid regex reported in state');
  ok((await page.textContent('#match')).startsWith('Invalid regex'), 'invalid regex message');
  ok((await drawn(page)).length > 10, 'graph still drawn');
  // Zoomed: percentage of the view too.
  await page.fill('#search', 'compare');
  await idle(page);
  await clickFrame(page, 'db');
  const t = await page.textContent('#match');
  ok(t.includes(`${pct(m.matched(/compare/) / m.prefix(['db']))} of the view`), `view share (${t})`);
});

test('top-functions table sorts and links to the graph', async ({ page }) => {
  const m = model(SMALL);
  await open(page, BASE, SMALL);
  const rowsOf = () => page.$$eval('.top-table tbody tr', (trs) => trs.map((tr) => tr.dataset.name));
  const names = [...m.names];
  const bySelf = names.slice().sort((a, b) => m.self(b) - m.self(a) || (a < b ? -1 : 1));
  eq((await rowsOf()).slice(0, 6), bySelf.slice(0, 6), 'default order: self, descending');
  // Self column cells carry the right numbers.
  const first = await page.$eval('.top-table tbody tr td', (td) => td.textContent);
  ok(first.startsWith(String(m.self(bySelf[0]))), `self cell (${first})`);
  await page.click('.top-table th .sort[data-key="total"]');
  await idle(page);
  const byTotal = names.slice().sort((a, b) => m.fnTotal(b) - m.fnTotal(a) || (a < b ? -1 : 1));
  eq((await rowsOf()).slice(0, 6), byTotal.slice(0, 6), 'sorted by total');
  eq(await page.getAttribute('.top-table th:nth-child(2)', 'aria-sort'), 'descending', 'aria-sort');
  eq((await state(page)).sort, 'total', 'sort in state');
  // Recursive function: total counted once per stack.
  const walkTotal = await page.$eval('.top-table tr[data-name="walk"] td:nth-child(2)', (td) => td.textContent);
  ok(walkTotal.startsWith(String(m.fnTotal('walk'))), `walk total ${m.fnTotal('walk')} (${walkTotal})`);
  await page.click('.top-table th .sort[data-key="total"]');
  await idle(page);
  const asc = names.slice().sort((a, b) => m.fnTotal(a) - m.fnTotal(b) || (a < b ? -1 : 1));
  eq((await rowsOf()).slice(0, 4), asc.slice(0, 4), 'second click: ascending');
  await page.click('.top-table th .sort[data-key="name"]');
  await idle(page);
  eq((await rowsOf()).slice(0, 5), names.slice().sort().slice(0, 5), 'sorted by name');
  // Click a function: the graph highlights it.
  await page.click('.top-table tr[data-name="compare"] button.fn');
  await idle(page);
  const s = await state(page);
  eq(s.q, '^compare$', 'row click searches the function');
  eq(await page.inputValue('#search'), '^compare$', 'search box shows it');
  eq(s.matched.samples, m.fnTotal('compare'), 'matched share = function total');
  const matched = (await drawn(page)).filter((r) => r.tag === 'match').map((r) => r.name);
  eq(matched, ['compare', 'compare'], 'both compare frames highlighted');
  ok(await page.$eval('.top-table tr[data-name="compare"]', (tr) => tr.classList.contains('selected')), 'row marked selected');
});

test('sandwich view shows callers above and callees below', async ({ page }) => {
  const m = model(SMALL);
  await open(page, BASE, SMALL);
  await page.click('.top-table tr[data-name="compare"] button.sw');
  await idle(page);
  let s = await state(page);
  eq([s.view, s.fn], ['sandwich', 'compare'], 'sandwich state');
  ok(await page.isVisible('#sandwich') && !(await page.isVisible('#graph')), 'sandwich pane shown');
  const up = await drawn(page, 'callers');
  eq(one(up, 'compare').total, m.fnTotal('compare'), 'callers root = function total');
  eq(one(up, 'scan').total, m.prefix(['db', 'main', 'query', 'scan', 'compare']), 'caller scan');
  eq(one(up, 'sort').total, m.prefix(['db', 'main', 'query', 'sort', 'compare']), 'caller sort');
  one(up, 'query');
  one(up, 'db');
  ok(one(up, 'scan').y < one(up, 'compare').y, 'callers are drawn above the function');
  const down = await drawn(page, 'callees');
  eq(down.map((r) => r.name), ['compare'], 'compare calls nothing');
  // A function with callees; also via the URL.
  await open(page, BASE, { ...SMALL, view: 'sandwich', fn: 'handle_request' });
  const c2 = await drawn(page, 'callees');
  eq(one(c2, 'handle_request').total, m.fnTotal('handle_request'), 'callees root');
  eq(one(c2, 'parse_json').total, m.self('parse_json'), 'callee parse_json');
  eq(one(c2, 'render').total, m.fnTotal('render'), 'callee render');
  ok(one(c2, 'render').y > one(c2, 'handle_request').y, 'callees are drawn below the function');
  eq(byName(await drawn(page, 'callers'), 'main').length, 1, 'caller main');
  // Recursion: walk's callers/callees counted once.
  await open(page, BASE, { ...SMALL, view: 'sandwich', fn: 'walk' });
  eq(one(await drawn(page, 'callees'), 'walk').total, m.fnTotal('walk'), 'recursive function total');
  // "s" over a frame in the flame graph opens its sandwich.
  await open(page, BASE, SMALL);
  const r = one(await drawn(page), 'parse_json');
  const c = await centre(page, r);
  await page.mouse.move(c.x, c.y);
  await page.keyboard.press('s');
  await idle(page);
  s = await state(page);
  eq([s.view, s.sandwich], ['sandwich', 'parse_json'], '"s" opens the sandwich of the hovered frame');
});

test('timeline brush selects a range and refetches the profile', async ({ page, guard }) => {
  await open(page, BASE, SMALL);
  ok(byName(await drawn(page), 'phase_b').length === 1, 'phase_b drawn over the whole minute');
  const box = await page.locator('.tone-main .timeline-canvas').boundingBox();
  const before = profileReqs(guard).length;
  await page.mouse.move(box.x + box.width * 0.02, box.y + 20);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.25, box.y + 25, { steps: 4 });
  await page.mouse.move(box.x + box.width * 0.45, box.y + 25, { steps: 4 });
  await page.mouse.up();
  await idle(page);
  const s = await state(page);
  ok(s.from >= SMALL.from && s.until <= SMALL.from + 30e9 && s.until > s.from, `brushed range inside the first half (${s.from}..${s.until})`);
  eq(s.from % 1e9, 0, 'whole seconds');
  const reqs = profileReqs(guard).slice(before);
  ok(reqs.length >= 1, 'a profile request was made');
  const q = new URL(reqs[reqs.length - 1]).searchParams;
  eq([q.get('from'), q.get('until')], [String(s.from), String(s.until)], 'request carries the new range');
  const rects = await drawn(page);
  const m = model({ from: s.from, until: s.until });
  eq(one(rects, 'all').total, m.total, 'view shows the brushed range');
  eq(byName(rects, 'phase_b').length, 0, 'phase_b (second half only) is gone');
  one(rects, 'phase_a');
  const u = new URL(page.url()).searchParams;
  eq([u.get('from'), u.get('until')], [String(s.from), String(s.until)], 'range in the URL');
  await page.goBack();
  await idle(page);
  eq((await state(page)).from, SMALL.from, 'back restores the range');
  one(await drawn(page), 'phase_b');
  // Zoom out in time doubles the range.
  await page.click('#time-out');
  await idle(page);
  const s2 = await state(page);
  eq(s2.until - s2.from, 2 * (SMALL.until - SMALL.from), 'zoom out doubles the span');
});

test('label filter changes the request and the profile', async ({ page, guard }) => {
  await open(page, BASE, SMALL);
  const hosts = await page.$$eval('#filters select[data-key="host"] option', (o) => o.map((x) => x.value));
  eq(hosts, ['', 'alpha', 'beta'], 'host values from /api/label-values');
  for (const k of ['host', 'comm', 'pid', 'exe']) ok(await page.$(`#filters select[data-key="${k}"]`), `${k} filter present`);
  const before = profileReqs(guard).length;
  await page.selectOption('#filters select[data-key="comm"]', 'db');
  await idle(page);
  const reqs = profileReqs(guard).slice(before);
  ok(reqs.length >= 1, 'a profile request was made');
  eq(new URL(reqs[reqs.length - 1]).searchParams.getAll('label'), ['comm:db'], 'request carries the filter');
  const m = model(SMALL, [['comm', 'db']]);
  const rects = await drawn(page);
  eq(one(rects, 'all').total, m.total, 'filtered total');
  eq(byName(rects, 'api').length + byName(rects, 'worker').length, 0, 'other processes are gone');
  eq(new URL(page.url()).searchParams.getAll('label'), ['comm:db'], 'filter in the URL');
  // Two filters combine.
  await page.selectOption('#filters select[data-key="host"]', 'alpha');
  await idle(page);
  const last = profileReqs(guard).pop();
  eq(new URL(last).searchParams.getAll('label').sort(), ['comm:db', 'host:alpha'], 'two filters');
  await page.click('#clear-filters');
  await idle(page);
  eq((await state(page)).labels, [], 'filters cleared');
  eq(one(await drawn(page), 'all').total, model(SMALL).total, 'unfiltered again');
});

test('diff view colours grown and shrunk frames (both palettes)', async ({ page, guard }) => {
  await open(page, BASE, DIFF);
  const a = model(RANGES.diffBase), b = model(RANGES.diffCmp);
  ok(await page.isVisible('.tone-base') && await page.isVisible('.tone-cmp'), 'two timelines');
  const reqs = profileReqs(guard).map((u) => new URL(u).searchParams);
  ok(reqs.some((q) => q.get('from') === String(DIFF.bfrom) && q.get('until') === String(DIFF.buntil)), 'baseline request');
  ok(reqs.some((q) => q.get('from') === String(DIFF.cfrom) && q.get('until') === String(DIFF.cuntil)), 'comparison request');
  let rects = await drawn(page);
  const share = (mm, p) => mm.prefix(p) / mm.total;
  for (const fn of ['alpha', 'beta', 'gamma', 'old_path', 'new_path']) {
    const p = ['app', 'main', fn];
    const want = share(b, p) > share(a, p) ? 'grew' : 'shrank';
    eq(one(rects, fn).tag, want, `${fn} ${want}`);
  }
  eq(one(rects, 'beta').tag, 'grew', 'beta grew');
  for (const fn of ['all', 'app', 'main']) eq(one(rects, fn).tag, 'same', `${fn} unchanged`);
  const beta = one(rects, 'beta'), alpha = one(rects, 'alpha');
  ok(hue(beta.fill) === 0 && hue(alpha.fill) === 218, `red/blue (${beta.fill}, ${alpha.fill})`);
  const pb = (await pixels(page, '#graph .flame-canvas', [beta.x + 3, beta.y + 3])).px;
  const pa = (await pixels(page, '#graph .flame-canvas', [alpha.x + 3, alpha.y + 3])).px;
  ok(pb[0] > pb[2] + 60 && pa[2] > pa[0] + 60, `pixels: beta red ${pb}, alpha blue ${pa}`);
  // Tooltip shows both sides.
  const c = await centre(page, beta);
  await page.mouse.move(c.x, c.y);
  await page.waitForSelector('#tooltip:not([hidden])');
  const tip = await page.textContent('#tooltip');
  ok(tip.includes(`${b.prefix(['app', 'main', 'beta'])} samples`) && tip.includes(`${a.prefix(['app', 'main', 'beta'])} samples`), `diff tooltip (${tip})`);
  // Colour-blind-safe palette.
  await page.click('#palette');
  await idle(page);
  rects = await drawn(page);
  eq((await state(page)).palette, 'cb', 'palette in state');
  ok(hue(one(rects, 'beta').fill) === 28 && hue(one(rects, 'alpha').fill) === 205, 'orange/blue palette');
  eq(new URL(page.url()).searchParams.get('palette'), 'cb', 'palette in the URL');
  // The diff table ranks the growth first.
  const firstRow = await page.$eval('.top-table tbody tr', (tr) => tr.dataset.name);
  await page.click('.top-table th .sort[data-key="delta"]');
  await idle(page);
  const top = await page.$eval('.top-table tbody tr', (tr) => tr.dataset.name);
  ok(firstRow && top === 'beta', `largest self growth first (${top})`);
});

test('URL state round-trips through a reload', async ({ page }) => {
  await open(page, BASE, SMALL);
  await page.selectOption('#filters select[data-key="host"]', 'alpha');
  await idle(page);
  await clickFrame(page, 'handle_request');
  await page.fill('#search', 'render|deflate');
  await idle(page);
  await page.locator('#graph').click({ position: { x: 2, y: 2 } }); // leave the search box
  await page.keyboard.press('i');
  await idle(page);
  const s1 = await state(page);
  const d1 = (await drawn(page)).map((r) => [r.name, Math.round(r.x), Math.round(r.y), Math.round(r.w), r.tag]);
  eq([s1.icicle, s1.q, s1.zoom, s1.labels], [true, 'render|deflate', ['api', 'main', 'handle_request'], [['host', 'alpha']]], 'state before reload');
  await page.reload();
  await page.evaluate(() => window.__scorch.ready);
  await idle(page);
  const s2 = await state(page);
  const d2 = (await drawn(page)).map((r) => [r.name, Math.round(r.x), Math.round(r.y), Math.round(r.w), r.tag]);
  for (const k of ['from', 'until', 'labels', 'view', 'zoom', 'q', 'icicle', 'matched']) eq(s2[k], s1[k], `${k} after reload`);
  eq(d2, d1, 'same frames drawn after reload');
  eq(await page.inputValue('#search'), 'render|deflate', 'search box restored');
  // And the sandwich/diff views.
  await open(page, BASE, { ...DIFF, palette: 'cb', zoom: 'app;main' });
  const s3 = await state(page);
  eq([s3.view, s3.palette, s3.focus, s3.bfrom, s3.cuntil], ['diff', 'cb', 'main', DIFF.bfrom, DIFF.cuntil], 'diff state from URL');
});

test('keyboard: ? help overlay, / search, i icicle, Esc', async ({ page }) => {
  await open(page, BASE, SMALL);
  await page.keyboard.press('?');
  await page.waitForSelector('#help[open]');
  ok(await page.isVisible('#help'), 'help visible');
  const help = await page.textContent('#help');
  for (const k of ['/', 'Esc', 'i', '?', 't', 'u', 's']) ok(help.includes(k), `help lists ${k}`);
  ok(await page.evaluate(() => document.activeElement.id === 'help-close'), 'focus moves into the dialog');
  await page.keyboard.press('Escape');
  await page.waitForSelector('#help', { state: 'hidden' });
  await page.click('#help-btn');
  await page.waitForSelector('#help[open]');
  await page.click('#help-close');
  await page.waitForSelector('#help', { state: 'hidden' });
  await page.keyboard.press('/');
  ok(await page.evaluate(() => document.activeElement.id === 'search'), '/ focuses the search');
  await page.keyboard.type('gc');
  await page.keyboard.press('Escape');
  ok(await page.evaluate(() => document.activeElement.id !== 'search'), 'Esc leaves the search');
  await idle(page);
  const root0 = one(await drawn(page), 'all');
  await page.keyboard.press('i');
  await idle(page);
  const root1 = one(await drawn(page), 'all');
  ok((await state(page)).icicle, 'i toggles icicle');
  eq(root1.y, 0, 'icicle: root at the top');
  ok(root0.y > root1.y, 'flame: root at the bottom');
  await page.keyboard.press('i');
  await idle(page);
  eq(one(await drawn(page), 'all').y, root0.y, 'i toggles back');
  await page.keyboard.press('Escape');
  await idle(page);
  eq((await state(page)).q, '', 'Esc clears the search when not zoomed');
  await page.keyboard.press('3');
  await idle(page);
  eq((await state(page)).view, 'diff', '3 opens the diff view');
  await page.keyboard.press('1');
  await idle(page);
  eq((await state(page)).view, 'graph', '1 back to the flame graph');
  // Frames by keyboard: focus the graph, arrows move, Enter zooms.
  await page.focus('#graph .flame-overlay');
  await page.keyboard.press('ArrowUp');
  await page.waitForSelector('#tooltip:not([hidden])');
  ok((await page.textContent('#tooltip .tip-title')) === 'api', 'ArrowUp selects the widest child');
  await page.keyboard.press('ArrowRight');
  ok((await page.textContent('#tooltip .tip-title')) === 'db', 'ArrowRight selects the next sibling');
  await page.keyboard.press('ArrowUp');
  await page.keyboard.press('Enter');
  await idle(page);
  eq((await state(page)).zoom, ['db', 'main'], 'Enter zooms into the selected frame');
  await page.keyboard.press('ArrowDown');
  ok((await page.textContent('#tooltip .tip-title')) === 'db', 'ArrowDown selects the parent');
  await page.keyboard.press('Escape');
  await idle(page);
  // Buttons are buttons and focus is visible.
  const nonButtons = await page.$$eval('[onclick], div[role="button"], span[role="button"]', (e) => e.length);
  eq(nonButtons, 0, 'no fake buttons');
  await page.focus('#icicle');
  await page.keyboard.press('Tab');
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  ok(outline !== 'none', `focus is visible (outline ${outline})`);
});

test('theme toggle, stored across reloads, prefers-color-scheme respected', async ({ page, ctx }) => {
  await open(page, BASE, SMALL);
  eq((await state(page)).theme, 'light', 'light by default with a light system scheme');
  const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const light = await bg();
  await page.click('#theme');
  await idle(page);
  eq((await state(page)).theme, 'dark', 'toggled to dark');
  ok((await bg()) !== light, 'background changed');
  eq(await page.getAttribute('#theme', 'aria-pressed'), 'true', 'toggle pressed');
  const r = one(await drawn(page), 'all');
  ok((await pixels(page, '#graph .flame-canvas', [r.x + 4, r.y + 4])).px[3] === 255, 'graph redrawn');
  await page.reload();
  await page.evaluate(() => window.__scorch.ready);
  eq((await state(page)).theme, 'dark', 'stored in localStorage');
  await page.keyboard.press('t');
  eq((await state(page)).theme, 'light', 't toggles back');
  const p2 = await ctx.browser().newContext({ colorScheme: 'dark' });
  const page2 = await p2.newPage();
  await page2.route('**/*', (route) => (new URL(route.request().url()).host === new URL(BASE.url).host ? route.continue() : route.abort()));
  await open(page2, BASE, SMALL);
  eq(await page2.evaluate(() => window.__scorch.state().theme), 'dark', 'dark system scheme → dark theme');
  await p2.close();
});

test('on-CPU / off-CPU / both switch round-trips through the URL and shows time', async ({ page, guard }) => {
  const off = [...mergeStacks(DS, SMALL.from, SMALL.until, [], 'off-cpu')].map(([l, n]) => [l.split(';').map(frameName), n]);
  const offTotal = off.reduce((t, [, n]) => t + n, 0);
  const waited = (fn) => off.reduce((t, [f, n]) => t + (f.includes(fn) ? n : 0), 0);
  const pressed = (m) => page.getAttribute(`.measures button[data-measure="${m}"]`, 'aria-pressed');
  await open(page, BASE, SMALL);
  eq([await pressed('cpu'), await pressed('off-cpu'), (await state(page)).measure], ['true', 'false', 'cpu'], 'on-CPU by default');
  eq(new URL(page.url()).searchParams.get('measure'), null, 'the default is not in the URL');
  const cpuTotal = (await state(page)).samples;
  const before = guard.requests.length;
  await page.click('.measures button[data-measure="off-cpu"]');
  await idle(page);
  eq(new URL(page.url()).searchParams.get('measure'), 'off-cpu', 'off-CPU in the URL');
  eq([await pressed('cpu'), await pressed('off-cpu')], ['false', 'true'], 'switch state');
  const s = await state(page);
  eq([s.measure, s.samples], ['off-cpu', offTotal], 'the off-CPU profile is shown');
  for (const kind of ['/api/profile?', '/api/timeline?']) {
    const reqs = guard.requests.slice(before).filter((u) => u.includes(kind));
    ok(reqs.length >= 1 && reqs.every((u) => new URL(u).searchParams.get('measure') === 'off-cpu'), `${kind} requests ask for off-cpu (${reqs})`);
  }
  const rects = await drawn(page);
  eq(one(rects, 'read_socket').total, waited('read_socket'), 'read_socket waits');
  eq(byName(rects, 'parse_json').length, 0, 'no on-CPU frame is drawn');
  // Tooltip and table show time, not samples.
  const c = await centre(page, one(rects, 'read_socket'));
  await page.mouse.move(c.x, c.y);
  await page.waitForSelector('#tooltip:not([hidden])');
  const tip = await page.textContent('#tooltip');
  ok(tip.includes(`Total${fmtWait(waited('read_socket'))}`) && !tip.includes('samples'), `tooltip in time units (${tip})`);
  await page.mouse.move(c.x, c.y + 400);
  const table = await page.textContent('#table');
  ok(table.includes(fmtWait(waited('epoll_wait'))), `table in time units (${table.slice(0, 200)})`);
  const exp = new URL(await page.$eval('#exp-pprof', (a) => a.href));
  eq(exp.searchParams.get('measure'), 'off-cpu', 'export carries the measure');
  // A reload keeps it; back returns to on-CPU.
  await page.reload();
  await page.evaluate(() => window.__scorch.ready);
  await idle(page);
  eq([(await state(page)).measure, (await state(page)).samples, await pressed('off-cpu')], ['off-cpu', offTotal, 'true'], 'after reload');
  await page.goBack();
  await idle(page);
  eq([(await state(page)).measure, (await state(page)).samples, await pressed('cpu')], ['cpu', cpuTotal, 'true'], 'back to on-CPU');
  eq(new URL(page.url()).searchParams.get('measure'), null, 'no measure in the URL');
  one(await drawn(page), 'parse_json');
  ok(await page.isHidden('#off-cpu'), 'no off-CPU graph on-CPU');
  // Both: the on-CPU graph, and the off-CPU graph below it in its own units.
  await page.click('.measures button[data-measure="both"]');
  await idle(page);
  eq(new URL(page.url()).searchParams.get('measure'), 'both', 'both in the URL');
  eq([(await state(page)).samples, await pressed('both')], [cpuTotal, 'true'], 'main graph stays on-CPU');
  one(await drawn(page), 'parse_json');
  ok(await page.isVisible('#off-cpu'), 'off-CPU graph shown');
  eq(one(await drawn(page, 'off'), 'epoll_wait').total, waited('epoll_wait'), 'off-CPU graph waits');
  eq(await page.textContent('#off-cpu-total'), `${fmtWait(offTotal)} off CPU`, 'off-CPU total in time');
  await page.reload();
  await page.evaluate(() => window.__scorch.ready);
  await idle(page);
  ok(await page.isVisible('#off-cpu'), 'both survives a reload');
  one(await drawn(page, 'off'), 'read_socket');
  await page.click('.measures button[data-measure="cpu"]');
  await idle(page);
  ok(await page.isHidden('#off-cpu'), 'off-CPU graph hidden again');
});

test('export links carry the current range and filters', async ({ page }) => {
  await open(page, BASE, { ...SMALL, label: 'comm:api' });
  for (const [id, format] of [['exp-folded', 'folded'], ['exp-pprof', 'pprof'], ['exp-svg', 'svg']]) {
    const href = await page.$eval(`#${id}`, (a) => a.href);
    const u = new URL(href);
    ok(u.pathname.endsWith('/api/profile'), `${format} link path (${href})`);
    eq([u.searchParams.get('from'), u.searchParams.get('until'), u.searchParams.getAll('label'), u.searchParams.get('format')],
      [String(SMALL.from), String(SMALL.until), ['comm:api'], format], `${format} link query`);
  }
  const get = async (id) => {
    const href = await page.$eval(`#${id}`, (a) => a.href);
    return page.evaluate(async (h) => {
      const r = await fetch(h);
      const b = new Uint8Array(await r.arrayBuffer());
      return { status: r.status, type: r.headers.get('content-type'), head: [...b.slice(0, 4)], text: new TextDecoder().decode(b.slice(0, 300)) };
    }, href);
  };
  const folded = await get('exp-folded');
  eq(folded.status, 200, 'folded status');
  ok(/^api;main;/m.test(folded.text) && !folded.text.includes('db;'), `folded body is filtered (${folded.text.slice(0, 60)})`);
  const pprof = await get('exp-pprof');
  eq(pprof.head.slice(0, 2), [0x1f, 0x8b], 'pprof is gzip');
  const svg = await get('exp-svg');
  ok(svg.text.includes('<svg'), 'svg body');
  // In the diff view, exports follow the comparison range.
  await open(page, BASE, DIFF);
  const u = new URL(await page.$eval('#exp-folded', (a) => a.href));
  eq([u.searchParams.get('from'), u.searchParams.get('until')], [String(DIFF.cfrom), String(DIFF.cuntil)], 'diff export range');
});

test('API errors are shown, the page keeps working', async ({ page }) => {
  await open(page, BASE, { from: SMALL.until, until: SMALL.from });
  await page.waitForSelector('#error:not([hidden])');
  const msg = await page.textContent('#error-text');
  ok(msg.length > 3 && !msg.includes('[object'), `server message shown (${msg})`);
  eq((await state(page)).error, msg, 'error in state');
  // Recover by picking a valid range through the UI (URL edit + back is the same path).
  await open(page, BASE, SMALL);
  ok(await page.isHidden('#error'), 'error cleared after a good load');
  await open(page, BASE, { ...SMALL, label: 'nosuchkey:1' });
  await page.waitForSelector('#error:not([hidden])');
  await page.click('#error-close');
  ok(await page.isHidden('#error'), 'error dismissed');
  // Empty range: a message instead of a graph.
  await open(page, BASE, { from: T0 - 7200e9, until: T0 - 3600e9 });
  ok((await page.textContent('#graph .flame-message')).includes('No samples'), 'empty range message');
}, { allowErrors: [/status of 4\d\d/] });

test('big profile: 100k+ frames and a 3000-deep stack render and scroll', async ({ page, guard }) => {
  await open(page, BASE, BIG);
  const metrics = await page.evaluate(() => window.__scorch.metrics);
  ok(metrics.names > 100000, `100k+ distinct functions (${metrics.names})`);
  ok(metrics.nodes > 100000, `100k+ nodes (${metrics.nodes})`);
  // The first paint drew a pruned tree (when the server prunes), then the whole one.
  const reqs = profileReqs(guard).map((u) => new URL(u).searchParams);
  const pruned = reqs.filter((q) => q.get('min_share') !== null);
  eq(pruned.length, 1, 'one first-paint request');
  eq(pruned[0].get('min_share'), '0.0001', 'first paint asks for frames of at least 1/10000');
  // scorch prunes; the fixture server sends the whole tree to every request.
  if (BASE.external) ok(metrics.firstNodes * 4 < metrics.nodes, `first paint pruned (${metrics.firstNodes} of ${metrics.nodes} nodes)`);
  if (metrics.firstNodes < metrics.nodes) {
    eq(reqs.length, 2, 'then one request for the whole tree');
    eq(reqs[1].get('min_share'), null, 'the whole tree is not pruned');
    ok(metrics.complete >= metrics.firstRender, 'whole tree drawn after the first paint');
  }
  eq((await state(page)).partial, false, 'the whole tree is shown once ready');
  let rects = await drawn(page);
  ok(rects.length > 200, `many frames drawn (${rects.length})`);
  ok(rects.every((r) => r.w >= 0.5), 'no sub-half-pixel rectangles');
  const root = one(rects, 'all');
  one(rects, 'deep_0');
  const s = await state(page);
  ok(s.samples > 0, 'samples');
  // Scroll to the top of the flame (deepest frames).
  await page.$eval('#graph .flame-scroll', (el) => (el.scrollTop = 0));
  await idle(page);
  rects = await drawn(page);
  one(rects, 'deep_2998');
  ok(rects.length < 2000, 'only visible rows drawn');
  // Zoom into the deep chain and check the breadcrumb handles depth.
  await clickFrame(page, 'deep_2990');
  eq((await state(page)).zoom.length, 2993, 'deep zoom path (big-0, main, deep_0 … deep_2990)');
  eq((await page.$$('#crumbs .crumb')).length, 2994, 'deep breadcrumb');
  const px = await pixels(page, '#graph .flame-canvas');
  ok(px.painted > 0, 'canvas painted');
  console.log(`      first render ${Math.round(metrics.firstRender - metrics.start)} ms after start (fetch ${Math.round(metrics.fetchMs)} ms, build ${Math.round(metrics.buildMs)} ms, draw ${Math.round(metrics.drawMs)} ms); root width ${Math.round(root.w)} px`);
});

test('resizes with the window and honours device pixel ratio', async ({ page }) => {
  await open(page, BASE, SMALL);
  const w1 = one(await drawn(page), 'all').w;
  await page.setViewportSize({ width: 900, height: 700 });
  await page.waitForTimeout(100);
  await idle(page);
  const w2 = one(await drawn(page), 'all').w;
  ok(w2 < w1 - 200, `graph narrower after resize (${w1} → ${w2})`);
  const size = await page.$eval('#graph .flame-canvas', (c) => [c.width, c.clientWidth]);
  eq(size[0], size[1] * 2, 'backing store is 2× the CSS size at DPR 2');
  near(w2, size[1], 2, 'root spans the canvas');
}, { deviceScaleFactor: 2 });

test('the real server sends the page code as one script', async ({ page, guard }) => {
  await open(page, BASE, SMALL);
  const scripts = guard.requests.map((u) => new URL(u).pathname).filter((p) => p.endsWith('.js'));
  // scorch bundles the modules at build time; the fixture server serves them as they are.
  if (BASE.external) eq(scripts, ['/boot.js', '/bundle.js'], 'scripts loaded');
  else ok(scripts.includes('/app.js'), `the fixture server serves the modules (${scripts.join(', ')})`);
});

test('no request leaves the server host; no external references in the page', async ({ page, guard }) => {
  await open(page, BASE, SMALL);
  await clickFrame(page, 'handle_request');
  await page.keyboard.press('?');
  await page.keyboard.press('Escape');
  const hosts = new Set(guard.requests.map((u) => new URL(u).host));
  eq([...hosts], [new URL(BASE.url).host], 'all requests go to the server');
  const external = await page.evaluate(() =>
    [...document.querySelectorAll('[src],[href]')].map((e) => e.src || e.href).filter((u) => u && !u.startsWith(location.origin)));
  eq(external, [], 'no external src/href');
});

// ---- runner ----------------------------------------------------------------

const filter = process.argv[2] ? new RegExp(process.argv[2], 'i') : null;
const unitFailures = filter && !filter.test('unit') ? 0 : (await import('./unit.mjs')).default;
const BASE = await target();
if (!/^(127\.0\.0\.1|localhost|\[::1\])$/.test(new URL(BASE.url).hostname)) {
  console.log(`note: ${BASE.url} is not a loopback address`);
}
console.log(`scorch page tests against ${BASE.url}${BASE.external ? ' (SCORCH_URL)' : ' (fixture server)'}`);
const browser = await launch();
let failed = 0, ran = 0;
const violations = [];
for (const t of tests) {
  if (filter && !filter.test(t.name)) continue;
  ran++;
  const t0 = Date.now();
  const { ctx, page, guard } = await newPage(browser, BASE, t.opts);
  let err = null;
  try {
    await t.fn({ page, guard, ctx });
    const errs = guard.errors.filter((e) => !(t.opts.allowErrors || []).some((re) => re.test(e)));
    if (errs.length) err = new Failure(`console errors: ${errs.join(' | ')}`);
    if (guard.violations.length) err = new Failure(`requests left the server host: ${guard.violations.join(', ')}`);
  } catch (e) {
    err = e;
  }
  violations.push(...guard.violations);
  await ctx.close();
  const ms = Date.now() - t0;
  if (err) {
    failed++;
    console.log(`FAIL  ${t.name} (${ms} ms)\n      ${err instanceof Failure ? err.message : err.stack}`);
  } else console.log(`ok    ${t.name} (${ms} ms)`);
}
await browser.close();
await BASE.close();
console.log(`\n${ran - failed}/${ran} browser tests passed${unitFailures ? `, ${unitFailures} unit tests FAILED` : ''}${violations.length ? `, ${violations.length} blocked external requests` : ''}`);
process.exit(failed || unitFailures || !ran ? 1 : 0);
