"""The PostgreSQL page in headless chromium, on a real cluster archiving into a real repository
served by a real ``lifeboat serve``: the recoverable window, the base backups and each
timeline's WAL ranges are those ``lifeboat pg info`` reports, drawn on a time axis and a segment
axis; photographed at desktop and phone size."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from lifeboat.sources.tools.pgcluster import chown_tree
from tests.api.conftest import Api, serve
from tests.dashboard.conftest import DESKTOP, PHONE, Browser, local, new_browser
from tests.postgres.conftest import OS_USER, PgWorld, WorldFactory, server_lifeboat, worlds  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-dashboard")]


def configure(world: PgWorld) -> dict[str, str]:
    c = world.cluster
    config = world.base / "lifeboat.yaml"
    config.write_text(
        f"""
repositories:
  main:
    url: {world.repo_dir}
    password_file: {world.password_file}
default_repository: main
daemon:
  shutdown_deadline: 20s
  health_check: 1h
  archiving_check: 1h
sources:
  db:
    type: postgres
    data_directory: {c.data_dir}
    host: {c.socket_dir}
    port: {c.port}
    user: postgres
    rpo: 1h
    rto: 30m
    archive_wait: 60s
    retention: {{recovery_window: 7d}}
"""
    )
    chown_tree(config, OS_USER)
    return {"LIFEBOAT_STATE_DIR": str(world.base / "state"), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}


@pytest.fixture(scope="module")
def pg_browser(worlds: WorldFactory) -> Iterator[Browser]:  # noqa: F811
    """Two base backups of ``db`` with WAL archived after each; the daemon and a browser on it."""
    world = worlds()
    env = configure(world)
    config = str(world.base / "lifeboat.yaml")
    for step in range(2):
        done = world.lifeboat("-c", config, "backup", "--source", "db", env={**env, "LIFEBOAT_REPO": ""})
        assert done.code == 0, done
        world.cluster.psql(f"CREATE TABLE t{step} AS SELECT generate_series(1, 1000) AS x")
        world.wait_archived(world.switch_wal())
    api = serve(world.base, env)
    driver = new_browser()
    try:
        yield Browser(driver, api)
    finally:
        driver.quit()
        api.stop()


def pg_info(api: Api) -> Any:
    done = api.cli("--json", "pg", "info", "--source", "db")
    assert done.code == 0, done
    (cluster,) = json.loads(done.stdout)["clusters"]
    return cluster


def test_the_window_page_draws_what_pg_info_reports(pg_browser: Browser) -> None:
    info = pg_info(pg_browser.api)
    pg_browser.sign_in("viewer")
    pg_browser.goto("#/", "#sources")
    card = pg_browser.find("article[data-source='db']")
    card.find_element(By.LINK_TEXT, "Recoverable window").click()
    pg_browser.visible("#window-from")
    assert pg_browser.find("#window-from").text == local(info["existing"]["from"])
    assert pg_browser.find("#window-to").text == local(info["existing"]["to"])
    cluster = pg_browser.find(".cluster")
    assert cluster.get_attribute("data-system") == info["system_id"]

    labels = [e.text for e in pg_browser.all("td[data-label='Label']")]
    assert labels == [b["label"] for b in info["backups"]] and len(labels) == 2
    started = [e.text for e in pg_browser.all("td[data-label='Started']")]
    assert started == [local(b["start_time"]) for b in info["backups"]]

    (timeline,) = info["wal"]["timelines"]
    ranges = pg_browser.find("td[data-label='Ranges']").text
    for r in timeline["ranges"]:
        assert f"{r['first']} … {r['last']} ({r['segments']})" in ranges
    assert pg_browser.find("td[data-label='Gaps']").text == "none"

    charts = pg_browser.all("figure.chart svg")
    assert len(charts) == 2  # the time axis, the segment axis
    time_axis, segments = charts
    lanes = [t.text for t in time_axis.find_elements(By.CSS_SELECTOR, "text.lane-label")]
    assert lanes[0] == "Recoverable" and "Base backups" in lanes and "Timeline 1 (live)" in lanes
    assert len(time_axis.find_elements(By.CSS_SELECTOR, "rect.span.base")) == 2
    assert len(time_axis.find_elements(By.CSS_SELECTOR, "rect.span.wal")) == 1  # the window's timeline
    assert len(segments.find_elements(By.CSS_SELECTOR, "rect.span.wal")) == len(timeline["ranges"])
    assert segments.find_elements(By.CSS_SELECTOR, "rect.span.gap") == []


def test_the_window_page_fits_a_phone_and_is_photographed(pg_browser: Browser) -> None:
    pg_browser.sign_in("viewer")
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        pg_browser.size(size)
        pg_browser.goto("#/postgres/db", "#window-from")
        assert pg_browser.horizontal_overflow() == 0, size
        assert pg_browser.screenshot(f"postgres-{label}").stat().st_size > 5000
    pg_browser.size(DESKTOP)
