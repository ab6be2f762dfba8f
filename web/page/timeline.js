// Samples over time, with a brush.
//
// The chart shows the buckets of /api/timeline for the current range. Drag
// across it to select a sub-range; the selection snaps to bucket edges and
// is reported through onSelect(from, until). In the diff view two timelines
// share the same data, each with its own persistent selection (baseline,
// comparison).

import { fmtAmount, fmtTick, fmtTime } from './format.js';

const AXIS = 18;
const TICKS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800].map((s) => s * 1e9);

export class Timeline {
  /**
   * @param {HTMLElement} host
   * @param {object} o  { label, tone: 'main'|'base'|'cmp', height (px of bars), onSelect(from, until) }
   */
  constructor(host, o) {
    this.o = o;
    this.H = o.height || 56;
    this.data = null;
    this.sel = null; // persistent selection [a, b] (ns)
    this.drag = null; // [startPx, curPx] while brushing
    this.hoverX = -1;
    this.colors = { bar: '#e8743b', sel: 'rgba(0,0,0,.1)', edge: '#333', text: '#666', grid: '#ddd', shade: 'rgba(0,0,0,.06)' };

    this.el = document.createElement('div');
    this.el.className = `timeline tone-${o.tone || 'main'}`;
    const head = document.createElement('div');
    head.className = 'timeline-head';
    this.title = document.createElement('span');
    this.title.className = 'timeline-label';
    this.title.textContent = o.label || '';
    this.readout = document.createElement('span');
    this.readout.className = 'timeline-readout';
    this.readout.setAttribute('aria-live', 'off');
    head.append(this.title, this.readout);
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'timeline-canvas';
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', `${o.label || 'Timeline'}: samples over time; drag to select a range`);
    this.el.append(head, this.canvas);
    host.append(this.el);
    this.ctx = this.canvas.getContext('2d');

    this.canvas.addEventListener('pointerdown', (e) => {
      if (!this.data || e.button !== 0) return;
      this.canvas.setPointerCapture(e.pointerId);
      const x = this.px(e);
      this.drag = [x, x];
      this.draw();
    });
    this.canvas.addEventListener('pointermove', (e) => {
      const x = this.px(e);
      if (this.drag) this.drag[1] = x;
      this.hoverX = x;
      this.updateReadout();
      this.draw();
    });
    this.canvas.addEventListener('pointerleave', () => {
      this.hoverX = -1;
      this.updateReadout();
      this.draw();
    });
    const end = (e) => {
      if (!this.drag) return;
      const [a, b] = this.drag;
      this.drag = null;
      if (e.type === 'pointerup' && Math.abs(b - a) >= 4) {
        const [from, until] = this.snap(Math.min(a, b), Math.max(a, b));
        if (until > from && this.o.onSelect) this.o.onSelect(from, until);
      }
      this.draw();
    };
    this.canvas.addEventListener('pointerup', end);
    this.canvas.addEventListener('pointercancel', end);
    new ResizeObserver((entries) => {
      const w = Math.round(entries[entries.length - 1].contentRect.width);
      if (w !== this.observedW) {
        this.observedW = w;
        this.resize();
      }
    }).observe(this.el);
  }

  setColors(c) {
    Object.assign(this.colors, c);
    this.draw();
  }

  /** { from, until, step, buckets: [[start, count], …], measure ('cpu': samples, 'off-cpu': ns) } */
  setData(d) {
    this.data = d;
    this.updateReadout();
    this.draw();
  }

  setSelection(a, b) {
    this.sel = a !== null && b !== null && b > a ? [a, b] : null;
    this.draw();
  }

  px(e) {
    const r = this.canvas.getBoundingClientRect();
    return Math.max(0, Math.min(r.width, e.clientX - r.left));
  }

  x(t) {
    const { from, until } = this.data;
    return ((t - from) / (until - from)) * this.w;
  }

  t(px) {
    const { from, until } = this.data;
    return from + (px / this.w) * (until - from);
  }

  /** Pixel span → [from, until] snapped to bucket edges (whole seconds). */
  snap(pa, pb) {
    const { from, until, step } = this.data;
    const k = (t, f) => Math.round(Math.min(until, Math.max(from, from + f((t - from) / step) * step)) / 1e9) * 1e9;
    return [k(this.t(pa), Math.floor), k(this.t(pb), Math.ceil)];
  }

  updateReadout() {
    if (!this.data || this.hoverX < 0) {
      this.readout.textContent = '';
      return;
    }
    const t = this.t(this.hoverX);
    const { step, buckets } = this.data;
    const b = buckets.find(([s]) => t >= s && t < s + step);
    this.readout.textContent = `${fmtTime(b ? b[0] : t)}${b ? ` · ${fmtAmount(b[1], this.data.measure)}` : ''}`;
  }

  resize() {
    const w = Math.max(1, this.canvas.parentElement.clientWidth);
    const dpr = window.devicePixelRatio || 1;
    this.w = w;
    this.dpr = dpr;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round((this.H + AXIS) * dpr);
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${this.H + AXIS}px`;
    this.draw();
  }

  draw() {
    if (!this.w) return;
    const c = this.ctx, w = this.w, col = this.colors;
    c.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    c.clearRect(0, 0, w, this.H + AXIS);
    if (!this.data) return;
    const { from, until, step, buckets } = this.data;
    // Ticks and grid.
    const span = until - from;
    const spacing = TICKS.find((s) => (s / span) * w >= 90) || TICKS[TICKS.length - 1];
    const tz = new Date().getTimezoneOffset() * 60e9; // align ticks to local time
    c.font = '11px system-ui, sans-serif';
    c.textBaseline = 'top';
    c.fillStyle = col.text;
    c.strokeStyle = col.grid;
    c.lineWidth = 1;
    for (let t = Math.ceil((from - tz) / spacing) * spacing + tz; t <= until; t += spacing) {
      const x = Math.round(this.x(t)) + 0.5;
      c.beginPath();
      c.moveTo(x, 0);
      c.lineTo(x, this.H + 4);
      c.stroke();
      const label = fmtTick(t, spacing);
      const lw = c.measureText(label).width;
      if (x - lw / 2 > 0 && x + lw / 2 < w) c.fillText(label, x - lw / 2, this.H + 5);
    }
    // Bars.
    let max = 0;
    for (const [, n] of buckets) if (n > max) max = n;
    c.fillStyle = col.bar;
    if (max > 0) {
      for (const [s, n] of buckets) {
        if (!n) continue;
        const a = this.x(s), b = this.x(s + step);
        const h = Math.max(1, (n / max) * (this.H - 6));
        c.fillRect(a, this.H - h, Math.max(1, b - a - (b - a > 3 ? 1 : 0)), h);
      }
    } else {
      c.fillStyle = col.text;
      c.textBaseline = 'middle';
      c.fillText('no samples in this range', 8, this.H / 2);
    }
    c.fillStyle = col.grid;
    c.fillRect(0, this.H, w, 1);
    // Selection (persistent, or the brush being dragged).
    let sel = null;
    if (this.drag) sel = [Math.min(...this.drag), Math.max(...this.drag)];
    else if (this.sel) sel = [this.x(this.sel[0]), this.x(this.sel[1])];
    if (sel) {
      c.fillStyle = col.shade;
      c.fillRect(0, 0, sel[0], this.H);
      c.fillRect(sel[1], 0, w - sel[1], this.H);
      c.fillStyle = col.sel;
      c.fillRect(sel[0], 0, sel[1] - sel[0], this.H);
      c.fillStyle = col.edge;
      c.fillRect(Math.round(sel[0]) - 1, 0, 2, this.H);
      c.fillRect(Math.round(sel[1]) - 1, 0, 2, this.H);
    }
    if (this.hoverX >= 0 && !this.drag) {
      c.fillStyle = col.edge;
      c.globalAlpha = 0.35;
      c.fillRect(Math.round(this.hoverX), 0, 1, this.H);
      c.globalAlpha = 1;
    }
  }
}
