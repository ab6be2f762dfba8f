// Tiny fixture HTTP server: serves web/page/ and the scorch JSON API from the
// fixture dataset (fixtures.mjs), so the page can be tested without the Rust
// server. It mimics the API contract only; tests must not rely on anything
// else it does.
//
//   node server.mjs [--port N] [--host 127.0.0.1] [--shift-to-now]
//
// prints `listening http://HOST:PORT/` on its first stdout line (port 0 picks
// a free port), so another program (e.g. a Rust test) can start it and read
// the URL. `--shift-to-now` moves the fixture so it ends now, which makes the
// page's default "last hour" show data when browsing by hand.

import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { join, dirname, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDataset, frameName } from './fixtures.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
export const PAGE_DIR = join(HERE, '..', 'page');

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// ---- query parsing ---------------------------------------------------------

function parseNs(v, name) {
  if (!/^\d{1,20}$/.test(v)) throw new HttpError(400, `invalid ${name}: expected Unix nanoseconds, got "${v}"`);
  return Number(v);
}

function parseRange(q) {
  const now = Math.floor(Date.now() / 1000) * 1e9;
  const until = q.has('until') ? parseNs(q.get('until'), 'until') : now;
  const from = q.has('from') ? parseNs(q.get('from'), 'from') : until - 3600e9;
  if (from >= until) throw new HttpError(400, 'invalid time range: from must be before until');
  return { from, until };
}

function parseLabels(q, keys) {
  return q.getAll('label').map((l) => {
    const i = l.indexOf(':');
    if (i <= 0) throw new HttpError(400, `invalid label filter "${l}": expected key:value`);
    const k = l.slice(0, i);
    if (!keys.has(k)) throw new HttpError(400, `unknown label "${k}"`);
    return [k, l.slice(i + 1)];
  });
}

// ---- merging ---------------------------------------------------------------

/** `measure`: cpu (the default) or off-cpu, as the real server takes it. */
function parseMeasure(q) {
  const m = q.get('measure') ?? 'cpu';
  if (m !== 'cpu' && m !== 'off-cpu') throw new HttpError(400, `unknown measure \`${m}\`: use cpu or off-cpu`);
  return m;
}

/** Windows of `measure` starting in [from, until) whose labels match. */
function select(ds, from, until, labels, measure = 'cpu') {
  return ds.windows.filter(
    (w) => w.start >= from && w.start < until && (w.measure || 'cpu') === measure && labels.every(([k, v]) => w.labels[k] === v),
  );
}

/** Merges windows into a call tree; returns the API's struct-of-arrays JSON. */
function buildProfile(windows) {
  const names = ['all'];
  const nameIdx = new Map([['all', 0]]);
  const intern = (s) => {
    let i = nameIdx.get(s);
    if (i === undefined) {
      i = names.length;
      names.push(s);
      nameIdx.set(s, i);
    }
    return i;
  };
  // Trie: node 0 is the root; children kept in a Map per node.
  const tName = [0], tKind = [3], tSelf = [0], tTotal = [0], tKids = [new Map()];
  for (const w of windows) {
    for (const [line, n] of w.stacks) {
      let cur = 0;
      tTotal[0] += n;
      const frames = line.split(';');
      for (let d = 0; d < frames.length; d++) {
        const f = frames[d];
        const kind = d === 0 ? 3 : f.endsWith('_[k]') ? 1 : f.endsWith('_[j]') ? 2 : 0;
        const name = intern(frameName(f));
        const key = name * 4 + kind;
        let c = tKids[cur].get(key);
        if (c === undefined) {
          c = tName.length;
          tName.push(name); tKind.push(kind); tSelf.push(0); tTotal.push(0); tKids.push(new Map());
          tKids[cur].set(key, c);
        }
        tTotal[c] += n;
        cur = c;
      }
      tSelf[cur] += n;
    }
  }
  // Flatten to pre-order, siblings sorted by name (FlameGraph's order).
  const out = { name: [], parent: [], self: [], total: [], kind: [] };
  const stack = [[0, -1]];
  while (stack.length) {
    const [t, parent] = stack.pop();
    const id = out.name.length;
    out.name.push(tName[t]); out.parent.push(parent); out.self.push(tSelf[t]);
    out.total.push(tTotal[t]); out.kind.push(tKind[t]);
    const kids = [...tKids[t].values()].sort((a, b) => (names[tName[b]] < names[tName[a]] ? -1 : 1));
    for (const k of kids) stack.push([k, id]);
  }
  return { names, nodes: out };
}

function foldedLines(windows) {
  const m = new Map();
  for (const w of windows) for (const [l, n] of w.stacks) m.set(l, (m.get(l) || 0) + n);
  return [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

// ---- pprof (minimal protobuf writer) ---------------------------------------

class Pb {
  constructor() { this.b = []; }
  varint(v) {
    v = BigInt(v);
    while (v >= 0x80n) { this.b.push(Number(v & 0x7fn) | 0x80); v >>= 7n; }
    this.b.push(Number(v));
    return this;
  }
  key(field, wire) { return this.varint((field << 3) | wire); }
  int(field, v) { return v ? this.key(field, 0).varint(v) : this; }
  bytes(field, bytes) { this.key(field, 2).varint(bytes.length); for (const x of bytes) this.b.push(x); return this; }
  msg(field, pb) { return this.bytes(field, pb.b); }
  str(field, s) { return this.bytes(field, Buffer.from(s, 'utf8')); }
  packed(field, vals) { const p = new Pb(); for (const v of vals) p.varint(v); return this.bytes(field, p.b); }
}

function pprof(lines, ds, from, until) {
  const strings = [''], sIdx = new Map([['', 0]]);
  const str = (s) => { if (!sIdx.has(s)) { sIdx.set(s, strings.length); strings.push(s); } return sIdx.get(s); };
  const fnIds = new Map();
  const p = new Pb();
  const vt = (t, u) => new Pb().int(1, str(t)).int(2, str(u));
  p.msg(1, vt('samples', 'count')).msg(1, vt('cpu', 'nanoseconds'));
  const fnOf = (name) => {
    if (!fnIds.has(name)) fnIds.set(name, fnIds.size + 1);
    return fnIds.get(name);
  };
  for (const [line, n] of lines) {
    const locs = line.split(';').map((f) => fnOf(frameName(f))).reverse();
    p.msg(2, new Pb().packed(1, locs).packed(2, [n, n * ds.period_ns]));
  }
  for (const [name, id] of fnIds) {
    p.msg(4, new Pb().int(1, id).msg(4, new Pb().int(1, id)));
    p.msg(5, new Pb().int(1, id).int(2, str(name)).int(3, str(name)));
  }
  for (const s of strings) p.str(6, s);
  p.int(9, from).int(10, until - from).msg(11, vt('cpu', 'nanoseconds')).int(12, ds.period_ns);
  return gzipSync(Buffer.from(p.b));
}

// ---- SVG (a plain icicle; the real server uses inferno) ---------------------

function svg(prof) {
  const { names, nodes } = prof;
  const n = nodes.name.length, W = 1200, H = 16;
  const x = new Float64Array(n), cur = new Float64Array(n), depth = new Int32Array(n);
  let maxD = 0;
  for (let i = 1; i < n; i++) {
    const p = nodes.parent[i];
    x[i] = cur[p]; cur[p] += nodes.total[i]; cur[i] = x[i];
    depth[i] = depth[p] + 1; maxD = Math.max(maxD, depth[i]);
  }
  const scale = nodes.total[0] ? W / nodes.total[0] : 0;
  const esc = (s) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const parts = [];
  for (let i = 0; i < n; i++) {
    const w = nodes.total[i] * scale;
    if (w < 0.5) continue;
    const name = esc(names[nodes.name[i]]);
    parts.push(`<g><title>${name} (${nodes.total[i]} samples)</title><rect x="${(x[i] * scale).toFixed(1)}" y="${depth[i] * H}" width="${w.toFixed(1)}" height="${H - 1}" fill="hsl(${20 + (nodes.name[i] * 37) % 30},90%,60%)"/>` +
      (w > 30 ? `<text x="${(x[i] * scale + 3).toFixed(1)}" y="${depth[i] * H + 12}" font-size="11" font-family="monospace">${name.slice(0, Math.floor(w / 7))}</text>` : '') + '</g>');
  }
  return `<?xml version="1.0" standalone="no"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${(maxD + 1) * H}" viewBox="0 0 ${W} ${(maxD + 1) * H}">${parts.join('')}</svg>\n`;
}

// ---- HTTP ------------------------------------------------------------------

/** Starts the server; resolves to { url, port, close() }. */
export async function startServer({ port = 0, host = '127.0.0.1', shiftToNow = false, log = false } = {}) {
  const ds = buildDataset();
  if (shiftToNow) {
    const last = Math.max(...ds.windows.map((w) => w.end));
    const now = Math.floor(Date.now() / 10000) * 10e9;
    for (const w of ds.windows) { w.start += now - last; w.end += now - last; }
  }
  const keys = new Set(ds.windows.flatMap((w) => Object.keys(w.labels)));
  const cache = new Map(); // merged profile JSON text by query, for the big fixture

  const api = {
    '/api/profile': (q) => {
      const { from, until } = parseRange(q);
      const labels = parseLabels(q, keys);
      const format = q.get('format') || 'json';
      const measure = parseMeasure(q);
      const ws = select(ds, from, until, labels, measure);
      if (format === 'folded') {
        return { type: 'text/plain; charset=utf-8', body: foldedLines(ws).map(([l, n]) => `${l} ${n}\n`).join('') };
      }
      if (format === 'pprof') return { type: 'application/octet-stream', body: pprof(foldedLines(ws), ds, from, until) };
      if (format === 'svg') return { type: 'image/svg+xml', body: svg(buildProfile(ws)) };
      if (format !== 'json') throw new HttpError(400, `unknown format "${format}": expected json, folded, pprof or svg`);
      const key = `${from}/${until}/${JSON.stringify(labels)}/${measure}`;
      let body = cache.get(key);
      if (!body) {
        const prof = buildProfile(ws);
        body = Buffer.from(JSON.stringify({
          meta: { from, until, samples: prof.nodes.total[0], period_ns: measure === 'cpu' ? ds.period_ns : 1 },
          ...prof,
        }));
        if (cache.size > 32) cache.clear();
        cache.set(key, body);
      }
      return { type: 'application/json', body };
    },
    '/api/timeline': (q) => {
      const { from, until } = parseRange(q);
      const labels = parseLabels(q, keys);
      if (!/^\d+$/.test(q.get('step') || '')) throw new HttpError(400, 'invalid step: expected nanoseconds');
      const step = Number(q.get('step'));
      if (step <= 0) throw new HttpError(400, 'invalid step: must be positive');
      const nb = Math.ceil((until - from) / step);
      if (nb > 10000) throw new HttpError(400, `too many buckets (${nb}): use a larger step`);
      const counts = new Array(nb).fill(0);
      for (const w of select(ds, from, until, labels, parseMeasure(q))) {
        counts[Math.floor((w.start - from) / step)] += w.stacks.reduce((s, [, n]) => s + n, 0);
      }
      return json({ step, buckets: counts.map((c, i) => [from + i * step, c]) });
    },
    '/api/labels': () => json({ keys: [...keys].sort() }),
    '/api/label-values': (q) => {
      const key = q.get('key');
      if (!key) throw new HttpError(400, 'missing key');
      if (!keys.has(key)) throw new HttpError(400, `unknown label "${key}"`);
      const { from, until } = parseRange(q);
      // As the real server: values of both measures.
      const ws = [...select(ds, from, until, []), ...select(ds, from, until, [], 'off-cpu')];
      const vals = new Set(ws.map((w) => w.labels[key]).filter((v) => v !== undefined));
      return json({ key, values: [...vals].sort() });
    },
  };

  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    if (log) console.log(req.method, req.url);
    const send = (status, type, body) => {
      const headers = { 'content-type': type, 'cache-control': 'no-store' };
      // The strictest policy the page is meant to work under: a violation is
      // a console error, which fails the tests.
      if (type.startsWith('text/html')) headers['content-security-policy'] = "default-src 'self'";
      res.writeHead(status, headers);
      res.end(body);
    };
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'method not allowed');
      const handler = api[url.pathname];
      if (handler) {
        const r = handler(url.searchParams);
        return send(200, r.type, r.body);
      }
      if (url.pathname.startsWith('/api/')) throw new HttpError(404, `no such endpoint ${url.pathname}`);
      const rel = url.pathname === '/' ? 'index.html' : normalize(decodeURIComponent(url.pathname)).replace(/^\/+/, '');
      const ext = rel.slice(rel.lastIndexOf('.'));
      if (rel.includes('..') || rel.includes('/') || !MIME[ext]) throw new HttpError(404, 'not found');
      const body = await readFile(join(PAGE_DIR, rel));
      return send(200, MIME[ext], body);
    } catch (e) {
      const status = e.status || (e.code === 'ENOENT' ? 404 : 500);
      send(status, 'application/json', JSON.stringify({ error: status === 404 && !e.status ? 'not found' : e.message }));
    }
  });
  await new Promise((ok) => server.listen(port, host, ok));
  const addr = server.address();
  return {
    url: `http://${host}:${addr.port}/`,
    port: addr.port,
    dataset: ds,
    close: () => new Promise((ok) => { server.closeAllConnections?.(); server.close(ok); }),
  };
}

function json(v) {
  return { type: 'application/json', body: JSON.stringify(v) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name, def) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : def;
  };
  const s = await startServer({
    port: Number(arg('--port', '0')),
    host: arg('--host', '127.0.0.1'),
    shiftToNow: process.argv.includes('--shift-to-now'),
    log: process.argv.includes('--log'),
  });
  console.log(`listening ${s.url}`);
}
