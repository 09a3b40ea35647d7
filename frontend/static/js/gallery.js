// The gallery: cards for the images, pages from the API with the filters, infinite scroll,
// and polling each unfinished image until it is done or failed.

import { api, imageUrl } from "./api.js";
import { countsText, drawBoxes } from "./draw.js";
import { colorOf, state, update, visible } from "./state.js";

const PAGE_SIZE = 24;
const POLL_FIRST_MS = 300;
const POLL_MAX_MS = 2500;

export const STATUS_TEXT = {
  uploading: "Uploading",
  queued: "Queued",
  processing: "Detecting…",
  done: "Done",
  failed: "Failed",
  refused: "Not uploaded",
  error: "Error",
};

const $ = (id) => document.getElementById(id);
let openViewer = () => {};

export function onOpen(handler) {
  openViewer = handler;
}

// --- cards -------------------------------------------------------------------------------------

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
  item.el.img.addEventListener("load", () => update());
  item.el.retry.addEventListener("click", () => { if (item.retry) item.retry(); });
  resizes.observe(item.el.thumb);
  return node;
}

// Redraw when a card's size changes (labels keep a constant on-screen size).
const resizes = new ResizeObserver(() => update());

function showPlaceholder(item) {
  // The browser cannot show this file (not an image, or a type like TIFF): say so, and use
  // the server-drawn JPEG when there is a result.
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

export async function setImage(item, source) {
  if (!item.el) newCard(item);
  try {
    item.el.img.src = source instanceof Blob ? URL.createObjectURL(source)
                                             : await imageUrl(source);
  } catch {
    showPlaceholder(item);
  }
}

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
    el.counts.textContent = countsText(visible(item), item.detail.detections.length);
    // Labels on a small thumbnail would hide the cells; the large view always has them.
    const roomy = el.thumb.clientWidth >= 240;
    if (!item.serverDrawn) drawBoxes(el.svg, item, 10, -1, roomy); else el.svg.replaceChildren();
  } else {
    el.counts.textContent = "";
    el.svg.replaceChildren();
  }
}

// Cards in the order of state.items; cards of items no longer there are removed.
export function renderGallery() {
  const gallery = $("gallery");
  const wanted = new Set();
  state.items.forEach((item, index) => {
    if (!item.el) newCard(item);
    wanted.add(item.el.card);
    if (gallery.children[index] !== item.el.card) {
      gallery.insertBefore(item.el.card, gallery.children[index] || null);
    }
    renderCard(item);
  });
  for (const card of [...gallery.children]) if (!wanted.has(card)) card.remove();
  $("more").hidden = !state.next;
  $("more").disabled = state.loading;
  $("empty").hidden = state.items.length > 0 || state.loading;
}

// --- pages from the server ----------------------------------------------------------------------

export function filterQuery() {
  const query = new URLSearchParams();
  if (state.filters.status) query.set("status", state.filters.status);
  if (state.filters.label) query.set("label", state.filters.label);
  return query;
}

export async function loadPage(cursor) {
  if (state.loading) return;
  update((s) => { s.loading = true; });
  const query = filterQuery();
  query.set("limit", String(PAGE_SIZE));
  if (cursor) query.set("before", cursor);
  try {
    const page = await api(`/api/images?${query}`);
    update((s) => {
      s.next = page.next;
      for (const summary of page.images) {
        if (s.items.some((i) => i.id === summary.id)) continue;
        const item = { id: summary.id, url: summary.url,
                       filename: summary.filename || summary.id, status: summary.status };
        s.items.push(item);
        setImage(item, `${summary.url}/original`);
        poll(item, 0);
      }
    });
  } finally {
    update((s) => { s.loading = false; });
  }
  keepFilling();
}

// A tall window may show the end of the gallery with room to spare: the observer then sees
// no change to report, so ask for the next page while the end is still in view.
let keepFilling = () => {};

// Filters changed: start again from the newest page.
export async function reload() {
  update((s) => { s.items = s.items.filter((i) => !i.id); s.next = null; });
  await loadPage(null);
}

// Older pages load by themselves when the end of the gallery comes into view.
export function setupInfiniteScroll(onError) {
  const more = $("more");
  const end = more.parentElement;
  const margin = 600;
  more.addEventListener("click", () => loadPage(state.next).catch(onError));
  new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && state.next && !state.loading) {
      loadPage(state.next).catch(onError);
    }
  }, { rootMargin: `${margin}px` }).observe(end);
  keepFilling = () => {
    if (state.next && end.getBoundingClientRect().top < window.innerHeight + margin) {
      setTimeout(() => loadPage(state.next).catch(onError), 0);
    }
  };
}

// --- polling ------------------------------------------------------------------------------------

export async function poll(item, delay) {
  await new Promise((resolve) => setTimeout(resolve, delay));
  if (item.deleted) return;
  try {
    applyDetail(item, await api(item.url));
  } catch (err) {
    if (err.status === 404) {
      update(() => {
        item.status = "error";
        item.error = "The server no longer knows this image.";
      });
      return;
    }
    // Network blips and 5xx: keep trying, more slowly.
  }
  if (item.status === "queued" || item.status === "processing") {
    poll(item, Math.min(Math.max(delay, POLL_FIRST_MS) * 1.4, POLL_MAX_MS));
  }
}

let finishedListener = () => {};

export function onFinished(listener) {
  finishedListener = listener;
}

function applyDetail(item, detail) {
  const finished = item.status !== detail.status && ["done", "failed"].includes(detail.status);
  update(() => {
    item.detail = detail;
    item.status = detail.status;
    if (detail.status === "failed") {
      item.error = "Processing failed: " + (detail.error ? detail.error.message
                                                          : "no reason given.");
    }
    if (detail.status === "done") for (const d of detail.detections) colorOf(d.label);
  });
  if (finished) finishedListener(item);
}
