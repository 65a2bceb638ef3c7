"""The ptrace requests every step makes, as bare libc calls.

Marker mode resumes a process with PTRACE_CONT and reads the marker's argument
with PTRACE_PEEKUSER, about 2.3 calls a step (an injection's steps resume with
PTRACE_SYSCALL instead). python-ptrace's functions (used for
everything else) go through three Python layers each; these go through one and
fail the same way, with its PtraceError.
"""

from __future__ import annotations

import ctypes
import os

from ptrace import PtraceError

from fuzzer.trace.ptrace_abi import U64

PTRACE_PEEKUSER, PTRACE_CONT, PTRACE_SYSCALL = 3, 7, 24

_libc = ctypes.CDLL(None, use_errno=True)
_ptrace = _libc.ptrace
_ptrace.argtypes = (ctypes.c_long, ctypes.c_long, ctypes.c_ulong, ctypes.c_ulong)
_ptrace.restype = ctypes.c_long


def _error(request: str, pid: int) -> PtraceError:
    errno = ctypes.get_errno()
    return PtraceError(f"ptrace({request}, pid={pid}) error #{errno}: {os.strerror(errno)}",
                       errno=errno, pid=pid)


def cont(pid: int, signo: int = 0) -> None:
    """Resume a stopped tracee, delivering signo (0: none)."""
    if _ptrace(PTRACE_CONT, pid, 0, signo) == -1:
        raise _error("PTRACE_CONT", pid)


def syscall(pid: int, signo: int = 0) -> None:
    """Resume a stopped tracee to its next syscall entry or exit, delivering signo."""
    if _ptrace(PTRACE_SYSCALL, pid, 0, signo) == -1:
        raise _error("PTRACE_SYSCALL", pid)


def peekuser(pid: int, offset: int) -> int:
    """The word at `offset` in the tracee's struct user, unsigned (as python-ptrace's)."""
    ctypes.set_errno(0)  # -1 is also a word: only errno tells a failure
    word: int = _ptrace(PTRACE_PEEKUSER, pid, offset, 0)
    if word == -1 and ctypes.get_errno():
        raise _error("PTRACE_PEEKUSER", pid)
    return word & U64
