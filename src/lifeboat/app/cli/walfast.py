"""The fast start of ``wal-push`` and ``wal-fetch``, which PostgreSQL runs once per WAL file.

``lifeboat`` hands these two commands here before importing the CLI framework. When the
background worker has already done the work (the segment is pushed, or prefetched), the
call answers from a status file with nothing but ``os`` imported; only otherwise does it
load the rest (:mod:`lifeboat.app.cli.walrun`). The command line is read by
:mod:`lifeboat.app.cli.walcall`.
"""

from __future__ import annotations

import os
import sys

from lifeboat.app.cli.walcall import WalInvocation, parse, spool_root


def _answer_from_spool(inv: WalInvocation) -> int | None:
    """0 when a worker already did the work; None to go the long way."""
    root = spool_root(inv)
    if inv.command == "wal-push":
        name = os.path.basename(inv.args[0])
        status = os.path.join(root, "out", name + ".ok")
        try:
            with open(status, "rb") as found:
                dropped = found.read().strip() == b"dropped"
        except OSError:
            return None
        if dropped:
            sys.stderr.write(f"lifeboat: ALERT: {name} was DROPPED without archiving (archive queue over its limit)\n")
        return 0
    name, destination = inv.args
    if "/" in name:
        return None
    ready = os.path.join(root, "in", name)
    try:
        os.replace(ready, destination)
    except OSError:
        return None
    return 0


def main(argv: list[str] | None = None) -> int | None:
    """Run a wal-push/wal-fetch call; None when ``argv`` is something else."""
    inv = parse(sys.argv[1:] if argv is None else argv)
    if inv is None:
        return None
    if not inv.sync:
        answered = _answer_from_spool(inv)
        if answered is not None:
            return answered
    from lifeboat.app.cli.walrun import run

    return run(inv)
