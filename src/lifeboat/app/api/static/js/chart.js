// SVG charts drawn here, at the width of their box (redrawn when it changes, so text stays
// legible on a phone): a time axis, lines with points, bars, and lanes of spans on a time axis.
// Colours come from CSS classes; each chart has a title for screen readers, and each page also
// shows the same numbers as a table.

import { formatTime, toDate } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";

export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** A box that draws draw(width) and draws again when its width changes. */
export function chartBox(label, draw) {
  const box = document.createElement("figure");
  box.className = "chart";
  const caption = document.createElement("figcaption");
  caption.textContent = label;
  box.append(caption);
  let width = 0;
  let drawn = null;
  const render = () => {
    const w = Math.max(240, Math.floor(box.clientWidth || 600));
    if (w === width) return;
    width = w;
    const svg = draw(w);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
    svg.prepend(s("title", {}, label));
    if (drawn) drawn.replaceWith(svg);
    else box.prepend(svg);
    drawn = svg;
  };
  new ResizeObserver(render).observe(box);
  queueMicrotask(render);
  return box;
}

/** A linear scale [d0,d1] → [r0,r1]. */
export function scale(d0, d1, r0, r1) {
  const span = d1 - d0 || 1;
  const f = (v) => r0 + ((v - d0) / span) * (r1 - r0);
  f.domain = [d0, d1];
  return f;
}

/** About n "nice" ticks between two times (ms): on minutes, hours or days. */
export function timeTicks(t0, t1, n) {
  const steps = [1, 5, 15, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 3 * 86400, 7 * 86400, 30 * 86400, 365 * 86400].map((x) => x * 1000);
  const want = (t1 - t0) / Math.max(1, n);
  const step = steps.find((x) => x >= want) || steps[steps.length - 1];
  const offset = new Date(t0).getTimezoneOffset() * 60000;
  const ticks = [];
  for (let t = Math.ceil((t0 - offset) / step) * step + offset; t <= t1; t += step) ticks.push(t);
  return { ticks, step };
}

function tickLabel(t, step) {
  const text = formatTime(new Date(t));
  if (step >= 86400000) return text.slice(0, 10);
  if (step >= 60000) return text.slice(5, 16);
  return text.slice(11);
}

const M = { top: 12, right: 12, bottom: 28, left: 64 };

/** A tick label's anchor: kept inside the chart near its right edge. */
const anchor = (x, width) => (x > width - 45 ? "end" : "middle");

function axes(g, x, y, width, height, { yTicks = [], yFormat = String }) {
  const [t0, t1] = x.domain;
  const { ticks, step } = timeTicks(t0, t1, Math.max(2, Math.floor((width - M.left - M.right) / 110)));
  for (const t of ticks) {
    g.append(s("line", { class: "grid", x1: x(t), x2: x(t), y1: M.top, y2: height - M.bottom }));
    g.append(s("text", { class: "tick", x: x(t), y: height - M.bottom + 16, "text-anchor": anchor(x(t), width) }, tickLabel(t, step)));
  }
  for (const v of yTicks) {
    g.append(s("line", { class: "grid", x1: M.left, x2: width - M.right, y1: y(v), y2: y(v) }));
    g.append(s("text", { class: "tick", x: M.left - 6, y: y(v) + 4, "text-anchor": "end" }, yFormat(v)));
  }
  g.append(s("line", { class: "axis", x1: M.left, x2: width - M.right, y1: height - M.bottom, y2: height - M.bottom }));
}

function niceTicks(max, n = 4) {
  if (!(max > 0)) return [0, 1];
  const raw = max / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((m) => m >= raw);
  const out = [];
  for (let v = 0; v <= max + step / 2; v += step) out.push(v);
  if (out[out.length - 1] < max) out.push(out[out.length - 1] + step);
  return out;
}

function timeDomain(times, minPad = 500) {
  const ms = times.map((t) => toDate(t)).filter(Boolean).map((d) => d.getTime());
  if (ms.length === 0) return [Date.now() - 3600000, Date.now()];
  const t0 = Math.min(...ms);
  const t1 = Math.max(...ms);
  const pad = t1 > t0 ? Math.max((t1 - t0) * 0.05, minPad) : Math.max(60000, minPad);
  return [t0 - pad, t1 + pad];
}

/** Values over time: series = [{name, class, points: [{t, v, title}]}], optional reference
 * lines refs = [{v, label, class}] (an objective). */
export function lineChart(label, series, { yFormat = String, refs = [], height = 220, bars = false, minPad } = {}) {
  return chartBox(label, (width) => {
    const all = series.flatMap((x) => x.points);
    const [t0, t1] = timeDomain(all.map((p) => p.t), minPad);
    const max = Math.max(0, ...all.map((p) => p.v), ...refs.map((r) => r.v));
    const yTicks = niceTicks(max);
    const x = scale(t0, t1, M.left, width - M.right);
    const y = scale(0, yTicks[yTicks.length - 1], height - M.bottom, M.top);
    const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "svg-chart" });
    const g = s("g");
    axes(g, x, y, width, height, { yTicks, yFormat });
    for (const r of refs) {
      g.append(s("line", { class: `ref ${r.class || ""}`, x1: M.left, x2: width - M.right, y1: y(r.v), y2: y(r.v) }));
      g.append(s("text", { class: "ref-label", x: width - M.right - 4, y: y(r.v) - 4, "text-anchor": "end" }, r.label));
    }
    series.forEach((ser, i) => {
      const pts = ser.points.map((p) => ({ ...p, x: x(toDate(p.t).getTime()), y: y(p.v) })).sort((a, b) => a.x - b.x);
      const cls = ser.class || `series-${i}`;
      if (bars) {
        const w = Math.max(3, Math.min(24, (width - M.left - M.right) / Math.max(1, pts.length) - 2));
        for (const p of pts) g.append(s("rect", { class: `bar ${cls}`, x: p.x - w / 2, y: p.y, width: w, height: Math.max(0, height - M.bottom - p.y) }, s("title", {}, p.title || `${formatTime(p.t)}: ${yFormat(p.v)}`)));
      } else {
        if (pts.length > 1) g.append(s("polyline", { class: `line ${cls}`, points: pts.map((p) => `${p.x},${p.y}`).join(" ") }));
        for (const p of pts) g.append(s("circle", { class: `dot ${cls} ${p.class || ""}`, cx: p.x, cy: p.y, r: 4 }, s("title", {}, p.title || `${formatTime(p.t)}: ${yFormat(p.v)}`)));
      }
    });
    svg.append(g);
    if (series.length > 1) svg.append(legend(series, width));
    return svg;
  });
}

function legend(series, width) {
  const g = s("g", { class: "legend" });
  let xPos = M.left;
  series.forEach((ser, i) => {
    g.append(s("rect", { class: `swatch ${ser.class || `series-${i}`}`, x: xPos, y: 0, width: 10, height: 10 }));
    g.append(s("text", { class: "tick", x: xPos + 14, y: 9 }, ser.name));
    xPos += 24 + ser.name.length * 7;
    if (xPos > width - 60) xPos = M.left;
  });
  return g;
}

/** Lanes of spans on one time axis: lanes = [{label, spans: [{start, end, class, title}],
 * marks: [{t, class, title}]}]. Used by the PostgreSQL window and the jobs timeline. */
export function lanes(label, rows, { start, end, laneHeight = 26, now } = {}) {
  return chartBox(label, (width) => {
    const times = rows.flatMap((r) => [...(r.spans || []).flatMap((sp) => [sp.start, sp.end]), ...(r.marks || []).map((m) => m.t)]);
    if (start) times.push(start);
    if (end) times.push(end);
    const [t0, t1] = timeDomain(times);
    const labelWidth = Math.min(140, Math.max(70, Math.floor(width * 0.25)));
    const height = M.top + rows.length * laneHeight + M.bottom;
    const x = scale(t0, t1, labelWidth, width - M.right);
    const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "svg-chart lanes" });
    const g = s("g");
    const { ticks, step } = timeTicks(t0, t1, Math.max(2, Math.floor((width - labelWidth) / 110)));
    for (const t of ticks) {
      g.append(s("line", { class: "grid", x1: x(t), x2: x(t), y1: M.top, y2: height - M.bottom }));
      g.append(s("text", { class: "tick", x: x(t), y: height - M.bottom + 16, "text-anchor": anchor(x(t), width) }, tickLabel(t, step)));
    }
    rows.forEach((row, i) => {
      const top = M.top + i * laneHeight;
      g.append(s("text", { class: "lane-label", x: 4, y: top + laneHeight / 2 + 4 }, row.label.length > 18 ? `${row.label.slice(0, 17)}…` : row.label, s("title", {}, row.label)));
      for (const sp of row.spans || []) {
        const a = x(toDate(sp.start).getTime());
        const b = x(toDate(sp.end || now || Date.now()).getTime());
        g.append(s("rect", { class: `span ${sp.class || ""}`, x: a, y: top + 4, width: Math.max(3, b - a), height: laneHeight - 8, rx: 2 }, s("title", {}, sp.title || "")));
      }
      for (const m of row.marks || []) {
        const mx = x(toDate(m.t).getTime());
        g.append(s("path", { class: `mark ${m.class || ""}`, d: `M${mx},${top + 3} l6,${laneHeight / 2 - 3} l-6,${laneHeight / 2 - 3} l-6,-${laneHeight / 2 - 3} z` }, s("title", {}, m.title || "")));
      }
    });
    if (now) g.append(s("line", { class: "now", x1: x(toDate(now).getTime()), x2: x(toDate(now).getTime()), y1: M.top, y2: height - M.bottom }));
    g.append(s("line", { class: "axis", x1: labelWidth, x2: width - M.right, y1: height - M.bottom, y2: height - M.bottom }));
    svg.append(g);
    return svg;
  });
}
