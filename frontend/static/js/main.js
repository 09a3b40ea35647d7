// detectflow web page: upload images, follow their status, draw the boxes, filter, delete,
// export. ES modules, no build step:
//   state.js   the one state object; update() schedules one render of the whole page
//   api.js     calls to the server        gallery.js  cards, pages, infinite scroll, polling
//   upload.js  the upload queue           viewer.js   the large view and delete
// User data (file names, labels, messages) only ever reaches the page through textContent /
// setAttribute, never as HTML.

import { api, download } from "./api.js";
import {
  filterQuery, loadPage, onFinished, onOpen, reload, renderGallery, setupInfiniteScroll,
} from "./gallery.js";
import { saveKey, setRenderer, state, update, visible } from "./state.js";
import { mb, setupDrop } from "./upload.js";
import { onDeleted, openViewer, renderViewer, setupViewer } from "./viewer.js";

const $ = (id) => document.getElementById(id);

function fmt(value, digits = 2) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

function span(className, text) {
  const el = document.createElement("span");
  el.className = className;
  el.textContent = text;
  return el;
}

// --- the one render -----------------------------------------------------------------------------

function render() {
  renderKeyForm();
  renderModel();
  renderStats();
  renderFilters();
  renderToggles();
  renderSummary();
  renderGallery();
  renderViewer();
}

function renderKeyForm() {
  $("key-form").hidden = !state.keyForm.shown;
  $("key-error").textContent = state.keyForm.message;
}

function renderModel() {
  const box = $("model");
  const model = state.model;
  const key = model ? `${model.name}@${model.version}` : "none";
  if (box.dataset.shown === key) return;
  box.dataset.shown = key;
  box.replaceChildren();
  if (!model) {
    box.append(span("model-name", state.limits ? "No model loaded yet" : "Loading model…"));
    return;
  }
  box.append(span("model-name", model.name), span("pill", "v" + model.version),
             span("pill", model.export));
  const metrics = span("metrics", "");
  for (const [name, value] of [["mAP@.5", model.metrics.map50],
                               ["mAP@.5:.95", model.metrics.map50_95]]) {
    const el = span("metric", "");
    el.append(span("metric-name", name), span("metric-value", fmt(value)));
    metrics.append(el);
  }
  box.append(metrics);
  box.title = `Classes: ${model.classes.map((c) => c.name).join(", ")}`;
}

// Counts over the whole gallery, from /api/stats.
function renderStats() {
  const box = $("stats");
  const stats = state.stats;
  box.hidden = !stats;
  if (!stats) return;
  const images = stats.images;
  const pending = images.queued + images.processing;
  const parts = [`${stats.total} image${stats.total === 1 ? "" : "s"}`, `${images.done} done`];
  if (images.failed) parts.push(`${images.failed} failed`);
  if (pending) parts.push(`${pending} in progress`);
  const classes = Object.entries(stats.detections).map(([label, n]) => `${label} ${n}`);
  box.textContent = parts.join(" · ") + (classes.length ? ` — ${classes.join(" · ")}` : "");
}

function renderFilters() {
  const select = $("filter-label");
  const labels = state.model ? state.model.classes.map((c) => c.name) : [];
  if (select.dataset.labels !== labels.join("\n")) {
    select.dataset.labels = labels.join("\n");
    const any = document.createElement("option");
    any.value = "";
    any.textContent = "Any class";
    select.replaceChildren(any, ...labels.map((label) => {
      const option = document.createElement("option");
      option.value = label;
      option.textContent = label;
      return option;
    }));
  }
  select.value = state.filters.label;
  $("filter-status").value = state.filters.status;
  $("threshold").value = String(state.threshold === null ? 0 : state.threshold);
  $("threshold-value").textContent = fmt(state.threshold);
}

function renderToggles() {
  const box = $("class-toggles");
  box.replaceChildren();
  const counts = new Map();
  for (const item of state.items) {
    for (const d of visible(item)) counts.set(d.label, (counts.get(d.label) || 0) + 1);
  }
  for (const label of state.classOrder) {
    const chip = document.createElement("button");
    chip.type = "button";
    chip.className = "chip";
    chip.dataset.label = label;
    chip.setAttribute("aria-pressed", String(!state.hidden.has(label)));
    chip.style.setProperty("--class-color", state.colors.get(label));
    const ap = state.model && state.model.metrics.per_class_ap50[label];
    chip.title = ap !== undefined ? `${label}: AP@.5 ${fmt(ap)} — click to show or hide`
                                  : `${label} — click to show or hide`;
    chip.append(span("swatch", ""), span("chip-label", label),
                span("chip-count", String(counts.get(label) || 0)));
    chip.addEventListener("click", () => update((s) => {
      if (s.hidden.has(label)) s.hidden.delete(label); else s.hidden.add(label);
    }));
    box.append(chip);
  }
}

function renderSummary() {
  const done = state.items.filter((i) => i.detail && i.detail.status === "done");
  const shown = done.reduce((n, i) => n + visible(i).length, 0);
  const pending = state.items.filter(
    (i) => ["uploading", "queued", "processing"].includes(i.status)).length;
  const parts = [`${state.items.length} image${state.items.length === 1 ? "" : "s"} here`,
                 `${shown} box${shown === 1 ? "" : "es"} shown`];
  if (pending) parts.push(`${pending} in progress`);
  $("summary").textContent = state.notice || (state.items.length ? parts.join(" · ") : "");
}

// --- controls -----------------------------------------------------------------------------------

function setupControls() {
  const slider = $("threshold");
  slider.addEventListener("input", () => update((s) => { s.threshold = Number(slider.value); }));
  $("show-labels").addEventListener("change", (event) => update((s) => {
    s.showLabels = event.target.checked;
  }));
  for (const [id, field] of [["filter-status", "status"], ["filter-label", "label"]]) {
    $(id).addEventListener("change", (event) => {
      update((s) => { s.filters[field] = event.target.value; });
      reload().catch(showLoadError);
    });
  }
  for (const [id, format] of [["export-csv", "csv"], ["export-coco", "coco"]]) {
    $(id).addEventListener("click", () => {
      const query = filterQuery();
      query.set("format", format);
      download(`/api/export?${query}`, `detectflow.${format === "csv" ? "csv" : "json"}`)
        .catch(showLoadError);
    });
  }
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key-input").value.trim();
    saveKey(key);
    update((s) => {
      s.apiKey = key;
      s.keyForm = { shown: false, message: "" };
    });
    start();
  });
}

// The slider starts at the model's serving threshold: the server reports nothing below it.
function applyModelThreshold(model) {
  const floor = model ? Math.floor(model.score_threshold * 100) / 100 : 0;
  $("threshold").min = String(floor);
  return floor;
}

// The server caches its stats for a couple of seconds (aggregation queries on Firestore): ask
// soon after a change, and once more after that cache has expired.
const STATS_DELAYS_MS = [500, 2600];
let statsTimers = [];

function refreshStatsSoon() {
  statsTimers.forEach(clearTimeout);
  statsTimers = STATS_DELAYS_MS.map((delay) => setTimeout(() => {
    api("/api/stats").then((stats) => update((s) => { s.stats = stats; })).catch(() => {});
  }, delay));
}

function showLoadError(err) {
  if (err.status === 401) return;  // the key form is showing
  update((s) => { s.notice = err.message; });
}

// --- start --------------------------------------------------------------------------------------

async function start() {
  try {
    const limits = await api("/api/limits");
    update((s) => { s.limits = limits; s.notice = ""; });
    $("limits-text").textContent = `${limits.accepted_formats.join(", ")} · up to ` +
      `${mb(limits.max_upload_bytes)} each`;
    if (limits.api_key_required && !state.apiKey) {
      update((s) => { s.keyForm = { shown: true, message: "" }; });
      return;
    }
    const models = await api("/api/models");
    const model = models.models[0] || null;
    const floor = applyModelThreshold(model);
    update((s) => {
      s.model = model;
      if (s.threshold === null || s.threshold < floor) s.threshold = floor;
      for (const c of model ? model.classes : []) {
        if (!s.colors.has(c.name)) s.classOrder.push(c.name);
        s.colors.set(c.name, c.color);
      }
    });
    refreshStatsSoon();
    await loadPage(null);
  } catch (err) {
    showLoadError(err);
  }
}

setRenderer(render);
onOpen(openViewer);
onFinished(refreshStatsSoon);
onDeleted(refreshStatsSoon);
setupControls();
setupViewer();
setupDrop();
setupInfiniteScroll(showLoadError);
start();
