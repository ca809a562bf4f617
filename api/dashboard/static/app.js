// The dashboard: hash routes to pages; asks for an API key when the service wants one.
import { AuthNeeded, apiKey, esc, setApiKey } from "./api.js";
import { jobsPage } from "./jobs.js";

const pages = [
  [/^#\/jobs\/([0-9a-zA-Z_-]+)$/, async (view, m) => (await import("./job.js")).jobPage(view, m[1])],
  [/^#\/supernets$/, async (view) => (await import("./lists.js")).supernetsPage(view)],
  [/^#\/datasets$/, async (view) => (await import("./lists.js")).datasetsPage(view)],
  [/^#\/jobs$/, (view, _m, params) => jobsPage(view, params)],
];

let current = null; // the page shown: { stop() } to end its timers and streams

async function route() {
  if (current && current.stop) current.stop();
  current = null;
  const [path, query] = (location.hash || "#/jobs").split("?");
  const params = new URLSearchParams(query || "");
  const view = document.getElementById("view");
  view.replaceChildren();
  for (const a of document.querySelectorAll("header nav a")) {
    a.classList.toggle("active", path.startsWith(`#/${a.dataset.nav}`));
  }
  for (const [pattern, page] of pages) {
    const m = path.match(pattern);
    if (!m) continue;
    try {
      current = await page(view, m, params);
    } catch (err) {
      if (err instanceof AuthNeeded) askKey(err.message);
      else view.innerHTML = `<p class="error">${esc(err.message)}</p>`;
    }
    return;
  }
  location.replace("#/jobs");
}

function askKey(reason) {
  const dialog = document.getElementById("key-dialog");
  document.getElementById("key-reason").textContent = reason
    ? `${reason}. The key is kept in this browser only.`
    : "The key this page sends as Authorization: Bearer; kept in this browser only.";
  document.getElementById("key-input").value = apiKey();
  if (!dialog.open) dialog.showModal();
}

document.getElementById("key-form").addEventListener("submit", () => {
  setApiKey(document.getElementById("key-input").value.trim());
  route();
});
document.getElementById("key-clear").addEventListener("click", () => {
  setApiKey("");
  document.getElementById("key-dialog").close();
  route();
});
document.getElementById("key-button").addEventListener("click", () => askKey(""));
window.addEventListener("hashchange", route);
window.addEventListener("atnas:auth", (e) => askKey(e.detail));
route();
