"""Restore drills, the pure part: targets, validation verdicts, objectives and the result.

A drill proves a source restorable by doing it: restore into a scratch instance, start it,
ask it questions, measure how long each phase took, compare with the objectives, tear it
down. The I/O lives in :mod:`lifeboat.operations.drill`; here is what can be decided without
any: which point a ``random`` target picks, whether a query's answer passes, what the
*achieved RPO* is, whether the objectives were met, and the result's JSON form (which the
repository's record and ``drill report`` read back).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

PASSED = "passed"
FAILED = "failed"  # the restore or a validation failed: the backup did not prove itself (exit 13)
MISSED = "missed"  # restored and valid, but an objective (RTO, RPO, time limit) was missed (exit 17)

# The phases of a drill, in order. ``plan``: choosing the backup and proving the WAL it needs
# is there; ``restore``: fetching and writing the files; ``replay``: WAL replay up to the
# target (PostgreSQL's own measure); ``start``: the rest of starting and promoting;
# ``validate``: the queries. RTO is every phase up to serving (all but ``validate``). A kind with
# no scratch instance has ``plan`` and ``verify`` only: nothing served, no RTO.
PHASES = ("plan", "restore", "replay", "start", "validate", "verify")
SERVING = ("plan", "restore", "replay", "start")


@dataclass(frozen=True)
class DrillTarget:
    """What a drill recovers to: ``latest`` (everything archived), ``random`` or a time."""

    kind: str  # latest | random | time
    time: datetime | None = None

    @classmethod
    def parse(cls, text: str) -> DrillTarget:
        """``latest``, ``random`` or an ISO 8601 time (naive: UTC); ValueError otherwise."""
        word = text.strip().lower()
        if word in ("latest", "random"):
            return cls(word)
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not latest, random or an ISO 8601 time") from None
        return cls("time", moment if moment.tzinfo else moment.replace(tzinfo=UTC))

    def describe(self) -> str:
        return self.kind if self.time is None else f"time {self.time.isoformat()}"


def random_time(earliest: datetime, latest: datetime, rng: random.Random | None = None) -> datetime:
    """A point chosen uniformly between ``earliest`` and ``latest`` (both reachable)."""
    if latest <= earliest:
        return earliest
    span = (latest - earliest).total_seconds()
    chooser = rng or random.Random()  # noqa: S311 - a sample, not a secret
    return earliest + timedelta(seconds=chooser.uniform(0, span))


@dataclass(frozen=True)
class QueryOutcome:
    """One validation query's answer and verdict."""

    name: str
    value: str | None  # the first column of the first row, as text (None: NULL or no row)
    problem: str = ""  # why it fails the drill ("" passes)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problem

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "ok": self.ok,
            "problem": self.problem,
            "seconds": round(self.seconds, 3),
        }


def judge(value: Any, *, minimum: float | None, maximum: float | None, equals: str | None) -> str:
    """Why ``value`` (a query's first column of its first row) fails its bounds; "" if it passes."""
    text = None if value is None else str(value)
    if equals is not None:
        return "" if text == equals else f"returned {_shown(text)}, expected {equals!r}"
    if minimum is None and maximum is None:
        return "" if text is not None else "returned no value"
    try:
        number = float(text) if text is not None else None
    except ValueError:
        number = None
    if number is None:
        return f"returned {_shown(text)}, not a number"
    if minimum is not None and number < minimum:
        return f"returned {text}, below the minimum {_number(minimum)}"
    if maximum is not None and number > maximum:
        return f"returned {text}, above the maximum {_number(maximum)}"
    return ""


def _shown(text: str | None) -> str:
    return "no value" if text is None else repr(text)


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def as_utc(moment: datetime) -> datetime:
    """A time from a query: a naive one (``timestamp without time zone``) is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def achieved_rpo(target: datetime, newest: datetime) -> float:
    """The data a restore to ``target`` loses, in seconds: the target minus the newest row's time
    (never negative: a row stamped after the target, by a clock ahead, loses nothing)."""
    return max(0.0, (as_utc(target) - as_utc(newest)).total_seconds())


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "seconds": round(self.seconds, 3)}


@dataclass
class DrillResult:
    """One source's drill: what was restored, each phase's time, the answers, the verdict."""

    source: str
    kind: str  # the source kind
    target: str  # what was asked: latest | random | time …
    started: datetime
    finished: datetime | None = None
    snapshot: str = ""  # the snapshot (base backup) restored
    recovered_to: datetime | None = None  # the point restored to (latest: when the drill started)
    method: str = ""  # how the kind was drilled, in words
    phases: list[Phase] = field(default_factory=list)
    queries: list[QueryOutcome] = field(default_factory=list)
    newest_row: datetime | None = None  # the freshness query's answer
    last_commit: datetime | None = None  # PostgreSQL: the last transaction recovery replayed
    achieved_rpo: float | None = None  # seconds
    rto_objective: float | None = None  # seconds
    rpo_objective: float | None = None  # seconds
    restored_bytes: int = 0
    restored_files: int = 0
    status: str = PASSED
    reasons: list[str] = field(default_factory=list)  # why it failed or missed
    notes: list[str] = field(default_factory=list)  # warnings that do not fail it
    exit_code: int = 0  # what a command line exits with for it (0: passed)

    @property
    def ok(self) -> bool:
        return self.status == PASSED

    @property
    def rto(self) -> float | None:
        """Seconds from the drill's start to a serving instance (None: it never served)."""
        if not self.served:
            return None
        return sum(p.seconds for p in self.phases if p.name in SERVING)

    @property
    def served(self) -> bool:
        """Whether the instance came up (validation began)."""
        return any(p.name == "validate" for p in self.phases)

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in self.phases)

    def add_phase(self, name: str, seconds: float) -> None:
        self.phases.append(Phase(name, max(0.0, seconds)))

    def fail(self, reason: str) -> None:
        self.status = FAILED
        self.reasons.append(reason)

    def judge_objectives(self, *, latest: bool) -> None:
        """Mark the drill missed when it served but slower than ``rto``, or (recovering to the
        latest point) its achieved RPO is older than ``rpo``. A failed drill stays failed."""
        if self.status == FAILED:
            return
        rto = self.rto
        if self.rto_objective is not None and rto is not None and rto > self.rto_objective:
            self.status = MISSED
            self.reasons.append(f"RTO {seconds_text(rto)} is over the objective {seconds_text(self.rto_objective)}")
        rpo, objective = self.achieved_rpo, self.rpo_objective
        if latest and objective is not None and rpo is not None and rpo > objective:
            self.status = MISSED
            self.reasons.append(f"achieved RPO {seconds_text(rpo)} is over the objective {seconds_text(objective)}")

    def summary(self) -> dict[str, Any]:
        """The few numbers a health check reads."""
        return {
            "status": self.status,
            "rto_seconds": _round(self.rto),
            "achieved_rpo_seconds": _round(self.achieved_rpo),
            "snapshot": self.snapshot,
            "reasons": list(self.reasons),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "status": self.status,
            "ok": self.ok,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "target": self.target,
            "recovered_to": _time(self.recovered_to),
            "snapshot": self.snapshot,
            "method": self.method,
            "started": _time(self.started),
            "finished": _time(self.finished),
            "phases": [p.to_json() for p in self.phases],
            "rto_seconds": _round(self.rto),
            "seconds": round(self.seconds, 3),
            "rto_objective_seconds": _round(self.rto_objective),
            "rpo_objective_seconds": _round(self.rpo_objective),
            "achieved_rpo_seconds": _round(self.achieved_rpo),
            "newest_row": _time(self.newest_row),
            "last_commit": _time(self.last_commit),
            "queries": [q.to_json() for q in self.queries],
            "restored_bytes": self.restored_bytes,
            "restored_files": self.restored_files,
            "exit_code": self.exit_code,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> DrillResult:
        """A result from its JSON form (a record's ``result``); ValueError when it is not one."""
        try:
            result = cls(
                source=str(doc["source"]),
                kind=str(doc.get("kind", "")),
                target=str(doc.get("target", "")),
                started=_parse_time(doc["started"]) or datetime.fromtimestamp(0, UTC),
                finished=_parse_time(doc.get("finished")),
                snapshot=str(doc.get("snapshot", "")),
                recovered_to=_parse_time(doc.get("recovered_to")),
                method=str(doc.get("method", "")),
                phases=[Phase(str(p["name"]), float(p["seconds"])) for p in doc.get("phases", [])],
                queries=[
                    QueryOutcome(
                        str(q["name"]),
                        None if q.get("value") is None else str(q["value"]),
                        str(q.get("problem", "")),
                        float(q.get("seconds", 0.0)),
                    )
                    for q in doc.get("queries", [])
                ],
                newest_row=_parse_time(doc.get("newest_row")),
                last_commit=_parse_time(doc.get("last_commit")),
                achieved_rpo=_float(doc.get("achieved_rpo_seconds")),
                rto_objective=_float(doc.get("rto_objective_seconds")),
                rpo_objective=_float(doc.get("rpo_objective_seconds")),
                restored_bytes=int(doc.get("restored_bytes", 0)),
                restored_files=int(doc.get("restored_files", 0)),
                status=str(doc.get("status", FAILED)),
                reasons=[str(r) for r in doc.get("reasons", [])],
                notes=[str(n) for n in doc.get("notes", [])],
                exit_code=int(doc.get("exit_code", 0)),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a drill result: {exc}") from None
        return result


def seconds_text(seconds: float) -> str:
    """``0.8s``, ``42s``, ``3m05s``, ``2h10m``: short enough for a table."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def worst(statuses: Sequence[str]) -> str:
    """The status of several drills together: any failure, else any miss, else passed."""
    if FAILED in statuses:
        return FAILED
    if MISSED in statuses:
        return MISSED
    return PASSED


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _parse_time(text: Any) -> datetime | None:
    if text is None:
        return None
    return as_utc(datetime.fromisoformat(str(text)))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


__all__ = [
    "FAILED",
    "MISSED",
    "PASSED",
    "PHASES",
    "DrillResult",
    "DrillTarget",
    "Phase",
    "QueryOutcome",
    "achieved_rpo",
    "as_utc",
    "judge",
    "random_time",
    "seconds_text",
    "worst",
]
