"""The alert state machine: one message per change of state, reminders at their interval,
a recovery only after a failure; and the rate limit's windows. Pure logic, a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from lifeboat.app.observability.alerts.condition import Condition
from lifeboat.app.observability.alerts.ratelimit import RateWindow
from lifeboat.app.observability.alerts.state import ConditionState, decide
from lifeboat.app.observability.alerts.store import load_states, save_states

T0 = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
FAILED = Condition("job:backup:db", healthy=False, title="backup of db failed", detail="exit 16", source="db")
OK = Condition("job:backup:db", healthy=True, title="backup of db succeeded", source="db")


def run(observations: list[tuple[timedelta, Condition]], reminder: timedelta | None = 4 * HOUR) -> list[str | None]:
    state: ConditionState | None = None
    events = []
    for offset, condition in observations:
        decision = decide(state, condition, T0 + offset, reminder)
        state = decision.state
        events.append(decision.event)
    return events


def test_a_condition_first_seen_healthy_says_nothing() -> None:
    assert run([(timedelta(0), OK), (HOUR, OK)]) == [None, None]


def test_a_failure_is_said_once_however_often_it_is_observed() -> None:
    minutes = [(timedelta(minutes=m), FAILED) for m in range(0, 60, 5)]
    assert run(minutes) == ["failure"] + [None] * 11


def test_healthy_then_failing_then_healthy_is_a_failure_and_a_recovery() -> None:
    assert run([(timedelta(0), OK), (HOUR, FAILED), (2 * HOUR, FAILED), (3 * HOUR, OK), (4 * HOUR, OK)]) == [
        None,
        "failure",
        None,
        "recovery",
        None,
    ]


def test_reminders_come_once_per_interval_while_it_stays_unhealthy() -> None:
    observations = [(timedelta(minutes=m), FAILED) for m in range(0, 13 * 60, 30)]
    events = run(observations, reminder=4 * HOUR)
    reminders = [observations[i][0] for i, event in enumerate(events) if event == "reminder"]
    assert events[0] == "failure"
    assert reminders == [4 * HOUR, 8 * HOUR, 12 * HOUR]


def test_no_reminder_when_reminders_are_off() -> None:
    assert run([(timedelta(0), FAILED), (100 * HOUR, FAILED)], reminder=None) == ["failure", None]


def test_a_recovery_is_said_only_after_a_failure_was() -> None:
    state = ConditionState(healthy=False, severity="critical", title="x", since=T0, notified=None)
    assert decide(state, OK, T0 + HOUR, 4 * HOUR).event is None


def test_a_warning_that_becomes_critical_is_said_again_but_not_the_other_way() -> None:
    warning = Condition("archiving:db", healthy=False, title="archiving of db is behind", severity="warning")
    critical = Condition("archiving:db", healthy=False, title="archiving of db is failing", severity="critical")
    assert run([(timedelta(0), warning), (HOUR, critical), (2 * HOUR, warning), (3 * HOUR, critical)]) == [
        "failure",
        "failure",
        None,
        None,
    ]


def test_an_objective_breach_is_an_objective_event() -> None:
    breach = Condition("objective:db:rpo", healthy=False, title="RPO of db missed: 2h (objective 15min)")
    met = Condition("objective:db:rpo", healthy=True, title="RPO of db met")
    assert run([(timedelta(0), breach), (HOUR, met)]) == ["objective", "recovery"]


def test_states_survive_a_restart_and_a_damaged_file_is_an_empty_history(tmp_path: Path) -> None:
    path = tmp_path / "alerts.json"
    failing = decide(None, FAILED, T0, 4 * HOUR).state
    assert save_states(path, {"job:backup:db": failing})
    loaded = load_states(path)
    assert loaded == {"job:backup:db": failing}
    # after the restart the same failure is not said again, its recovery is
    assert decide(loaded["job:backup:db"], FAILED, T0 + HOUR, 4 * HOUR).event is None
    assert decide(loaded["job:backup:db"], OK, T0 + HOUR, 4 * HOUR).event == "recovery"
    path.write_text("{not json")
    assert load_states(path) == {}
    path.write_text('{"version": 1, "conditions": {"a": {"healthy": 1}, "b": ' + path.read_text()[:0] + "null}}")
    assert load_states(path) == {}


def test_the_rate_limit_drops_the_excess_and_counts_it_once_when_the_window_ends() -> None:
    window = RateWindow(limit=3, period=HOUR)
    admitted = [window.admit(T0 + timedelta(minutes=m)) for m in range(10)]
    assert admitted == [True] * 3 + [False] * 7
    assert window.ended(T0 + timedelta(minutes=59)) == 0  # still open
    assert window.ended(T0 + HOUR) == 7
    assert window.ended(T0 + 2 * HOUR) == 0  # counted once
    assert window.admit(T0 + 2 * HOUR)  # a new window


def test_closing_hands_out_the_open_windows_count() -> None:
    window = RateWindow(limit=1, period=HOUR)
    window.admit(T0)
    window.admit(T0)
    assert window.ended(T0, force=True) == 1
