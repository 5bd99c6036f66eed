"""What the daemon tells the alerter: a condition, healthy or not, under a stable key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

SEVERITIES = ("info", "warning", "critical")
OBJECTIVE_PREFIX = "objective:"


def utc_now() -> datetime:
    return datetime.now(UTC)


def severity_rank(severity: str) -> int:
    """``info`` < ``warning`` < ``critical``; an unknown word counts as critical."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES) - 1


@dataclass(frozen=True)
class Condition:
    """One observation. ``key`` is stable across runs ("job:backup:db", "archiving:db",
    "objective:db:rpo", "health:db"); ``title`` is one line ("backup of db failed"); ``detail``
    a few lines (an error line, never a secret); ``source`` the configured source's name."""

    key: str
    healthy: bool
    title: str
    detail: str = ""
    source: str | None = None
    severity: str = "critical"  # warning | critical

    @property
    def objective(self) -> bool:
        """Whether this condition is an objective (RPO, RTO): its breach is an "objective" event."""
        return self.key.startswith(OBJECTIVE_PREFIX)
