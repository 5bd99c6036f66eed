"""``restore ldap … --plan``: the databases slapadd would load and where, refused as the load
refuses before it writes (a running slapd, a non-empty configuration directory)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Cli
from tests.logical.test_ldap import backed_up, lifeboat
from tests.servers.slapd import SUFFIX, Slapd, slapd

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ldap")]
__all__ = ["lifeboat", "slapd"]  # fixtures, used by name


def test_a_plan_names_the_databases_and_refuses_a_running_slapd(lifeboat: Cli, slapd: Slapd) -> None:
    backed_up(lifeboat)
    before = slapd.search()
    args = ("restore", "ldap", "latest", "--source", "directory", "--database", "1", "--force")
    real, planned = lifeboat(*args), lifeboat("--json", *args, "--plan")
    assert planned.code == real.code == 1, planned
    assert "slapd is running (pid" in planned.stderr
    plan = json.loads(planned.stdout)
    (write,) = plan["writes"]
    assert write["what"] == f"database 1 ({SUFFIX}, 52 entries) by slapadd" and write["bytes"] > 0
    assert plan["refusals"][0]["message"] == real.stderr.splitlines()[0].removeprefix("lifeboat: error: ")

    slapd.stop()
    stopped = lifeboat("restore", "ldap", "latest", "--source", "directory", "--database", "1", "--plan")
    assert stopped.code == 0, stopped
    config = lifeboat("restore", "ldap", "latest", "--source", "directory", "--database", "0", "--plan")
    assert config.code == 1 and f"the configuration directory {slapd.config_dir} is not empty" in config.stderr
    slapd.start()
    assert slapd.search() == before
