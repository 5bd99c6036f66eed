"""Copy snapshots (and archived WAL) to another repository; only missing data is sent.

\b
  lifeboat copy --from SOURCE --to DEST SNAPSHOT...   copy these snapshots
  lifeboat copy --from SOURCE --to DEST --all         copy every snapshot (filters apply)
  lifeboat copy                                       bring every configured follower up to date

--to defaults to the repository (--repo / LIFEBOAT_REPO / the configuration's default);
--from to LIFEBOAT_FROM_REPO, or the repository the destination 'follows'. Either may be
a URL or a configured name. The destination's passphrase comes from LIFEBOAT_PASSWORD_FILE
(or _COMMAND, or its configured password_file); the source's from LIFEBOAT_FROM_PASSWORD_FILE
(or LIFEBOAT_FROM_PASSWORD_COMMAND, its configured password_file, LIFEBOAT_FROM_PASSWORD).
Copying is idempotent and verified: the packs written are read back before a snapshot is saved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Argument, Context, Option
from lifeboat.app.cli.options import HostOpt, LockWaitOpt, PathOpt, SourceOpt, TagOpt, snapshot_filter

if TYPE_CHECKING:
    from lifeboat.operations.copy import CopyResult
    from lifeboat.repository.repo import Repository


def command(
    ctx: Context,
    snapshot_ids: Annotated[list[str] | None, Argument(help="Snapshots to copy (id prefixes or 'latest').")] = None,
    from_repo: Annotated[
        str | None, Option("--from", help="Source repository: URL or configured name [env LIFEBOAT_FROM_REPO].")
    ] = None,
    to_repo: Annotated[
        str | None, Option("--to", help="Destination repository: URL or configured name [default: --repo].")
    ] = None,
    all_snapshots: Annotated[bool, Option("--all", help="Copy every snapshot (the filters apply).")] = False,
    source: SourceOpt = None,
    host: HostOpt = None,
    tag: TagOpt = None,
    path: PathOpt = None,
    no_wal: Annotated[bool, Option("--no-wal", help="Do not copy archived WAL.")] = False,
    no_verify: Annotated[bool, Option("--no-verify", help="Do not read the copied packs back to verify them.")] = False,
    lock_wait: LockWaitOpt = None,
) -> None:
    from lifeboat.errors import UsageError

    state: CliContext = ctx.obj
    filters = bool(source or host or tag or path)
    if snapshot_ids and (all_snapshots or filters):
        raise UsageError("give snapshot ids, or --all with filters, not both")
    origin = from_repo or state.from_repository()
    if origin is None and to_repo is None and not snapshot_ids:
        followers = _followers(state)
        if followers and not state.repo:
            documents = [
                _copy(state, leader, follower, [], True, source, host, tag, path, no_wal, no_verify, lock_wait)
                for follower, leader in followers
            ]
            if state.json:
                state.output.emit_json({"copies": documents})
            return
    if not snapshot_ids and not all_snapshots:
        raise UsageError(
            "nothing chosen to copy",
            hint="give snapshot ids or --all; or configure a repository that 'follows' another and run 'lifeboat copy'",
        )
    destination = to_repo or _default_destination(state)
    if origin is None:
        origin = _leader_of(state, destination)
    if origin is None:
        raise UsageError(
            "no source repository given",
            hint="pass --from (a URL or a configured name) or set LIFEBOAT_FROM_REPO",
        )
    document = _copy(
        state,
        origin,
        destination,
        snapshot_ids or [],
        all_snapshots,
        source,
        host,
        tag,
        path,
        no_wal,
        no_verify,
        lock_wait,
    )
    if state.json:
        state.output.emit_json(document)


def _followers(state: CliContext) -> list[tuple[str, str]]:
    from lifeboat.config.resolve import followers

    return followers(state.config())


def _default_destination(state: CliContext) -> str:
    from lifeboat.config.resolve import repository_name

    url, repo_config = state.repository_target()
    return repository_name(state.config(), url, repo_config)


def _leader_of(state: CliContext, destination: str) -> str | None:
    from lifeboat.config.resolve import leader_of

    return leader_of(state.config(), destination)


def _copy(
    state: CliContext,
    origin: str,
    destination: str,
    snapshot_ids: list[str],
    all_snapshots: bool,
    source: list[str] | None,
    host: list[str] | None,
    tag: list[str] | None,
    path: list[str] | None,
    no_wal: bool,
    no_verify: bool,
    lock_wait: str | None,
) -> dict[str, Any]:
    """Copy from ``origin`` to ``destination``; prints the text report, returns the JSON one."""
    from lifeboat.app.cli.eventview import viewed
    from lifeboat.config.resolve import lock_wait as resolve_lock_wait
    from lifeboat.operations.copy import copy_snapshots
    from lifeboat.storage.base import connections

    # --lock-wait, else each repository's configured lock_wait (copy locks both).
    source_wait = resolve_lock_wait(lock_wait, state.named_repository(origin)[1])
    wait = resolve_lock_wait(lock_wait, state.named_repository(destination)[1])
    src = state.open_repository_at(origin, state.from_passphrase, read_only=False)
    dst = state.open_repository_at(destination, state.passphrase)
    with viewed(state.output, style=state.progress_style, signals=state.signals) as (events, _view):
        result = copy_snapshots(
            src,
            dst,
            refs=snapshot_ids,
            selection=snapshot_filter(source, host, tag, path) if all_snapshots else None,
            wal=not no_wal,
            verify=not no_verify,
            workers=max(4, connections(dst.backend)),
            lock_wait=wait,
            source_lock_wait=source_wait,
            events=events,
        )
    if not state.json:
        _render(state, src, dst, result, verified=not no_verify)
    return {"from": src.backend.location, "to": dst.backend.location, **result.to_json()}


def _render(state: CliContext, src: Repository, dst: Repository, result: CopyResult, *, verified: bool) -> None:
    from lifeboat.core.units import format_bytes

    out = state.output
    out.line(
        f"copied {len(result.copied)} snapshots from {src.backend.location} to {dst.backend.location}"
        f" ({len(result.already_present)} already there)"
    )
    for copied in result.copied:
        out.line(f"  {copied.source_id[:8]} -> {copied.destination_id[:8]}  {copied.time}  {copied.source}")
    out.line(
        f"sent {result.blobs_sent} blobs ({format_bytes(result.bytes_sent)}) in {result.packs_written} packs; "
        f"{result.blobs_present} blobs were there already"
        + ("" if result.same_keys else "; trees rewritten for the destination's keys")
    )
    if verified and result.packs_written:
        out.line(f"verified {result.packs_verified} packs by reading them back")
    if result.wal_copied or result.wal_present:
        out.line(
            f"WAL: copied {result.wal_copied} objects ({format_bytes(result.wal_bytes)}), "
            f"{result.wal_present} already there"
        )
    if result.records_copied or result.records_present:
        out.line(f"records: copied {result.records_copied}, {result.records_present} already there")
    for record_id in result.records_unreadable:
        out.info(f"warning: record {record_id[:8]} of the source cannot be read: not copied")
