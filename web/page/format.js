// Formatting helpers: numbers, percentages, durations and wall-clock times.
// Times are Unix nanoseconds held in doubles; whole seconds are exact.

/** 1234567 → "1,234,567" (rounded for fractional counts). No Intl: it costs ~20 ms to set up. */
export function fmtCount(n) {
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** A fraction as a percentage with precision that suits its size. */
export function fmtPct(f) {
  if (!Number.isFinite(f)) return '–';
  const p = f * 100;
  if (p === 0) return '0%';
  if (Math.abs(p) >= 10) return `${p.toFixed(1)}%`;
  if (Math.abs(p) >= 0.1) return `${p.toFixed(2)}%`;
  return `${p.toPrecision(2)}%`;
}

/** Signed percentage points, e.g. "+12.5 pp". */
export function fmtDeltaPct(f) {
  const s = fmtPct(Math.abs(f));
  return `${f > 0 ? '+' : f < 0 ? '−' : '±'}${s.replace('%', '')} pp`;
}

/** Nanoseconds of waiting, down to the microsecond ("3 µs", "850 ms", "1.20 s"). */
export function fmtWait(ns) {
  if (ns < 1e3) return `${Math.round(ns)} ns`;
  if (ns < 1e6) return `${Math.round(ns / 1e3)} µs`;
  return fmtDuration(ns);
}

/** A count in the unit of `measure`: samples on CPU, time off CPU. */
export function fmtAmount(n, measure) {
  return measure === 'off-cpu' ? fmtWait(n) : `${fmtCount(n)} samples`;
}

/** Nanoseconds as a short human duration ("850 ms", "12.3 s", "4 m 05 s", "2 h"). */
export function fmtDuration(ns) {
  const s = ns / 1e9;
  if (s < 1) return `${Math.round(ns / 1e6)} ms`;
  if (s < 60) return `${s < 10 ? s.toFixed(2) : s.toFixed(1)} s`;
  if (s < 3600) {
    const m = Math.floor(s / 60), r = Math.round(s - m * 60);
    return r ? `${m} m ${String(r).padStart(2, '0')} s` : `${m} m`;
  }
  if (s < 86400) {
    const h = Math.floor(s / 3600), m = Math.round((s - h * 3600) / 60);
    return m ? `${h} h ${String(m).padStart(2, '0')} m` : `${h} h`;
  }
  const d = s / 86400;
  return `${Number.isInteger(d) ? d : d.toFixed(1)} d`;
}

const pad = (n) => String(n).padStart(2, '0');

/** "2023-11-14 22:13:20" in local time. */
export function fmtTime(ns) {
  const d = new Date(ns / 1e6);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A range, dropping the date of `until` when it is the same day. */
export function fmtRange(from, until) {
  const a = fmtTime(from), b = fmtTime(until);
  const sameDay = a.slice(0, 10) === b.slice(0, 10);
  return `${a} → ${sameDay ? b.slice(11) : b}`;
}

/** Axis label for a tick, as coarse as the tick spacing allows. */
export function fmtTick(ns, spacingNs) {
  const d = new Date(ns / 1e6);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (spacingNs >= 86400e9) return `${d.getMonth() + 1}/${d.getDate()}`;
  if (spacingNs >= 60e9) return d.getHours() === 0 && d.getMinutes() === 0 ? `${d.getMonth() + 1}/${d.getDate()}` : hm;
  return `${hm}:${pad(d.getSeconds())}`;
}

/** Escapes a string for use as a literal inside a RegExp. */
export function escapeRegex(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
