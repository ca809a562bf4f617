// One job: status and progress live from its event stream, plots, architecture, artifacts.
import { AuthNeeded, api, blobUrl, esc, fmt, human, progressCell, statusBadge, streamEvents, when } from "./api.js";
import { archDrawing } from "./arch.js";
import { frontPlot, linePlot } from "./plot.js";

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

async function artifactJson(id, names, name) {
  if (!names.includes(name)) return null;
  return api(`/v1/jobs/${id}/artifacts/${encodeURIComponent(name)}`);
}

function metaHtml(job) {
  const rows = [
    ["kind", esc(job.kind)],
    ["status", statusBadge(job.status)],
    ["progress", progressCell(job) + (job.progress && job.progress.message ? ` <span class="muted">${esc(job.progress.message)}</span>` : "")],
    ["best fitness", fmt(job.progress && job.progress.best_fitness)],
    ["elapsed", job.progress ? `${fmt(job.progress.elapsed, 1)} s` : "–"],
    ["created", when(job.created_at)],
    ["started", when(job.started_at)],
    ["finished", when(job.finished_at)],
  ];
  if (job.error) rows.push(["error", `<span class="error">${esc(job.error)}</span>`]);
  return `<dl class="meta">${rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("")}</dl>`;
}

/** Live points from progress events, while the artifacts do not exist yet. */
function accumulate(live, job) {
  const p = job.progress;
  if (!p || job.status !== "running") return;
  if (job.kind === "meta_train" && p.phase === "meta_train" && p.extra && p.extra.loss !== undefined) {
    if (!live.loss.length || live.loss[live.loss.length - 1][0] !== p.step) {
      live.loss.push([p.step, p.extra.loss]);
      live.acc.push([p.step, p.extra.acc]);
    }
  }
  if (job.kind === "search" && p.phase === "search" && p.best_fitness !== null && p.step > 0) {
    if (!live.best.length || live.best[live.best.length - 1][0] !== p.step) live.best.push([p.step, p.best_fitness]);
  }
}

function livePlots(job, live) {
  if (job.kind === "meta_train") {
    return linePlot({ title: "meta-training (live)", xlabel: "meta-iteration", ylabel: "query loss / accuracy",
      series: [{ name: "loss", points: live.loss }, { name: "accuracy", points: live.acc }] });
  }
  return linePlot({ title: "search fitness per generation (live)", xlabel: "generation", ylabel: "fitness",
    series: [{ name: "best", points: live.best }] });
}

async function finalPlots(job, names) {
  const out = [];
  if (job.kind === "meta_train") {
    const meta = await artifactJson(job.id, names, "meta.json");
    if (meta) {
      const curve = meta.curve || [];
      out.push(linePlot({ title: "meta-training curve", xlabel: "meta-iteration", ylabel: "query loss / accuracy",
        series: [{ name: "loss", points: curve.map((c) => [c.iteration, c.loss]) },
                 { name: "accuracy", points: curve.map((c) => [c.iteration, c.acc]) }] }));
      const ea = meta.ea_history || [];
      out.push(linePlot({ title: "meta-population fitness", xlabel: "meta-iteration", ylabel: "fitness",
        series: [{ name: "best", points: ea.map((e) => [e.iteration, e.best]) },
                 { name: "mean", points: ea.map((e) => [e.iteration, e.mean]) }] }));
    }
    return { plots: out, arch: "" };
  }
  const metrics = await artifactJson(job.id, names, "metrics.json");
  if (metrics) {
    const gens = metrics.generations || [];
    out.push(linePlot({ title: "search fitness per generation", xlabel: "generation", ylabel: "fitness",
      series: [{ name: "best", points: gens.map((g) => [g.generation, g.best]) },
               { name: "mean", points: gens.map((g) => [g.generation, g.mean]) }] }));
  }
  const front = await artifactJson(job.id, names, "front.json");
  if (front && (front.front || []).length) {
    out.push(frontPlot({ title: "accuracy vs cost (front)", xlabel: "MACs (log)", ylabel: "support accuracy",
      points: front.front.map((p) => ({ x: p.macs, y: p.acc, label: `${p.key}: acc ${fmt(p.acc)}, ${human(p.macs)} MACs, ${human(p.params)} params`, front: true })) }));
  }
  const arch = await artifactJson(job.id, names, "arch.json");
  const classes = job.result && job.result.classes ? job.result.classes.length : null;
  return { plots: out, arch: arch ? notes(job.result) + archDrawing(arch, classes) : "" };
}

/** The result's warnings (e.g. a net never meta-trained as such), then shippedNote's. */
function notes(result) {
  const warnings = (result && result.warnings) || [];
  return warnings.map((w) => `<p class="shipped warning"><b>Warning:</b> ${esc(w)}</p>`).join("") + shippedNote(result);
}

/** When the pixel fallback shipped, says so above the drawing of the net it replaced; when the
 * net shipped joined with a pixel expert, says that. */
function shippedNote(result) {
  if (result && result.model === "subnet_x_pixels") {
    const w = typeof result.pixel_expert === "number" ? ` (weight ${fmt(result.pixel_expert)})` : "";
    return `<p class="shipped">The model files hold the net below <b>times a nearest-centroid
      classifier on raw pixels</b>${w}: its logits add both experts' log-probabilities.</p>`;
  }
  if (!result || result.model !== "pixel_centroid") return "";
  const check = (result.floors && result.floors.check) || {};
  const scores = check.pixel_acc !== undefined
    ? ` (held-out support images: pixels ${fmt(check.pixel_acc)}, adapted net ${fmt(check.model_acc)})`
    : "";
  return `<p class="shipped">The model files hold the <b>nearest-centroid classifier on raw pixels</b>:
    it scored higher than the adapted net${scores}. Below, the net it replaced.</p>`;
}

function artifactsHtml(job, infos) {
  if (!infos.length) return `<p class="empty">no artifacts${TERMINAL.has(job.status) ? "" : " yet"}</p>`;
  return `<table><thead><tr><th>name</th><th class="num">size</th><th>sha256</th></tr></thead><tbody>${infos
    .map((a) => `<tr><td><a class="artifact" data-name="${esc(a.name)}" href="/v1/jobs/${esc(job.id)}/artifacts/${encodeURIComponent(a.name)}" download="${esc(a.name)}">${esc(a.name)}</a></td>
      <td class="num">${human(a.size)}B</td><td class="mono muted">${esc(a.sha256.slice(0, 16))}…</td></tr>`)
    .join("")}</tbody></table>`;
}

/** Renders the job page; returns { stop } (aborts the event stream). */
export async function jobPage(view, id) {
  let job = await api(`/v1/jobs/${encodeURIComponent(id)}`);
  const aborter = new AbortController();
  const live = { loss: [], acc: [], best: [] };
  view.innerHTML = `<h1>${esc(job.kind)} job <span class="mono">${esc(job.id)}</span></h1>
    <div class="card" id="job-meta"></div>
    <div class="grid" id="plots"></div>
    <h2>Architecture</h2><div class="card arch" id="arch"><p class="empty">when the search has chosen one</p></div>
    <h2>Artifacts</h2><div id="artifacts"></div>
    <h2>Spec</h2><pre>${esc(JSON.stringify(job.spec, null, 2))}</pre>
    <h2>Result</h2><pre id="result">–</pre>`;
  const $ = (sel) => view.querySelector(sel);

  const show = () => {
    $("#job-meta").innerHTML = metaHtml(job);
    $("#result").textContent = job.result ? JSON.stringify(job.result, null, 2) : "–";
  };

  async function finish() {
    const infos = await api(`/v1/jobs/${job.id}/artifacts`);
    $("#artifacts").innerHTML = artifactsHtml(job, infos);
    const { plots, arch } = await finalPlots(job, infos.map((a) => a.name));
    $("#plots").innerHTML = plots.map((p) => `<div class="card plot">${p}</div>`).join("")
      || `<div class="card plot">${livePlots(job, live)}</div>`;
    if (arch) $("#arch").innerHTML = arch;
    else if (job.kind === "meta_train" && job.result && job.result.best_architecture) {
      $("#arch").innerHTML = `<p>Meta-training keeps a population, not one net; its best:
        <span class="mono">${esc(job.result.best_architecture)}</span> (fitness ${fmt(job.result.best_fitness)}).
        A search job draws the net it chose for a task.</p>`;
    }
  }

  $("#artifacts").addEventListener("click", async (e) => {
    const link = e.target.closest("a.artifact");
    if (!link) return;
    e.preventDefault(); // fetch with the key, then save the blob
    const a = document.createElement("a");
    a.href = await blobUrl(link.getAttribute("href"));
    a.download = link.dataset.name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  });

  show();
  if (TERMINAL.has(job.status)) {
    await finish();
  } else {
    $("#artifacts").innerHTML = artifactsHtml(job, []);
    $("#plots").innerHTML = `<div class="card plot">${livePlots(job, live)}</div>`;
    streamEvents(`/v1/jobs/${job.id}/events`, (name, data) => {
      if (name !== "status" && name !== "progress") return;
      job = data;
      accumulate(live, job);
      show();
      if (TERMINAL.has(job.status)) finish();
      else $("#plots").innerHTML = `<div class="card plot">${livePlots(job, live)}</div>`;
    }, aborter.signal).catch((err) => {
      if (err.name === "AbortError") return;
      if (err instanceof AuthNeeded) window.dispatchEvent(new CustomEvent("atnas:auth", { detail: err.message }));
      else $("#job-meta").insertAdjacentHTML("beforeend", `<p class="error">live updates stopped: ${esc(err.message)}</p>`);
    });
  }
  return { stop: () => aborter.abort() };
}
