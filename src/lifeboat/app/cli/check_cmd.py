"""Verify the repository's structure, and with --read-data every byte of its data."""

from __future__ import annotations

from typing import Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Context, Exit, Option
from lifeboat.app.cli.options import LockWaitOpt, NoLockOpt


def command(
    ctx: Context,
    read_data: Annotated[
        bool, Option("--read-data", help="Download and verify every pack and every archived WAL file.")
    ] = False,
    read_data_subset: Annotated[
        str | None, Option("--read-data-subset", help="Verify a subset of packs and WAL files: 10% or 2/5.")
    ] = None,
    no_lock: NoLockOpt = False,
    lock_wait: LockWaitOpt = None,
) -> None:
    from lifeboat.errors import UsageError
    from lifeboat.operations.maintenance import check
    from lifeboat.repository.check import DataSubset, check_failure

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
    from lifeboat.app.cli.eventview import viewed

    repo = state.open_repository(read_only=no_lock)
    wait = state.lock_wait(lock_wait)
    with viewed(out, style=state.progress_style, signals=state.signals) as (events, _view):
        result = check(repo, read_data=subset, use_lock=not no_lock, lock_wait=wait, events=events)
    if state.json:
        out.emit_json(result.to_json())
    else:
        for problem in result.warnings:
            out.info(f"warning: {problem.object}: {problem.message}")
        for problem in result.errors:
            out.raw(f"error: {problem.object}: {problem.message}")
        wal = f", {result.wal_files} archived WAL files" if result.wal_files else ""
        read = f", {result.packs_read} packs read and verified" if subset is not None else ""
        if subset is not None and result.wal_files:
            read += f", {result.wal_files_read} WAL files read and verified"
        out.line(f"checked {result.snapshots} snapshots, {result.packs} packs, {result.blobs} blobs{wal}{read}")
    failure = check_failure(result)
    if failure is not None:  # damage (13) outranks what the storage would not give (14)
        out.error(failure)
        raise Exit(int(failure.exit_code))
    if not state.json:
        out.line("no errors were found")
