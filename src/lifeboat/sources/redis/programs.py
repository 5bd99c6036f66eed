"""Finding Redis's programs: redis-cli, redis-server, redis-check-rdb."""

from __future__ import annotations

import shutil

from lifeboat.errors import MissingTool


def find(name: str) -> str:
    """The path of ``name`` on PATH (or Debian's /usr/bin); MissingTool if it is not installed."""
    found = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/local/bin")
    if found is None:
        package = "redis-tools" if name in ("redis-cli", "redis-check-rdb") else "redis-server"
        raise MissingTool(f"{name} was not found on PATH", hint=f"install it (Debian: apt-get install {package})")
    return found
