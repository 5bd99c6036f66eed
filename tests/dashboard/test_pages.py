"""Each page of the dashboard in headless chromium shows the real repository's data — the same
sources, snapshot counts, ids and times the CLI reports — at desktop size and at phone size
(390×844, no horizontal scroll), with a screenshot of each under test-artifacts/screenshots/."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from tests.dashboard.conftest import DESKTOP, PHONE, Browser, local


def cli_json(browser: Browser, *args: str) -> Any:
    done = browser.api.cli("--json", *args)
    assert done.code == 0, done
    return json.loads(done.stdout)


def short(seconds: float) -> str:
    """A duration under a minute as the dashboard writes it."""
    if seconds < 10 and seconds != round(seconds):
        return f"{seconds:.{2 if seconds < 1 else 1}f}s"
    return f"{round(seconds)}s"


@pytest.fixture(scope="module")
def viewer(browser: Browser) -> Browser:
    browser.sign_in("viewer")
    return browser


def test_the_overview_shows_every_source_with_its_newest_point_and_objectives(viewer: Browser) -> None:
    snapshots = cli_json(viewer, "snapshots", "--source", "files")
    newest = max(snapshots, key=lambda s: s["time"])
    viewer.goto("#/", "#sources")
    cards = {card.get_attribute("data-source"): card for card in viewer.all("#sources .source-card")}
    assert sorted(cards) == ["files", "notes", "stream"]

    files = cards["files"]
    assert "state-green" in files.get_attribute("class")
    assert files.find_element(By.CSS_SELECTOR, ".newest").text == local(newest["time"])
    assert files.find_element(By.CSS_SELECTOR, ".snapshots").text == str(len(snapshots))
    assert files.find_element(By.CSS_SELECTOR, ".age").text.endswith("/ 1d")  # the RPO
    drill = cli_json(viewer, "records", "--kind", "drill")["records"][0]
    assert files.find_element(By.CSS_SELECTOR, ".drill").text.startswith(
        f"{short(drill['summary']['rto_seconds'])} / 10m"
    )
    assert local(drill["time"]) in files.find_element(By.CSS_SELECTOR, ".drill").text

    notes = cards["notes"]  # never backed up: red, with what to do
    assert "state-red" in notes.get_attribute("class")
    assert notes.find_element(By.CSS_SELECTOR, ".badge").text == "Action needed"
    todo = notes.find_element(By.CSS_SELECTOR, ".todo")
    assert todo.text.startswith("What to do:") and len(todo.text) > len("What to do:") + 5
    assert viewer.find("#repo-snapshot-count").text == str(len(cli_json(viewer, "snapshots")))


def test_a_source_page_lists_its_snapshots_and_draws_sizes_and_dedup(viewer: Browser) -> None:
    snapshots = cli_json(viewer, "snapshots", "--source", "files")
    viewer.goto("#/sources/files", "#snapshot-count")
    assert viewer.find("#snapshot-count").text == f"{len(snapshots)} snapshots"
    shown = [e.text for e in viewer.all("code.snapshot-id")]
    newest_first = sorted(snapshots, key=lambda s: s["time"], reverse=True)
    assert shown == [s["short_id"] for s in newest_first]
    times = [e.text for e in viewer.all("table.stack tbody tr td[data-label='Time']")]
    assert times == [local(s["time"]) for s in newest_first]
    charts = viewer.all("figure.chart svg")
    assert len(charts) == 2  # sizes, deduplication
    assert len(charts[0].find_elements(By.CSS_SELECTOR, "circle.dot")) == 2 * len(snapshots)
    assert viewer.all("td[data-label='Check']"), "the source's health checks"


def test_the_drills_page_shows_the_history_and_the_rto_trend(viewer: Browser) -> None:
    drills = cli_json(viewer, "records", "--kind", "drill")["records"]
    viewer.goto("#/drills", "main h1")
    rows = viewer.all("td[data-label='Source']")
    assert [r.text for r in rows] == [d["source"] for d in drills]
    assert [e.text for e in viewer.all("td[data-label='Time']")] == [local(d["time"]) for d in drills]
    chart = viewer.find("figure.chart svg")
    assert len(chart.find_elements(By.CSS_SELECTOR, "circle.dot")) == len(drills)
    assert chart.find_elements(By.CSS_SELECTOR, "line.ref"), "the RTO objective drawn"
    assert not viewer.all("button[data-action]"), "a viewer is offered no drill button"


def test_the_repository_page_shows_its_size_and_growth(viewer: Browser) -> None:
    stats = cli_json(viewer, "stats")
    viewer.goto("#/repository", "#repo-stats")
    assert viewer.find("#repo-snapshots").text == str(stats["snapshots"])
    days = viewer.all("td[data-label='Day']")
    newest = max(s["time"] for s in cli_json(viewer, "snapshots"))
    assert days[0].text == datetime.fromisoformat(newest).astimezone(UTC).strftime("%Y-%m-%d")  # days in UTC
    assert len(viewer.all("figure.chart svg")) == 2  # added per day, size over time
    assert viewer.all("svg rect.bar")


CHARTS_LEFT = "return document.querySelectorAll('figure.chart:not(:has(svg))').length"
PAGES = [
    ("overview", "#/", "#sources"),
    ("source", "#/sources/files", "#snapshot-count"),
    ("jobs", "#/jobs", "#runs table"),
    ("run", "#/runs/{run}", "#run-summary"),
    ("drills", "#/drills", "main h1"),
    ("repository", "#/repository", "#repo-stats"),
    ("login", "#/login", "#token"),
]


@pytest.fixture(scope="module")
def finished_run(browser: Browser) -> str:
    """The id of a backup run started through the API, read to its end on its live log."""
    client = browser.api.client("operator")
    started = client.post("/api/v1/jobs/backup:files/run")
    assert started.status_code == 202, started.text
    run_id: str = started.json()["run_id"]
    with client.stream("GET", f"/api/v1/runs/{run_id}/log") as events:
        assert "event: end" in list(events.iter_lines())  # the stream closes when the run ends
    return run_id


@pytest.mark.parametrize(("name", "route", "ready"), PAGES, ids=[p[0] for p in PAGES])
def test_each_page_fits_a_phone_and_is_photographed(
    browser: Browser, finished_run: str, name: str, route: str, ready: str
) -> None:
    browser.sign_in("operator")
    route = route.format(run=finished_run)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        browser.size(size)
        browser.goto(route, ready)
        browser.wait(lambda d: d.execute_script(CHARTS_LEFT) == 0, "charts drawn")
        assert browser.horizontal_overflow() == 0, f"{name} scrolls sideways at {size}"
        assert browser.screenshot(f"{name}-{label}").stat().st_size > 5000
    browser.size(DESKTOP)
