"""Fault injection: make the real kernel behave like a buggy one, at the syscall boundary.

An injection watches the traced process's memory syscalls. At a syscall's
entry stop it may rewrite arguments, replace the call with another, or skip
it; at the exit stop it may rewrite the result or run more syscalls in the
process before it goes on. The model is never told: the oracle must notice.

The API a plug-in is written against (`--inject path/to/file.py:NAME`):

    from fuzzer.inject import Injection, Rewrite, Replace, Skip, Then, Syscall

    class my_bug(Injection):
        description = "mlock2(MLOCK_ONFAULT) populates like mlock()"
        source = "hypothetical"

        def on_entry(self, call: Syscall) -> Rewrite | Replace | Skip | None:
            if call.name == "mlock2" and call.args["flags"] == 1:
                return Rewrite(flags=0)
            return None

        def on_exit(self, call: Syscall, result: int) -> int | Then | None:
            return None  # or a new result, or Then(extra calls..., result=...)

`call.name` is the syscall name ("mmap", "mlock2", ...; None for syscalls
outside the table), `call.args` its arguments by name as the kernel gets them
(absolute addresses), `call.pid` the process. NAME may name an Injection
subclass or instance, or a module-level CATALOGUE dict of them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar

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

    def on_entry(self, call: Syscall) -> EntryAction:
        return None

    def on_exit(self, call: Syscall, result: int) -> ExitAction:
        return None


def decode(pid: int, nr: int, raw: tuple[int, ...]) -> Syscall:
    spec = BY_NR.get(nr)
    if spec is None or spec.is_pseudo:
        return Syscall(pid, nr, None, {}, raw)
    args = {name: raw[i] for i, (name, _) in enumerate(spec.args)}
    return Syscall(pid, nr, spec.name, args, raw)


def syscall_nr(name: str) -> int:
    spec = SYSCALLS.get(name)
    if spec is None or spec.is_pseudo:
        raise InjectionError(f"unknown syscall {name!r} in an injection")
    return spec.nr


def arg_index(nr: int, name: str) -> int:
    spec = BY_NR[nr]
    for i, (arg, _) in enumerate(spec.args):
        if arg == name:
            return i
    raise InjectionError(f"{spec.name} has no argument {name!r}")
