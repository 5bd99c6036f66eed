"""What the API's read resources need of the running daemon (docs/api.md, "Resources").

The routes (app/api/routes/) depend on this Protocol only; the daemon implements it in
app/daemon/readview.py over one repository it opens once (read only, shared by every
request) and caches: the health report is refreshed in the background (a request never waits
for a health check once the first one is done), the snapshot and record listings at most
every few seconds. Everything returned is read only: the routes never change it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from lifeboat.app.observability.metrics import JobStat
    from lifeboat.config.model import LifeboatConfig
    from lifeboat.core.records import Record
    from lifeboat.core.snapshot import Snapshot, UnreadableSnapshot
    from lifeboat.operations.browse import Change
    from lifeboat.operations.health import HealthReport
    from lifeboat.operations.pg_info import ClusterInfo


class ReadView(Protocol):
    """The daemon's data as the read resources see it."""

    def config(self) -> LifeboatConfig:
        """The configuration in use (the last one loaded; a SIGHUP replaces it)."""
        ...

    def health(self) -> HealthReport:
        """The newest health report (the checks of ``lifeboat health``), at most a short time
        old; the first call waits for the first one."""
        ...

    def snapshots(self) -> tuple[Sequence[Snapshot], Sequence[UnreadableSnapshot]]:
        """Every snapshot of the repository, oldest first, and those that cannot be read
        (raises a LifeboatError when the repository cannot be opened)."""
        ...

    def records(self) -> Sequence[Record]:
        """The recorded verify and drill results (and any other kind), newest first."""
        ...

    def diff(self, old: Snapshot, new: Snapshot) -> list[Change]:
        """What changed from ``old``'s tree to ``new``'s."""
        ...

    def postgres(self, source: str) -> list[ClusterInfo]:
        """``pg info --source SOURCE``: the clusters whose base backups ``source`` holds."""
        ...

    def jobs(self) -> list[JobStat]:
        """Each scheduled job's last run, last success and whether it runs now."""
        ...

    def audit_entries(self) -> list[dict[str, Any]]:
        """The audit log's entries, oldest first."""
        ...
