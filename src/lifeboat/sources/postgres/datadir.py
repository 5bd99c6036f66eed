"""The file work of a PostgreSQL restore: taking over the target directories, and turning the
restored files into a data directory that recovers (``recovery.signal``, the recovery settings
in ``postgresql.auto.conf``, the tablespace links, no leftover pid file or spool).

Run as root, everything created here gets the owner the snapshot recorded for the data
directory; the private files get mode 0600 and the directories 0700, as ``initdb`` makes them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from lifeboat.core.tree import Node
from lifeboat.errors import RestoreRefused, option
from lifeboat.sources.files.restorer import check_target
from lifeboat.sources.postgres import recoveryconf
from lifeboat.sources.postgres.layout import SPOOL_DIR_NAME
from lifeboat.sources.postgres.pgdata import server_running

# What a restored data directory must not keep from the server it was copied from.
LEFTOVERS = ("postmaster.pid", "postmaster.opts", recoveryconf.STANDBY_SIGNAL, recoveryconf.SIGNAL)


def check_take_over(path: str, *, force: bool, what: str) -> bool:
    """Whether the restore may write into ``path`` (the data directory or a tablespace's):
    refused when a server runs on it or it is not empty, unless ``force``. Writes nothing
    (a restore plan runs it too); True when ``force`` will have to empty it."""
    running = server_running(path) if os.path.isdir(path) else None
    if running is not None and not force:
        raise RestoreRefused(
            f"{what} {path} belongs to a running server (pid {running.pid})",
            hint=f"stop it first, or restore elsewhere; {option('force')} replaces it (the server's files are removed)",
        )
    try:
        check_target(path, force=False)
    except RestoreRefused:
        if not force:
            raise RestoreRefused(f"{what} {path} is not empty") from None
        return True
    return False


def take_over(path: str, *, force: bool, what: str) -> None:
    """Make sure the restore may write into ``path`` (:func:`check_take_over`); with ``force``
    a non-empty one is emptied."""
    if check_take_over(path, force=force, what=what):
        for entry in os.scandir(path):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)


def chown_like(path: Path, node: Node) -> None:
    """Give ``path`` the owner ``node`` records (only root can)."""
    if os.geteuid() == 0:
        os.chown(path, node.uid, node.gid, follow_symlinks=False)


def seal_tablespace(location: str, node: Node) -> None:
    """A restored tablespace directory: private to its owner, as PostgreSQL wants it."""
    os.chmod(location, 0o700)
    chown_like(Path(location), node)


def prepare_recovery(
    target: Path,
    data_node: Node,
    locations: Mapping[int, str],
    settings: Mapping[str, str],
    *,
    when: datetime,
) -> None:
    """Turn the restored files in ``target`` into a data directory that starts recovering with
    ``settings``: leftovers of the old server removed, ``pg_tblspc`` links to ``locations``
    (tablespace oid → directory, ``tablespace_map`` rewritten to match), ``settings`` written to
    ``postgresql.auto.conf`` (stamped ``when``) and ``recovery.signal`` created."""
    os.chmod(target, 0o700)
    chown_like(target, data_node)
    for name in LEFTOVERS:
        (target / name).unlink(missing_ok=True)
    spool = target / SPOOL_DIR_NAME
    if spool.exists():
        shutil.rmtree(spool)
    for sub in ("pg_wal/archive_status",):
        (target / sub).mkdir(parents=True, exist_ok=True)
        chown_like(target / sub, data_node)
    tblspc = target / "pg_tblspc"
    for oid, location in locations.items():
        link = tblspc / str(oid)
        link.unlink(missing_ok=True)
        tblspc.mkdir(exist_ok=True)
        os.symlink(location, link)
        chown_like(link, data_node)
    map_file = target / "tablespace_map"
    if map_file.exists():
        map_file.write_text(recoveryconf.rewrite_tablespace_map(map_file.read_text(), locations))
    auto = target / recoveryconf.AUTO_CONF
    existing = auto.read_text() if auto.exists() else ""
    auto.write_text(recoveryconf.rewrite_auto_conf(existing, settings, when=when))
    signal = target / recoveryconf.SIGNAL
    signal.write_text("")
    for path in (auto, signal, map_file):
        if path.exists():
            os.chmod(path, 0o600)
            chown_like(path, data_node)


def drop_prefetched_wal(target: Path) -> None:
    """Remove the WAL a started copy's fetcher prefetched and recovery did not use."""
    inbox = target / SPOOL_DIR_NAME
    if inbox.is_dir():
        for spool in inbox.iterdir():
            shutil.rmtree(spool / "in", ignore_errors=True)
