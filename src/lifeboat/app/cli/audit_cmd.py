"""The audit log: who ran what, when, with which arguments and result — hash-chained JSON
lines, anchored in the repository (docs/audit.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Context, Option

if TYPE_CHECKING:
    from lifeboat.app.observability.audit import AuditLog

FileOpt = Annotated[
    str | None,
    Option("--file", metavar="PATH", help="The audit log to read (default: audit.path, else <state dir>/audit.jsonl)."),
]


def _log(state: CliContext, file: str | None) -> AuditLog:
    from lifeboat.app.cli.audit_hook import settings
    from lifeboat.app.observability.audit import AuditLog

    return AuditLog(file or settings(state).path)


def _has_repository(state: CliContext) -> bool:
    from lifeboat.config.resolve import repository_target

    return repository_target(state.config(), state.repo) is not None


def verify(
    ctx: Context,
    file: FileOpt = None,
    no_anchors: Annotated[
        bool, Option("--no-anchors", help="Check the chain only, not against the repository's anchors.")
    ] = False,
) -> None:
    """Check the log's hash chain (and its anchors in the repository, when one is given):
    names each edited, missing, reordered or malformed entry and a cut or rewritten log; exit 13."""
    from lifeboat.errors import IntegrityError

    state: CliContext = ctx.obj
    out = state.output
    log = _log(state, file)
    with_anchors = False
    if not no_anchors and _has_repository(state):
        from lifeboat.operations.audit_anchors import list_anchors
        from lifeboat.operations.records import record_cache

        repo = state.open_repository(read_only=True)
        head = log.head()
        anchors = list_anchors(
            repo,
            log=head.log if head else None,
            host=head.host if head else log.host,
            path=str(log.path.absolute()),
            cache=record_cache(state.state_directory(), repo),
        )
        with_anchors = True
        result = log.verify(anchors.own, anchors.replaced)
    else:
        result = log.verify()
    findings = result.findings or []
    if state.json:
        out.emit_json({"file": str(log.path), **result.to_json()})
    else:
        for finding in findings:
            out.line(f"line {finding.line}: {finding.message}" if finding.line else finding.message)
        if result.intact:
            checked = f", {result.anchors_checked} anchors in the repository matched" if with_anchors else ""
            out.line(f"audit log {log.path}: {result.entries} entries, chain intact{checked}")
    if findings:
        raise IntegrityError(
            f"the audit log {log.path} is not intact: {len(findings)} finding{'s' if len(findings) > 1 else ''}",
            hint="keep this file as evidence; the lines named show where it was changed",
        )


def _since(text: str) -> Any:
    """A time (ISO 8601; local time without a zone) or a duration back from now (``2d``)."""
    from datetime import UTC, datetime

    from lifeboat.core.units import parse_duration
    from lifeboat.errors import UsageError, option

    try:
        return datetime.now(UTC) - parse_duration(text)
    except ValueError:
        pass
    try:
        cleaned = text.strip().replace("T", " ")
        if cleaned.endswith(("Z", "z")):
            cleaned = cleaned[:-1] + "+00:00"
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise UsageError(
            f"{option('since')}: {text!r} is neither a time nor a duration",
            hint="e.g. 2026-11-30, '2026-11-30 08:00', 12h or 7d",
        ) from None
    return moment if moment.tzinfo else moment.astimezone()


def show(
    ctx: Context,
    file: FileOpt = None,
    since: Annotated[
        str | None, Option("--since", metavar="WHEN", help="Only entries from this time (or this long ago: 7d).")
    ] = None,
    action: Annotated[
        str | None, Option("--action", metavar="ACTION", help="Only this command (restore: every restore kind).")
    ] = None,
    limit: Annotated[int, Option("--limit", metavar="N", min=1, help="At most this many, the newest.")] = 50,
) -> None:
    """List the log's entries, oldest first (the newest --limit of them)."""
    from datetime import datetime

    state: CliContext = ctx.obj
    out = state.output
    entries = _log(state, file).entries()
    if since is not None:
        start = _since(since)

        def after(entry: dict[str, Any]) -> bool:
            try:
                return bool(datetime.fromisoformat(str(entry.get("time"))) >= start)
            except ValueError:
                return False

        entries = [e for e in entries if after(e)]
    if action is not None:
        entries = [
            e
            for e in entries
            if str(e.get("action", "")) in (action,) or str(e.get("action", "")).startswith(action + " ")
        ]
    entries = entries[-limit:]
    if state.json:
        out.emit_json(entries)
        return
    rows = []
    for entry in entries:
        actor, result = entry.get("actor") or {}, entry.get("result") or {}
        who = str(actor.get("user", "?")) + (f" (token {actor['token']})" if actor.get("token") else "")
        status = str(result.get("status", "?"))
        if result.get("exit_code") not in (0, None):
            status += f" ({result.get('exit_code')})"
        rows.append(
            [str(entry.get("seq", "?")), str(entry.get("time", ""))[:19], who, str(entry.get("action", "")), status]
        )
    out.table(["Seq", "Time (UTC)", "User", "Action", "Result"], rows)


def anchor(ctx: Context) -> None:
    """Store the log's head (its last entry's number and hash) in the repository now."""
    state: CliContext = ctx.obj
    out = state.output
    log = _log(state, None)
    repo = state.open_repository()
    stored = log.anchor(repo)
    if state.json:
        out.emit_json({"file": str(log.path), "anchor": stored.to_json() if stored else None})
    elif stored is None:
        out.line(f"audit log {log.path} has no entries to anchor")
    else:
        out.line(f"anchored entry {stored.seq} ({stored.hash[:16]}) of {log.path} in the repository")


COMMANDS = {"verify": verify, "show": show, "anchor": anchor}
