"""Tracebacks that are safe to print with ``-v``: where an error came from, never a secret.

Python's own traceback prints every exception's message, and a library's message can quote
what the library had at hand: a presigned URL, a signed request's headers, a session token,
a connection string. The traceback printed here keeps the frames (file, line, source line)
and the chain of causes, and shows each exception as :func:`lifeboat.errors.describe` does:
Lifeboat's own messages whole, a library's exception by its type only. No frame's local
variables are ever printed.
"""

from __future__ import annotations

import traceback

from lifeboat.errors import describe

_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def format_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` and of the exceptions it was raised from, oldest first."""
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    link = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, _CONTEXT
        else:
            current = None
    parts: list[str] = []
    for error, following in reversed(chain):
        parts.append(_one(error))
        parts.append(following)
    return "".join(parts)


def _one(exc: BaseException) -> str:
    frames = "".join(traceback.format_tb(exc.__traceback__)) if exc.__traceback__ is not None else ""
    head = "Traceback (most recent call last):\n" if frames else ""
    text = head + frames + describe(exc) + "\n"
    if isinstance(exc, BaseExceptionGroup):
        for number, inner in enumerate(exc.exceptions, 1):
            nested = format_traceback(inner)
            text += f"+---- {number} ----\n" + "".join(f"| {line}\n" for line in nested.splitlines())
    return text
