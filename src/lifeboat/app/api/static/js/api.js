// The fetch layer: every request carries the token from sessionStorage as a Bearer header
// (no cookies, so no CSRF), errors are the API's problem JSON, and a run's live log is read as
// server-sent events from a fetch stream (EventSource cannot send an Authorization header).

const KEY = "lifeboat.token";

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value.trim()),
  clear: () => sessionStorage.removeItem(KEY),
};

/** An error answer of the API: its problem JSON (title, detail, hint, status, exit_code). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** Called on a 401: the token is missing, wrong, expired or revoked. */
let onUnauthorized = () => {};
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

function headers(extra = {}) {
  const out = { Accept: "application/json", ...extra };
  const t = token.get();
  if (t) out.Authorization = `Bearer ${t}`;
  return out;
}

async function problemOf(response) {
  try {
    const body = await response.json();
    return typeof body === "object" && body ? body : { title: String(body) };
  } catch {
    return { title: response.statusText || `HTTP ${response.status}` };
  }
}

/** GET or POST path; the decoded JSON answer, or an ApiError. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }), signal, credentials: "omit", cache: "no-store" };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  if (!response.ok) {
    const problem = await problemOf(response);
    if (response.status === 401) onUnauthorized(problem);
    throw new ApiError(response.status, problem);
  }
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

/** Read server-sent events of path: onEvent({event, data, id}) for each, until the stream ends
 * or signal aborts. data is parsed as JSON when it is JSON. */
export async function stream(path, onEvent, { signal } = {}) {
  const response = await fetch(path, { headers: headers({ Accept: "text/event-stream" }), signal, credentials: "omit", cache: "no-store" });
  if (!response.ok) {
    const problem = await problemOf(response);
    if (response.status === 401) onUnauthorized(problem);
    throw new ApiError(response.status, problem);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const message = parseEvent(block);
      if (message) onEvent(message);
    }
  }
}

/** One SSE block ("event: x\ndata: …") → {event, data, id}; comments and empty blocks → null. */
export function parseEvent(block) {
  let event = "message";
  let id = null;
  const data = [];
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
    else if (field === "id") id = value;
  }
  if (data.length === 0) return null;
  const text = data.join("\n");
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* plain text data */
  }
  return { event, data: parsed, id };
}

/** "title: detail (hint)" for a caught error. */
export function describe(error) {
  if (error instanceof ApiError) {
    const p = error.problem;
    return [p.title, p.detail && p.detail !== p.title ? p.detail : null].filter(Boolean).join(": ") + (p.hint ? ` — ${p.hint}` : "");
  }
  return error && error.message ? error.message : String(error);
}
