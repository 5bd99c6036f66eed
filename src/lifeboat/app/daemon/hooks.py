"""Who hears of each finished run and each archiving change besides the catalog and the log:
the alerter (docs/alerts.md) and the audit log (docs/audit.md). Each hook never raises."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lifeboat.app.daemon.archiving import ArchivingState
from lifeboat.app.daemon.runner import RunOutcome
from lifeboat.core.health import State

ALERTS_STATE_FILE = "alerts-state.json"
AUDIT_FILE = "audit.jsonl"
SOURCE_KINDS = frozenset({"backup", "verify", "drill", "retention"})


class AlertsHook:
    """Job runs and archiving states as alert conditions: ``job:<job>`` and ``archiving:<source>``."""

    def __init__(self, config: Any, *, state_dir: str, environ: Any, log: Callable[[str], None]) -> None:
        from lifeboat.app.observability.alerts import Alerter

        self.alerter = Alerter(
            getattr(config, "alerts", None), state_path=Path(state_dir) / ALERTS_STATE_FILE, environ=environ, log=log
        )

    def run_finished(self, outcome: RunOutcome) -> None:
        from lifeboat.app.observability.alerts import Condition

        if outcome.status == "cancelled":  # the daemon stopping is nobody's failure
            return
        job = outcome.request.job
        healthy = outcome.status == "succeeded"
        verb = "succeeded" if healthy else outcome.status
        detail = (
            f"exit code {outcome.exit_code}: {outcome.error}" if outcome.error else f"exit code {outcome.exit_code}"
        )
        self.alerter.observe(
            Condition(
                key=f"job:{job.name}",
                healthy=healthy,
                title=f"{job.kind} of {job.target} {verb}",
                detail="" if healthy else detail,
                source=job.target if job.kind in SOURCE_KINDS else None,
            )
        )
        result = outcome.result
        if job.kind == "drill" and result is not None and result.record is not None:
            self.alerter.drill_finished(result.record)

    def archiving_changed(self, state: ArchivingState) -> None:
        from lifeboat.app.observability.alerts import Condition

        self.alerter.observe(
            Condition(
                key=f"archiving:{state.source}",
                healthy=state.healthy,
                title=f"WAL archiving of {state.source}: {state.state.name}",
                detail="\n".join(part for part in (state.summary, state.hint) if part),
                source=state.source,
                severity="critical" if state.state is State.CRITICAL else "warning",
            )
        )

    def close(self, timeout: float) -> None:
        self.alerter.close(timeout)


class AuditHook:
    """Each run as an audit entry: the daemon's OS user (and the API token's name for a run asked
    for through the API), the job's command verb, its argv (no secret: names of sources and
    repositories) and its result."""

    def __init__(self, config: Any, *, state_dir: str) -> None:
        from lifeboat.app.observability.audit import AuditLog

        audit = getattr(config, "audit", None)
        path = getattr(audit, "path", None) or str(Path(state_dir) / AUDIT_FILE)
        self.log = AuditLog(path)

    def run_finished(self, outcome: RunOutcome) -> None:
        from lifeboat.app.observability.audit import Actor, os_user
        from lifeboat.core.auditchain import status_of

        job = outcome.request.job
        argv = list(getattr(job, "argv", ()) or (job.kind,))
        self.log.append(
            actor=Actor(os_user(), token=outcome.request.actor),
            action=argv[0],
            arguments={
                "argv": argv,
                "job": job.name,
                "trigger": outcome.request.trigger,
                "attempt": outcome.request.attempt,
                "run": outcome.run_id,
            },
            result={"status": status_of(outcome.exit_code), "exit_code": outcome.exit_code, "error": outcome.error},
        )
