// detectflow web page: upload images, follow their status, draw the boxes.
// Plain JS, no build step. User data (file names, labels, messages) only ever goes into the
// page through textContent / setAttribute, never innerHTML.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const KEY_STORAGE = "detectflow.apiKey";
const UPLOAD_CONCURRENCY = 2;
const POLL_FIRST_MS = 300;
const POLL_MAX_MS = 2500;
const FALLBACK_COLORS = ["#ef4444", "#3b82f6", "#f59e0b", "#10b981", "#a855f7", "#ec4899"];

const state = {
  apiKey: localStorage.getItem(KEY_STORAGE) || "",
  limits: null,
  model: null,
  colors: new Map(),        // label -> CSS colour
  classOrder: [],           // labels in model order (plus any seen only in results)
  hidden: new Set(),        // labels toggled off
  threshold: 0.3,
  showLabels: true,
  items: [],                // gallery order (newest first)
  nextCursor: null,
  viewer: null,             // the item open in the viewer
};

const $ = (id) => document.getElementById(id);

// --- API -------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const err = body && body.error;
    super(err ? err.message : `The server answered ${status}.`);
    this.status = status;
    this.code = err ? err.code : "http_" + status;
  }
}

function authHeaders() {
  return state.apiKey ? { "X-API-Key": state.apiKey } : {};
}

async function api(path) {
  let response;
  try {
    response = await fetch(path, { headers: { Accept: "application/json", ...authHeaders() } });
  } catch {
    throw new ApiError(0, { error: { code: "network", message: networkMessage() } });
  }
  const body = await response.json().catch(() => null);
  if (response.status === 401) askForKey(body && body.error && body.error.message);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

function networkMessage() {
  return "Could not reach the server. Check that it is running and try again.";
}

// Images come from /api too, so with an API key they are fetched and shown as blob: URLs.
async function imageUrl(path) {
  if (!state.apiKey) return path;
  const response = await fetch(path, { headers: authHeaders() });
  if (!response.ok) throw new ApiError(response.status, null);
  return URL.createObjectURL(await response.blob());
}

async function openProtected(path) {
  const tab = window.open("", "_blank");
  try {
    const url = await imageUrl(path);
    if (tab) tab.location.href = url;
  } catch {
    if (tab) tab.close();
  }
}

function uploadFile(file, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/images");
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.responseType = "json";
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => resolve({ status: xhr.status, body: xhr.response });
    xhr.onerror = () => resolve({ status: 0, body: null });
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

// --- API key ---------------------------------------------------------------------------------

function askForKey(message) {
  $("key-form").hidden = false;
  $("key-error").textContent = state.apiKey ? (message || "The API key was not accepted.") : "";
}

function setupKeyForm() {
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.apiKey = $("key-input").value.trim();
    localStorage.setItem(KEY_STORAGE, state.apiKey);
    $("key-form").hidden = true;
    start();
  });
}

// --- model and filters -----------------------------------------------------------------------

function colorOf(label) {
  if (!state.colors.has(label)) {
    state.colors.set(label, FALLBACK_COLORS[state.colors.size % FALLBACK_COLORS.length]);
    state.classOrder.push(label);
    renderToggles();
  }
  return state.colors.get(label);
}

function fmt(value, digits = 2) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

function renderModel() {
  const box = $("model");
  box.replaceChildren();
  const model = state.model;
  if (!model) {
    box.append(span("model-name", "No model loaded yet"));
    return;
  }
  box.append(span("model-name", model.name), span("pill", "v" + model.version),
             span("pill", model.export));
  const metrics = span("metrics", "");
  metrics.append(metric("mAP@.5", model.metrics.map50), metric("mAP@.5:.95", model.metrics.map50_95));
  box.append(metrics);
  box.title = `Classes: ${model.classes.map((c) => c.name).join(", ")}`;
}

function metric(name, value) {
  const el = span("metric", "");
  el.append(span("metric-name", name), span("metric-value", fmt(value)));
  return el;
}

function span(className, text) {
  const el = document.createElement("span");
  el.className = className;
  el.textContent = text;
  return el;
}

function renderToggles() {
  const box = $("class-toggles");
  box.replaceChildren();
  const counts = visibleCountsByLabel();
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
    chip.append(span("swatch", ""), span("chip-label", label), span("chip-count", String(counts.get(label) || 0)));
    chip.addEventListener("click", () => {
      if (state.hidden.has(label)) state.hidden.delete(label); else state.hidden.add(label);
      refreshAll();
    });
    box.append(chip);
  }
}

function setupFilters() {
  const slider = $("threshold");
  slider.addEventListener("input", () => {
    state.threshold = Number(slider.value);
    refreshAll();
  });
  $("show-labels").addEventListener("change", (event) => {
    state.showLabels = event.target.checked;
    refreshAll();
  });
}

function applyModelThreshold() {
  const floor = state.model ? state.model.score_threshold : 0;
  const slider = $("threshold");
  slider.min = String(Math.floor(floor * 100) / 100);
  slider.value = slider.min;
  state.threshold = Number(slider.value);
}

function visible(item) {
  if (!item.detail || item.detail.status !== "done") return [];
  return item.detail.detections.filter(
    (d) => d.score >= state.threshold && !state.hidden.has(d.label));
}

function visibleCountsByLabel() {
  const counts = new Map();
  for (const item of state.items) {
    for (const d of visible(item)) counts.set(d.label, (counts.get(d.label) || 0) + 1);
  }
  return counts;
}

function refreshAll() {
  $("threshold-value").textContent = fmt(state.threshold);
  for (const item of state.items) renderCard(item);
  renderToggles();
  renderSummary();
  if (state.viewer) renderViewer(state.viewer);
}

function renderSummary() {
  const done = state.items.filter((i) => i.detail && i.detail.status === "done");
  const shown = done.reduce((n, i) => n + visible(i).length, 0);
  const pending = state.items.filter((i) => ["uploading", "queued", "processing"].includes(i.status)).length;
  const parts = [`${state.items.length} image${state.items.length === 1 ? "" : "s"}`,
                 `${shown} box${shown === 1 ? "" : "es"} shown`];
  if (pending) parts.push(`${pending} in progress`);
  $("summary").textContent = state.items.length ? parts.join(" · ") : "";
  $("empty").hidden = state.items.length > 0;
}

// --- drawing ---------------------------------------------------------------------------------

function svgEl(name, attrs) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  return el;
}

// Boxes are xyxy in original-image pixels; the SVG's viewBox is the image's pixel grid and its
// preserveAspectRatio matches the <img>'s object-fit: contain, so no coordinate maths here.
function drawBoxes(svg, item, labelPx, highlight, labels = true) {
  svg.replaceChildren();
  const size = item.detail && item.detail.image;
  if (!size) return;
  svg.setAttribute("viewBox", `0 0 ${size.width} ${size.height}`);
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
  const scale = Math.min(svg.clientWidth / size.width, svg.clientHeight / size.height) || 1;
  const fontSize = labelPx / scale;
  visible(item).forEach((d) => {
    const [x0, y0, x1, y1] = d.box;
    const color = colorOf(d.label);
    const index = item.detail.detections.indexOf(d);
    const group = svgEl("g", { class: "det", "data-index": index });
    if (index === highlight) group.classList.add("highlight");
    group.append(svgEl("rect", {
      class: "box", x: x0, y: y0, width: x1 - x0, height: y1 - y0, stroke: color,
      "data-label": d.label, "data-score": d.score, "vector-effect": "non-scaling-stroke",
    }));
    if (state.showLabels && labels) {
      const text = `${d.label} ${d.score.toFixed(2)}`;
      const width = text.length * fontSize * 0.62 + fontSize * 0.5;
      const height = fontSize * 1.3;
      const top = y0 - height >= 0 ? y0 - height : y0;  // above the box unless at the edge
      const left = Math.max(0, Math.min(x0, size.width - width));  // inside the image
      group.append(
        svgEl("rect", { class: "label-bg", x: left, y: top, width, height, fill: color }),
        Object.assign(svgEl("text", { class: "label", x: left + fontSize * 0.25,
                                      y: top + fontSize * 1.0, "font-size": fontSize,
                                      fill: textColour(color) }),
                      { textContent: text }));
    }
    svg.append(group);
  });
}

// Black or white text, whichever reads better on the class colour (as the server draws it).
function textColour(hex) {
  const n = parseInt(hex.slice(1), 16);
  const luminance = 0.299 * (n >> 16) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255);
  return luminance > 150 ? "#000" : "#fff";
}

// --- gallery ---------------------------------------------------------------------------------

function newCard(item) {
  const node = $("card-template").content.firstElementChild.cloneNode(true);
  item.el = {
    card: node,
    img: node.querySelector("img"),
    svg: node.querySelector("svg"),
    placeholder: node.querySelector(".placeholder"),
    progress: node.querySelector(".progress"),
    bar: node.querySelector(".bar"),
    name: node.querySelector(".name"),
    badge: node.querySelector(".badge"),
    counts: node.querySelector(".counts"),
    error: node.querySelector(".error"),
    retry: node.querySelector(".retry"),
    thumb: node.querySelector(".thumb"),
  };
  item.el.name.textContent = item.filename;
  item.el.name.title = item.filename;
  item.el.thumb.setAttribute("aria-label", `Open ${item.filename}`);
  item.el.thumb.addEventListener("click", () => openViewer(item));
  item.el.img.addEventListener("error", () => showPlaceholder(item));
  item.el.img.addEventListener("load", () => renderCard(item));
  item.el.retry.addEventListener("click", () => { if (item.retry) item.retry(); });
  return node;
}

function showPlaceholder(item) {
  // The browser cannot show this file (not an image, or a type like TIFF): say so, and use the
  // server-drawn JPEG when there is a result.
  if (item.detail && item.detail.status === "done" && !item.triedAnnotated) {
    item.triedAnnotated = true;
    item.serverDrawn = true;
    setImage(item, item.detail.links.annotated);
    return;
  }
  item.el.img.hidden = true;
  item.el.placeholder.hidden = false;
  item.el.placeholder.textContent = "No preview";
}

async function setImage(item, source) {
  try {
    item.el.img.src = source instanceof Blob ? URL.createObjectURL(source) : await imageUrl(source);
  } catch {
    showPlaceholder(item);
  }
}

const STATUS_TEXT = {
  uploading: "Uploading",
  queued: "Queued",
  processing: "Detecting…",
  done: "Done",
  failed: "Failed",
  refused: "Not uploaded",
  error: "Error",
};

function renderCard(item) {
  const el = item.el;
  el.card.dataset.status = item.status;
  if (item.id) el.card.dataset.id = item.id;
  el.badge.className = "badge badge-" + item.status;
  el.badge.textContent = item.status === "uploading"
    ? `${STATUS_TEXT.uploading} ${Math.round((item.progress || 0) * 100)}%`
    : STATUS_TEXT[item.status];
  el.progress.hidden = item.status !== "uploading";
  el.bar.style.width = `${Math.round((item.progress || 0) * 100)}%`;
  el.error.hidden = !item.error;
  el.error.textContent = item.error || "";
  el.retry.hidden = !item.retry;
  if (item.status === "done" && item.detail) {
    const shown = visible(item);
    const total = item.detail.detections.length;
    el.counts.textContent = countsText(shown, total);
    // Labels on a small thumbnail would hide the cells; the large view always has them.
    const roomy = el.thumb.clientWidth >= 240;
    if (!item.serverDrawn) drawBoxes(el.svg, item, 10, -1, roomy); else el.svg.replaceChildren();
  } else {
    el.counts.textContent = "";
    el.svg.replaceChildren();
  }
}

function countsText(shown, total) {
  if (!total) return "Nothing found";
  const byLabel = new Map();
  for (const d of shown) byLabel.set(d.label, (byLabel.get(d.label) || 0) + 1);
  const parts = [...byLabel].map(([label, n]) => `${n} ${label}`);
  const head = shown.length === total ? `${total} found` : `${shown.length} of ${total} shown`;
  return parts.length ? `${head}: ${parts.join(", ")}` : head;
}

function addItem(item, atEnd = false) {
  const node = newCard(item);
  if (atEnd) {
    state.items.push(item);
    $("gallery").append(node);
  } else {
    state.items.unshift(item);
    $("gallery").prepend(node);
  }
  observer.observe(item.el.thumb);
  renderCard(item);
  renderSummary();
}

// Redraw a card's labels when its size changes (labels keep a constant on-screen size).
const observer = new ResizeObserver((entries) => {
  for (const entry of entries) {
    const item = state.items.find((i) => i.el && i.el.thumb === entry.target);
    if (item && item.status === "done") renderCard(item);
  }
});

// --- uploading and polling -------------------------------------------------------------------

const uploadQueue = [];
let uploadsRunning = 0;

function addFiles(files) {
  for (const file of files) {
    const item = { filename: file.name || "image", status: "uploading", progress: 0, file };
    addItem(item);
    setImage(item, file);  // local preview straight away
    const limit = state.limits && state.limits.max_upload_bytes;
    if (limit && file.size > limit) {
      refuse(item, `This file is ${mb(file.size)}; the limit is ${mb(limit)}.`);
      continue;
    }
    if (file.size === 0) {
      refuse(item, "The file is empty (0 bytes).");
      continue;
    }
    uploadQueue.push(item);
  }
  pumpUploads();
}

function mb(bytes) {
  const value = bytes / 1e6;
  return `${value < 10 ? value.toFixed(1) : value.toFixed(0)} MB`;
}

function refuse(item, message) {
  item.status = "refused";
  item.error = message;
  item.progress = 0;
  renderCard(item);
  renderSummary();
}

function pumpUploads() {
  while (uploadsRunning < UPLOAD_CONCURRENCY && uploadQueue.length) {
    const item = uploadQueue.shift();
    uploadsRunning += 1;
    sendItem(item).finally(() => {
      uploadsRunning -= 1;
      pumpUploads();
    });
  }
}

async function sendItem(item) {
  item.status = "uploading";
  item.error = "";
  item.retry = null;
  renderCard(item);
  const { status, body } = await uploadFile(item.file, (fraction) => {
    item.progress = fraction;
    renderCard(item);
  });
  if (status === 202 && body && body.images && body.images.length) {
    const ref = body.images[0];
    item.id = ref.id;
    item.url = ref.url;
    item.status = ref.status;
    item.progress = 1;
    item.file = null;
    renderCard(item);
    renderSummary();
    poll(item, POLL_FIRST_MS);
    return;
  }
  if (status === 0) {
    item.status = "error";
    item.error = "The upload did not reach the server (connection lost, or the file is larger " +
                 "than the server accepts).";
    item.retry = () => { uploadQueue.push(item); pumpUploads(); };
  } else {
    if (status === 401) askForKey(body && body.error && body.error.message);
    const message = body && body.error ? body.error.message : `The server answered ${status}.`;
    item.status = "refused";
    item.error = message;
    if (status === 401 || status >= 500) item.retry = () => { uploadQueue.push(item); pumpUploads(); };
  }
  renderCard(item);
  renderSummary();
}

async function poll(item, delay) {
  await new Promise((resolve) => setTimeout(resolve, delay));
  try {
    const detail = await api(item.url);
    applyDetail(item, detail);
  } catch (err) {
    if (err.status === 404) {
      item.status = "error";
      item.error = "The server no longer knows this image.";
      renderCard(item);
      return;
    }
    // Network blips and 5xx: keep trying, more slowly.
  }
  if (item.status === "queued" || item.status === "processing") {
    poll(item, Math.min(delay * 1.4, POLL_MAX_MS));
  }
}

function applyDetail(item, detail) {
  item.detail = detail;
  item.status = detail.status;
  if (detail.status === "failed") {
    item.error = "Processing failed: " + (detail.error ? detail.error.message : "no reason given.");
  }
  if (detail.status === "done") for (const d of detail.detections) colorOf(d.label);
  renderCard(item);
  renderToggles();
  renderSummary();
  if (state.viewer === item) renderViewer(item);
}

// --- the gallery from the server -------------------------------------------------------------

async function loadImages(cursor) {
  const query = new URLSearchParams({ limit: "24" });
  if (cursor) query.set("before", cursor);
  const page = await api(`/api/images?${query}`);
  state.nextCursor = page.next;
  $("more").hidden = !page.next;
  for (const summary of page.images) {
    if (state.items.some((i) => i.id === summary.id)) continue;
    const item = { id: summary.id, url: summary.url, filename: summary.filename || summary.id,
                   status: summary.status };
    addItem(item, true);
    setImage(item, `${summary.url}/original`);
    poll(item, 0);
  }
}

// --- the large view --------------------------------------------------------------------------

function openViewer(item) {
  state.viewer = item;
  const img = $("viewer-img");
  const noPreview = $("viewer-placeholder");
  img.hidden = false;
  noPreview.hidden = true;
  img.onerror = () => { img.hidden = true; noPreview.hidden = false; };
  img.onload = () => renderViewer(item);
  if (item.el.img.hidden || !item.el.img.src) img.onerror(); else img.src = item.el.img.src;
  renderViewer(item);
  $("viewer").showModal();
}

function renderViewer(item) {
  $("viewer-title").textContent = item.filename;
  const badge = $("viewer-status");
  badge.className = "badge badge-" + item.status;
  badge.textContent = STATUS_TEXT[item.status];
  const error = $("viewer-error");
  error.hidden = !item.error;
  error.textContent = item.error || "";
  drawBoxes($("viewer-overlay"), item, 13, state.highlight);
  renderMeta(item);
  renderTable(item);
  const done = item.detail && item.detail.status === "done";
  $("viewer-annotated").hidden = !done;
  $("viewer-json").hidden = !item.url;
}

function renderMeta(item) {
  const list = $("viewer-meta");
  list.replaceChildren();
  const d = item.detail;
  const rows = [["Status", STATUS_TEXT[item.status]]];
  if (d && d.image) rows.push(["Image", `${d.image.width} × ${d.image.height} px`]);
  if (d && d.model) rows.push(["Model", `${d.model.name} v${d.model.version}`]);
  if (d && d.created) rows.push(["Uploaded", new Date(d.created).toLocaleString()]);
  if (d && d.timings_ms && Object.keys(d.timings_ms).length) {
    rows.push(["Timings", Object.entries(d.timings_ms)
      .map(([k, v]) => `${k.replace(/_ms$/, "")} ${Number(v).toFixed(1)} ms`).join(", ")]);
  }
  if (item.id) rows.push(["Id", item.id]);
  for (const [term, value] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    list.append(dt, dd);
  }
}

function renderTable(item) {
  const body = $("viewer-table").querySelector("tbody");
  body.replaceChildren();
  const shown = visible(item);
  const total = item.detail && item.detail.status === "done" ? item.detail.detections.length : 0;
  $("viewer-caption").textContent = item.status === "done"
    ? countsText(shown, total)
    : "Detections appear here when processing is done.";
  shown.forEach((d, rank) => {
    const index = item.detail.detections.indexOf(d);
    const row = document.createElement("tr");
    row.dataset.index = String(index);
    const [x0, y0, x1, y1] = d.box;
    const classCell = document.createElement("td");
    const swatch = span("swatch", "");
    swatch.style.setProperty("--class-color", colorOf(d.label));
    classCell.append(swatch, document.createTextNode(d.label));
    const scoreCell = document.createElement("td");
    const bar = span("score-bar", "");
    bar.style.setProperty("--score", String(d.score));
    scoreCell.append(bar, span("score", d.score.toFixed(3)));
    row.append(cell(String(rank + 1)), classCell, scoreCell,
               cell([x0, y0, x1, y1].map((v) => v.toFixed(0)).join(", ")),
               cell(`${(x1 - x0).toFixed(0)} × ${(y1 - y0).toFixed(0)}`));
    row.addEventListener("mouseenter", () => highlight(index));
    row.addEventListener("mouseleave", () => highlight(-1));
    body.append(row);
  });
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function highlight(index) {
  state.highlight = index;
  for (const g of $("viewer-overlay").querySelectorAll("g.det")) {
    g.classList.toggle("highlight", Number(g.dataset.index) === index);
  }
}

function setupViewer() {
  const dialog = $("viewer");
  $("viewer-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (event) => { if (event.target === dialog) dialog.close(); });
  dialog.addEventListener("close", () => { state.viewer = null; state.highlight = -1; });
  $("viewer-annotated").addEventListener("click", () => {
    if (state.viewer) openProtected(`${state.viewer.url}/annotated?min_score=${state.threshold}`);
  });
  $("viewer-json").addEventListener("click", () => {
    if (state.viewer) openProtected(state.viewer.url);
  });
  new ResizeObserver(() => { if (state.viewer) drawBoxes($("viewer-overlay"), state.viewer, 13, state.highlight); })
    .observe($("viewer-overlay"));
}

// --- drag and drop ---------------------------------------------------------------------------

function setupDrop() {
  const zone = $("dropzone");
  const input = $("file-input");
  input.addEventListener("change", () => {
    addFiles([...input.files]);
    input.value = "";
  });
  let depth = 0;
  document.addEventListener("dragenter", (event) => {
    event.preventDefault();
    depth += 1;
    zone.classList.add("dragging");
  });
  document.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.classList.remove("dragging");
  });
  document.addEventListener("dragover", (event) => event.preventDefault());
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    depth = 0;
    zone.classList.remove("dragging");
    const files = [...(event.dataTransfer ? event.dataTransfer.files : [])];
    if (files.length) addFiles(files);
  });
  $("more").addEventListener("click", () => loadImages(state.nextCursor).catch(showLoadError));
}

// --- start -----------------------------------------------------------------------------------

function showLoadError(err) {
  if (err.status === 401) return;  // the key form is showing
  $("summary").textContent = err.message;
}

async function start() {
  try {
    state.limits = await api("/api/limits");
    $("limits-text").textContent = `${state.limits.accepted_formats.join(", ")} · up to ` +
      `${mb(state.limits.max_upload_bytes)} each`;
    if (state.limits.api_key_required && !state.apiKey) {
      askForKey();
      return;
    }
    const models = await api("/api/models");
    state.model = models.models[0] || null;
    if (state.model) {
      for (const c of state.model.classes) {
        if (!state.colors.has(c.name)) state.classOrder.push(c.name);
        state.colors.set(c.name, c.color);
      }
    }
    renderModel();
    applyModelThreshold();
    refreshAll();
    await loadImages(null);
  } catch (err) {
    showLoadError(err);
  }
  renderSummary();
}

setupKeyForm();
setupFilters();
setupViewer();
setupDrop();
start();
