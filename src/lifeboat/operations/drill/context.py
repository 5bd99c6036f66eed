"""What every kind's drill shares: the request, the drill in progress (:class:`Drill`), the
snapshot chosen for a target, the scratch directory, the queries and their verdicts, and a
tear-down that an interruption cannot cut short."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeboat.core.drill import (
    DrillResult,
    DrillTarget,
    QueryOutcome,
    achieved_rpo,
    as_utc,
    judge,
)
from lifeboat.core.events import Events
from lifeboat.core.snapshot import Snapshot
from lifeboat.core.units import format_bytes, parse_size
from lifeboat.errors import ExitCode, LifeboatError, ObjectNotFound, UsageError
from lifeboat.operations.read_lock import read_lock
from lifeboat.repository.repo import Repository

if TYPE_CHECKING:
    from lifeboat.config.model import DrillConfig


@dataclass(frozen=True)
class DrillRequest:
    """What to drill and how. ``restore_commands``: per PostgreSQL source, the command its
    scratch server runs to fetch WAL (a front end spells it: it names this program)."""

    target: str | None = None  # over each source's drill.target
    restore_commands: Mapping[str, str] = field(default_factory=dict)
    environment: Mapping[str, str] | None = field(default=None, repr=False)
    workers: int = 2


class OverTimeLimit(LifeboatError):
    """The drill ran over its time limit and was stopped."""

    exit_code = ExitCode.OBJECTIVE_MISSED


@dataclass
class Drill:
    """One source's drill in progress."""

    repo: Repository
    name: str
    config: Any
    drill: DrillConfig
    request: DrillRequest
    target: DrillTarget
    result: DrillResult
    events: Events
    clock: Callable[[], datetime]
    began: float  # monotonic
    limit: float  # seconds

    def reference(self) -> datetime | None:
        """The moment the achieved RPO is measured from: the drill's start for ``latest`` (a loss
        now), the time asked, or the point a ``random`` drill chose."""
        if self.target.kind == "latest":
            return self.result.started
        if self.target.kind == "time":
            return self.target.time
        return self.result.recovered_to

    def remaining(self) -> float:
        return max(1.0, self.limit - (time.monotonic() - self.began))

    def scratch_parent(self) -> str | None:
        parent: str | None = self.drill.scratch_dir
        if parent is not None and not os.path.isdir(parent):
            raise UsageError(f"drill scratch_dir {parent}: not a directory")
        return parent

    def check_space(self, needed: int, what: str) -> None:
        """Refuse before writing when ``needed`` is over the space limit or the free space."""
        if self.drill.space_limit is not None:
            limit = parse_size(str(self.drill.space_limit))
            if needed > limit:
                raise SpaceRefused(
                    f"{what} is {format_bytes(needed)}, over the drill's space limit {format_bytes(limit)}",
                    hint="raise drill.space_limit, or drill another source",
                )
        parent = self.scratch_parent() or tempfile.gettempdir()
        free = shutil.disk_usage(parent).free
        if needed > free:
            raise SpaceRefused(
                f"{what} is {format_bytes(needed)}, more than the {format_bytes(free)} free in {parent}",
                hint="free space there, or set drill.scratch_dir to a larger file system",
            )


class SpaceRefused(LifeboatError):
    """A drill refused before writing: not enough room (exit 1: the backup is not in question)."""


def run_queries(d: Drill, run: Callable[[str, str | None], Any]) -> None:
    """Each validation query through ``run(sql, database)``, judged; then the freshness query,
    whose time gives the achieved RPO. A query that errors fails the drill, named."""
    result = d.result
    for query in d.drill.queries:
        d.events.check()
        started = time.monotonic()
        try:
            value = run(query.sql, query.database)
        except LifeboatError as exc:
            outcome = QueryOutcome(query.name, None, f"failed: {exc.message}", time.monotonic() - started)
        else:
            problem = judge(value, minimum=query.min, maximum=query.max, equals=query.equals)
            outcome = QueryOutcome(query.name, as_text(value), problem, time.monotonic() - started)
        result.queries.append(outcome)
        if not outcome.ok:
            result.fail(f"validation query {query.name!r} {outcome.problem}")
    freshness = d.drill.freshness
    if freshness is None:
        return
    try:
        answer = run(freshness.sql, freshness.database)
    except LifeboatError as exc:
        result.fail(f"freshness query failed: {exc.message}")
        return
    newest = as_time(answer)
    if newest is None:
        result.fail(f"freshness query returned {as_text(answer) or 'no value'}, not a time")
        return
    result.newest_row = newest
    reference = d.reference()
    if reference is not None:
        result.achieved_rpo = achieved_rpo(reference, newest)


def as_time(value: Any) -> datetime | None:
    """A freshness answer as a UTC time: a timestamp, ISO 8601 text, or seconds since the epoch."""
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            return as_utc(datetime.fromisoformat(value.strip()))
        except ValueError:
            return None
    return None


def as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def snapshot_for(d: Drill) -> Snapshot:
    """The source's newest snapshot at or before the target (``random``: a random one)."""
    import random

    with read_lock(d.repo, use_lock=True):
        snapshots = sorted((s for s in d.repo.snapshots() if s.source == d.name), key=lambda s: s.time)
    if not snapshots:
        raise ObjectNotFound(f"source {d.name} has no snapshot to drill")
    if d.target.kind == "random":
        chosen = random.choice(snapshots)  # noqa: S311 - a sample, not a secret
        d.result.target = f"random: snapshot {chosen.short_id}"
    elif d.target.kind == "time":
        assert d.target.time is not None
        before = [s for s in snapshots if s.time <= d.target.time]
        if not before:
            raise ObjectNotFound(f"source {d.name} has no snapshot at or before {d.target.time.isoformat()}")
        chosen = before[-1]
    else:
        chosen = snapshots[-1]
    d.result.snapshot = chosen.id
    d.result.recovered_to = chosen.time
    reference = d.reference()
    if reference is not None:  # without a freshness query: what the snapshot holds is as old as it is
        d.result.achieved_rpo = achieved_rpo(reference, chosen.time)
    return chosen


def scratch_directory(d: Drill) -> Path:
    return Path(tempfile.mkdtemp(prefix="lifeboat-scratch-", dir=d.scratch_parent()))


# --- tearing down --------------------------------------------------------------------------


def teardown(*steps: Callable[[], None]) -> None:
    """Run every step of a tear-down, each even when one before it failed, with Ctrl-C, SIGTERM
    and the time limit held back until the end (on the main thread): an interruption arriving
    now is delivered once the scratch instance is gone, so it cannot leave half of it behind."""
    held = {signal.SIGINT, signal.SIGTERM}
    main = threading.current_thread() is threading.main_thread()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held) if main else None
    failure: BaseException | None = None
    try:
        for step in steps:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - the next step still runs; the first failure is raised
                failure = failure or exc
    finally:
        if previous is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    if failure is not None:
        raise failure
