"""Recovery settings for a restored data directory (``postgresql.auto.conf`` + ``recovery.signal``).

Settings that steer a recovery are removed from ``postgresql.auto.conf`` first — a copy
of a cluster that was itself restored still carries its old ``recovery_target_*`` lines,
which would silently stop this recovery at the old target — then Lifeboat's own block is
appended (the last value of a setting wins).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from lifeboat.core.basebackup import RestoreTarget

AUTO_CONF = "postgresql.auto.conf"
SIGNAL = "recovery.signal"
STANDBY_SIGNAL = "standby.signal"
TARGETS = (
    "recovery_target",
    "recovery_target_name",
    "recovery_target_time",
    "recovery_target_xid",
    "recovery_target_lsn",
)
MARKER = "# --- lifeboat restore"
RECOVERY_SETTINGS = (
    "restore_command",
    "recovery_end_command",
    "archive_cleanup_command",
    "recovery_target",
    "recovery_target_name",
    "recovery_target_time",
    "recovery_target_xid",
    "recovery_target_lsn",
    "recovery_target_inclusive",
    "recovery_target_timeline",
    "recovery_target_action",
    "primary_conninfo",
    "primary_slot_name",
)


def quote(value: str) -> str:
    """A postgresql.conf string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def target_settings(target: RestoreTarget, timeline: str, action: str) -> dict[str, str]:
    settings: dict[str, str] = {"recovery_target_timeline": timeline}
    if target.time is not None:
        moment = target.time if target.time.tzinfo else target.time.replace(tzinfo=UTC)
        settings["recovery_target_time"] = moment.astimezone(UTC).isoformat(sep=" ")
    elif target.lsn is not None:
        settings["recovery_target_lsn"] = str(target.lsn)
    elif target.xid is not None:
        settings["recovery_target_xid"] = str(target.xid)
    elif target.name is not None:
        settings["recovery_target_name"] = target.name
    elif target.immediate:
        settings["recovery_target"] = "immediate"
    if target.kind != "latest":
        settings["recovery_target_inclusive"] = "true" if target.inclusive else "false"
        settings["recovery_target_action"] = action
    return settings


def _setting_name(line: str) -> str:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return ""
    return stripped.split("=", 1)[0].strip().lower()


def rewrite_auto_conf(existing: str, settings: Mapping[str, str], *, when: datetime) -> str:
    """``existing`` without earlier recovery settings, with ``settings`` appended."""
    overridden = set(RECOVERY_SETTINGS) | {k.lower() for k in settings}
    kept = [
        line for line in existing.splitlines() if _setting_name(line) not in overridden and not line.startswith(MARKER)
    ]
    block = [f"{MARKER} {when.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z: recovery settings (unused after promotion)"]
    block += [f"{name} = {quote(value)}" for name, value in settings.items()]
    return "\n".join([*kept, *block]) + "\n"


def rewrite_tablespace_map(existing: str, locations: Mapping[int, str]) -> str:
    """``tablespace_map`` (``<oid> <path>`` lines) with the paths of ``locations`` replaced."""
    lines = []
    for line in existing.splitlines():
        oid, sep, _path = line.partition(" ")
        if sep and oid.isdigit() and int(oid) in locations:
            path = locations[int(oid)].replace("\\", "\\\\").replace("\n", "\\\n")
            lines.append(f"{oid} {path}")
        else:
            lines.append(line)
    return "\n".join(lines) + ("\n" if lines else "")


def _value(line: str) -> str:
    """The value of a ``name = value`` line: a quoted literal unquoted, a bare word, or ''."""
    raw = line.split("=", 1)[1].strip() if "=" in line else ""
    if not raw.startswith("'"):
        return raw.split("#", 1)[0].strip()
    value, i = [], 1
    while i < len(raw):
        if raw[i] == "'" and raw[i + 1 : i + 2] == "'":
            value.append("'")
            i += 2
        elif raw[i] == "'":
            break
        else:
            value.append(raw[i])
            i += 1
    return "".join(value)


def recovering_to_a_target(data_dir: str | Path) -> bool:
    """Whether ``data_dir`` is in archive recovery toward an explicit target (set in
    ``postgresql.auto.conf``) that PostgreSQL 13 or later insists on reaching.

    Then a WAL file answered as not archived cannot end recovery silently short of the
    target: PostgreSQL stops with "recovery ended before configured recovery target was
    reached" unless it has reached the target already (and only read ahead).
    """
    path = Path(data_dir)
    if not (path / SIGNAL).exists() or (path / STANDBY_SIGNAL).exists():
        return False
    try:
        major = int((path / "PG_VERSION").read_text().strip().split(".")[0])
        text = (path / AUTO_CONF).read_text(errors="replace")
    except (OSError, ValueError):
        return False
    if major < 13:
        return False
    values = {name: "" for name in TARGETS}
    for line in text.splitlines():
        name = _setting_name(line)
        if name in values:
            values[name] = _value(line)  # the last one wins, as in PostgreSQL
    return any(values.values())
