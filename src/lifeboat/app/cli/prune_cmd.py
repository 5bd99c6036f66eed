"""Remove data no snapshot uses; repack half-empty packs (takes the exclusive lock)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Context, Option
from lifeboat.app.cli.options import LockWaitOpt

if TYPE_CHECKING:
    from lifeboat.repository.gc import PruneResult
    from lifeboat.repository.repo import Repository


def command(
    ctx: Context,
    dry_run: Annotated[bool, Option("--dry-run", "-n", help="Only show what would be removed.")] = False,
    safety_margin: Annotated[
        str, Option(help="Keep packs no index lists until they are this old (interrupted backups).")
    ] = "1h",
    repack_threshold: Annotated[str, Option(help="Repack packs with more than this unused.")] = "10%",
    lock_wait: LockWaitOpt = None,
) -> None:
    from lifeboat.core.units import parse_duration, parse_percent
    from lifeboat.errors import UsageError

    state: CliContext = ctx.obj
    try:
        margin = parse_duration(safety_margin)
        threshold = parse_percent(repack_threshold)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    repo = state.open_repository()
    wait = state.lock_wait(lock_wait)
    result = run_prune(state, repo, dry_run=dry_run, margin=margin, threshold=threshold, lock_wait=wait)
    if state.json:
        state.output.emit_json(prune_json(result, dry_run=dry_run))
    else:
        render_prune(state, result, dry_run=dry_run)


def run_prune(
    state: CliContext,
    repo: Repository,
    *,
    dry_run: bool,
    margin: timedelta,
    threshold: float,
    lock_wait: float,
) -> PruneResult:
    from lifeboat.app.cli.eventview import viewed
    from lifeboat.operations.maintenance import prune

    with viewed(state.output, style=state.progress_style, signals=state.signals) as (events, _view):
        return prune(
            repo,
            now=repo.clock(),
            dry_run=dry_run,
            margin=margin,
            repack_threshold=threshold,
            lock_wait=lock_wait,
            events=events,
        )


def prune_json(result: PruneResult, *, dry_run: bool) -> dict[str, Any]:
    return {"dry_run": dry_run, **result.to_json()}


def render_prune(state: CliContext, result: PruneResult, *, dry_run: bool) -> None:
    from lifeboat.core.units import format_bytes

    out = state.output
    plan = result.plan
    out.line(f"used blobs: {plan.blobs_used}")
    for action, label in (
        ("keep", "keep"),
        ("delete", "remove (unused)"),
        ("repack", "repack (partly used)"),
        ("orphan-delete", "remove (left by interrupted backups)"),
        ("orphan-keep", "keep for now (unindexed, younger than the safety margin)"),
    ):
        packs = plan.of(action)
        if packs:
            out.line(f"  {label}: {len(packs)} packs, {format_bytes(plan.bytes_of(action))}")
    if plan.temporaries:
        size = format_bytes(sum(t.size for t in plan.temporaries))
        count = len(plan.temporaries)
        out.line(f"  remove (temporary files of interrupted writers): {count} file{'s' if count != 1 else ''}, {size}")
    if plan.consolidate:
        out.line(f"  rewrite the index: {plan.consolidate} small index files into fewer")
    if dry_run:
        out.line("dry run: nothing was changed")
        return
    removed = f"removed {result.packs_deleted} packs"
    if result.temporaries_removed:
        removed += f" and {result.temporaries_removed} temporary files"
    out.line(f"{removed}, freed {format_bytes(result.bytes_freed)}")
    for name in result.not_removed:
        out.line(f"  could not remove yet (the storage refuses, e.g. object lock): {name}")
    bundle = result.bundle
    if bundle is not None and bundle.written is not None:
        out.line(f"bundled {bundle.snapshots} snapshots in one object ({bundle.fetched} read one by one)")
    for name in bundle.not_removed if bundle is not None else []:
        out.line(f"  could not remove yet (the storage refuses, e.g. object lock): {name}")
    locks = result.object_locks
    if locks is not None and locks.until is not None:
        days = locks.period.total_seconds() / 86400
        out.line(
            f"object lock: {locks.objects} objects that snapshots of the last {days:g} day{'s' if days != 1 else ''} "
            f"need stay locked until at least {locks.until:%Y-%m-%d %H:%M} UTC ({locks.extended} extended now)"
        )
        for name in locks.failed:
            out.line(f"  could not extend the lock of {name}")
