// One source: its health checks, its snapshots (GET /api/v1/snapshots?source=…), their sizes
// and how much each one deduplicated, over time.

import { actionButtons } from "../actions.js";
import { api } from "../api.js";
import { lineChart } from "../chart.js";
import { bytes, fill, h, pick, section, stateBadge, table, time } from "../dom.js";

export function snapshotList(answer) {
  return Array.isArray(answer) ? answer : pick(answer, "snapshots", "items") || [];
}

/** Share of a snapshot's data that was already in the repository (0..1), or null. */
export function dedupShare(snapshot) {
  const total = Number(pick(snapshot, "summary.bytes_total", "summary.bytes_read"));
  const fresh = Number(pick(snapshot, "summary.bytes_new"));
  if (!(total > 0) || Number.isNaN(fresh)) return null;
  return Math.max(0, Math.min(1, 1 - fresh / total));
}

export async function render(main, [name], context) {
  const [source, answer] = await Promise.all([
    api(`/api/v1/sources/${encodeURIComponent(name)}`),
    api(`/api/v1/snapshots?source=${encodeURIComponent(name)}&limit=500`),
  ]);
  const snapshots = snapshotList(answer).slice().sort((a, b) => new Date(a.time) - new Date(b.time));
  const kind = pick(source, "kind", "type");
  const total = pick(answer, "total") ?? snapshots.length;
  const checks = pick(source, "checks", "health.checks") || [];
  const withSummary = snapshots.filter((s) => pick(s, "summary.bytes_total", "summary.bytes_read") !== undefined);
  fill(
    main,
    h("h1", {}, name, " ", h("span", { class: "kind" }, kind)),
    h("p", { class: "subtitle" }, stateBadge(pick(source, "state")), " ", h("span", { id: "snapshot-count" }, `${total} snapshot${total === 1 ? "" : "s"}`), source.retention ? ` · kept: ${source.retention}` : "", kind === "postgres" ? [" · ", h("a", { href: `#/postgres/${encodeURIComponent(name)}` }, "Recoverable window")] : null),
    actionButtons(name, context),
    section(
      "Health checks",
      table(
        [
          ["Check", (c) => pick(c, "name", "check")],
          ["State", (c) => h("span", { class: `badge badge-${checkState(pick(c, "status", "state"))}` }, pick(c, "status", "state"))],
          ["Summary", (c) => [pick(c, "summary", "message") || "", pick(c, "hint") ? h("div", { class: "help" }, pick(c, "hint")) : null]],
        ],
        checks,
        { caption: `Health checks of ${name}`, empty: "No checks recorded." },
      ),
    ),
    section(
      "Size over time",
      withSummary.length
        ? lineChart(
            `Size of each snapshot of ${name} and the new data it stored`,
            [
              { name: "size", points: withSummary.map((s) => ({ t: s.time, v: Number(pick(s, "summary.bytes_total", "summary.bytes_read")) })) },
              { name: "stored", points: withSummary.map((s) => ({ t: s.time, v: Number(pick(s, "summary.bytes_stored", "summary.bytes_new") || 0) })) },
            ],
            { yFormat: bytes },
          )
        : h("p", { class: "empty" }, "No sizes recorded yet."),
    ),
    section(
      "Deduplication over time",
      withSummary.length
        ? lineChart(
            `Share of each snapshot of ${name} already in the repository`,
            [{ name: "deduplicated", points: withSummary.filter((s) => dedupShare(s) !== null).map((s) => ({ t: s.time, v: dedupShare(s) * 100 })) }],
            { yFormat: (v) => `${Math.round(v)}%` },
          )
        : h("p", { class: "empty" }, "Nothing to show yet."),
    ),
    section(
      "Snapshots",
      table(
        [
          ["ID", (s) => h("code", { class: "snapshot-id", title: s.id }, pick(s, "short_id") || String(s.id).slice(0, 8))],
          ["Time", (s) => time(s.time)],
          ["Host", (s) => pick(s, "hostname") || ""],
          ["Size", (s) => bytes(pick(s, "summary.bytes_total", "summary.bytes_read", "size"))],
          ["Stored", (s) => bytes(pick(s, "summary.bytes_stored", "summary.bytes_new"))],
          ["Deduplicated", (s) => (dedupShare(s) === null ? "—" : `${Math.round(dedupShare(s) * 100)}%`)],
          ["Tags", (s) => (pick(s, "tags") || []).join(", ")],
        ],
        snapshots.slice().reverse(),
        { caption: `Snapshots of ${name}, newest first${total > snapshots.length ? ` (the newest ${snapshots.length} of ${total})` : ""}`, empty: "No snapshots yet." },
      ),
    ),
  );
}

function checkState(status) {
  const s = String(status || "").toUpperCase();
  if (s === "OK") return "green";
  if (s === "WARNING") return "amber";
  if (s === "CRITICAL") return "red";
  return "unknown";
}
