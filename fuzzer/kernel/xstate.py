"""The size of this host's FP register block (its XSAVE area, NT_X86_XSTATE), in bytes.

UML builds that fix this size at build time cannot boot where it differs; the
boot diagnosis (diagnose.py) says how large it is here. Measured the way UML
itself does it: a stopped child of ours, traced, and PTRACE_GETREGSET into a
buffer larger than any XSAVE area (the kernel says how much it filled).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import signal
from functools import cache

PTRACE_TRACEME = 0
PTRACE_GETREGSET = 0x4204
NT_X86_XSTATE = 0x202
ROOM = 1 << 20


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


@cache
def host_xstate_size() -> int | None:
    """Bytes of this CPU's XSAVE area as ptrace sees it; None off x86-64 or if ptrace fails."""
    if platform.machine() != "x86_64":
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    libc.ptrace.restype = ctypes.c_long
    pid = os.fork()
    if pid == 0:  # the child: stop, traced, until the parent has read its registers
        try:
            libc.ptrace(PTRACE_TRACEME, 0, None, None)
            os.kill(os.getpid(), signal.SIGSTOP)
        finally:
            os._exit(0)
    try:
        _, status = os.waitpid(pid, os.WUNTRACED)
        if not os.WIFSTOPPED(status):
            return None
        buf = ctypes.create_string_buffer(ROOM)
        iov = _Iovec(ctypes.cast(buf, ctypes.c_void_p), ROOM)
        if libc.ptrace(PTRACE_GETREGSET, pid, NT_X86_XSTATE, ctypes.byref(iov)) != 0:
            return None
        return int(iov.iov_len)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
