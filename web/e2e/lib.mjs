// Shared plumbing for the browser scripts (run, bench, screenshots): the base
// URL (SCORCH_URL or a fixture server), Chromium via playwright-core, and
// pages that refuse any request leaving the server's host.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer } from './server.mjs';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/**
 * The server under test: SCORCH_URL when set (e.g. a running `scorch agent`
 * loaded with the fixture dataset), else a fixture server on a free port.
 */
export async function target({ separate = false } = {}) {
  if (process.env.SCORCH_URL) {
    const url = new URL(process.env.SCORCH_URL);
    return { url: url.href.endsWith('/') ? url.href : `${url.href}/`, close: async () => {}, external: true };
  }
  if (separate) {
    // Its own process, as a real server would be (used by the benchmark).
    const child = spawn(process.execPath, [fileURLToPath(new URL('./server.mjs', import.meta.url)), '--port', '0'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const url = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        const m = /listening (\S+)/.exec(out);
        if (m) resolve(m[1]);
      });
      child.on('exit', (code) => reject(new Error(`fixture server exited (${code})`)));
    });
    return { url, close: async () => child.kill(), external: false };
  }
  const s = await startServer({ port: 0, host: '127.0.0.1' });
  return { url: s.url, close: s.close, external: false };
}

/**
 * Launches headless Chromium. Playwright gives every launch a fresh,
 * temporary --user-data-dir of its own (it refuses one in args).
 */
export function launch() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
}

/**
 * A new isolated context + page. Every request is checked: anything not for
 * the server's host is aborted and recorded in `guard.violations`. Console
 * errors and uncaught exceptions are recorded in `guard.errors`.
 */
export async function newPage(browser, base, opts = {}) {
  const host = new URL(base.url).host;
  const ctx = await browser.newContext({
    viewport: opts.viewport || { width: 1280, height: 860 },
    deviceScaleFactor: opts.deviceScaleFactor || 1,
    colorScheme: opts.colorScheme || 'light',
    reducedMotion: opts.reducedMotion || 'no-preference',
  });
  const guard = { violations: [], errors: [], requests: [] };
  const allowed = (u) => (u.protocol === 'http:' || u.protocol === 'https:') && u.host === host;
  // The benchmark only observes (interception costs time on every request);
  // tests route every request and abort what is not for the server.
  if (opts.observeOnly) {
    ctx.on('request', (r) => {
      const u = new URL(r.url());
      if (!allowed(u) && u.protocol !== 'data:') guard.violations.push(u.href);
    });
  } else await ctx.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (allowed(u)) {
      return route.continue();
    }
    guard.violations.push(u.href);
    return route.abort('blockedbyclient');
  });
  const page = await ctx.newPage();
  page.on('request', (r) => guard.requests.push(r.url()));
  page.on('console', (m) => {
    if (m.type() === 'error') guard.errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => guard.errors.push(`exception: ${e.message}`));
  return { ctx, page, guard };
}

/** Navigates to the page with the given query parameters and waits until it has rendered. */
export async function open(page, base, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    for (const x of Array.isArray(v) ? v : [v]) if (x !== undefined && x !== null) q.append(k, String(x));
  }
  await page.goto(`${base.url}?${q}`);
  await page.waitForFunction(() => window.__scorch && window.__scorch.ready, null, { timeout: 20000 });
  await page.evaluate(() => window.__scorch.ready);
  await idle(page);
}

/** Waits until the page has no fetch, debounce, animation or redraw pending. */
export const idle = (page, ms = 15000) => page.evaluate((ms) => Promise.race([
  window.__scorch.idle(),
  new Promise((_, no) => setTimeout(() => no(new Error(`page not idle after ${ms} ms`)), ms)),
]), ms);
export const state = (page) => page.evaluate(() => window.__scorch.state());
export const drawn = (page, pane = 'graph') => page.evaluate((p) => window.__scorch.drawn(p), pane);
