"""The configuration of a command source (docs/configuration.md §type: command)."""

from __future__ import annotations

import pytest

from lifeboat.config.loader import parse_config
from lifeboat.errors import ConfigError


def test_a_command_source_names_its_programs_and_hides_its_environment() -> None:
    config = parse_config(
        "sources:\n  appdb:\n    type: command\n    command: [pg_dump, -Fc, appdb]\n"
        "    restore_command: [pg_restore, -d, appdb]\n    env: {PGPASSWORD: hunter2}\n"
    )
    source = config.sources["appdb"]
    assert source.type == "command"
    assert source.command == ["pg_dump", "-Fc", "appdb"] and source.restore_command == ["pg_restore", "-d", "appdb"]
    assert source.env == {"PGPASSWORD": "hunter2"} and "hunter2" not in repr(source)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{type: command}", "sources.appdb.command: Field required"),
        ('{type: command, command: [""]}', "sources.appdb.command: the program (first item) must not be empty"),
        ("{type: command, command: [pg_dump], env: {A=B: x}}", "sources.appdb.env: 'A=B' is not an environment"),
        ("{type: command, command: [pg_dump], name: a/b}", "sources.appdb.name: String should match pattern"),
        ("{type: command, command: [pg_dump], paths: [/srv]}", "sources.appdb.paths: unknown key"),
    ],
)
def test_a_malformed_command_source_names_the_key(body: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(f"sources: {{appdb: {body}}}")
    assert message in str(raised.value)
