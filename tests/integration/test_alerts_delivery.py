"""Delivery as the daemon lives it: a receiver that is down is retried and never holds up the
caller; one message per change of state, reminders and the rate limit on a fake clock; a restart
that remembers; and no secret in any payload or log line."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifeboat.app.observability.alerts import Alerter, Condition
from lifeboat.config.loader import parse_config
from lifeboat.config.model import AlertsConfig
from tests.integration.alerts_receivers import HttpReceiver, SmtpRelay, free_port, wait_until

FAILED = Condition("job:backup:db", healthy=False, title="backup of db failed", detail="exit 16", source="db")
OK = Condition("job:backup:db", healthy=True, title="backup of db succeeded", source="db")


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self.now += delta


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        assert "\n" not in line
        self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        wait_until(lambda: any(text in line for line in self.lines), timeout, f"a log line with {text!r}")
        return next(line for line in self.lines if text in line)


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(free_port()).start()
    yield receiver
    receiver.stop()


def webhook_config(extra: str = "") -> AlertsConfig:
    config = parse_config(f"alerts:\n  channels:\n    hook: {{type: webhook, url_env: HOOK}}\n{extra}")
    assert config.alerts is not None
    return config.alerts


def events(receiver: HttpReceiver) -> list[str]:
    return [json.loads(request.body)["event"] for request in receiver.requests]


def test_a_receiver_that_is_down_is_retried_and_gets_the_message_when_it_comes_up(tmp_path: Path) -> None:
    receiver = HttpReceiver(free_port())  # nothing listens there yet
    log = Log()
    config = webhook_config("  attempts: 6\n  retry_delay: 0.3\n")
    alerter = Alerter(config, state_path=tmp_path / "s.json", environ={"HOOK": receiver.url}, log=log)
    started = time.monotonic()
    alerter.observe(FAILED)
    assert time.monotonic() - started < 0.5  # the caller does not wait for the receiver
    line = log.wait_for("attempt 1 of 6 failed")
    assert line.startswith("alert channel 'hook' (webhook): attempt 1 of 6 failed: ConnectError: Connection refused")
    receiver.start()
    try:
        receiver.wait_for(1)
        log.wait_for("delivered at attempt")
        alerter.close(10)
        assert events(receiver) == ["failure"]
    finally:
        receiver.stop()


def test_a_receiver_answering_errors_is_retried_until_it_accepts(http: HttpReceiver, tmp_path: Path) -> None:
    http.status = 503
    log = Log()
    alerter = Alerter(
        webhook_config("  attempts: 10\n  retry_delay: 0.1\n"),
        state_path=tmp_path / "s.json",
        environ={"HOOK": http.url},
        log=log,
    )
    alerter.observe(FAILED)
    assert "failed: HTTP 503 Service Unavailable" in log.wait_for("attempt 2 of 10 failed")
    http.status = 200
    log.wait_for("delivered at attempt")
    alerter.close(10)
    assert events(http)[-1] == "failure"


def test_a_receiver_that_stays_down_is_given_up_with_one_line_and_the_caller_goes_on(tmp_path: Path) -> None:
    log = Log()
    alerter = Alerter(
        webhook_config("  attempts: 2\n  retry_delay: 0.1\n"),
        state_path=tmp_path / "s.json",
        environ={"HOOK": f"http://127.0.0.1:{free_port()}/hook"},
        log=log,
    )
    alerter.observe(FAILED)
    line = log.wait_for("gave up")
    assert line == (
        "alert channel 'hook' (webhook): gave up after 2 attempts: ConnectError: Connection refused; "
        "lost: [Lifeboat] FAILURE: backup of db failed"
    )
    alerter.observe(OK)  # still taking conditions
    log.wait_for("lost: [Lifeboat] RECOVERED")
    alerter.close(5)


def test_a_receiver_that_hangs_never_blocks_the_caller_nor_the_close_deadline(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        log = Log()
        alerter = Alerter(
            webhook_config(),
            state_path=tmp_path / "s.json",
            environ={"HOOK": f"http://127.0.0.1:{silent.getsockname()[1]}"},
            log=log,
        )
        started = time.monotonic()
        for n in range(50):
            alerter.observe(Condition(f"job:backup:s{n}", healthy=False, title=f"backup of s{n} failed"))
        assert time.monotonic() - started < 1.0
        started = time.monotonic()
        alerter.close(1.0)
        assert time.monotonic() - started < 3.0
        assert any(
            "closing: the message being sent and 49 waiting may not be delivered" in line for line in log.lines
        ), log.lines


def test_a_channel_that_hangs_takes_no_time_from_the_others_at_close(http: HttpReceiver, tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        config = parse_config(
            "alerts:\n  channels:\n    silent: {type: webhook, url_env: SILENT}\n"
            "    hook: {type: webhook, url_env: HOOK}\n"
        ).alerts
        assert config is not None
        environ = {"SILENT": f"http://127.0.0.1:{silent.getsockname()[1]}", "HOOK": http.url}
        log = Log()
        alerter = Alerter(config, state_path=tmp_path / "s.json", environ=environ, log=log)
        assert alerter.channels == ["silent", "hook"]  # the one that hangs is closed first
        alerter.observe(FAILED)
        started = time.monotonic()
        alerter.close(2.0)
        assert time.monotonic() - started < 2.5  # the deadline holds, whatever hangs
        assert events(http) == ["failure"]
        assert [line for line in log.lines if "closing" in line] == [
            "alert channel 'silent' (webhook): closing: the message being sent and 0 waiting may not be delivered"
        ]


def test_a_log_that_fails_does_not_end_the_deliveries(http: HttpReceiver, tmp_path: Path) -> None:
    written: list[str] = []

    def broken_log(line: str) -> None:  # e.g. stderr closed under the daemon
        written.append(line)
        raise OSError(5, "Input/output error")

    http.status = 503
    alerter = Alerter(
        webhook_config("  attempts: 5\n  retry_delay: 0.2\n"),
        state_path=tmp_path / "s.json",
        environ={"HOOK": http.url},
        log=broken_log,
    )
    alerter.observe(FAILED)
    wait_until(lambda: any("attempt 1 of 5 failed" in line for line in written), what="the failed attempt logged")
    http.status = 200
    http.wait_for(2)  # the retry, after the log failed
    alerter.observe(OK)
    http.wait_for(3)
    alerter.close(10)
    assert events(http) == ["failure", "failure", "recovery"]


def test_a_full_queue_with_a_failing_log_does_not_reach_the_caller(tmp_path: Path) -> None:
    def broken_log(line: str) -> None:
        raise OSError(28, "No space left on device")

    with socket.socket() as silent:  # holds the first message: the rest fill the queue
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        alerter = Alerter(
            webhook_config(),
            state_path=tmp_path / "s.json",
            environ={"HOOK": f"http://127.0.0.1:{silent.getsockname()[1]}"},
            log=broken_log,
        )
        for n in range(300):  # 256 wait; the others are dropped, and that is logged
            alerter.observe(Condition(f"job:backup:s{n}", healthy=False, title=f"backup of s{n} failed"))
        alerter.close(0.5)


def test_one_message_per_change_reminders_at_the_interval_and_a_recovery(http: HttpReceiver, tmp_path: Path) -> None:
    clock = FakeClock()
    alerter = Alerter(
        webhook_config("  reminder: 4h\n"), state_path=tmp_path / "s.json", environ={"HOOK": http.url}, clock=clock
    )
    alerter.observe(FAILED)
    for _ in range(11):  # the daemon observes every 30 minutes for 5½ hours
        clock.advance(timedelta(minutes=30))
        alerter.observe(FAILED)
    alerter.observe(OK)
    alerter.observe(OK)
    alerter.close(10)
    assert events(http) == ["failure", "reminder", "recovery"]
    reminder = json.loads(http.requests[1].body)
    assert reminder["facts"]["failing for"] == "4h00m"
    recovery = json.loads(http.requests[2].body)
    assert recovery["facts"]["was failing for"] == "5h30m"


def test_the_rate_limit_keeps_a_channel_to_its_count_and_then_says_how_many_were_held_back(
    http: HttpReceiver, tmp_path: Path
) -> None:
    clock = FakeClock()
    alerter = Alerter(
        webhook_config("  rate_limit: {messages: 3, period: 1h}\n"),
        state_path=tmp_path / "s.json",
        environ={"HOOK": http.url},
        clock=clock,
        tick=0.05,
    )
    for n in range(10):
        alerter.observe(Condition(f"job:backup:s{n}", healthy=False, title=f"backup of s{n} failed"))
    http.wait_for(3)
    (worker,) = alerter._workers
    wait_until(lambda: worker._window.suppressed == 7, what="the other 7 held back")
    assert len(http.requests) == 3
    clock.advance(timedelta(hours=1))
    http.wait_for(4)
    summary = json.loads(http.requests[3].body)
    assert (summary["event"], summary["title"]) == ("suppressed", "7 alerts suppressed")
    alerter.observe(Condition("job:backup:s0", healthy=True, title="backup of s0 succeeded"))
    http.wait_for(5)
    alerter.close(10)
    assert events(http)[4] == "recovery" and len(http.requests) == 5


def test_a_restart_neither_repeats_the_failure_nor_forgets_its_recovery(http: HttpReceiver, tmp_path: Path) -> None:
    state = tmp_path / "state" / "alerts.json"
    clock = FakeClock()
    first = Alerter(webhook_config(), state_path=state, environ={"HOOK": http.url}, clock=clock)
    first.observe(FAILED)
    first.close(10)
    assert state.exists()
    clock.advance(timedelta(hours=1))
    second = Alerter(webhook_config(), state_path=state, environ={"HOOK": http.url}, clock=clock)
    second.observe(FAILED)
    clock.advance(timedelta(hours=1))
    second.observe(OK)
    second.close(10)
    assert events(http) == ["failure", "recovery"]


def test_no_secret_reaches_a_payload_a_header_or_a_log_line(
    http: HttpReceiver, tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    secrets = {
        "slack": "SLACKTOKEN9f8e7d",
        "discord": "DISCORDTOKEN1a2b3c",
        "hmac": "HMACSECRET5e6f7a",
        "smtp": "SMTPPASSWORD0c1d2e",
        "apprise": "APPRISETOKEN3b4c5d",
        "repository": "REPOPASSPHRASE8a9b",
        "down": "DOWNTOKEN6d7e8f",
    }
    relay = SmtpRelay(tmp_path, user="lifeboat", password=secrets["smtp"]).start()
    caplog.set_level(logging.DEBUG)
    try:
        config = parse_config(f"""
repositories:
  main: {{url: {tmp_path}/repo, password_file: {tmp_path}/repo-pass}}
alerts:
  attempts: 2
  retry_delay: 0.1
  channels:
    slack: {{type: slack, url_env: SLACK_URL}}
    discord: {{type: discord, url_env: DISCORD_URL}}
    hook: {{type: webhook, url_env: HOOK_URL, secret_env: HOOK_SECRET}}
    down: {{type: slack, url_env: DOWN_URL}}
    apprise: {{type: apprise, urls_env: APPRISE_URLS}}
    mail: {{type: email, host: 127.0.0.1, port: {relay.port}, ca_file: {relay.cert}, username: lifeboat,
            password_env: SMTP_PASSWORD, from: lb@example.org, to: [ops@example.org]}}
""")
        environ = {
            "SLACK_URL": f"{http.url}/services/T0/B0/{secrets['slack']}",
            "DISCORD_URL": f"{http.url}/api/webhooks/1/{secrets['discord']}",
            "HOOK_URL": f"{http.url}/hook",
            "HOOK_SECRET": secrets["hmac"],
            "DOWN_URL": f"http://127.0.0.1:{free_port()}/services/T0/B0/{secrets['down']}",
            "APPRISE_URLS": f"json://127.0.0.1:{http.port}/apprise/{secrets['apprise']}",
            "SMTP_PASSWORD": secrets["smtp"],
            "LIFEBOAT_PASSWORD": secrets["repository"],
        }
        assert config.alerts is not None
        log = Log()
        alerter = Alerter(config.alerts, state_path=tmp_path / "s.json", environ=environ, log=log)
        alerter.observe(FAILED)
        alerter.observe(OK)
        log.wait_for("lost: [Lifeboat] RECOVERED")
        alerter.close(30)
        relay.wait_for(2)
    finally:
        relay.stop()
    assert len(http.requests) == 8  # four HTTP channels up, two messages each
    seen = [r.body.decode() + json.dumps(r.headers) for r in http.requests if "/apprise/" not in r.path]
    seen += [r.body.decode() for r in http.requests]
    seen += [mail.data.decode() for mail in relay.mails]
    # every log record of this process but the test SMTP relay's own (it is the receiver)
    seen += log.lines + [record.getMessage() for record in caplog.records if record.name != "mail.log"]
    out, err = capfd.readouterr()
    seen += [out, err]
    assert any("gave up" in line for line in log.lines)
    for name, secret in secrets.items():
        assert not [text for text in seen if secret in text], f"the {name} secret leaked"


def test_a_state_file_that_cannot_be_written_is_said_once_and_alerts_still_go_out(
    http: HttpReceiver, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the state directory should be")
    log = Log()
    alerter = Alerter(webhook_config(), state_path=blocked / "alerts.json", environ={"HOOK": http.url}, log=log)
    alerter.observe(FAILED)
    alerter.observe(OK)
    alerter.close(10)
    assert events(http) == ["failure", "recovery"]
    assert [line for line in log.lines if "cannot write" in line] == [
        f"alerts: cannot write {blocked}/alerts.json: a restart may repeat or miss a message"
    ]
