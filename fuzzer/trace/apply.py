"""The ptrace side of injection: apply Injection decisions to a stopped process.

`entry` runs at a syscall-entry stop (registers can still change which call
the kernel runs and with what), `exit` at the matching exit stop (the result
register can change, and extra syscalls can be run by rewinding the
instruction pointer over the `syscall` instruction). Used by the program
supervisor and by `mmfuzz inject -- COMMAND` alike.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ptrace.binding import func as pt

from fuzzer.inject.api import (
    Extra,
    Injection,
    InjectionError,
    Replace,
    Rewrite,
    Skip,
    Syscall,
    Then,
    arg_index,
    decode,
    syscall_nr,
)
from fuzzer.inject.process import MmTracker, Process
from fuzzer.trace.ptrace_abi import (
    ARG_REGS,
    OFF_RAX,
    SYSCALL_INSN_LEN,
    SYSCALL_TRAP,
    U64,
    WALL,
    signed,
)


@dataclass(slots=True)
class Pending:
    """What `entry` decided, carried to the exit stop."""

    call: Syscall
    skip_result: int | None = None


THEN_ROUNDS = 16  # on_then may return another Then: at most this many in a row


class Injector:
    """Applies injections to the processes of one traced tree at a time (`begin`)."""

    def __init__(self, injections: list[Injection]) -> None:
        self.injections = injections
        self.mm = MmTracker()

    def begin(self, pid: int) -> None:
        """A new tree starts with this process (fresh after exec): forget the last one."""
        self.mm = MmTracker()
        self.mm.execed(pid)

    def _guard(self, inj: Injection, hook: str, *args: object) -> object:
        try:
            return getattr(inj, hook)(*args)
        except Exception as e:  # a plug-in's bug: one line, and the run is torn down
            raise InjectionError(
                f"injection {inj.name or type(inj).__name__} raised in {hook}: "
                f"{type(e).__name__}: {e}") from None

    def entry(self, pid: int) -> Pending:
        regs = pt.ptrace_getregs(pid)
        nr = regs.orig_rax
        call = decode(pid, nr, _args(regs), self.mm)
        pending = Pending(call)
        if call.name is None:
            return pending
        for inj in self.injections:
            match self._guard(inj, "on_entry", call):
                case None:
                    continue
                case Rewrite(args=new):
                    for name, value in new.items():
                        setattr(regs, ARG_REGS[arg_index(nr, name)], value & U64)
                case Replace(name=name, args=args):
                    regs.orig_rax = syscall_nr(name)
                    for reg, value in zip(ARG_REGS, args, strict=False):
                        setattr(regs, reg, value & U64)
                case Skip(result=result):
                    regs.orig_rax = U64  # syscall -1: the kernel runs nothing
                    pending.skip_result = result
                case other:
                    raise InjectionError(f"injection {inj.name}: on_entry returned {other!r}")
            pt.ptrace_setregs(pid, regs)
            break  # the first injection that acts decides
        return pending

    def exit(self, pid: int, pending: Pending) -> int:
        """The call's result after every injection had its say."""
        regs = pt.ptrace_getregs(pid)
        result = signed(regs.rax)
        self.mm.ran(pid, regs.orig_rax, _args(regs), result)  # what the kernel really ran
        changed = False
        if pending.skip_result is not None:
            result, changed = pending.skip_result, True
        if pending.call.name is None:
            return result
        for inj in self.injections:
            action = self._guard(inj, "on_exit", pending.call, result)
            if action is not None:
                result, changed = self._act(inj, "on_exit", pending.call, regs, action,
                                            result), True
        if changed:
            regs.rax = result & U64
            pt.ptrace_setregs(pid, regs)
        return result

    def fork(self, parent: int, child: int, shares_mm: bool) -> None:
        """A new process, stopped before its first instruction after fork's return."""
        self.mm.forked(parent, child, shares_mm)
        regs = pt.ptrace_getregs(child)
        call = decode(child, regs.orig_rax, _args(regs), self.mm)
        result, changed = signed(regs.rax), False
        for inj in self.injections:
            action = self._guard(inj, "on_fork", Process(parent, self.mm), call.process)
            if action is not None:
                if not isinstance(action, Then):
                    raise InjectionError(f"injection {inj.name}: on_fork returned {action!r}")
                result, changed = self._act(inj, "on_fork", call, regs, action, result), True
        if changed:
            regs.rax = result & U64
            pt.ptrace_setregs(child, regs)

    def _act(self, inj: Injection, hook: str, call: Syscall, regs: object, action: object,
             result: int) -> int:
        """Carry out what `hook` returned (not None); the call's result afterwards."""
        for _ in range(THEN_ROUNDS):
            match action:
                case bool():
                    break
                case int(value):
                    return value
                case Then(calls=calls, result=value):
                    results = tuple(self._extra(call.pid, regs, extra) for extra in calls)
                    if value is not None:
                        result = value
                    action, hook = self._guard(inj, "on_then", call, results), "on_then"
                    if action is None:
                        return result
                case _:
                    break
        else:
            raise InjectionError(f"injection {inj.name}: on_then returned a Then "
                                 f"{THEN_ROUNDS} times in a row")
        raise InjectionError(f"injection {inj.name}: {hook} returned {action!r}")

    def _extra(self, pid: int, regs: object, extra: Extra) -> int:
        nr = syscall_nr(extra.name)
        result = run_extra(pid, regs, nr, extra.args)
        self.mm.ran(pid, nr, (*extra.args, 0, 0, 0, 0, 0, 0)[:6], result)
        return result


def _args(regs: object) -> tuple[int, ...]:
    return tuple(getattr(regs, r) for r in ARG_REGS)


def run_extra(pid: int, saved: object, nr: int, args: tuple[int, ...]) -> int:
    """Run one more syscall in a process stopped at a syscall exit; registers are restored."""
    regs = pt.ptrace_getregs(pid)
    regs.rax = nr
    for reg, value in zip(ARG_REGS, (*args, 0, 0, 0, 0, 0, 0), strict=False):
        setattr(regs, reg, value & U64)
    regs.rip -= SYSCALL_INSN_LEN
    pt.ptrace_setregs(pid, regs)
    for _ in range(2):  # its entry stop, then its exit stop
        pt.ptrace_syscall(pid, 0)
        _, status = os.waitpid(pid, WALL)
        if not os.WIFSTOPPED(status) or os.WSTOPSIG(status) != SYSCALL_TRAP:
            raise InjectionError(f"process {pid} did not stop around an injected syscall")
    result = signed(pt.ptrace_peekuser(pid, OFF_RAX))
    pt.ptrace_setregs(pid, saved)
    return result
