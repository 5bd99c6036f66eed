"""The pure part of drills: targets, query verdicts, achieved RPO, objectives, the result's JSON
round trip, and the report in every format (the HTML page self-contained with its SVG trend)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from lifeboat.core.drill import (
    FAILED,
    MISSED,
    PASSED,
    DrillResult,
    DrillTarget,
    QueryOutcome,
    achieved_rpo,
    judge,
    random_time,
    seconds_text,
    worst,
)
from lifeboat.core.drill_report import render, trend_svg

T0 = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "kind", "time"),
    [
        ("latest", "latest", None),
        ("RANDOM", "random", None),
        ("2026-11-30T07:00:00+00:00", "time", T0),
        ("2026-11-30 07:00", "time", T0),  # naive: UTC
    ],
)
def test_targets_parse(text: str, kind: str, time: datetime | None) -> None:
    target = DrillTarget.parse(text)
    assert (target.kind, target.time) == (kind, time)


def test_a_target_that_is_no_time_is_refused() -> None:
    with pytest.raises(ValueError, match="not latest, random or an ISO 8601 time"):
        DrillTarget.parse("yesterday")


@pytest.mark.parametrize(
    ("value", "minimum", "maximum", "equals", "problem"),
    [
        (1200, 1000, None, None, ""),
        (12, 1000, None, None, "returned 12, below the minimum 1000"),
        (9000, None, 5000, None, "returned 9000, above the maximum 5000"),
        ("0", None, None, "0", ""),
        (3, None, None, "0", "returned '3', expected '0'"),
        (None, None, None, "0", "returned no value, expected '0'"),
        ("abc", 1, None, None, "returned 'abc', not a number"),
        (None, None, None, None, "returned no value"),
        ("x", None, None, None, ""),
        (2.5, 2.5, 2.5, None, ""),
    ],
)
def test_query_verdicts(value: object, minimum: float | None, maximum: float | None, equals: str | None,
                        problem: str) -> None:  # fmt: skip
    assert judge(value, minimum=minimum, maximum=maximum, equals=equals) == problem


def test_achieved_rpo_is_target_minus_newest_row_and_never_negative() -> None:
    assert achieved_rpo(T0, T0 - timedelta(minutes=3)) == 180
    assert achieved_rpo(T0, T0 + timedelta(seconds=5)) == 0
    assert achieved_rpo(T0, datetime(2026, 11, 30, 6, 59)) == 60  # a naive time is UTC


def test_a_random_time_is_inside_the_window() -> None:
    rng = random.Random(3)
    for _ in range(50):
        moment = random_time(T0, T0 + timedelta(hours=1), rng)
        assert T0 <= moment <= T0 + timedelta(hours=1)
    assert random_time(T0, T0 - timedelta(1)) == T0


def result(rto: float, *, status: str = PASSED, started: datetime = T0, source: str = "db") -> DrillResult:
    r = DrillResult(source=source, kind="postgres", target="latest", started=started, status=status)
    r.add_phase("plan", 1)
    r.add_phase("restore", rto - 3)
    r.add_phase("replay", 1)
    r.add_phase("start", 1)
    r.add_phase("validate", 0.5)
    return r


def test_rto_is_every_phase_up_to_serving_and_objectives_judge_it() -> None:
    r = result(60)
    r.rto_objective, r.rpo_objective, r.achieved_rpo = 30.0, 300.0, 20.0
    assert r.rto == 60 and r.seconds == 60.5
    r.judge_objectives(latest=True)
    assert r.status == MISSED and r.reasons == ["RTO 1m00s is over the objective 30s"]

    slow_rpo = result(10)
    slow_rpo.rpo_objective, slow_rpo.achieved_rpo = 60.0, 600.0
    slow_rpo.judge_objectives(latest=False)  # a point in the past: RPO is not judged
    assert slow_rpo.status == PASSED
    slow_rpo.judge_objectives(latest=True)
    assert slow_rpo.status == MISSED and "achieved RPO 10m00s is over the objective 1m00s" in slow_rpo.reasons

    failed = result(60)
    failed.fail("validation query 'x' returned 1, below the minimum 2")
    failed.rto_objective = 1.0
    failed.judge_objectives(latest=True)
    assert failed.status == FAILED and len(failed.reasons) == 1


def test_a_drill_that_never_served_has_no_rto() -> None:
    r = DrillResult(source="db", kind="postgres", target="latest", started=T0)
    r.add_phase("plan", 0.2)
    r.fail("WAL segment 000000010000000000000002 is missing")
    assert r.rto is None and r.summary()["rto_seconds"] is None


def test_the_json_form_round_trips() -> None:
    r = result(42)
    r.queries.append(QueryOutcome("customers", "1200", "", 0.01))
    r.newest_row, r.achieved_rpo, r.finished = T0 - timedelta(seconds=5), 5.0, T0 + timedelta(minutes=1)
    back = DrillResult.from_json(json.loads(json.dumps(r.to_json())))
    assert back.to_json() == r.to_json()
    with pytest.raises(ValueError, match="not a drill result"):
        DrillResult.from_json({"nothing": 1})


def test_worst_and_seconds_text() -> None:
    assert worst([PASSED, MISSED]) == MISSED and worst([MISSED, FAILED]) == FAILED and worst([]) == PASSED
    assert [seconds_text(s) for s in (0.84, 42, 185, 7800, 200000)] == ["0.8s", "42s", "3m05s", "2h10m", "2d07h"]


def test_the_report_in_every_format() -> None:
    history = [
        result(40, started=T0 + timedelta(days=2)),
        result(70, started=T0 + timedelta(days=1), status=MISSED),
        result(30, started=T0),
        result(5, started=T0, source="cache<&>"),
    ]
    history[1].reasons.append("RTO 70s is over the objective 60s")
    for r in history:
        r.rto_objective = 60.0
    text = render(history, "text")
    assert "RTO 70s is over the objective 60s" in text and "db: passed, phases: plan 1.0s" in text
    doc = json.loads(render(history, "json"))
    assert [d["rto_seconds"] for d in doc["drills"]] == [40, 70, 30, 5]
    md = render(history, "markdown")
    assert md.startswith("# Restore drills") and "| db | postgres | missed | 1m10s |" in md
    page = render(history, "html", now=T0)
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 2
    assert "cache&lt;&amp;&gt;" in page and "cache<&>" not in page  # escaped
    assert "<link" not in page and "<script" not in page and "src=" not in page  # nothing external
    assert "objective 1m00s" in page
    assert render([], "text") == "no drills recorded\n" and "No drills recorded." in render([], "html")


def test_the_trend_has_a_dot_per_drill_that_served() -> None:
    served = [result(30), result(50)]
    never = DrillResult(source="db", kind="postgres", target="latest", started=T0, status=FAILED)
    svg = trend_svg([served[0], never, served[1]], objective=None)
    assert svg.count("<circle") == 2 and "<polyline" in svg and "stroke-dasharray" not in svg


def test_a_teardown_runs_every_step_and_holds_an_interrupt_until_the_end() -> None:
    import signal
    import threading

    from lifeboat.operations.drill.context import teardown

    done: list[str] = []

    def interrupted_here() -> None:
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)  # Ctrl-C, mid tear-down
        done.append("server stopped")

    def fails() -> None:
        raise OSError("cannot remove")

    with pytest.raises(KeyboardInterrupt):
        teardown(interrupted_here, fails, lambda: done.append("directory removed"))
    assert done == ["server stopped", "directory removed"]  # every step ran before the interrupt
    with pytest.raises(OSError, match="cannot remove"):
        teardown(fails, lambda: done.append("after a failure"))
    assert done[-1] == "after a failure"


def test_the_time_limit_interrupts_the_main_thread_and_says_so() -> None:
    import time

    from lifeboat.core.events import Events
    from lifeboat.operations.drill.run import _time_limit

    events = Events()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), _time_limit(0.2, events) as expired:
        time.sleep(30)
    assert expired.is_set() and events.cancel.cancelled and time.monotonic() - started < 10
    with _time_limit(5, Events()) as expired:  # a block that ends in time is left alone
        pass
    assert not expired.is_set()
