// Building the page: a tiny element factory and the formats every page shares (times in the
// browser's zone as the CLI prints them, ages, durations, sizes). No framework, no HTML strings.

/** An element: h("a", {href: "#/", class: "x"}, "text", child, [more]). Event handlers as on*. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace everything inside el. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

/** "2026-11-30 10:33:18" in the browser's zone, as `lifeboat snapshots` prints it. */
export function formatTime(value) {
  const d = toDate(value);
  if (!d) return "—";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function toDate(value) {
  if (value === undefined || value === null || value === "") return null;
  const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** A <time> element: the local time, its ISO form for machines and as a tooltip. */
export function time(value) {
  const d = toDate(value);
  if (!d) return h("span", {}, "—");
  return h("time", { datetime: d.toISOString(), title: d.toISOString() }, formatTime(d));
}

/** 95 → "1m 35s", 3h 2m, 2d 4h — two units at most. */
export function duration(seconds) {
  if (seconds === undefined || seconds === null || Number.isNaN(Number(seconds))) return "—";
  const exact = Math.abs(Number(seconds));
  if (exact < 10 && exact !== Math.round(exact)) return `${exact.toFixed(exact < 1 ? 2 : 1)}s`;
  let s = Math.round(exact);
  if (s < 60) return `${s}s`;
  const units = [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]];
  const parts = [];
  for (const [name, size] of units) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${name}`);
      s %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

/** Seconds since a time (now by default). */
export function ageSeconds(value, now = Date.now()) {
  const d = toDate(value);
  return d ? (now - d.getTime()) / 1000 : null;
}

/** 1536 → "1.5 KiB". */
export function bytes(n) {
  if (n === undefined || n === null || Number.isNaN(Number(n))) return "—";
  let v = Number(n);
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** The first of obj's keys that is set: tolerates the few names a field may have. */
export function pick(obj, ...keys) {
  if (!obj) return undefined;
  for (const key of keys) {
    const value = key.split(".").reduce((o, k) => (o === undefined || o === null ? undefined : o[k]), obj);
    if (value !== undefined && value !== null) return value;
  }
  return undefined;
}

/** A green/amber/red badge with its word, so the state never rests on colour alone. */
export function stateBadge(state) {
  const word = { green: "OK", amber: "Warning", red: "Action needed" }[state] || state || "unknown";
  return h("span", { class: `badge badge-${state || "unknown"}` }, word);
}

/** A status word of a run (succeeded, failed, running …) as a badge. */
export function statusBadge(status) {
  const state = { succeeded: "green", running: "running", waiting: "running", accepted: "running", failed: "red", "timed-out": "red", interrupted: "amber", cancelled: "amber" }[status] || "unknown";
  return h("span", { class: `badge badge-${state}` }, status || "unknown");
}

/** A section with a heading. */
export function section(title, ...children) {
  const id = `s-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

/** A table from rows: columns = [[heading, row => cell], …]. */
export function table(columns, rows, { caption, empty = "Nothing yet." } = {}) {
  if (!rows || rows.length === 0) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption || "table" },
    h(
      "table",
      { class: "stack" },
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, columns.map(([title]) => h("th", { scope: "col" }, title)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([title, cell]) => h("td", { "data-label": title }, h("div", { class: "cell" }, cell(row))))))),
    ),
  );
}

/** Redraw inside container with fn() and give the focus back to the same control (found again
 * by its data-action/data-source/data-job or href), so a refresh never throws a keyboard user
 * back to the top of the page. */
export function keepFocus(container, fn) {
  const active = document.activeElement;
  let selector = null;
  if (active && active !== container && container.contains(active)) {
    const attrs = ["data-action", "data-source", "data-job", "href", "id"].filter((a) => active.hasAttribute(a));
    if (attrs.length) selector = active.tagName.toLowerCase() + attrs.map((a) => `[${a}="${CSS.escape(active.getAttribute(a))}"]`).join("");
  }
  fn();
  if (selector) {
    const again = container.querySelector(selector);
    if (again) again.focus({ preventScroll: true });
  }
}
