// The first page: every source — its newest restorable point and its age against the RPO, the
// last drill's restore time against the RTO, green/amber/red with the reason, and what to do
// when it is not green. One call: GET /api/v1/overview, again every 30 s.

import { actionButtons } from "../actions.js";
import { api } from "../api.js";
import { bytes, duration, fill, h, keepFocus, section, stateBadge, statusBadge, time } from "../dom.js";

const REFRESH_MS = 30000;

export async function render(main, _params, context) {
  let timer = null;
  const draw = async () => {
    const overview = await api("/api/v1/overview");
    const sources = overview.sources || [];
    const counts = { green: 0, amber: 0, red: 0 };
    for (const src of sources) counts[src.state] = (counts[src.state] || 0) + 1;
    keepFocus(main, () => fill(
      main,
      h("h1", {}, "Overview"),
      h(
        "p",
        { class: "subtitle", id: "summary" },
        stateBadge(overview.state),
        ` ${sources.length} source${sources.length === 1 ? "" : "s"}: ${counts.green} OK, ${counts.amber} warning, ${counts.red} needing action. Checked `,
        time(overview.checked),
        (overview.running || []).length ? `; running now: ${overview.running.join(", ")}` : "",
        ".",
      ),
      overview.headline ? h("p", { class: "headline" }, overview.headline) : null,
      sources.length === 0 ? h("p", { class: "empty" }, "No sources are configured.") : h("div", { class: "grid-cards", id: "sources" }, sources.map((src) => sourceCard(src, context))),
      repositorySummary(overview.repository),
    ));
  };
  await draw();
  timer = setInterval(() => draw().catch(() => {}), REFRESH_MS);
  return () => clearInterval(timer);
}

const n = (value) => (typeof value === "number" ? value : null);

function sourceCard(src, context) {
  const { name, kind } = src;
  const state = src.state || "unknown";
  const age = n(src.age_seconds);
  const rpo = n(src.rpo_seconds);
  const rto = n(src.rto_seconds);
  const drill = src.last_drill;
  const drillRto = drill ? n(drill.rto_seconds) : null;
  const drillObjective = rto ?? (drill ? n(drill.rto_objective_seconds) : null);
  const reasons = src.reasons || [];
  const actions = src.actions || [];
  const jobs = src.jobs || [];
  return h(
    "article",
    { class: `card source-card state-${state}`, "data-source": name, "aria-labelledby": `src-${name}` },
    h("header", {}, h("h2", { id: `src-${name}` }, h("a", { href: `#/sources/${encodeURIComponent(name)}` }, name), " ", h("span", { class: "kind" }, kind)), stateBadge(state)),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Newest restorable"),
      h("dd", { class: "newest" }, time(src.newest_restorable)),
      h("dt", {}, "Age / RPO"),
      h("dd", { class: `age ${rpo !== null && age !== null && age > rpo ? "over" : ""}` }, `${duration(age)} / ${rpo === null ? "no RPO" : duration(rpo)}`),
      h("dt", {}, "Last drill / RTO"),
      h(
        "dd",
        { class: `drill ${drillObjective !== null && drillRto !== null && drillRto > drillObjective ? "over" : ""}` },
        drill ? `${duration(drillRto)}${drill.ok ? "" : " (failed)"}` : "no drill",
        ` / ${drillObjective === null ? "no RTO" : duration(drillObjective)}`,
        drill ? [" · ", time(drill.time)] : null,
      ),
      h("dt", {}, "Snapshots"),
      h("dd", { class: "snapshots" }, String(src.snapshots ?? "—")),
      src.last_backup ? [h("dt", {}, "Last backup"), h("dd", {}, time(src.last_backup.time), src.last_backup.duration_seconds !== null ? ` in ${duration(src.last_backup.duration_seconds)}` : "")] : null,
      src.last_verify ? [h("dt", {}, "Last verify"), h("dd", {}, h("span", { class: `badge badge-${src.last_verify.ok ? "green" : "red"}` }, src.last_verify.ok ? "passed" : "failed"), " ", time(src.last_verify.time))] : null,
      jobs.map((job) => [
        h("dt", {}, h("code", {}, job.job)),
        h("dd", {}, job.running ? statusBadge("running") : job.last_status ? statusBadge(job.last_status) : "never ran", " ", time(job.last_run), job.last_duration_seconds !== null && job.last_duration_seconds !== undefined ? ` (${duration(job.last_duration_seconds)})` : ""),
      ]),
    ),
    state !== "green" && reasons.length ? h("ul", { class: "reason" }, reasons.map((r) => h("li", {}, r))) : null,
    state !== "green" && actions.length ? h("div", { class: `todo ${state}` }, h("strong", {}, "What to do:"), h("ul", {}, actions.map((a) => h("li", {}, a)))) : null,
    h(
      "p",
      { class: "links" },
      h("a", { href: `#/sources/${encodeURIComponent(name)}` }, "Snapshots"),
      kind === "postgres" ? [" · ", h("a", { href: `#/postgres/${encodeURIComponent(name)}` }, "Recoverable window")] : null,
    ),
    src.configured === false ? null : actionButtons(name, context),
  );
}

function repositorySummary(repo) {
  if (!repo) return null;
  return section(
    "Repository",
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "State"),
      h("dd", {}, stateBadge(repo.state)),
      h("dt", {}, "Snapshots"),
      h("dd", { id: "repo-snapshot-count" }, String(repo.snapshots ?? "—")),
      h("dt", {}, "Stored"),
      h("dd", {}, bytes(repo.data_bytes ?? repo.size_bytes)),
      h("dt", {}, "Free"),
      h("dd", {}, bytes(repo.free_bytes)),
    ),
    repo.state !== "green" && (repo.actions || []).length ? h("div", { class: `todo ${repo.state}` }, h("strong", {}, "What to do:"), h("ul", {}, repo.actions.map((a) => h("li", {}, a)))) : null,
    h("a", { href: "#/repository" }, "Growth and size"),
  );
}
