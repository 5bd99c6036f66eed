"""A health report in the Nagios plugin conventions: one status line with performance data.

``LIFEBOAT CRITICAL - main-db: archived WAL ends 2h ago (rpo 15min) | 'main-db_rpo_age_seconds'=7200;720;900;0 …``

The exit code is the state's value (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN). Performance data
follow the plugin guidelines: ``'label'=value[UOM];[warn];[crit];[min];[max]``, labels quoted,
a quote inside a label doubled, an unknown value written ``U``. The line fits NRPE v2's
1,024 bytes (:data:`LINE_LIMIT`): a long headline is cut with "…" and the performance data
that do not fit are left out whole (worst sources' first; a datum is never cut in half).
"""

from __future__ import annotations

from lifeboat.core.health import READY_BACKLOG_WARNING, RPO_WARNING_FRACTION
from lifeboat.operations.health import HealthReport

LINE_LIMIT = 1024  # bytes NRPE v2 passes on (later versions pass more; a short line suits them too)
HEADLINE_LIMIT = 400  # bytes of the headline, so some performance data always fit


def _label(text: str) -> str:
    return "'" + text.replace("'", "''").replace("=", "_") + "'"


def _number(value: float | None) -> str:
    if value is None:
        return "U"
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"


def _datum(label: str, value: float | None, warn: float | None = None, crit: float | None = None) -> str:
    fields = [_number(value), "" if warn is None else _number(warn), "" if crit is None else _number(crit), "0"]
    return f"{_label(label)}={';'.join(fields)}"


def perfdata(report: HealthReport) -> list[str]:
    """The performance data of ``report``: per source its restorable point's age against rpo,
    PostgreSQL's archiver failures and backlog; the repository's free bytes and stale locks."""
    data: list[str] = []
    for source in sorted(report.sources, key=lambda s: -int(s.state)):  # the worst first: they survive a cut
        rpo = source.rpo.total_seconds() if source.rpo is not None else None
        age = None
        if source.newest_restorable is not None:
            age = max(0.0, (report.time - source.newest_restorable).total_seconds())
        warn = RPO_WARNING_FRACTION * rpo if rpo is not None else None
        data.append(_datum(f"{source.name}_rpo_age_seconds", round(age) if age is not None else None, warn, rpo))
        probe = source.cluster
        if probe is not None and probe.archiver is not None:
            data.append(_datum(f"{source.name}_archiver_failed", probe.archiver.failed_count))
        if probe is not None and probe.ready is not None:
            # Nagios thresholds alert *above* the value: WARNING from 32 files is "31"
            data.append(_datum(f"{source.name}_ready_files", probe.ready, READY_BACKLOG_WARNING - 1))
    repository = report.repository
    if repository.free_bytes is not None:
        data.append(_datum("repository_free_bytes", repository.free_bytes))
    if repository.reachable:
        data.append(_datum("repository_stale_locks", len(repository.stale_locks), 0))  # one is a warning
    return data


def _cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` UTF-8 bytes, ending with "…" when cut."""
    if len(text.encode()) <= limit:
        return text
    kept = text.encode()[: limit - len("…".encode())].decode(errors="ignore")
    return kept.rstrip() + "…"


def status_line(report: HealthReport, *, limit: int = LINE_LIMIT) -> str:
    """The plugin's one line: ``LIFEBOAT <STATE> - <what> | <perfdata>``, at most ``limit`` bytes."""
    text = _cut(report.headline().replace("|", "/").replace("\n", " "), HEADLINE_LIMIT)
    line = f"LIFEBOAT {report.state.name} - {text}"
    data: list[str] = []
    size = len(line.encode()) + len(" | ")
    for datum in perfdata(report):
        extra = len(datum.encode()) + (1 if data else 0)
        if size + extra > limit:
            break
        data.append(datum)
        size += extra
    return f"{line} | {' '.join(data)}" if data else line


def unknown_line(message: str) -> str:
    """The line for a health check that could not run at all (a configuration error)."""
    return "LIFEBOAT UNKNOWN - " + message.replace("|", "/").replace("\n", " ")
