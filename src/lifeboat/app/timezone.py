"""This host's time zone, with its daylight saving rules: the zone of a schedule that names
none when ``daemon.time_zone`` is not set either (docs/daemon.md#schedules).

``datetime.now().astimezone()`` only knows today's offset; a schedule needs the zone's rules,
so the zone is looked up by name: ``TZ`` if it names one, else what ``/etc/localtime``
links to (or the file itself), else ``/etc/timezone``; UTC when none of them says.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, tzinfo
from pathlib import Path

LOCALTIME = Path("/etc/localtime")
TIMEZONE_FILE = Path("/etc/timezone")


def _named(name: str) -> tzinfo | None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def host_zone(
    environ: Mapping[str, str], *, localtime: Path = LOCALTIME, timezone_file: Path = TIMEZONE_FILE
) -> tzinfo:
    """The host's zone (a ``ZoneInfo`` whose ``key`` is its IANA name where one is known)."""
    from zoneinfo import ZoneInfo

    value = environ.get("TZ", "").strip().removeprefix(":")
    if value and not value.startswith("/") and (zone := _named(value)) is not None:
        return zone
    if value.startswith("/"):
        localtime = Path(value)
    try:
        target = os.readlink(localtime)
    except OSError:
        target = ""
    if "zoneinfo/" in target and (zone := _named(target.rpartition("zoneinfo/")[2])) is not None:
        return zone
    try:
        with localtime.open("rb") as file:
            return ZoneInfo.from_file(file, key="localtime")
    except (OSError, ValueError):
        pass
    try:
        name = timezone_file.read_text(encoding="utf-8").strip()
    except OSError:
        name = ""
    return (_named(name) if name else None) or UTC


__all__ = ["host_zone"]
