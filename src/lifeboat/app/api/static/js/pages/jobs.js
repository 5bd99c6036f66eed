// Jobs: every scheduled job (GET /api/v1/jobs) with its next and last run, a timeline of the
// recent runs (GET /api/v1/runs) coloured by result, and the runs as a table. Refreshed every
// few seconds while open, so a run started elsewhere shows up; changes are announced.

import { api, describe } from "../api.js";
import { lanes } from "../chart.js";
import { duration, fill, h, keepFocus, pick, section, statusBadge, table, time, toDate } from "../dom.js";

const REFRESH_MS = 3000;
/** Kinds an operator may start; the others (retention, prune, copy) need an admin. */
const OPERATOR_KINDS = new Set(["backup", "verify", "drill", "check"]);

export function runList(answer) {
  return Array.isArray(answer) ? answer : pick(answer, "runs", "items") || [];
}

export function runSeconds(run) {
  const given = pick(run, "duration_seconds");
  if (given !== undefined) return given;
  const a = toDate(run.started);
  const b = toDate(run.finished) || (run.status === "running" ? new Date() : null);
  return a && b ? (b - a) / 1000 : null;
}

export async function render(main, _params, { session, announce, navigate }) {
  const seen = new Map();
  let first = true;
  const jobsBox = h("div", { id: "jobs" });
  const timelineBox = h("div", { id: "timeline" });
  const runsBox = h("div", { id: "runs" });
  fill(main, h("h1", {}, "Jobs"), section("Scheduled jobs", jobsBox), section("Timeline", h("ul", { class: "legend-list", "aria-hidden": "true" }, ["succeeded", "failed", "cancelled", "running"].map((k) => h("li", {}, h("span", { class: `sw ${k}` }), k))), timelineBox), section("Recent runs", runsBox));

  const runNow = (job) =>
    h(
      "button",
      {
        type: "button",
        class: "secondary",
        "data-job": job.name,
        "aria-label": `Run ${job.name} now`,
        onclick: async (event) => {
          event.currentTarget.disabled = true;
          try {
            const answer = await api(`/api/v1/jobs/${encodeURIComponent(job.name)}/run`, { method: "POST" });
            const run = answer && (answer.run_id ?? answer.run ?? answer.id);
            announce(`${job.name} started: run ${run}.`);
            navigate(`#/runs/${encodeURIComponent(run)}`);
          } catch (error) {
            announce(`${job.name} did not start: ${describe(error)}`);
            event.target.disabled = false;
          }
        },
      },
      "Run now",
    );

  const draw = async () => {
    const [jobsAnswer, runsAnswer] = await Promise.all([api("/api/v1/jobs"), api("/api/v1/runs?limit=200")]);
    const jobs = Array.isArray(jobsAnswer) ? jobsAnswer : pick(jobsAnswer, "jobs") || [];
    const runs = runList(runsAnswer);
    for (const run of runs) {
      const before = seen.get(run.id);
      if (!first && before !== run.status) announce(`${run.job}: run ${run.id} ${run.status}.`);
      seen.set(run.id, run.status);
    }
    first = false;
    keepFocus(jobsBox, () => fill(
      jobsBox,
      table(
        [
          ["Job", (j) => h("code", {}, j.name)],
          ["Schedule", (j) => pick(j, "timing", "schedule", "timing_text") || ""],
          ["Next run", (j) => time(pick(j, "next_run"))],
          ["Last run", (j) => {
            const last = pick(j, "last_run");
            return last ? [statusBadge(last.status), " ", h("a", { href: `#/runs/${encodeURIComponent(last.id)}` }, time(last.started))] : "never";
          }],
          ["Now", (j) => (j.running ? [statusBadge("running"), j.current_run ? [" ", h("a", { href: `#/runs/${encodeURIComponent(j.current_run.id)}` }, "follow")] : null] : "")],
          ["", (j) => (session.can(j.role_to_run || (OPERATOR_KINDS.has(j.kind) ? "operator" : "admin")) && !j.running ? runNow(j) : "")],
        ],
        jobs,
        { caption: "Scheduled jobs", empty: "No job is scheduled." },
      ),
    ));
    const byJob = new Map();
    for (const run of runs) {
      if (!byJob.has(run.job)) byJob.set(run.job, []);
      byJob.get(run.job).push(run);
    }
    const now = new Date().toISOString();
    keepFocus(timelineBox, () => fill(
      timelineBox,
      runs.length
        ? lanes(
            "Runs of each job over time, coloured by result",
            [...byJob.entries()].sort().map(([job, list]) => ({
              label: job,
              spans: list.map((r) => ({ start: r.started, end: r.finished || now, class: r.status, title: `${job} run ${r.id}: ${r.status}, ${duration(runSeconds(r))}` })),
            })),
            { now },
          )
        : h("p", { class: "empty" }, "No runs yet."),
    ));
    keepFocus(runsBox, () => fill(
      runsBox,
      table(
        [
          ["Run", (r) => h("a", { href: `#/runs/${encodeURIComponent(r.id)}`, "aria-label": `Run ${r.id} of ${r.job}` }, String(r.id).slice(0, 8))],
          ["Job", (r) => h("code", {}, r.job)],
          ["Result", (r) => statusBadge(r.status)],
          ["Started", (r) => time(r.started)],
          ["Duration", (r) => duration(runSeconds(r))],
          ["Trigger", (r) => `${r.trigger || ""}${r.attempt > 1 ? ` #${r.attempt}` : ""}`],
          ["Error", (r) => r.error || ""],
        ],
        runs,
        { caption: "Recent runs, newest first", empty: "No runs yet." },
      ),
    ));
  };
  await draw();
  const timer = setInterval(() => draw().catch(() => {}), REFRESH_MS);
  return () => clearInterval(timer);
}
