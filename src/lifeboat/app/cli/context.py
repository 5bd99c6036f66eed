"""What every command shares: global options, the configuration, passphrases and the
opened repository. The only module that reads environment variables."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lifeboat.app.cli.output import Output
from lifeboat.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from lifeboat.app.cli.interrupts import Signals
    from lifeboat.config.model import LifeboatConfig, RepositoryConfig
    from lifeboat.repository.repo import Repository

ENV_REPO = "LIFEBOAT_REPO"
ENV_CONFIG = "LIFEBOAT_CONFIG"
ENV_PROGRESS = "LIFEBOAT_PROGRESS"
ENV_STATE_DIR = "LIFEBOAT_STATE_DIR"
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


def state_directory(environ: Mapping[str, str], *, is_root: bool) -> str:
    """The state directory by the rule :meth:`CliContext.state_directory` states."""
    if environ.get(ENV_STATE_DIR):
        return environ[ENV_STATE_DIR]
    if is_root:
        return "/var/lib/lifeboat"
    base = environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "lifeboat")


def _prompt(what: str, confirm: bool) -> bytes:
    """Ask on the terminal (twice for a new passphrase)."""
    first = getpass.getpass(f"Enter {what}: ")
    if not first:
        raise ConfigError(f"the {what} must not be empty")
    if confirm and getpass.getpass(f"Repeat {what}: ") != first:
        raise ConfigError("the passphrases do not match")
    return first.encode()


def _secret(variable: str, what: str, repo_config: RepositoryConfig | None, *, confirm: bool) -> bytes:
    """A passphrase from the environment, the configuration or — on a terminal — a prompt (app/access.py)."""
    from lifeboat.app.access import passphrase

    prompt = _prompt if sys.stdin.isatty() else None
    return passphrase(variable, what, repo_config, os.environ, prompt=prompt, confirm=confirm)


@dataclass
class CliContext:
    """Global options and lazily loaded shared state of one CLI invocation."""

    repo: str | None = None
    config_path: str | None = None
    json: bool = False
    quiet: bool = False
    verbose: int = 0
    output: Output = field(default_factory=Output)
    progress_style: str = ""  # LIFEBOAT_PROGRESS: "lines" prints each step of an operation as a line
    signals: Signals | None = None  # Ctrl-C and SIGTERM cancel the running operation (app/cli/interrupts.py)
    _config: LifeboatConfig | None = None
    _config_loaded: bool = False
    writable_repository: Repository | None = None  # the last opened for writing: the audit log's anchors go there

    @classmethod
    def create(
        cls,
        *,
        repo: str | None,
        config_path: str | None,
        json: bool,
        quiet: bool,
        verbose: int,
        signals: Signals | None = None,
    ) -> CliContext:
        return cls(
            repo=repo or os.environ.get(ENV_REPO) or None,
            config_path=config_path or os.environ.get(ENV_CONFIG) or None,
            json=json,
            quiet=quiet,
            verbose=verbose,
            output=Output(json_mode=json, quiet=quiet, verbose=verbose),
            progress_style=os.environ.get(ENV_PROGRESS, ""),
            signals=signals,
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
        from lifeboat.config.resolve import repository_target

        found = repository_target(self.config(), self.repo)
        if found is not None:
            return found
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
        """This process's environment, which the CLI hands down: storage providers take credentials
        and endpoints from it (docs/storage.md); nothing below app/ reads the environment."""
        return os.environ

    def open_repository(self, *, read_only: bool = False, cached: bool = False) -> Repository:
        """The repository; ``cached``: its snapshots listed through the local metadata cache (for
        the commands that show or judge metadata — a command that restores or checks data reads
        each record from the storage, so a damaged one is found there)."""
        from lifeboat.app.access import open_repository

        url, repo_config = self.repository_target()
        repo = open_repository(
            url,
            repo_config,
            self.passphrase,
            environment=self.environment(),
            read_only=read_only,
            state_directory=self.state_directory() if cached else None,
        )
        if not read_only:
            self.writable_repository = repo
        return repo

    def state_directory(self) -> str:
        """Where this host keeps what it may rebuild from the repository (the record cache):
        ``LIFEBOAT_STATE_DIR``, else /var/lib/lifeboat for root, else ``$XDG_STATE_HOME/lifeboat``
        or ~/.local/state/lifeboat."""
        return state_directory(os.environ, is_root=os.geteuid() == 0)

    # --- a second repository ('lifeboat copy') -------------------------------------------------
    def named_repository(self, ref: str) -> tuple[str, RepositoryConfig | None]:
        """A repository by configured name, else ``ref`` itself as a URL or path."""
        from lifeboat.config.resolve import named_repository

        return named_repository(self.config(), ref)

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
        from lifeboat.app.access import open_repository

        url, repo_config = self.named_repository(ref)
        return open_repository(url, repo_config, passphrase, environment=self.environment(), read_only=read_only)

    # --- programs Lifeboat runs ('backup command', 'restore command') -------------------------
    def program_environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a program Lifeboat runs: this process's without the passphrase
        variables (the program has no business with them), plus ``extra``."""
        from lifeboat.sources.command.spec import program_environment

        return program_environment(os.environ, extra)

    def lock_wait(self, option: str | None, repo_config: RepositoryConfig | None = None) -> float:
        """Seconds to wait for a lock: ``--lock-wait``, else the repository's configured ``lock_wait``."""
        from lifeboat.config.resolve import lock_wait

        if option:
            return lock_wait(option, None)
        if repo_config is None:
            _, repo_config = self.repository_target()
        return lock_wait(None, repo_config)
