// Talking to the server: JSON calls, images behind an API key, uploads with progress,
// downloads. User data never becomes HTML anywhere in the page (see render code).

import { state, update } from "./state.js";

export class ApiError extends Error {
  constructor(status, body) {
    const err = body && body.error;
    super(err ? err.message : `The server answered ${status}.`);
    this.status = status;
    this.code = err ? err.code : "http_" + status;
  }
}

export function authHeaders() {
  return state.apiKey ? { "X-API-Key": state.apiKey } : {};
}

function networkError() {
  return new ApiError(0, { error: { code: "network",
    message: "Could not reach the server. Check that it is running and try again." } });
}

function unauthorized(body) {
  update((s) => {
    s.keyForm = { shown: true, message: s.apiKey ? ((body && body.error && body.error.message)
      || "The API key was not accepted.") : "" };
  });
}

export async function api(path, { method = "GET" } = {}) {
  let response;
  try {
    response = await fetch(path, { method, headers: { Accept: "application/json",
                                                      ...authHeaders() } });
  } catch {
    throw networkError();
  }
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (response.status === 401) unauthorized(body);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

// Images come from /api too, so with an API key they are fetched and shown as blob: URLs.
export async function imageUrl(path) {
  if (!state.apiKey) return path;
  const response = await fetch(path, { headers: authHeaders() });
  if (!response.ok) throw new ApiError(response.status, null);
  return URL.createObjectURL(await response.blob());
}

export async function openProtected(path) {
  const tab = window.open("", "_blank");
  try {
    const url = await imageUrl(path);
    if (tab) tab.location.href = url;
  } catch {
    if (tab) tab.close();
  }
}

// A file from the API saved under the name the server gives it (Content-Disposition).
export async function download(path, fallbackName) {
  let response;
  try {
    response = await fetch(path, { headers: authHeaders() });
  } catch {
    throw networkError();
  }
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    if (response.status === 401) unauthorized(body);
    throw new ApiError(response.status, body);
  }
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = disposition.match(/filename="([^"]+)"/);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = match ? match[1] : fallbackName;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

export function uploadFile(file, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/images");
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.responseType = "json";
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      if (xhr.status === 401) unauthorized(xhr.response);
      resolve({ status: xhr.status, body: xhr.response });
    };
    xhr.onerror = () => resolve({ status: 0, body: null });
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}
