"""A backup to local disk writes each pack into the repository as it is filled: no pack is
held in memory, and a backup that fails or is killed leaves nothing that counts."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lifeboat.core.ids import BlobType
from lifeboat.repository.pack import pack_hash, read_pack_entries
from lifeboat.repository.repo import Repository
from lifeboat.repository.session import WriteSession
from lifeboat.storage.base import staging
from lifeboat.storage.faulty import FaultyBackend
from tests.conftest import PASSPHRASE


def temporaries(root: Path) -> list[Path]:
    return sorted(root.rglob(".tmp-*"))


def test_a_staged_pack_is_named_by_the_hash_of_its_bytes_and_reads_back(local_repo: Repository) -> None:
    assert staging(local_repo.backend) is not None
    rng = random.Random(1)
    blobs = [rng.randbytes(300_000) for _ in range(5)]
    with WriteSession(local_repo) as session:
        for data in blobs:
            session.save_blob(BlobType.DATA, data)
        stats = session.commit()
    assert stats.packs == 1
    root = Path(local_repo.backend.location)
    (pack,) = list((root / "data").rglob("*/*"))
    data = pack.read_bytes()
    assert pack.name == pack_hash(data) and len(data) == stats.bytes_stored
    assert len(read_pack_entries(data, local_repo.encryption_root)) == 5
    local_repo.forget_index()
    assert [local_repo.load_blob(local_repo.blob_id(b)) for b in blobs] == blobs
    assert temporaries(root) == []


def test_a_session_that_fails_leaves_no_staged_file(local_repo: Repository) -> None:
    root = Path(local_repo.backend.location)
    with pytest.raises(RuntimeError, match="stop"), WriteSession(local_repo) as session:
        session.save_blob(BlobType.DATA, random.Random(2).randbytes(100_000))
        session.save_blob(BlobType.TREE, b'{"nodes": []}')
        # Being filled on disk, not in memory, once a worker has packed a blob: wait for that
        # (the workers run on their own threads; under load they start after this line).
        deadline = time.monotonic() + 30
        while not temporaries(root) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert temporaries(root)
        raise RuntimeError("stop")
    assert temporaries(root) == []
    assert list((root / "data").rglob("*/*")) == []


def test_storage_that_injects_faults_is_written_through_put() -> None:
    """A wrapper that changes writes (faults, read-only) is not bypassed by staging."""
    from lifeboat.storage.memory import MemoryBackend

    assert staging(FaultyBackend(MemoryBackend())) is None


# Runs the command it is given and prints its exit code and peak memory (KiB). Linux gives a
# child the peak of the process that started it (its pages before exec), so the measured
# command is started by this small process, never by the test process itself.
MEASURE = """
import os, sys
null = os.open(os.devnull, os.O_WRONLY)
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, null, 1)])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def peak_mib(*args: str, env: dict[str, str]) -> int:
    """Run lifeboat; its exit code must be 0; return its peak resident memory in MiB."""
    measured = subprocess.run(
        [sys.executable, "-c", MEASURE, sys.executable, "-m", "lifeboat", *args],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    code, kib = measured.stdout.split()
    assert code == "0", (args, measured.stderr)
    return int(kib) // 1024


@pytest.mark.slow
def test_backup_and_restore_of_a_large_file_stay_in_a_small_memory(tmp_path: Path) -> None:
    """200 MiB that does not compress, in 32 MiB packs: the backup held three packs in
    memory at once (179 MiB); now none (69 MiB), about 40 of which are the interpreter and
    its libraries and 8 the key derivation this repository was made with."""
    password = tmp_path / "passphrase"
    password.write_bytes(PASSPHRASE)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env |= {"LIFEBOAT_PASSWORD_FILE": str(password), "LIFEBOAT_STATE_DIR": str(tmp_path / "state")}
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")  # compiled once, by the rehearsal below

    def round_trip(name: str, megabytes: int) -> tuple[int, int]:
        source = tmp_path / name
        source.mkdir()
        with (source / "big.bin").open("wb") as out:
            for _ in range(megabytes):
                out.write(os.urandom(1024 * 1024))
        env["LIFEBOAT_REPO"] = str(tmp_path / f"repo-{name}")
        peak_mib("init", "--kdf-memory", "8MiB", env=env)
        backup = peak_mib("backup", str(source), env=env)
        target = tmp_path / f"out-{name}"
        restore = peak_mib("restore", "latest", "--target", str(target), env=env)
        assert (target / str(source).lstrip("/") / "big.bin").stat().st_size == megabytes * 1024 * 1024
        assert temporaries(tmp_path / f"repo-{name}") == []
        shutil.rmtree(target)
        return backup, restore

    round_trip("rehearsal", 1)  # the interpreter's own compiling is not what is measured
    backup, restore = round_trip("large", 200)
    assert backup <= 96 and restore <= 80, (backup, restore)
