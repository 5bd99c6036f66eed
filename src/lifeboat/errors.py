"""The one error tree of Lifeboat.

Every error a user can meet is a :class:`LifeboatError` with a stable exit code and a
hint that says how to fix it. The CLI maps them to one line on stderr and the exit
code; nothing else in the program decides exit codes. The codes are documented in
``docs/cli.md`` and must never change meaning.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Stable process exit codes (documented in docs/cli.md)."""

    OK = 0
    ERROR = 1
    USAGE = 2
    PARTIAL = 3
    NO_REPOSITORY = 10
    LOCKED = 11
    WRONG_PASSPHRASE = 12
    INTEGRITY = 13
    STORAGE = 14
    MISSING_TOOL = 15
    INTERRUPTED = 130


class LifeboatError(Exception):
    """Base of every error Lifeboat reports to a user."""

    exit_code: ExitCode = ExitCode.ERROR
    default_hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = self.default_hint if hint is None else hint

    def __str__(self) -> str:
        return self.message


class UsageError(LifeboatError):
    """A command was called with options that do not fit together."""

    exit_code = ExitCode.USAGE
    default_hint = "run the command with --help to see its options"


class ConfigError(UsageError):
    """The configuration file or an environment setting is malformed."""

    default_hint = "fix the named key; 'lifeboat config validate' checks the whole file"


class PassphraseError(LifeboatError):
    """No key file of the repository opens with the given passphrase."""

    exit_code = ExitCode.WRONG_PASSPHRASE
    default_hint = (
        "the first of LIFEBOAT_PASSWORD_FILE, LIFEBOAT_PASSWORD_COMMAND, the configured password_file or "
        "password_command, LIFEBOAT_PASSWORD is used (a file's first line): check that one; "
        "any passphrase added with 'key add' opens the repository too"
    )


class RepositoryNotFound(LifeboatError):
    """The location holds no Lifeboat repository."""

    exit_code = ExitCode.NO_REPOSITORY
    default_hint = "check --repo / LIFEBOAT_REPO, or create one with 'lifeboat init'"


class RepositoryExists(LifeboatError):
    """``init`` was asked to create a repository where one already is."""

    default_hint = "choose an empty location, or use the existing repository"


class UnsupportedFormat(LifeboatError):
    """The repository was written by a format version this program does not read."""

    exit_code = ExitCode.INTEGRITY
    default_hint = "upgrade Lifeboat to a version that reads this repository format"


class RepositoryLocked(LifeboatError):
    """Another process holds a lock that conflicts with the one asked for."""

    exit_code = ExitCode.LOCKED
    default_hint = "wait for the other operation, retry with --lock-wait, or remove stale locks with 'lifeboat unlock'"


class IntegrityError(LifeboatError):
    """Repository data is damaged, truncated, tampered with or hostile."""

    exit_code = ExitCode.INTEGRITY
    default_hint = "run 'lifeboat check' to see what is damaged; 'lifeboat repair index' rebuilds the index"


class ObjectNotFound(LifeboatError):
    """A named snapshot, path or object does not exist."""

    default_hint = "'lifeboat snapshots' lists what the repository holds"


class PartialBackup(LifeboatError):
    """A backup finished, but some files could not be read."""

    exit_code = ExitCode.PARTIAL
    default_hint = "the snapshot was saved without the files listed above; fix their permissions and rerun"


class RestoreRefused(LifeboatError):
    """A restore would overwrite something that must not be overwritten."""

    default_hint = "restore into an empty directory, or pass --force to overwrite"


class MissingTool(LifeboatError):
    """An external program Lifeboat needs is not installed."""

    exit_code = ExitCode.MISSING_TOOL
    default_hint = "install the program (see the README's set-up) or put it on PATH"


class Interrupted(LifeboatError):
    """The user interrupted the operation (Ctrl-C or SIGTERM)."""

    exit_code = ExitCode.INTERRUPTED
    default_hint = "nothing was committed; earlier snapshots are intact, run the command again"


# --- storage ---------------------------------------------------------------------------
# Providers translate their SDK's exceptions into these once, at the boundary; retry
# logic decides only on these classes.


class StorageError(LifeboatError):
    """A storage backend failed; permanent unless it is a :class:`TransientStorageError`."""

    exit_code = ExitCode.STORAGE
    default_hint = "check that the storage is reachable and the credentials allow the operation"


class TransientStorageError(StorageError):
    """A failure worth retrying: timeouts, connection resets, 5xx, throttling."""


class StorageNotFound(StorageError):
    """The named object does not exist."""


class StorageAlreadyExists(StorageError):
    """A put-if-absent found the object already present."""


class StoragePermissionDenied(StorageError):
    """The credentials do not allow the operation."""

    default_hint = "check the credentials and the permissions of the repository location"


class StorageQuotaExceeded(StorageError):
    """The storage is full or a quota was reached."""

    default_hint = "free space on the storage or raise its quota; nothing was committed"


class StorageReadOnly(StorageError):
    """A write was attempted through a read-only backend."""

    default_hint = "this command opened the repository read-only"


# --- PostgreSQL ------------------------------------------------------------------------


class PostgresError(LifeboatError):
    """PostgreSQL refused or failed an operation Lifeboat asked of it."""

    default_hint = "check the connection settings (--host/--port/--user, PG* variables) and the server log"


class WalConflict(IntegrityError):
    """A WAL file is already archived with different content."""

    default_hint = (
        "two clusters (or a restored copy) may archive into one place; "
        "'lifeboat pg info' shows the archive — never overwrite archived WAL"
    )


class WalMissing(IntegrityError):
    """WAL needed to reach a recovery target is not in the archive."""

    default_hint = "'lifeboat pg info' shows the archived ranges and gaps; choose a target before the gap"


class RecoveryFailed(LifeboatError):
    """A restored cluster did not finish recovery."""

    default_hint = "the last lines of the server log above say why; fix it and start the cluster again"
