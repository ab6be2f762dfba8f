// First-render benchmark of the big fixture (100k+ distinct functions, a
// 3000-deep stack) in headless Chromium.
//
//   node web/e2e/bench.mjs [runs] [--cold]
//
// "First render" is the time from navigation start to the end of the first
// paint of the flame graph, as measured by the page (performance.now() at
// the end of the first non-empty draw). Against scorch the first paint draws
// the pruned tree (frames under 1/10000 of the samples merged per parent);
// "whole tree drawn" is when the complete tree, fetched right after, is
// drawn. The server's answer is warmed first so the numbers are the page's
// cost plus transferring the JSON. With --cold, the command in
// SCORCH_RESTART (which restarts the server, emptying its caches) runs
// before every page load instead, so each load also waits for the server to
// build its answer. Also prints the breakdown and the cost of redraws (zoom
// animation frames, scrolling).
// Target: first render < 500 ms. Informational: no assertion.

import { execFileSync } from 'node:child_process';
import { loadavg, cpus } from 'node:os';
import { launch, target, newPage, open, idle } from './lib.mjs';
import { RANGES } from './fixtures.mjs';

const cold = process.argv.includes('--cold');
const runs = Number(process.argv.slice(2).find((a) => !a.startsWith('--')) || 7);
if (cold && !process.env.SCORCH_RESTART) {
  console.error('--cold needs SCORCH_RESTART: a command that restarts the server (bench/page-render.sh sets it)');
  process.exit(2);
}
const base = await target({ separate: true });
const q = `from=${RANGES.big.from}&until=${RANGES.big.until}`;
const sizes = async () => [
  (await (await fetch(`${base.url}api/profile?${q}&format=json`)).arrayBuffer()).byteLength,
  (await (await fetch(`${base.url}api/profile?${q}&format=json&min_share=0.0001`)).arrayBuffer()).byteLength,
];
const [bytes, firstBytes] = cold ? [0, 0] : await sizes();
const browser = await launch();

const med = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
const violations = [];
for (let r = -1; r < runs; r++) { // run -1 warms the browser up and is not counted
  const { ctx, page, guard } = await newPage(browser, base, { viewport: { width: 1440, height: 900 }, observeOnly: true });
  await page.goto('about:blank');
  if (cold) execFileSync(process.env.SCORCH_RESTART, { stdio: 'inherit' });
  await open(page, base, RANGES.big);
  const m = await page.evaluate(() => window.__scorch.metrics);
  // Redraw cost: scroll to the deepest rows and back, measuring each draw.
  const redraw = await page.evaluate(async () => {
    const sc = document.querySelector('#graph .flame-scroll');
    const times = [];
    for (const top of [0, sc.scrollHeight / 2, sc.scrollHeight]) {
      sc.scrollTop = top;
      await window.__scorch.idle();
      times.push(window.__scorch.metrics.drawMs);
    }
    return times;
  });
  // A zoom animation: time of the frames it draws.
  const frames = await page.evaluate(async () => {
    const rects = window.__scorch.drawn().filter((r) => r.depth === 2).sort((a, b) => b.w - a.w);
    const ov = document.querySelector('#graph .flame-overlay').getBoundingClientRect();
    const r = rects[0];
    const t0 = performance.now();
    const ms = [];
    const orig = window.__scorch.metrics.drawMs;
    const obs = setInterval(() => ms.push(window.__scorch.metrics.drawMs), 4);
    document.querySelector('#graph .flame-overlay').dispatchEvent(new MouseEvent('click', {
      clientX: ov.left + r.x + r.w / 2, clientY: ov.top + r.y + 5, bubbles: true,
    }));
    await window.__scorch.idle();
    clearInterval(obs);
    return { total: performance.now() - t0, maxDraw: Math.max(orig, ...ms) };
  });
  await idle(page);
  violations.push(...guard.violations);
  if (r >= 0) {
    rows.push({
      first: m.firstRender, page: m.firstRender - m.start, fetch: m.fetchMs, parse: m.profile.parseMs || 0,
      build: m.buildMs, draw: m.drawMs, complete: m.complete || m.firstRender, wholeFetch: m.wholeFetchMs,
      redraw: Math.max(...redraw), zoom: frames.maxDraw, firstNodes: m.firstNodes, nodes: m.nodes,
    });
  }
  await ctx.close();
}
await browser.close();
const [allBytes, pageBytes] = cold ? await sizes() : [bytes, firstBytes];
await base.close();

const f = (x) => `${Math.round(x)} ms`;
console.log(`big fixture (${cold ? 'cold: server restarted before each load' : 'warm: answer cached'}): ${(allBytes / 1e6).toFixed(1)} MB JSON (first paint: ${(pageBytes / 1e3).toFixed(0)} kB, ${rows[0].firstNodes} of ${rows[0].nodes} nodes), ${runs} runs, headless Chromium, 1440×900`);
console.log(`machine: ${cpus().length} CPUs, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} (other work slows every number)`);
for (const [k, label] of [
  ['first', 'first render (navigation → first paint)'], ['page', '  of which app start → first paint'],
  ['fetch', '    profile fetch (request → parsed)'], ['parse', '      JSON.parse'], ['build', '    decode + layout'],
  ['draw', '    first draw'], ['complete', 'whole tree drawn (navigation → paint)'], ['wholeFetch', '  of which whole tree fetch'],
  ['redraw', 'redraw while scrolling (max)'], ['zoom', 'zoom animation frame (max)'],
]) {
  console.log(`${label.padEnd(42)} median ${f(med(rows.map((r) => r[k])))}  (min ${f(Math.min(...rows.map((r) => r[k])))}, max ${f(Math.max(...rows.map((r) => r[k])))})`);
}
if (violations.length) console.log(`WARNING: requests left the server host: ${violations.join(', ')}`);
const first = med(rows.map((r) => r.first));
console.log(`target < 500 ms: ${first < 500 ? 'met' : 'NOT met'} (${f(first)})`);
