"""The mariadb source's pure parts: its configuration's rules, the option file that carries
the password, and the xbstream reader on streams built here (the real server's streams are
read in tests/logical/test_mariadb.py)."""

from __future__ import annotations

import os
import struct
import zlib

import pytest

from lifeboat.config.loader import parse_config
from lifeboat.errors import ConfigError
from lifeboat.sources.mariadb.xbstream import XbstreamReader, parse_binlog_info
from lifeboat.sources.tools.mariadb import Connection, dump_argv, options_file


def chunk(path: bytes, payload: bytes | None, *, offset: int = 0) -> bytes:
    head = b"XBSTCK01" + b"\0" + (b"E" if payload is None else b"P") + struct.pack("<I", len(path)) + path
    if payload is None:
        return head
    return head + struct.pack("<QQI", len(payload), offset, zlib.crc32(payload)) + payload


def test_the_configuration_knows_the_mariadb_kind_and_its_rules() -> None:
    config = parse_config("sources: {db: {type: mariadb, socket: /run/mysqld/mysqld.sock, databases: [shop]}}")
    source = config.sources["db"]
    assert source.type == "mariadb" and source.method == "logical" and source.databases == ["shop"]
    with pytest.raises(ConfigError, match="method 'physical' backs up the whole server"):
        parse_config("sources: {db: {type: mariadb, method: physical, databases: [shop]}}")
    with pytest.raises(ConfigError, match="longer than 107 bytes"):
        parse_config("sources: {db: {type: mariadb, socket: /" + "s" * 120 + "}}")
    with pytest.raises(ConfigError, match="must be absolute"):
        parse_config("sources: {db: {type: mariadb, password_file: relative.pass}}")


def test_the_option_file_is_private_quoted_and_removed() -> None:
    connection = Connection(host="db.example", port=3307, user="back up", password='p"a#s\\s')
    assert 'p"a#s' not in repr(connection)
    with options_file(connection) as path:
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700
        with open(path) as handle:
            text = handle.read()
        assert '[client]\nhost="db.example"\nprotocol=TCP\nport=3307\nuser="back up"\npassword="p\\"a#s\\\\s"\n' in text
        argv = dump_argv("mariadb-dump", path, "shop", binlog=True)
    assert argv[1] == f"--defaults-extra-file={path}" and argv[-2:] == ["--", "shop"]
    assert "--master-data=2" in argv and not any('p"a' in arg for arg in argv)
    assert not os.path.exists(path) and not os.path.exists(os.path.dirname(path))


def test_the_xbstream_reader_keeps_metadata_and_finds_damage() -> None:
    stream = (
        chunk(b"ibdata1", b"x" * 1000)
        + chunk(b"ibdata1", b"y" * 10, offset=1000)
        + chunk(b"ibdata1", None)
        + chunk(b"xtrabackup_binlog_info", b"binlog.000042\t1233\t0-1-6\n")
        + chunk(b"xtrabackup_binlog_info", None)
        + chunk(b"xtrabackup_checkpoints", b"backup_type = full-backuped\nto_lsn = 10\n")
        + chunk(b"xtrabackup_checkpoints", None)
    )
    reader = XbstreamReader()
    for i in range(0, len(stream), 3):  # in pieces that split every field
        reader.feed(stream[i : i + 3])
    reader.end()
    assert reader.problems == []
    assert reader.files == {"ibdata1": 1010, "xtrabackup_binlog_info": 25, "xtrabackup_checkpoints": 40}
    assert reader.binlog_position() == {"file": "binlog.000042", "position": "1233", "gtid": "0-1-6"}
    assert reader.checkpoints()["backup_type"] == "full-backuped"

    unended = XbstreamReader()
    unended.feed(stream[: stream.index(b"XBSTCK01", 20)] + chunk(b"other", b"z"))
    unended.end()
    assert unended.problems and "have no end" in unended.problems[0]
    damaged = bytearray(stream)
    damaged[40] ^= 1
    bad = XbstreamReader()
    bad.feed(bytes(damaged))
    bad.end()
    assert bad.problems == ["ibdata1: a chunk's checksum does not match (damaged)"]
    garbage = XbstreamReader()
    garbage.feed(b"not an xbstream at all")
    garbage.end()
    assert "not an xbstream" in garbage.problems[0]
    assert parse_binlog_info(b"") is None


def test_connections_describe_themselves_without_the_password() -> None:
    assert Connection(socket="/run/m.sock", user="root", password="pw").describe() == "root@socket /run/m.sock"
    assert Connection(host="h", user="u", password="pw").describe() == "u@h:3306"
    assert Connection().describe() == "the default server"
