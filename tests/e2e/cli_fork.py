"""Run many ``lifeboat`` command lines fast: import once, fork once per command line.

``python cli_fork.py CASES.json RESULTS.json`` runs each case — ``{"argv": [...], "env":
{...}, "template": DIR}`` — in a child forked from this process, which has already
imported the command line and every module its commands load. Each child gets a fresh
copy of ``template`` as its working directory (``{work}`` in ``argv`` and ``env`` names it),
an empty stdin, and its own stdout and stderr. A child is killed after ``timeout`` seconds.
Forking costs milliseconds where starting Python costs a third of a second, so a test can
try hundreds of hostile command lines against the real program within its time budget.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MEMORY_LIMIT = 3 << 30  # address space of one command line
# Working directories in memory when there is a tmpfs: creating, syncing and removing hundreds
# of small repositories on a busy disk would cost more than the commands themselves.
SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None

# What the commands import lazily, loaded here once so that each child starts warm.
WARM = [
    "lifeboat.app.cli.main",
    "lifeboat.app.cli.walrun",
    "lifeboat.operations.wal_worker",
    "lifeboat.config.loader",
    "lifeboat.operations.backup",
    "lifeboat.operations.restore",
    "lifeboat.operations.browse",
    "lifeboat.operations.maintenance",
    "lifeboat.operations.copy",
    "lifeboat.operations.snapshots",
    "lifeboat.sources.postgres.basebackup",
    "lifeboat.config.resolve",
    "lifeboat.operations.pg_check",
    "lifeboat.operations.pg_info",
    "lifeboat.operations.pg_expire",
    "lifeboat.operations.pitr",
    "lifeboat.repository.repo",
    "lifeboat.storage.registry",
    "lifeboat.storage.local",
    "lifeboat.sources.postgres.server",
    "psycopg",
    "difflib",
    "yaml",
    "pydantic",
]


def _child(argv: list[str], env: dict[str, str], work: Path) -> None:
    """Become one ``lifeboat`` process; never returns."""
    code = 99
    try:
        os.setpgid(0, 0)
        # A command that reads without bound (a /dev/zero passphrase file) fails here, not the machine.
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        os.chdir(work)
        os.environ.clear()
        os.environ.update(env)
        for fd, path, flags in (
            (0, os.devnull, os.O_RDONLY),
            (1, str(work / ".stdout"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
            (2, str(work / ".stderr"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        ):
            opened = os.open(path, flags, 0o600)
            os.dup2(opened, fd)
            os.close(opened)
        sys.argv = ["lifeboat", *argv]
        from lifeboat.app.cli.entry import main

        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # reported to the parent as exit status 99, with the traceback
        import traceback

        traceback.print_exc()
        code = 99
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):  # the child is ending either way
                stream.flush()
        os._exit(code)


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="lifeboat-fuzz-", dir=SCRATCH))
    try:
        template = case.get("template")
        if template:
            shutil.copytree(template, work, symlinks=True, dirs_exist_ok=True)
        argv = [a.replace("{work}", str(work)) for a in case["argv"]]
        env = {k: v.replace("{work}", str(work)) for k, v in case.get("env", {}).items()}
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(argv, env, work)
        deadline = started + float(case.get("timeout", 20))
        status: int | None = None
        cpu = 0.0
        while status is None:
            done, raw, usage = os.wait4(pid, os.WNOHANG)
            if done:
                status, cpu = raw, usage.ru_utime + usage.ru_stime
            elif time.monotonic() > deadline:
                os.killpg(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                return {"timed_out": True, "argv": argv}
            else:
                time.sleep(0.002)
        return {
            "argv": argv,
            "timed_out": False,
            "code": os.waitstatus_to_exitcode(status),
            "stdout": (work / ".stdout").read_bytes().decode(errors="replace"),
            "stderr": (work / ".stderr").read_bytes().decode(errors="replace"),
            "seconds": round(time.monotonic() - started, 3),
            "cpu_seconds": round(cpu, 3),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    cases_path, results_path = sys.argv[1:3]
    for name in WARM:
        importlib.import_module(name)
    cases = json.loads(Path(cases_path).read_text())
    results = [run_case(case) for case in cases]
    Path(results_path).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
