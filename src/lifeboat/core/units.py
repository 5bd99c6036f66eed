"""Parsing and printing sizes, durations and percentages (pure)."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION_RE = re.compile(r"(\d+)\s*(min|mo|[smhdwy])", re.IGNORECASE)
_UNIT_SECONDS = {
    "s": 1,
    "min": 60,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "mo": 30 * 86400,
    "y": 365 * 86400,
}


_SECONDS_RE = re.compile(r"\d+(?:\.\d+)?")
# Longer than any wait or retention means anything (and within what timedelta can hold).
MAX_DURATION = timedelta(days=1000 * 365)


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``/``15min``, ``12h``, ``7d``, ``2w``, ``6mo``, ``1y``, combinations (``1d12h``),
    or a bare number of seconds (``120``, ``0.5``, ``0``)."""
    cleaned = text.strip().lower()
    if not cleaned:
        raise ValueError("empty duration: use forms like 120 (seconds), 90s, 15min, 12h, 7d, 2w, 6mo, 1y")
    if _SECONDS_RE.fullmatch(cleaned):
        seconds: float = float(cleaned)
    else:
        pos = 0
        seconds = 0
        for match in _DURATION_RE.finditer(cleaned):
            if match.start() != pos:
                break
            seconds += int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
            pos = match.end()
        if pos != len(cleaned):
            raise ValueError(
                f"invalid duration {text!r}: use forms like 120 (seconds), 90s, 15min, 12h, 7d, 2w, 6mo, 1y"
            )
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"duration {text!r} is too long: at most {MAX_DURATION.days // 365} years")
    return timedelta(seconds=seconds)


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?i?b?)?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
MAX_SIZE = 1 << 60


def parse_size(text: str) -> int:
    """``512``, ``64K``, ``32MiB``, ``1.5G``: binary multiples."""
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"invalid size {text!r}: use forms like 512K, 32MiB, 2G")
    unit = (match.group(2) or "").lower().rstrip("b").rstrip("i")
    size = float(match.group(1)) * _SIZE_FACTORS[unit]
    if size > MAX_SIZE:
        raise ValueError(f"size {text!r} is too large: at most 1 EiB")
    return int(size)


def parse_percent(text: str) -> float:
    """``10%`` or ``0.1`` → 0.1."""
    cleaned = text.strip()
    try:
        value = float(cleaned[:-1]) / 100 if cleaned.endswith("%") else float(cleaned)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 1:
        raise ValueError(f"invalid percentage {text!r}: use 0% to 100% (or 0 to 1)")
    return value


def format_bytes(size: float) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"


def duration_parts(value: timedelta) -> list[str]:
    """A duration in whole units, largest first: 90 min → ``["1h", "30min"]`` (none for zero)."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return parts


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
