"""List the recorded results of verify runs and drills, newest first: what each proved, for
which source, when, and whether it passed. Kept in the repository (they survive the loss of
this host) and cached in the state directory."""

from __future__ import annotations

from typing import Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Context, Option
from lifeboat.app.cli.options import NoLockOpt


def command(
    ctx: Context,
    kind: Annotated[
        str | None, Option("--kind", help="Only records of this kind (verify, drill, audit-anchor).")
    ] = None,
    source: Annotated[str | None, Option("--source", help="Only records of this source.")] = None,
    no_lock: NoLockOpt = False,
) -> None:
    from lifeboat.operations.read_lock import read_lock
    from lifeboat.operations.records import list_records, record_cache

    state: CliContext = ctx.obj
    out = state.output
    repo = state.open_repository(read_only=no_lock)
    with read_lock(repo, use_lock=not no_lock, operation="records"):
        listing = list_records(repo, kind=kind, source=source, cache=record_cache(state.state_directory(), repo))
    if state.json:
        out.emit_json(listing.to_json())
    else:
        rows = [
            [
                r.short_id,
                r.time.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                r.kind,
                r.source or "-",
                "ok" if r.ok else "FAILED",
                r.hostname,
                (r.summary.get("problems") or [""])[0][:80],
            ]
            for r in listing.records
        ]
        out.table(["ID", "Time", "Kind", "Source", "Result", "Host", "First problem"], rows)
    for record_id, problem in sorted(listing.unreadable.items()):
        out.info(f"warning: record {record_id[:8]} cannot be read: {problem}")
