// Talks to the scorch JSON API. URLs are relative ("api/…") so the page also
// works when mounted under a path prefix. Errors carry the server's message.

/** An API failure with a message fit to show to the user. */
export class ApiError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.status = status;
  }
}

/** Builds a query string from [key, value] pairs (repeated keys allowed). */
export function query(pairs) {
  const q = new URLSearchParams();
  for (const [k, v] of pairs) if (v !== undefined && v !== null && v !== '') q.append(k, String(v));
  return q.toString();
}

/** Query pairs selecting a range, label filters and a measure (cpu, the server's default, or off-cpu). */
export function rangePairs(from, until, labels, measure = 'cpu') {
  const pairs = [['from', from], ['until', until], ...labels.map(([k, v]) => ['label', `${k}:${v}`])];
  if (measure !== 'cpu') pairs.push(['measure', measure]);
  return pairs;
}

/** URL of the profile for a range/filter/measure in a given format (json, folded, pprof, svg). */
export function profileURL(from, until, labels, format, measure = 'cpu') {
  return `api/profile?${query([...rangePairs(from, until, labels, measure), ['format', format]])}`;
}

/**
 * The share of all samples below which the first paint's tree leaves a frame
 * out (the server merges those into one "smaller frames" node per parent):
 * 1/10000 is under half a pixel on a 4K screen, where the renderer skips
 * frames anyway. boot.js writes the same value.
 */
export const FIRST_PAINT_MIN_SHARE = '0.0001';

/** URL of the pruned tree the first paint draws; the whole tree follows (profileURL). */
export function firstPaintURL(from, until, labels, measure = 'cpu') {
  return `${profileURL(from, until, labels, 'json', measure)}&min_share=${FIRST_PAINT_MIN_SHARE}`;
}

const cache = new Map(); // url → parsed JSON (successes only; a few entries)

/** The request boot.js started for this URL, if any (used once). */
function takePrefetch(url) {
  const p = window.__scorchPrefetch;
  if (!p || p.url !== url) return null;
  window.__scorchPrefetch = null;
  return p.response;
}

/** GETs JSON; throws ApiError with the server's `error` message on failure. */
export async function getJSON(url, { signal, cached = true, timing = null } = {}) {
  if (cached && cache.has(url)) return cache.get(url);
  let res;
  try {
    res = await (takePrefetch(url) || fetch(url, { signal, headers: { accept: 'application/json' } }));
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(`cannot reach the scorch server (${e.message})`);
  }
  const text = await res.text();
  const t0 = performance.now();
  let body;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (timing) Object.assign(timing, { received: t0, parseMs: performance.now() - t0, bytes: text.length });
  if (!res.ok) {
    const msg = body && typeof body.error === 'string' ? body.error : `${res.status} ${res.statusText}`.trim();
    throw new ApiError(msg, res.status);
  }
  if (body === null) throw new ApiError(`malformed response from ${url.split('?')[0]}`, res.status);
  if (cached) {
    if (cache.size >= 12) cache.delete(cache.keys().next().value);
    cache.set(url, body);
  }
  return body;
}
