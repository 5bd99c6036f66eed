"""Verify backups by what they hold: each snapshot checked by the kind of source that made
it (a dump read by pg_restore --list, a base backup's label and its WAL, an RDB file…), with
--read-data every blob (and WAL file) it needs read back, a files snapshot spot-checked
against the live files. Default: the newest snapshot of each source. Exit 13 when a snapshot
fails its check. The results are recorded in the repository ('lifeboat records')."""

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
    read_data: Annotated[
        bool, Option("--read-data", help="Read back every blob and archived WAL file the snapshots need.")
    ] = False,
    read_data_subset: Annotated[
        str | None, Option("--read-data-subset", help="Read back a subset of their packs and WAL files: 10% or 2/5.")
    ] = None,
    spot_check: Annotated[
        int | None,
        Option(
            "--spot-check",
            help="Compare N live files with a files snapshot whose paths are on this host (default 20; 0: none).",
        ),
    ] = None,
    no_lock: NoLockOpt = False,
) -> None:
    from lifeboat.errors import ExitCode, IntegrityError, UsageError
    from lifeboat.operations.records import record_cache
    from lifeboat.operations.verify import SPOT_CHECK_FILES, VerifyOptions, verify_and_record, verify_snapshots
    from lifeboat.repository.check import DataSubset

    state: CliContext = ctx.obj
    out = state.output
    subset: DataSubset | None = None
    if read_data_subset is not None:
        try:
            subset = DataSubset.parse(read_data_subset)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    elif read_data:
        subset = DataSubset()
    if spot_check is not None and spot_check < 0:
        raise UsageError("--spot-check takes a number of files, 0 or more")
    options = VerifyOptions(read_data=subset, spot_check=SPOT_CHECK_FILES if spot_check is None else spot_check)
    config = state.config()
    repo = state.open_repository(read_only=no_lock)
    selection = snapshot_filter(source, host, tag)
    configs = dict(config.sources) if config is not None else None
    if no_lock:
        report = verify_snapshots(
            repo,
            snapshots or (),
            selection=selection,
            every=every,
            use_lock=False,
            configs=configs,
            environment=state.environment(),
            options=options,
        )
        report.not_recorded = "the repository was opened read-only (--no-lock)"
    else:
        report = verify_and_record(
            repo,
            snapshots or (),
            selection=selection,
            every=every,
            configs=configs,
            environment=state.environment(),
            options=options,
            cache=record_cache(state.state_directory(), repo),
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
            for note in result.details.get("wal", {}).get("notes", []):
                out.info(f"note: {snap.short_id} {snap.source}: {note}")
        for bad in report.unreadable:
            out.raw(f"error: snapshot {bad.id[:8]} cannot be read: {bad.reason}")
        if not report.results and not report.unreadable:
            out.line("no snapshots to verify")
    if report.not_recorded and (report.results or report.unreadable):
        out.info(f"warning: the results were not recorded in the repository: {report.not_recorded}")
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
