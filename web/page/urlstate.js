// The view state lives in the URL so a view can be shared and reloads to the
// same place. This module converts between the query string and a plain
// state object; app.js decides when to push or replace history entries.
//
//   from, until       selected range (Unix ns)
//   label=k:v         label filters (repeated)
//   view              graph | sandwich | diff
//   zoom=a;b;c        zoomed frame, as its path of names below the root
//   q                 search regex
//   icicle=1          root at the top
//   fn                function shown in the sandwich view
//   bfrom,buntil      diff baseline range; cfrom,cuntil: comparison range
//   palette=cb        colour-blind-safe diff colours (orange/blue)
//   sort=total|self|name|delta, dir=asc|desc   top-functions table order
//   measure=off-cpu|both   time off CPU instead of CPU samples, or both graphs (cpu by default)

export const VIEWS = ['graph', 'sandwich', 'diff'];
const SORTS = ['self', 'total', 'name', 'delta'];
export const MEASURES = ['cpu', 'off-cpu', 'both'];

/** The state of a fresh page (no range: app.js fills in the last hour). */
export function defaults() {
  return {
    from: null, until: null, labels: [], view: 'graph', zoom: [], q: '', icicle: false, fn: '',
    bfrom: null, buntil: null, cfrom: null, cuntil: null, palette: 'rb', sort: 'self', dir: 'desc',
    measure: 'cpu',
  };
}

function ns(v) {
  return v && /^\d{1,20}$/.test(v) ? Number(v) : null;
}

/** Parses a query string into a state; unknown or invalid values fall back to defaults. */
export function parse(search) {
  const q = new URLSearchParams(search);
  const s = defaults();
  s.from = ns(q.get('from'));
  s.until = ns(q.get('until'));
  for (const l of q.getAll('label')) {
    const i = l.indexOf(':');
    if (i > 0) s.labels.push([l.slice(0, i), l.slice(i + 1)]);
  }
  if (VIEWS.includes(q.get('view'))) s.view = q.get('view');
  if (q.get('zoom')) s.zoom = q.get('zoom').split(';').filter(Boolean);
  s.q = q.get('q') || '';
  s.icicle = q.get('icicle') === '1';
  s.fn = q.get('fn') || '';
  for (const k of ['bfrom', 'buntil', 'cfrom', 'cuntil']) s[k] = ns(q.get(k));
  if (q.get('palette') === 'cb') s.palette = 'cb';
  if (SORTS.includes(q.get('sort'))) s.sort = q.get('sort');
  if (q.get('dir') === 'asc') s.dir = 'asc';
  if (MEASURES.includes(q.get('measure'))) s.measure = q.get('measure');
  return s;
}

/** Serialises a state to a query string (defaults omitted, fixed key order). */
export function serialize(s) {
  const q = new URLSearchParams();
  const put = (k, v) => { if (v !== null && v !== undefined && v !== '' && v !== false) q.append(k, String(v)); };
  put('from', s.from);
  put('until', s.until);
  for (const [k, v] of s.labels) q.append('label', `${k}:${v}`);
  if (s.view !== 'graph') put('view', s.view);
  if (s.zoom.length) put('zoom', s.zoom.join(';'));
  put('q', s.q);
  if (s.icicle) put('icicle', '1');
  if (s.view === 'sandwich') put('fn', s.fn);
  if (s.view === 'diff') for (const k of ['bfrom', 'buntil', 'cfrom', 'cuntil']) put(k, s[k]);
  if (s.palette === 'cb') put('palette', 'cb');
  if (s.sort !== 'self') put('sort', s.sort);
  if (s.dir !== 'desc') put('dir', s.dir);
  if (s.measure !== 'cpu') put('measure', s.measure);
  return q.toString();
}
