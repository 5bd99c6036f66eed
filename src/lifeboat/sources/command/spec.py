"""How to run a producer or a consumer: its argv and the environment it gets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProgramSpec:
    """A program and its arguments (no shell), and its whole environment (None: Lifeboat's).

    The environment may hold secrets (``PGPASSWORD``): it is never shown, not even in a repr.
    """

    argv: tuple[str, ...]
    env: Mapping[str, str] | None = field(default=None, repr=False)

    @property
    def program(self) -> str:
        return self.argv[0] if self.argv else ""
