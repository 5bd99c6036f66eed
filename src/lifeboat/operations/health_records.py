"""The recorded verify and drill results a health check judges: the newest of each
(kind, source), read from the repository's records through their local cache
(:mod:`lifeboat.operations.records`: ids listed every time, only new records fetched).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from lifeboat.core.health import RecordedResult
from lifeboat.core.records import DRILL, VERIFY, Record
from lifeboat.operations.records import newest_records, record_cache
from lifeboat.repository.repo import Repository

JUDGED = (VERIFY, DRILL)
# The numbers of a record's summary the metrics show (a drill's, lifeboat.operations.drill.records).
FIGURES = ("rto_seconds", "achieved_rpo_seconds", "rto_objective_seconds", "rpo_objective_seconds")


def _said(record: Record) -> str:
    """A few words from a record's summary: why it failed (its first problem or reason)."""
    summary: Mapping[str, Any] = record.summary
    problems = summary.get("problems")
    if isinstance(problems, list) and problems:
        return str(problems[0])
    for key in ("reason", "message", "error"):
        if isinstance(summary.get(key), str) and summary[key]:
            return str(summary[key])
    return ""


def _figures(record: Record) -> dict[str, float]:
    """The summary's numbers among FIGURES (a record written by another version may lack some)."""
    found: dict[str, float] = {}
    for key in FIGURES:
        value = record.summary.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            found[key] = float(value)
    return found


def latest_results(
    repo: Repository, state_directory: str | os.PathLike[str] | None
) -> Mapping[tuple[str, str], RecordedResult]:
    """(kind, source) → the newest recorded verify or drill of that source."""
    newest = newest_records(repo, cache=record_cache(state_directory, repo))
    return {
        key: RecordedResult(record.time, record.ok, _said(record) if not record.ok else "", _figures(record))
        for key, record in newest.items()
        if key[0] in JUDGED
    }


__all__ = ["latest_results"]
