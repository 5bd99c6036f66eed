"""Running a user's program at one end of a stream (``backup command``, ``restore command``).

A :class:`Producer` is a program whose standard output Lifeboat stores; a :class:`Consumer`
is a program Lifeboat writes a restored stream into. Both keep the last 64 KiB of the
program's standard error (handing each piece to an optional sink as it comes) and turn how
the program ended into a :class:`ProgramExit`. Exit status 0 is success; any other status,
death by a signal, or a consumer that stops reading before the stream ends is a
:class:`SourceError` naming the program, its status and its last line of standard error.

When Lifeboat itself fails or is interrupted while the program runs, the program is stopped
(SIGTERM, then SIGKILL after a grace period) and reaped before the error goes on. A consumer
is stopped *before* its standard input is closed, so it never reads a cut stream as a whole
one. Messages name only the program (``argv[0]``): its arguments and its environment may
hold secrets.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, NoReturn, cast

from lifeboat.errors import MissingTool, SourceError

STDERR_KEPT = 64 * 1024  # the end of a program's standard error that is kept
STOP_GRACE_SECONDS = 5.0  # between SIGTERM and SIGKILL
_PIECE = 64 * 1024

StderrSink = Callable[[bytes], None]
# Programs that run another program as another user: a message names the one they run.
_USER_SWITCHES = frozenset({"runuser", "setpriv", "sudo"})


def program_name(argv: Sequence[str]) -> str:
    """What messages call the program ``argv`` runs: ``argv[0]``, or after ``runuser -u U --``
    (and the like) the program run as that user. Never its arguments: they may hold secrets."""
    if argv and os.path.basename(argv[0]) in _USER_SWITCHES and "--" in argv[:-1]:
        return argv[list(argv).index("--") + 1]
    return argv[0] if argv else ""


@dataclass(frozen=True)
class ProgramExit:
    """How a program ended, and the end of what it wrote to standard error."""

    program: str
    status: int  # the exit status, or minus the number of the signal that killed it
    stderr: bytes  # the last STDERR_KEPT bytes
    stderr_total: int  # bytes written to standard error in all

    def describe(self) -> str:
        if self.status < 0:
            try:
                return f"killed by {signal.Signals(-self.status).name}"
            except ValueError:
                return f"killed by signal {-self.status}"
        return f"exit status {self.status}"

    def last_line(self) -> str:
        """The last non-empty line of standard error (at most 300 characters)."""
        for line in reversed(self.stderr.decode(errors="replace").splitlines()):
            if line.strip():
                return line.strip()[:300]
        return ""

    def with_last_line(self, message: str) -> str:
        last = self.last_line()
        return f"{message}: {last}" if last else message

    def to_json(self) -> dict[str, Any]:
        return {
            "program": self.program,
            "exit_status": self.status,
            "stderr": self.stderr.decode(errors="replace"),
            "stderr_bytes": self.stderr_total,
            "stderr_truncated": self.stderr_total > len(self.stderr),
        }


class _StderrTail:
    """Reads a program's standard error on a thread, keeping its last bytes."""

    def __init__(self, pipe: IO[bytes], sink: StderrSink | None) -> None:
        self._pipe = pipe
        self._sink = sink
        self._kept = bytearray()
        self._total = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="lifeboat-program-stderr", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        fd = self._pipe.fileno()
        sink = self._sink
        while True:
            try:
                piece = os.read(fd, _PIECE)
            except OSError:
                return
            if not piece:
                return
            with self._lock:
                self._total += len(piece)
                self._kept += piece
                if len(self._kept) > 2 * STDERR_KEPT:
                    del self._kept[:-STDERR_KEPT]
            if sink is not None:
                try:
                    sink(piece)
                except Exception:  # noqa: BLE001 - showing the messages is a courtesy; keep reading them
                    sink = None

    def finish(self, program: str, status: int) -> ProgramExit:
        """Wait (briefly) for the end of standard error; the program has exited."""
        # A child the program left behind may hold the pipe open: do not wait for it.
        self._thread.join(STOP_GRACE_SECONDS)
        if not self._thread.is_alive():
            self._pipe.close()  # else the thread still reads it; the descriptor goes with the process
        with self._lock:
            return ProgramExit(program, status, bytes(self._kept[-STDERR_KEPT:]), self._total)


def _spawn(argv: Sequence[str], env: Mapping[str, str] | None, **pipes: Any) -> subprocess.Popen[bytes]:
    if not argv or not argv[0]:
        raise SourceError("no program was given", hint="name the program after '--': -- PROGRAM ARGS…")
    program = argv[0]
    try:
        return subprocess.Popen(  # the user's own program, run without a shell
            list(argv), stderr=subprocess.PIPE, env=dict(env) if env is not None else None, close_fds=True, **pipes
        )
    except FileNotFoundError:
        raise MissingTool(
            f"program {program!r} was not found",
            hint="check its name and PATH; no shell runs it (use sh -c '…' for pipes and redirections)",
        ) from None
    except PermissionError:
        raise SourceError(
            f"program {program!r} cannot be run: permission denied", hint="check that this user may execute it"
        ) from None
    except OSError as exc:
        raise SourceError(f"program {program!r} cannot be run: {exc.strerror or exc}") from None


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after the grace period; returns once the program is reaped."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        process.wait(STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait()


def _close(pipe: IO[bytes] | None) -> None:
    if pipe is not None:
        with contextlib.suppress(OSError):
            pipe.close()


class Producer:
    """A program whose standard output is read as a stream.

    ``with Producer(argv) as producer:`` read ``producer.stdout`` to its end, then call
    :meth:`finish`. Leaving the block without :meth:`finish` (an error, an interrupt) stops
    the program.
    """

    def __init__(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, on_stderr: StderrSink | None = None
    ) -> None:
        self.argv = tuple(argv)
        self.program = program_name(self.argv)
        self._env = env
        self._on_stderr = on_stderr
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: _StderrTail | None = None
        self._finished = False

    def __enter__(self) -> Producer:
        process = _spawn(self.argv, self._env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        assert process.stderr is not None
        self._process = process
        self._stderr = _StderrTail(process.stderr, self._on_stderr)
        return self

    @property
    def stdout(self) -> BinaryIO:
        assert self._process is not None and self._process.stdout is not None
        return cast(BinaryIO, self._process.stdout)

    def finish(self) -> ProgramExit:
        """Once its output has ended: wait for the program; raise unless it exited 0."""
        assert self._process is not None and self._stderr is not None
        status = self._process.wait()
        self._finished = True
        ended = self._stderr.finish(self.program, status)
        if status != 0:
            raise SourceError(
                ended.with_last_line(f"{self.program} failed ({ended.describe()})"),
                hint="no snapshot was saved; fix what the program reports and run it again",
            )
        return ended

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        process = self._process
        if process is None:
            return
        _close(process.stdout)  # a program still writing gets EPIPE at once
        if not self._finished:
            self._finished = True
            _stop(process)
            assert self._stderr is not None
            self._stderr.finish(self.program, process.returncode)


class Consumer:
    """A program that reads a stream on its standard input.

    ``with Consumer(argv) as consumer:`` :meth:`write` the stream, then :meth:`finish`.
    Leaving the block without :meth:`finish` stops the program before its input is closed.
    Its standard output is Lifeboat's (or Lifeboat's standard error, ``stdout_to_stderr``).

    ``may_stop_early``: a program that closes its input and exits 0 before the stream ends has
    taken all it needs (pg_restore of one table stops once it has it); then further writes are
    dropped and :attr:`stopped_early` is set. Otherwise stopping early is a failure.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        on_stderr: StderrSink | None = None,
        stdout_to_stderr: bool = False,
        may_stop_early: bool = False,
    ) -> None:
        self.argv = tuple(argv)
        self.program = program_name(self.argv)
        self.written = 0
        self.stopped_early = False
        self._may_stop_early = may_stop_early
        self._env = env
        self._on_stderr = on_stderr
        self._stdout_to_stderr = stdout_to_stderr
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: _StderrTail | None = None
        self._finished = False

    def __enter__(self) -> Consumer:
        stdout = 2 if self._stdout_to_stderr else None
        process = _spawn(self.argv, self._env, stdin=subprocess.PIPE, stdout=stdout)
        assert process.stderr is not None
        self._process = process
        self._stderr = _StderrTail(process.stderr, self._on_stderr)
        return self

    def write(self, data: bytes | memoryview) -> None:
        """Write all of ``data``; raise :class:`SourceError` if the program stopped reading."""
        assert self._process is not None and self._process.stdin is not None
        if self.stopped_early:
            return
        fd = self._process.stdin.fileno()
        view = memoryview(data)
        try:
            while view:
                done = os.write(fd, view)
                view = view[done:]
                self.written += done
        except BrokenPipeError:
            if self._may_stop_early and self._exited_well():
                self.stopped_early = True
                return
            self._stopped_reading()

    def _exited_well(self) -> bool:
        """Whether the program, having closed its input, exits 0 (within the grace period)."""
        assert self._process is not None
        try:
            return self._process.wait(STOP_GRACE_SECONDS) == 0
        except subprocess.TimeoutExpired:
            return False

    def _stopped_reading(self) -> NoReturn:
        process = self._process
        assert process is not None and self._stderr is not None
        try:
            process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:  # it closed its input but goes on: stop it
            _stop(process)
        self._finished = True
        ended = self._stderr.finish(self.program, process.returncode)
        raise SourceError(
            ended.with_last_line(f"{self.program} stopped reading after {self.written} bytes ({ended.describe()})"),
            hint="the program did not take the whole stream; fix what it reports and run the restore again",
        )

    def finish(self) -> ProgramExit:
        """End the stream (close the program's input), wait for it; raise unless it exited 0."""
        process = self._process
        assert process is not None and self._stderr is not None
        _close(process.stdin)
        status = process.wait()
        self._finished = True
        ended = self._stderr.finish(self.program, status)
        if status != 0:
            raise SourceError(
                ended.with_last_line(f"{self.program} failed ({ended.describe()})"),
                hint="the program did not accept the stream; fix what it reports and run the restore again",
            )
        return ended

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        process = self._process
        if process is None:
            return
        if not self._finished:
            self._finished = True
            _stop(process)  # its input stays open until it is gone: it never sees the stream end
            assert self._stderr is not None
            self._stderr.finish(self.program, process.returncode)
        _close(process.stdin)
