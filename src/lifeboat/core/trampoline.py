"""Running a recursive computation without recursion, so depth costs memory, not stack.

A directory tree may be thousands of levels deep — anyone who can write into a backed-up
tree can make it so — far beyond the interpreter's recursion limit. A walk written as a
generator that *yields* the generator of each sub-walk whose result it needs, instead of
calling it, keeps its shape (post-order results, ``try``/``finally`` per level), and
:func:`run_nested` runs it with an explicit stack of suspended generators.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, TypeVar

R = TypeVar("R")

# A nested computation: yields the sub-computations it waits for, is sent their results,
# returns its own. Exceptions of a sub-computation are thrown into the one that waits for it.
Nested = Generator[Any, Any, R]


def run_nested(root: Nested[R]) -> R:
    """The result of ``root``, running every generator it yields (and theirs) in its place."""
    stack: list[Nested[Any]] = [root]
    value: Any = None
    error: BaseException | None = None
    while stack:
        top = stack[-1]
        try:
            child = top.send(value) if error is None else top.throw(error)
        except StopIteration as done:
            stack.pop()
            value, error = done.value, None
            continue
        except BaseException as exc:  # noqa: BLE001 - thrown into the caller's generator, or raised at the end
            stack.pop()
            value, error = None, exc
            continue
        stack.append(child)
        value, error = None, None
    if error is not None:
        raise error
    return value  # type: ignore[no-any-return]


__all__ = ["Nested", "run_nested"]
