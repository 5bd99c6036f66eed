// The buttons that start work: a backup, a verify or a drill of a source. Offered only to an
// operator or an admin (GET /api/v1/whoami); the API refuses a viewer anyway. Restores are not
// here: they stay on the command line.

import { api, describe } from "./api.js";
import { h } from "./dom.js";

const LABELS = { backup: "Start backup", verify: "Start verify", drill: "Start drill" };

/** POST the action; the run id the API answers with. */
export async function start(kind, source) {
  const answer =
    kind === "drill"
      ? await api("/api/v1/drills", { method: "POST", body: { source } })
      : await api(`/api/v1/jobs/${encodeURIComponent(`${kind}:${source}`)}/run`, { method: "POST" });
  return answer && (answer.run_id ?? answer.run ?? answer.id);
}

/** The action buttons for a source, or nothing for a viewer. */
export function actionButtons(source, { session, announce, navigate }, kinds = ["backup", "verify", "drill"], { named = false } = {}) {
  if (!session.can("operator")) return null;
  const buttons = kinds.map((kind) =>
    h(
      "button",
      {
        type: "button",
        class: kind === "backup" ? "" : "secondary",
        "data-action": kind,
        "data-source": source,
        "aria-label": named ? null : `${LABELS[kind]} of ${source}`,
        onclick: async (event) => {
          const button = event.currentTarget;
          button.disabled = true;
          announce(`Starting the ${kind} of ${source}…`);
          try {
            const run = await start(kind, source);
            announce(`The ${kind} of ${source} started: run ${run}.`);
            if (run !== undefined && run !== null) navigate(`#/runs/${encodeURIComponent(run)}`);
          } catch (error) {
            announce(`The ${kind} of ${source} did not start: ${describe(error)}`);
          } finally {
            button.disabled = false;
          }
        },
      },
      named ? `${LABELS[kind]}: ${source}` : LABELS[kind],
    ),
  );
  return h("div", { class: "actions", role: "group", "aria-label": `Actions for ${source}` }, buttons);
}
