"""The recorded verify and drill results a health check judges: the newest of each
(kind, source), read from the repository's records (with their local cache).

The interface ``latest_results(repo, state_directory)`` is what ``health`` needs; it reads
``operations/records`` (records in the repository, cached in the state directory).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from lifeboat.core.health import RecordedResult
from lifeboat.repository.repo import Repository


def latest_results(
    repo: Repository, state_directory: str | os.PathLike[str] | None
) -> Mapping[tuple[str, str], RecordedResult]:
    """(kind, source) → the newest recorded result of that kind for that source.

    Records are not in this tree yet: no results are known (the verify and drill checks
    then appear only where a drill is configured, as "no drill recorded")."""
    del repo, state_directory
    return {}


__all__ = ["latest_results"]
