"""Include/exclude patterns match paths the way docs/cli.md says."""

from __future__ import annotations

import pytest

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
