"""This host's name, as snapshots, locks, jobs and the audit log record it.

``os.uname().nodename`` is what ``socket.gethostname()`` returns on Linux, without importing
``socket`` (and with it ``selectors`` and ``array``): a command that opens no connection need
not load them.
"""

from __future__ import annotations

import os


def this_host() -> str:
    return os.uname().nodename
