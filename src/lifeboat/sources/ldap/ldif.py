"""Reading LDIF (RFC 2849) as slapcat writes it: entries separated by blank lines, each
starting with its ``dn:``; a line starting with one space continues the previous one; a
value after ``::`` is base64; ``#`` starts a comment.

:class:`EntryCounter` checks a stream of any length piece by piece (a backup counts entries
as the dump goes by, a verify re-reads the stored dump); :func:`parse_entries` reads a small
document whole (the configuration database, to find the databases and their directories).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

MAX_PROBLEMS = 5  # named in a verification; more are counted


@dataclass
class EntryCounter:
    """Counts the entries of an LDIF stream fed in pieces, and notes what is not LDIF."""

    entries: int = 0
    lines: int = 0
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    _partial: bytes = b""
    _in_entry: bool = False  # inside an entry (its dn seen, no blank line since)
    _in_comment: bool = False

    def feed(self, data: bytes) -> None:
        text = self._partial + data
        lines = text.split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            self._line(line)

    def finish(self) -> EntryCounter:
        """The stream has ended: check its last line."""
        if self._partial:
            self._line(self._partial)
            self._partial = b""
        return self

    def _problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"line {self.lines}: {text}")

    def _line(self, raw: bytes) -> None:
        self.lines += 1
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if not line:
            self._in_entry = self._in_comment = False
            return
        if line.startswith(b" "):  # continues the previous line (or comment)
            if not self._in_entry and not self._in_comment:
                self._problem("a continuation line outside an entry")
            return
        if line.startswith(b"#"):
            self._in_comment = True
            return
        self._in_comment = False
        name, colon, _ = line.partition(b":")
        if not colon or not name or b" " in name:
            self._problem("not an 'attribute: value' line")
            return
        if self._in_entry:
            if name.lower() == b"dn":
                self._problem("a second dn: without a blank line before it")
            return
        if name.lower() == b"version" and self.entries == 0:
            return
        if name.lower() != b"dn":
            self._problem(f"an entry that does not start with dn: (it starts with {name.decode(errors='replace')}:)")
        self.entries += 1
        self._in_entry = True

    @property
    def ok(self) -> bool:
        return self.problem_count == 0


Entry = tuple[str, dict[str, list[str]]]  # its dn, and its attributes' values by lower-case name


def parse_entries(data: bytes) -> list[Entry]:
    """The entries of a small LDIF document, continuation lines joined and base64 decoded."""
    entries: list[Entry] = []
    logical: list[str] = []
    for raw in data.decode(errors="replace").splitlines():
        if raw.startswith(" ") and logical:
            logical[-1] += raw[1:]
        else:
            logical.append(raw)
    current: dict[str, list[str]] = {}
    dn: str | None = None
    for line in [*logical, ""]:
        if not line:
            if dn is not None:
                entries.append((dn, current))
            dn, current = None, {}
            continue
        if line.startswith("#"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(":"):
            try:
                value = base64.b64decode(value[1:].strip()).decode(errors="replace")
            except (binascii.Error, ValueError):
                value = ""
        else:
            value = value.strip()
        if dn is None and name.lower() == "dn":
            dn = value
        elif dn is not None:
            current.setdefault(name.lower(), []).append(value)
    return entries
