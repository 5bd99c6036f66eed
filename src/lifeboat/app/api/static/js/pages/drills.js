// Drills: every recorded restore drill (GET /api/v1/drills), the restore time of each against
// its RTO as a trend per source, and a button per source to start one (operators).

import { actionButtons } from "../actions.js";
import { api } from "../api.js";
import { lineChart } from "../chart.js";
import { duration, fill, h, pick, section, table, time } from "../dom.js";

export function drillList(answer) {
  return Array.isArray(answer) ? answer : pick(answer, "drills", "records", "items") || [];
}

export const rtoOf = (d) => pick(d, "rto_seconds", "summary.rto_seconds", "result.rto_seconds", "seconds");
export const rtoObjectiveOf = (d) => pick(d, "rto_objective_seconds", "summary.rto_objective_seconds", "result.rto_objective_seconds");
const passed = (d) => pick(d, "ok", "passed") ?? pick(d, "status", "summary.status") === "passed";

/** The RTO trend per source: the API's, else made from the drills. */
function trends(answer, bySource) {
  const given = pick(answer, "trend");
  if (Array.isArray(given)) return given.map((t) => ({ source: t.source, objective: t.rto_objective_seconds, points: (t.points || []).filter((p) => p.rto_seconds !== null && p.rto_seconds !== undefined) }));
  return [...bySource.entries()].map(([source, list]) => ({
    source,
    objective: list.map(rtoObjectiveOf).find((v) => v !== undefined && v !== null),
    points: list.filter((d) => rtoOf(d) !== undefined && rtoOf(d) !== null).map((d) => ({ time: d.time, rto_seconds: rtoOf(d), ok: passed(d) })),
  }));
}

export async function render(main, _params, context) {
  const [answer, sourcesAnswer] = await Promise.all([api("/api/v1/drills"), api("/api/v1/sources")]);
  const drills = drillList(answer).slice().sort((a, b) => new Date(b.time) - new Date(a.time));
  const sources = (Array.isArray(sourcesAnswer) ? sourcesAnswer : pick(sourcesAnswer, "sources") || []).map((s) => (typeof s === "string" ? s : s.name));
  const bySource = new Map();
  for (const d of drills) {
    if (!bySource.has(d.source)) bySource.set(d.source, []);
    bySource.get(d.source).push(d);
  }
  fill(
    main,
    h("h1", {}, "Drills"),
    h("p", { class: "subtitle" }, `${drills.length} drill${drills.length === 1 ? "" : "s"} recorded. A drill restores into a scratch place and checks the result; it never touches a live system.`),
    context.session.can("operator") && sources.length
      ? section("Start a drill", h("div", { class: "actions" }, sources.map((name) => actionButtons(name, context, ["drill"], { named: true }))))
      : null,
    trends(answer, bySource).map(({ source: name, objective, points: given }) => {
      const points = given.map((p) => ({ t: p.time, v: Number(p.rto_seconds), class: p.ok ? "" : "bad", title: `${time(p.time).textContent}: ${duration(p.rto_seconds)}${p.ok ? "" : " (failed)"}` }));
      return section(
        `RTO trend: ${name}`,
        lineChart(`Restore time of each drill of ${name}${objective ? `, objective ${duration(objective)}` : ""}`, [{ name, points }], {
          yFormat: (v) => duration(v),
          refs: objective ? [{ v: Number(objective), label: `RTO ${duration(objective)}` }] : [],
        }),
      );
    }),
    section(
      "History",
      table(
        [
          ["Time", (d) => time(d.time)],
          ["Source", (d) => h("a", { href: `#/sources/${encodeURIComponent(d.source)}` }, d.source)],
          ["Result", (d) => h("span", { class: `badge badge-${passed(d) ? "green" : "red"}` }, pick(d, "status", "summary.status") || (passed(d) ? "passed" : "failed"))],
          ["Restore time", (d) => duration(rtoOf(d))],
          ["RTO", (d) => duration(rtoObjectiveOf(d))],
          ...(drills.some((d) => pick(d, "recovered_to", "result.recovered_to")) ? [["Recovered to", (d) => time(pick(d, "recovered_to", "result.recovered_to"))]] : []),
          ["Problems", (d) => (pick(d, "problems", "reasons", "summary.problems") || []).join("; ")],
        ],
        drills,
        { caption: "Drills, newest first", empty: "No drill has run yet: start one, or schedule one (schedule: drill:)." },
      ),
    ),
  );
}
