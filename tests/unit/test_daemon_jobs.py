"""What a daemon job tells its run's log before it starts: the warnings the CLI prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeboat.app.daemon.jobs import JobContext, _restore_command
from lifeboat.config.loader import parse_config
from lifeboat.core.events import Event, Events, StepAnnounced


def test_a_drill_whose_server_cannot_read_the_passphrase_says_so_in_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("LIFEBOAT_PASSWORD_FILE", "LIFEBOAT_PASSWORD_COMMAND"):
        monkeypatch.delenv(variable, raising=False)
    config_file = tmp_path / "lifeboat.yaml"
    config_file.write_text(
        f"repositories:\n  main: {{url: {tmp_path / 'repo'}}}\n"
        "sources:\n  db: {type: postgres, data_directory: /srv/pg}\n"
    )
    context = JobContext(parse_config(config_file.read_text()), str(config_file), {}, str(tmp_path / "state"))
    seen: list[Event] = []

    command = _restore_command(context, "db", Events(seen.append))

    assert "wal-fetch" in command and str(config_file) in command
    steps = [e.message for e in seen if isinstance(e, StepAnnounced)]
    assert len(steps) == 1 and steps[0].startswith("warning: the server needs the repository passphrase"), steps
