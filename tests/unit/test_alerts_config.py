"""The ``alerts:`` section: secrets only by file or variable, and every mistake names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeboat.app.observability.alerts.channels import build_channels
from lifeboat.config.loader import parse_config
from lifeboat.config.model import AlertsConfig
from lifeboat.errors import ConfigError


def alerts(text: str) -> AlertsConfig:
    config = parse_config("alerts:\n" + "\n".join("  " + line for line in text.strip().splitlines()))
    assert config.alerts is not None
    return config.alerts


def test_defaults() -> None:
    config = alerts("channels:\n  ops: {type: slack, url_env: SLACK_URL}")
    assert (config.reminder, config.rate_limit.messages, config.rate_limit.period) == ("4h", 20, "1h")
    assert config.channels["ops"].events == ["failure", "recovery", "objective", "drill", "reminder"]
    assert config.channels["ops"].min_severity == "info"


@pytest.mark.parametrize(
    ("channel", "message"),
    [
        ("{type: slack, url: 'https://hooks.slack.com/services/T/B/x'}", "alerts.channels.ops.url: unknown key"),
        ("{type: slack}", "alerts.channels.ops: give url_file or url_env"),
        ("{type: discord, url_file: /a, url_env: B}", "give one of url_file, url_env, not url_file and url_env"),
        ("{type: slack, url_file: rel/path}", "alerts.channels.ops.url_file: path 'rel/path' must be absolute"),
        ("{type: pager}", "alerts.channels.ops.type: unknown channel type 'pager' (known: slack, discord, email"),
        ("{url_env: X}", "alerts.channels.ops.type: missing (one of: slack"),
        ("{type: webhook, url: 'ftp://x'}", "url must start with http:// or https://"),
        ("{type: webhook, url: 'https://x', secret: abc}", "alerts.channels.ops.secret: unknown key"),
        ("{type: apprise, urls: ['tgram://x']}", "alerts.channels.ops.urls: unknown key"),
        ("{type: email, host: h, from: a@b.c, to: [o@b.c], ssl: true, starttls: true}", "not both"),
        ("{type: email, host: h, from: a@b.c, to: [o@b.c], starttls: false, username: u, password_env: P}",
         "a password is never sent without TLS"),
        ("{type: email, host: h, from: a@b.c, to: [o@b.c], password_env: P}", "a password needs a username"),
        ("{type: email, host: h, from: a@b.c, to: [], }", "alerts.channels.ops.to:"),
        ("{type: slack, url_env: S, events: [failure, outage]}", "alerts.channels.ops.events.1:"),
        ("{type: slack, url_env: S, min_severity: high}", "alerts.channels.ops.min_severity:"),
    ],
)  # fmt: skip
def test_a_mistake_names_its_key(channel: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        alerts(f"channels:\n  ops: {channel}")
    assert message in caught.value.message


def test_a_bad_duration_names_its_key() -> None:
    with pytest.raises(ConfigError, match=r"alerts\.reminder: .*invalid duration"):
        alerts("reminder: soon")
    with pytest.raises(ConfigError, match=r"alerts\.rate_limit\.messages"):
        alerts("rate_limit: {messages: 0}")


def test_a_secret_that_cannot_be_read_is_a_configuration_error_that_does_not_show_it(tmp_path: Path) -> None:
    config = alerts(f"""
channels:
  a: {{type: slack, url_env: SLACK_URL}}
  b: {{type: discord, url_file: {tmp_path}/missing}}
  c: {{type: webhook, url_env: HOOK}}
""")
    with pytest.raises(ConfigError) as caught:
        build_channels(config, {}, only="a")
    assert caught.value.message == "alerts.channels.a.url_env: the environment variable SLACK_URL is not set"
    with pytest.raises(ConfigError, match=r"alerts\.channels\.b\.url_file: cannot read .*/missing: No such file"):
        build_channels(config, {}, only="b")
    with pytest.raises(ConfigError) as caught:
        build_channels(config, {"HOOK": "hooks.example.org/T0K3N"}, only="c")
    assert "T0K3N" not in caught.value.message and "must start with https://" in caught.value.message
    with pytest.raises(ConfigError, match="no alert channel named 'd' \\(configured: a, b, c\\)"):
        build_channels(config, {}, only="d")


def test_an_apprise_url_apprise_does_not_know_is_named_by_its_position_only() -> None:
    config = alerts("channels:\n  a: {type: apprise, urls_env: APPRISE}")
    with pytest.raises(ConfigError) as caught:
        build_channels(config, {"APPRISE": "json://127.0.0.1:9/x, nosuchservice://T0K3N@host"})
    assert "Apprise URL number 2" in caught.value.message and "T0K3N" not in caught.value.message
