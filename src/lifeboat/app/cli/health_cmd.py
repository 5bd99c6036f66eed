"""Health against objectives: each source's newest restorable point against its rpo, the
PostgreSQL archiver and backlog, the repository (reachable, free space, stale locks), the
last verify and drill. A table, --json, --nagios (one status line with perfdata) or
--prometheus FILE (node exporter's textfile collector). The exit code always follows the
Nagios plugin conventions: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (docs/health.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Context, Exit, Option
from lifeboat.app.cli.options import SourceOpt

if TYPE_CHECKING:
    from lifeboat.operations.health import HealthReport


def command(
    ctx: Context,
    source: SourceOpt = None,
    nagios: Annotated[bool, Option("--nagios", help="Print one Nagios status line with performance data.")] = False,
    prometheus: Annotated[
        str | None,
        Option("--prometheus", metavar="FILE", help="Also write the metrics to FILE (Prometheus text format)."),
    ] = None,
    no_cluster: Annotated[
        bool, Option("--no-cluster", help="Do not connect to PostgreSQL clusters (repository checks only).")
    ] = False,
) -> None:
    from lifeboat.app.observability.nagios import status_line, unknown_line
    from lifeboat.core.health import State
    from lifeboat.errors import LifeboatError, cli_flag
    from lifeboat.operations.health import HealthRequest, check_health
    from lifeboat.operations.health_records import latest_results

    state: CliContext = ctx.obj
    out = state.output
    try:
        config = state.config()
    except LifeboatError as exc:  # health answers in its own exit codes: a check that cannot run is UNKNOWN
        if nagios:
            out.raw(unknown_line(exc.spelled(cli_flag)[0]))
        else:
            out.error(exc, exit_code=int(State.UNKNOWN))
        raise Exit(int(State.UNKNOWN)) from None
    directory = state.state_directory()
    configs: dict[str, Any] = dict(config.sources) if config is not None else {}
    request = HealthRequest(
        configs=configs,
        selected=tuple(source or ()),
        state_directory=directory,
        probe=None if no_cluster else _prober(),
        results=lambda repo: latest_results(repo, directory),
    )
    report = check_health(lambda: state.open_repository(read_only=True), request)
    unwritten: LifeboatError | None = None
    if prometheus:
        from lifeboat.app.observability.metrics import MetricsInput, write_textfile

        try:
            write_textfile(MetricsInput(health=report), prometheus)
        except OSError as exc:
            unwritten = LifeboatError(
                f"cannot write the metrics to {prometheus}: {exc.strerror or exc}",
                hint="the directory must exist and be writable by this user (node exporter's textfile directory)",
            )
    if nagios:
        out.raw(status_line(report))
    elif state.json:
        out.emit_json(report.to_json())
    else:
        _table(state, report)
    if unwritten is not None:  # the metrics were the point: never a silent OK
        out.error(unwritten, exit_code=int(State.UNKNOWN))
        raise Exit(int(report.state if report.state is not State.OK else State.UNKNOWN))
    if report.state is not State.OK:
        if not nagios:  # a plugin's output is its one line; elsewhere a non-zero exit comes with its error line
            hint = next((c.hint for c in report.problems() if c.hint), "") or "'lifeboat health' lists every check"
            out.error(
                LifeboatError(f"health is {report.state.name}: {report.headline()}", hint=hint),
                exit_code=int(report.state),
            )
        raise Exit(int(report.state))


def _prober() -> Any:
    """How a postgres source's cluster is asked: its configured connection over libpq's PG* variables."""
    from lifeboat.operations.health_pg import probe_source

    return probe_source


def _table(state: CliContext, report: HealthReport) -> None:
    out = state.output  # --quiet prints nothing: the exit code (and --prometheus) say it
    out.line(f"{report.state.name}: {report.headline()}")
    rows: list[list[str]] = []
    hints: list[str] = []
    unconfigured = {s.name for s in report.sources if not s.configured}
    for check in report.checks:
        subject = check.subject + (" (unconfigured)" if check.subject in unconfigured else "")
        rows.append([subject, check.name, check.state.name, check.summary])
        if check.hint and check.state.name != "OK":
            hints.append(f"{subject} {check.name}: {check.hint}")
    out.line("")
    out.table(["SUBJECT", "CHECK", "STATE", "DETAIL"], rows)
    if hints:
        out.line("")
        out.line("what to do:")
        for hint in hints:
            out.line(f"  {hint}")
