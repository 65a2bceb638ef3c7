"""The ptrace requests every step makes, as bare libc calls.

Marker mode resumes a process with PTRACE_CONT, waits for its stop and reads the
marker's argument with PTRACE_PEEKUSER: `cont_wait`, one call of
fuzzer/stepcalls.c where it is built, else its Python twin here (an injection's
steps resume with PTRACE_SYSCALL instead). python-ptrace's functions (used for
everything else) go through three Python layers each; these go through one and
fail the same way, with its PtraceError.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable

from ptrace import PtraceError

from fuzzer import stepcalls
from fuzzer.trace.ptrace_abi import OFF_RDI, U64, WALL, is_marker

PTRACE_PEEKUSER, PTRACE_CONT, PTRACE_SYSCALL = 3, 7, 24

_libc = ctypes.CDLL(None, use_errno=True)
_ptrace = _libc.ptrace
_ptrace.argtypes = (ctypes.c_long, ctypes.c_long, ctypes.c_ulong, ctypes.c_ulong)
_ptrace.restype = ctypes.c_long


def _error(request: str, pid: int, errno: int = 0) -> PtraceError:
    errno = errno or ctypes.get_errno()
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


def py_cont_wait(pid: int, signo: int) -> tuple[int, int]:
    """Resume a stopped tracee with PTRACE_CONT (delivering signo), wait for its next stop
    or end: (its waitpid status, its rdi where the stop is the executor's marker, a
    seccomp event stop; else 0)."""
    cont(pid, signo)
    _, status = os.waitpid(pid, WALL)
    if is_marker(status):
        return status, peekuser(pid, OFF_RDI)
    return status, 0


def _in_c(module: stepcalls.StepCalls) -> Callable[[int, int], tuple[int, int]]:
    """py_cont_wait made by one call of stepcalls.c (which gives a failed request as
    (-errno, request))."""
    c_cont_wait = module.cont_wait

    def cont_wait(pid: int, signo: int) -> tuple[int, int]:
        status, word = c_cont_wait(pid, signo, OFF_RDI)
        if status < 0:
            request = "PTRACE_CONT" if word == PTRACE_CONT else "PTRACE_PEEKUSER"
            raise _error(request, pid, -status)
        return status, word & U64

    return cont_wait


_C = stepcalls.load()
cont_wait = py_cont_wait if _C is None else _in_c(_C)
