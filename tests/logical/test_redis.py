"""The redis source as a user runs it: ``backup --source`` of a real password-protected
redis-server, ``restore redis`` into a directory a new server loads, ``verify`` with
redis-check-rdb; failures save nothing; the password never reaches a command line."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeboat.sources.redis.client import parse_info
from lifeboat.sources.redis.rdb import EOF_MARK_SIZE, RdbStream, check_rdb
from tests.conftest import Cli
from tests.servers.process import free_port
from tests.servers.redis import PASSWORD, RedisServer, redis_server, server_dir, start_redis

__all__ = ["redis_server"]  # the session fixture, used by name

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("redis")]


@pytest.fixture
def repo(cli: Cli, tmp_path: Path, redis_server: RedisServer) -> Cli:
    """An initialised repository and a configuration with the source ``cache`` (the test server)."""
    assert cli("init", "--kdf-memory", "8MiB").code == 0
    password_file = tmp_path / "redis-password"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o600)
    config = tmp_path / "lifeboat.yaml"
    config.write_text(
        json.dumps(
            {
                "sources": {
                    "cache": {
                        "type": "redis",
                        "host": "127.0.0.1",
                        "port": redis_server.port,
                        "password_file": str(password_file),
                    },
                    "down": {"type": "redis", "host": "127.0.0.1", "port": free_port()},
                }
            }
        )
    )

    def run(*args: str, env: dict[str, str] | None = None) -> object:
        return cli(*args, env={"LIFEBOAT_CONFIG": str(config), **(env or {})})

    return run  # type: ignore[return-value]


@pytest.fixture
def restore_dir() -> Iterator[Path]:
    directory = server_dir("redis-restored-")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def fill(server: RedisServer) -> None:
    """Keys of every type, in two databases, one with an expiry."""
    server.cli("FLUSHALL")
    server.cli("SET", "greeting", "hello")
    server.cli("SET", "binary", "\x01\xffbytes ünïcode")
    server.cli("SET", "session", "short-lived", "EX", "3600")
    server.cli("RPUSH", "queue", "a", "b", "c")
    server.cli("HSET", "user:1", "name", "Ada", "lang", "en")
    server.cli("SADD", "tags", "x", "y", "z")
    server.cli("ZADD", "scores", "1.5", "p", "3", "q")
    server.cli("XADD", "events", "1-1", "kind", "login")
    server.cli("SET", "big", input=random.Random(7).randbytes(3 << 20))  # several chunks
    server.cli("SET", "other-db", "in db 3", db=3)


def contents(server: RedisServer) -> dict[tuple[int, str], object]:
    """Every key of databases 0 and 3 with its type and value, as a user would read them."""
    found: dict[tuple[int, str], object] = {}
    for db in (0, 3):
        for key in server.cli("KEYS", "*", db=db).split():
            kind = server.cli("TYPE", key, db=db).strip()
            read = {
                "string": ("GET", key),
                "list": ("LRANGE", key, "0", "-1"),
                "hash": ("HGETALL", key),
                "set": ("SMEMBERS", key),
                "zset": ("ZRANGE", key, "0", "-1", "WITHSCORES"),
                "stream": ("XRANGE", key, "-", "+"),
            }[kind]
            value = server.cli(*read, db=db)
            found[(db, key)] = (kind, sorted(value.splitlines()) if kind in ("set", "hash") else value)
        ttl = server.cli("TTL", "session", db=0).strip() if db == 0 else ""
        if ttl:
            found[(0, "session-has-ttl")] = int(ttl) > 0
    return found


def snapshots(repo: Cli) -> list[dict[str, object]]:
    done = repo("--json", "snapshots")
    assert done.code == 0, done
    return (
        json.loads(done.stdout)["snapshots"] if isinstance(json.loads(done.stdout), dict) else json.loads(done.stdout)
    )


def test_keys_of_every_type_round_trip_through_a_new_server(
    repo: Cli, redis_server: RedisServer, restore_dir: Path
) -> None:
    fill(redis_server)
    backed = repo("--json", "backup", "--source", "cache")
    assert backed.code == 0, backed
    snapshot = json.loads(backed.stdout)["snapshot"]
    assert snapshot["kind"] == "redis" and snapshot["source"] == "cache"
    record = snapshot["extra"]["redis"]
    assert record["keys"] == 10 and record["version"].startswith("7.")
    assert record["databases"]["db0"]["keys"] == 9 and record["databases"]["db3"]["keys"] == 1
    assert record["eof_mark_removed"] is True  # the test server transfers disklessly

    restored = repo("restore", "redis", "latest", "--source", "cache", "--target-dir", str(restore_dir))
    assert restored.code == 0, restored
    rdb = restore_dir / "dump.rdb"
    assert f"to {rdb}" in restored.stdout and "10 keys" in restored.stdout
    assert rdb.stat().st_uid == restore_dir.stat().st_uid and stat.S_IMODE(rdb.stat().st_mode) == 0o600
    copy = start_redis(restore_dir)
    try:
        assert contents(copy) == contents(redis_server)
        assert copy.cli("DBSIZE").strip() == "9"
    finally:
        copy.stop()


def test_restore_can_start_a_server_on_the_restored_directory(
    repo: Cli, redis_server: RedisServer, restore_dir: Path
) -> None:
    fill(redis_server)
    assert repo("backup", "--source", "cache").code == 0
    port = free_port()
    started = repo(
        "--json", "restore", "redis", "latest", "--target-dir", str(restore_dir), "--start-port", str(port),
        "--appendonly", "--dbfilename", "cache.rdb",
    )  # fmt: skip
    assert started.code == 0, started
    server = json.loads(started.stdout)["server"]
    try:
        assert server["port"] == port and server["appendonly"] is True
        copy = RedisServer(port, restore_dir, None, None, Path(server["log"]))  # type: ignore[arg-type]
        assert copy.cli("GET", "greeting").strip() == "hello"
        assert copy.cli("DBSIZE", db=3).strip() == "1"
        assert "aof_enabled:1" in copy.cli("INFO", "persistence")
        assert (restore_dir / "cache.rdb").exists()
        # a running server in the directory: refused, even with --force
        busy = repo(
            "restore", "redis", "latest", "--target-dir", str(restore_dir), "--dbfilename", "cache.rdb", "--force"
        )
        assert busy.code == 1 and f"(pid {server['pid']}) is running in {restore_dir}" in busy.stderr, busy
    finally:
        os.kill(server["pid"], signal.SIGTERM)


def test_restore_refuses_an_existing_rdb_without_force(repo: Cli, redis_server: RedisServer, restore_dir: Path) -> None:
    fill(redis_server)
    assert repo("backup", "--source", "cache").code == 0
    (restore_dir / "dump.rdb").write_bytes(b"the server's own file")
    refused = repo("restore", "redis", "latest", "--target-dir", str(restore_dir))
    assert refused.code == 1, refused
    assert f"{restore_dir}/dump.rdb exists" in refused.stderr and "--force" in refused.stderr
    assert (restore_dir / "dump.rdb").read_bytes() == b"the server's own file"
    forced = repo("restore", "redis", "latest", "--target-dir", str(restore_dir), "--force")
    assert forced.code == 0, forced
    assert (restore_dir / "dump.rdb").read_bytes().startswith(b"REDIS")


def test_a_running_server_in_the_target_directory_is_refused(repo: Cli, redis_server: RedisServer) -> None:
    fill(redis_server)
    assert repo("backup", "--source", "cache").code == 0
    refused = repo("restore", "redis", "latest", "--target-dir", str(redis_server.directory), "--force")
    assert refused.code == 1, refused
    assert f"is running in {redis_server.directory}" in refused.stderr and "stop the server" in refused.stderr
    assert not (redis_server.directory / "dump.rdb").exists()


@pytest.mark.parametrize("case", ["wrong password", "server down"])
def test_a_failing_redis_cli_is_exit_16_and_saves_no_snapshot(
    repo: Cli, redis_server: RedisServer, tmp_path: Path, case: str
) -> None:
    if case == "wrong password":
        (tmp_path / "redis-password").write_text("not-the-password\n")
        failed = repo("backup", "--source", "cache")
        assert "WRONGPASS" in failed.stderr or "NOAUTH" in failed.stderr, failed
    else:
        failed = repo("backup", "--source", "down")
        assert "Connection refused" in failed.stderr, failed
    assert failed.code == 16, failed
    assert "no snapshot was saved" in failed.stderr
    assert snapshots(repo) == []


def test_the_password_goes_by_environment_never_on_a_command_line(
    repo: Cli, redis_server: RedisServer, tmp_path: Path
) -> None:
    """A redis-cli earlier on PATH records its argv and whether REDISCLI_AUTH was set, then
    runs the real one: what every redis-cli Lifeboat starts was really given."""
    fill(redis_server)
    spy = tmp_path / "bin"
    spy.mkdir()
    calls = tmp_path / "calls.log"
    real = shutil.which("redis-cli")
    (spy / "redis-cli").write_text(
        f'#!/bin/sh\necho "argv: $* auth: ${{REDISCLI_AUTH:+set}}" >> {calls}\nexec {real} "$@"\n'
    )
    (spy / "redis-cli").chmod(0o755)
    backed = repo("--json", "backup", "--source", "cache", env={"PATH": f"{spy}:{os.environ['PATH']}"})
    assert backed.code == 0, backed
    logged = calls.read_text()
    assert "argv: -h 127.0.0.1 -p" in logged and "--rdb -" in logged and "INFO" in logged
    assert logged.count("auth: set") == 2 and PASSWORD not in logged
    assert " -a " not in logged and "--pass" not in logged
    assert PASSWORD not in backed.stdout and PASSWORD not in backed.stderr


def test_verify_accepts_the_rdb_and_reports_a_damaged_pack(
    repo: Cli, redis_server: RedisServer, tmp_path: Path
) -> None:
    fill(redis_server)
    assert repo("backup", "--source", "cache").code == 0
    verified = repo("verify", "--source", "cache")
    assert verified.code == 0, verified
    assert "the RDB with redis-check-rdb (10 keys)" in verified.stdout

    packs = sorted((tmp_path / "repo" / "data").rglob("*"), key=lambda p: p.stat().st_size if p.is_file() else 0)
    biggest = packs[-1]  # a pack holding the 3 MiB value
    data = bytearray(biggest.read_bytes())
    data[len(data) // 2] ^= 0x40
    biggest.write_bytes(bytes(data))
    damaged = repo("verify", "--source", "cache")
    assert damaged.code == 13, damaged
    assert "error:" in damaged.stdout + damaged.stderr and "cache" in damaged.stdout + damaged.stderr


# --- the pieces, on real files ---------------------------------------------------------------


def test_redis_check_rdb_finds_a_truncated_rdb(redis_server: RedisServer, tmp_path: Path) -> None:
    fill(redis_server)
    whole = tmp_path / "whole.rdb"
    os.system(f"REDISCLI_AUTH={PASSWORD} redis-cli -p {redis_server.port} --rdb {whole} >/dev/null 2>&1")
    assert check_rdb(str(whole)).ok and check_rdb(str(whole)).keys == 10
    cut = tmp_path / "cut.rdb"
    cut.write_bytes(whole.read_bytes()[:150])
    checked = check_rdb(str(cut))
    assert not checked.ok and "Unexpected EOF" in checked.problem


def test_the_eof_mark_of_a_diskless_transfer_is_left_out() -> None:
    import io

    body = b"REDIS0010" + bytes(range(256)) * 3 + b"\xff" + b"\x01" * 8
    mark = b"0123456789abcdef0123456789abcdef01234567"
    assert len(mark) == EOF_MARK_SIZE
    for stream, expected, removed in ((body + mark, body, True), (body, body, False)):
        reader = RdbStream(io.BytesIO(stream))
        out = b""
        while piece := reader.read(100):
            out += piece
        assert (out, reader.mark_removed, reader.head) == (expected, removed, b"REDIS")


def test_info_is_read_into_keys_per_database() -> None:
    info = parse_info("# Server\r\nredis_version:7.0.15\r\n# Persistence\r\naof_enabled:1\r\n# Keyspace\r\n"
                      "db0:keys=2,expires=1,avg_ttl=5\r\ndb3:keys=1,expires=0,avg_ttl=0\r\n")  # fmt: skip
    assert info.keys == 3 and info.aof_enabled and info.databases["db0"] == {"keys": 2, "expires": 1, "avg_ttl": 5}


def test_a_scratch_instance_serves_the_snapshot_on_a_free_port_until_stopped(
    repo: Cli, redis_server: RedisServer, tmp_path: Path
) -> None:
    from lifeboat.core.events import Events
    from lifeboat.repository.repo import Repository
    from lifeboat.sources.base import RestoreContext
    from lifeboat.sources.redis.kind import RedisSource
    from lifeboat.storage.local import LocalBackend
    from tests.conftest import PASSPHRASE

    fill(redis_server)
    assert repo("backup", "--source", "cache").code == 0
    opened = Repository.open(LocalBackend(tmp_path / "repo"), PASSPHRASE)
    (snapshot,) = opened.snapshots()
    parent = server_dir("redis-scratch-")
    directory = parent / "drill"
    try:
        instance = RedisSource().scratch(RestoreContext(loader=opened, events=Events()), snapshot, str(directory))
        copy = RedisServer(instance.address["port"], directory, None, None, directory / "x")  # type: ignore[arg-type]
        assert copy.cli("GET", "greeting").strip() == "hello" and copy.cli("DBSIZE").strip() == "9"
        instance.stop()
        assert not directory.exists()  # it made the directory, and removed it
        with pytest.raises(AssertionError):
            copy.cli("PING")
    finally:
        shutil.rmtree(parent, ignore_errors=True)
