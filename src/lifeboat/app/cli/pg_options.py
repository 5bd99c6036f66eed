"""What the PostgreSQL commands share: connection options, the configured source, and the
``lifeboat`` command line the server itself runs (archive_command, restore_command)."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from lifeboat.app.cli.framework import Option
from lifeboat.sources.tools.pg import Connection

if TYPE_CHECKING:
    from lifeboat.app.cli.context import CliContext
    from lifeboat.config.model import PostgresSourceConfig

HostOpt = Annotated[str | None, Option("--host", "-h", help="Server host or socket directory [env PGHOST].")]
PortOpt = Annotated[int | None, Option("--port", "-p", help="Server port [env PGPORT].")]
UserOpt = Annotated[str | None, Option("--user", "-U", help="User to connect as [env PGUSER].")]
DbnameOpt = Annotated[str | None, Option("--dbname", "-d", help="Database to connect to [env PGDATABASE].")]
SourceOpt = Annotated[
    str | None, Option("--source", "-s", help="A configured postgres source (connection, data directory…).")
]


def source_config(state: CliContext, source: str | None) -> PostgresSourceConfig | None:
    from lifeboat.app.cli.walrun import source_config as find

    return find(state, source)


def connection(
    config: PostgresSourceConfig | None,
    host: str | None,
    port: int | None,
    user: str | None,
    dbname: str | None,
) -> Connection:
    """Command-line options over the configured source over libpq's PG* variables."""
    from lifeboat.sources.postgres.kind import connection_for

    return connection_for(config, {"host": host, "port": port, "user": user, "dbname": dbname})


SERVER_COMMAND_ENV = "LIFEBOAT_SERVER_COMMAND"


def lifeboat_program() -> list[str]:
    """How the database server runs this same Lifeboat (override: ``LIFEBOAT_SERVER_COMMAND``)."""
    if override := os.environ.get(SERVER_COMMAND_ENV):
        return shlex.split(override)
    script = Path(sys.executable).parent / "lifeboat"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    from lifeboat import START_CODE

    return [sys.executable, "-c", START_CODE]  # not -m: no runpy to import for each WAL file


def server_command(state: CliContext, source: str | None, verb: str, *extra: str) -> tuple[str, list[str]]:
    """The shell command PostgreSQL runs for ``verb`` (wal-push/wal-fetch), and warnings.

    It names the configuration file and repository explicitly, and passes where the
    passphrase comes from (a file or a command — never the passphrase itself).
    """
    from lifeboat.app.cli.context import ENV_PASSWORD, ENV_PASSWORD_COMMAND, ENV_PASSWORD_FILE

    warnings: list[str] = []
    env: list[str] = []
    if path := os.environ.get(ENV_PASSWORD_FILE):
        env.append(f"{ENV_PASSWORD_FILE}={shlex.quote(os.path.abspath(path))}")
    elif command := os.environ.get(ENV_PASSWORD_COMMAND):
        env.append(f"{ENV_PASSWORD_COMMAND}={shlex.quote(command)}")
    else:
        _, repo_config = state.repository_target()
        if repo_config is None or not (repo_config.password_file or repo_config.password_command):
            warnings.append(
                "the server needs the repository passphrase: set password_file (or password_command) for the "
                f"repository in the configuration, or {ENV_PASSWORD_FILE} in the server's environment"
                + (
                    f"; {ENV_PASSWORD} is never written into the server's settings (only a server"
                    " started by 'restore postgres --start' inherits it)"
                    if os.environ.get(ENV_PASSWORD)
                    else ""
                )
            )
    argv = [*lifeboat_program()]
    if state.config_path:
        argv += ["--config", os.path.abspath(state.config_path)]
    if state.repo and _is_url(state):
        from lifeboat.storage.registry import check_url

        check_url(state.repo)  # a URL carrying a credential is refused, never written into the server's settings
        argv += ["--repo", absolute_repo(state.repo)]
    elif state.repo and state.repo != _implied_repository(state, source):
        argv += ["--repo", state.repo]  # a configured name other than the one the server would find itself
    argv.append(verb)
    if source:
        argv += ["--source", source]
    argv += list(extra)
    text = " ".join(env + [shlex.quote(a) for a in argv])
    return text, warnings


def _implied_repository(state: CliContext, source: str | None) -> str | None:
    """The configured repository the server's command finds without ``--repo``: the source's,
    else the default. Left implied, it follows the configuration (a replica promoted by editing
    the file takes over archiving at once); any other name chosen with ``--repo`` is written out."""
    config = state.config()
    if config is None:
        return None
    configured = config.sources.get(source) if source else None
    if configured is not None and configured.repository:
        return configured.repository
    found = config.repository(None)
    return found[0] if found is not None else None


def _is_url(state: CliContext) -> bool:
    config = state.config()
    return config is None or state.repo not in config.repositories


def absolute_repo(repo: str) -> str:
    """A local repository path made absolute (the server, or another user, runs elsewhere)."""
    from lifeboat.storage.registry import scheme_of

    if scheme_of(repo) == "file" and not repo.startswith("file:"):
        return os.path.abspath(repo)
    return repo
