// Unit tests of the page's pure modules (layout, search, table statistics,
// sandwich, diff, URL state), run in Node against a hand-written tree.
//
//   node web/e2e/unit.mjs      (also run first by run.mjs)

import { Tree } from '../page/tree.js';
import { compile, matchNames, matchStats } from '../page/search.js';
import { functionStats } from '../page/table.js';
import { sandwich } from '../page/sandwich.js';
import { diffTree, classify } from '../page/diff.js';
import { parse, serialize } from '../page/urlstate.js';
import { profilePainter } from '../page/render.js';
import { fmtWait, fmtAmount } from '../page/format.js';

// all(10) ─ a(10, self 1) ─ r(6) ─ r(4, self 1) ─ x(3, self 3)
//                        │       └ x(2, self 2)
//                        └ x(3, self 3)
const names = ['all', 'a', 'r', 'x'];
const json = (nodes) => ({ names, nodes });
const T = Tree.fromJSON(json({
  name: [0, 1, 2, 2, 3, 3, 3], parent: [-1, 0, 1, 2, 3, 2, 1],
  self: [0, 1, 0, 1, 3, 2, 3], total: [10, 10, 6, 4, 3, 2, 3], kind: [3, 3, 0, 0, 0, 0, 1],
}));

const results = [];
function check(name, got, want) {
  const ok = JSON.stringify(got) === JSON.stringify(want);
  results.push(ok);
  console.log(`${ok ? 'ok  ' : 'FAIL'}  unit: ${name}${ok ? '' : ` — expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`}`);
}

check('layout: depth', [...T.depth], [0, 1, 2, 3, 4, 3, 2]);
check('layout: x offsets pack children from the left', [...T.x], [0, 0, 0, 0, 0, 4, 6]);
check('layout: subtree ends', [...T.end], [7, 7, 6, 5, 5, 6, 7]);
check('find a path', T.find(['a', 'r', 'r']), 3);
check('path of a node', T.path(4), ['a', 'r', 'r', 'x']);
check('recursion counted once in a search', matchStats(T, matchNames(names, compile('^r$').re)).samples, 6);
check('search under a zoomed node', matchStats(T, matchNames(names, compile('x').re), 2).samples, 5);
check('smart case', [compile('X').re.flags, compile('x').re.flags], ['', 'i']);
check('invalid regex is an error, not a throw', typeof compile('(').error, 'string');
const fs = functionStats(T);
check('function self', [...fs.self], [0, 1, 1, 8]);
check('function total without double counting', [...fs.total], [0, 10, 6, 8]);
const sw = sandwich(T, 'r');
check('sandwich callees root = total', sw.callees.total[0], 6);
check('sandwich callees keep nested calls', [...Array(sw.callees.n).keys()].map((i) => `${sw.callees.label(i)}:${sw.callees.total[i]}`), ['r:6', 'r:4', 'x:3', 'x:2']);
check('sandwich callers', [sw.callers.label(1), sw.callers.total[1]], ['a', 6]);
const swx = sandwich(T, 'x');
check('sandwich of a leaf: callers merged by path', swx.callers.total[0], 8);
check('malformed profile rejected', (() => { try { Tree.fromJSON(json({ name: [0, 1], parent: [-1, 5], self: [0, 0], total: [1, 1] })); return 'accepted'; } catch { return 'rejected'; } })(), 'rejected');

const base = Tree.fromJSON({ names: ['all', 'p', 'a', 'b'], nodes: { name: [0, 1, 2, 3], parent: [-1, 0, 1, 1], self: [0, 0, 10, 10], total: [20, 20, 10, 10] } });
const cmp = Tree.fromJSON({ names: ['all', 'p', 'a', 'b'], nodes: { name: [0, 1, 2, 3], parent: [-1, 0, 1, 1], self: [0, 0, 10, 30], total: [40, 40, 10, 30] } });
const d = diffTree(base, cmp);
const tag = (n) => classify(d, d.find(['p', n]));
check('diff normalised: b grew, a shrank, p same', [tag('b'), tag('a'), classify(d, d.find(['p']))], ['grew', 'shrank', 'same']);
check('diff widths are mean shares', Math.round(d.total[d.find(['p', 'b'])] * 1000), Math.round(((10 / 20 + 30 / 40) / 2) * 1000));

const st = parse('?from=1700000000000000000&until=1700000060000000000&label=comm:db&label=host:a:b&zoom=a;r&q=x%7Cy&icicle=1&view=sandwich&fn=r');
check('url parse', [st.from, st.labels, st.zoom, st.q, st.icicle, st.view, st.fn], [1700000000000000000, [['comm', 'db'], ['host', 'a:b']], ['a', 'r'], 'x|y', true, 'sandwich', 'r']);
check('url round trip', parse(serialize(st)), st);
const off = parse('?from=1&until=2&measure=off-cpu');
check('url measure', [off.measure, parse('?measure=wall').measure, parse('').measure], ['off-cpu', 'cpu', 'cpu']);
check('url measure round trip', [parse(serialize(off)).measure, serialize(parse('?measure=cpu')).includes('measure')], ['off-cpu', false]);
check('off-CPU time units', [fmtWait(450), fmtWait(12_400), fmtWait(850e6), fmtWait(9.015e9), fmtAmount(1234, 'cpu')], ['450 ns', '12 µs', '850 ms', '9.02 s', '1,234 samples']);

// A pruned node keeps its grey even after a frame whose colour key it once
// shared (name 2 of kind user vs. name 1 of kind pruned) was painted first.
const P = Tree.fromJSON({
  names: ['all', 'p', 'q'],
  nodes: { name: [0, 1, 2], parent: [-1, 0, 0], self: [0, 1, 9], total: [10, 1, 9], kind: [3, 4, 0] },
});
const painter = profilePainter(P);
const user = painter.fill(2);
check('pruned frames stay grey', [painter.fill(1), painter.fill(1) === user], ['hsl(36,9%,81%)', false]);

const failed = results.filter((x) => !x).length;
if (import.meta.url === `file://${process.argv[1]}`) process.exit(failed ? 1 : 0);
export default failed;
