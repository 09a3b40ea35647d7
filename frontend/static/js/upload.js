// Uploading: a small queue (two at a time), progress per file, then polling for the result.

import { uploadFile } from "./api.js";
import { poll, setImage } from "./gallery.js";
import { update } from "./state.js";

const UPLOAD_CONCURRENCY = 2;
const POLL_FIRST_MS = 300;

const queue = [];
let running = 0;

export function mb(bytes) {
  const value = bytes / 1e6;
  return `${value < 10 ? value.toFixed(1) : value.toFixed(0)} MB`;
}

export function addFiles(files) {
  update((s) => {
    for (const file of files) {
      const item = { filename: file.name || "image", status: "uploading", progress: 0, file };
      s.items.unshift(item);
      setImage(item, file);  // local preview straight away
      const limit = s.limits && s.limits.max_upload_bytes;
      if (limit && file.size > limit) {
        refuse(item, `This file is ${mb(file.size)}; the limit is ${mb(limit)}.`);
      } else if (file.size === 0) {
        refuse(item, "The file is empty (0 bytes).");
      } else {
        queue.push(item);
      }
    }
  });
  pump();
}

function refuse(item, message) {
  item.status = "refused";
  item.error = message;
  item.progress = 0;
}

function pump() {
  while (running < UPLOAD_CONCURRENCY && queue.length) {
    const item = queue.shift();
    running += 1;
    send(item).finally(() => {
      running -= 1;
      pump();
    });
  }
}

function retryLater(item) {
  return () => { queue.push(item); pump(); };
}

async function send(item) {
  update(() => {
    item.status = "uploading";
    item.error = "";
    item.retry = null;
  });
  const { status, body } = await uploadFile(item.file, (fraction) => {
    update(() => { item.progress = fraction; });
  });
  if (status === 202 && body && body.images && body.images.length) {
    const ref = body.images[0];
    update(() => {
      item.id = ref.id;
      item.url = ref.url;
      item.status = ref.status;
      item.progress = 1;
      item.file = null;
    });
    poll(item, POLL_FIRST_MS);
    return;
  }
  update(() => {
    if (status === 0) {
      item.status = "error";
      item.error = "The upload did not reach the server (connection lost, or the file is " +
                   "larger than the server accepts).";
      item.retry = retryLater(item);
      return;
    }
    item.status = "refused";
    item.error = body && body.error ? body.error.message : `The server answered ${status}.`;
    if (status === 401 || status >= 500) item.retry = retryLater(item);
  });
}

export function setupDrop() {
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("file-input");
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
}
