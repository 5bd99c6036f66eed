"""``lifeboat alerts test``: each channel tried now, ok or its one-line failure, exit 1 if any failed."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.integration.alerts_receivers import HttpReceiver, free_port

TOKEN = "T0KEN-c0ffee"


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(free_port()).start()
    yield receiver
    receiver.stop()


def configuration(tmp_path: Path, http: HttpReceiver) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "lifeboat.yaml"
    path.write_text("""
alerts:
  channels:
    team: {type: slack, url_env: TEAM_URL}
    hook: {type: webhook, url_env: HOOK_URL}
    gone: {type: discord, url_env: GONE_URL}
""")
    env = {
        "TEAM_URL": f"{http.url}/services/T/B/{TOKEN}",
        "HOOK_URL": f"{http.url}/hook",
        "GONE_URL": f"http://127.0.0.1:{free_port()}/api/webhooks/1/{TOKEN}",
    }
    return path, env


def test_each_channel_is_tried_and_a_failure_is_one_line_without_the_url(
    cli: Cli, tmp_path: Path, http: HttpReceiver
) -> None:
    config, env = configuration(tmp_path, http)
    result = cli("--config", str(config), "alerts", "test", env=env)
    assert result.code == 1, result
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[2:]}
    assert rows["team"].split()[1:] == ["slack", "ok"]
    assert rows["hook"].split()[1:] == ["webhook", "ok"]
    assert "discord" in rows["gone"] and "ConnectError: Connection refused" in rows["gone"]
    assert "lifeboat: error: 1 of 3 alert channels failed: gone" in result.stderr
    assert TOKEN not in result.stdout + result.stderr
    titles = sorted(json.loads(r.body).get("title") or json.loads(r.body)["text"] for r in http.requests)
    assert titles == ["[Lifeboat] TEST: test message to channel team", "test message to channel hook"]


def test_one_channel_by_name_and_json(cli: Cli, tmp_path: Path, http: HttpReceiver) -> None:
    config, env = configuration(tmp_path, http)
    result = cli("--config", str(config), "--json", "alerts", "test", "--channel", "hook", env=env)
    assert result.code == 0, result
    assert json.loads(result.stdout) == {"channels": [{"name": "hook", "type": "webhook", "ok": True, "error": None}]}
    assert [r.path for r in http.requests] == ["/hook"]
    assert json.loads(http.requests[0].body)["host"] == socket.gethostname()


def test_an_unknown_channel_or_no_alerts_section_is_a_usage_error(cli: Cli, tmp_path: Path, http: HttpReceiver) -> None:
    config, env = configuration(tmp_path, http)
    result = cli("--config", str(config), "alerts", "test", "--channel", "pager", env=env)
    assert result.code == 2
    assert "no alert channel named 'pager' (configured: team, hook, gone)" in result.stderr
    empty = tmp_path / "empty.yaml"
    empty.write_text("version: 1\n")
    result = cli("--config", str(empty), "alerts", "test")
    assert result.code == 2 and "no alert channel is configured" in result.stderr


def test_a_missing_secret_names_its_variable(cli: Cli, tmp_path: Path, http: HttpReceiver) -> None:
    config, env = configuration(tmp_path, http)
    del env["HOOK_URL"]
    result = cli("--config", str(config), "alerts", "test", env=env)
    assert result.code == 2
    assert "alerts.channels.hook.url_env: the environment variable HOOK_URL is not set" in result.stderr
