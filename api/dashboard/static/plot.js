// Inline SVG plots: lines over x, and a scatter with its front. No library, nothing fetched.
import { esc, human } from "./api.js";

const W = 520, H = 260, M = { l: 52, r: 14, t: 24, b: 38 };
export const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c"];

function extent(values, pad = 0) {
  let lo = Math.min(...values), hi = Math.max(...values);
  if (!isFinite(lo)) return [0, 1];
  if (lo === hi) { lo -= 0.5; hi += 0.5; }
  const d = (hi - lo) * pad;
  return [lo - d, hi + d];
}

function ticks([lo, hi], n = 5) {
  const step = (hi - lo) / (n - 1);
  return Array.from({ length: n }, (_, i) => lo + i * step);
}

function frame(title, xlabel, ylabel, xs, ys, sx, sy, logx) {
  const tx = (v) => (logx ? human(10 ** v) : human(v));
  let g = `<text x="${M.l}" y="15" style="font-weight:600">${esc(title)}</text>`;
  for (const v of ticks(ys)) {
    const y = sy(v).toFixed(1);
    g += `<line class="grid-line" x1="${M.l}" x2="${W - M.r}" y1="${y}" y2="${y}"/>`;
    g += `<text x="${M.l - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${human(v)}</text>`;
  }
  for (const v of ticks(xs)) {
    const x = sx(v).toFixed(1);
    g += `<text x="${x}" y="${H - M.b + 14}" text-anchor="middle">${tx(v)}</text>`;
  }
  g += `<line class="axis" x1="${M.l}" x2="${W - M.r}" y1="${H - M.b}" y2="${H - M.b}"/>`;
  g += `<line class="axis" x1="${M.l}" x2="${M.l}" y1="${M.t}" y2="${H - M.b}"/>`;
  g += `<text x="${(M.l + W - M.r) / 2}" y="${H - 6}" text-anchor="middle">${esc(xlabel)}</text>`;
  g += `<text transform="translate(12 ${(M.t + H - M.b) / 2}) rotate(-90)" text-anchor="middle">${esc(ylabel)}</text>`;
  return g;
}

function legend(series) {
  return series
    .map((s, i) => {
      const x = W - M.r - 110 * (series.length - i);
      return `<rect x="${x}" y="6" width="10" height="10" fill="${s.color || COLORS[i]}"/>
        <text x="${x + 14}" y="15">${esc(s.name)}</text>`;
    })
    .join("");
}

/**
 * A line plot: series = [{ name, points: [[x, y], ...], color? }].
 * Returns SVG markup; each series is one <path> with data-points = its point count.
 */
export function linePlot({ title, xlabel, ylabel, series }) {
  const all = series.flatMap((s) => s.points).filter(([x, y]) => isFinite(x) && isFinite(y));
  if (!all.length) return `<p class="empty">${esc(title)}: no points yet</p>`;
  const xs = extent(all.map((p) => p[0]));
  const ys = extent(all.map((p) => p[1]), 0.05);
  const sx = (v) => M.l + ((v - xs[0]) / (xs[1] - xs[0])) * (W - M.l - M.r);
  const sy = (v) => H - M.b - ((v - ys[0]) / (ys[1] - ys[0])) * (H - M.t - M.b);
  let body = frame(title, xlabel, ylabel, xs, ys, sx, sy, false);
  series.forEach((s, i) => {
    const pts = s.points.filter(([x, y]) => isFinite(x) && isFinite(y));
    if (!pts.length) return;
    const color = s.color || COLORS[i % COLORS.length];
    const d = pts.map(([x, y], k) => `${k ? "L" : "M"}${sx(x).toFixed(1)} ${sy(y).toFixed(1)}`).join("");
    body += `<path class="series" data-series="${esc(s.name)}" data-points="${pts.length}" d="${d}" fill="none" stroke="${color}" stroke-width="1.8"/>`;
    if (pts.length <= 60) {
      body += pts.map(([x, y]) => `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${color}"/>`).join("");
    }
  });
  return `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">${body}${legend(series)}</svg>`;
}

/**
 * Accuracy against cost: every candidate as a dot (x on a log scale), the front as a step line.
 * points = [{ x, y, label, front: bool }].
 */
export function frontPlot({ title, xlabel, ylabel, points }) {
  const good = points.filter((p) => p.x > 0 && isFinite(p.y));
  if (!good.length) return `<p class="empty">${esc(title)}: no points</p>`;
  const xs = extent(good.map((p) => Math.log10(p.x)), 0.05);
  const ys = extent(good.map((p) => p.y), 0.08);
  const sx = (v) => M.l + ((Math.log10(v) - xs[0]) / (xs[1] - xs[0])) * (W - M.l - M.r);
  const sy = (v) => H - M.b - ((v - ys[0]) / (ys[1] - ys[0])) * (H - M.t - M.b);
  const sxLog = (v) => M.l + ((v - xs[0]) / (xs[1] - xs[0])) * (W - M.l - M.r);
  let body = frame(title, xlabel, ylabel, xs, ys, sxLog, sy, true);
  const front = good.filter((p) => p.front).sort((a, b) => a.x - b.x);
  if (front.length) {
    let d = "";
    front.forEach((p, k) => {
      const x = sx(p.x).toFixed(1), y = sy(p.y).toFixed(1);
      d += k ? `H${x}V${y}` : `M${x} ${y}`;
    });
    body += `<path class="series" data-series="front" data-points="${front.length}" d="${d}" fill="none" stroke="${COLORS[0]}" stroke-width="1.8"/>`;
  }
  for (const p of good) {
    body += `<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="${p.front ? 4 : 2.5}" fill="${p.front ? COLORS[0] : "#9aa4ae"}"><title>${esc(p.label)}</title></circle>`;
  }
  return `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">${body}</svg>`;
}
