"""The defaults every front end shares (one source of truth).

The configuration model's defaults, the command line's and a request's built without
either are these values; ``tests/unit/test_resolve.py`` holds them to it.
"""

from __future__ import annotations

from lifeboat.core.units import parse_duration

# How long a local base backup waits for its WAL to reach the repository (0: do not wait).
ARCHIVE_WAIT = "5min"
ARCHIVE_WAIT_SECONDS = parse_duration(ARCHIVE_WAIT).total_seconds()

# How long an operation waits for a conflicting lock before it gives up.
LOCK_WAIT = "0s"
LOCK_WAIT_SECONDS = parse_duration(LOCK_WAIT).total_seconds()
