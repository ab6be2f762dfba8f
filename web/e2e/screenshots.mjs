// Screenshots of the main views into docs/screenshots/ (for the README).
//
//   node web/e2e/screenshots.mjs
//
// Uses the DEMO part of the fixture (an hour of nginx, postgres, node and a
// python worker with a slow-query spike), or SCORCH_URL if set.

import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, target, newPage, open, idle, drawn } from './lib.mjs';
import { RANGES } from './fixtures.mjs';

const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'screenshots');
mkdirSync(OUT, { recursive: true });

const base = await target();
const browser = await launch();
const demo = { from: RANGES.demo.from, until: RANGES.demo.until };
const PG = 'postgres;__libc_start_main;main;PostmasterMain;ServerLoop;BackendStartup;PostgresMain;exec_simple_query';

async function hover(page, name, pane = 'graph') {
  const r = (await drawn(page, pane)).filter((x) => x.name === name).sort((a, b) => b.w - a.w)[0];
  if (!r) return;
  const box = await page.locator(`#${pane === 'graph' ? 'graph' : pane === 'callers' ? 'sw-callers' : 'sw-callees'} .flame-overlay`).boundingBox();
  await page.mouse.move(box.x + r.x + Math.min(r.w / 2, 120), box.y + r.y + 8);
  await page.waitForSelector('#tooltip:not([hidden])');
}

const shots = [
  ['flame', {}, async (page) => hover(page, 'ngx_http_gzip_body_filter')],
  ['zoomed', { zoom: `${PG};PortalRun;PortalRunSelect;standard_ExecutorRun;ExecutePlan;ExecProcNode` }, null],
  ['search', { q: 'memcmp|memmove|_copy_to_iter' }, null],
  ['icicle', { icicle: 1, label: 'host:web-1' }, null],
  ['sandwich', { view: 'sandwich', fn: 'varstr_cmp' }, async (page) => hover(page, 'texteq', 'callers')],
  ['diff', {
    view: 'diff', bfrom: RANGES.demoBefore.from, buntil: RANGES.demoBefore.until,
    cfrom: RANGES.demoSpike.from, cuntil: RANGES.demoSpike.until, sort: 'delta',
  }, async (page) => hover(page, 'ExecSeqScan')],
  ['dark', {}, async (page) => hover(page, 'ExecIndexScan'), { colorScheme: 'dark' }],
  ['dark-diff', {
    view: 'diff', palette: 'cb', bfrom: RANGES.demoBefore.from, buntil: RANGES.demoBefore.until,
    cfrom: RANGES.demoSpike.from, cuntil: RANGES.demoSpike.until,
  }, null, { colorScheme: 'dark' }],
  ['help', {}, async (page) => {
    await page.keyboard.press('?');
    await page.waitForSelector('#help[open]');
  }],
  ['big', { from: RANGES.big.from, until: RANGES.big.until }, null],
];

for (const [name, params, before, opts = {}] of shots) {
  const { ctx, page } = await newPage(browser, base, { viewport: { width: 1440, height: 900 }, ...opts });
  await open(page, base, { ...demo, ...params });
  if (before) await before(page);
  await idle(page);
  await page.waitForTimeout(150);
  const file = join(OUT, `${name}.png`);
  await page.screenshot({ path: file });
  console.log(`wrote ${file}`);
  await ctx.close();
}
await browser.close();
await base.close();
