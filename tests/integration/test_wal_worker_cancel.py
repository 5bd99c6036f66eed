"""The WAL workers stop between segments when their cancel token is set (the daemon stops
them): the segment under way finishes and is recorded, no new one starts, the worker returns
at once instead of waiting to be idle, and the next worker carries on where it stopped."""

from __future__ import annotations

from pathlib import Path

from lifeboat.core.events import CancelToken
from lifeboat.operations.wal_fetch import BackgroundFetcher, FetchSettings
from lifeboat.operations.wal_push import BackgroundPusher, PushSettings
from lifeboat.repository.repo import Repository
from lifeboat.repository.wal import PushOutcome, WalArchive
from lifeboat.sources.postgres.spool import Spool
from lifeboat.storage.local import LocalBackend
from tests.conftest import FAST_KDF, PASSPHRASE
from tests.integration.deadline import within
from tests.postgres.fakewal import SYSTEM_ID, add_ready, make_pg_wal, segment_bytes

SEGMENTS = [f"00000001000000000000000{n}" for n in (1, 2, 3, 4)]
MiB = 1024 * 1024


class CancelAfterFirst(WalArchive):
    """The archive, and the daemon asking the worker to stop once the first segment is done."""

    def __init__(self, repo: Repository, token: CancelToken) -> None:
        super().__init__(repo, SYSTEM_ID)
        self.token = token

    def store(self, name: str, compressed: bytes, data: bytes | memoryview) -> PushOutcome:
        outcome = super().store(name, compressed, data)
        self.token.cancel("the daemon stops")
        return outcome

    def fetch(self, name: str) -> bytes:
        data = super().fetch(name)
        self.token.cancel("the daemon stops")
        return data


def test_a_cancelled_pusher_finishes_its_segment_and_stops(tmp_path: Path) -> None:
    repo = Repository.init(LocalBackend(tmp_path / "repo"), PASSPHRASE, kdf=FAST_KDF)
    pg_wal = make_pg_wal(tmp_path / "data")
    for name in SEGMENTS:
        add_ready(pg_wal, name)
    spool = Spool(tmp_path / "spool").ensure()
    token = CancelToken()
    settings = PushSettings(parallel=1, idle_exit=120)  # only the cancel can end it soon

    pushed = within(
        60, lambda: BackgroundPusher(CancelAfterFirst(repo, token), pg_wal, spool, settings, cancel=token).run()
    )
    assert pushed == 1
    archive = WalArchive(repo, SYSTEM_ID)
    assert [f.name for f in archive.files()] == SEGMENTS[:1]
    assert [n for n in SEGMENTS if spool.push_done(n) is not None] == SEGMENTS[:1]
    assert "pusher stopping: the daemon stops" in spool.log_path.read_text()

    rest = BackgroundPusher(archive, pg_wal, spool, PushSettings(parallel=1, idle_exit=0.01)).run()
    assert rest == 3
    assert sorted(f.name for f in archive.files()) == SEGMENTS


def test_a_cancelled_fetcher_finishes_its_segment_and_stops(tmp_path: Path) -> None:
    repo = Repository.init(LocalBackend(tmp_path / "repo"), PASSPHRASE, kdf=FAST_KDF)
    archive = WalArchive(repo, SYSTEM_ID)
    for name in SEGMENTS:
        archive.push(name, segment_bytes(name))
    spool = Spool(tmp_path / "spool").ensure()
    spool.request(SEGMENTS[0])
    token = CancelToken()
    settings = FetchSettings(parallel=1, prefetch=3, idle_exit=120, poll=0.002)

    fetcher = BackgroundFetcher(CancelAfterFirst(repo, token), spool, settings, segment_size=16 * MiB, cancel=token)
    fetched = within(60, fetcher.run)
    assert fetched == 1
    assert [n for n in SEGMENTS if spool.prefetched(n) is not None] == SEGMENTS[:1]  # no prefetch after
    assert "fetcher stops: the daemon stops" in spool.log_path.read_text()
