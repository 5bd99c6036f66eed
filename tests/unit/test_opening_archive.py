"""The WAL pusher's archive being opened in a thread of its own: a wait for it has a deadline."""

from __future__ import annotations

import threading
from typing import NoReturn

import pytest

from lifeboat.errors import TransientStorageError
from lifeboat.operations.wal_push import OpeningArchive


def test_a_push_waiting_for_an_opening_that_never_ends_fails_after_its_timeout() -> None:
    release = threading.Event()

    def never_opens() -> NoReturn:
        release.wait()
        raise RuntimeError("released")

    opening = OpeningArchive.start("7000000000000000001", never_opens)
    try:
        with pytest.raises(TransientStorageError, match=r"opening the repository took longer than 0.2 s"):
            opening.get(0.2)
        assert opening.failure() is None  # still opening: no verdict on the archive itself
    finally:
        release.set()


def test_a_timeout_of_the_opening_itself_is_reported_as_it_is() -> None:
    def times_out() -> NoReturn:
        raise TimeoutError("the storage did not answer")

    opening = OpeningArchive.start("7000000000000000001", times_out)
    with pytest.raises(TimeoutError, match="the storage did not answer"):
        opening.get(30)
