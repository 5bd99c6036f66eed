"""Show what changed between two snapshots (+ added, - removed, M modified, U metadata); or,
with --live SOURCE [SNAPSHOT], between a files or config source's newest snapshot and the
host's files now (+ added, - removed, M content, U mode/owner, * a secret changed). No content
is shown unless --content asks (then a text diff of each changed file, never of a secret).
Run 'diff --live' before you restore over /etc."""

from __future__ import annotations

from typing import Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Argument, Context, Option
from lifeboat.app.cli.options import NoLockOpt


def command(
    ctx: Context,
    first: Annotated[str, Argument(help="The older snapshot (with --live: the source).")],
    second: Annotated[
        str | None, Argument(help="The newer snapshot (with --live: the snapshot, default the newest).")
    ] = None,
    live: Annotated[
        bool, Option("--live", help="Compare the host's files now with SOURCE's newest snapshot (or SNAPSHOT).")
    ] = False,
    content: Annotated[
        bool,
        Option("--content", help="With --live: a unified diff of each changed text file (never of a secret)."),
    ] = False,
    no_lock: NoLockOpt = False,
) -> None:
    from collections import Counter

    from lifeboat.errors import UsageError
    from lifeboat.operations.browse import change_symbol, diff_trees
    from lifeboat.operations.read_lock import read_lock

    state: CliContext = ctx.obj
    if live:
        _live(state, first, second, content=content, no_lock=no_lock)
        return
    if content:
        raise UsageError("--content goes with --live", hint="lifeboat diff --live SOURCE --content")
    if second is None:
        raise UsageError(
            "diff: give two snapshots", hint="or 'lifeboat diff --live SOURCE' to compare with the host's files"
        )
    repo = state.open_repository(read_only=no_lock)
    with read_lock(repo, use_lock=not no_lock):
        old, new = repo.resolve_snapshot(first), repo.resolve_snapshot(second)
        changes = list(diff_trees(repo, old.tree, new.tree))
    counts = Counter(c.kind for c in changes)
    if state.json:
        state.output.emit_json(
            {"from": old.id, "to": new.id, "changes": [c.to_json() for c in changes], "counts": dict(counts)}
        )
        return
    for change in changes:
        state.output.raw(f"{change_symbol(change.kind)}  {change.path}")
    state.output.line(
        f"{counts['added']} added, {counts['removed']} removed, {counts['modified']} modified, "
        f"{counts['metadata']} with changed metadata"
    )


_LIVE_SYMBOLS = {"added": "+", "removed": "-", "content": "M", "metadata": "U", "changed": "*"}


def _live(state: CliContext, source: str, snapshot: str | None, *, content: bool, no_lock: bool) -> None:
    """``diff --live SOURCE [SNAPSHOT]``: the configured source's patterns choose what a backup takes."""
    from lifeboat.config.resolve import configured_source
    from lifeboat.core.host import this_host
    from lifeboat.operations.live_diff import LiveDiffRequest, live_diff

    entry = configured_source(state.config(), source)
    includes = tuple(getattr(entry, "include", ()) or ())
    excludes = tuple(getattr(entry, "exclude", ()) or ())
    secrets = getattr(entry, "secrets", None)
    request = LiveDiffRequest(
        source=source,
        snapshot=snapshot,
        includes=includes,
        excludes=excludes,
        one_file_system=bool(getattr(entry, "one_file_system", False)),
        secrets=tuple(secrets) if secrets is not None else None,
        hostname=this_host(),
        content=content,
    )
    if entry is not None and entry.repository and not state.repo:
        state.repo = entry.repository
    repo = state.open_repository(read_only=no_lock)
    found = live_diff(repo, request, use_lock=not no_lock)
    if state.json:
        state.output.emit_json(found.to_json())
        return
    for change in found.changes:
        note = ""
        if change.secret and change.change == "changed":
            note = "  (secret: changed; its content is never shown)" if content else "  (secret: changed)"
        details = f"  ({', '.join(change.details)})" if change.details else ""
        suffix = "/" if change.type == "dir" else ""
        state.output.raw(f"{_LIVE_SYMBOLS[change.change]}  {change.path}{suffix}{details}{note}")
        for line in change.text_diff or ():
            state.output.raw(f"    {line}")
    for path in found.unreadable:
        state.output.info(f"warning: {path}: cannot be read; its content was not compared")
    counts = found.counts()
    state.output.line(
        f"against snapshot {found.snapshot.short_id} of {found.snapshot.time.isoformat(timespec='seconds')}: "
        f"{counts['added']} added, {counts['removed']} removed, {counts['content']} with changed content, "
        f"{counts['metadata']} with changed mode or owner, {counts['changed']} secrets changed"
    )
