// A PostgreSQL source's recoverable window (GET /api/v1/postgres/{source}/window): on a time
// axis the window that exists and the one retention promises, the base backups and each
// timeline's archived WAL; on a segment axis the WAL ranges of each timeline and their gaps.

import { api } from "../api.js";
import { chartBox, lanes, s, scale } from "../chart.js";
import { bytes, fill, h, pick, section, table, time } from "../dom.js";

/** "000000010000000A000000FF" → its position on the timeline (16 MiB segments: 256 per log file). */
export function segmentNumber(name) {
  if (!/^[0-9A-F]{24}$/i.test(name || "")) return null;
  return parseInt(name.slice(8, 16), 16) * 256 + parseInt(name.slice(16, 24), 16);
}

export async function render(main, [name]) {
  const answer = await api(`/api/v1/postgres/${encodeURIComponent(name)}/window`);
  const clusters = Array.isArray(answer) ? answer : pick(answer, "clusters") || [answer];
  fill(main, h("h1", {}, `${name}: recoverable window`), clusters.length === 0 ? h("p", { class: "empty" }, "No base backup of this source yet.") : clusters.map((c) => cluster(name, c)));
}

function cluster(name, c) {
  const backups = pick(c, "backups", "base_backups") || [];
  const timelines = pick(c, "wal.timelines", "timelines") || [];
  const existing = pick(c, "existing") || {};
  const recoverable = pick(c, "recoverable", "window") || {};
  const from = pick(existing, "from") || pick(recoverable, "earliest_time");
  const to = pick(existing, "to") || pick(recoverable, "latest_archived_at");
  const guaranteed = pick(c, "guaranteed");
  const problems = pick(c, "problems") || [];
  const warnings = pick(c, "warnings") || [];
  const gaps = timelines.flatMap((t) => (t.gaps || []).map((g) => ({ timeline: t.timeline, segment: g })));
  const now = new Date().toISOString();

  const rows = [];
  if (from) rows.push({ label: "Recoverable", spans: [{ start: from, end: to || now, class: "window", title: `Recoverable from ${from} to ${to || "now"}` }] });
  rows.push({
    label: "Base backups",
    spans: backups.map((b) => ({ start: b.start_time, end: b.stop_time, class: "base", title: `${b.label || "base backup"} ${b.start_time} → ${b.stop_time} (timeline ${b.timeline})` })),
    marks: backups.map((b) => ({ t: b.stop_time, class: "base", title: `base backup ${b.label || ""} on timeline ${b.timeline}, ${b.start_wal} … ${b.stop_wal}` })),
  });
  for (const t of timelines) {
    // WAL is listed by segment, not by time: on the time axis, the window's timeline is drawn
    // from the window's start to its newest archived segment (the segment axis below has every range).
    const spans = t.timeline === pick(recoverable, "timeline") && from ? [{ start: from, end: to || now, class: (t.gaps || []).length ? "partial" : "wal", title: `archived WAL of timeline ${t.timeline} up to ${pick(recoverable, "latest_wal")}` }] : [];
    rows.push({ label: `Timeline ${t.timeline}${t.live ? " (live)" : ""}`, spans });
  }

  return h(
    "div",
    { class: "cluster", "data-system": pick(c, "system_id") },
    h("p", { class: "subtitle" }, `System ${pick(c, "system_id") || "?"} · ${pick(c, "wal.files") ?? "?"} WAL files, ${bytes(pick(c, "wal.stored_bytes"))} stored`),
    problems.length ? h("div", { class: "todo", role: "note" }, h("strong", {}, "Problems: "), h("ul", {}, problems.map((p) => h("li", {}, p)))) : null,
    warnings.length ? h("div", { class: "todo amber", role: "note" }, h("strong", {}, "Warnings: "), h("ul", {}, warnings.map((p) => h("li", {}, p)))) : null,
    section(
      "Recoverable window",
      h("dl", { class: "facts" }, h("dt", {}, "From"), h("dd", { id: "window-from" }, time(from)), h("dt", {}, "To"), h("dd", { id: "window-to" }, time(to)), h("dt", {}, "Timeline"), h("dd", {}, String(pick(recoverable, "timeline") ?? "—")), guaranteed ? [h("dt", {}, "Retention promises"), h("dd", {}, `${pick(guaranteed, "recovery_window")} (${pick(guaranteed, "policy") || "recovery window"})`)] : null, pick(recoverable, "blocked_by") ? [h("dt", {}, "Blocked by"), h("dd", { class: "over" }, h("code", {}, recoverable.blocked_by))] : null),
      h("ul", { class: "legend-list", "aria-hidden": "true" }, h("li", {}, h("span", { class: "sw window" }), "window"), h("li", {}, h("span", { class: "sw base" }), "base backup"), h("li", {}, h("span", { class: "sw wal" }), "archived WAL")),
      lanes(`Recoverable window of ${name} with its base backups and timelines`, rows, { now }),
    ),
    section("WAL ranges and gaps", segmentChart(name, timelines), gaps.length ? h("p", { class: "todo" }, `${gaps.length} missing segment${gaps.length === 1 ? "" : "s"}: recovery cannot cross them.`) : h("p", {}, "No gaps."),
      table(
        [
          ["Timeline", (t) => String(t.timeline)],
          ["Parent", (t) => (t.parent === null || t.parent === undefined ? "—" : `${t.parent} at ${t.switchpoint || "?"}`)],
          ["Ranges", (t) => (t.ranges || []).map((r) => h("div", {}, h("code", {}, r.first), " … ", h("code", {}, r.last), ` (${r.segments})`))],
          ["Gaps", (t) => ((t.gaps || []).length ? (t.gaps || []).map((g) => h("div", { class: "over" }, h("code", {}, g))) : "none")],
        ],
        timelines,
        { caption: "Archived WAL per timeline", empty: "No WAL archived yet." },
      ),
    ),
    section(
      "Base backups",
      table(
        [
          ["Label", (b) => b.label || ""],
          ["Started", (b) => time(b.start_time)],
          ["Stopped", (b) => time(b.stop_time)],
          ["Timeline", (b) => String(b.timeline)],
          ["WAL", (b) => [h("code", {}, b.start_wal), " … ", h("code", {}, b.stop_wal)]],
          ["Snapshot", (b) => h("code", {}, String(pick(b, "snapshot") || "").slice(0, 8))],
        ],
        backups,
        { caption: "Base backups, as recorded", empty: "No base backups." },
      ),
    ),
  );
}

/** Each timeline's archived ranges on the axis of segment numbers, the gaps in between in red. */
function segmentChart(name, timelines) {
  const items = timelines.map((t) => ({
    t,
    ranges: (t.ranges || []).map((r) => [segmentNumber(r.first), segmentNumber(r.last)]).filter(([a, b]) => a !== null && b !== null),
    gaps: (t.gaps || []).map(segmentNumber).filter((g) => g !== null),
  }));
  const all = items.flatMap((i) => [...i.ranges.flat(), ...i.gaps]);
  if (all.length === 0) return h("p", { class: "empty" }, "No archived WAL.");
  const lo = Math.min(...all);
  const hi = Math.max(...all) + 1;
  return chartBox(`Archived WAL segments of ${name} per timeline, gaps in red`, (width) => {
    const lane = 26;
    const left = 90;
    const height = 12 + items.length * lane + 26;
    const x = scale(lo, hi, left, width - 12);
    const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "svg-chart lanes" });
    items.forEach((item, i) => {
      const top = 12 + i * lane;
      svg.append(s("text", { class: "lane-label", x: 4, y: top + lane / 2 + 4 }, `Timeline ${item.t.timeline}`));
      for (const [a, b] of item.ranges) svg.append(s("rect", { class: "span wal", x: x(a), y: top + 4, width: Math.max(3, x(b + 1) - x(a)), height: lane - 8 }, s("title", {}, `segments ${a}…${b}`)));
      for (const g of item.gaps) svg.append(s("rect", { class: "span gap", x: x(g), y: top + 2, width: Math.max(3, x(g + 1) - x(g)), height: lane - 4 }, s("title", {}, `missing segment ${g}`)));
    });
    const bottom = height - 26;
    svg.append(s("line", { class: "axis", x1: left, x2: width - 12, y1: bottom, y2: bottom }));
    svg.append(s("text", { class: "tick", x: left, y: bottom + 16 }, `segment ${lo}`));
    svg.append(s("text", { class: "tick", x: width - 12, y: bottom + 16, "text-anchor": "end" }, `segment ${hi - 1}`));
    return svg;
  });
}
