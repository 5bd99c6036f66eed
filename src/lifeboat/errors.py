"""The one error tree of Lifeboat.

Every error a user can meet is a :class:`LifeboatError` with a stable exit code and a
hint that says how to fix it. The CLI maps them to one line on stderr and the exit
code; nothing else in the program decides exit codes. The codes are documented in
``docs/cli.md`` and must never change meaning.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from enum import IntEnum

_PACKAGE_DIR = os.path.dirname(__file__) + os.sep


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
    SOURCE_FAILED = 16
    OBJECTIVE_MISSED = 17  # a drill restored and validated, but missed its RTO, RPO or time limit
    INTERRUPTED = 130


class LifeboatError(Exception):
    """Base of every error Lifeboat reports to a user.

    ``message`` and ``hint`` read as plain text, any option they name spelled as its
    configuration key; a front end spells options its own way with :meth:`spelled`.
    """

    exit_code: ExitCode = ExitCode.ERROR
    default_hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(spell_options(message))
        self.message = message
        self.hint = self.default_hint if hint is None else hint

    @property
    def message(self) -> str:
        return spell_options(self._message)

    @message.setter
    def message(self, text: str) -> None:
        self._message = text

    @property
    def hint(self) -> str:
        return spell_options(self._hint)

    @hint.setter
    def hint(self, text: str) -> None:
        self._hint = text

    def spelled(self, spell: Callable[[str], str]) -> tuple[str, str]:
        """The message and the hint with their options spelled by ``spell`` (e.g. :func:`cli_flag`)."""
        return spell_options(self._message, spell), spell_options(self._hint, spell)

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
        "password_command, LIFEBOAT_PASSWORD is used: check that it gives this repository's passphrase and "
        "that {option:repo} names the right repository; the passphrase of any other key (added with 'key add') "
        "opens it too"
    )


class RepositoryNotFound(LifeboatError):
    """The location holds no Lifeboat repository."""

    exit_code = ExitCode.NO_REPOSITORY
    default_hint = "check {option:repo} / LIFEBOAT_REPO, or create one with 'lifeboat init'"


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
    default_hint = (
        "wait for the other operation, retry with {option:lock_wait}, or remove stale locks with 'lifeboat unlock'"
    )


class IntegrityError(LifeboatError):
    """Repository data is damaged, truncated, tampered with or hostile."""

    exit_code = ExitCode.INTEGRITY
    default_hint = "run 'lifeboat check' to see what is damaged; 'lifeboat repair index' rebuilds the index"


class DamagedHeader(IntegrityError):
    """The format header (``config``) of a repository is damaged or missing."""

    default_hint = (
        "the header never changes after 'lifeboat init': restore 'config' from a copy or backup of the "
        "repository's storage, or restore from the replica repository that 'lifeboat copy' keeps"
    )


class DamagedKey(IntegrityError):
    """A key file is damaged, or the repository has none left."""

    default_hint = (
        "restore the 'keys/' files from a copy or backup of the repository's storage, or restore "
        "from the replica repository that 'lifeboat copy' keeps (it has its own keys)"
    )


class ObjectNotFound(LifeboatError):
    """A named snapshot, path or object does not exist."""

    default_hint = "'lifeboat snapshots' lists what the repository holds"


class PartialBackup(LifeboatError):
    """A backup finished, but some files could not be read."""

    exit_code = ExitCode.PARTIAL
    default_hint = "the snapshot was saved without the files listed above; fix their permissions and rerun"


class SourceError(LifeboatError):
    """What was to be backed up failed: a named path is missing or unreadable, or the program
    producing the data failed or wrote nothing. No snapshot was saved. Also a program that a
    restore streams into (``restore command``) that failed or stopped reading early."""

    exit_code = ExitCode.SOURCE_FAILED
    default_hint = "no snapshot was saved; fix the source (a path, or the program's error above) and run it again"


class RestoreRefused(LifeboatError):
    """A restore would overwrite something that must not be overwritten."""

    default_hint = "restore into an empty directory, or pass {option:force} to overwrite"


class MissingTool(LifeboatError):
    """An external program Lifeboat needs is not installed."""

    exit_code = ExitCode.MISSING_TOOL
    default_hint = "install the program (see the README's set-up) or put it on PATH"


class Interrupted(LifeboatError):
    """The user interrupted the operation (Ctrl-C or SIGTERM)."""

    exit_code = ExitCode.INTERRUPTED
    default_hint = "nothing was committed; earlier snapshots are intact, run the command again"


class Cancelled(Interrupted):
    """The operation was asked to stop (a cancel token: the daemon's API, a front end) and
    stopped at a safe point, before anything was committed. Exit code 130, as an interrupt."""

    default_hint = "nothing was committed; earlier snapshots are intact, run it again when wanted"


class NotSupported(UsageError):
    """A kind of source cannot do what was asked (restore into a server, start a scratch instance…)."""

    default_hint = "docs/configuration.md lists what each kind of source can do"


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


class LockLost(StorageError):
    """This process's repository lock could not be refreshed in time: other processes may
    take it as stale (and prune under it), so the operation holding it stops."""

    default_hint = (
        "check that the storage is reachable and accepts writes to 'locks/'; nothing was committed after "
        "the lock was lost — run the command again"
    )


class StorageReadOnly(StorageError):
    """A write was attempted through a read-only backend."""

    default_hint = "this command opened the repository read-only"


# --- PostgreSQL ------------------------------------------------------------------------


class PostgresError(LifeboatError):
    """PostgreSQL refused or failed an operation Lifeboat asked of it."""

    default_hint = (
        "check the connection settings ({option:host}/{option:port}/{option:user}, PG* variables) and the server log"
    )


class WalConflict(IntegrityError):
    """A WAL file is already archived with different content."""

    default_hint = (
        "two clusters (or a restored copy) may archive into one place; "
        "'lifeboat pg info' shows the archive — never overwrite archived WAL"
    )


class WalMissing(IntegrityError):
    """WAL needed to reach a recovery target is not in the archive."""

    default_hint = "'lifeboat pg info' shows the archived ranges and gaps; choose a target before the gap"


class ArchivingFailed(LifeboatError):
    """PostgreSQL's archive_command fails, and no reason was recorded where Lifeboat can read it."""

    default_hint = (
        "the server log has wal-push's messages; 'lifeboat pg check' tests the repository as the server's OS user"
    )


class WalDamaged(IntegrityError):
    """An archived WAL file is damaged, truncated, swapped or not what its name says."""

    default_hint = (
        "restore from a replica repository made by 'lifeboat copy', or choose a recovery target before "
        "this file; 'lifeboat check --read-data' shows every damaged WAL file"
    )


class RecoveryFailed(LifeboatError):
    """A restored cluster did not finish recovery."""

    default_hint = "the last lines of the server log above say why; fix it and start the cluster again"


# --- options named in messages ----------------------------------------------------------
# An operation or a source names one of its options in a message, a hint or a notice as
# ``{option:allow_empty}`` (see :func:`option`): the configuration key, which the command line
# spells ``--allow-empty`` and the configuration file and the API spell ``allow_empty``. So
# nothing below ``app/`` names a command-line flag, and each front end still names the exact
# option to change.

_OPTION = re.compile(r"\{option:([a-z][a-z0-9_]*)\}")


def option(name: str) -> str:
    """The marker for the option (configuration key) ``name`` in a message."""
    return "{option:" + name + "}"


def config_key(name: str) -> str:
    """How the configuration file and the API spell an option: its key."""
    return name


def cli_flag(name: str) -> str:
    """How the command line spells an option: ``allow_empty`` → ``--allow-empty``."""
    return "--" + name.replace("_", "-")


def spell_options(text: str, spell: Callable[[str], str] = config_key) -> str:
    """``text`` with each option marker spelled by ``spell`` (by default: the configuration key)."""
    return _OPTION.sub(lambda found: spell(found.group(1)), text) if "{option:" in text else text


# --- what may be shown of any exception --------------------------------------------------


class ProviderFailure(Exception):
    """What a storage SDK raised, reduced to facts that are safe to show: its type, the HTTP
    status and service code, and the types of its causes. It is the cause (``-v``) of the
    storage error a provider raises. An SDK's own message can quote request URLs, headers,
    signatures and connection strings, so it is never kept."""


def describe(exc: BaseException) -> str:
    """``Type: message`` for ``exc``, with the message only where it cannot carry a secret.

    Lifeboat's own errors are built from structured parts and shown whole. A built-in
    exception raised in Lifeboat's code is shown whole; an operating-system error by its
    errno and text. Anything raised inside a library (an SDK, a TLS or HTTP stack) is shown
    by its type only: its message may quote a signed URL, a header or a key.
    """
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    if isinstance(exc, LifeboatError):
        return f"{name}: {exc.message}" if exc.message else name
    if isinstance(exc, ProviderFailure):
        return f"{name}: {exc}"
    if kind.__module__ != "builtins":
        return f"{name} (its message is not shown: it may quote credentials)"
    if isinstance(exc, OSError):
        return f"{name}: [Errno {exc.errno}] {exc.strerror}" if exc.errno is not None and exc.strerror else name
    if _raised_in_lifeboat(exc):
        text = str(exc)
        return f"{name}: {text}" if text else name
    return name


def _raised_in_lifeboat(exc: BaseException) -> bool:
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR)


def error_from(code: int, kind: str, message: str, hint: str = "") -> LifeboatError:
    """Rebuild an error another process reported by its exit code, class name and message.

    The class is one of this tree's (found by name), so the exit code and the kind of
    failure — a permission, not damage — survive the trip; an unknown name gives a plain
    :class:`LifeboatError` with the reported exit code.
    """
    pending: list[type[LifeboatError]] = [LifeboatError]
    found: type[LifeboatError] = LifeboatError
    while pending:
        cls = pending.pop()
        if cls.__name__ == kind:
            found = cls
            break
        pending.extend(cls.__subclasses__())
    error = found(message, hint=hint or None)
    try:
        exit_code = ExitCode(code)
    except ValueError:
        exit_code = ExitCode.ERROR
    if error.exit_code != exit_code:
        error.exit_code = exit_code
    return error
