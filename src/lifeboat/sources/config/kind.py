"""The ``config`` kind: the files kind's backup and restore, plus an inventory and secrets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lifeboat.core.patterns import PATTERN_HINT, PathFilter
from lifeboat.core.snapshot import Snapshot
from lifeboat.core.tree import NodeType
from lifeboat.errors import UsageError
from lifeboat.sources.base import BackupContext, BackupOptions, Produced, RestoreContext, Verification
from lifeboat.sources.files.kind import FilesRequest, FilesSource

if TYPE_CHECKING:
    from lifeboat.config.model import ConfigSourceConfig

SNAPSHOT_KIND = "config"


@dataclass(frozen=True)
class ConfigRequest:
    """A files backup of ``files``, and the patterns of the paths that are secrets."""

    files: FilesRequest
    secrets: tuple[str, ...]


class ConfigSource(FilesSource):
    name = "config"
    config_model = "lifeboat.config.model:ConfigSourceConfig"
    snapshot_kinds = (SNAPSHOT_KIND,)

    def request(self, config: ConfigSourceConfig | None, options: BackupOptions) -> ConfigRequest:  # type: ignore[override]
        from lifeboat.sources.config.inventory import SECRET_PATTERNS

        files = super().request(config, options)
        given = options.settings.get("secrets")
        if given is None:
            given = config.secrets if config is not None else None
        secrets = tuple(SECRET_PATTERNS if given is None else given)
        try:
            PathFilter.build(secrets)
        except ValueError as exc:
            raise UsageError(str(exc), hint=PATTERN_HINT) from None
        return ConfigRequest(files, secrets)

    def label(self, request: ConfigRequest) -> str:  # type: ignore[override]
        return "backing up configuration"

    def check(self, request: ConfigRequest) -> None:  # type: ignore[override]
        super().check(request.files)

    def backup(self, ctx: BackupContext, request: ConfigRequest) -> Produced:  # type: ignore[override]
        """The files kind's backup, then the inventory of what it took, stored beside it.

        The inventory is taken right after the tree, from the same files: a file changed in
        between is in the tree as read and in the inventory as found (the archiver warns of
        files that change while read)."""
        import os

        from lifeboat.sources.config import inventory

        produced = super().backup(ctx, request.files)
        ctx.events.check()
        entries = inventory.take_inventory(
            tuple(os.path.abspath(p) for p in request.files.paths),
            PathFilter.build(request.files.includes, request.files.excludes),
            inventory.secret_filter(request.secrets),
            one_file_system=request.files.one_file_system,
        )
        produced.extra["inventory"] = inventory.store(ctx.saver, ctx.chunker, entries, request.secrets)
        produced.summary["secrets"] = sum(1 for entry in entries if entry.secret)
        return produced

    def verify(self, ctx: RestoreContext, snapshot: Snapshot) -> Verification:
        """Every file the inventory lists is in the snapshot with the recorded mode and owner,
        and its stored content has the recorded SHA-256."""
        import hashlib

        from lifeboat.core.treewalk import find
        from lifeboat.sources.config import inventory

        record = snapshot.extra.get("inventory")
        if not isinstance(record, dict):
            return Verification(checked="the inventory", problems=("the snapshot records no inventory",))
        try:
            entries = inventory.load(ctx.loader, record)
        except ValueError as exc:
            return Verification(checked="the inventory", problems=(str(exc),))
        problems: list[str] = []
        for entry in entries:
            ctx.events.check()
            node = find(ctx.loader, snapshot.tree, entry.path.lstrip("/"))
            if node is None:
                problems.append(f"{entry.path}: in the inventory, not in the snapshot")
                continue
            if (
                node.type.value != entry.type
                or node.mode != entry.mode
                or (node.uid, node.gid) != (entry.uid, entry.gid)
            ):
                problems.append(f"{entry.path}: its type, mode or owner differs from the inventory's")
                continue
            if node.type is NodeType.FILE and entry.sha256 is not None:
                digest = hashlib.sha256()
                for data in ctx.loader.load_blobs(node.content):
                    digest.update(data)
                if digest.hexdigest() != entry.sha256:
                    # a secret's path may be named, never its content or checksum
                    problems.append(f"{entry.path}: its stored content differs from the inventory's checksum")
        return Verification(
            checked=f"{len(entries)} inventory entries against the stored files", problems=tuple(problems[:20])
        )

    def describe(self, snapshot: Snapshot) -> list[str]:
        record = snapshot.extra.get("inventory")
        if not isinstance(record, dict):
            return []
        return [f"inventory: {record.get('entries')} entries, {record.get('secrets')} of them secrets"]
