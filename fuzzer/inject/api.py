"""Fault injection: make the real kernel behave like a buggy one, at the syscall boundary.

An injection watches the traced process's memory syscalls. At a syscall's
entry stop it may rewrite arguments, replace the call with another, or skip
it; at the exit stop it may rewrite the result or run more syscalls in the
process before it goes on, and see what they returned. It is told of every
new process before that process runs. The model is never told: the oracle must
notice.

The API a plug-in is written against (`--inject path/to/file.py:NAME`):

    from fuzzer.inject import Extra, Injection, Process, Rewrite, Replace, Skip, Then, Syscall

    class my_bug(Injection):
        description = "mlock2(MLOCK_ONFAULT) populates like mlock()"
        source = "hypothetical"

        def on_entry(self, call: Syscall) -> Rewrite | Replace | Skip | None:
            if call.name == "mlock2" and call.args["flags"] == 1:
                return Rewrite(flags=0)
            return None

        def on_exit(self, call: Syscall, result: int) -> int | Then | None:
            return None  # or a new result, or Then(extra calls..., result=...)

        def on_then(self, call: Syscall, results: tuple[int, ...]) -> int | Then | None:
            return None  # the extra calls ran: `results` is what each returned

        def on_fork(self, parent: Process, child: Process) -> Then | None:
            return None  # a new process, stopped at fork's return; Then runs calls in it

`call.name` is the syscall name ("mmap", "mlock2", ...; None for syscalls
outside the table), `call.args` its arguments by name as the kernel gets them
(absolute addresses), `call.pid` the process (a thread id: the one that made
the call), `call.raw` the six argument registers. NAME may name an Injection
subclass or instance, or a module-level CATALOGUE dict of them.

Hooks, and when they run (every injection in `--inject` order; at the entry
the first one that returns an action decides, at the exit each sees the result
the one before it left):

- `on_entry(call)`: `Rewrite(**args)` changes arguments, `Replace(name, args)`
  runs another syscall instead, `Skip(result)` runs nothing and returns
  `result` (negative errno for a failure), None lets the call run.
- `on_exit(call, result)`: an int replaces the result; `Then(calls, result)`
  runs each `Extra(name, args)` in the process, in order, then returns `result`
  (None keeps the current one).
- `on_then(call, results)`: after the calls of a Then this injection returned
  ran; `results` are their real results in order (negative errno on failure).
  It returns what `on_exit` returns: an int for the call's result (it wins
  over the Then's `result`), another Then to run more (its results come back
  here; at most 16 rounds), or None.
- `on_fork(parent, child)`: a new process (fork, vfork, or clone without
  CLONE_THREAD; not a thread), stopped before it runs its first instruction
  after fork returns 0 in it. A Then runs its calls in the child there, and
  its `result` replaces the child's return value; `on_then` gets the results
  with `call` the child's own return from fork/vfork/clone (`call.pid` is the
  child's pid; `call.name` is "fork" or None).

What an injection may read of a process, computed when asked (`call.process`,
and the `Process` views `on_fork` gets): `.pid`; `.lock_at(addr)`, the lock of
the VMA holding addr ("unlocked", "locked", "onfault"; None if unmapped, from
smaps VmFlags lo/lf); `.flags_at(addr)`, that VMA's smaps VmFlags as a set of
names ("sl" sealed, "gu" maybe guarded, ...; None if unmapped); `.vmas`, every
VMA as smaps shows it (fuzzer.snapshot Vma: start, end, flags, ...);
`.mcl_future`, the lock new mappings get after mlockall(MCL_FUTURE) (same
values; mm->def_flags is not in /proc, so the injector follows it from the
mlockall/munlockall calls the kernel really ran, after any
Rewrite/Replace/Skip, extra calls included: fresh in a fork child and after
exec, shared after vfork); `.memlock`, RLIMIT_MEMLOCK as (soft, hard) bytes
(resource.RLIM_INFINITY for none); `.cap_eff` and `.cap_ipc_lock`, the
effective capabilities; `.vmlck`, status VmLck in bytes; and on a call,
`call.pagemap(addr, pages)`, the raw pagemap words. Nothing here changes the
process: only the actions above do.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar

from fuzzer.inject.process import MmTracker, Process
from fuzzer.prog.syscalls import BY_NR, PAGE, SYSCALLS


class InjectionError(RuntimeError):
    """An injection could not be loaded, or raised while it ran (one readable line)."""


@dataclass(frozen=True, slots=True)
class Syscall:
    """What an injection sees of one syscall."""

    pid: int
    nr: int
    name: str | None
    args: dict[str, int]
    raw: tuple[int, ...]  # the six argument registers
    process: Process = field(repr=False, compare=False)  # a view of call.pid

    def pagemap(self, addr: int, pages: int) -> list[int]:
        """The process's raw pagemap words for `pages` pages from `addr` (bit 63: present)."""
        with open(f"/proc/{self.pid}/pagemap", "rb") as f:
            f.seek(addr // PAGE * 8)
            data = f.read(8 * pages)
        return list(struct.unpack(f"<{len(data) // 8}Q", data))


@dataclass(frozen=True, slots=True)
class Rewrite:
    """Entry: change some arguments (by name) and let the call run."""

    args: dict[str, int]

    def __init__(self, **args: int) -> None:
        object.__setattr__(self, "args", args)


@dataclass(frozen=True, slots=True)
class Replace:
    """Entry: run another syscall (by name) with these arguments instead."""

    name: str
    args: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Skip:
    """Entry: do not run the call; it returns `result` (negative errno for a failure)."""

    result: int = 0


@dataclass(frozen=True, slots=True)
class Extra:
    """One more syscall for `Then` to run."""

    name: str
    args: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Then:
    """Exit: run these syscalls in the process, then return `result` (None: keep it)."""

    calls: tuple[Extra, ...] = field(default_factory=tuple)
    result: int | None = None


EntryAction = Rewrite | Replace | Skip | None
ExitAction = int | Then | None


class Injection:
    """Base class of every injection, the catalogue's and plug-ins' alike."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    source: ClassVar[str] = ""
    deep: ClassVar[bool] = False  # needs several ordered calls to agree (bench detect --deep)
    # needs the huge arena (MMFUZZ_ARENA=huge): a 2 MiB region whole (docs/SEMANTICS.md §22)
    huge: ClassVar[bool] = False

    def on_entry(self, call: Syscall) -> EntryAction:
        return None

    def on_exit(self, call: Syscall, result: int) -> ExitAction:
        return None

    def on_then(self, call: Syscall, results: tuple[int, ...]) -> ExitAction:
        return None

    def on_fork(self, parent: Process, child: Process) -> Then | None:
        return None


def decode(pid: int, nr: int, raw: tuple[int, ...], mm: MmTracker) -> Syscall:
    spec = BY_NR.get(nr)
    if spec is None or spec.is_pseudo:
        return Syscall(pid, nr, None, {}, raw, Process(pid, mm))
    args = dict(zip(spec.register_names, raw, strict=False))
    return Syscall(pid, nr, spec.name, args, raw, Process(pid, mm))


def syscall_nr(name: str) -> int:
    spec = SYSCALLS.get(name)
    if spec is None or spec.is_pseudo:
        raise InjectionError(f"unknown syscall {name!r} in an injection")
    return spec.nr


def arg_index(nr: int, name: str) -> int:
    spec = BY_NR[nr]
    for i, arg in enumerate(spec.register_names):
        if arg == name:
            return i
    raise InjectionError(f"{spec.name} has no argument {name!r}")
