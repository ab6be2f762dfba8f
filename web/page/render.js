// Drawing a tree onto a 2D canvas.
//
// One pass over the pre-order arrays draws what is visible: a node narrower
// than half a pixel, outside the horizontal window or deeper than the last
// visible row is skipped together with its whole subtree (one jump to
// end[i]), so the cost follows what is on screen, not the profile size.
// Runs of adjacent skipped siblings that add up to a pixel or more are drawn
// as one neutral block, so dense areas do not look empty.
//
// Colours come from a "painter" ({ fill(i), text(i), tag(i) }): the normal
// profile hashes names into warm hues per frame kind; the diff painter lives
// in diff.js.

import { textOn } from './diff.js';

/** Frame kinds as sent by the API; PRUNED stands for the frames a first-paint tree left out. */
export const KIND = { USER: 0, KERNEL: 1, JIT: 2, PROCESS: 3, PRUNED: 4 };
export const KIND_NAMES = ['user', 'kernel', 'JIT', 'process', 'smaller frames'];

// Pruned frames look like the merged runs of tiny frames: neutral.
const PRUNED_COLORS = [{ fill: 'hsl(36,9%,81%)', text: '#5b5f66' }, { fill: 'hsl(220,6%,30%)', text: '#aab0b8' }];

function hash(s) {
  let h = 0x811c9dc5; // FNV-1a
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

// Base hue/saturation/lightness ranges per kind: user code warm (the classic
// flame graph look), kernel blue, JIT green, process frames muted violet.
const KIND_HSL = [
  [6, 42, 72, 14, 60, 12],
  [192, 22, 52, 14, 62, 10],
  [92, 40, 44, 16, 52, 12],
  [258, 20, 22, 10, 72, 6],
];

/** HSL triple of a frame, stable for a (name, kind) pair. */
export function frameHSL(name, kind, dark) {
  const h = hash(name);
  const [h0, hr, s0, sr, l0, lr] = KIND_HSL[kind] || KIND_HSL[0];
  const hue = h0 + (h % hr);
  const sat = s0 + ((h >>> 8) % sr);
  let light = l0 + ((h >>> 16) % lr);
  if (dark) light -= 6;
  return [hue, sat, light];
}

/** Base colours of a tree's frames, cached on the tree per theme: { fill, text, h, l }. */
function baseColors(tree, dark) {
  const key = dark ? '_colorsDark' : '_colorsLight';
  return tree[key] || (tree[key] = new Map());
}

/**
 * The painter for a normal profile. `match` (per-name Uint8Array or null)
 * greys out frames that do not match the search.
 */
export function profilePainter(tree, { dark = false, match = null } = {}) {
  const base = baseColors(tree, dark);
  const dimmed = new Map();
  const get = (i) => {
    if (tree.kind[i] === KIND.PRUNED) return PRUNED_COLORS[dark ? 1 : 0];
    const key = tree.name[i] * KIND_NAMES.length + tree.kind[i];
    let c = base.get(key);
    if (!c) {
      const [h, s, l] = frameHSL(tree.label(i), tree.kind[i], dark);
      c = { fill: `hsl(${h},${s}%,${l}%)`, text: textOn(h, s, l), h, l };
      base.set(key, c);
    }
    if (match && !match[tree.name[i]]) {
      let d = dimmed.get(key);
      if (!d) {
        d = dark
          ? { fill: `hsl(${c.h},7%,${24 + (c.l % 6)}%)`, text: '#8b9099' }
          : { fill: `hsl(${c.h},6%,${86 + (c.l % 5)}%)`, text: '#6b6f76' };
        dimmed.set(key, d);
      }
      return d;
    }
    return c;
  };
  return {
    fill: (i) => get(i).fill,
    text: (i) => get(i).text,
    tag: (i) => (match ? (match[tree.name[i]] ? 'match' : 'dim') : ''),
  };
}

/** Growable typed arrays recording what the last paint drew (for hit tests and the test hook). */
export class DrawRecord {
  constructor() {
    this.cap = 0;
    this.n = 0;
    this.merged = 0;
    this.grow(1024);
  }
  grow(cap) {
    const old = this;
    const idx = new Int32Array(cap), x = new Float32Array(cap), y = new Float32Array(cap), w = new Float32Array(cap);
    if (this.cap) {
      idx.set(old.idx.subarray(0, this.n)); x.set(old.x.subarray(0, this.n));
      y.set(old.y.subarray(0, this.n)); w.set(old.w.subarray(0, this.n));
    }
    Object.assign(this, { idx, x, y, w, cap });
  }
  push(i, x, y, w) {
    if (this.n === this.cap) this.grow(this.cap * 2);
    this.idx[this.n] = i; this.x[this.n] = x; this.y[this.n] = y; this.w[this.n] = w;
    this.n++;
  }
}

/**
 * Paints `tree` into ctx (CSS pixel coordinates).
 * view: { width, height, x0, x1, scrollTop, rowH, contentH, icicle, focus }
 * style: { font, charW, merged (colour), bg }
 */
export function paint(ctx, tree, view, painter, style, rec) {
  const { width, height, x0, x1, scrollTop, rowH, contentH, icicle, focus } = view;
  ctx.clearRect(0, 0, width, height);
  rec.n = 0;
  rec.merged = 0;
  if (!tree || tree.n === 0 || !(tree.total[0] > 0) || !(x1 > x0)) return;
  const scale = width / (x1 - x0);
  const { depth, x: X, total, end } = tree;
  const n = tree.n;
  // Visible rows.
  let dMin, dMax;
  if (icicle) {
    dMin = Math.floor(scrollTop / rowH);
    dMax = Math.floor((scrollTop + height) / rowH);
  } else {
    dMin = Math.floor((contentH - scrollTop - height) / rowH) - 1;
    dMax = Math.floor((contentH - scrollTop) / rowH);
  }
  dMin = Math.max(0, dMin);
  const rowY = icicle ? (d) => d * rowH - scrollTop : (d) => contentH - (d + 1) * rowH - scrollTop;
  const fDepth = focus > 0 ? depth[focus] : 0;

  // Pending runs of tiny siblings per depth: [start, end) in px.
  const runA = new Float64Array(dMax + 2).fill(-1), runB = new Float64Array(dMax + 2);
  ctx.fillStyle = style.merged;
  const flush = (d) => {
    if (runA[d] >= 0 && runB[d] - runA[d] >= 1) {
      ctx.fillRect(runA[d], rowY(d), runB[d] - runA[d], rowH - 1);
      rec.merged++;
    }
    runA[d] = -1;
  };

  // Pass 1: rectangles. Colours are set per rectangle; the browser batches.
  let lastFill = '';
  let ancestors = 0;
  for (let i = 0; i < n; ) {
    const d = depth[i];
    const w = total[i] * scale;
    const left = (X[i] - x0) * scale;
    if (d > dMax || left >= width || left + w <= 0 || w < 0.5) {
      if (w > 0 && w < 0.5 && d <= dMax && d >= dMin && left < width && left + w > 0) {
        if (runA[d] >= 0 && left - runB[d] < 0.01) runB[d] = left + w;
        else {
          flush(d);
          runA[d] = left;
          runB[d] = left + w;
        }
      }
      i = end[i];
      continue;
    }
    if (d >= dMin) {
      const a = Math.max(left, -1), b = Math.min(left + w, width + 1);
      const isAnc = focus > 0 && d < fDepth && i <= focus && focus < end[i];
      if (isAnc) ancestors++;
      const f = painter.fill(i);
      if (f !== lastFill) ctx.fillStyle = lastFill = f;
      if (isAnc) ctx.globalAlpha = 0.55;
      ctx.fillRect(a, rowY(d), b - a > 2 ? b - a - 1 : b - a, rowH - 1);
      if (isAnc) ctx.globalAlpha = 1;
      rec.push(i, a, rowY(d), b - a);
    }
    i++;
  }
  for (let d = 0; d < runA.length; d++) {
    if (runA[d] >= 0) {
      ctx.fillStyle = style.merged;
      flush(d);
    }
  }

  // Pass 2: labels, truncated with an ellipsis to the rectangle's width.
  ctx.font = style.font;
  ctx.textBaseline = 'middle';
  const cw = style.charW;
  let lastText = '';
  for (let k = 0; k < rec.n; k++) {
    const w = rec.w[k];
    if (w < cw * 2 + 8) continue;
    const i = rec.idx[k];
    const name = tree.label(i);
    const fit = Math.floor((w - 8) / cw);
    const s = name.length <= fit ? name : fit >= 2 ? name.slice(0, fit - 1) + '…' : '';
    if (!s) continue;
    const t = painter.text(i);
    if (t !== lastText) ctx.fillStyle = lastText = t;
    const isAnc = focus > 0 && tree.depth[i] < fDepth;
    if (isAnc) ctx.globalAlpha = 0.7;
    ctx.fillText(s, Math.max(rec.x[k], 0) + 4, rec.y[k] + rowH / 2);
    if (isAnc) ctx.globalAlpha = 1;
  }
  return ancestors;
}
