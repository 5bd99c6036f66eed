// The repository: its size, deduplication and compression (GET /api/v1/repository), and how
// it grew day by day.

import { api } from "../api.js";
import { lineChart } from "../chart.js";
import { bytes, fill, h, pick, section, table } from "../dom.js";

export async function render(main) {
  const repo = await api("/api/v1/repository");
  const stats = pick(repo, "stats") || repo;
  const growth = pick(repo, "growth", "growth_per_day", "days") || [];
  const day = (g) => pick(g, "day", "date", "time");
  const added = (g) => Number(pick(g, "bytes_added", "stored_bytes", "bytes_stored", "added_bytes") || 0);
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
        h("dt", {}, "Stored"),
        h("dd", {}, bytes(pick(stats, "stored_bytes", "size_bytes"))),
        h("dt", {}, "Restores to"),
        h("dd", {}, bytes(pick(stats, "restore_bytes"))),
        h("dt", {}, "Deduplication"),
        h("dd", {}, ratio(pick(stats, "dedup_ratio"))),
        h("dt", {}, "Compression"),
        h("dd", {}, ratio(pick(stats, "compression_ratio"))),
        h("dt", {}, "Packs"),
        h("dd", {}, String(pick(stats, "packs") ?? "—")),
      ),
    ),
    section(
      "Growth",
      growth.length
        ? [
            lineChart("Data added to the repository per day", [{ name: "added", points: growth.map((g) => ({ t: day(g), v: added(g) })) }], { yFormat: bytes, bars: true }),
            lineChart("Repository size over time", [{ name: "stored", points: cumulative }], { yFormat: bytes }),
          ]
        : h("p", { class: "empty" }, "No growth recorded yet."),
      table(
        [
          ["Day", (g) => String(day(g)).slice(0, 10)],
          ["Snapshots", (g) => String(pick(g, "snapshots") ?? "")],
          ["Added", (g) => bytes(added(g))],
        ],
        growth.slice().reverse(),
        { caption: "Growth per day, newest first", empty: "" },
      ),
    ),
  );
}
