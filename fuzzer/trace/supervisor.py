"""The supervisor: starts the executor, stops it around every program step, never leaks it.

A `Run` has the Supervisor's fork server (trace/server.py) fork one executor child,
traced from birth, and steps it: without injections once a call (PTRACE_CONT to the
getppid() marker the executor makes after each call, a seccomp stop carrying the
result); with them, PTRACE_SYSCALL, the entry and exit stop of every call, where the
injector acts. Either way each call is yielded as the same `Step` (the call, its
result or signal) while the child is still stopped, so the caller can read /proc.

Every run has a wall-clock budget (SIGALRM); running out raises `Hang`. Leaving the
`with` block, for whatever reason, kills the run's processes and collects them as
their tracer; the server reaps them before the run returns. PTRACE_O_EXITKILL and
the server's PR_SET_PDEATHSIG end them all if the supervisor is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from ptrace.binding import func as pt

from fuzzer.inject import Injection
from fuzzer.prog import Program
from fuzzer.prog.step import Step
from fuzzer.prog.syscalls import SIGBUS, SIGSEGV, SYS_GETPPID
from fuzzer.prog.wire import encode
from fuzzer.trace import alarm, ptrace_calls
from fuzzer.trace.apply import Injector, Pending
from fuzzer.trace.ptrace_abi import (
    OFF_ORIG_RAX,
    OFF_RAX,
    OFF_RDI,
    PTRACE_EVENT_FORK,
    PTRACE_O_TRACESECCOMP,
    SYSCALL_TRAP,
    WALL,
    is_marker,
    signed,
)
from fuzzer.trace.server import FLAG_MARKERS, OPTIONS, ForkServer, ServerError

EXIT_SETUP = 91
START_TIMEOUT = 2.0  # seconds the fork server may take to fork a program's child


# Calls whose step ends at the executor's getppid() checkpoint after them, also when
# stepping by PTRACE_SYSCALL: a touch (no syscall of its own), and process_madvise,
# whose pidfd the executor closes after the call (that close() is not the program's).
CHECKPOINTED = frozenset({"touch", "process_madvise"})

class SupervisorError(RuntimeError):
    """The executor could not be started or misbehaved (not a kernel finding)."""


class Hang(Exception):
    """The child ran past its wall-clock budget; it is a finding of kind `hang`."""

    def __init__(self, step: int, budget: float) -> None:
        super().__init__(f"no progress within {budget:g} s at step {step}")
        self.step, self.budget = step, budget


# Stops, as waitpid reports them.
@dataclass(frozen=True, slots=True)
class SyscallStop:
    pass


@dataclass(frozen=True, slots=True)
class SignalStop:
    signo: int


@dataclass(frozen=True, slots=True)
class EventStop:
    event: int  # PTRACE_EVENT_*


@dataclass(frozen=True, slots=True)
class Exited:
    code: int


@dataclass(frozen=True, slots=True)
class Killed:
    signo: int


Stop = SyscallStop | SignalStop | EventStop | Exited | Killed


@dataclass(slots=True)
class _Proc:
    """One process of the program as the supervisor steps it."""

    pid: int
    entered: int | None = None  # nr of the syscall it is inside, if any
    pending: Pending | None = None  # what the injector decided at the entry
    fault: tuple[int, int] | None = None  # the signal its last touch raised
    resume_sig: int = 0


class Run:
    """One executor running one program, with the processes it forks; a context manager.

    Processes run one at a time: for each call the supervisor resumes only the
    process that makes it, until the step is done, and every other process
    stays stopped. Between two of its calls a process makes no syscall and
    touches no memory, so the order is the program's, exactly. The n-th fork
    creates process n (`pids`); it is first seen stopped before it returns
    from fork, and runs when its first call comes. After the last call each
    remaining process runs to its end, in order.
    """

    def __init__(
        self, server: ForkServer, program: Program, budget: float,
        injector: Injector | None = None, markers: bool | None = None,
    ) -> None:
        self.server, self.program, self.budget = server, program, budget
        self.injector = injector
        # One stop a call (the executor's markers) unless an injection needs the
        # entry and exit stops of the calls it watches (PTRACE_SYSCALL).
        self.markers = injector is None if markers is None else markers
        self.pid = 0  # process 0, the executor started
        self.pids: dict[int, int] = {}  # process number -> pid, while it lives
        self.exit: Exited | Killed | None = None  # how process 0 ended
        self._index = 0
        self._procs: dict[int, _Proc] = {}
        self._seen: list[int] = []  # every pid, in creation order, until reaped

    def __enter__(self) -> Run:
        self.server.ready()  # a first or fresh server is not the program's time
        try:
            # The fork is the server's, on the server's own clock (as a spawn was not
            # the program's); the budget starts with the child.
            alarm.arm(START_TIMEOUT)
            try:
                self.pid = self.server.start(encode(self.program),
                                             FLAG_MARKERS if self.markers else 0)
            except alarm.Expired:
                raise ServerError(f"the fork server did not fork within {START_TIMEOUT:g} s") \
                    from None
            self._seen.append(self.pid)
            alarm.arm(self.budget)
            match self._wait(self.pid):
                case SignalStop(signal.SIGSTOP):
                    if not self.markers:  # getppid() is a checkpoint, not a seccomp stop
                        pt.ptrace_setoptions(self.pid, OPTIONS & ~PTRACE_O_TRACESECCOMP)
                    if self.injector:
                        self.injector.begin(self.pid)
                case other:
                    raise SupervisorError(f"the executor did not start: {other}")
        except alarm.Expired:
            self._reap()
            raise Hang(0, self.budget) from None
        except ServerError as e:
            self._reap()
            raise SupervisorError(str(e)) from None
        except BaseException:
            self._reap()
            raise
        self._procs[0] = _Proc(self.pid)
        self.pids[0] = self.pid
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._reap()
        if isinstance(exc, alarm.Expired):
            raise Hang(self._index, self.budget) from None

    def _reap(self) -> None:
        """Kill the processes still running and reap every process of the run, in the
        order they were created: once its parent is gone a child is ours to reap (the
        supervisor is a child subreaper). Only pids never seen to exit are killed."""
        alarm.disarm()
        running = [p.pid for p in self._procs.values()]
        child = self.server.settle()  # even if it was forked as the run was left
        if child and child not in self._seen:
            self.pid = self.pid or child
            self._seen.append(child)
            running.append(child)
        if self.pid and self.exit is None and self.pid not in running:
            running.append(self.pid)
        for pid in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in self._seen:
            while True:
                try:
                    _, status = os.waitpid(pid, WALL)
                except ChildProcessError:
                    break
                if pid == self.pid and self.exit is None and (
                        os.WIFEXITED(status) or os.WIFSIGNALED(status)):
                    self.exit = Killed(signal.SIGKILL)
        self._seen.clear()
        self._procs.clear()
        self.pids.clear()
        self.server.done()  # the server has reaped them all: nothing of the run is left

    def _wait(self, pid: int) -> Stop:
        try:
            _, status = alarm.waitpid(pid, WALL)
        except alarm.Expired:
            raise Hang(self._index, self.budget) from None
        return self._stop(pid, status)

    def _stop(self, pid: int, status: int) -> Stop:
        """What a waitpid status of process `pid` says (and how process 0 ended)."""
        if os.WIFSTOPPED(status):
            sig = os.WSTOPSIG(status)
            if sig == signal.SIGTRAP and status >> 16:
                return EventStop(status >> 16)
            return SyscallStop() if sig == SYSCALL_TRAP else SignalStop(sig)
        stop: Exited | Killed = (Exited(os.WEXITSTATUS(status)) if os.WIFEXITED(status)
                                 else Killed(os.WTERMSIG(status)))
        if pid == self.pid:
            self.exit = stop
        return stop

    def steps(self) -> Iterator[Step]:
        """Yield each step with its process stopped just after it."""
        forks = 0
        for i, call in enumerate(self.program.calls):
            proc = self._procs.get(call.proc)
            if proc is None:
                raise SupervisorError(f"p{call.proc} is not running at step {i}")
            if call.name == "fork":
                forks += 1
            yield self._advance(call.proc, proc, i, forks)
        for n, proc in sorted(self._procs.items()):
            self._finish(n, proc)

    def _advance(self, n: int, proc: _Proc, i: int, forks: int) -> Step:
        """Resume process n until it has made call i."""
        if self.markers:
            return self._marked(n, proc, i, forks)
        call = self.program.calls[i]
        nr = call.syscall.nr
        while True:
            self._in_budget()
            ptrace_calls.syscall(proc.pid, proc.resume_sig)
            proc.resume_sig = 0
            match self._wait(proc.pid):
                case SyscallStop() if proc.entered is None:
                    proc.entered = ptrace_calls.peekuser(proc.pid, OFF_ORIG_RAX)
                    if self.injector and not call.syscall.is_pseudo and proc.entered == nr:
                        proc.pending = self.injector.entry(proc.pid)
                    if call.name in CHECKPOINTED and proc.entered == SYS_GETPPID:
                        # the executor's checkpoint after the call: a touch has no
                        # result, process_madvise's is the checkpoint's argument
                        ret = (None if call.name == "touch"
                               else signed(ptrace_calls.peekuser(proc.pid, OFF_RDI)))
                        return self._made(proc, i, ret)
                case SyscallStop():
                    entered, proc.entered = proc.entered, None
                    if entered == nr and call.name != "touch":
                        if self.injector and proc.pending is not None:
                            ret = self.injector.exit(proc.pid, proc.pending)
                            proc.pending = None
                        else:
                            ret = signed(ptrace_calls.peekuser(proc.pid, OFF_RAX))
                        if call.name not in CHECKPOINTED:
                            return self._made(proc, i, ret)
                case stop:
                    if (step := self._between(n, proc, i, forks, stop)) is not None:
                        return step

    def _marked(self, n: int, proc: _Proc, i: int, forks: int) -> Step:
        """Marker mode: resume with PTRACE_CONT until the executor's getppid() marker
        after call i (its seccomp stop); the call's result is the marker's argument."""
        while True:
            self._in_budget()
            try:
                status, rdi = alarm.cont_wait(proc.pid, proc.resume_sig)
            except alarm.Expired:
                raise Hang(self._index, self.budget) from None
            proc.resume_sig = 0
            if is_marker(status):
                if self.program.calls[i].name == "touch":
                    return self._made(proc, i, None)
                return self._made(proc, i, signed(rdi))
            stop = self._stop(proc.pid, status)
            if (step := self._between(n, proc, i, forks, stop)) is not None:
                return step

    def _made(self, proc: _Proc, i: int, ret: int | None) -> Step:
        """Call i is made (ret: its result; None for a touch, with the signal it raised)."""
        self._index = i + 1
        call = self.program.calls[i]
        if call.name == "touch":
            fault, proc.fault = proc.fault, None
            return Step(i, call, None, fault)
        return Step(i, call, ret)

    def _between(self, n: int, proc: _Proc, i: int, forks: int, stop: Stop) -> Step | None:
        """A stop on the way to call i that is not the call itself, in either mode:
        a fork's event, a signal, the process's end. The step if it is the call (exit)."""
        call = self.program.calls[i]
        match stop:
            case EventStop(event) if event == PTRACE_EVENT_FORK:
                child = pt.ptrace_geteventmsg(proc.pid)
                self._adopt(forks, child)
                if self.injector:
                    self.injector.fork(proc.pid, child, shares_mm=False)
            case SignalStop(signo) if signo in (SIGSEGV, SIGBUS):
                info = pt.ptrace_getsiginfo(proc.pid)
                proc.fault = (signo, int(info.si_code))
                proc.resume_sig = signo
            case SignalStop(signo):
                proc.resume_sig = signo
            case Exited(code) if call.name == "exit" and code == 0:
                self._gone(n)
                self._index = i + 1
                return Step(i, call, None)
            case Exited(code):
                raise SupervisorError(
                    f"p{n} exited with status {code} after {self._index} steps")
            case Killed(signo):
                raise ChildCrash(self._index, signo)
        return None  # another event or syscall stop: keep going

    def _adopt(self, n: int, pid: int) -> None:
        """The child of a fork, traced from birth: wait for its first stop."""
        self._seen.append(pid)
        try:
            match self._wait(pid):
                case SignalStop(signal.SIGSTOP):
                    self._procs[n] = _Proc(pid)
                    self.pids[n] = pid
                case other:
                    raise SupervisorError(f"the child p{n} did not start: {other}")
        except BaseException:
            # Not one of _procs, so _reap would not kill it, and a stopped child is
            # never waited for to its end.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            raise

    def _in_budget(self) -> None:
        """Before a process is resumed: a budget that ran out while the supervisor read
        /proc is a hang here, before the process makes another call (a fork's child
        would be one no list holds)."""
        try:
            alarm.check()
        except alarm.Expired:
            raise Hang(self._index, self.budget) from None

    def _finish(self, n: int, proc: _Proc) -> None:
        """After the last call: let process n run to its exit_group(0)."""
        resume = ptrace_calls.cont if self.markers else ptrace_calls.syscall
        while True:
            self._in_budget()
            resume(proc.pid, proc.resume_sig)
            proc.resume_sig = 0
            match self._wait(proc.pid):
                case Exited(0):
                    self._gone(n)
                    return
                case Exited(code):
                    raise SupervisorError(
                        f"p{n} exited with status {code} after {self._index} steps")
                case Killed(signo):
                    raise ChildCrash(self._index, signo)
                case SignalStop(signo) if signo != signal.SIGSTOP:
                    proc.resume_sig = signo
                case _:
                    pass

    def _gone(self, n: int) -> None:
        del self._procs[n]
        del self.pids[n]


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
        self.markers: bool | None = None  # None: markers unless there are injections
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        # large anonymous folios where the model follows them (docs/SEMANTICS.md §19),
        # and tmpfile's files where it follows them (§21).
        # Imported here: the probe imports the model, which a worker's Atheris must be
        # the first to import (tests/test_campaign_options.py).
        from fuzzer.observe.probe import files_dir, probe

        self.server = ForkServer(executor, thp_advised=probe().thp_except_advised,
                                 files=files_dir())  # "" where disk_ra_pages is 0
        weakref.finalize(self, self.server.close)  # and at exit: the server is killed

    def run(self, program: Program) -> Run:
        if self.markers and self.injector:
            raise SupervisorError("injections need PTRACE_SYSCALL stepping, not markers")
        return Run(self.server, program, self.budget, self.injector, self.markers)

    def close(self) -> None:
        """Kill and reap the fork server (the next run starts a fresh one)."""
        self.server.close()

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
