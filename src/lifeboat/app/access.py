"""Opening a repository for any front end: its passphrase from a file, a command, the
configuration or the environment — never argv — and the repository itself.

The front end passes in its environment (a mapping: the CLI gives ``os.environ``, the
daemon its own) and, if it can ask a person, a prompt; nothing here reads the process
environment or a terminal. The CLI and the daemon call the same functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from lifeboat.errors import ConfigError

if TYPE_CHECKING:
    from lifeboat.config.model import RepositoryConfig
    from lifeboat.repository.repo import Repository

# A passphrase is a line; reading stops here whatever the file is (/dev/zero included).
MAX_SECRET_LINE = 4096

# Asks a person for a passphrase: (what, confirm) → the passphrase. A front end that
# cannot ask passes none.
Prompt = Callable[[str, bool], bytes]


def read_secret_file(path: str, what: str) -> bytes:
    """The first line of the file ``path``, which must not be empty."""
    hint = "check the file's path and that this user may read it"
    try:
        with Path(path).open("rb") as file:
            data = file.read(MAX_SECRET_LINE + 1)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist", hint=hint) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}", hint=hint) from None
    if b"\n" not in data and len(data) > MAX_SECRET_LINE:
        raise ConfigError(f"the first line of {what} {path} is longer than {MAX_SECRET_LINE} bytes", hint=hint)
    secret = data.split(b"\n", 1)[0].rstrip(b"\r")
    if not secret:
        raise ConfigError(f"{what} {path} is empty", hint="write the passphrase on the file's first line")
    return secret


def passphrase(
    variable: str,
    what: str,
    repo_config: RepositoryConfig | None,
    environment: Mapping[str, str],
    *,
    prompt: Prompt | None = None,
    confirm: bool = False,
) -> bytes:
    """A passphrase from, in order: ``VARIABLE_FILE``, ``VARIABLE_COMMAND``, the repository's
    configured ``password_file`` / ``password_command``, ``VARIABLE``, or ``prompt``."""
    from lifeboat.sources.tools.secret_command import run_secret_command

    if path := environment.get(f"{variable}_FILE"):
        return read_secret_file(path, f"{what} file")
    if command := environment.get(f"{variable}_COMMAND"):
        return run_secret_command(command)
    if repo_config is not None and repo_config.password_file:
        return read_secret_file(repo_config.password_file, f"{what} file")
    if repo_config is not None and repo_config.password_command:
        return run_secret_command(repo_config.password_command)
    if value := environment.get(variable):
        return value.encode()
    if prompt is None:
        raise ConfigError(
            f"no {what} available and no terminal to ask on",
            hint=f"set {variable}_FILE or {variable}_COMMAND (or {variable})",
        )
    return prompt(what, confirm)


def open_repository(
    url: str,
    repo_config: RepositoryConfig | None,
    secret: Callable[[RepositoryConfig | None], bytes],
    *,
    environment: Mapping[str, str],
    read_only: bool = False,
    state_directory: str | None = None,
) -> Repository:
    """Open the repository at ``url`` (with its configured storage options) using the
    passphrase ``secret`` gives; storage credentials come from ``environment``. A missing
    repository is reported before the passphrase is asked for. With a ``state_directory``,
    its snapshots, its WAL and its blob index come through the local metadata cache kept
    there, checked against the storage's listings (operations/metacache.py,
    operations/walcatalog.py, operations/indexcache.py)."""
    from lifeboat.operations.indexcache import CachedIndex
    from lifeboat.operations.metacache import CachedSnapshots
    from lifeboat.operations.walcatalog import WalCatalogue
    from lifeboat.repository.repo import Repository
    from lifeboat.storage.registry import open_backend

    backend = open_backend(
        url, env=environment, read_only=read_only, options=repo_config.options if repo_config else None
    )
    Repository.read_header(backend)
    repo = Repository.open(backend, secret(repo_config))
    if state_directory is not None:
        repo.snapshot_catalog = CachedSnapshots(state_directory)
        repo.wal_catalog = WalCatalogue(state_directory)
        repo.index_catalog = CachedIndex(state_directory)
    return repo
