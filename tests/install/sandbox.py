"""Run a program inside two of the sandbox rules ``schedule install --systemd`` writes, built
the way systemd builds them (seccomp filters, which survive the exec):

- ``MemoryDenyWriteExecute=yes``: a memory mapping both writable and executable, and making
  memory executable later, are refused (EPERM);
- ``SystemCallFilter=@system-service`` with ``SystemCallErrorNumber=EPERM`` and
  ``SystemCallArchitectures=native``: every system call outside the set (as
  ``systemd-analyze syscall-filter`` expands it) is refused with EPERM.

Usage: ``python sandbox.py PROGRAM [ARGS…]``. No systemd runs in the test environment to start
the real unit; these are the same rules, applied by the kernel the same way.
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
import struct
import subprocess
import sys
from pathlib import Path

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
RET_ALLOW = 0x7FFF0000
RET_EPERM = 0x00050000 | 1
PROT_WRITE, PROT_EXEC = 2, 4
# audit arch, mmap, mprotect, pkey_mprotect, the header naming the system calls
ARCHES = {
    "x86_64": (0xC000003E, 9, 10, 329, "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
    "aarch64": (0xC00000B7, 222, 226, 288, "/usr/include/asm-generic/unistd.h"),
}
LD, JEQ, AND, RET = 0x20, 0x15, 0x54, 0x06
ARCH = ARCHES[platform.machine()]


def _pack(instructions: list[tuple[int, int, int, int]]) -> bytes:
    return b"".join(struct.pack("HBBI", *i) for i in instructions)


def mdwe_filter() -> bytes:
    arch, mmap, mprotect, pkey_mprotect, _ = ARCH
    prot = 16 + 2 * 8  # seccomp_data.args[2], low 32 bits (little endian)
    return _pack(
        [
            (LD, 0, 0, 4),  # 0: arch
            (JEQ, 0, 10, arch),  # 1: another ABI: allow here (-> 12; the other filter refuses it)
            (LD, 0, 0, 0),  # 2: the system call's number
            (JEQ, 0, 3, mmap),  # 3: mmap? else -> 7
            (LD, 0, 0, prot),  # 4
            (AND, 0, 0, PROT_WRITE | PROT_EXEC),  # 5
            (JEQ, 6, 5, PROT_WRITE | PROT_EXEC),  # 6: writable and executable: deny (-> 13), else allow (-> 12)
            (JEQ, 1, 0, mprotect),  # 7: mprotect? -> 9
            (JEQ, 0, 3, pkey_mprotect),  # 8: neither: allow (-> 12)
            (LD, 0, 0, prot),  # 9
            (AND, 0, 0, PROT_EXEC),  # 10
            (JEQ, 1, 0, PROT_EXEC),  # 11: made executable: deny (-> 13)
            (RET, 0, 0, RET_ALLOW),  # 12
            (RET, 0, 0, RET_EPERM),  # 13
        ]
    )


def syscall_set(group: str = "@system-service") -> set[str]:
    """The system calls of a systemd group, its nested groups expanded."""
    seen: set[str] = set()

    def expand(name: str) -> set[str]:
        out = subprocess.run(
            ["systemd-analyze", "syscall-filter", name], capture_output=True, text=True, check=True
        ).stdout
        found: set[str] = set()
        for line in out.splitlines()[1:]:
            word = line.strip()
            if not word or word.startswith("#"):
                continue
            if word.startswith("@"):
                if word not in seen:
                    seen.add(word)
                    found |= expand(word)
            else:
                found.add(word)
        return found

    return expand(group)


def syscall_numbers() -> dict[str, int]:
    text = Path(ARCH[4]).read_text()
    return {m[1]: int(m[2]) for m in re.finditer(r"#define __NR3?2?_(\w+)\s+(\d+)\b", text)}


def allow_list_filter(names: set[str]) -> bytes:
    numbers = syscall_numbers()
    allowed = sorted({numbers[n] for n in names if n in numbers})
    instructions = [(LD, 0, 0, 4), (JEQ, 1, 0, ARCH[0]), (RET, 0, 0, RET_EPERM), (LD, 0, 0, 0)]
    for number in allowed:
        instructions += [(JEQ, 0, 1, number), (RET, 0, 0, RET_ALLOW)]
    instructions.append((RET, 0, 0, RET_EPERM))
    return _pack(instructions)


def install(*filters: bytes) -> None:
    libc = ctypes.CDLL(None, use_errno=True)

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    for program in filters:
        buffer = ctypes.create_string_buffer(program)
        prog = Prog(len(program) // 8, ctypes.addressof(buffer))
        if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


if __name__ == "__main__":
    install(allow_list_filter(syscall_set()), mdwe_filter())
    os.execv(sys.argv[1], sys.argv[1:])
