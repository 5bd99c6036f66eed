"""Records: the results of the checks that prove backups can be restored (a verify, a drill).

A record is what a team asks a year later — "when was this source last proven, and did it
pass?" — so it is kept in the repository, encrypted like a snapshot, and survives the loss of
the host that ran the check. It carries its kind (``verify``, ``drill``…), the source it
proves, when, whether it passed, a small ``summary`` (what a health check reads) and the
operation's whole JSON ``result``. Its id is the name of its stored object.

Decoding takes the bytes as hostile: anything that is not a well-formed record raises
:class:`IntegrityError`, never a half-built record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from lifeboat.errors import IntegrityError

RECORD_VERSION = 1
MAX_RECORD_BYTES = 16 * 1024 * 1024  # a record larger than this is not one Lifeboat wrote

VERIFY = "verify"
DRILL = "drill"


@dataclass(frozen=True)
class Record:
    """One check's result for one source."""

    kind: str  # "verify", "drill", …
    source: str  # the source it proves ("" when the source could not be known)
    time: datetime  # when the check finished
    ok: bool
    summary: dict[str, Any] = field(default_factory=dict)  # what a health check reads: small
    result: dict[str, Any] = field(default_factory=dict)  # the operation's whole JSON result
    hostname: str = ""  # where the check ran
    program_version: str = ""
    id: str = ""  # storage id; empty until saved or loaded

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError("a record's time must be timezone-aware")

    @property
    def short_id(self) -> str:
        return self.id[:8]

    def with_id(self, record_id: str) -> Record:
        return replace(self, id=record_id)

    def to_doc(self) -> dict[str, Any]:
        """The stored form (without the id, which is the object's name)."""
        return {
            "version": RECORD_VERSION,
            "kind": self.kind,
            "source": self.source,
            "time": self.time.astimezone(UTC).isoformat(),
            "ok": self.ok,
            "summary": self.summary,
            "result": self.result,
            "hostname": self.hostname,
            "program_version": self.program_version,
        }

    def encode(self) -> bytes:
        return json.dumps(self.to_doc(), sort_keys=True, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_doc(cls, doc: Any, record_id: str = "") -> Record:
        """A record from its stored form; IntegrityError for anything else."""
        what = f"record {record_id[:8]}" if record_id else "record"
        if not isinstance(doc, dict) or doc.get("version") != RECORD_VERSION:
            raise IntegrityError(f"{what} has an unsupported version")
        try:
            kind, source, ok = doc["kind"], doc["source"], doc["ok"]
            summary, result = doc.get("summary", {}), doc.get("result", {})
            hostname, program_version = doc.get("hostname", ""), doc.get("program_version", "")
            if not isinstance(kind, str) or not kind or not isinstance(source, str):
                raise ValueError("kind and source must be text")
            if not isinstance(ok, bool):
                raise ValueError("ok must be true or false")
            if not isinstance(summary, dict) or not isinstance(result, dict):
                raise ValueError("summary and result must be objects")
            if not isinstance(hostname, str) or not isinstance(program_version, str):
                raise ValueError("hostname and program_version must be text")
            if not isinstance(doc["time"], str):
                raise ValueError("time must be text")
            time = datetime.fromisoformat(doc["time"])
            if time.tzinfo is None:
                raise ValueError("time has no timezone")
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"{what} is malformed: {exc}") from None
        return cls(kind, source, time, ok, summary, result, hostname, program_version, record_id)

    @classmethod
    def decode(cls, data: bytes, record_id: str = "") -> Record:
        what = f"record {record_id[:8]}" if record_id else "record"
        if len(data) > MAX_RECORD_BYTES:
            raise IntegrityError(f"{what} is {len(data)} bytes, too large for a record")
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise IntegrityError(f"{what} is not valid JSON") from None
        return cls.from_doc(doc, record_id)

    def to_json(self) -> dict[str, Any]:
        """The public JSON form (``records --json``, the API)."""
        return {"id": self.id, "short_id": self.short_id, **self.to_doc()}


def newest_first(records: Iterable[Record]) -> list[Record]:
    return sorted(records, key=lambda r: (r.time, r.id), reverse=True)


def select(records: Iterable[Record], *, kind: str | None = None, source: str | None = None) -> list[Record]:
    """The records of ``kind`` and ``source`` (each: any when None), newest first."""
    return newest_first(
        r for r in records if (kind is None or r.kind == kind) and (source is None or r.source == source)
    )


def newest_per_source(records: Iterable[Record]) -> dict[tuple[str, str], Record]:
    """The newest record of each (kind, source): what a health check shows."""
    newest: dict[tuple[str, str], Record] = {}
    for record in newest_first(records):
        newest.setdefault((record.kind, record.source), record)
    return newest


__all__ = ["DRILL", "RECORD_VERSION", "VERIFY", "Record", "newest_first", "newest_per_source", "select"]
