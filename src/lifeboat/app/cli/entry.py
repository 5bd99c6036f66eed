"""The ``lifeboat`` console entry point.

``wal-push`` and ``wal-fetch`` run once per WAL file, so they are answered by
:mod:`lifeboat.app.cli.walfast` before the CLI framework is even imported; every other
command goes to the full command line in :mod:`lifeboat.app.cli.main`.
"""

from __future__ import annotations


def main() -> None:
    from lifeboat.app.cli.walfast import main as wal

    code = wal()
    if code is not None:
        raise SystemExit(code)
    from lifeboat.app.cli.main import main as full

    full()
