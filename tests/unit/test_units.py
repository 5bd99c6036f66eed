"""Sizes, durations and percentages as users type them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifeboat.core.units import MAX_DURATION, MAX_SIZE, format_bytes, parse_duration, parse_percent, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("15min", timedelta(minutes=15)),
        ("12h", timedelta(hours=12)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("6mo", timedelta(days=180)),
        ("1y", timedelta(days=365)),
        ("1d12h", timedelta(hours=36)),
        ("0", timedelta(0)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("120", timedelta(seconds=120)), (" 7 ", timedelta(seconds=7)), ("0.5", timedelta(milliseconds=500))],
)
def test_a_bare_number_is_seconds(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["", "7q", "d7", "1d x", "-1d", "-5", "1.5h", "1e3", "9" * 400, "99999999999y"])
def test_parse_duration_refuses_garbage(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


@given(st.text(max_size=30))
def test_any_text_is_a_duration_or_a_value_error(text: str) -> None:
    """Whatever a user (or a configuration file) writes, parsing ends in a value or a ValueError."""
    try:
        value = parse_duration(text)
    except ValueError:
        return
    assert timedelta(0) <= value <= MAX_DURATION


@given(st.text(max_size=30))
def test_any_text_is_a_size_or_a_value_error(text: str) -> None:
    try:
        value = parse_size(text)
    except ValueError:
        return
    assert 0 <= value <= MAX_SIZE


@given(st.text(max_size=30))
def test_any_text_is_a_percentage_or_a_value_error(text: str) -> None:
    try:
        value = parse_percent(text)
    except ValueError:
        return
    assert 0 <= value <= 1


@pytest.mark.parametrize(
    ("text", "expected"), [("512", 512), ("64K", 65536), ("32MiB", 32 << 20), ("1.5G", 3 << 29), ("2gb", 2 << 30)]
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "x", "1.2.3", "-1K", "9" * 400, "2000P"])
def test_parse_size_refuses_garbage_and_absurd_sizes(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)


def test_parse_percent_and_format_bytes() -> None:
    assert parse_percent("10%") == pytest.approx(0.1)
    assert parse_percent("0.25") == pytest.approx(0.25)
    with pytest.raises(ValueError):
        parse_percent("150%")
    assert format_bytes(0) == "0 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(5 << 30) == "5.0 GiB"
