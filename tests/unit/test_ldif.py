"""Reading slapcat's LDIF: entries counted whatever the pieces a stream arrives in, folded and
base64 values read, and the databases and pid file a cn=config dump names."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifeboat.config.loader import parse_config
from lifeboat.errors import ConfigError
from lifeboat.sources.ldap.layout import layout_of
from lifeboat.sources.ldap.ldif import EntryCounter, parse_entries

DUMP = (
    b"dn: dc=example,dc=org\nobjectClass: dcObject\ndc: example\n\n"
    b"# a comment\n#  folded on\ndn: uid=alice,dc=example,dc=org\ncn: Alice\n"
    b"description: a long value fol\n ded here\n\n"
    b"dn:: dWlkPWLDtmIsZGM9ZXhhbXBsZSxkYz1vcmc=\nuid: b\n\n"
)

CONFIG = b"""dn: cn=config
objectClass: olcGlobal
olcPidFile: /run/slapd/slapd.pid

dn: olcDatabase={-1}frontend,cn=config
olcDatabase: {-1}frontend

dn: olcDatabase={0}config,cn=config
olcDatabase: {0}config

dn: olcDatabase={1}mdb,cn=config
olcDatabase: {1}mdb
olcSuffix: dc=example,dc=org
olcDbDirectory: /var/lib/ld
 ap

dn: olcDatabase={2}monitor,cn=config
olcDatabase: {2}monitor
"""


def count(pieces: list[bytes]) -> EntryCounter:
    counter = EntryCounter()
    for piece in pieces:
        counter.feed(piece)
    return counter.finish()


@given(st.lists(st.integers(min_value=0, max_value=len(DUMP)), max_size=8))
def test_entries_are_counted_wherever_the_stream_is_cut(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(DUMP)]
    counter = count([DUMP[a:b] for a, b in itertools.pairwise(bounds)])
    assert counter.ok, counter.problems
    assert counter.entries == 3


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b"cn: no dn first\n", "does not start with dn:"),
        (b"dn: a=b\ncn: x\ndn: c=d\n", "a second dn:"),
        (b"dn: a=b\nno colon here\n", "not an 'attribute: value' line"),
        (b" continued\n", "continuation line outside an entry"),
    ],
)
def test_what_is_not_ldif_is_named(text: bytes, problem: str) -> None:
    counter = count([text])
    assert not counter.ok and problem in counter.problems[0]


def test_folded_and_base64_values_are_read() -> None:
    entries = parse_entries(DUMP)
    assert [dn for dn, _ in entries] == [
        "dc=example,dc=org",
        "uid=alice,dc=example,dc=org",
        "uid=böb,dc=example,dc=org",
    ]
    assert entries[1][1]["description"] == ["a long value folded here"]


def test_the_configuration_names_its_databases_and_pid_file() -> None:
    layout = layout_of(CONFIG)
    assert layout.pid_file == "/run/slapd/slapd.pid"
    assert [(d.number, d.backend) for d in layout.databases] == [
        (-1, "frontend"),
        (0, "config"),
        (1, "mdb"),
        (2, "monitor"),
    ]
    (data,) = layout.data_databases()
    assert (data.suffix, data.directory) == ("dc=example,dc=org", "/var/lib/ldap")


def test_an_ldap_source_takes_a_directory_or_a_file_not_both() -> None:
    with pytest.raises(ConfigError, match="give config_dir or config_file, not both"):
        parse_config("sources: {d: {type: ldap, config_dir: /etc/ldap/slapd.d, config_file: /etc/ldap/slapd.conf}}")
    with pytest.raises(ConfigError, match="must be absolute"):
        parse_config("sources: {d: {type: ldap, config_dir: slapd.d}}")
    config = parse_config("sources: {etc: {type: config, paths: [/etc/app], secrets: ['*.key']}}")
    assert config.sources["etc"].type == "config"
