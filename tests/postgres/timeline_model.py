"""Rows written on several timelines, and an exact model of which rows each timeline's history holds.

Every row gets a unique label and records, right after its commit, the transaction id, the
WAL insert position and the clock. A target "after row k" is then unambiguous for all three
kinds: the LSN target is the insert position after k's commit (recovery replays one record
past it, never the next row's commit record), the time target is the clock after k's commit
(the next commit on that history is later), the xid target is k's own transaction.
Autovacuum is off in these clusters so no other transaction commits in between.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from lifeboat.sources.tools.pgcluster import ScratchCluster

SETTINGS = {"autovacuum": "off"}


@dataclass(frozen=True)
class Row:
    label: str
    timeline: int
    xid: int
    lsn: str  # the WAL insert position right after the commit
    time: str  # the clock right after the commit


@dataclass
class RowModel:
    """Per timeline, the rows its history holds, in commit order."""

    on_history: dict[int, list[Row]] = field(default_factory=lambda: {1: []})
    counter: int = 0

    def write(self, cluster: ScratchCluster, timeline: int) -> Row:
        self.counter += 1
        label = f"t{timeline}-r{self.counter}"
        xid = cluster.psql(
            f"WITH ins AS (INSERT INTO rows(label) VALUES ('{label}') RETURNING 1) SELECT txid_current() FROM ins"
        )
        lsn, moment = cluster.psql("SELECT pg_current_wal_insert_lsn(), clock_timestamp()").split("|")
        row = Row(label, timeline, int(xid), lsn, moment)
        self.on_history[timeline].append(row)
        return row

    def branch(self, new: int, source: int, through: int) -> None:
        """Timeline ``new`` was created by recovering ``source``'s history through its row ``through``."""
        self.on_history[new] = list(self.on_history[source][: through + 1])

    def expected(self, timeline: int, through: int) -> list[str]:
        return sorted(r.label for r in self.on_history[timeline][: through + 1])


def target_args(row: Row, kind: str) -> list[str]:
    """The restore options that stop recovery right after ``row``."""
    value = {"lsn": row.lsn, "time": row.time, "xid": str(row.xid)}[kind]
    return [f"--{kind}", value]


def labels(cluster: ScratchCluster) -> list[str]:
    return sorted(cluster.psql("SELECT label FROM rows").split())


def history_line(data_dir: Path, timeline: int) -> tuple[int, str]:
    """The parent and switch point the server wrote into its own history file."""
    text = (data_dir / "pg_wal" / f"{timeline:08X}.history").read_text()
    last = [line for line in text.splitlines() if line.strip() and not line.startswith("#")][-1]
    parent, point = last.split("\t")[:2]
    return int(parent), point


def report(stdout: str) -> dict[str, object]:
    document = json.loads(stdout)
    assert isinstance(document, dict)
    return document
