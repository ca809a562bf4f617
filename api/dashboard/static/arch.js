// The chosen architecture drawn layer by layer: op, width, parameters and MACs of each.
import { esc, human } from "./api.js";

const BOX_W = 132, GAP = 26, TOP = 20, MAX_H = 150, MIN_H = 78;

/** arch = arch.json: { encode, params, flops, layers: [{ index, op, in_width, width, input_hw, params, macs }] }. */
export function archDrawing(arch, classes) {
  const layers = arch.layers || [];
  if (!layers.length) return `<p class="empty">no layers in arch.json</p>`;
  const widest = Math.max(...layers.map((l) => l.width));
  const n = layers.length + 2;
  const W = n * BOX_W + (n - 1) * GAP + 20;
  const H = TOP + MAX_H + 46;
  let body = "";
  const box = (i, h, fill, lines, kind) => {
    const x = 10 + i * (BOX_W + GAP);
    const y = TOP + (MAX_H - h) / 2;
    let g = `<g class="${kind}" data-index="${i}"><rect x="${x}" y="${y}" width="${BOX_W}" height="${h}" rx="6" fill="${fill}" stroke="#94a3b8"/>`;
    lines.forEach((t, k) => {
      g += `<text x="${x + BOX_W / 2}" y="${y + 18 + k * 15}" text-anchor="middle"${k === 0 ? ' class="op"' : ""}>${esc(t)}</text>`;
    });
    if (i < n - 1) {
      const ax = x + BOX_W, ay = TOP + MAX_H / 2;
      g += `<path d="M${ax + 2} ${ay}H${ax + GAP - 4}" stroke="#64748b" stroke-width="1.5"/>`;
      g += `<path d="M${ax + GAP - 8} ${ay - 4}L${ax + GAP - 2} ${ay}L${ax + GAP - 8} ${ay + 4}Z" fill="#64748b"/>`;
    }
    return g + "</g>";
  };
  const first = layers[0];
  const hw = first.input_hw || [];
  body += box(0, MIN_H, "#f1f5f9", ["input", `${first.in_width} ch`, hw.length ? `${hw[0]}×${hw[1]}` : ""], "input");
  layers.forEach((l, i) => {
    const h = MIN_H + (MAX_H - MIN_H) * Math.sqrt(l.width / widest);
    const size = l.input_hw ? `${l.input_hw[0]}×${l.input_hw[1]} → ½` : "";
    body += box(i + 1, h, "#dbeafe", [l.op, `width ${l.width}`, `params ${human(l.params)}`, `MACs ${human(l.macs)}`, size], "layer");
  });
  const headParams = arch.params - layers.reduce((s, l) => s + l.params, 0);
  body += box(n - 1, MIN_H, "#dcfce7", ["pool + linear", classes ? `${classes} classes` : "head", `params ${human(headParams)}`], "head");
  body += `<text x="10" y="${H - 10}">total: ${human(arch.params)} parameters, ${human(arch.flops)} MACs per image</text>`;
  return `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="architecture">${body}</svg>`;
}
