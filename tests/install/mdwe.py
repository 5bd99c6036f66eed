"""Run a program the way systemd's ``MemoryDenyWriteExecute=yes`` runs it: a seccomp filter
refusing (EPERM) a memory mapping both writable and executable, and making memory executable
later. Usage: ``python mdwe.py PROGRAM [ARGS…]`` (the filter survives the exec)."""

from __future__ import annotations

import ctypes
import os
import platform
import struct
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
RET_ALLOW = 0x7FFF0000
RET_EPERM = 0x00050000 | 1
PROT_WRITE, PROT_EXEC = 2, 4
# (audit arch, mmap, mprotect, pkey_mprotect)
ARCHES = {"x86_64": (0xC000003E, 9, 10, 329), "aarch64": (0xC00000B7, 222, 226, 288)}
LD, JEQ, AND, RET = 0x20, 0x15, 0x54, 0x06


def program() -> bytes:
    arch, mmap, mprotect, pkey_mprotect = ARCHES[platform.machine()]
    prot = 16 + 2 * 8  # seccomp_data.args[2], low 32 bits (little endian)
    instructions = [
        (LD, 0, 0, 4),  # 0: arch
        (JEQ, 0, 10, arch),  # 1: another ABI: allow (-> 12)
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
    return b"".join(struct.pack("HBBI", *i) for i in instructions)


def install() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    filters = ctypes.create_string_buffer(program())

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = Prog(len(filters.raw) // 8, ctypes.addressof(filters))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


if __name__ == "__main__":
    install()
    os.execv(sys.argv[1], sys.argv[1:])
