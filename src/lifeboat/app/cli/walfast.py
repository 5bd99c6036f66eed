"""The fast start of ``wal-push`` and ``wal-fetch``, which PostgreSQL runs once per WAL file.

``lifeboat`` hands these two commands here before importing the CLI framework. When the
background worker has already done the work (the segment is pushed, or prefetched), the
call answers from a status file with nothing but ``os`` imported. When a background pusher
is running and pushing the call's file (a backlog drains as fast as the pusher goes, so the
call for the next file often comes before that file is done), the call waits for its status
here too: the long way would first import the cryptography, compression and configuration
(a hundred milliseconds of CPU for each call, taken from the pusher). Only otherwise does it
load the rest (:mod:`lifeboat.app.cli.walrun`). The command line is read by
:mod:`lifeboat.app.cli.walcall`.
"""

from __future__ import annotations

import os
import sys

from lifeboat.app.cli.walcall import WalInvocation, parse, spool_root

PUSHER_WAIT = 10.0  # seconds a call waits here for a running pusher before going the long way
_POLL = 0.005
_PROBE_EVERY = 0.2


def _pushed(out: str, name: str) -> int | None:
    """0 when the status of ``name`` says it is done (saying so if it was dropped), else None."""
    try:
        with open(os.path.join(out, name + ".ok"), "rb") as found:
            dropped = found.read().strip() == b"dropped"
    except OSError:
        return None
    if dropped:
        sys.stderr.write(f"lifeboat: ALERT: {name} was DROPPED without archiving (archive queue over its limit)\n")
    return 0


def _pusher_running(out: str) -> bool:
    """True while a background pusher holds the spool's lock (probed, never kept)."""
    import fcntl

    try:
        fd = os.open(os.path.join(out, "worker.lock"), os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases the lock if the probe took it
    return False


def _may_wait_for_pusher(inv: WalInvocation, out: str, name: str) -> bool:
    """Whether this call can leave its file to the running pusher without the long way's checks:
    the file is queued, no failure is recorded for it, and no queue limit applies (the long way
    enforces one; the pusher notes the limit it keeps in ``out/queue-limit``)."""
    if inv.queue_max:
        return False
    try:
        with open(os.path.join(out, "queue-limit"), "rb") as noted:
            if noted.read().strip() != b"none":
                return False
    except OSError:
        return False
    pg_wal = os.path.dirname(os.path.abspath(inv.args[0]))
    if not os.path.exists(os.path.join(pg_wal, "archive_status", name + ".ready")):
        return False
    return not os.path.exists(os.path.join(out, name + ".error"))


def _wait_for_pusher(inv: WalInvocation, out: str, name: str) -> int | None:
    """0 once the running pusher has pushed ``name``; None when it failed, stopped or took too
    long. A failure goes the long way, which retries it once with a new pusher that opens the
    repository again: a pusher that opened it before it went away fails on the write ("no such
    object"), the new one says what is wrong ("no Lifeboat repository at ..."), and a real
    conflict fails again and is reported."""
    import time

    deadline = time.monotonic() + PUSHER_WAIT
    next_probe = 0.0
    while True:
        done = _pushed(out, name)
        if done is not None:
            return done
        now = time.monotonic()
        if os.path.exists(os.path.join(out, name + ".error")):
            return None
        if now > deadline:
            return None
        if now >= next_probe:
            next_probe = now + _PROBE_EVERY
            if not _pusher_running(out):
                return _pushed(out, name)  # it may have finished just before it exited
        time.sleep(_POLL)


def _answer_from_spool(inv: WalInvocation) -> int | None:
    """0 when a worker already did the work (or a running pusher just did); None to go the long way."""
    root = spool_root(inv)
    if inv.command == "wal-push":
        name = os.path.basename(inv.args[0])
        out = os.path.join(root, "out")
        done = _pushed(out, name)
        if done is None and _may_wait_for_pusher(inv, out, name) and _pusher_running(out):
            done = _wait_for_pusher(inv, out, name)
        return done
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
