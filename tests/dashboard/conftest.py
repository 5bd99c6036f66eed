"""The dashboard in a real browser: Debian's headless chromium driven by selenium through
chromium-driver, against a real ``lifeboat serve`` (tests/api/conftest.py) over a real
repository with real backups. One browser per test module (starting one takes a second or
two); conditions are waited on with WebDriverWait, never sleeps. A missing chromium or
chromedriver fails the tests, it never skips them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.api.conftest import Api, prepare, serve
from tests.conftest import run_cli

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
WAIT = 60.0  # seconds a DOM condition may take on the shared 2-core machine
DESKTOP = (1280, 900)
PHONE = (390, 844)
STATIC = Path(__file__).resolve().parents[2] / "src" / "lifeboat" / "app" / "api" / "static"
#: every asset the package ships, as /static/ paths
STATIC_FILES = sorted(str(p.relative_to(STATIC)) for p in STATIC.rglob("*") if p.is_file() and p.name != "index.html")


def new_browser(size: tuple[int, int] = DESKTOP) -> webdriver.Chrome:
    """Headless chromium; fails (never skips) when chromium or its driver is missing."""
    for program in (CHROMIUM, CHROMEDRIVER):
        assert Path(program).exists() or shutil.which(Path(program).name), f"{program} is not installed"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={size[0]},{size[1]}", "--force-prefers-reduced-motion"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@dataclass
class Browser:
    """A browser on the served dashboard."""

    driver: webdriver.Chrome
    api: Api

    @property
    def url(self) -> str:
        return self.api.base_url

    def wait(self, condition: Any, what: str, timeout: float = WAIT) -> Any:
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(condition, message=f"waiting for {what}")

    def find(self, css: str) -> WebElement:
        return self.wait(ec.presence_of_element_located((By.CSS_SELECTOR, css)), css)

    def visible(self, css: str) -> WebElement:
        return self.wait(ec.visibility_of_element_located((By.CSS_SELECTOR, css)), css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text_in(self, css: str, text: str) -> None:
        self.wait(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text), f"{text!r} in {css}")

    def size(self, size: tuple[int, int]) -> None:
        def resized(driver: webdriver.Chrome) -> bool:
            if driver.execute_script("return window.innerWidth") == size[0]:
                return True
            driver.set_window_size(*size)  # again: a resize can be lost while the page loads
            return False

        self.wait(resized, f"a window {size[0]} wide")

    def sign_in(self, role: str) -> None:
        """Through the login page, as a person does: paste the token, press Sign in."""
        self.driver.get(f"{self.url}/#/login")
        self.driver.execute_script("sessionStorage.clear()")
        self.driver.refresh()
        field = self.visible("#token")
        field.clear()
        field.send_keys(self.api.tokens[role])
        self.find("#sign-in").click()
        self.text_in("#who", role)

    def goto(self, hash_route: str, ready_css: str) -> WebElement:
        """Open a page by its route and wait until ``ready_css`` shows."""
        self.driver.execute_script("document.body.dataset.ready = ''")
        if self.driver.execute_script("return location.hash || '#/'") == hash_route:
            self.driver.refresh()  # the same route: load it again
        else:
            self.driver.get(f"{self.url}/{hash_route}")
        self.wait(
            lambda d: d.execute_script("return document.body.dataset.ready") not in (None, ""), f"{hash_route} drawn"
        )
        return self.visible(ready_css)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        # The whole page, not just the window: as tall as the document.
        height = int(self.driver.execute_script("return Math.ceil(document.documentElement.scrollHeight)"))
        width, window_height = self.driver.get_window_size().values()
        self.driver.set_window_size(width, max(window_height, min(height + 140, 6000)))
        try:
            assert self.driver.save_screenshot(str(path)), path
        finally:
            self.driver.set_window_size(width, window_height)
        return path

    def horizontal_overflow(self) -> int:
        """How many pixels the page is wider than the window (0: no horizontal scroll)."""
        return int(
            self.driver.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
        )

    def console_errors(self) -> list[str]:
        return [entry["message"] for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]


def local(moment: str) -> str:
    """A time as the CLI prints it (its local zone; the browser runs in the same one)."""
    return datetime.fromisoformat(moment).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def write_config(root: Path) -> None:
    """``files`` (backed up, drilled, verified: green), ``notes`` (never backed up: red, with
    what to do) and ``stream``, a program that writes forever (a backup that runs until it is
    cancelled; scheduled once a year, so that the jobs page lists it while it runs)."""
    (root / "notes").mkdir(exist_ok=True)
    (root / "notes" / "todo.txt").write_text("water the plants\n")
    (root / "lifeboat.yaml").write_text(
        f"""
repositories:
  main:
    url: {root / "repo"}
    password_file: {root / "passphrase"}
default_repository: main
daemon:
  shutdown_deadline: 20s
  health_check: 1h
  archiving_check: 1h
sources:
  files:
    type: files
    paths: [{root / "data"}]
    rpo: 1d
    rto: 10m
    schedule:
      backup: "0 3 * * *"
      verify: "0 4 * * *"
      drill: "0 5 * * 0"
  notes:
    type: files
    paths: [{root / "notes"}]
    rpo: 1h
    rto: 5m
  stream:
    type: command
    command: [sh, -c, "while true; do head -c 65536 /dev/zero; sleep 0.05; done"]
    schedule:
      backup: "0 4 1 1 *"
"""
    )


def start_world(root: Path) -> Api:
    """A repository with three backups of ``files``, a drill and a verify of it, and nothing of
    ``notes``; the daemon served on it with a token per role."""
    env = prepare(root)  # one backup of files
    write_config(root)
    for step in range(2):
        (root / "data" / f"more-{step}.txt").write_text(f"line {step}\n" * (2000 * (step + 1)))
        done = run_cli("-c", str(root / "lifeboat.yaml"), "backup", "--source", "files", env=env)
        assert done.code == 0, done
    for args in (("drill", "--source", "files"), ("verify", "--source", "files")):
        done = run_cli("-c", str(root / "lifeboat.yaml"), *args, env=env)
        assert done.code == 0, done
    return serve(root, env)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A real daemon over a real repository (see :func:`start_world`)."""
    made = start_world(tmp_path_factory.mktemp("dashboard"))
    yield made
    made.stop()


@pytest.fixture(scope="module")
def browser(served: Api) -> Iterator[Browser]:
    driver = new_browser()
    try:
        yield Browser(driver, served)
    finally:
        driver.quit()
