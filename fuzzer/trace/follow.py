"""`mmfuzz inject -- COMMAND`: run any program, and everything it forks, under injections.

The executor's `--exec` mode asks to be traced, stops, and execs the command;
from then on every thread and child is followed (PTRACE_O_TRACEFORK/VFORK/
CLONE), and each memory syscall passes through the Injector, exactly as in a
fuzzing run. A new process, whichever call made it (glibc's fork() is clone,
posix_spawn is a vfork), gets the injections' `on_fork` before it runs; a
thread does not. The command's exit status is passed through (128+N if it died of
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
    PTRACE_EVENT_CLONE,
    PTRACE_EVENT_EXEC,
    PTRACE_EVENT_FORK,
    PTRACE_EVENT_VFORK,
    PTRACE_O_EXITKILL,
    PTRACE_O_TRACECLONE,
    PTRACE_O_TRACEEXEC,
    PTRACE_O_TRACEFORK,
    PTRACE_O_TRACESYSGOOD,
    PTRACE_O_TRACEVFORK,
    SYSCALL_TRAP,
    U64,
    WALL,
)
from fuzzer.trace.supervisor import SupervisorError

OPTIONS = (PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL | PTRACE_O_TRACEFORK
           | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC)
CLONE_VM, CLONE_VFORK, CLONE_THREAD = 0x100, 0x4000, 0x10000
SYS_CLONE3 = 435


def run_command(executor: Path, argv: list[str], injections: list[Injection]) -> int:
    """Run argv under the injections; returns its exit status."""
    if os.geteuid() != 0:
        raise SupervisorError("mmfuzz must run as root (ptrace)")
    pid = os.posix_spawn(str(executor), [str(executor), "--exec", *argv], dict(os.environ))
    _, status = os.waitpid(pid, WALL)
    if not os.WIFSTOPPED(status) or os.WSTOPSIG(status) != signal.SIGSTOP:
        raise SupervisorError(f"could not start {argv[0]} under ptrace")
    pt.ptrace_setoptions(pid, OPTIONS)
    tree = _Tree(pid, Injector(injections))
    pt.ptrace_syscall(pid, 0)
    try:
        tree.follow()
    finally:
        for tid in tree.live | tree.held:
            with contextlib.suppress(ProcessLookupError):
                os.kill(tid, signal.SIGKILL)
    return tree.code


class _Tree:
    """Every tracee of one command: threads, and processes made by fork, vfork or clone.

    A new tracee starts stopped (SIGSTOP). If that stop comes before its creator's
    fork event it is held until the event, so `Injector.fork` always runs with the
    new process stopped at fork's return, before its first instruction.
    """

    def __init__(self, pid: int, injector: Injector) -> None:
        self.pid, self.injector = pid, injector
        self.live = {pid}
        self.held: set[int] = set()  # new tracees stopped, their creator's event not yet seen
        self.inside: dict[int, Pending | None] = {}  # tids stopped inside a syscall
        self.code = 0
        injector.begin(pid)

    def follow(self) -> None:
        while self.live:
            tid, status = os.waitpid(-1, WALL)
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                self._gone(tid, status)
            elif tid not in self.live:
                self.held.add(tid)  # stays stopped until its creator's event
            else:
                _resume(tid, self._stopped(tid, status))

    def _gone(self, tid: int, status: int) -> None:
        self.live.discard(tid)
        self.inside.pop(tid, None)
        if tid == self.pid:
            self.code = (os.WEXITSTATUS(status) if os.WIFEXITED(status)
                         else 128 + os.WTERMSIG(status))

    def _stopped(self, tid: int, status: int) -> int:
        """Handle one stop of a known tracee; the signal to resume it with."""
        sig, event = os.WSTOPSIG(status), status >> 16
        if sig == SYSCALL_TRAP:
            if tid in self.inside:
                pending = self.inside.pop(tid)
                if pending is not None:
                    self.injector.exit(tid, pending)
            else:
                pending = self.injector.entry(tid)
                self.inside[tid] = pending if pending.call.name is not None else None
        elif event in (PTRACE_EVENT_FORK, PTRACE_EVENT_VFORK, PTRACE_EVENT_CLONE):
            self._born(tid, pt.ptrace_geteventmsg(tid), _clone_flags(tid, event))
        elif event == PTRACE_EVENT_EXEC:
            self.injector.mm.execed(tid)
        elif event == 0 and sig not in (signal.SIGSTOP, signal.SIGTRAP):
            return sig  # an ordinary signal for the tracee: deliver it
        return 0

    def _born(self, parent: int, child: int, flags: int) -> None:
        """Its creator's event for a new tracee: a process gets `Injector.fork` while
        stopped at its first stop; then it runs."""
        if child not in self.held:
            _, status = os.waitpid(child, WALL)
            if not os.WIFSTOPPED(status):
                return  # killed before it ran
        self.held.discard(child)
        self.live.add(child)
        if flags & CLONE_THREAD:
            self.injector.mm.forked(parent, child, shares_mm=True)
        else:
            self.injector.fork(parent, child, shares_mm=bool(flags & CLONE_VM))
        _resume(child, 0)


def _clone_flags(tid: int, event: int) -> int:
    """The clone flags of the call a tracee is stopped in at its fork event."""
    if event == PTRACE_EVENT_FORK:
        return 0
    if event == PTRACE_EVENT_VFORK:
        return CLONE_VM | CLONE_VFORK
    regs = pt.ptrace_getregs(tid)
    if regs.orig_rax == SYS_CLONE3:  # struct clone_args: flags first
        return int(pt.ptrace_peekdata(tid, regs.rdi)) & U64
    return int(regs.rdi)


def _resume(tid: int, sig: int) -> None:
    """PTRACE_SYSCALL; a tracee may have died since its stop (ESRCH), which is fine."""
    try:
        pt.ptrace_syscall(tid, sig)
    except PtraceError as e:
        if e.errno != errno.ESRCH:
            raise
