"""Restore drills: prove each source restorable by restoring it, measure how long it took, and
record the result.

For each source, :func:`drill_source` plans (the target: ``latest``, ``random`` — a point
chosen inside what the backups reach — or a time; the space the restore needs), restores
into a scratch instance, runs the validation queries, compares the measured RTO and the
achieved RPO with the source's objectives, and tears the instance down — however the drill
ends: a failure, the time limit, Ctrl-C or SIGTERM. The result is a
:class:`~lifeboat.core.drill.DrillResult`; :func:`record_drill` keeps it.

How each kind is drilled:

``postgres``
    A scratch cluster (:mod:`lifeboat.operations.scratch`: private directory, free port,
    socket only, never archiving, WAL fetched read-only) recovered to the target and
    promoted; the queries run through psycopg. The scratch cluster is started here rather
    than by the kind's ``scratch()`` verb because a PostgreSQL drill recovers to a *point in
    time*, not to a snapshot, and the ``restore_command`` it runs is spelled by the front end.
``redis``
    The kind's ``scratch()``: a redis-server loading the RDB on a free port; each query's
    ``sql`` is a Redis command (``DBSIZE``) run with redis-cli.
``pg_dump``
    A new cluster (initdb, socket only, never archiving) the kind's own restore loads the
    globals and every database into; the queries run through psycopg.
kinds that restore into a directory (files, sqlite, mariadb…)
    Restored into the scratch directory, then the kind's own ``verify``; a files source's
    restored files and bytes are compared with what its snapshot recorded; a sqlite source's
    queries run on the restored files (read-only).
the others (command, ldap…)
    The kind's ``verify`` only — nothing restored, no RTO — and the result says so.
"""

from __future__ import annotations

from lifeboat.operations.drill.context import DrillRequest, OverTimeLimit, SpaceRefused
from lifeboat.operations.drill.records import RecordedDrill, drill_and_record, drill_history, drill_record, record_drill
from lifeboat.operations.drill.run import drill_source, drillable

__all__ = [
    "DrillRequest",
    "OverTimeLimit",
    "RecordedDrill",
    "SpaceRefused",
    "drill_and_record",
    "drill_history",
    "drill_record",
    "drill_source",
    "drillable",
    "record_drill",
]
