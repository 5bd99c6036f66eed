"""Anchors of audit logs in a repository: the head of a log kept as an ``audit-anchor`` record.

A record is encrypted and named by the hash of its bytes, written put-if-absent, and neither
``forget`` nor ``prune`` removes it (docs/format.md §14): whoever can rewrite a host's audit
log cannot rewrite what the repository already holds, so a cut or rewritten log no longer
matches its anchors (core/auditchain.py). The record's ``source`` is the host, its
``summary`` the anchor: ``log`` (the hash of the log's first entry, which names the log),
``seq``, ``hash``, ``time``, ``host`` and ``path`` (where the log was).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from lifeboat.core.auditchain import Anchor
from lifeboat.core.records import Record
from lifeboat.operations.records import RecordCache, list_records, new_record, save_record
from lifeboat.repository.repo import Repository

ANCHOR_KIND = "audit-anchor"


def save_anchor(
    repo: Repository, anchor: Anchor, *, path: str, time: datetime, cache: RecordCache | None = None
) -> Record:
    """Store ``anchor`` (of the log at ``path``) in ``repo`` as an ``audit-anchor`` record."""
    record = new_record(
        ANCHOR_KIND,
        anchor.host,
        ok=True,
        summary={**anchor.to_json(), "path": path},
        result={},
        time=time,
        hostname=anchor.host,
    )
    return save_record(repo, record, cache)


def anchor_of(record: Record) -> Anchor | None:
    """The anchor a record holds; None for a record that is not a well-formed anchor."""
    summary = record.summary
    try:
        anchor = Anchor(
            log=summary["log"],
            seq=summary["seq"],
            hash=summary["hash"],
            time=summary["time"],
            host=summary["host"],
        )
    except (KeyError, TypeError):
        return None
    if not isinstance(anchor.seq, int) or not all(isinstance(v, str) for v in (anchor.log, anchor.hash)):
        return None
    return anchor


@dataclass
class LogAnchors:
    """The anchors a repository holds of one log, and those of other logs once at its place."""

    own: list[Anchor] = field(default_factory=list)
    replaced: list[Anchor] = field(default_factory=list)


def list_anchors(
    repo: Repository, *, log: str | None, host: str, path: str, cache: RecordCache | None = None
) -> LogAnchors:
    """The anchors ``repo`` holds of the log named ``log`` (the hash of its first entry; None
    for an empty log), and of other logs anchored from the same ``host`` and ``path``."""
    found = LogAnchors()
    for record in list_records(repo, kind=ANCHOR_KIND, cache=cache).records:
        anchor = anchor_of(record)
        if anchor is None:
            continue
        if anchor.log == log:
            found.own.append(anchor)
        elif anchor.host == host and record.summary.get("path") == path:
            found.replaced.append(anchor)
    found.own.sort(key=lambda a: a.seq)
    return found


__all__ = ["ANCHOR_KIND", "LogAnchors", "anchor_of", "list_anchors", "save_anchor"]
