// The jobs list: one page of GET /v1/jobs at a time (filters, cursor pages), refreshed live.
import { AuthNeeded, api, esc, fmt, progressCell, statusBadge, when } from "./api.js";

const PAGE = 50;
const REFRESH_MS = 2000;
const STATUSES = ["", "queued", "running", "succeeded", "failed", "cancelled"];
const KINDS = ["", "meta_train", "search"];

const options = (values, chosen) =>
  values.map((v) => `<option value="${v}"${v === chosen ? " selected" : ""}>${v || "any"}</option>`).join("");

function row(job) {
  const best = job.progress && job.progress.best_fitness;
  const finished = job.finished_at ? when(job.finished_at) : "";
  return `<tr data-id="${esc(job.id)}">
    <td class="mono"><a href="#/jobs/${esc(job.id)}" title="${esc(job.id)}">${esc(job.id.slice(0, 12))}</a></td>
    <td>${esc(job.kind)}</td>
    <td>${statusBadge(job.status)}</td>
    <td>${progressCell(job)}</td>
    <td class="num">${best === null || best === undefined ? "" : fmt(best)}</td>
    <td>${when(job.created_at)}</td>
    <td>${finished}</td>
  </tr>`;
}

/** Renders the jobs page into `view`; returns { stop } (ends the refresh timer). */
export async function jobsPage(view, params) {
  const status = params.get("status") || "";
  const kind = params.get("kind") || "";
  const cursors = [null]; // cursor of each page seen so far; the last is the page shown
  let next = null;
  let timer = null;
  let stopped = false;
  let generation = 0; // bumped by each page turn: an older load or timer gives way

  view.innerHTML = `<h1>Jobs</h1>
    <div class="filters">
      <label>Status <select id="f-status">${options(STATUSES, status)}</select></label>
      <label>Kind <select id="f-kind">${options(KINDS, kind)}</select></label>
      <span class="muted" id="jobs-note"></span>
    </div>
    <table id="jobs-table"><thead><tr><th>id</th><th>kind</th><th>status</th><th>progress</th>
      <th class="num">best</th><th>created</th><th>finished</th></tr></thead><tbody></tbody></table>
    <div class="pager"><button type="button" id="p-newer">← newer</button>
      <span id="p-page" class="muted"></span><button type="button" id="p-older">older →</button></div>`;
  const tbody = view.querySelector("tbody");

  const filter = () => {
    const q = new URLSearchParams();
    const s = view.querySelector("#f-status").value;
    const k = view.querySelector("#f-kind").value;
    if (s) q.set("status", s);
    if (k) q.set("kind", k);
    location.hash = `#/jobs${q.toString() ? `?${q}` : ""}`;
  };
  view.querySelector("#f-status").addEventListener("change", filter);
  view.querySelector("#f-kind").addEventListener("change", filter);

  async function load(gen = generation) {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (status) q.set("status", status);
    if (kind) q.set("kind", kind);
    const cursor = cursors[cursors.length - 1];
    if (cursor) q.set("cursor", cursor);
    const page = await api(`/v1/jobs?${q}`);
    if (stopped || gen !== generation) return;
    next = page.next_cursor;
    tbody.innerHTML = page.items.length
      ? page.items.map(row).join("")
      : `<tr><td colspan="7" class="empty">no jobs${status || kind ? " match" : " yet"}</td></tr>`;
    if (page.items.length) performance.mark("atnas:jobs-rows");
    view.querySelector("#p-newer").disabled = cursors.length === 1;
    view.querySelector("#p-older").disabled = !next;
    view.querySelector("#p-page").textContent = `page ${cursors.length}`;
  }

  async function refresh(gen = generation) {
    try {
      await load(gen);
    } catch (err) {
      if (err instanceof AuthNeeded) {
        window.dispatchEvent(new CustomEvent("atnas:auth", { detail: err.message }));
        return; // the key dialog reloads the page
      }
      view.querySelector("#jobs-note").textContent = `refresh failed: ${err.message}`;
    }
    if (!stopped && gen === generation) timer = setTimeout(() => refresh(gen), REFRESH_MS);
  }

  const turn = (fn) => async () => {
    clearTimeout(timer);
    generation += 1;
    fn();
    await refresh();
  };
  view.querySelector("#p-older").addEventListener("click", turn(() => next && cursors.push(next)));
  view.querySelector("#p-newer").addEventListener("click", turn(() => cursors.length > 1 && cursors.pop()));

  await load(); // the first load's errors go to the router (e.g. the key dialog)
  timer = setTimeout(refresh, REFRESH_MS);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
