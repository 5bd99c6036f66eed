"""The dashboard's shell in a real browser: signing in with a pasted token (kept in this tab's
sessionStorage, sent as a Bearer header), refusing a wrong one, signing out; the page and its
assets served by the daemon itself (nothing from the internet, no inline script or style, so the
Content-Security-Policy holds); the keyboard's way in (the skip link)."""

from __future__ import annotations

import re

import httpx
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.dashboard.conftest import STATIC_FILES, Browser


def test_a_pasted_token_signs_in_and_the_page_names_its_role(browser: Browser) -> None:
    browser.sign_in("viewer")
    assert browser.find(".who-name").text == "viewer-token"
    assert browser.find(".role").text == "viewer"
    stored = browser.driver.execute_script("return sessionStorage.getItem('lifeboat.token')")
    assert stored == browser.api.tokens["viewer"]
    assert browser.driver.get_cookies() == []  # the token is never a cookie
    assert browser.find("#nav").is_displayed()


def test_a_wrong_token_is_refused_with_the_apis_reason(browser: Browser) -> None:
    browser.driver.get(f"{browser.url}/#/login")
    browser.driver.execute_script("sessionStorage.clear()")
    browser.driver.refresh()
    browser.visible("#token").send_keys("lb_not-a-real-token")
    browser.find("#sign-in").click()
    error = browser.visible("#login-error")
    assert "Not signed in" in error.text
    assert browser.driver.execute_script("return sessionStorage.getItem('lifeboat.token')") is None
    assert not browser.find("#nav").is_displayed()


def test_without_a_token_every_page_leads_to_the_login(browser: Browser) -> None:
    browser.driver.get(f"{browser.url}/#/login")
    browser.driver.execute_script("sessionStorage.clear()")
    browser.driver.get(f"{browser.url}/#/jobs")
    browser.wait(lambda d: d.current_url.endswith("#/login"), "the login page")
    browser.visible("#token")


def test_signing_out_forgets_the_token(browser: Browser) -> None:
    browser.sign_in("operator")
    browser.find("#sign-out").click()
    browser.wait(lambda d: d.current_url.endswith("#/login"), "the login page")
    assert browser.driver.execute_script("return sessionStorage.getItem('lifeboat.token')") is None
    browser.text_in("main", "Signed out.")


def test_a_revoked_token_sends_the_browser_back_to_the_login(browser: Browser) -> None:
    token = browser.api.token("short-lived", "viewer")
    browser.driver.get(f"{browser.url}/#/login")
    browser.visible("#token").send_keys(token)
    browser.find("#sign-in").click()
    browser.text_in("#who", "short-lived")
    assert browser.api.cli("token", "revoke", "short-lived").code == 0
    browser.driver.refresh()  # the next call of the page (whoami) is refused
    browser.wait(lambda d: d.current_url.endswith("#/login"), "the login page")
    assert browser.driver.execute_script("return sessionStorage.getItem('lifeboat.token')") is None


def test_the_page_and_its_assets_come_from_the_daemon_with_a_strict_csp(browser: Browser) -> None:
    page = httpx.get(f"{browser.url}/", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert len(page.content) < 100_000
    html = page.text
    assert "<script>" not in html and "<style" not in html and " style=" not in html  # nothing inline
    for name in STATIC_FILES:
        asset = httpx.get(f"{browser.url}/static/{name}", timeout=10)
        assert asset.status_code == 200, name
        text = asset.text
        # Nothing loaded from elsewhere: no URL of another host, no CDN.
        assert not re.search(r"(src|href|url|import|from)\s*[=(]?\s*[\"']?https?://", text), name
        assert "innerHTML" not in text and "eval(" not in text, name
        assert '.setAttribute("style"' not in text and 'style="' not in text, name
    assert httpx.get(f"{browser.url}/static/../app.py", timeout=10).status_code == 404
    assert httpx.get(f"{browser.url}/static/nothing.js", timeout=10).status_code == 404


def test_the_drawn_overview_stays_under_100_kb_asks_only_the_daemon_and_logs_no_error(browser: Browser) -> None:
    browser.sign_in("viewer")
    browser.console_errors()  # forget what earlier tests logged (a refused token, on purpose)
    browser.goto("#/", "#sources")
    html = browser.driver.execute_script("return document.documentElement.outerHTML")
    assert len(html.encode()) < 100_000
    assert browser.console_errors() == []  # no CSP violation, no failed request, no script error
    # Works offline: every request the page made went to the daemon itself.
    loaded = browser.driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded, "the page loads its assets"
    assert [url for url in loaded if not url.startswith(f"{browser.url}/")] == []


def test_the_skip_link_is_the_first_stop_of_the_keyboard_and_jumps_to_the_content(browser: Browser) -> None:
    browser.sign_in("viewer")
    browser.goto("#/", "#sources")
    browser.driver.refresh()  # a fresh load: the keyboard starts at the top of the document
    browser.find("#sources")
    ActionChains(browser.driver).send_keys(Keys.TAB).perform()
    focused = browser.driver.switch_to.active_element
    assert focused.get_attribute("class") == "skip-link"
    assert focused.is_displayed()  # visible when focused
    outline = browser.driver.execute_script("return getComputedStyle(arguments[0]).outlineStyle", focused)
    assert outline != "none"  # a visible focus ring
    focused.send_keys(Keys.ENTER)
    browser.wait(lambda d: d.switch_to.active_element.get_attribute("id") == "main", "focus on the content")
    assert browser.driver.find_element(By.ID, "main").tag_name == "main"
