"""Show stored bytes, the bytes the snapshots represent, and the deduplication ratio."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Context, Exit
from lifeboat.app.cli.options import HostOpt, NoLockOpt, SourceOpt, TagOpt, snapshot_filter

if TYPE_CHECKING:
    from lifeboat.operations.maintenance import RepositoryStats


def command(
    ctx: Context, source: SourceOpt = None, host: HostOpt = None, tag: TagOpt = None, no_lock: NoLockOpt = False
) -> None:
    from lifeboat.errors import ExitCode, IntegrityError
    from lifeboat.operations.maintenance import stats

    state: CliContext = ctx.obj
    repo = state.open_repository(read_only=no_lock, cached=True)
    result = stats(repo, selection=snapshot_filter(source, host, tag), use_lock=not no_lock)
    if state.json:
        state.output.emit_json(result.to_json())
    else:
        _render(state, result)
    if result.problems:
        state.output.error(
            IntegrityError(
                f"{len(result.problems)} snapshots were left out of the statistics (listed above)",
                hint="'lifeboat check' checks the repository; 'lifeboat forget ID' removes a snapshot",
            )
        )
        raise Exit(int(ExitCode.INTEGRITY))


def _render(state: CliContext, result: RepositoryStats) -> None:
    from lifeboat.core.units import format_bytes

    out = state.output
    for problem in result.problems:
        out.raw(f"error: {problem}")
    out.line(f"snapshots:            {result.snapshots}")
    out.line(f"files (all snapshots): {result.files}")
    out.line(f"restore size:         {format_bytes(result.restore_bytes)}")
    out.line(f"unique data:          {format_bytes(result.unique_bytes)} in {result.blobs} blobs")
    out.line(f"stored:               {format_bytes(result.stored_bytes)} in {result.packs} packs")
    out.line(f"deduplication ratio:  {result.dedup_ratio:.2f}x")
    out.line(f"compression ratio:    {result.compression_ratio:.2f}x")
    out.line(f"total ratio:          {result.total_ratio:.2f}x")
