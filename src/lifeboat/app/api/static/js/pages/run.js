// One run and its live log: the run (GET /api/v1/runs/{id}) and its events as server-sent
// events (GET /api/v1/runs/{id}/log, read from a fetch stream): past lines, then live ones until
// the run ends. The status is announced (aria-live) when the page opens and when it changes: a
// run that ended before its page was drawn (a short drill started from a button) is announced
// too.

import { api, describe, stream } from "../api.js";
import { bytes, duration, fill, h, pick, statusBadge, time } from "../dom.js";
import { runSeconds } from "./jobs.js";

const FINISHED = new Set(["succeeded", "failed", "cancelled", "timed-out", "interrupted"]);

export async function render(main, [id], { session, announce }) {
  const controller = new AbortController();
  let run = await api(`/api/v1/runs/${encodeURIComponent(id)}`);
  const status = h("p", { id: "run-status", role: "status", "aria-live": "polite" });
  const facts = h("dl", { class: "facts", id: "run-facts" });
  const summary = h("section", { class: "card", id: "run-summary", "aria-labelledby": "summary-h", hidden: true });
  const log = h("ol", { class: "log", id: "run-log", "aria-label": "Log", tabindex: "0" });
  const streamState = h("p", { class: "help", id: "stream-state" });
  const cancel = h(
    "button",
    {
      type: "button",
      class: "secondary",
      id: "cancel-run",
      onclick: async () => {
        cancel.disabled = true;
        try {
          await api(`/api/v1/runs/${encodeURIComponent(id)}/cancel`, { method: "POST" });
          announce(`Cancelling run ${id}…`);
        } catch (error) {
          announce(`Run ${id} was not cancelled: ${describe(error)}`);
          cancel.disabled = false;
        }
      },
    },
    "Cancel run",
  );

  const show = () => {
    fill(status, statusBadge(run.status), run.status === "running" ? " running…" : run.exit_code !== null && run.exit_code !== undefined ? ` exit code ${run.exit_code}` : "");
    fill(
      facts,
      h("dt", {}, "Job"),
      h("dd", {}, h("code", {}, run.job)),
      h("dt", {}, "Started"),
      h("dd", {}, time(run.started)),
      h("dt", {}, "Finished"),
      h("dd", {}, time(run.finished)),
      h("dt", {}, "Duration"),
      h("dd", {}, duration(runSeconds(run))),
      h("dt", {}, "Trigger"),
      h("dd", {}, `${run.trigger || ""}${run.attempt > 1 ? ` (attempt ${run.attempt})` : ""}`),
      h("dt", {}, "Host"),
      h("dd", {}, run.host || ""),
      run.bytes_read !== null && run.bytes_read !== undefined ? [h("dt", {}, "Read / added"), h("dd", {}, `${bytes(run.bytes_read)} / ${bytes(run.bytes_added)}`)] : null,
      run.error ? [h("dt", {}, "Error"), h("dd", { class: "over" }, run.error)] : null,
    );
    // What the run's operation reported (a drill's status and RTO, a backup's snapshot): its plain values.
    const plain = Object.entries(run.summary || {}).filter(([, v]) => ["string", "number", "boolean"].includes(typeof v));
    fill(summary, plain.length ? [h("h2", { id: "summary-h" }, "Result"), h("dl", { class: "facts" }, plain.map(([k, v]) => [h("dt", {}, k.replaceAll("_", " ")), h("dd", { "data-key": k }, String(v))]))] : null);
    summary.hidden = plain.length === 0;
    cancel.hidden = !(run.status === "running" && session.can("operator"));
  };

  const addLine = (data) => {
    const entry = typeof data === "object" && data !== null ? data : { message: String(data) };
    const severity = pick(entry, "level", "severity") || "info";
    log.append(h("li", { class: `sev-${severity}` }, time(pick(entry, "at", "time", "timestamp")), h("span", { class: "sev" }, `${severity} `), pick(entry, "message", "text") ?? JSON.stringify(entry)));
    log.scrollTop = log.scrollHeight;
  };

  const finish = async (final) => {
    const before = run.status;
    run = final && final.status ? { ...run, ...final } : await api(`/api/v1/runs/${encodeURIComponent(id)}`);
    show();
    if (before !== run.status) announce(`${run.job}: run ${id} ${run.status}.`);
  };

  fill(main, h("h1", {}, `Run ${String(id).slice(0, 8)}`), status, h("div", { class: "actions" }, cancel), h("section", { class: "card", "aria-labelledby": "run-h" }, h("h2", { id: "run-h" }, "Details"), facts), summary, h("section", { class: "card", "aria-labelledby": "log-h" }, h("h2", { id: "log-h" }, "Log"), streamState, log));
  show();
  announce(`${run.job}: run ${id} ${run.status}.`);

  (async () => {
    streamState.textContent = "Following the log…";
    try {
      await stream(
        `/api/v1/runs/${encodeURIComponent(id)}/log`,
        async ({ event, data }) => {
          if (event === "run") await finish(typeof data === "object" ? data : null);
          else if (event === "end") await finish(null); // the whole run again: its summary too
          else if (event === "dropped") log.append(h("li", { class: "sev-warning" }, `… ${data.count} earlier lines were not kept`));
          else addLine(data);
        },
        { signal: controller.signal },
      );
      if (!FINISHED.has(run.status)) await finish(null);
      streamState.textContent = log.children.length ? "The log is complete." : "The log is complete: this run logged no lines.";
    } catch (error) {
      if (controller.signal.aborted) return;
      streamState.textContent = `The live log stopped: ${describe(error)}`;
    }
  })();
  return () => controller.abort();
}
