"""OpenLDAP's offline tools, ``slapcat`` and ``slapadd``: their argv, run as the server's user.

Both read slapd's configuration — a ``cn=config`` directory (``-F``, what Debian ships) or an
old ``slapd.conf`` file (``-f``) — and open the databases' files directly, so they must run
as the user slapd runs as: a ``lock.mdb`` or ``data.mdb`` that root creates is one slapd
cannot open. A database is named by its number (``-n``): 0 is the configuration itself,
1… the databases in the order the configuration lists them.
"""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Mapping
from dataclasses import dataclass

from lifeboat.errors import MissingTool, UsageError, option
from lifeboat.sources.tools.pg import as_user
from lifeboat.sources.tools.program import Producer

# slapcat and slapadd live in /usr/sbin, which an ordinary user's PATH often lacks.
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def find_tool(name: str) -> str:
    """The path of ``slapcat`` or ``slapadd``; MissingTool when OpenLDAP's server is not installed."""
    found = shutil.which(name) or next(
        (os.path.join(d, name) for d in _SBIN if os.access(os.path.join(d, name), os.X_OK)), None
    )
    if found is None:
        raise MissingTool(f"{name} was not found", hint="install OpenLDAP's server tools (Debian: slapd)")
    return found


@dataclass(frozen=True)
class SlapdConfig:
    """Where slapd's configuration is (``config_dir`` for -F, else ``config_file`` for -f) and
    which OS user its tools run as (None: whoever runs Lifeboat)."""

    config_dir: str | None = None
    config_file: str | None = None
    run_as: str | None = None

    @property
    def where(self) -> str:
        return self.config_dir or self.config_file or ""

    def config_args(self) -> list[str]:
        return ["-F", self.config_dir] if self.config_dir else ["-f", self.config_file or ""]

    def slapcat(self, database: int) -> list[str]:
        """``slapcat`` writing database ``database`` as LDIF to standard output."""
        return [*as_user(self.run_as), find_tool("slapcat"), *self.config_args(), "-n", str(database)]

    def slapadd(self, database: int, *, quick: bool = False, dry_run: bool = False) -> list[str]:
        """``slapadd`` reading LDIF for database ``database`` from standard input; ``dry_run``
        (``-u``): every entry checked against the schema, nothing written."""
        return [
            *as_user(self.run_as),
            find_tool("slapadd"),
            *self.config_args(),
            "-n",
            str(database),
            *(["-q"] if quick else []),
            *(["-u"] if dry_run else []),
        ]

    def uid_gid(self) -> tuple[int, int] | None:
        """The owner that files made for the server get (None: leave them as made)."""
        if self.run_as is None or os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam(self.run_as)
        except KeyError:
            raise UsageError(
                f"there is no user {self.run_as!r} on this host to run slapd's tools as",
                hint=f"create slapd's user (install slapd), or name another with {option('run_as')}",
            ) from None
        return entry.pw_uid, entry.pw_gid


def default_user(config_dir: str | None, config_file: str | None, given: str | None) -> str | None:
    """Who the tools run as: ``given``, else (when we are root) the owner of the configuration,
    which is the user slapd runs as (``openldap`` on Debian); root's own files need nobody else."""
    if given:
        return given
    if os.geteuid() != 0:
        return None
    for path in (config_dir, config_file):
        if path and os.path.exists(path):
            uid = os.stat(path).st_uid
            if uid == 0:
                return None
            try:
                return pwd.getpwuid(uid).pw_name
            except KeyError:
                return None
    return None


def read_output(argv: list[str], env: Mapping[str, str] | None, *, limit: int | None = None) -> bytes:
    """Run ``argv`` and return its standard output (at most ``limit`` bytes, then it is stopped);
    raises SourceError unless it exited 0 (when read whole)."""
    with Producer(argv, env=env) as running:
        if limit is not None:
            return running.stdout.read(limit)
        data = running.stdout.read()
        running.finish()
    return data
