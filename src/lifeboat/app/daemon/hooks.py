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
SOURCE_KINDS = frozenset({"backup", "verify", "drill", "retention"})


class AlertsHook:
    """Job runs and archiving states as alert conditions: ``job:<job>`` and ``archiving:<source>``."""

    def __init__(
        self, config: Any, *, state_dir: str, environ: Any, log: Callable[[str], None], host: str | None = None
    ) -> None:
        from lifeboat.app.observability.alerts import Alerter

        self.alerter = Alerter(
            getattr(config, "alerts", None),
            state_path=Path(state_dir) / ALERTS_STATE_FILE,
            environ=environ,
            log=log,
            host=host,  # named in every message: several hosts may share a channel
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
            drill = result.record
            self.alerter.drill_finished(drill)
            rto, objective = getattr(drill, "rto", None), getattr(drill, "rto_objective", None)
            if rto is not None and objective is not None:
                met = rto <= objective
                self.alerter.observe(
                    Condition(
                        key=f"objective:{job.target}:rto",
                        healthy=met,
                        title=f"{job.target}: the drill's RTO {rto:.0f}s {'within' if met else 'over'} "
                        f"its objective {objective:.0f}s",
                        detail="" if met else "'lifeboat drill report' shows which phase took the time",
                        source=job.target,
                        severity="warning",
                    )
                )

    def health_checked(self, report: Any) -> None:
        """Each source's recovery point objective as the condition ``objective:<source>:rpo``:
        unhealthy while its newest restorable point is older than its ``rpo`` (a warning from
        the health check's warning fraction, critical past it, or when nothing is restorable)."""
        from lifeboat.app.observability.alerts import Condition

        for source in report.sources:
            if source.rpo is None:
                continue
            for check in source.checks:
                if check.name != "rpo" or check.state is State.UNKNOWN:
                    continue
                healthy = check.state is State.OK
                self.alerter.observe(
                    Condition(
                        key=f"objective:{source.name}:rpo",
                        healthy=healthy,
                        title=f"{source.name}: {check.summary}",
                        detail="" if healthy else check.hint,
                        source=source.name,
                        severity="critical" if check.state is State.CRITICAL else "warning",
                    )
                )

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
    repositories) and its result. After a run that succeeded, the log's head is anchored in the
    job's repository every ``audit.anchor_every`` entries, as the command line does (docs/audit.md)."""

    def __init__(
        self,
        config: Any,
        *,
        state_dir: str,
        open_repository: Callable[[str | None], Any] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        from lifeboat.app.observability.audit import DEFAULT_ANCHOR_EVERY, configured_log

        self.log = configured_log(config, state_dir)
        audit = getattr(config, "audit", None)
        self.anchor_every = int(getattr(audit, "anchor_every", DEFAULT_ANCHOR_EVERY))
        self._open_repository = open_repository
        self._warn = warn or (lambda text: None)
        self._repository_ids: dict[str | None, str] = {}

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
        if outcome.exit_code == 0:
            self._anchor_if_due(getattr(job, "repository", None))

    def _anchor_if_due(self, repository: str | None) -> None:
        """The head into ``repository`` when due; the repository is opened only then (its key
        derivation costs a moment), known repositories' last anchor read from the local note."""
        from lifeboat.core.auditchain import anchor_due
        from lifeboat.errors import LifeboatError

        if self.anchor_every <= 0 or self._open_repository is None:
            return
        head = self.log.head()
        if head is None:
            return
        known = self._repository_ids.get(repository)
        if known is not None and not anchor_due(head.seq, self.log.last_anchored(known), self.anchor_every):
            return
        try:
            repo = self._open_repository(repository)
            self._repository_ids[repository] = repo.header.repository_id
            self.log.anchor_if_due(repo, self.anchor_every)
        except LifeboatError as exc:
            self._warn(f"the audit log's anchor was not stored in the repository: {exc.message}")
        except Exception as exc:  # noqa: BLE001 - a hook never raises; the run's result stands
            self._warn(f"the audit log's anchor was not stored in the repository: {type(exc).__name__}: {exc}")
