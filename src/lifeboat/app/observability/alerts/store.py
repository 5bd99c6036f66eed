"""The conditions' states in a JSON file, so a daemon restart neither re-sends a failure nor
forgets to send its recovery. Written whole (a temporary file renamed into place)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from lifeboat.app.observability.alerts.state import ConditionState
from lifeboat.operations.statefile import read_state_file, write_state_file

VERSION = 1


def load_states(path: Path) -> dict[str, ConditionState]:
    """The states saved at ``path``; empty when the file is missing, unreadable or not ours."""
    doc = read_state_file(path, VERSION)
    states: dict[str, ConditionState] = {}
    conditions = doc.get("conditions") if doc is not None else None
    if not isinstance(conditions, dict):
        return states
    for key, item in conditions.items():
        try:
            states[str(key)] = _state(item)
        except (KeyError, TypeError, ValueError):
            continue  # one damaged entry costs that condition's history, not the others'
    return states


def save_states(path: Path, states: dict[str, ConditionState]) -> bool:
    """Write ``states`` to ``path``; False when it could not be written."""
    doc = {"version": VERSION, "conditions": {key: _document(state) for key, state in sorted(states.items())}}
    return write_state_file(path, doc)


def _document(state: ConditionState) -> dict[str, Any]:
    return {
        "healthy": state.healthy,
        "severity": state.severity,
        "title": state.title,
        "since": state.since.isoformat(),
        "notified": state.notified.isoformat() if state.notified is not None else None,
    }


def _state(item: Any) -> ConditionState:
    notified = item["notified"]
    since = datetime.fromisoformat(item["since"])
    if since.tzinfo is None:
        raise ValueError("naive time")
    return ConditionState(
        healthy=bool(item["healthy"]),
        severity=str(item["severity"]),
        title=str(item["title"]),
        since=since,
        notified=datetime.fromisoformat(notified) if notified is not None else None,
    )
