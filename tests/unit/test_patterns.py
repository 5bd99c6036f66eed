"""Include/exclude patterns match paths the way docs/cli.md says."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifeboat.core.patterns import PathFilter, Pattern, split_path


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.log", "/var/log/app.log", True),
        ("*.log", "/var/log/app.log.1", False),
        ("cache", "/home/u/cache/x/y", True),
        ("cache", "/home/u/cached", False),
        ("/home/*/tmp", "/home/u/tmp/file", True),
        ("/home/*/tmp", "/srv/home/u/tmp", False),
        ("/srv/**/node_modules", "/srv/app/a/b/node_modules/x", True),
        ("/srv/**/node_modules", "/srv/node_modules", True),
        ("**/*.tmp", "/a/b/c.tmp", True),
        ("a/b", "/x/a/b/c", True),
        ("a/b", "/x/a/c/b", False),
        ("[0-9]*.bak", "/d/2024.bak", True),
        ("?.txt", "/d/ab.txt", False),
    ],
)
def test_pattern_matching(pattern: str, path: str, matches: bool) -> None:
    assert Pattern.parse(pattern).matches(split_path(path)) is matches


def test_filter_applies_excludes_after_includes() -> None:
    filt = PathFilter.build(includes=["/srv/app"], excludes=["*.tmp"])
    assert filt.selects(split_path("/srv/app/uploads/a.jpg"))
    assert not filt.selects(split_path("/srv/app/uploads/a.tmp"))
    assert not filt.selects(split_path("/srv/other/a.jpg"))
    assert filt.descend(split_path("/srv"))
    assert not filt.descend(split_path("/etc"))


def test_includes_let_the_walk_reach_deep_matches() -> None:
    filt = PathFilter.build(includes=["**/*.conf"])
    assert filt.descend(split_path("/etc/nginx"))
    assert filt.selects(split_path("/etc/nginx/nginx.conf"))
    assert not filt.selects(split_path("/etc/nginx/mime.types"))


@pytest.mark.parametrize("bad", ["", "   ", "/"])
def test_empty_patterns_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        Pattern.parse(bad)


@pytest.mark.parametrize("pattern", ["[", "[!", "[]", "[!]", "data/[abc", "/a/[b/c", "x[y"])
def test_a_class_that_is_never_closed_is_refused_naming_the_pattern(pattern: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"invalid pattern {pattern!r}")):
        Pattern.parse(pattern)


@pytest.mark.parametrize("pattern", ["", " ", "/", ".", "./", "/./"])
def test_a_pattern_naming_nothing_is_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="empty pattern"):
        Pattern.parse(pattern)


@pytest.mark.parametrize(("pattern", "path"), [("[[]x", "/d/[x"), ("[]]", "/d/]"), ("a]", "/d/a]"), ("[!a]b", "/d/xb")])
def test_closed_classes_and_a_literal_bracket_still_match(pattern: str, path: str) -> None:
    assert Pattern.parse(pattern).matches(split_path(path))


@given(st.text(max_size=20))
def test_any_text_is_a_pattern_or_a_value_error(text: str) -> None:
    try:
        pattern = Pattern.parse(text)
    except ValueError:
        return
    pattern.matches(split_path("/a/b/c"))
