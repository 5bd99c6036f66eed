"""Verify backups by what they hold: each snapshot checked by the kind of source that made
it (a dump read by pg_restore --list, a base backup's label, an RDB file…). Default: the
newest snapshot of each source. Exit 13 when a snapshot fails its check."""

from __future__ import annotations

from typing import Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Argument, Context, Exit, Option
from lifeboat.app.cli.options import HostOpt, NoLockOpt, SourceOpt, TagOpt, snapshot_filter


def command(
    ctx: Context,
    snapshots: Annotated[
        list[str] | None, Argument(help="Snapshots to verify (default: each source's newest).")
    ] = None,
    every: Annotated[
        bool, Option("--all", help="Verify every selected snapshot, not only each source's newest.")
    ] = False,
    source: SourceOpt = None,
    host: HostOpt = None,
    tag: TagOpt = None,
    no_lock: NoLockOpt = False,
) -> None:
    from lifeboat.errors import ExitCode, IntegrityError
    from lifeboat.operations.verify import verify_snapshots

    state: CliContext = ctx.obj
    out = state.output
    config = state.config()
    repo = state.open_repository(read_only=no_lock)
    report = verify_snapshots(
        repo,
        snapshots or (),
        selection=snapshot_filter(source, host, tag),
        every=every,
        use_lock=not no_lock,
        configs=dict(config.sources) if config is not None else None,
        environment=state.environment(),
    )
    if state.json:
        out.emit_json(report.to_json())
    else:
        for result in report.results:
            snap = result.snapshot
            state_word = "ok" if result.verification.ok else "FAILED"
            out.line(f"{snap.short_id} {snap.source} ({snap.kind}): {state_word}: {result.verification.checked}")
            for problem in result.verification.problems:
                out.raw(f"error: {snap.short_id} {snap.source}: {problem}")
        for bad in report.unreadable:
            out.raw(f"error: snapshot {bad.id[:8]} cannot be read: {bad.reason}")
        if not report.results and not report.unreadable:
            out.line("no snapshots to verify")
    if not report.ok:
        names = [result.snapshot.short_id for result in report.failed] + [bad.id[:8] for bad in report.unreadable]
        out.error(
            IntegrityError(
                f"{len(names)} of {len(report.results) + len(report.unreadable)} snapshots failed verification: "
                + ", ".join(names),
                hint="restore from an older snapshot ('lifeboat snapshots'); 'lifeboat check --read-data' "
                "checks the repository's bytes",
            )
        )
        raise Exit(int(ExitCode.INTEGRITY))
