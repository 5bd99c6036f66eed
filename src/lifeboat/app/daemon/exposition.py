"""The daemon's /metrics: app/observability/metrics.py's one metric set (the last health
report and the jobs' statistics) plus the archiving watch's state per postgres source.

Read at each scrape; names and labels follow that module's conventions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from lifeboat.app.daemon.archiving import ArchivingState

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from lifeboat.app.observability.metrics import MetricsInput


class _ArchivingCollector:
    def __init__(self, states: Callable[[], list[ArchivingState]]) -> None:
        self._states = states

    def collect(self) -> Iterator[object]:
        from prometheus_client.core import GaugeMetricFamily

        state = GaugeMetricFamily(
            "lifeboat_archiving_state",
            "WAL archiving of a postgres source as the daemon last checked it: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
            labels=["source"],
        )
        checked = GaugeMetricFamily(
            "lifeboat_archiving_check_timestamp_seconds",
            "When the daemon last checked WAL archiving.",
            labels=["source"],
        )
        for watched in self._states():
            state.add_metric([watched.source], int(watched.state))
            checked.add_metric([watched.source], watched.checked.timestamp())
        yield state
        yield checked


def daemon_registry(
    provide: Callable[[], MetricsInput], archiving: Callable[[], list[ArchivingState]]
) -> CollectorRegistry:
    """The registry /metrics serves."""
    from lifeboat.app.observability.metrics import registry

    found = registry(provide)
    found.register(_ArchivingCollector(archiving))  # type: ignore[arg-type]
    return found
