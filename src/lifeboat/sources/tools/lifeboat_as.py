"""Running this Lifeboat as another OS user — the database server's — and reading its JSON.

``pg check`` uses it to test the repository as the user that runs ``archive_command``:
the program is the one the server runs (``LIFEBOAT_SERVER_COMMAND``, or this
installation), started through ``runuser`` when we are root. The child inherits this
process's environment (where the passphrase comes from), never a secret in argv.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from lifeboat.errors import LifeboatError
from lifeboat.sources.tools.pg import as_user

TIMEOUT_SECONDS = 300


class LifeboatAs:
    """``program`` (this Lifeboat's command line) run as ``user``."""

    def __init__(self, user: str, program: Sequence[str]) -> None:
        self.user = user
        self.program = list(program)

    def json(self, args: Sequence[str], env: Mapping[str, str], *, timeout: float = TIMEOUT_SECONDS) -> dict[str, Any]:
        """Run ``program --json ARGS`` and return the JSON document it printed (whatever its exit status)."""
        argv = [*as_user(self.user), *self.program, "--json", *args]
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
                cwd="/",  # the caller's directory may be closed to the user
                env={**os.environ, **env},
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LifeboatError(f"could not run lifeboat as {self.user}: {exc}") from None
        try:
            doc = json.loads(done.stdout)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise LifeboatError(
                f"lifeboat run as {self.user} failed (exit status {done.returncode}): {_last_line(done.stderr)}",
                hint="LIFEBOAT_SERVER_COMMAND says how the server runs Lifeboat (docs/postgres.md)",
            )
        return doc


def _last_line(output: bytes) -> str:
    lines = [line.strip() for line in output.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"
