"""Which server a backup or restore talks to, and its password: from the configured source,
over-ridden by the settings a front end gives; the password from a file or from a variable
of the environment the front end passed in (never from the command line)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lifeboat.errors import SourceError, option
from lifeboat.sources.tools.mariadb import Connection

CONNECTION_KEYS = ("host", "port", "socket", "user", "password_file", "password_env")


def connection_settings(config: Any, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The connection keys: a given setting wins over the configured source's."""
    values: dict[str, Any] = {}
    for key in CONNECTION_KEYS:
        given = settings.get(key)
        values[key] = given if given not in (None, "") else (getattr(config, key, None) if config is not None else None)
    return values


def read_password(values: Mapping[str, Any], environment: Mapping[str, str] | None) -> str | None:
    """The password: the first line of ``password_file``, else the variable ``password_env``."""
    path = values.get("password_file")
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.readline().rstrip("\r\n")
        except OSError as exc:
            raise SourceError(
                f"cannot read the MariaDB password file {path}: {exc.strerror or exc}",
                hint=f"check {option('password_file')} and its permissions",
            ) from None
    variable = values.get("password_env")
    if variable:
        value = (environment or {}).get(variable)
        if value is None:
            raise SourceError(
                f"the environment variable {variable} (the MariaDB password) is not set",
                hint=f"set it, or name another with {option('password_env')}",
            )
        return value
    return None


def connect(values: Mapping[str, Any], environment: Mapping[str, str] | None) -> Connection:
    """The connection the values name, its password read."""
    port = values.get("port")
    return Connection(
        host=values.get("host") or None,
        port=int(port) if port else None,
        socket=values.get("socket") or None,
        user=values.get("user") or None,
        password=read_password(values, environment),
    )


def programs_environment(environment: Mapping[str, str] | None, values: Mapping[str, Any]) -> dict[str, str]:
    """The environment MariaDB's programs run with: Lifeboat's, without its passphrase
    variables and without the variable holding the MariaDB password (they get it from the
    option file only)."""
    from lifeboat.sources.command.spec import program_environment

    env = program_environment(environment)
    env.pop(str(values.get("password_env") or ""), None)
    return env
