// The interactive flame graph widget: a canvas that shows one tree, with
// vertical scrolling for deep stacks, hover tooltip, click-to-zoom with a
// short animation, and flame (root at the bottom) or icicle (root at the
// top) orientation.
//
// Deep profiles are tall (3000 rows × 18 px), so the canvas is only as tall
// as the visible area: it sits in a sticky "stage" inside a scroller whose
// spacer gives the full height, and each draw paints just the visible rows.
// Redraws are batched into one per animation frame.

import { paint, DrawRecord } from './render.js';

const ROW = 18;
const FONT = '12px ui-monospace, "SF Mono", SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace';
const reducedMotion = () => matchMedia('(prefers-reduced-motion: reduce)').matches;

export class FlameView {
  /**
   * @param {HTMLElement} host
   * @param {object} o  { describe(i) → {title, sub, rows, hint}, onZoom(i), maxHeight() → px,
   *                      tooltip: HTMLElement, label: string (accessible name) }
   */
  constructor(host, o) {
    this.o = o;
    this.tree = null;
    this.painter = null;
    this.focus = 0;
    this.icicle = false;
    this.x0 = 0;
    this.x1 = 1;
    this.anim = null;
    this.hover = -1;
    this.raf = 0;
    this.rec = new DrawRecord();
    this.style = { font: FONT, charW: 7.2, merged: '#999', accent: '#000' };
    this.stats = { draws: 0, lastMs: 0 };

    this.el = document.createElement('div');
    this.el.className = 'flame';
    this.scroller = div('flame-scroll');
    this.stage = div('flame-stage');
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'flame-canvas';
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', o.label || 'Flame graph');
    this.overlay = document.createElement('canvas');
    this.overlay.className = 'flame-overlay';
    this.overlay.setAttribute('aria-hidden', 'true');
    this.message = div('flame-message');
    this.message.hidden = true;
    this.spacer = div('flame-spacer');
    this.stage.append(this.canvas, this.overlay, this.message);
    this.scroller.append(this.stage, this.spacer);
    this.el.append(this.scroller);
    host.append(this.el);

    this.ctx = this.canvas.getContext('2d', { alpha: true });
    this.octx = this.overlay.getContext('2d');
    this.measure();

    this.scroller.addEventListener('scroll', () => {
      this.setHover(-1);
      this.requestDraw();
    }, { passive: true });
    this.overlay.addEventListener('mousemove', (e) => this.onMove(e));
    this.overlay.addEventListener('mouseleave', () => this.setHover(-1));
    this.overlay.addEventListener('click', (e) => {
      const i = this.pick(e);
      this.setHover(-1);
      if (i >= 0 && this.o.onZoom) this.o.onZoom(i);
    });
    // Keyboard: the graph is focusable; arrows move between frames, Enter zooms.
    this.overlay.tabIndex = 0;
    this.overlay.setAttribute('aria-label', `${o.label || 'Flame graph'}: arrow keys move between frames, Enter zooms`);
    this.overlay.addEventListener('keydown', (e) => this.onKey(e));
    this.overlay.addEventListener('blur', () => this.setHover(-1));
    // Only width changes matter (the height is ours); this also avoids a resize loop.
    new ResizeObserver((entries) => {
      const w = Math.round(entries[entries.length - 1].contentRect.width);
      if (w !== this.observedW) {
        this.observedW = w;
        this.resize();
      }
    }).observe(this.el);
  }

  measure() {
    const sample = 'abcdefghijklmnopqrstuvwxyz_:0123456789';
    this.ctx.font = this.style.font;
    this.style.charW = this.ctx.measureText(sample).width / sample.length;
    // Draw once while the profile is still loading, so loading the font and
    // its glyphs is not part of the first real frame.
    this.ctx.fillText(sample + sample.toUpperCase() + '…()<>.,', 0, 12);
    this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
  }

  /** Colours from the theme: { merged, accent }. */
  setStyle(s) {
    Object.assign(this.style, s);
    this.requestDraw();
  }

  /** Shows a tree; focus is a node index (0 = root). Scroll goes back to the root. */
  setTree(tree, painter, focus = 0) {
    const changed = tree !== this.tree;
    this.tree = tree;
    this.painter = painter;
    this.hover = -1;
    this.message.hidden = true;
    this.anim = null;
    this.focus = Math.min(Math.max(focus, 0), tree ? tree.n - 1 : 0);
    [this.x0, this.x1] = this.range(this.focus);
    this.resize();
    if (changed) this.scrollToRoot();
    if (this.focus > 0) this.reveal(this.focus);
    this.requestDraw();
  }

  setPainter(painter) {
    this.painter = painter;
    this.requestDraw();
  }

  /** Zooms to node i (0 = whole tree), animated unless the user prefers reduced motion. */
  setFocus(i, animate = true) {
    if (!this.tree) return;
    const [a, b] = this.range(i);
    this.focus = i;
    if (animate && !reducedMotion() && (a !== this.x0 || b !== this.x1)) {
      this.anim = { from: [this.x0, this.x1], to: [a, b], t0: performance.now(), ms: 200 };
    } else {
      this.anim = null;
      this.x0 = a;
      this.x1 = b;
    }
    this.reveal(i);
    this.requestDraw();
  }

  setIcicle(on) {
    if (on === this.icicle) return;
    const max = this.scroller.scrollHeight - this.scroller.clientHeight;
    const top = this.scroller.scrollTop;
    this.icicle = on;
    this.scroller.scrollTop = Math.max(0, max - top); // mirror the visible rows
    this.requestDraw();
  }

  /** Shows a message instead of the graph (empty tree, errors); null hides it. */
  showMessage(text) {
    this.message.hidden = !text;
    this.message.textContent = text || '';
  }

  range(i) {
    if (!this.tree || !(this.tree.total[i] > 0)) return [0, 1];
    return [this.tree.x[i], this.tree.x[i] + this.tree.total[i]];
  }

  get contentH() {
    return this.tree ? (this.tree.maxDepth + 1) * ROW : ROW;
  }

  /** Sizes scroller, stage and canvases to the host width and visible height. */
  resize() {
    const contentH = this.contentH;
    const max = Math.max(ROW * 4, Math.floor(this.o.maxHeight ? this.o.maxHeight() : 600));
    const h = Math.max(Math.min(contentH, max), ROW * 3);
    this.h = h;
    this.scroller.style.height = `${h}px`;
    this.stage.style.height = `${h}px`;
    this.spacer.style.height = `${Math.max(0, contentH - h)}px`;
    const w = Math.max(1, this.scroller.clientWidth);
    const dpr = window.devicePixelRatio || 1;
    if (w !== this.w || dpr !== this.dpr || this.canvas.height !== Math.round(h * dpr)) {
      this.w = w;
      this.dpr = dpr;
      for (const c of [this.canvas, this.overlay]) {
        c.width = Math.round(w * dpr);
        c.height = Math.round(h * dpr);
        c.style.width = `${w}px`;
        c.style.height = `${h}px`;
      }
    }
    this.requestDraw();
  }

  scrollToRoot() {
    this.scroller.scrollTop = this.icicle ? 0 : this.scroller.scrollHeight;
  }

  /** Scrolls so that node i's row is visible. */
  reveal(i) {
    if (!this.tree) return;
    const d = this.tree.depth[i];
    const top = this.icicle ? d * ROW : this.contentH - (d + 1) * ROW;
    const st = this.scroller.scrollTop;
    if (top < st || top + ROW > st + this.h) {
      this.scroller.scrollTop = this.icicle ? Math.max(0, top - ROW * 2) : top - this.h + ROW * 3;
    }
  }

  requestDraw() {
    if (!this.raf) {
      this.raf = requestAnimationFrame(() => {
        this.raf = 0;
        this.draw();
      });
    }
  }

  /** True while an animation or redraw is pending. */
  get busy() {
    return !!(this.raf || this.anim);
  }

  draw() {
    const t0 = performance.now();
    if ((window.devicePixelRatio || 1) !== this.dpr) this.resize();
    if (this.anim) {
      const k = Math.min(1, (t0 - this.anim.t0) / this.anim.ms);
      const e = 1 - (1 - k) ** 3; // ease-out cubic
      this.x0 = this.anim.from[0] + (this.anim.to[0] - this.anim.from[0]) * e;
      this.x1 = this.anim.from[1] + (this.anim.to[1] - this.anim.from[1]) * e;
      if (k >= 1) this.anim = null;
      else this.requestDraw();
    }
    const ctx = this.ctx;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    paint(ctx, this.tree, {
      width: this.w, height: this.h, x0: this.x0, x1: this.x1, scrollTop: this.scroller.scrollTop,
      rowH: ROW, contentH: this.contentH, icicle: this.icicle, focus: this.focus,
    }, this.painter, this.style, this.rec);
    this.drawOverlay();
    this.stats.draws++;
    this.stats.lastMs = performance.now() - t0;
    if (this.o.onDraw) this.o.onDraw(this.stats.lastMs);
  }

  drawOverlay() {
    const c = this.octx;
    c.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    c.clearRect(0, 0, this.w, this.h);
    const k = this.recIndex(this.hover);
    if (k < 0) return;
    c.strokeStyle = this.style.accent;
    c.lineWidth = 2;
    c.strokeRect(this.rec.x[k] + 1, this.rec.y[k] + 1, Math.max(1, this.rec.w[k] - 3), ROW - 3);
  }

  recIndex(i) {
    if (i < 0) return -1;
    for (let k = 0; k < this.rec.n; k++) if (this.rec.idx[k] === i) return k;
    return -1;
  }

  /** Node under a mouse event, among what was drawn, or -1. */
  pick(e) {
    const r = this.overlay.getBoundingClientRect();
    const px = e.clientX - r.left, py = e.clientY - r.top;
    const rec = this.rec;
    for (let k = 0; k < rec.n; k++) {
      if (py >= rec.y[k] && py < rec.y[k] + ROW - 1 && px >= rec.x[k] && px < rec.x[k] + rec.w[k]) return rec.idx[k];
    }
    return -1;
  }

  onMove(e) {
    const i = this.pick(e);
    this.setHover(i);
    if (i >= 0) this.showTip(i, e.clientX, e.clientY);
  }

  onKey(e) {
    const t = this.tree;
    if (!t || e.ctrlKey || e.metaKey || e.altKey) return;
    const cur = this.hover >= 0 ? this.hover : this.focus;
    const p = t.parent[cur];
    const kids = (n) => {
      const out = [];
      for (let c = n + 1; c < t.end[n]; c = t.end[c]) out.push(c);
      return out;
    };
    const widest = (n) => kids(n).reduce((b, c) => (b < 0 || t.total[c] > t.total[b] ? c : b), -1);
    let next = -1;
    const deeper = this.icicle ? 'ArrowDown' : 'ArrowUp';
    const shallower = this.icicle ? 'ArrowUp' : 'ArrowDown';
    if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
      if (p >= 0) {
        const sib = kids(p);
        next = sib[sib.indexOf(cur) + (e.key === 'ArrowLeft' ? -1 : 1)] ?? -1;
      }
    } else if (e.key === deeper) next = widest(cur);
    else if (e.key === shallower) next = p;
    else if (e.key === 'Enter' || e.key === ' ') {
      if (this.o.onZoom) this.o.onZoom(cur);
      e.preventDefault();
      return;
    } else return;
    e.preventDefault();
    if (next < 0) return;
    this.setHover(next);
    this.reveal(next);
    this.draw(); // so the record (and the tooltip position) is current
    const k = this.recIndex(next);
    const r = this.overlay.getBoundingClientRect();
    const x = k >= 0 ? r.left + Math.max(0, this.rec.x[k]) + Math.min(this.rec.w[k], 40) : r.left + 20;
    const y = k >= 0 ? r.top + this.rec.y[k] + ROW / 2 : r.top + 20;
    this.showTip(next, x, y);
  }

  setHover(i) {
    if (i === this.hover) return;
    this.hover = i;
    this.overlay.style.cursor = i >= 0 ? 'pointer' : '';
    if (i < 0 && this.o.tooltip) this.o.tooltip.hidden = true;
    this.drawOverlay();
    if (this.o.onHover) this.o.onHover(i);
  }

  showTip(i, cx, cy) {
    const tip = this.o.tooltip;
    if (!tip || !this.o.describe) return;
    const d = this.o.describe(i);
    tip.replaceChildren();
    const title = document.createElement('div');
    title.className = 'tip-title';
    title.textContent = d.title;
    tip.append(title);
    if (d.sub) {
      const sub = document.createElement('div');
      sub.className = 'tip-sub';
      sub.textContent = d.sub;
      tip.append(sub);
    }
    const tbl = document.createElement('dl');
    for (const [k, v, cls] of d.rows) {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      if (cls) dd.className = cls;
      tbl.append(dt, dd);
    }
    tip.append(tbl);
    if (d.hint) {
      const h = document.createElement('div');
      h.className = 'tip-hint';
      h.textContent = d.hint;
      tip.append(h);
    }
    tip.hidden = false;
    const pad = 14, tw = tip.offsetWidth, th = tip.offsetHeight;
    let x = cx + pad, y = cy + pad;
    if (x + tw > innerWidth - 4) x = Math.max(4, cx - tw - pad);
    if (y + th > innerHeight - 4) y = Math.max(4, cy - th - pad);
    tip.style.transform = `translate(${Math.round(x)}px, ${Math.round(y)}px)`;
  }

  /** What the last frame drew, for tests: one entry per rectangle. */
  drawn() {
    const out = [];
    const t = this.tree, rec = this.rec;
    for (let k = 0; k < rec.n; k++) {
      const i = rec.idx[k];
      out.push({
        i, name: t.label(i), depth: t.depth[i], self: t.self[i], total: t.total[i], kind: t.kind[i],
        x: rec.x[k], y: rec.y[k], w: rec.w[k], h: ROW - 1,
        ancestor: this.focus > 0 && t.depth[i] < t.depth[this.focus],
        tag: this.painter.tag(i), fill: this.painter.fill(i),
      });
    }
    return out;
  }
}

function div(cls) {
  const d = document.createElement('div');
  d.className = cls;
  return d;
}
