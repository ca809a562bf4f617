// Calls to the atnas REST API from the page: the API key, JSON, blobs and live events.
const KEY = "atnas.apiKey";

/** The service needs a (valid) API key: the page asks for one, then retries. */
export class AuthNeeded extends Error {}

/** Any other error answer of the API, with its reason. */
export class ApiError extends Error {
  constructor(status, detail) {
    super(`HTTP ${status}: ${detail}`);
    this.status = status;
  }
}

export const apiKey = () => localStorage.getItem(KEY) || "";
export function setApiKey(key) {
  if (key) localStorage.setItem(KEY, key);
  else localStorage.removeItem(KEY);
}

function headers() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function checked(resp) {
  if (resp.ok) return resp;
  let detail = resp.statusText;
  try {
    const body = await resp.json();
    if (body && body.detail !== undefined) {
      detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    }
  } catch (_) { /* not JSON: keep the status text */ }
  if (resp.status === 401) throw new AuthNeeded(detail);
  throw new ApiError(resp.status, detail);
}

/** GET (or another method) a /v1 path; resolves to the parsed JSON. */
export async function api(path, options = {}) {
  const resp = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  return (await checked(resp)).json();
}

/** An object URL of a file the API serves (images, artifacts): sent with the key. */
export async function blobUrl(path) {
  const resp = await checked(await fetch(path, { headers: headers() }));
  return URL.createObjectURL(await resp.blob());
}

/**
 * The server-sent events of a path, read with fetch (EventSource cannot send the key).
 * Calls onEvent(name, data) per event until the stream ends or `signal` aborts.
 */
export async function streamEvents(path, onEvent, signal) {
  const resp = await checked(await fetch(path, { headers: headers(), signal }));
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
/** Text made safe for innerHTML. */
export const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ESCAPES[c]);

/** 1234567 -> "1.23M". */
export function human(n) {
  if (n === null || n === undefined) return "–";
  const abs = Math.abs(n);
  for (const [div, unit] of [[1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
    if (abs >= div) return `${(n / div).toPrecision(3)}${unit}`;
  }
  return String(Math.round(n * 1000) / 1000);
}

export const fmt = (x, digits = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));

/** "2026-01-02T03:04:05Z" -> "2026-01-02 03:04:05". */
export const when = (iso) => (iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace(/(Z|\+00:00)$/, "") : "–");

export function statusBadge(status) {
  return `<span class="status ${esc(status)}" data-status="${esc(status)}">${esc(status)}</span>`;
}

export function progressCell(job) {
  const p = job.progress;
  if (!p || job.status !== "running") return "";
  const frac = p.total ? Math.min(1, p.step / p.total) : 0;
  const bar = p.total ? `<span class="bar"><span style="width:${(frac * 100).toFixed(1)}%"></span></span>` : "";
  const steps = p.total ? `${p.step}/${p.total}` : p.step ? `step ${p.step}` : "";
  return `${bar}${esc(p.phase)} ${esc(steps)}`;
}
