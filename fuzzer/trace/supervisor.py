"""The supervisor: starts the executor, stops it around every program step, never leaks it.

A `Run` spawns one executor (posix_spawn: the fuzzing process itself is never
forked), feeds it the wire-encoded program and steps it with PTRACE_SYSCALL.
Each syscall-exit of a program call, and each touch checkpoint, is yielded as a
`Step` while the child is still stopped, so the caller can read /proc before
the child moves on. Stops are small values handled with `match`.

Every run has a wall-clock budget (SIGALRM); running out raises `Hang`.
Leaving the `with` block, for whatever reason, kills and reaps the child; the
executor also has PR_SET_PDEATHSIG and PTRACE_O_EXITKILL, so it dies with the
supervisor even if the supervisor is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType

from ptrace.binding import func as pt

from fuzzer.prog import Call, Program
from fuzzer.prog.syscalls import SIGBUS, SIGSEGV, SYS_EXIT_GROUP, SYS_GETPPID
from fuzzer.prog.wire import encode
from fuzzer.trace.inject import Injection
from fuzzer.trace.injector import Injector, Pending
from fuzzer.trace.ptrace_abi import (
    OFF_ORIG_RAX,
    OFF_RAX,
    PTRACE_O_EXITKILL,
    PTRACE_O_TRACESYSGOOD,
    SYSCALL_TRAP,
    WALL,
    signed,
)

EXIT_BAD_INPUT, EXIT_SETUP = 90, 91


class SupervisorError(RuntimeError):
    """The executor could not be started or misbehaved (not a kernel finding)."""


class Hang(Exception):
    """The child ran past its wall-clock budget; it is a finding of kind `hang`."""

    def __init__(self, step: int, budget: float) -> None:
        super().__init__(f"no progress within {budget:g} s at step {step}")
        self.step, self.budget = step, budget


@dataclass(frozen=True, slots=True)
class Step:
    """One program step, observed with the child stopped right after it."""

    index: int
    call: Call
    ret: int | None  # syscall return value, negative errno on failure; None for a touch
    signal: tuple[int, int] | None = None  # (signo, si_code) a touch raised


# Stops, as waitpid reports them.
@dataclass(frozen=True, slots=True)
class SyscallStop:
    pass


@dataclass(frozen=True, slots=True)
class SignalStop:
    signo: int


@dataclass(frozen=True, slots=True)
class Exited:
    code: int


@dataclass(frozen=True, slots=True)
class Killed:
    signo: int


Stop = SyscallStop | SignalStop | Exited | Killed


def _on_alarm(signo: int, frame: FrameType | None) -> None:
    raise _Alarm


class _Alarm(Exception):
    pass


class Run:
    """One executor process running one program; use as a context manager."""

    def __init__(
        self, executor: Path, program: Program, budget: float, injector: Injector | None = None
    ) -> None:
        self.executor, self.program, self.budget = executor, program, budget
        self.injector = injector
        self.pid = 0
        self.exit: Exited | Killed | None = None
        self._index = 0

    def __enter__(self) -> Run:
        rfd, wfd = os.pipe()
        try:
            self.pid = os.posix_spawn(
                str(self.executor),
                [str(self.executor)],
                {},
                file_actions=[(os.POSIX_SPAWN_DUP2, rfd, 0), (os.POSIX_SPAWN_CLOSE, wfd)],
            )
        finally:
            os.close(rfd)
        try:
            os.write(wfd, encode(self.program))
        finally:
            os.close(wfd)
        signal.signal(signal.SIGALRM, _on_alarm)
        try:
            signal.setitimer(signal.ITIMER_REAL, self.budget)
            match self._wait():
                case SignalStop(signal.SIGSTOP):
                    pt.ptrace_setoptions(self.pid, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL)
                case Exited(code) if code == EXIT_BAD_INPUT:
                    raise SupervisorError("the executor rejected the wire program")
                case other:
                    raise SupervisorError(f"the executor did not start: {other}")
        except _Alarm:
            self._reap()
            raise Hang(0, self.budget) from None
        except BaseException:
            self._reap()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._reap()
        if isinstance(exc, _Alarm):
            raise Hang(self._index, self.budget) from None

    def _reap(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        if self.pid and self.exit is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            while True:
                try:
                    _, status = os.waitpid(self.pid, WALL)
                except ChildProcessError:
                    break
                if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                    break
            self.exit = Killed(signal.SIGKILL)

    def _wait(self) -> Stop:
        try:
            _, status = os.waitpid(self.pid, WALL)
        except _Alarm:
            raise Hang(self._index, self.budget) from None
        if os.WIFSTOPPED(status):
            sig = os.WSTOPSIG(status)
            return SyscallStop() if sig == SYSCALL_TRAP else SignalStop(sig)
        if os.WIFEXITED(status):
            self.exit = Exited(os.WEXITSTATUS(status))
            return self.exit
        self.exit = Killed(os.WTERMSIG(status))
        return self.exit

    def steps(self) -> Iterator[Step]:
        """Yield each step with the child stopped just after it; ends when the child exits."""
        calls = self.program.calls
        entered: int | None = None  # nr of the syscall the child is inside, if any
        pending: Pending | None = None  # what the injector decided at the entry
        fault: tuple[int, int] | None = None
        resume_sig = 0
        while True:
            pt.ptrace_syscall(self.pid, resume_sig)
            resume_sig = 0
            stop = self._wait()
            i = self._index
            match stop:
                case SyscallStop() if entered is None:
                    entered = pt.ptrace_peekuser(self.pid, OFF_ORIG_RAX)
                    if (self.injector and i < len(calls) and not calls[i].syscall.is_pseudo
                            and entered == calls[i].syscall.nr):
                        pending = self.injector.entry(self.pid)
                    if i < len(calls) and calls[i].name == "touch" and entered == SYS_GETPPID:
                        self._index += 1
                        yield Step(i, calls[i], None, fault)
                        fault = None
                case SyscallStop():
                    nr, entered = entered, None
                    if i < len(calls) and nr == calls[i].syscall.nr and calls[i].name != "touch":
                        if self.injector and pending is not None:
                            ret = self.injector.exit(self.pid, pending)
                            pending = None
                        else:
                            ret = signed(pt.ptrace_peekuser(self.pid, OFF_RAX))
                        self._index += 1
                        yield Step(i, calls[i], ret)
                    elif nr == SYS_EXIT_GROUP:
                        continue
                case SignalStop(signo) if signo in (SIGSEGV, SIGBUS):
                    info = pt.ptrace_getsiginfo(self.pid)
                    fault = (signo, int(info.si_code))
                    resume_sig = signo
                case SignalStop(signo):
                    resume_sig = signo
                case Exited(code):
                    if code != 0 or self._index != len(calls):
                        raise SupervisorError(
                            f"executor exited with status {code} after {self._index} steps"
                        )
                    return
                case Killed(signo):
                    raise ChildCrash(self._index, signo)


class ChildCrash(Exception):
    """The executor died of a signal outside a touch."""

    def __init__(self, step: int, signo: int) -> None:
        super().__init__(f"executor killed by signal {signo} at step {step}")
        self.step, self.signo = step, signo


class Supervisor:
    """Runs programs one at a time, pinned to one CPU with its children."""

    def __init__(
        self,
        executor: Path,
        budget: float = 5.0,
        cpu: int | None = None,
        injections: list[Injection] | None = None,
    ) -> None:
        if os.geteuid() != 0:
            raise SupervisorError("mmfuzz must run as root (ptrace, pagemap PFNs, mlock)")
        self.executor, self.budget = executor, budget
        self.injector = Injector(injections) if injections else None
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    def run(self, program: Program) -> Run:
        return Run(self.executor, program, self.budget, self.injector)
