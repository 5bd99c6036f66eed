"""Where this host keeps what it may rebuild from the repository: the metadata cache that
makes ``lifeboat health`` fast (and the record cache).

One rule for every front end: ``LIFEBOAT_STATE_DIR``; else ``/var/lib/lifeboat`` for root;
else ``$XDG_STATE_HOME/lifeboat``, or ``~/.local/state/lifeboat``. Operations get the result
passed down; nothing below ``app/`` reads the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ENV_STATE_DIR = "LIFEBOAT_STATE_DIR"


def state_dir(environment: Mapping[str, str], *, is_root: bool | None = None) -> Path:
    """The state directory by the rule above (``is_root`` defaults to this process's uid)."""
    if environment.get(ENV_STATE_DIR):
        return Path(environment[ENV_STATE_DIR])
    if is_root if is_root is not None else os.geteuid() == 0:
        return Path("/var/lib/lifeboat")
    base = environment.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "lifeboat"
