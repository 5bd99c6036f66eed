"""Each kind of alert channel against a real local receiver: the configured URL points at it, so
the real code path runs — Slack's and Discord's JSON, the signed webhook, e-mail through an SMTP
relay with STARTTLS and AUTH, and Apprise through its json:// URL."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lifeboat.app.observability.alerts import Alerter, Condition, send_test_messages
from lifeboat.config.loader import parse_config
from lifeboat.config.model import AlertsConfig
from lifeboat.core.drill import PASSED, DrillResult
from tests.integration.alerts_receivers import HttpReceiver, SmtpRelay, free_port

FAILED = Condition(
    "job:backup:db", healthy=False, title="backup of db failed", detail="SourceError: pg_dump exited 1", source="db"
)
HMAC_SECRET = "whsec-7f3a9c"
SMTP_PASSWORD = "smtp-pw-41d2"


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(free_port()).start()
    yield receiver
    receiver.stop()


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[SmtpRelay]:
    server = SmtpRelay(tmp_path, user="lifeboat", password=SMTP_PASSWORD).start()
    yield server
    server.stop()


def alerts_config(text: str) -> AlertsConfig:
    config = parse_config(text)
    assert config.alerts is not None
    return config.alerts


def observe_and_close(
    config: AlertsConfig, tmp_path: Path, environ: dict[str, str], *conditions: Condition, host: str | None = None
) -> list[str]:
    lines: list[str] = []
    alerter = Alerter(config, state_path=tmp_path / "alerts.json", environ=environ, log=lines.append, host=host)
    for condition in conditions:
        alerter.observe(condition)
    alerter.close(30)
    return lines


def test_slack_discord_and_webhook_get_their_own_formats_and_the_signature_verifies(
    http: HttpReceiver, tmp_path: Path
) -> None:
    config = alerts_config("""
alerts:
  dashboard_url: https://grafana.example.org/d/lifeboat
  channels:
    chat: {type: slack, url_env: SLACK_URL}
    game: {type: discord, url_env: DISCORD_URL}
    hook: {type: webhook, url_env: HOOK_URL, secret_env: HOOK_SECRET}
""")
    environ = {
        "SLACK_URL": f"{http.url}/services/T000/B000/XXXX",
        "DISCORD_URL": f"{http.url}/api/webhooks/1/abc",
        "HOOK_URL": f"{http.url}/lifeboat",
        "HOOK_SECRET": HMAC_SECRET,
    }
    lines = observe_and_close(config, tmp_path, environ, FAILED, host="db1.example.org")
    assert lines == []
    by_path = {request.path: request for request in http.wait_for(3)}
    assert len(http.requests) == 3

    slack = json.loads(by_path["/services/T000/B000/XXXX"].body)
    assert slack["text"] == "[Lifeboat] FAILURE: backup of db failed"
    attachment = slack["attachments"][0]
    assert attachment["color"] == "#d93025"
    assert any("pg_dump exited 1" in json.dumps(block) for block in attachment["blocks"])
    context = next(block for block in attachment["blocks"] if block["type"] == "context")
    assert "db1.example.org · job:backup:db" in context["elements"][0]["text"]

    discord = json.loads(by_path["/api/webhooks/1/abc"].body)
    embed = discord["embeds"][0]
    assert embed["title"] == "[Lifeboat] FAILURE: backup of db failed"
    assert embed["url"] == "https://grafana.example.org/d/lifeboat"
    assert embed["color"] == 0xD93025
    assert embed["footer"]["text"] == "db1.example.org · job:backup:db"

    hook = by_path["/lifeboat"]
    timestamp = hook.headers["x-lifeboat-timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    expected = hmac.new(HMAC_SECRET.encode(), timestamp.encode() + b"." + hook.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(hook.headers["x-lifeboat-signature"], f"sha256={expected}")
    wrong = hmac.new(b"another secret", timestamp.encode() + b"." + hook.body, hashlib.sha256).hexdigest()
    assert hook.headers["x-lifeboat-signature"] != f"sha256={wrong}"
    document = json.loads(hook.body)
    assert {k: document[k] for k in ("event", "severity", "key", "source", "title", "detail", "host")} == {
        "host": "db1.example.org",
        "event": "failure",
        "severity": "critical",
        "key": "job:backup:db",
        "source": "db",
        "title": "backup of db failed",
        "detail": "SourceError: pg_dump exited 1",
    }
    assert hook.headers["x-lifeboat-event"] == "failure"


def test_email_goes_through_starttls_and_auth_to_every_recipient(relay: SmtpRelay, tmp_path: Path) -> None:
    password_file = tmp_path / "smtp-password"
    password_file.write_text(SMTP_PASSWORD + "\n")
    config = alerts_config(f"""
alerts:
  channels:
    mail:
      type: email
      host: 127.0.0.1
      port: {relay.port}
      ca_file: {relay.cert}
      username: lifeboat
      password_file: {password_file}
      from: lifeboat@example.org
      to: [ops@example.org, dba@example.org]
""")
    assert observe_and_close(config, tmp_path, {}, FAILED) == []
    (mail,) = relay.wait_for(1)
    assert mail.tls and mail.login == "lifeboat"
    assert mail.sender == "lifeboat@example.org"
    assert mail.recipients == ["ops@example.org", "dba@example.org"]
    text = mail.data.decode()
    assert "Subject: [Lifeboat] FAILURE: backup of db failed" in text
    assert "SourceError: pg_dump exited 1" in text
    assert SMTP_PASSWORD not in text


def test_email_over_tls_from_the_start(tmp_path: Path) -> None:
    relay = SmtpRelay(tmp_path, user="lifeboat", password=SMTP_PASSWORD, implicit_tls=True).start()
    try:
        config = alerts_config(f"""
alerts:
  channels:
    mail: {{type: email, host: 127.0.0.1, port: {relay.port}, ssl: true, ca_file: {relay.cert}, username: lifeboat,
            password_env: PW, from: lifeboat@example.org, to: [ops@example.org]}}
""")
        (check,) = send_test_messages(config, {"PW": SMTP_PASSWORD}, host="db1")
        assert check.error is None
        (mail,) = relay.wait_for(1)
        assert mail.tls and mail.login == "lifeboat"
        assert "Subject: [Lifeboat] TEST: test message to channel mail" in mail.data.decode()
    finally:
        relay.stop()


def test_email_failures_are_one_line_without_the_password(relay: SmtpRelay, tmp_path: Path) -> None:
    base = (
        f"{{type: email, host: 127.0.0.1, port: {relay.port}, username: lifeboat, password_env: PW, "
        "from: a@example.org, to: [o@example.org]"
    )
    config = alerts_config(f"""
alerts:
  channels:
    wrong_password: {base}, ca_file: {relay.cert}}}
    untrusted: {base}}}
""")
    checks = send_test_messages(config, {"PW": "not-" + SMTP_PASSWORD})
    by_name = {check.name: check.error for check in checks}
    assert by_name["wrong_password"] == "SMTP login refused (535): check the username and password"
    assert by_name["untrusted"] is not None and by_name["untrusted"].startswith("TLS certificate not trusted")
    assert relay.mails == [] and relay.refused_logins >= 1  # smtplib tries each mechanism offered
    assert all(SMTP_PASSWORD not in (error or "") for error in by_name.values())


def test_apprise_delivers_through_its_own_code_to_a_local_json_receiver(http: HttpReceiver, tmp_path: Path) -> None:
    urls = tmp_path / "apprise-urls"
    urls.write_text(f"# the team's receivers\njson://127.0.0.1:{http.port}/notify\n")
    config = alerts_config(f"alerts:\n  channels:\n    everyone: {{type: apprise, urls_file: {urls}}}")
    assert observe_and_close(config, tmp_path, {}, FAILED) == []
    (request,) = http.wait_for(1)
    body = json.loads(request.body)
    assert request.path == "/notify"
    assert body["title"] == "[Lifeboat] FAILURE: backup of db failed"
    assert "SourceError: pg_dump exited 1" in body["message"]
    assert body["type"] == "failure"


def test_each_channel_gets_only_the_events_and_severities_it_asked_for(http: HttpReceiver, tmp_path: Path) -> None:
    config = alerts_config("""
alerts:
  channels:
    pager: {type: webhook, url_env: PAGER, events: [failure, recovery], min_severity: critical}
    team: {type: webhook, url_env: TEAM}
""")
    environ = {"PAGER": f"{http.url}/pager", "TEAM": f"{http.url}/team"}
    lines: list[str] = []
    alerter = Alerter(config, state_path=tmp_path / "alerts.json", environ=environ, log=lines.append)
    alerter.observe(Condition("archiving:db", healthy=False, title="archiving of db is behind", severity="warning"))
    alerter.observe(FAILED)
    alerter.drill_finished(DrillResult(source="db", kind="postgres", target="latest", started=datetime.now(UTC)))
    alerter.observe(Condition("job:backup:db", healthy=True, title="backup of db succeeded", source="db"))
    alerter.close(30)
    events = {"/pager": [], "/team": []}
    for request in http.requests:
        events[request.path].append(json.loads(request.body)["event"])
    assert events["/pager"] == ["failure", "recovery"]
    assert sorted(events["/team"]) == sorted(["failure", "failure", "drill", "recovery"])
    assert lines == []


def test_a_drill_result_is_one_message_each_time(http: HttpReceiver, tmp_path: Path) -> None:
    config = alerts_config("alerts:\n  channels:\n    team: {type: webhook, url_env: TEAM}")
    alerter = Alerter(config, state_path=tmp_path / "alerts.json", environ={"TEAM": http.url}, log=print)
    result = DrillResult(source="db", kind="postgres", target="latest", started=datetime.now(UTC), status=PASSED)
    alerter.drill_finished(result)
    alerter.drill_finished(result)
    alerter.close(30)
    titles = [json.loads(r.body)["title"] for r in http.requests]
    assert titles == ["drill of db passed", "drill of db passed"]
