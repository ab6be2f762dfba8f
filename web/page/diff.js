// Differential flame graph: two profiles (baseline A, comparison B) merged by
// call path. Each profile is first normalised by its own total, so a frame's
// share can be compared even when the ranges hold different sample counts.
//
// Width: the mean of the two shares, so frames that vanished (only in A) or
// appeared (only in B) both stay visible, and a parent still spans its
// children. Colour: the relative change of the share, (b − a) / max(a, b),
// from −1 (gone) to +1 (new); red = grew, blue = shrank.

import { TreeBuilder } from './tree.js';

/** Merges base and cmp into one Tree with extra arrays a, b, aSelf, bSelf (sample counts). */
export function diffTree(base, cmp) {
  const builder = new TreeBuilder(['a', 'b', 'aSelf', 'bSelf']);
  const add = (t, tot, self) => {
    const map = new Int32Array(t.n);
    builder.vals[tot][0] += t.total[0];
    builder.vals[self][0] += t.self[0];
    for (let i = 1; i < t.n; i++) {
      const id = (map[i] = builder.node(map[t.parent[i]], t.label(i), t.kind[i]));
      builder.vals[tot][id] += t.total[i];
      builder.vals[self][id] += t.self[i];
    }
  };
  add(base, 'a', 'aSelf');
  add(cmp, 'b', 'bSelf');
  const A = base.total[0], B = cmp.total[0];
  const wa = A > 0 ? (B > 0 ? 0.5 : 1) / A : 0;
  const wb = B > 0 ? (A > 0 ? 0.5 : 1) / B : 0;
  const v = builder.vals;
  for (let id = 0; id < builder.total.length; id++) {
    builder.total[id] = v.a[id] * wa + v.b[id] * wb;
    builder.self[id] = v.aSelf[id] * wa + v.bSelf[id] * wb;
  }
  const tree = builder.build();
  tree.A = A;
  tree.B = B;
  return tree;
}

/** Relative change of node i's share in a diff tree, in [−1, 1] (0 when either side is empty). */
export function relChange(tree, i) {
  if (!(tree.A > 0 && tree.B > 0)) return 0;
  const an = tree.extra.a[i] / tree.A, bn = tree.extra.b[i] / tree.B;
  const m = Math.max(an, bn);
  return m > 0 ? (bn - an) / m : 0;
}

/** Changes smaller than this (relative) are shown as unchanged. */
export const NEUTRAL = 0.05;

/** 'grew' | 'shrank' | 'same' for node i. */
export function classify(tree, i) {
  const r = relChange(tree, i);
  return r >= NEUTRAL ? 'grew' : r <= -NEUTRAL ? 'shrank' : 'same';
}

// Hues of the two palettes: FlameGraph's red/blue and a colour-blind-safe
// orange/blue (distinguishable with the common red-green deficiencies).
const PALETTES = {
  rb: { grew: 0, shrank: 218 },
  cb: { grew: 28, shrank: 205 },
};

const cache = new Map();

/** { fill, text } CSS colours for a relative change under a palette and theme. */
export function diffColor(rel, palette, dark) {
  // Ten steps on a square-root scale: a 10% change is already visible, 50% is strong.
  const level = Math.abs(rel) < NEUTRAL ? 0 : Math.max(1, Math.min(10, Math.round(Math.sqrt(Math.abs(rel)) * 10)));
  const key = `${palette}${dark ? 'd' : 'l'}${rel > 0 ? '+' : '-'}${level}`;
  let c = cache.get(key);
  if (!c) {
    let h, sat, light;
    if (level === 0) [h, sat, light] = dark ? [220, 8, 36] : [40, 12, 86];
    else {
      h = rel > 0 ? PALETTES[palette].grew : PALETTES[palette].shrank;
      // Small changes stay close to the neutral grey; big ones saturate.
      const full = palette === 'cb' && rel > 0 ? 95 : 80;
      sat = Math.round(full * (0.3 + 0.07 * level));
      light = dark ? 36 + level * 2 : 90 - level * 3.8;
    }
    c = { fill: `hsl(${h},${sat}%,${light.toFixed(1)}%)`, text: textOn(h, sat, light) };
    cache.set(key, c);
  }
  return c;
}

/** Black or white, whichever reads better on an HSL colour. */
const textCache = new Map();
export function textOn(h, s, l) {
  const key = `${h},${s},${l}`;
  let t = textCache.get(key);
  if (!t) textCache.set(key, (t = luminanceText(h, s, l)));
  return t;
}

function luminanceText(h, s, l) {
  s /= 100;
  l /= 100;
  const f = (n) => {
    const k = (n + h / 30) % 12;
    const v = l - s * Math.min(l, 1 - l) * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  const lum = 0.2126 * f(0) + 0.7152 * f(8) + 0.0722 * f(4);
  return lum > 0.18 ? '#161616' : '#ffffff';
}
