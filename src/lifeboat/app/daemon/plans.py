"""Restore plans the API shows (``POST /api/v1/restore-plans``, docs/api.md): what laying a
snapshot's files down in a directory of this host would do — the same plan as ``lifeboat
restore ID --target DIR --plan`` (operations/restore.py ``plan_source``), nothing written.
The restore itself stays on the command line."""

from __future__ import annotations

import os
from typing import Any

from lifeboat.app.daemon.jobs import JobContext
from lifeboat.errors import UsageError


def directory_plan(context: JobContext, *, snapshot: str, target: str, source: str | None) -> dict[str, Any]:
    """The plan of restoring ``snapshot`` (an id prefix, or ``latest`` — of ``source`` when
    given) into the directory ``target``, and the command that does it."""
    from lifeboat.config.resolve import source_repository
    from lifeboat.core.snapshot import SnapshotFilter
    from lifeboat.operations.records import record_cache
    from lifeboat.operations.restore import plan_source
    from lifeboat.sources.base import IntoDirectory
    from lifeboat.sources.registry import source_kind

    if not os.path.isabs(target):
        raise UsageError(f"the target {target!r} is not an absolute path", hint="name a directory of the daemon's host")
    repo, _ = context.repository(source_repository(context.config, source))
    plan = plan_source(
        repo,
        source_kind("files"),  # any snapshot's tree can be laid down in a directory
        snapshot,
        IntoDirectory(path=target),
        selection=SnapshotFilter(sources=(source,)) if source else None,
        environment=context.environment,
        source=source,
        records=record_cache(context.state_dir, repo),
    )
    return {
        "feasible": plan.feasible,
        "plan": plan.to_json(),
        "command": ["lifeboat", "restore", plan.snapshot, "--target", target],
    }
