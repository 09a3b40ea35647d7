// The large view: the image with its boxes, a table of the detections, links, and delete
// (with an in-page confirmation).

import { api, openProtected } from "./api.js";
import { countsText, drawBoxes } from "./draw.js";
import { STATUS_TEXT } from "./gallery.js";
import { colorOf, state, update, visible } from "./state.js";

const $ = (id) => document.getElementById(id);
let deletedListener = () => {};

export function onDeleted(listener) {
  deletedListener = listener;
}

export function openViewer(item) {
  update((s) => {
    s.viewer = item;
    s.highlight = -1;
    s.confirmingDelete = false;
    s.deleteError = "";
  });
  const img = $("viewer-img");
  const noPreview = $("viewer-placeholder");
  img.hidden = false;
  noPreview.hidden = true;
  img.onerror = () => { img.hidden = true; noPreview.hidden = false; };
  img.onload = () => update();
  if (item.el.img.hidden || !item.el.img.src) img.onerror(); else img.src = item.el.img.src;
  $("viewer").showModal();
}

export function renderViewer() {
  const item = state.viewer;
  if (!item) return;
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
  $("viewer-delete").hidden = !item.id || state.confirmingDelete;
  $("delete-confirm").hidden = !state.confirmingDelete;
  $("delete-error").hidden = !state.deleteError;
  $("delete-error").textContent = state.deleteError || "";
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

function span(className, text) {
  const el = document.createElement("span");
  el.className = className;
  el.textContent = text;
  return el;
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
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

// Hovering a row outlines its box; no re-render needed.
function highlight(index) {
  state.highlight = index;
  for (const g of $("viewer-overlay").querySelectorAll("g.det")) {
    g.classList.toggle("highlight", Number(g.dataset.index) === index);
  }
}

async function deleteShown() {
  const item = state.viewer;
  if (!item || !item.id) return;
  try {
    await api(item.url, { method: "DELETE" });
  } catch (err) {
    if (err.status !== 404) {  // already gone is what we wanted
      update((s) => { s.deleteError = err.message; });
      return;
    }
  }
  item.deleted = true;
  update((s) => {
    s.items = s.items.filter((i) => i !== item);
    s.confirmingDelete = false;
  });
  $("viewer").close();
  deletedListener(item);
}

export function setupViewer() {
  const dialog = $("viewer");
  $("viewer-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (event) => { if (event.target === dialog) dialog.close(); });
  dialog.addEventListener("close", () => update((s) => {
    s.viewer = null;
    s.highlight = -1;
    s.confirmingDelete = false;
  }));
  $("viewer-annotated").addEventListener("click", () => {
    if (state.viewer) {
      openProtected(`${state.viewer.url}/annotated?min_score=${state.threshold || 0}`);
    }
  });
  $("viewer-json").addEventListener("click", () => {
    if (state.viewer) openProtected(state.viewer.url);
  });
  $("viewer-delete").addEventListener("click", () => update((s) => {
    s.confirmingDelete = true;
    s.deleteError = "";
  }));
  $("delete-no").addEventListener("click", () => update((s) => { s.confirmingDelete = false; }));
  $("delete-yes").addEventListener("click", deleteShown);
  new ResizeObserver(() => update()).observe($("viewer-overlay"));
}
