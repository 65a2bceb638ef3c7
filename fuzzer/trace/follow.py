"""`mmfuzz inject -- COMMAND`: run any program, and everything it forks, under injections.

The executor's `--exec` mode asks to be traced, stops, and execs the command;
from then on every thread and child is followed (PTRACE_O_TRACEFORK/VFORK/
CLONE), and each memory syscall passes through the Injector, exactly as in a
fuzzing run. The command's exit status is passed through (128+N if it died of
signal N). PTRACE_O_EXITKILL takes every tracee down with the supervisor.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from pathlib import Path

from ptrace import PtraceError
from ptrace.binding import func as pt

from fuzzer.inject import Injection
from fuzzer.trace.apply import Injector, Pending
from fuzzer.trace.ptrace_abi import (
    PTRACE_O_EXITKILL,
    PTRACE_O_TRACECLONE,
    PTRACE_O_TRACEEXEC,
    PTRACE_O_TRACEFORK,
    PTRACE_O_TRACESYSGOOD,
    PTRACE_O_TRACEVFORK,
    SYSCALL_TRAP,
    WALL,
)
from fuzzer.trace.supervisor import SupervisorError

OPTIONS = (PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL | PTRACE_O_TRACEFORK
           | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC)


def run_command(executor: Path, argv: list[str], injections: list[Injection]) -> int:
    """Run argv under the injections; returns its exit status."""
    if os.geteuid() != 0:
        raise SupervisorError("mmfuzz must run as root (ptrace)")
    pid = os.posix_spawn(str(executor), [str(executor), "--exec", *argv], dict(os.environ))
    _, status = os.waitpid(pid, WALL)
    if not os.WIFSTOPPED(status) or os.WSTOPSIG(status) != signal.SIGSTOP:
        raise SupervisorError(f"could not start {argv[0]} under ptrace")
    pt.ptrace_setoptions(pid, OPTIONS)
    injector = Injector(injections)
    inside: dict[int, Pending | None] = {}  # tids stopped inside a syscall
    live = {pid}
    code = 0
    pt.ptrace_syscall(pid, 0)
    try:
        while live:
            tid, status = os.waitpid(-1, WALL)
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                live.discard(tid)
                inside.pop(tid, None)
                if tid == pid:
                    code = (os.WEXITSTATUS(status) if os.WIFEXITED(status)
                            else 128 + os.WTERMSIG(status))
                continue
            live.add(tid)
            sig = os.WSTOPSIG(status)
            resume = 0
            if sig == SYSCALL_TRAP:
                if tid in inside:
                    pending = inside.pop(tid)
                    if pending is not None:
                        injector.exit(tid, pending)
                else:
                    pending = injector.entry(tid)
                    inside[tid] = pending if pending.call.name is not None else None
            elif status >> 16 == 0 and sig not in (signal.SIGSTOP, signal.SIGTRAP):
                resume = sig  # an ordinary signal for the tracee: deliver it
            _resume(tid, resume)
    finally:
        for tid in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(tid, signal.SIGKILL)
    return code


def _resume(tid: int, sig: int) -> None:
    """PTRACE_SYSCALL; a tracee may have died since its stop (ESRCH), which is fine."""
    try:
        pt.ptrace_syscall(tid, sig)
    except PtraceError as e:
        if e.errno != errno.ESRCH:
            raise
