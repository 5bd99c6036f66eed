"""A damaged format header or key file is reported as damage (13) with a hint that can help —
never as "no repository" (10) or "wrong passphrase" (12); a missing key directory, a newer
format and a location holding something else each get their own answer."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import blake3
import pytest

from lifeboat.errors import DamagedHeader, DamagedKey, PassphraseError, UnsupportedFormat
from lifeboat.repository.crypto.keys import KeyFile
from lifeboat.repository.repo import Repository
from lifeboat.storage.local import LocalBackend
from lifeboat.storage.memory import MemoryBackend
from tests.conftest import FAST_KDF, PASSPHRASE, Cli, CliResult
from tests.e2e.test_failed_source import Nobody

FIXTURES = Path(__file__).parent.parent / "fixtures"
HEADER_HINT = "restore 'config' from a copy or backup of the repository's storage"
KEYS_HINT = "restore the 'keys/' files from a copy or backup of the repository's storage"


def error_and_hint(result: CliResult) -> tuple[str, str]:
    lines = result.stderr.splitlines()
    assert lines and lines[0].startswith("lifeboat: error: "), result
    assert len(lines) > 1 and lines[1].startswith("  hint: "), result
    assert "Traceback" not in result.stderr
    return lines[0], lines[1]


def flip_in(path: Path, after: bytes, offset: int = 0, bit: int = 0x01) -> None:
    """Flip one bit of the byte ``offset`` bytes past the first ``after`` in the file."""
    data = bytearray(path.read_bytes())
    data[data.index(after) + len(after) + offset] ^= bit
    path.write_bytes(bytes(data))


def only_key(repo: Path) -> Path:
    (key,) = (repo / "keys").iterdir()
    return key


# --- the format header -------------------------------------------------------------------------------


def _damage_header(header: Path, how: str) -> None:
    data = header.read_bytes()
    if how == "missing":
        header.unlink()
    elif how == "empty":
        header.write_bytes(b"")
    elif how == "truncated":
        header.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        header.write_bytes(os.urandom(len(data)))
    elif how == "first byte":
        flip_in(header, b"", 0)
    elif how == "format name":
        flip_in(header, b'"format": "lifeboat-', 2)
    elif how == "version 1 -> 0":
        flip_in(header, b'"version": ', 0, 0x01)
    elif how == "version 1 -> 3":
        flip_in(header, b'"version": ', 0, 0x02)
    elif how == "pack size":
        flip_in(header, b'"pack_size": ', 1)
    elif how == "mac":
        flip_in(header, b'"mac": "', 10)
    elif how == "field name":
        flip_in(header, b'"block_siz', 0)
    else:
        raise ValueError(how)


@pytest.mark.parametrize(
    "how",
    [
        "missing",
        "empty",
        "truncated",
        "garbage",
        "first byte",
        "format name",
        "version 1 -> 0",
        "version 1 -> 3",
        "pack size",
        "mac",
        "field name",
    ],
)
def test_a_damaged_header_is_an_integrity_error_with_a_hint_that_helps(
    cli: Cli, local_repo: Repository, cli_env: dict[str, str], how: str
) -> None:
    _damage_header(Path(cli_env["LIFEBOAT_REPO"]) / "config", how)
    result = cli("snapshots")
    assert result.code == 13, result
    error, hint = error_and_hint(result)
    assert "format header 'config'" in error
    assert "damaged" in error or "missing" in error or "MAC" in error
    assert HEADER_HINT in hint and "repair index" not in hint


@pytest.mark.parametrize("bit", [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80])
def test_every_single_bit_flip_of_the_header_is_reported_as_a_damaged_header(bit: int) -> None:
    backend = MemoryBackend()
    Repository.init(backend, PASSPHRASE, kdf=FAST_KDF)
    original = backend.get("config")
    for offset in range(len(original)):
        damaged = bytearray(original)
        damaged[offset] ^= bit
        backend.put("config", bytes(damaged))
        with pytest.raises(DamagedHeader):
            Repository.open(backend, PASSPHRASE)


def _genuine_newer_header(repo: Path, *, parses_as_v1: bool) -> None:
    """A header as a future Lifeboat might write it: version 2, its MAC over version 2."""
    opened = Repository.open(LocalBackend(repo), PASSPHRASE)
    header = repo / "config"
    doc = json.loads(header.read_text())
    doc["version"] = 2
    if not parses_as_v1:
        doc["chunking"] = doc.pop("chunker")
    body = {k: v for k, v in doc.items() if k != "mac"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    doc["mac"] = blake3.blake3(canonical, key=opened._master.header_mac_key).hexdigest()
    header.write_text(json.dumps(doc, indent=2, sort_keys=True))


@pytest.mark.parametrize("parses_as_v1", [False, True])
def test_a_newer_format_version_is_unsupported_not_damaged(
    cli: Cli, local_repo: Repository, cli_env: dict[str, str], parses_as_v1: bool
) -> None:
    _genuine_newer_header(Path(cli_env["LIFEBOAT_REPO"]), parses_as_v1=parses_as_v1)
    result = cli("snapshots")
    assert result.code == 13, result
    error, hint = error_and_hint(result)
    assert "unsupported format" in error and "version 2" in error
    assert "upgrade Lifeboat" in hint


def test_a_location_holding_other_files_is_no_repository(cli: Cli, tmp_path: Path) -> None:
    other = tmp_path / "a-git-directory"
    other.mkdir()
    (other / "config").write_text("[core]\n\trepositoryformatversion = 0\n")
    (other / "HEAD").write_text("ref: refs/heads/main\n")
    result = cli("-r", str(other), "snapshots")
    assert result.code == 10, result
    error, hint = error_and_hint(result)
    assert "holds no Lifeboat repository" in error and "--repo" in hint

    # another tool's repository: a binary config and key files that are not ours
    restic_like = tmp_path / "another-tool"
    (restic_like / "keys").mkdir(parents=True)
    (restic_like / "config").write_bytes(os.urandom(200))
    (restic_like / "keys" / ("ab" * 32)).write_text('{"kdf": "scrypt", "data": "..."}')
    assert cli("-r", str(restic_like), "snapshots").code == 10
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("-r", str(empty), "snapshots").code == 10


# --- key files ---------------------------------------------------------------------------------------


def test_a_repository_without_key_files_says_so_and_how_to_recover(
    cli: Cli, local_repo: Repository, cli_env: dict[str, str]
) -> None:
    only_key(Path(cli_env["LIFEBOAT_REPO"])).unlink()
    result = cli("snapshots")
    assert result.code == 13, result
    error, hint = error_and_hint(result)
    assert "has no key files: it cannot be opened without one" in error
    assert KEYS_HINT in hint and "replica repository" in hint
    assert "repair index" not in hint


def test_a_key_file_that_is_not_json_is_named(cli: Cli, local_repo: Repository, cli_env: dict[str, str]) -> None:
    key = only_key(Path(cli_env["LIFEBOAT_REPO"]))
    key.write_bytes(b"\x00garbage\xff")
    result = cli("snapshots")
    assert result.code == 13, result
    error, hint = error_and_hint(result)
    assert f"key file keys/{key.name[:8]} is damaged (it is not valid JSON)" in error
    assert KEYS_HINT in hint


@pytest.mark.parametrize(
    ("field", "offset"),
    [('"wrapped": "', 5), ('"salt": "', 3), ('"memory_kib": ', 1), ('"nonce": "', 1), ('"id": "', 4)],
)
def test_a_flipped_byte_in_a_key_file_is_damage_not_a_wrong_passphrase(
    cli: Cli, local_repo: Repository, cli_env: dict[str, str], field: str, offset: int
) -> None:
    key = only_key(Path(cli_env["LIFEBOAT_REPO"]))
    flip_in(key, field.encode(), offset)
    result = cli("snapshots")
    assert result.code == 13, result
    error, hint = error_and_hint(result)
    assert f"key file keys/{key.name[:8]} is damaged (its checksum does not match its contents)" in error
    assert "has no other key file" in error
    assert KEYS_HINT in hint
    assert "passphrase" not in error.split("damaged", 1)[1]


def test_every_single_bit_flip_of_a_key_file_is_detected_or_harmless() -> None:
    backend = MemoryBackend()
    repo = Repository.init(backend, PASSPHRASE, kdf=FAST_KDF)
    name = f"keys/{repo.key_id}"
    original = backend.get(name)
    for offset in range(len(original)):
        for bit in (0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80):
            damaged = bytearray(original)
            damaged[offset] ^= bit
            try:
                key = KeyFile.decode(bytes(damaged))
            except DamagedKey:
                continue
            # only the name of the checksum field itself can change without notice: the rest is intact
            assert b'"checksum"' not in damaged, (offset, bit)
            assert key.unwrap(PASSPHRASE).raw == repo._master.raw


def test_a_damaged_key_among_several_is_named_and_another_key_still_opens(
    cli: Cli, local_repo: Repository, cli_env: dict[str, str], tmp_path: Path
) -> None:
    second_id = local_repo.add_key(b"the second passphrase", kdf=FAST_KDF)
    second = tmp_path / "second-passphrase"
    second.write_text("the second passphrase\n")
    damaged = Path(cli_env["LIFEBOAT_REPO"]) / "keys" / local_repo.key_id
    flip_in(damaged, b'"wrapped": "', 7)

    refused = cli("snapshots")
    assert refused.code == 13, refused
    error, hint = error_and_hint(refused)
    assert f"key file keys/{local_repo.key_id[:8]} is damaged" in error
    assert "the passphrase opens none of the other 1 key file(s)" in error
    assert "another key may open the repository" in hint

    with_second = {"LIFEBOAT_PASSWORD_FILE": str(second)}
    assert cli("snapshots", env=with_second).code == 0
    listed = cli("--json", "key", "list", env=with_second)
    assert listed.code == 0, listed
    keys = {k["id"]: k for k in json.loads(listed.stdout)}
    assert keys[local_repo.key_id]["damaged"] and not keys[second_id]["damaged"]
    assert keys[second_id]["current"]
    assert "damaged key file" in cli("key", "list", env=with_second).stdout


def test_a_wrong_passphrase_hint_says_what_helps(
    cli: Cli, local_repo: Repository, cli_env: dict[str, str], tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n")
    result = cli("snapshots", env={"LIFEBOAT_PASSWORD_FILE": str(wrong)})
    assert result.code == 12, result
    error, hint = error_and_hint(result)
    assert "wrong passphrase" in error and "predate" not in error
    assert "key list" not in hint  # it needs the passphrase
    assert "LIFEBOAT_PASSWORD_FILE" in hint and "any other key" in hint


def test_a_key_file_with_a_checksum_is_checked_before_the_passphrase() -> None:
    backend = MemoryBackend()
    repo = Repository.init(backend, PASSPHRASE, kdf=FAST_KDF)
    name = f"keys/{repo.key_id}"
    doc = json.loads(backend.get(name))
    assert len(doc["checksum"]) == 64
    assert KeyFile.decode(backend.get(name)).checksummed
    with pytest.raises(PassphraseError):
        Repository.open(backend, b"wrong")
    doc["hostname"] = "elsewhere"  # a field changed, the checksum not
    backend.delete(name)
    backend.put(name, json.dumps(doc).encode())
    with pytest.raises(DamagedKey, match="checksum does not match"):
        Repository.open(backend, PASSPHRASE)


# --- key files written before checksums ------------------------------------------------------------


@pytest.fixture
def legacy_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "legacy"
    shutil.copytree(FIXTURES / "repository-with-pre-checksum-key", repo)
    (repo / "locks").mkdir(exist_ok=True)
    return repo


def test_a_key_file_written_before_checksums_still_opens(cli: Cli, legacy_repo: Path, tmp_path: Path) -> None:
    (key,) = (legacy_repo / "keys").iterdir()
    assert "checksum" not in json.loads(key.read_text())
    target = tmp_path / "restored"
    restored = cli("-r", str(legacy_repo), "restore", "latest", "--target", str(target))
    assert restored.code == 0, restored
    (hello,) = target.rglob("hello.txt")
    assert hello.read_text() == "written before key files had checksums\n"
    assert cli("-r", str(legacy_repo), "check", "--read-data").code == 0


def test_damage_to_a_key_file_written_before_checksums_is_named_as_possible(cli: Cli, legacy_repo: Path) -> None:
    (key,) = (legacy_repo / "keys").iterdir()
    flip_in(key, b'"wrapped": "', 5)
    result = cli("-r", str(legacy_repo), "snapshots")
    assert result.code == 12, result  # AES-GCM alone cannot tell the two apart
    error, _ = error_and_hint(result)
    assert f"key file(s) {key.name[:8]} predate key-file checksums" in error

    key.write_text("{not json")
    damaged = cli("-r", str(legacy_repo), "snapshots")
    assert damaged.code == 13, damaged
    assert f"key file keys/{key.name[:8]} is damaged" in damaged.stderr


def test_a_newer_key_file_version_is_unsupported(cli: Cli, local_repo: Repository, cli_env: dict[str, str]) -> None:
    key = only_key(Path(cli_env["LIFEBOAT_REPO"]))
    doc = json.loads(key.read_text())
    doc["version"] = 2
    doc.pop("checksum")
    doc["checksum"] = blake3.blake3(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    key.write_text(json.dumps(doc))
    with pytest.raises(UnsupportedFormat):
        KeyFile.decode(key.read_bytes())
    result = cli("snapshots")
    assert result.code == 13, result
    assert "key file keys/" in result.stderr and "version 2" in result.stderr


# --- a key file this user may not read ------------------------------------------------------------


def test_a_key_file_the_user_cannot_read_stops_neither_another_key_nor_is_called_a_wrong_passphrase(
    as_nobody: Nobody,
) -> None:
    repo = Repository.open(LocalBackend(as_nobody.repo), PASSPHRASE)
    other_id = repo.add_key(b"another passphrase", kdf=FAST_KDF)
    other = as_nobody.repo / "keys" / other_id
    shutil.chown(other, "root")  # root wrote it, yet the repository's owner got it: take it back
    os.chmod(other, 0o600)

    opened = as_nobody.run("snapshots")  # nobody's own key still opens the repository
    assert opened.code == 0, opened
    listed = as_nobody.run("--json", "key", "list")
    assert listed.code == 0, listed
    keys = {k["id"]: k for k in json.loads(listed.stdout)}
    assert keys[other_id]["unreadable"] and not keys[other_id]["damaged"]
    assert keys[repo.key_id]["current"] and not keys[repo.key_id]["unreadable"]
    assert "unreadable key file" in as_nobody.run("key", "list").stdout

    own = as_nobody.repo / "keys" / repo.key_id
    shutil.chown(own, "root")
    os.chmod(own, 0o600)  # now the key the passphrase belongs to cannot be read either
    refused = as_nobody.run("snapshots")
    assert refused.code == 14, refused
    error, hint = error_and_hint(refused)
    assert "wrong passphrase" not in error
    first, second = sorted([repo.key_id, other_id])
    assert error.startswith(f"lifeboat: error: key file keys/{first[:8]} cannot be read (")
    assert f"nor can keys/{second[:8]}" in error and "permission denied" in error.lower()
    assert "the passphrase may belong to the unreadable one" in error
    assert f"chown -R nobody:nogroup {as_nobody.repo}" in hint  # what the storage says fixes it
    assert hint.endswith("or use the passphrase of a key file that can be read")
    as_json = as_nobody.run("--json", "snapshots")
    assert as_json.code == 14
    assert json.loads(as_json.stdout)["error"]["kind"] == "storage_permission_denied"
