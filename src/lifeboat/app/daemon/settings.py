"""The daemon's own settings, read from the configuration's ``daemon:`` section
(config/model.py DaemonConfig) with durations in seconds and the listen address split."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from lifeboat.core.host import this_host
from lifeboat.errors import ConfigError

DEFAULT_LISTEN = "127.0.0.1:7800"


def seconds(value: Any, default: float) -> float:
    """A duration given as a timedelta, a number of seconds or text (``1min``)."""
    if value is None:
        return default
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float):
        return float(value)
    from lifeboat.core.units import parse_duration

    return parse_duration(str(value)).total_seconds()


def split_listen(text: str, *, what: str = "daemon.listen") -> tuple[str, int]:
    """``host:port`` (``[::1]:7800`` for IPv6) as (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:  # 0: any free port
        raise ConfigError(f"{what} {text!r} is not host:port", hint="e.g. 127.0.0.1:7800")
    return host.strip("[]") or "127.0.0.1", int(port)


@dataclass(frozen=True)
class DaemonSettings:
    catalog: str | None = None
    listen: str = DEFAULT_LISTEN
    max_parallel_jobs: int = 2
    shutdown_deadline: float = 60.0
    archiving_check: float = 60.0
    health_check: float = 300.0
    host: str = ""
    keep_history: float | None = 180 * 86400.0  # seconds; None: the catalog keeps every run
    tls: tuple[str, str] | None = None  # (certificate, key) PEM files

    @classmethod
    def of(cls, config: Any, *, listen: str | None = None) -> DaemonSettings:
        """The settings of ``config`` (its ``daemon`` section, defaults where absent); ``listen``
        overrides ``daemon.listen`` (``serve --listen``)."""
        section = getattr(config, "daemon", None)

        def get(name: str) -> Any:
            return getattr(section, name, None) if section is not None else None

        chosen = listen or get("listen") or DEFAULT_LISTEN
        split_listen(chosen, what="--listen" if listen else "daemon.listen")
        catalog = get("catalog")
        tls = get("tls")
        return cls(
            catalog=str(catalog) if catalog else None,
            listen=chosen,
            max_parallel_jobs=int(get("max_parallel_jobs") or 2),
            shutdown_deadline=seconds(get("shutdown_deadline"), 60.0),
            archiving_check=seconds(get("archiving_check"), 60.0),
            health_check=seconds(get("health_check"), 300.0),
            host=str(get("host") or this_host()),
            keep_history=(seconds(get("keep_history"), 0.0) or None) if section is not None else 180 * 86400.0,
            tls=(str(tls.certificate), str(tls.key)) if tls is not None else None,
        )
