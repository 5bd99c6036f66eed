"""The command line of a ``wal-push``/``wal-fetch`` call and the spool it uses, read with
nothing but ``os`` (the fast start, :mod:`lifeboat.app.cli.walfast`, runs before anything else).

Usage (``--help`` goes to the full CLI)::

    lifeboat [-r REPO] [-c CONFIG] [-q] [-v] wal-push [--source S] [--spool DIR]
             [--queue-max SIZE] [--sync] PATH
    lifeboat [-r REPO] [-c CONFIG] [-q] [-v] wal-fetch [--source S] [--spool DIR] [--sync] NAME PATH

Because speed is the point, this module reads the few environment variables it needs
itself (``LIFEBOAT_REPO``, ``LIFEBOAT_CONFIG``, ``LIFEBOAT_WAL_SPOOL``) instead of going
through ``context.py``.
"""

from __future__ import annotations

import os

COMMANDS = ("wal-push", "wal-fetch")
SPOOL_DIR_NAME = "lifeboat_spool"
_GLOBAL_VALUE = {"--repo": "repo", "-r": "repo", "--config": "config", "-c": "config"}
_COMMAND_VALUE = {"--source": "source", "-s": "source", "--spool": "spool", "--queue-max": "queue_max"}


class WalInvocation:
    """The parsed command line of one ``wal-push``/``wal-fetch`` call."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.repo: str | None = None
        self.config: str | None = None
        self.quiet = False
        self.verbose = 0
        self.source: str | None = None
        self.spool: str | None = None
        self.queue_max: str | None = None
        self.sync = False
        self.args: list[str] = []

    def settings(self) -> dict[str, str | None]:
        return {k: getattr(self, k) for k in ("repo", "config", "source", "spool", "queue_max")}


def parse(argv: list[str]) -> WalInvocation | None:
    """The invocation, or None when argv is not a fast-path call (other command, --help, errors)."""
    i = 0
    values: dict[str, str] = {}
    quiet = False
    verbose = 0
    while i < len(argv) and argv[i].startswith("-"):
        arg = argv[i]
        key, eq, value = arg.partition("=")
        if key in _GLOBAL_VALUE:
            if not eq:
                if i + 1 >= len(argv):
                    return None
                value = argv[i + 1]
                i += 1
            values[_GLOBAL_VALUE[key]] = value
        elif arg in ("-q", "--quiet"):
            quiet = True
        elif arg in ("-v", "--verbose"):
            verbose += 1
        elif arg == "--json":
            pass
        else:
            return None
        i += 1
    if i >= len(argv) or argv[i] not in COMMANDS:
        return None
    inv = WalInvocation(argv[i])
    inv.repo = values.get("repo")
    inv.config = values.get("config")
    inv.quiet, inv.verbose = quiet, verbose
    i += 1
    while i < len(argv):
        arg = argv[i]
        key, eq, value = arg.partition("=")
        if arg == "--":
            inv.args.extend(argv[i + 1 :])
            break
        if key in _COMMAND_VALUE:
            if not eq:
                if i + 1 >= len(argv):
                    return None
                value = argv[i + 1]
                i += 1
            setattr(inv, _COMMAND_VALUE[key], value)
        elif arg == "--sync":
            inv.sync = True
        elif arg.startswith("-") and arg != "-":
            return None  # --help and anything unknown: the full CLI explains
        else:
            inv.args.append(arg)
        i += 1
    expected = 1 if inv.command == "wal-push" else 2
    return inv if len(inv.args) == expected else None


def data_directory(path_arg: str) -> str:
    """The data directory a ``%p`` path belongs to (PostgreSQL runs us inside it)."""
    parent = os.path.dirname(os.path.abspath(path_arg))
    if os.path.basename(parent) == "pg_wal":
        return os.path.dirname(parent)
    return os.getcwd()


def spool_root(inv: WalInvocation) -> str:
    """The spool of this cluster and repository: ``<spool base>/<identity>``.

    The identity hashes the data directory and everything that picks the repository
    (``--repo``, ``--config`` and that file's size and mtime, ``--source``), so a status
    written for one repository is never taken as done for another.
    """
    import zlib  # not hashlib: loading OpenSSL costs this call a third of its time

    path_arg = inv.args[-1]
    pgdata = data_directory(path_arg)
    base = inv.spool or os.environ.get("LIFEBOAT_WAL_SPOOL") or os.path.join(pgdata, SPOOL_DIR_NAME)
    config = inv.config or os.environ.get("LIFEBOAT_CONFIG") or ""
    config_stamp = ""
    if config:
        try:
            st = os.stat(config)
            config_stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            config_stamp = "missing"
    repo = inv.repo or os.environ.get("LIFEBOAT_REPO") or ""
    identity = "\0".join((pgdata, os.path.abspath(config) if config else "", config_stamp, repo, inv.source or ""))
    key = identity.encode(errors="surrogateescape")  # paths are bytes: a non-UTF-8 name is fine
    return os.path.join(base, f"{zlib.crc32(key):08x}{zlib.crc32(key[::-1]):08x}")
