"""What slapd's configuration says about the server: its databases — number, backend, suffix,
data directory — and its pid file. Read from the configuration database (number 0,
``cn=config``, as ``slapcat -n 0`` writes it) or from an old ``slapd.conf`` file, which
slapcat cannot dump as database 0."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from lifeboat.sources.ldap.ldif import parse_entries

_DATABASE = re.compile(r"^\{(-?\d+)\}(\w+)$")


@dataclass(frozen=True)
class Database:
    """One of slapd's databases, as ``slapcat -n NUMBER`` names it."""

    number: int
    backend: str  # mdb, config, ldif…
    suffix: str = ""
    directory: str = ""  # olcDbDirectory: where its files are

    def to_json(self) -> dict[str, object]:
        return {"number": self.number, "backend": self.backend, "suffix": self.suffix, "directory": self.directory}


@dataclass(frozen=True)
class ServerLayout:
    databases: tuple[Database, ...]
    pid_file: str = ""

    def data_databases(self) -> tuple[Database, ...]:
        """The databases that hold entries: those with a suffix (not the frontend, not cn=config)."""
        return tuple(d for d in self.databases if d.number > 0 and d.suffix)

    def database(self, number: int) -> Database | None:
        return next((d for d in self.databases if d.number == number), None)


def layout_of(config_ldif: bytes) -> ServerLayout:
    """The layout the configuration database's LDIF (``slapcat -n 0``) describes."""
    databases: list[Database] = []
    pid_file = ""
    for dn, attributes in parse_entries(config_ldif):
        if dn.lower() == "cn=config":
            pid_file = next(iter(attributes.get("olcpidfile", [])), "")
            continue
        for value in attributes.get("olcdatabase", []):
            found = _DATABASE.match(value)
            if found is None:
                continue
            databases.append(
                Database(
                    number=int(found.group(1)),
                    backend=found.group(2),
                    suffix=next(iter(attributes.get("olcsuffix", [])), ""),
                    directory=next(iter(attributes.get("olcdbdirectory", [])), ""),
                )
            )
    return ServerLayout(tuple(sorted(databases, key=lambda d: d.number)), pid_file)


def layout_of_conf(text: str) -> ServerLayout:
    """The layout a ``slapd.conf`` describes: each ``database`` directive starts the next
    database (1, 2…; ``config`` is 0, ``frontend`` -1), ``suffix`` and ``directory`` belong to it."""
    lines: list[str] = []
    for raw in text.splitlines():
        if raw[:1].isspace() and lines and raw.strip():
            lines[-1] += " " + raw.strip()  # a line starting with white space continues the previous one
        elif raw.strip() and not raw.lstrip().startswith("#"):
            lines.append(raw.strip())
    databases: list[dict[str, str | int]] = []
    pid_file = ""
    number = 0
    for line in lines:
        keyword, _, rest = line.partition(" ")
        value = rest.strip().strip('"')
        keyword = keyword.lower()
        if keyword == "pidfile":
            pid_file = value
        elif keyword == "database":
            backend = value.lower()
            if backend == "config":
                current = 0
            elif backend == "frontend":
                current = -1
            else:
                number += 1
                current = number
            databases.append({"number": current, "backend": backend, "suffix": "", "directory": ""})
        elif keyword in ("suffix", "directory") and databases and not databases[-1][keyword]:
            databases[-1][keyword] = value
    found = (Database(int(d["number"]), str(d["backend"]), str(d["suffix"]), str(d["directory"])) for d in databases)
    return ServerLayout(tuple(sorted(found, key=lambda d: d.number)), pid_file)


def running_pid(pid_file: str) -> int | None:
    """The pid in ``pid_file`` if that process is alive (slapd removes the file when it stops)."""
    if not pid_file:
        return None
    try:
        with open(pid_file, encoding="ascii", errors="replace") as handle:
            pid = int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid
