"""The daemon's read view (app/daemon/readview.py) on a real repository: opened once for every
request, a repository that cannot be opened is not tried again at each request, listings
follow new backups, and a stale health report is served while a new one is computed."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from lifeboat.app.daemon import readview
from lifeboat.app.daemon.jobs import JobContext
from lifeboat.app.daemon.readview import DaemonReads
from lifeboat.config.loader import load_config
from lifeboat.errors import LifeboatError
from tests.conftest import PASSPHRASE, run_cli


@pytest.fixture
def configured(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    (tmp_path / "passphrase").write_bytes(PASSPHRASE + b"\n")
    (tmp_path / "passphrase").chmod(0o600)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a\n")
    (tmp_path / "lifeboat.yaml").write_text(
        f"""
repositories:
  main:
    url: {tmp_path / "repo"}
    password_file: {tmp_path / "passphrase"}
default_repository: main
sources:
  files:
    type: files
    paths: [{tmp_path / "data"}]
    rpo: 1d
"""
    )
    env = {"LIFEBOAT_STATE_DIR": str(tmp_path / "state")}
    for args in (("init",), ("backup", "--source", "files")):
        done = run_cli("-c", str(tmp_path / "lifeboat.yaml"), *args, env=env)
        assert done.code == 0, done
    return tmp_path, env


def _view(root: Path, **options: Any) -> DaemonReads:
    context = JobContext(load_config(root / "lifeboat.yaml"), str(root / "lifeboat.yaml"), {}, str(root / "state"))
    return DaemonReads(lambda: context, jobs=list, **options)


def _count_opens(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from lifeboat.app import access

    opened: list[int] = []
    real = access.open_repository

    def counting(*args: Any, **kwargs: Any) -> Any:
        opened.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(access, "open_repository", counting)
    return opened


def test_the_repository_is_opened_once_for_every_request(
    configured: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = configured
    opened = _count_opens(monkeypatch)
    view = _view(root)
    threads = [threading.Thread(target=lambda: (view.snapshots(), view.records(), view.health())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    snapshots, damaged = view.snapshots()
    assert len(snapshots) == 1 and damaged == [] and len(opened) == 1
    assert view.health().sources[0].snapshots == 1 and len(opened) == 1


def test_a_new_backup_is_listed_once_the_listing_is_older_than_its_limit(
    configured: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, env = configured
    view = _view(root)
    assert len(view.snapshots()[0]) == 1
    (root / "data" / "b.txt").write_text("b\n")
    assert run_cli("-c", str(root / "lifeboat.yaml"), "backup", "--source", "files", env=env).code == 0
    assert len(view.snapshots()[0]) == 1  # within LISTING_MAX_AGE: the listing as it was
    monkeypatch.setattr(readview, "LISTING_MAX_AGE", 0.0)
    old, new = view.snapshots()[0]
    assert {c.path.rsplit("/", 1)[-1] for c in view.diff(old, new) if c.kind == "added"} == {"b.txt"}


def test_a_repository_that_cannot_be_opened_is_tried_again_only_after_a_while(
    configured: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = configured
    (root / "passphrase").write_bytes(b"wrong\n")
    opened = _count_opens(monkeypatch)
    view = _view(root)
    for _ in range(5):
        with pytest.raises(LifeboatError):
            view.snapshots()
    assert len(opened) == 1
    (root / "passphrase").write_bytes(PASSPHRASE + b"\n")
    monkeypatch.setattr(readview, "OPEN_RETRY", 0.0)
    assert len(view.snapshots()[0]) == 1 and len(opened) == 2


def test_an_old_health_report_is_served_while_the_next_one_is_computed(
    configured: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = configured
    reports: list[Any] = []
    view = _view(root, on_health=reports.append)
    first = view.health()
    assert reports == [first]
    assert view.health() is first  # fresh enough: no new check
    monkeypatch.setattr(readview, "HEALTH_MAX_AGE", 0.0)
    assert view.health() is first  # too old: served all the same, a new one is computed beside
    deadline = time.monotonic() + 60
    while len(reports) < 2:
        assert time.monotonic() < deadline, "the background health check never finished"
        time.sleep(0.05)
    assert view.health() is reports[1] is not first
