"""What every command shares: global options, the configuration, passphrases and the
opened repository. The only module that reads environment variables."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lifeboat.app.cli.output import Output
from lifeboat.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from lifeboat.config.model import LifeboatConfig, RepositoryConfig
    from lifeboat.repository.repo import Repository

ENV_REPO = "LIFEBOAT_REPO"
ENV_CONFIG = "LIFEBOAT_CONFIG"
ENV_PASSWORD = "LIFEBOAT_PASSWORD"
ENV_PASSWORD_FILE = "LIFEBOAT_PASSWORD_FILE"
ENV_PASSWORD_COMMAND = "LIFEBOAT_PASSWORD_COMMAND"
ENV_NEW_PASSWORD = "LIFEBOAT_NEW_PASSWORD"
ENV_NEW_PASSWORD_FILE = "LIFEBOAT_NEW_PASSWORD_FILE"
ENV_NEW_PASSWORD_COMMAND = "LIFEBOAT_NEW_PASSWORD_COMMAND"
# The source repository of 'lifeboat copy' (the destination uses the variables above).
ENV_FROM_REPO = "LIFEBOAT_FROM_REPO"
ENV_FROM_PASSWORD = "LIFEBOAT_FROM_PASSWORD"
ENV_FROM_PASSWORD_FILE = "LIFEBOAT_FROM_PASSWORD_FILE"
ENV_FROM_PASSWORD_COMMAND = "LIFEBOAT_FROM_PASSWORD_COMMAND"


# A passphrase is a line; reading stops here whatever the file is (/dev/zero included).
MAX_SECRET_LINE = 4096


def _read_secret_file(path: str, what: str) -> bytes:
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


def _secret(variable: str, what: str, repo_config: RepositoryConfig | None, *, confirm: bool) -> bytes:
    """A passphrase from ``VARIABLE_FILE``, ``VARIABLE_COMMAND``, the repository's configured
    ``password_file`` / ``password_command``, ``VARIABLE`` itself, or a prompt — never argv."""
    from lifeboat.sources.tools.secret_command import run_secret_command

    if path := os.environ.get(f"{variable}_FILE"):
        return _read_secret_file(path, f"{what} file")
    if command := os.environ.get(f"{variable}_COMMAND"):
        return run_secret_command(command)
    if repo_config is not None and repo_config.password_file:
        return _read_secret_file(repo_config.password_file, f"{what} file")
    if repo_config is not None and repo_config.password_command:
        return run_secret_command(repo_config.password_command)
    if value := os.environ.get(variable):
        return value.encode()
    if not sys.stdin.isatty():
        raise ConfigError(
            f"no {what} available and no terminal to ask on",
            hint=f"set {variable}_FILE or {variable}_COMMAND (or {variable})",
        )
    first = getpass.getpass(f"Enter {what}: ")
    if not first:
        raise ConfigError(f"the {what} must not be empty")
    if confirm and getpass.getpass(f"Repeat {what}: ") != first:
        raise ConfigError("the passphrases do not match")
    return first.encode()


@dataclass
class CliContext:
    """Global options and lazily loaded shared state of one CLI invocation."""

    repo: str | None = None
    config_path: str | None = None
    json: bool = False
    quiet: bool = False
    verbose: int = 0
    output: Output = field(default_factory=Output)
    _config: LifeboatConfig | None = None
    _config_loaded: bool = False

    @classmethod
    def create(cls, *, repo: str | None, config_path: str | None, json: bool, quiet: bool, verbose: int) -> CliContext:
        return cls(
            repo=repo or os.environ.get(ENV_REPO) or None,
            config_path=config_path or os.environ.get(ENV_CONFIG) or None,
            json=json,
            quiet=quiet,
            verbose=verbose,
            output=Output(json_mode=json, quiet=quiet, verbose=verbose),
        )

    # --- configuration ---------------------------------------------------------------------
    def config(self) -> LifeboatConfig | None:
        if not self._config_loaded:
            self._config_loaded = True
            if self.config_path:
                from lifeboat.config.loader import load_config

                self._config = load_config(self.config_path)
        return self._config

    def repository_target(self) -> tuple[str, RepositoryConfig | None]:
        """The repository URL to use and its configuration entry, if any."""
        config = self.config()
        if config is not None:
            found = config.repository(self.repo)
            if found is not None:
                return found[1].url, found[1]
        if self.repo:
            return self.repo, None
        raise UsageError(
            "no repository given",
            hint=f"pass --repo, set {ENV_REPO}, or name a default_repository in the configuration file",
        )

    # --- passphrases ------------------------------------------------------------------------
    def passphrase(self, repo_config: RepositoryConfig | None = None, *, confirm: bool = False) -> bytes:
        """The repository passphrase, from (in order) the password file, the password
        command, the repository's configured file or command, the environment, or a prompt."""
        return _secret("LIFEBOAT_PASSWORD", "repository passphrase", repo_config, confirm=confirm)

    def new_passphrase(self) -> bytes:
        """A new passphrase for ``key add`` / ``key passwd``."""
        return _secret("LIFEBOAT_NEW_PASSWORD", "new passphrase", None, confirm=True)

    # --- the repository ------------------------------------------------------------------------
    def environment(self) -> Mapping[str, str]:
        """The variables storage providers take credentials and endpoints from (docs/storage.md)."""
        return os.environ

    def open_repository(self, *, read_only: bool = False) -> Repository:
        from lifeboat.repository.repo import Repository
        from lifeboat.storage.registry import open_backend

        url, repo_config = self.repository_target()
        backend = open_backend(
            url, env=self.environment(), read_only=read_only, options=repo_config.options if repo_config else None
        )
        Repository.read_header(backend)  # a missing repository is reported before asking for a passphrase
        return Repository.open(backend, self.passphrase(repo_config))

    # --- a second repository ('lifeboat copy') -------------------------------------------------
    def named_repository(self, ref: str) -> tuple[str, RepositoryConfig | None]:
        """A repository by configured name, else ``ref`` itself as a URL or path."""
        config = self.config()
        if config is not None and ref in config.repositories:
            return config.repositories[ref].url, config.repositories[ref]
        return ref, None

    def from_repository(self) -> str | None:
        """The ``--from`` repository given in the environment, if any."""
        return os.environ.get(ENV_FROM_REPO) or None

    def from_passphrase(self, repo_config: RepositoryConfig | None = None) -> bytes:
        """The passphrase of the source repository of a copy: its own variables, never argv."""
        return _secret("LIFEBOAT_FROM_PASSWORD", "source repository passphrase", repo_config, confirm=False)

    def open_repository_at(
        self, ref: str, passphrase: Callable[[RepositoryConfig | None], bytes], *, read_only: bool = False
    ) -> Repository:
        """Open the repository ``ref`` (a configured name or a URL) with ``passphrase``."""
        from lifeboat.repository.repo import Repository
        from lifeboat.storage.registry import open_backend

        url, repo_config = self.named_repository(ref)
        backend = open_backend(
            url, env=self.environment(), read_only=read_only, options=repo_config.options if repo_config else None
        )
        Repository.read_header(backend)
        return Repository.open(backend, passphrase(repo_config))

    # --- programs Lifeboat runs ('backup command', 'restore command') -------------------------
    def program_environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a program Lifeboat runs: this process's without the passphrase
        variables (the program has no business with them), plus ``extra``."""
        env = {
            name: value
            for name, value in os.environ.items()
            if not (name.startswith("LIFEBOAT_") and "PASSWORD" in name)
        }
        env.update(extra or {})
        return env

    def lock_wait(self, option: str | None) -> float:
        from lifeboat.core.units import parse_duration

        if option:
            try:
                return parse_duration(option).total_seconds()
            except ValueError as exc:
                raise UsageError(f"--lock-wait: {exc}") from None
        _, repo_config = self.repository_target()
        return parse_duration(repo_config.lock_wait).total_seconds() if repo_config else 0.0
