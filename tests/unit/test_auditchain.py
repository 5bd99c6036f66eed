"""The audit log's chain (core/auditchain.py): every way of tampering with a log is found and
named by its line; secrets never reach an entry."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from lifeboat.core.auditchain import (
    GENESIS,
    REDACTED,
    Anchor,
    anchor_due,
    canonical,
    entry_hash,
    entry_line,
    new_entry,
    next_link,
    redact_arguments,
    redact_url,
    status_of,
    verify_lines,
)


def _log(count: int) -> list[bytes]:
    lines: list[bytes] = []
    for n in range(count):
        seq, prev = next_link(reversed(lines))
        entry = new_entry(
            seq=seq,
            prev=prev,
            time=f"2026-11-30T10:{n:02d}:00.000+00:00",
            host="db1",
            actor={"user": "postgres", "token": None},
            action="backup",
            arguments={"source": ["db"], "n": n},
            result={"status": "ok", "exit_code": 0, "error": None},
        )
        lines.append(entry_line(entry)[:-1])
    return lines


def _edit(lines: list[bytes], index: int, **changes: object) -> list[bytes]:
    entry = json.loads(lines[index])
    entry.update(changes)
    return [*lines[:index], canonical(entry), *lines[index + 1 :]]


def _rehash_from(lines: list[bytes], start: int) -> list[bytes]:
    """An attacker who knows the format writes valid hashes from ``start`` on."""
    out = list(lines[:start])
    prev = json.loads(out[-1])["hash"] if out else GENESIS
    for line in lines[start:]:
        entry = json.loads(line)
        entry["prev"] = prev
        entry["hash"] = entry_hash(entry)
        prev = entry["hash"]
        out.append(canonical(entry))
    return out


def _renumber(lines: list[bytes]) -> list[bytes]:
    out = []
    for seq, line in enumerate(lines, start=1):
        entry = json.loads(line)
        entry["seq"] = seq
        out.append(canonical(entry))
    return _rehash_from(out, 0)


LOG = _log(10)

# (what was done, the tampered lines, the finding kinds expected, a text each message contains)
CASES: list[tuple[str, Callable[[], list[bytes]], list[str], list[str]]] = [
    ("intact", lambda: LOG, [], []),
    ("edited entry", lambda: _edit(LOG, 4, action="forget"), ["changed"], ["entry 5 (line 5) was changed"]),
    (
        "edited result, hash recomputed",
        lambda: _rehash_from(_edit(LOG, 4, result={"status": "ok"}), 4)[:5] + LOG[5:],
        ["missing"],
        ["entry 6 (line 6) does not follow entry 5 (line 5)"],
    ),
    ("removed entry", lambda: LOG[:4] + LOG[5:], ["missing"], ["entry 5 is missing between lines 4 and 5"]),
    (
        "removed entries",
        lambda: LOG[:3] + LOG[6:],
        ["missing"],
        ["entries 4 to 6 are missing between lines 3 and 4"],
    ),
    (
        "reordered entries",
        lambda: [*LOG[:3], LOG[5], LOG[3], LOG[4], *LOG[6:]],
        ["reordered"],
        ["entry 4 (line 5) comes after entry 6 (line 4): the lines were reordered"],
    ),
    (
        "two lines swapped",
        lambda: [*LOG[:6], LOG[7], LOG[6], *LOG[8:]],
        ["reordered"],
        ["entry 7 (line 8) comes after entry 8 (line 7)"],
    ),
    (
        "a line copied",
        lambda: [*LOG[:6], LOG[2], *LOG[6:]],
        ["duplicated"],
        ["entry 3 (line 7) is a copy: entry 3 is on line 3"],
    ),
    ("head cut off", lambda: LOG[3:], ["missing"], ["entries 1 to 3 are missing before line 1"]),
    (
        "malformed line",
        lambda: [*LOG[:2], b'{"seq": 3, "act', *LOG[3:]],
        ["malformed", "missing"],
        ["line 3 is not JSON"],
    ),
    ("not an object", lambda: [*LOG[:2], b"[1, 2]", *LOG[2:]], ["malformed"], ["line 3 is not a JSON object"]),
    (
        "lacks keys",
        lambda: [*LOG[:2], b'{"seq": 3}', *LOG[3:]],
        ["malformed", "missing"],
        ["line 3 lacks action, actor, arguments, hash, host, prev, result, time"],
    ),
    (
        "genesis replaced",
        lambda: _edit(LOG, 0, prev="1" * 64),
        ["changed", "changed"],
        ["entry 1 (line 1) does not start a log"],
    ),
    ("empty", lambda: [], [], []),
]


@pytest.mark.parametrize(("name", "make", "kinds", "texts"), CASES, ids=[c[0] for c in CASES])
def test_verification_names_what_was_done_and_where(
    name: str, make: Callable[[], list[bytes]], kinds: list[str], texts: list[str]
) -> None:
    result = verify_lines(make())
    findings = result.findings or []
    assert [f.kind for f in findings] == kinds, [f.message for f in findings]
    for text in texts:
        assert any(text in f.message for f in findings), (text, [f.message for f in findings])
    assert result.intact is (not kinds)


def test_a_removed_entry_is_found_at_its_line_even_when_the_tail_is_rewritten() -> None:
    """Removing entry 5 and rewriting every later hash still breaks the chain at the splice:
    the seq gap names the lines (an attacker would also need to renumber, which the anchors catch)."""
    tampered = _rehash_from(LOG[:4] + LOG[5:], 4)
    findings = verify_lines(tampered).findings or []
    assert [f.message for f in findings] == ["entry 5 is missing between lines 4 and 5"]
    assert findings[0].line == 5


def test_a_whole_rewritten_log_is_caught_by_its_anchors() -> None:
    head = json.loads(LOG[7])
    anchor = Anchor(log=json.loads(LOG[0])["hash"], seq=8, hash=head["hash"], time=head["time"], host="db1")
    assert verify_lines(LOG, [anchor]).intact
    assert verify_lines(LOG, [anchor]).anchors_checked == 1
    # renumbered and rehashed after removing entry 3: a valid chain, but not the anchored one
    rewritten = _renumber(LOG[:2] + LOG[3:])
    assert verify_lines(rewritten).intact
    findings = verify_lines(rewritten, [anchor]).findings or []
    assert [f.kind for f in findings] == ["rewritten"]
    assert "anchor at entry 8 (2026-11-30T10:07:00.000+00:00) does not match" in findings[0].message


def test_a_cut_tail_is_caught_by_an_anchor_past_the_end() -> None:
    head = json.loads(LOG[9])
    anchor = Anchor(log="x", seq=10, hash=head["hash"], time=head["time"], host="db1")
    findings = verify_lines(LOG[:6], [anchor]).findings or []
    assert [f.kind for f in findings] == ["truncated"]
    assert "is past the log's end: the log was cut after entry 6" in findings[0].message
    assert findings[0].line == 6


def test_anchors_of_a_replaced_log_are_a_finding() -> None:
    old = Anchor(log="0" * 64, seq=300, hash="a" * 64, time="2026-01-01T00:00:00.000+00:00", host="db1")
    findings = verify_lines(LOG, [], [old]).findings or []
    assert [f.kind for f in findings] == ["rewritten"]
    assert "another log at this place (up to entry 300" in findings[0].message


def test_the_first_entry_hangs_off_genesis_and_names_the_log() -> None:
    first = json.loads(LOG[0])
    assert first["seq"] == 1 and first["prev"] == GENESIS == "0" * 64
    assert verify_lines(LOG).log_id == first["hash"]
    assert verify_lines(LOG).head == json.loads(LOG[-1])["hash"]


def test_the_next_entry_follows_the_last_good_one() -> None:
    assert next_link([]) == (1, GENESIS)
    assert next_link(reversed(LOG)) == (11, json.loads(LOG[-1])["hash"])
    assert next_link([b'{"seq": 11, "ac', LOG[-1]]) == (11, json.loads(LOG[-1])["hash"])  # a cut line passed over


def test_the_hash_covers_everything_but_itself() -> None:
    entry = json.loads(LOG[3])
    for key in ("seq", "time", "host", "actor", "action", "arguments", "result", "prev"):
        changed = {**entry, key: "x"}
        assert entry_hash(changed) != entry["hash"], key
    assert entry_hash({**entry, "hash": "whatever"}) == entry["hash"]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("s3://key:SECRET@host/bucket", f"s3://key:{REDACTED}@host/bucket"),
        ("sftp://backup@host:2222/srv/repo", "sftp://backup@host:2222/srv/repo"),
        (
            "s3://host/bucket?secret_key=SECRET&region=eu-1",
            f"s3://host/bucket?secret_key={REDACTED}&region=eu-1",
        ),
        ("azure://acct/c?sig=SECRET&sv=2020", f"azure://acct/c?sig={REDACTED}&sv={REDACTED}"),
        ("/srv/repo", "/srv/repo"),
        ("postgresql://u:SECRET@db:5432/catalog", f"postgresql://u:{REDACTED}@db:5432/catalog"),
        ("http://[::1]:99999/x", REDACTED),
    ],
)
def test_urls_lose_passwords_and_option_values(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_arguments_are_redacted_by_structure() -> None:
    arguments = redact_arguments(
        {
            "repo": "s3://key:SECRET@host/bucket",
            "to": ["b2://id:SECRET@bucket/x", "/plain"],
            "password": "SECRET",
            "new-passphrase": "SECRET",
            "api_token": "SECRET",
            "password-file": "/etc/lifeboat/pass",
            "paths": ["/etc", "caf\udcc3"],
            "keep-last": 3,
            "force": True,
        }
    )
    assert "SECRET" not in json.dumps(arguments)
    assert arguments["password"] == arguments["new-passphrase"] == arguments["api_token"] == REDACTED
    assert arguments["password-file"] == "/etc/lifeboat/pass"
    assert arguments["paths"] == ["/etc", "caf\\udcc3"]  # an undecodable byte as an escape: valid UTF-8
    assert arguments["keep-last"] == 3 and arguments["force"] is True


def test_status_follows_the_exit_code() -> None:
    assert [status_of(c) for c in (0, 1, 3, 13, 130)] == ["ok", "error", "error", "error", "interrupted"]


def test_anchor_due() -> None:
    assert not anchor_due(99, None, 100)
    assert anchor_due(100, None, 100)
    assert not anchor_due(150, 100, 100)
    assert anchor_due(200, 100, 100)
    assert not anchor_due(1000, None, 0)  # 0: never automatically
