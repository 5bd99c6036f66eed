"""The daemon's schedule: the jobs the configuration describes, and files that run them
without the daemon (docs/install.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lifeboat.app.cli.schedule_install import install_command

COMMANDS: dict[str, Callable[..., Any]] = {
    "install": install_command,
}
