"""Remove snapshots by retention policy (or by id); --dry-run shows what is kept and why.

A policy applied to PostgreSQL base backups also expires the archived WAL no remaining
base backup needs, and says which range of each timeline goes and why."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Argument, Context, Option
from lifeboat.app.cli.options import HostOpt, LockWaitOpt, PathOpt, SourceOpt, TagOpt, snapshot_filter

if TYPE_CHECKING:
    from lifeboat.operations.maintenance import ForgetResult

Keep = Annotated[int, Option(min=-1, metavar="N", help="Keep N (-1: every period).")]


def command(
    ctx: Context,
    snapshot_ids: Annotated[list[str] | None, Argument(help="Remove exactly these snapshots.")] = None,
    keep_last: Keep = 0,
    keep_hourly: Keep = 0,
    keep_daily: Keep = 0,
    keep_weekly: Keep = 0,
    keep_monthly: Keep = 0,
    keep_yearly: Keep = 0,
    keep_within: Annotated[str | None, Option(metavar="DURATION", help="Keep all younger than this (e.g. 7d).")] = None,
    keep_tag: Annotated[list[str] | None, Option(metavar="TAG", help="Keep snapshots with this tag.")] = None,
    recovery_window: Annotated[
        str | None,
        Option(
            metavar="DURATION",
            help="Keep what makes any point of this last time restorable (e.g. 14d): PostgreSQL base backups "
            "inside it and the newest one before it.",
        ),
    ] = None,
    source: SourceOpt = None,
    host: HostOpt = None,
    tag: TagOpt = None,
    path: PathOpt = None,
    dry_run: Annotated[bool, Option("--dry-run", "-n", help="Only show what would be removed.")] = False,
    prune_after: Annotated[bool, Option("--prune", help="Run prune afterwards.")] = False,
    lock_wait: LockWaitOpt = None,
) -> None:
    from lifeboat.config.resolve import retention_for, retention_given
    from lifeboat.errors import LifeboatError, UsageError
    from lifeboat.operations.maintenance import forget, forget_ids

    state: CliContext = ctx.obj
    out = state.output
    given = retention_given(
        keep_last=keep_last,
        keep_hourly=keep_hourly,
        keep_daily=keep_daily,
        keep_weekly=keep_weekly,
        keep_monthly=keep_monthly,
        keep_yearly=keep_yearly,
        keep_within=keep_within,
        keep_tags=tuple(keep_tag or ()),
        recovery_window=recovery_window,
    )
    repo = state.open_repository(cached=dry_run)  # what is removed is judged from the storage itself
    wait = state.lock_wait(lock_wait)
    if snapshot_ids:
        if not given.is_empty:
            raise UsageError("give snapshot ids or a retention policy, not both")
        result = forget_ids(repo, snapshot_ids, dry_run=dry_run, lock_wait=wait)
    else:
        policy_for = retention_for(state.config(), given)
        result = forget(
            repo,
            policy_for,
            selection=snapshot_filter(source, host, tag, path),
            now=repo.clock(),
            tz=repo.clock().astimezone().tzinfo or repo.clock().tzinfo,  # type: ignore[arg-type]
            dry_run=dry_run,
            lock_wait=wait,
        )
    if prune_after and not dry_run:
        # One JSON document for the whole command: the forget result with the prune's inside.
        from lifeboat.app.cli.output import error_document
        from lifeboat.app.cli.prune_cmd import prune_json, render_prune, run_prune

        if not state.json:
            _render(state, result, dry_run=dry_run)
        try:
            pruned = run_prune(state, repo, dry_run=False, margin=timedelta(hours=1), threshold=0.10, lock_wait=wait)
        except LifeboatError as exc:
            if state.json:  # the snapshots are gone even so: say which, and why prune failed
                out.emit_json({**result.to_json(), "prune": error_document(exc)})
            raise
        if state.json:
            out.emit_json({**result.to_json(), "prune": prune_json(pruned, dry_run=False)})
        else:
            render_prune(state, pruned, dry_run=False)
        return
    if state.json:
        out.emit_json(result.to_json())
    else:
        _render(state, result, dry_run=dry_run)


def _render(state: CliContext, result: ForgetResult, *, dry_run: bool) -> None:
    from lifeboat.app.cli.render import local_time

    out = state.output
    for (group_source, group_host), decisions in result.groups.items():
        out.line(f"{group_source} on {group_host} ({result.policies.get((group_source, group_host), '')}):")
        for decision in decisions:
            verdict = "keep  " if decision.keep else "remove"
            why = ", ".join(decision.reasons)
            out.line(f"  {verdict} {decision.snapshot.short_id} {local_time(decision.snapshot.time)}  {why}")
    verb = "would remove" if dry_run else "removed"
    doomed = sum(1 for group in result.groups.values() for d in group if not d.keep) or len(result.removed)
    out.line(f"{verb} {doomed - len(result.not_removed)} snapshots")
    for snapshot_id in result.not_removed:
        out.line(f"  could not remove yet (the storage refuses, e.g. object lock): snapshot {snapshot_id[:8]}")
    _render_wal(state, result, dry_run=dry_run)


def _render_wal(state: CliContext, result: ForgetResult, *, dry_run: bool) -> None:
    from lifeboat.core.units import format_bytes

    out = state.output
    verb = "would remove" if dry_run else "removed"
    for expiry in result.wal:
        if not expiry.removed:
            out.line(f"WAL of system {expiry.system_id}: nothing to remove ({expiry.reason})")
            continue
        out.line(
            f"WAL of system {expiry.system_id}: {verb} {len(expiry.removed)} files, "
            f"{format_bytes(expiry.removed_bytes)}: {expiry.reason}"
        )
        for r in expiry.ranges:
            out.line(f"  timeline {r.timeline}: {r.first} .. {r.last} ({r.files} files)")
