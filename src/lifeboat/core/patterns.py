"""Include and exclude patterns for paths (pure).

Syntax (docs/cli.md §Patterns): a pattern is matched against ``/``-separated path
components. ``*``, ``?`` and ``[…]`` match within one component (as in shell globs);
``**`` matches any number of components, including none. A pattern that starts with
``/`` is anchored at the root; any other pattern may match at any depth, so ``*.log``
matches ``/var/log/app.log`` and ``cache`` matches every directory named ``cache``.
A pattern that matches a directory covers everything below it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

# What a user who wrote a malformed include / exclude pattern needs to know.
PATTERN_HINT = "patterns: * ? [...] within a path component, ** across components (docs/cli.md#patterns)"


def split_path(path: str) -> tuple[str, ...]:
    return tuple(part for part in path.split("/") if part and part != ".")


@lru_cache(maxsize=4096)
def _component_regex(component: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(component), re.DOTALL)


@dataclass(frozen=True)
class Pattern:
    """One compiled pattern."""

    text: str
    parts: tuple[str, ...]
    anchored: bool

    @classmethod
    def parse(cls, text: str) -> Pattern:
        stripped = text.strip()
        if not stripped or stripped == "/":
            raise ValueError(f"empty pattern {text!r}")
        anchored = stripped.startswith("/")
        parts = split_path(stripped.rstrip("/"))
        if not parts:
            raise ValueError(f"empty pattern {text!r}")
        for part in parts:
            if _unclosed_class(part):
                raise ValueError(
                    f"invalid pattern {text!r}: a '[' opens a character class that is never closed"
                    " (write '[[]' to match a literal '[')"
                )
        if not anchored and parts[0] != "**":
            parts = ("**", *parts)
        return cls(text, parts, anchored)

    def matches(self, path: Sequence[str]) -> bool:
        """True if ``path`` or one of its ancestors matches the pattern."""
        return any(_match(self.parts, tuple(path[:n])) for n in range(len(path), 0, -1))

    def may_match_below(self, path: Sequence[str]) -> bool:
        """True if some descendant of the directory ``path`` could match."""
        return _prefix_match(self.parts, tuple(path))


def _unclosed_class(component: str) -> bool:
    """Whether a ``[`` in ``component`` starts a class with no closing ``]`` (read as fnmatch reads it)."""
    i = 0
    while i < len(component):
        if component[i] == "[":
            j = i + 1
            if j < len(component) and component[j] == "!":
                j += 1
            if j < len(component) and component[j] == "]":
                j += 1
            end = component.find("]", j)
            if end < 0:
                return True
            i = end
        i += 1
    return False


def _match(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    if not pattern:
        return not path
    head = pattern[0]
    if head == "**":
        return any(_match(pattern[1:], path[i:]) for i in range(len(path) + 1))
    if not path:
        return False
    return bool(_component_regex(head).fullmatch(path[0])) and _match(pattern[1:], path[1:])


def _prefix_match(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    """Can ``path`` be the beginning of a path that ``pattern`` matches?"""
    if not path:
        return True
    if not pattern:
        return False
    head = pattern[0]
    if head == "**":
        return True
    return bool(_component_regex(head).fullmatch(path[0])) and _prefix_match(pattern[1:], path[1:])


@dataclass(frozen=True)
class PathFilter:
    """Decides which paths a backup or restore takes: includes first, then excludes."""

    includes: tuple[Pattern, ...] = ()
    excludes: tuple[Pattern, ...] = ()

    @classmethod
    def build(cls, includes: Iterable[str] = (), excludes: Iterable[str] = ()) -> PathFilter:
        return cls(tuple(Pattern.parse(p) for p in includes), tuple(Pattern.parse(p) for p in excludes))

    @property
    def is_empty(self) -> bool:
        return not self.includes and not self.excludes

    def excluded(self, path: Sequence[str]) -> bool:
        return any(p.matches(path) for p in self.excludes)

    def selects(self, path: Sequence[str]) -> bool:
        """Whether the entry at ``path`` itself is taken (everything below a taken dir is too)."""
        if self.excluded(path):
            return False
        return not self.includes or any(p.matches(path) for p in self.includes)

    def descend(self, path: Sequence[str]) -> bool:
        """Whether to look inside the directory at ``path``."""
        if self.excluded(path):
            return False
        return not self.includes or any(p.matches(path) or p.may_match_below(path) for p in self.includes)
