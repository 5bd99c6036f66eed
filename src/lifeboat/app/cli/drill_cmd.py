"""Restore drills: restore each configured source into a scratch instance, start it, run its
validation queries, measure RTO phase by phase and the achieved RPO, tear it down, record the
result (docs/drills.md). Exit 13 when a drill fails (restore or validation), 17 when it
passed validation but missed its RTO, RPO or time limit. 'lifeboat drill report' shows the
history (text, JSON, Markdown, HTML)."""

from __future__ import annotations

from typing import Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Context, Exit, Option
from lifeboat.app.cli.options import NoLockOpt

SourcesOpt = Annotated[
    list[str] | None, Option("--source", "-s", metavar="SOURCE", help="Drill this configured source (repeatable).")
]
TargetOpt = Annotated[
    str | None,
    Option("--target", metavar="TARGET", help="latest, random or a time (ISO 8601) [default: drill.target]."),
]


def command(ctx: Context, source: SourcesOpt = None, target: TargetOpt = None) -> None:
    from lifeboat.app.cli.eventview import viewed
    from lifeboat.app.cli.pg_options import server_command
    from lifeboat.core.drill import DrillTarget, worst
    from lifeboat.errors import ExitCode, LifeboatError, UsageError
    from lifeboat.operations.backup import default_workers
    from lifeboat.operations.drill import DrillRequest, drill_and_record, drillable
    from lifeboat.operations.records import record_cache

    state: CliContext = ctx.obj
    out = state.output
    config = state.config()
    if config is None:
        raise UsageError("a drill needs the configuration file naming the sources", hint="pass --config FILE")
    if target is not None:
        try:
            DrillTarget.parse(target)
        except ValueError as exc:
            raise UsageError(f"--target: {exc}") from None
    names = drillable(config.sources, source or ())
    if not names:
        raise UsageError("no source to drill: none has a drill section or starts a scratch instance",
                         hint="add drill: to a source, or name one with --source")  # fmt: skip
    commands: dict[str, str] = {}
    for name in names:
        if config.sources[name].type == "postgres":
            commands[name], warnings = server_command(state, name, "wal-fetch", "%f", "%p")
            for warning in warnings:
                out.info(f"warning: {warning}")
    request = DrillRequest(
        target=target, restore_commands=commands, environment=state.environment(), workers=default_workers()
    )
    repo = state.open_repository()
    cache = record_cache(state.state_directory(), repo)
    results = []
    records: list[str | None] = []
    for name in names:
        out.info(f"drilling {name}…")
        with viewed(out, style=state.progress_style, signals=state.signals) as (events, _view):
            drilled = drill_and_record(repo, name, config.sources[name], request, cache=cache, events=events)
        result = drilled.result
        records.append(drilled.record)
        if drilled.not_recorded is not None:
            out.info(f"warning: the drill of {name} was not recorded in the repository: {drilled.not_recorded}")
        results.append(result)
        if not state.json:
            _show(state, result, records[-1])
    if state.json:
        drills = [{**r.to_json(), "record": record} for r, record in zip(results, records, strict=True)]
        out.emit_json({"drills": drills, "status": worst([r.status for r in results])})
    bad = [r for r in results if not r.ok]
    if bad:
        code = max(bad, key=lambda r: (r.exit_code == int(ExitCode.INTEGRITY), r.exit_code)).exit_code
        reasons = "; ".join(f"{r.source}: {r.status}: {'; '.join(r.reasons)}" for r in bad)
        error = LifeboatError(
            f"{len(bad)} of {len(results)} drills did not pass — {reasons}",
            hint="'lifeboat drill report' shows the history",
        )
        out.error(error, exit_code=code)
        raise Exit(code)


def _show(state: CliContext, result: object, record: str | None) -> None:
    from lifeboat.core.drill import DrillResult, seconds_text

    assert isinstance(result, DrillResult)
    out = state.output

    def maybe(seconds: float | None) -> str:
        return "-" if seconds is None else seconds_text(seconds)

    out.line(f"{result.source} ({result.kind}): {result.status.upper()}")
    out.line(f"  target: {result.target}; snapshot {result.snapshot[:8] or '-'}")
    out.line("  phases: " + (", ".join(f"{p.name} {seconds_text(p.seconds)}" for p in result.phases) or "none"))
    out.line(
        f"  RTO {maybe(result.rto)} (objective {maybe(result.rto_objective)}); "
        f"achieved RPO {maybe(result.achieved_rpo)} (objective {maybe(result.rpo_objective)})"
    )
    for query in result.queries:
        verdict = "ok" if query.ok else f"FAILED: {query.problem}"
        out.line(f"  query {query.name}: {query.value}: {verdict}")
    for note in result.notes:
        out.line(f"  note: {note}")
    for reason in result.reasons:
        out.line(f"  reason: {reason}")
    if record:
        out.line(f"  recorded: record {record[:8]}")


OnlySourcesOpt = Annotated[
    list[str] | None, Option("--source", "-s", metavar="SOURCE", help="Only this source (repeatable).")
]
FormatOpt = Annotated[str, Option("--format", "-f", metavar="FORMAT", help="text, json, markdown or html.")]
OutputOpt = Annotated[str | None, Option("--output", "-o", metavar="FILE", help="Write the report to FILE.")]


def report(
    ctx: Context,
    source: OnlySourcesOpt = None,
    fmt: FormatOpt = "text",
    output: OutputOpt = None,
    no_lock: NoLockOpt = False,
) -> None:
    """The drill history as text, JSON, Markdown or one self-contained HTML page (with the RTO trend)."""
    from lifeboat.core.drill_report import FORMATS, render
    from lifeboat.errors import LifeboatError, UsageError
    from lifeboat.operations.drill import drill_history
    from lifeboat.operations.read_lock import read_lock
    from lifeboat.operations.records import record_cache

    state: CliContext = ctx.obj
    if state.json and not output:
        fmt = "json"  # the report is the one JSON document; with --output, the file gets --format
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    repo = state.open_repository(read_only=no_lock)
    with read_lock(repo, use_lock=not no_lock, operation="drill report"):
        history, unreadable = drill_history(
            repo, sources=source or (), cache=record_cache(state.state_directory(), repo)
        )
    for record_id, problem in sorted(unreadable.items()):
        state.output.info(f"warning: record {record_id[:8]} cannot be read: {problem}")
    text = render(history, fmt)
    if output:
        try:
            with open(output, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            raise LifeboatError(
                f"cannot write the report to {output}: {exc.strerror or exc}",
                hint="name a file in a directory you can write to, or leave --output out for standard output",
            ) from None
        if state.json:
            state.output.emit_json({"output": output, "format": fmt, "drills": len(history)})
        else:
            state.output.info(f"wrote {len(history)} drills to {output}")
        return
    import sys

    sys.stdout.write(text)
