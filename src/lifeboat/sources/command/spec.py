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


def program_environment(base: Mapping[str, str] | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a program Lifeboat runs: ``base`` (the front end's own, passed in)
    without Lifeboat's passphrase variables — the program has no business with them — plus
    ``extra`` (the source's configured ``env``)."""
    env = {
        name: value for name, value in (base or {}).items() if not (name.startswith("LIFEBOAT_") and "PASSWORD" in name)
    }
    env.update(extra or {})
    return env
