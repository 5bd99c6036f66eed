// The first page: every source — its newest restorable point and its age against the RPO, the
// last drill's restore time against the RTO, green/amber/red with the reason, and what to do
// when it is not green. One call: GET /api/v1/overview, again every 30 s.

import { actionButtons } from "../actions.js";
import { api } from "../api.js";
import { ageSeconds, duration, fill, h, pick, section, stateBadge, statusBadge, time } from "../dom.js";

const REFRESH_MS = 30000;

export async function render(main, _params, context) {
  let timer = null;
  const draw = async () => {
    const overview = await api("/api/v1/overview");
    const sources = pick(overview, "sources") || [];
    const counts = { green: 0, amber: 0, red: 0 };
    for (const src of sources) counts[pick(src, "state")] = (counts[pick(src, "state")] || 0) + 1;
    const worst = counts.red ? "red" : counts.amber ? "amber" : "green";
    fill(
      main,
      h("h1", {}, "Overview"),
      h(
        "p",
        { class: "subtitle", id: "summary" },
        stateBadge(sources.length ? worst : "unknown"),
        ` ${sources.length} source${sources.length === 1 ? "" : "s"}: ${counts.green} OK, ${counts.amber} warning, ${counts.red} needing action. As of `,
        time(pick(overview, "time", "generated_at", "now") || new Date()),
        ".",
      ),
      sources.length === 0 ? h("p", { class: "empty" }, "No sources are configured.") : h("div", { class: "grid-cards", id: "sources" }, sources.map((src) => sourceCard(src, context))),
      repositorySummary(pick(overview, "repository")),
    );
  };
  await draw();
  timer = setInterval(() => draw().catch(() => {}), REFRESH_MS);
  return () => clearInterval(timer);
}

function seconds(value) {
  if (value === undefined || value === null) return null;
  if (typeof value === "number") return value;
  return null;
}

function sourceCard(src, context) {
  const name = pick(src, "name", "source");
  const kind = pick(src, "kind");
  const state = pick(src, "state", "status") || "unknown";
  const newest = pick(src, "newest_restorable", "newest_restorable_point", "newest.time", "newest");
  const age = seconds(pick(src, "age_seconds", "rpo.age_seconds")) ?? ageSeconds(newest);
  const rpo = seconds(pick(src, "rpo_seconds", "rpo.objective_seconds", "rpo.seconds"));
  const drill = pick(src, "last_drill", "drill") || {};
  const rto = seconds(pick(src, "rto_seconds", "rto.objective_seconds", "rto.seconds"));
  const drillRto = seconds(pick(drill, "rto_seconds", "restore_seconds", "duration_seconds", "seconds") ?? pick(src, "last_drill_rto_seconds", "rto.last_seconds"));
  const reason = pick(src, "reason", "summary");
  const todo = pick(src, "what_to_do", "todo", "action", "hint");
  const runs = ["backup", "verify", "drill"].map((kind_) => [kind_, pick(src, `last_${kind_}_run`, `last_runs.${kind_}`, `runs.${kind_}`)]);
  return h(
    "article",
    { class: `card source-card state-${state}`, "data-source": name, "aria-labelledby": `src-${name}` },
    h("header", {}, h("h2", { id: `src-${name}` }, h("a", { href: `#/sources/${encodeURIComponent(name)}` }, name), " ", h("span", { class: "kind" }, kind)), stateBadge(state)),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Newest restorable"),
      h("dd", { class: "newest" }, time(newest)),
      h("dt", {}, "Age / RPO"),
      h("dd", { class: rpo !== null && age !== null && age > rpo ? "over" : "" }, `${duration(age)} / ${rpo === null ? "no RPO" : duration(rpo)}`),
      h("dt", {}, "Last drill / RTO"),
      h("dd", { class: rto !== null && drillRto !== null && drillRto > rto ? "over" : "" }, `${drillRto === null ? "no drill" : duration(drillRto)} / ${rto === null ? "no RTO" : duration(rto)}`),
      runs
        .filter(([, run]) => run)
        .map(([kind_, run]) => [
          h("dt", {}, `Last ${kind_}`),
          h("dd", {}, statusBadge(pick(run, "status")), " ", time(pick(run, "finished", "started", "time")), pick(run, "id") !== undefined ? [" ", h("a", { href: `#/runs/${pick(run, "id")}`, "aria-label": `Run ${pick(run, "id")}: the last ${kind_} of ${name}` }, `run ${pick(run, "id")}`)] : null),
        ]),
    ),
    reason && state !== "green" ? h("p", { class: "reason" }, reason) : null,
    todo && state !== "green" ? h("p", { class: `todo ${state}` }, h("strong", {}, "What to do: "), todo) : null,
    h(
      "p",
      { class: "links" },
      h("a", { href: `#/sources/${encodeURIComponent(name)}` }, "Snapshots"),
      kind === "postgres" ? [" · ", h("a", { href: `#/postgres/${encodeURIComponent(name)}` }, "Recoverable window")] : null,
    ),
    actionButtons(name, context),
  );
}

function repositorySummary(repo) {
  if (!repo) return null;
  return section(
    "Repository",
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Snapshots"),
      h("dd", {}, String(pick(repo, "snapshots") ?? "—")),
      h("dt", {}, "Reachable"),
      h("dd", {}, pick(repo, "reachable") === false ? "no" : "yes"),
    ),
    h("a", { href: "#/repository" }, "Growth and size"),
  );
}
