// The page's one state object. Every change goes through update(), which schedules a single
// render of the whole page right after the current task (several changes in one event
// handler render once, and the page is up to date before the next event).

const KEY_STORAGE = "detectflow.apiKey";

export const state = {
  apiKey: localStorage.getItem(KEY_STORAGE) || "",
  keyForm: { shown: false, message: "" },
  limits: null,
  model: null,
  colors: new Map(),        // label -> CSS colour
  classOrder: [],           // labels in model order (plus any seen only in results)
  hidden: new Set(),        // labels whose boxes are hidden (client-side, no request)
  threshold: null,          // the model's serving threshold until the user moves the slider
  showLabels: true,
  filters: { status: "", label: "" },  // gallery filters (served by the API)
  items: [],                // gallery order: newest first
  next: null,               // cursor of the next page, null when there is none
  loading: false,
  stats: null,              // GET /api/stats
  viewer: null,             // the item open in the large view
  highlight: -1,
  confirmingDelete: false,
  notice: "",               // a page-level message (load errors)
};

export function saveKey(key) {
  localStorage.setItem(KEY_STORAGE, key);
}

let renderer = null;
let scheduled = false;

export function setRenderer(render) {
  renderer = render;
}

export function update(change) {
  if (change) change(state);
  if (scheduled || !renderer) return;
  scheduled = true;
  queueMicrotask(() => {
    scheduled = false;
    renderer(state);
  });
}

const FALLBACK_COLORS = ["#ef4444", "#3b82f6", "#f59e0b", "#10b981", "#a855f7", "#ec4899"];

export function colorOf(label) {
  if (!state.colors.has(label)) {
    state.colors.set(label, FALLBACK_COLORS[state.colors.size % FALLBACK_COLORS.length]);
    state.classOrder.push(label);
  }
  return state.colors.get(label);
}

// Detections of an item that pass the slider and the class toggles.
export function visible(item) {
  if (!item.detail || item.detail.status !== "done") return [];
  return item.detail.detections.filter(
    (d) => d.score >= (state.threshold || 0) && !state.hidden.has(d.label));
}
