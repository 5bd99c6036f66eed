"""The audit log's chain: an entry's canonical form, its hash, and the verification of a log.

An audit log is a file of JSON lines, one entry per operation. Each entry carries ``prev``,
the hash of the entry before it (:data:`GENESIS` for the first), and ``hash``, the SHA-256 of
the entry's canonical JSON without ``hash``: editing, removing or reordering an entry breaks
the chain where it happened. What the chain alone cannot see — a cut tail, or a whole log
written again from some entry on — anchors show: the chain's head (seq and hash) stored from
time to time somewhere the log's writer cannot rewrite (the repository, docs/audit.md).

The canonical JSON is what ``jq -cS`` prints, so an auditor can recompute every hash with jq
and sha256sum (docs/audit.md): keys sorted, no spaces, UTF-8, and only values both agree on
(text, integers, booleans, null, lists, objects: :func:`clean` makes any value so).

Pure: text in, findings out; the file and its lock are app/observability/audit.py's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cryptography.hazmat.primitives.hashes import SHA256, Hash

GENESIS = "0" * 64  # the ``prev`` of a log's first entry
STATUSES = ("ok", "error", "interrupted")
ENTRY_KEYS = frozenset({"seq", "time", "host", "actor", "action", "arguments", "result", "prev", "hash"})
REDACTED = "<redacted>"
MAX_TEXT = 4096  # a longer argument value is cut: an audit line stays a line


# --- values ----------------------------------------------------------------------------------
def clean_text(text: str) -> str:
    """``text`` as jq and Python print it alike: a character that is not valid UTF-8 (a file
    name's undecodable byte) and DEL are written out as escapes; long text is cut."""
    fixed = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x7f", "\\x7f")
    return fixed if len(fixed) <= MAX_TEXT else fixed[:MAX_TEXT] + "…"


def clean(value: Any) -> Any:
    """``value`` made of what the canonical form holds: text, integers (within ±2^53, which jq
    keeps exact), booleans, null, lists and objects with text keys; anything else as text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 1 << 53 else str(value)
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        return {clean_text(str(k)): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return clean_text(str(value))


def canonical(doc: Mapping[str, Any]) -> bytes:
    """The canonical JSON of ``doc``: ``jq -cS`` prints the same bytes (plus a newline)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``entry`` without its ``hash``."""
    # cryptography's SHA-256, not hashlib's: hashlib loads the system's libcrypto, 4 MiB of
    # memory in every command (lifeboat/core/tokens.py)
    digest = Hash(SHA256())
    digest.update(canonical({k: v for k, v in entry.items() if k != "hash"}))
    return digest.finalize().hex()


# --- secrets out of arguments ----------------------------------------------------------------
SECRET_WORDS = ("password", "passphrase", "secret", "token", "credential", "private_key")
SAFE_URL_OPTIONS = frozenset({"retries", "retry_max_delay", "read_ahead", "region", "storage_class"})


def secret_parameter(name: str) -> bool:
    """Whether the parameter ``name`` carries a secret by its name (a ``*_file`` names a file
    holding one, which is not itself secret)."""
    lowered = name.lower().replace("-", "_")
    return any(word in lowered for word in SECRET_WORDS) and not lowered.endswith("_file")


def redact_url(value: str) -> str:
    """A URL without what could be a secret in it: the password of its user information and
    the values of query options (kept by name; a few harmless ones with their value). Text
    that is not a URL (no ``scheme://``) is returned as it is."""
    if "://" not in value:
        return value
    try:
        parts = urlsplit(value)
        port = f":{parts.port}" if parts.port else ""
        user = parts.username
    except ValueError:
        return REDACTED
    if not parts.scheme:
        return value
    userinfo = ""
    if user is not None:
        userinfo = f"{user}:{REDACTED}@" if parts.password is not None else f"{user}@"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    query = ""
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = "?" + "&".join(f"{k}={v if k in SAFE_URL_OPTIONS else REDACTED}" for k, v in pairs)
    return f"{parts.scheme}://{userinfo}{host}{port}{parts.path}{query}"


def redact_value(name: str, value: Any) -> Any:
    """The value of parameter ``name`` as the log may hold it."""
    if secret_parameter(name):
        return REDACTED
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, list | tuple):
        return [redact_url(v) if isinstance(v, str) else v for v in value]
    return value


def redact_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """``arguments`` (parameter name → value) without secrets, by structure: the values of
    secret parameters dropped, URLs without passwords and option values."""
    return {name: clean(redact_value(name, value)) for name, value in arguments.items()}


# --- entries ---------------------------------------------------------------------------------
def status_of(exit_code: int) -> str:
    """The ``result.status`` of an operation that ended with ``exit_code``."""
    if exit_code == 0:
        return "ok"
    if exit_code == 130:
        return "interrupted"
    return "error"


def new_entry(
    *,
    seq: int,
    prev: str,
    time: str,
    host: str,
    actor: Mapping[str, Any],
    action: str,
    arguments: Mapping[str, Any],
    result: Mapping[str, Any],
) -> dict[str, Any]:
    """A complete entry (with its ``hash``) following the entry whose hash is ``prev``."""
    entry: dict[str, Any] = {
        "seq": seq,
        "time": clean_text(time),
        "host": clean_text(host),
        "actor": clean(dict(actor)),
        "action": clean_text(action),
        "arguments": redact_arguments(arguments),
        "result": clean(dict(result)),
        "prev": prev,
    }
    entry["hash"] = entry_hash(entry)
    return entry


def entry_line(entry: Mapping[str, Any]) -> bytes:
    """The entry as its line in the file."""
    return canonical(entry) + b"\n"


def next_link(lines_newest_first: Iterable[bytes]) -> tuple[int, str]:
    """(seq, prev) of the entry after the log whose lines are given newest first (none: an
    empty log). A line that is not an entry (a write a crash cut short) is passed over: the new
    entry follows the last good one, and verification reports the bad line."""
    for line in lines_newest_first:
        entry, _ = _parse(line)
        if entry is not None:
            return entry["seq"] + 1, entry["hash"]
    return 1, GENESIS


# --- verification ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    """One thing wrong with a log, and where (a line number, 1-based; 0: the file as a whole)."""

    line: int
    kind: str  # changed | missing | reordered | duplicated | malformed | truncated | rewritten
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "kind": self.kind, "message": self.message}


@dataclass(frozen=True)
class Anchor:
    """The head of a log at some time, stored where the log's writer cannot rewrite it."""

    log: str  # the log's identity: the hash of its first entry
    seq: int
    hash: str
    time: str
    host: str

    def to_json(self) -> dict[str, Any]:
        return {"log": self.log, "seq": self.seq, "hash": self.hash, "time": self.time, "host": self.host}


@dataclass
class Verification:
    """What :func:`verify_lines` found."""

    entries: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head: str = GENESIS  # the hash of the last good entry
    log_id: str | None = None  # the hash of entry 1, when the log starts there
    anchors_checked: int = 0
    findings: list[Finding] | None = None

    @property
    def intact(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "entries": self.entries,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "head": self.head,
            "log": self.log_id,
            "anchors_checked": self.anchors_checked,
            "findings": [f.to_json() for f in self.findings or []],
        }


def _parse(line: bytes) -> tuple[dict[str, Any] | None, str]:
    """The entry on ``line``, or None and why not."""
    try:
        entry = json.loads(line)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, "is not JSON (cut short, or edited by hand?)"
    if not isinstance(entry, dict):
        return None, "is not a JSON object"
    missing = sorted(ENTRY_KEYS - entry.keys())
    if missing:
        return None, f"lacks {', '.join(missing)}"
    seq = entry["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        return None, "has no valid seq"
    if not isinstance(entry["hash"], str) or not isinstance(entry["prev"], str):
        return None, "has no valid hash or prev"
    return entry, ""


def verify_lines(
    lines: Iterable[bytes], anchors: Iterable[Anchor] = (), replaced: Iterable[Anchor] = ()
) -> Verification:
    """Check a log's lines (without their newlines) and, given anchors of this log, its head;
    ``replaced``: anchors of other logs once kept at this log's place (its host and path).

    Each finding says where: an entry whose hash is not that of its content was changed; a seq
    gap or a ``prev`` that is not the previous entry's hash means entries are missing (or the
    log was spliced); a seq lower than the one before means entries were reordered; an anchor
    beyond the log's end means its tail was cut, an anchor whose entry has another hash means
    the log was written again from before it.
    """
    result = Verification(findings=[])
    findings: list[Finding] = []
    parsed: list[tuple[int, dict[str, Any]]] = []
    number = 0
    for number, line in enumerate(lines, start=1):
        entry, why = _parse(line)
        if entry is None:
            findings.append(Finding(number, "malformed", f"line {number} {why}"))
        else:
            parsed.append((number, entry))
    lines_of: dict[int, list[int]] = {}
    for line_number, entry in parsed:
        lines_of.setdefault(entry["seq"], []).append(line_number)
    hashes: dict[int, str] = {}
    prev_seq: int | None = None
    prev_hash: str | None = None
    prev_line = 0
    for number_here, entry in parsed:
        result.entries += 1
        seq: int = entry["seq"]
        where = f"entry {seq} (line {number_here})"
        if entry_hash(entry) != entry["hash"]:
            findings.append(Finding(number_here, "changed", f"{where} was changed"))
        if prev_seq is None:
            if seq == 1 and entry["prev"] != GENESIS:
                findings.append(
                    Finding(number_here, "changed", f"{where} does not start a log: its prev is not genesis")
                )
            elif seq != 1:
                findings.append(
                    Finding(number_here, "missing", f"entries 1 to {seq - 1} are missing before line {number_here}")
                )
            result.first_seq = seq
        elif lines_of[seq][0] != number_here:
            findings.append(
                Finding(number_here, "duplicated", f"{where} is a copy: entry {seq} is on line {lines_of[seq][0]}")
            )
            continue  # the chain goes on from the line before the copy
        elif seq <= prev_seq:
            findings.append(
                Finding(
                    number_here,
                    "reordered",
                    f"{where} comes after entry {prev_seq} (line {prev_line}): the lines were reordered",
                )
            )
        elif seq > prev_seq + 1:
            absent = [n for n in range(prev_seq + 1, seq) if n not in lines_of]
            if absent:  # the others are elsewhere in the file: their own line says "reordered"
                gap = f"entry {absent[0]}" if len(absent) == 1 else f"entries {absent[0]} to {absent[-1]}"
                verb = "is" if len(absent) == 1 else "are"
                findings.append(
                    Finding(number_here, "missing", f"{gap} {verb} missing between lines {prev_line} and {number_here}")
                )
        elif entry["prev"] != prev_hash:
            findings.append(
                Finding(
                    number_here,
                    "missing",
                    f"{where} does not follow entry {prev_seq} (line {prev_line}): an entry was removed or replaced",
                )
            )
        if seq == 1 and result.log_id is None:
            result.log_id = entry["hash"]
        hashes.setdefault(seq, entry["hash"])
        prev_seq, prev_hash, prev_line = seq, entry["hash"], number_here
        result.last_seq = max(seq, result.last_seq or 0)
        if seq == result.last_seq:
            result.head = entry["hash"]
    for anchor in sorted(anchors, key=lambda a: a.seq):
        result.anchors_checked += 1
        last = result.last_seq or 0
        if anchor.seq > last:
            findings.append(
                Finding(
                    number,
                    "truncated",
                    f"the repository's anchor at entry {anchor.seq} ({anchor.time}) is past the log's end: "
                    f"the log was cut after entry {last}",
                )
            )
        elif hashes.get(anchor.seq) != anchor.hash:
            findings.append(
                Finding(
                    0,
                    "rewritten",
                    f"the repository's anchor at entry {anchor.seq} ({anchor.time}) does not match: "
                    f"the log was rewritten at or before entry {anchor.seq}",
                )
            )
    earlier = max(replaced, key=lambda a: a.seq, default=None)
    if earlier is not None:
        findings.append(
            Finding(
                0,
                "rewritten",
                f"the repository holds anchors of another log at this place (up to entry {earlier.seq}, "
                f"{earlier.time}): the log was replaced or written again from its first entry",
            )
        )
    result.findings = findings
    return result


def anchor_due(head_seq: int, last_anchored: int | None, every: int) -> bool:
    """Whether the head at ``head_seq`` should be anchored: ``every`` entries or more since the
    last anchor (or since the log began)."""
    return every > 0 and head_seq - (last_anchored or 0) >= every


__all__ = [
    "GENESIS",
    "REDACTED",
    "Anchor",
    "Finding",
    "Verification",
    "anchor_due",
    "canonical",
    "clean",
    "entry_hash",
    "entry_line",
    "new_entry",
    "next_link",
    "redact_arguments",
    "redact_url",
    "status_of",
    "verify_lines",
]
