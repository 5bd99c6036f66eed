// The repository: its size, deduplication and compression (GET /api/v1/repository), and how
// it grew day by day.

import { api } from "../api.js";
import { lineChart } from "../chart.js";
import { bytes, fill, h, pick, section, table } from "../dom.js";

const DAYS = 3 * 86400000; // a day's point with a few days either side: the axis counts days

export async function render(main) {
  const repo = await api("/api/v1/repository");
  const stats = pick(repo, "stats") || repo;
  const growth = pick(repo, "growth", "growth_per_day", "days") || [];
  const day = (g) => `${pick(g, "day", "date", "time")}T12:00:00Z`; // the middle of the (UTC) day
  const added = (g) => Number(pick(g, "bytes_stored", "bytes_added") || 0);
  const total = (g) => pick(g, "total_bytes", "cumulative_bytes", "total_stored_bytes");
  let running = 0;
  const cumulative = growth.map((g) => {
    running += added(g);
    return { t: day(g), v: total(g) !== undefined ? Number(total(g)) : running };
  });
  const ratio = (v) => (v === undefined || v === null ? "—" : `${Number(v).toFixed(2)}×`);
  fill(
    main,
    h("h1", {}, "Repository"),
    section(
      "Size",
      h(
        "dl",
        { class: "facts", id: "repo-stats" },
        h("dt", {}, "Location"),
        h("dd", {}, h("code", {}, pick(repo, "location", "url") || "—")),
        h("dt", {}, "Snapshots"),
        h("dd", { id: "repo-snapshots" }, String(pick(stats, "snapshots") ?? "—")),
        h("dt", {}, "Data stored"),
        h("dd", {}, bytes(pick(stats, "data_bytes", "stored_bytes"))),
        h("dt", {}, "On the storage"),
        h("dd", {}, bytes(pick(stats, "size_bytes"))),
        h("dt", {}, "Free"),
        h("dd", {}, bytes(pick(stats, "free_bytes"))),
        h("dt", {}, "Packs"),
        h("dd", {}, String(pick(stats, "packs") ?? "—")),
        h("dt", {}, "Locks"),
        h("dd", {}, String(pick(stats, "locks") ?? "—"), (pick(stats, "stale_locks") || []).length ? h("span", { class: "over" }, ` (${stats.stale_locks.length} stale: lifeboat unlock)`) : ""),
      ),
    ),
    section(
      "Per source",
      table(
        [
          ["Source", (x) => h("a", { href: `#/sources/${encodeURIComponent(x.source)}` }, x.source)],
          ["Snapshots", (x) => String(x.snapshots)],
          ["Newest holds", (x) => bytes(x.bytes_total)],
          ["All backups added", (x) => bytes(x.bytes_stored)],
          ["Deduplication", (x) => ratio(x.dedup_ratio)],
        ],
        pick(repo, "sources") || [],
        { caption: "What each source takes", empty: "No source has a snapshot." },
      ),
    ),
    section(
      "Growth",
      growth.length
        ? [
            lineChart("Data added to the repository per day", [{ name: "added", points: growth.map((g) => ({ t: day(g), v: added(g) })) }], { yFormat: bytes, bars: true, minPad: DAYS }),
            lineChart("Repository size over time", [{ name: "stored", points: cumulative }], { yFormat: bytes, minPad: DAYS }),
          ]
        : h("p", { class: "empty" }, "No growth recorded yet."),
      table(
        [
          ["Day", (g) => String(pick(g, "day", "date", "time")).slice(0, 10)],
          ["Snapshots", (g) => String(pick(g, "snapshots") ?? "")],
          ["Read", (g) => bytes(pick(g, "bytes_total"))],
          ["Added", (g) => bytes(added(g))],
        ],
        growth.slice().reverse(),
        { caption: "Growth per day, newest first", empty: "" },
      ),
    ),
  );
}
