// Starts the profile request before the modules load (a classic script in
// <head>, so it runs as soon as it arrives). The JSON download then overlaps
// loading and starting app.js, which is most of the first-render time on big
// profiles. It also fills in a missing range (the last hour, as app.js would)
// in the URL, so that app.js reads exactly the range this request asks for.
//
// The request URL is built exactly as api.js firstPaintURL() builds it (the
// pruned tree of the first paint; app.js then loads the whole tree); api.js
// getJSON() adopts the pending response when the URLs are equal. Views that
// need the whole tree at once (see app.js firstPaintFits) skip the prefetch.
(function () {
  try {
    var q = new URLSearchParams(location.search);
    var ns = function (v) { return v !== null && /^\d{1,20}$/.test(v); };
    if (!ns(q.get('from')) || !ns(q.get('until'))) {
      var until = ns(q.get('until')) ? q.get('until') : String(Math.floor(Date.now() / 10000) * 10e9);
      var from = ns(q.get('from')) ? q.get('from') : String(Number(until) - 3600e9);
      var fixed = new URLSearchParams([['from', from], ['until', until]]);
      q.forEach(function (v, k) { if (k !== 'from' && k !== 'until') fixed.append(k, v); });
      q = fixed;
      history.replaceState(null, '', location.pathname + '?' + q.toString());
    }
    if (q.get('view') === 'diff') return; // the diff view asks for two other ranges
    if (q.get('view') === 'sandwich' || q.get('zoom')) return; // these need the whole tree
    var p = new URLSearchParams();
    p.append('from', String(Number(q.get('from'))));
    p.append('until', String(Number(q.get('until'))));
    q.getAll('label').forEach(function (l) { if (l.indexOf(':') > 0) p.append('label', l); });
    if (q.get('measure') === 'off-cpu') p.append('measure', 'off-cpu');
    p.append('format', 'json');
    p.append('min_share', '0.0001'); // api.js FIRST_PAINT_MIN_SHARE
    var url = 'api/profile?' + p.toString();
    var response = fetch(url, { headers: { accept: 'application/json' } });
    response.catch(function () {}); // reported when app.js adopts the request
    window.__scorchPrefetch = { url: url, response: response };
  } catch (e) {
    // app.js does everything itself then
  }
})();
