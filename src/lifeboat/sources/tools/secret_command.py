"""Running a user's password command (``password_command`` / LIFEBOAT_PASSWORD_COMMAND).

The command is split like a shell would (no shell is started) and its first line of
output is the secret. Nothing the command prints is ever repeated in an error.
"""

from __future__ import annotations

import shlex
import subprocess

from lifeboat.errors import ConfigError, MissingTool

TIMEOUT_SECONDS = 60


def run_secret_command(command: str) -> bytes:
    try:
        argv = shlex.split(command)
    except ValueError as exc:  # an unclosed quote: the command itself is never repeated
        raise ConfigError(f"the password command cannot be split into words: {exc}") from None
    if not argv:
        raise ConfigError("the password command is empty")
    try:
        done = subprocess.run(argv, capture_output=True, timeout=TIMEOUT_SECONDS, check=False, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise MissingTool(f"password command {argv[0]!r} was not found") from None
    except OSError as exc:
        raise ConfigError(
            f"password command {argv[0]!r} cannot be run: {exc.strerror or exc}",
            hint="check that it names an executable program",
        ) from None
    except subprocess.TimeoutExpired:
        raise ConfigError(f"password command {argv[0]!r} did not finish within {TIMEOUT_SECONDS}s") from None
    if done.returncode != 0:
        raise ConfigError(
            f"password command {argv[0]!r} failed with exit status {done.returncode}",
            hint="run the command by hand to see why; its output is never shown by Lifeboat",
        )
    secret = done.stdout.split(b"\n", 1)[0].rstrip(b"\r")
    if not secret:
        raise ConfigError(f"password command {argv[0]!r} printed an empty passphrase")
    return secret
