// Supernets (succeeded meta_train jobs) and datasets (class counts and a few thumbnails).
import { api, blobUrl, esc, fmt, human, when } from "./api.js";

export async function supernetsPage(view) {
  const nets = await api("/v1/supernets");
  const rows = nets.map((s) => {
    const r = s.summary || {};
    return `<tr><td class="mono"><a href="#/jobs/${esc(s.id)}" title="${esc(s.id)}">${esc(s.id.slice(0, 12))}</a></td>
      <td>${when(s.created_at)}</td><td class="num">${s.way}-way ${s.shot}-shot</td>
      <td class="num">${human(r.iterations)}</td><td class="num">${fmt(r.best_fitness)}</td>
      <td class="mono">${esc(r.best_architecture || "")}</td></tr>`;
  });
  view.innerHTML = `<h1>Supernets</h1>
    <p class="muted">Meta-trained supernets that search jobs can use: pass the id as <span class="mono">spec.supernet</span>.</p>
    <table id="supernets-table"><thead><tr><th>id</th><th>created</th><th class="num">setting</th><th class="num">iterations</th>
      <th class="num">best fitness</th><th>best architecture</th></tr></thead>
    <tbody>${rows.join("") || `<tr><td colspan="6" class="empty">none yet: run a meta_train job</td></tr>`}</tbody></table>`;
  return null;
}

const CLASSES_SHOWN = 12; // rows of the class-count table
const THUMB_CLASSES = 4; // classes with thumbnails
const THUMBS_PER_CLASS = 3;

function datasetCard(ds) {
  const classes = ds.classes;
  const total = Object.values(ds.counts).reduce((a, b) => a + b, 0);
  const countRows = classes.slice(0, CLASSES_SHOWN)
    .map((c) => `<tr><td>${esc(c)}</td><td class="num">${ds.counts[c]}</td>${ds.query_counts ? `<td class="num">${ds.query_counts[c] ?? 0}</td>` : ""}</tr>`)
    .join("");
  const more = classes.length > CLASSES_SHOWN ? `<p class="muted">and ${classes.length - CLASSES_SHOWN} more classes</p>` : "";
  const figs = classes.slice(0, THUMB_CLASSES).flatMap((c) =>
    Array.from({ length: Math.min(THUMBS_PER_CLASS, ds.counts[c]) }, (_, i) =>
      `<figure><img data-src="/v1/datasets/${esc(ds.id)}/thumbnail?class=${encodeURIComponent(c)}&i=${i}&size=64" alt="${esc(c)} #${i}"><figcaption>${esc(c.split("/").pop())}</figcaption></figure>`));
  return `<div class="card dataset" data-id="${esc(ds.id)}">
    <h2>${esc(ds.filename)} <span class="muted mono">${esc(ds.id.slice(0, 12))}</span></h2>
    <p>${esc(ds.kind)} dataset · ${classes.length} classes · ${total} images · ${ds.groups.length} groups · ${human(ds.size)}B · ${when(ds.created_at)}</p>
    <div class="thumbs">${figs.join("")}</div>
    <table class="counts"><thead><tr><th>class</th><th class="num">images</th>${ds.query_counts ? '<th class="num">query</th>' : ""}</tr></thead>
      <tbody>${countRows}</tbody></table>${more}</div>`;
}

export async function datasetsPage(view) {
  const sets = await api("/v1/datasets");
  view.innerHTML = `<h1>Datasets</h1>${sets.map(datasetCard).join("") || `<p class="empty">none yet: upload a zip with POST /v1/datasets or atnas upload</p>`}`;
  for (const img of view.querySelectorAll("img[data-src]")) {
    blobUrl(img.dataset.src).then((url) => { img.src = url; }).catch(() => { img.alt += " (unavailable)"; });
  }
  return null;
}
