"""Acting from the browser, by role: an operator starts a drill and a backup and watches them
live (the run's log streamed as server-sent events over fetch, its status announced); a viewer
is offered no button, and a POST crafted with the viewer's token is refused by the API anyway;
every action is reachable with the Tab key."""

from __future__ import annotations

import json

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec

from tests.dashboard.conftest import Browser, local

# One daemon and one browser for the module, in order on one worker (as the tests were written):
# split over workers, a test alone in a fresh daemon raced the page's own focus move.
pytestmark = pytest.mark.xdist_group("dashboard-actions")


def snapshot_count(browser: Browser, source: str) -> int:
    done = browser.api.cli("--json", "snapshots", "--source", source)
    assert done.code == 0, done
    return len(json.loads(done.stdout))


def click_follow(browser: Browser, job: str) -> str | None:
    """Click the "follow" link of ``job``'s run in progress on the jobs page; its href (None while
    there is none, or when a refresh redrew it under the click)."""
    now = f"//td[@data-label='Job'][normalize-space()='{job}']/ancestor::tr/td[@data-label='Now']"
    try:
        links = browser.driver.find_elements(By.XPATH, f"{now}//a[normalize-space()='follow']")
        if not links:
            return None
        href: str = links[0].get_attribute("href")
        links[0].click()
    except StaleElementReferenceException:
        return None
    return href


def test_a_viewer_is_offered_no_action_and_a_crafted_post_is_refused(browser: Browser) -> None:
    browser.sign_in("viewer")
    for route, ready in (("#/", "#sources"), ("#/sources/files", "#snapshot-count"), ("#/drills", "main h1"),
                         ("#/jobs", "#jobs table")):  # fmt: skip
        browser.goto(route, ready)
        assert browser.all("button[data-action]") == [], route
        assert browser.all("button[data-job]") == [], route
    # The page's own fetch layer, with the viewer's token: the API refuses.
    answer = browser.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch("/api/v1/jobs/backup:files/run", {method: "POST",
              headers: {Authorization: "Bearer " + sessionStorage.getItem("lifeboat.token")}})
          .then(async (r) => done({status: r.status, type: r.headers.get("content-type"), body: await r.json()}));
        """
    )
    assert answer["status"] == 403
    assert answer["type"].startswith("application/problem+json")
    assert "operator" in answer["body"]["detail"]
    runs = browser.api.client("viewer").get("/api/v1/runs", params={"job": "backup:files"}).json()["runs"]
    assert [r for r in runs if r["trigger"] == "api"] == []


def test_an_operator_starts_a_drill_and_watches_it_succeed_live(browser: Browser) -> None:
    browser.sign_in("operator")
    browser.goto("#/", "#sources")
    browser.find("article[data-source='files'] button[data-action='drill']").click()
    browser.wait(lambda d: "#/runs/" in d.current_url, "the run's page")
    run_id = browser.driver.current_url.rsplit("/", 1)[1]
    browser.text_in("#run-facts", "drill:files")
    browser.text_in("#run-status", "succeeded")  # the end event of the stream
    browser.text_in("#stream-state", "complete")
    browser.text_in("#run-summary [data-key='status']", "passed")  # the drill's own verdict
    assert not browser.find("#cancel-run").is_displayed()  # nothing left to cancel
    browser.text_in("#live", "succeeded")  # announced to screen readers
    run = browser.api.client("viewer").get(f"/api/v1/runs/{run_id}").json()
    assert run["status"] == "succeeded" and run["job"] == "drill:files" and run["trigger"] == "api"
    # The drills page has it as the newest drill (opened once the API has it: the page's own
    # request must not race the drill's record).
    drills = browser.api.client("viewer").get("/api/v1/drills").json()["drills"]
    assert drills[0]["source"] == "files" and drills[0]["ok"]
    browser.goto("#/drills", "main h1")
    browser.text_in("td[data-label='Time']", local(drills[0]["time"]))
    assert len(browser.all("td[data-label='Source']")) == len(drills)


def test_an_operator_starts_a_backup_and_the_jobs_page_shows_it(browser: Browser) -> None:
    before = snapshot_count(browser, "files")
    browser.sign_in("operator")
    browser.goto("#/jobs", "#jobs table")
    browser.find("button[data-job='backup:files']").click()
    browser.wait(lambda d: "#/runs/" in d.current_url, "the run's page")
    run_id = browser.driver.current_url.rsplit("/", 1)[1]
    browser.text_in("#run-status", "succeeded")
    browser.text_in("#stream-state", "complete")
    lines = [li.text for li in browser.all("#run-log li")]
    assert any("saving the snapshot" in line for line in lines), lines  # the live log, as the catalog has it
    assert snapshot_count(browser, "files") == before + 1
    browser.goto("#/jobs", "#runs table")
    row = browser.find(f"#runs a[href='#/runs/{run_id}']")
    assert row.text == run_id[:8]
    cells = row.find_element(By.XPATH, "ancestor::tr").find_elements(By.TAG_NAME, "td")
    assert [c.get_attribute("data-label") for c in cells][:3] == ["Run", "Job", "Result"]
    assert cells[1].text == "backup:files" and cells[2].text == "succeeded"
    assert browser.find("#timeline svg rect.span.succeeded")
    # A run that ended before its page was drawn (a short drill started from a button) is
    # announced when the page opens: the page does not wait for a change that already happened.
    browser.driver.execute_script("document.getElementById('live').textContent = ''")
    browser.goto(f"#/runs/{run_id}", "#run-status")
    browser.text_in("#live", f"backup:files: run {run_id} succeeded.")


def test_a_running_job_shows_up_on_the_open_jobs_page_without_a_reload(browser: Browser) -> None:
    browser.sign_in("operator")
    browser.goto("#/jobs", "#jobs table")  # the scheduled jobs; there may be no run yet (this test alone)
    known = {a.get_attribute("href") for a in browser.all("#runs a")}
    started = browser.api.client("operator").post("/api/v1/jobs/verify:files/run")  # started elsewhere
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    browser.wait(lambda d: d.find_elements(By.CSS_SELECTOR, f"#runs a[href='#/runs/{run_id}']"), "the new run listed")
    assert f"{browser.url}/#/runs/{run_id}" not in known
    browser.text_in("#live", f"run {run_id}")  # its status changes are announced


def test_tab_reaches_every_action_on_the_overview(browser: Browser) -> None:
    browser.sign_in("operator")
    browser.goto("#/", "#sources")
    browser.driver.refresh()
    browser.find("#sources")
    wanted = {
        (b.get_attribute("data-action"), b.get_attribute("data-source")) for b in browser.all("button[data-action]")
    }
    assert len(wanted) == 9  # backup, verify, drill × files, notes, stream
    reached: set[tuple[str | None, str | None]] = set()
    links: set[str] = set()
    for _ in range(80):
        ActionChains(browser.driver).send_keys(Keys.TAB).perform()
        focused = browser.driver.switch_to.active_element
        if focused.get_attribute("data-action"):
            reached.add((focused.get_attribute("data-action"), focused.get_attribute("data-source")))
        if focused.tag_name == "a":
            links.add(focused.get_attribute("href").split("#", 1)[-1])
        if reached == wanted:
            break
    assert reached == wanted
    assert {"/", "/jobs", "/drills", "/repository", "/sources/files", "/sources/notes", "/sources/stream"} <= links


def test_an_operator_follows_a_running_backup_from_the_jobs_page_and_cancels_it(browser: Browser) -> None:
    browser.sign_in("operator")
    browser.goto("#/", "#sources")
    browser.find("article[data-source='stream'] button[data-action='backup']").click()
    browser.wait(lambda d: "#/runs/" in d.current_url, "the run's page")
    run_id = browser.driver.current_url.rsplit("/", 1)[1]
    browser.text_in("#run-status", "running")
    # The jobs page has it running, with a link to follow it: to this run's page.
    browser.goto("#/jobs", "#jobs table")
    followed = browser.wait(lambda _: click_follow(browser, "backup:stream"), "the follow link of backup:stream")
    assert followed == f"{browser.url}/#/runs/{run_id}"
    browser.wait(lambda d: d.current_url == followed, "the run's page again")
    browser.text_in("#run-facts", "backup:stream")
    browser.text_in("#run-status", "running")
    cancel = browser.visible("#cancel-run")
    cancel.click()
    browser.text_in("#run-status", "cancelled")  # the end of the live log
    assert not browser.find("#cancel-run").is_displayed()
    browser.text_in("#live", "cancelled")
    run = browser.api.client("viewer").get(f"/api/v1/runs/{run_id}").json()
    assert (run["status"], run["exit_code"], run["job"]) == ("cancelled", 130, "backup:stream")
    assert snapshot_count(browser, "stream") == 0  # nothing half-written is committed


def test_the_jobs_page_refreshing_keeps_the_keyboard_focus(browser: Browser) -> None:
    browser.sign_in("operator")
    browser.goto("#/jobs", "#jobs table")

    def focused_in_a_table(driver: WebDriver) -> WebElement | bool:
        """Focus the job's button; the table holding it, once the focus has landed there (a
        refresh between finding the button and focusing it leaves the focus nowhere)."""
        try:
            table = driver.find_element(By.CSS_SELECTOR, "#jobs table")
            button = table.find_element(By.CSS_SELECTOR, "button[data-job='verify:files']")
            driver.execute_script("arguments[0].focus()", button)
            return table if driver.switch_to.active_element == button else False
        except StaleElementReferenceException:
            return False

    table = browser.wait(focused_in_a_table, "the focus on the job's button")
    browser.wait(ec.staleness_of(table), "the next refresh of the jobs")  # redrawn from the API
    browser.wait(
        lambda d: d.switch_to.active_element.get_attribute("data-job") == "verify:files",
        "the focus on the same job's button in the redrawn table",
    )
