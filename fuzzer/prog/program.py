"""Call and Program, the arena they live in, the bounds every program keeps, and their
canonical text (`format_program`; `text.py` parses it back).

A program never names a raw address: addresses are byte offsets into the
arena, a fixed range far from the executor's own mappings. Lengths either keep
the range inside the arena or are so large that `addr + len` wraps around
2**64, which every call rejects (or, for mlock, reduces to an empty range):
that is what keeps a fuzzed munmap or madvise from touching the executor.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Collection
from dataclasses import dataclass

from fuzzer.prog.arena import Arena, bigger_hint, running
from fuzzer.prog.syscalls import (
    MADV_ADVICE,
    MAP_FLAGS,
    MAP_TYPE,
    MAP_TYPES,
    MCL_FLAGS,
    MLOCK_FLAGS,
    MREMAP_FLAGS,
    PAGE,
    PROT_FLAGS,
    SYSCALLS,
    TOUCH_MODES,
    U64,
    Kind,
    Syscall,
)

# The arena of the kernel this process runs on (fuzzer/prog/arena.py says why it is
# chosen here, once), and the constants the model and the printer bind from it.
ARENA: Arena = running()
ARENA_BASE = ARENA.base
ARENA_PAGES = ARENA.pages
ARENA_SIZE = ARENA.size
# A length at least this large makes addr + len wrap for every arena address.
WRAP_MIN = ARENA.wrap_min
MAX_CALLS = 128
MAX_PROCS = 4  # p0 and at most three forks
FORBIDDEN_ADVICE = {100: "MADV_HWPOISON", 101: "MADV_SOFT_OFFLINE"}


class ProgramError(ValueError):
    """A program that breaks the rules of the text or of the arena."""


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[int, ...]
    proc: int = 0

    @property
    def syscall(self) -> Syscall:
        return SYSCALLS[self.name]

    def arg(self, name: str) -> int:
        for (arg_name, _), value in zip(self.syscall.args, self.args, strict=True):
            if arg_name == name:
                return value
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class Program:
    calls: tuple[Call, ...]

    def __len__(self) -> int:
        return len(self.calls)

    def text(self) -> str:
        """The canonical program text (`fuzzer/prog/text.py` parses it back)."""
        return format_program(self)

    @property
    def hash(self) -> str:
        """Stable identity of the program (its canonical text)."""
        return text_hash(self.text())


def text_hash(text: str) -> str:
    """`Program.hash` of the program whose canonical text is `text` (for a caller that
    has the text already)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def page_up(n: int) -> int:
    return (n + PAGE - 1) // PAGE * PAGE


def lowest_free_fd(used: Collection[int]) -> int:
    """The descriptor the kernel hands out next (alloc_fd: the lowest free number); the
    executor starts with none open, so a program's files are numbered from 0."""
    return min(set(range(len(used) + 1)) - set(used))


def check_call(call: Call) -> None:
    """Raise ProgramError unless the call stays inside the arena."""
    spec = SYSCALLS.get(call.name)
    if spec is None:
        raise ProgramError(f"unknown call {call.name!r}")
    if len(call.args) != len(spec.args):
        raise ProgramError(f"{call.name} takes {len(spec.args)} arguments, got {len(call.args)}")
    for (name, kind), value in zip(spec.args, call.args, strict=True):
        if kind == Kind.ADDR and not 0 <= value <= ARENA_SIZE:
            raise ProgramError(f"{name} offset {value:#x} is outside the {ARENA_PAGES}-page arena"
                               + bigger_hint(ARENA_PAGES))
        if kind == Kind.LEN and not 0 <= value <= U64:
            raise ProgramError(f"{name} {value} is not a 64-bit length")
        if kind == Kind.INT and not -(1 << 63) <= value <= U64:
            raise ProgramError(f"{name} {value} does not fit in 64 bits")
        if kind == Kind.PROC and not 0 <= value < MAX_PROCS:
            raise ProgramError(f"{name} p{value}: a program has at most {MAX_PROCS} processes")
        if kind not in (Kind.ADDR, Kind.LEN, Kind.INT) and not 0 <= value <= U64:
            raise ProgramError(f"{name} {value:#x} is not a 64-bit value")
        if kind == Kind.MADV and value & 0xFFFF_FFFF in FORBIDDEN_ADVICE:  # an int to the kernel
            name = FORBIDDEN_ADVICE[value & 0xFFFF_FFFF]
            raise ProgramError(f"advice {value} ({name}) is refused: "
                               "it retires physical pages of the machine")
    if call.name == "touch" and call.args[0] >= ARENA_SIZE:
        raise ProgramError("touch address must be inside the arena")
    if call.name == "process_madvise":
        _check_process_madvise(call)
    for ai, li in spec.ranges:
        addr, length = call.args[ai], call.args[li]
        if length < WRAP_MIN and page_up(addr + length) > ARENA_SIZE:
            page, off = divmod(addr, PAGE)
            where = f"@{page}+{off}" if off else f"@{page}"
            raise ProgramError(
                f"{call.name}: the range of {length} bytes from {where} runs past the arena end"
                f" (lengths either stay inside or are >= {WRAP_MIN:#x} and wrap)"
                + bigger_hint(ARENA_PAGES)
            )
    if not 0 <= call.proc < MAX_PROCS:
        raise ProgramError(f"process p{call.proc}: a program has at most {MAX_PROCS} processes")


def _check_process_madvise(call: Call) -> None:
    """process_madvise's own bound: vlen is a count the executor passes in 32 bits.
    (Its lengths are safe as any range call's: one that wraps is at least 2**63, which
    the kernel refuses as a negative ssize_t before it looks at any iovec; a length
    between the arena's end and that, which a single iovec would have capped at
    MAX_RW_COUNT rather than refused, is not a length a program can give.)"""
    vlen = call.arg("vlen")
    if not 0 <= vlen <= 0xFFFF_FFFF:
        raise ProgramError(f"process_madvise: vlen {vlen} is not a 32-bit count")


class Processes:
    """Which processes exist as a program goes: p0 from the start, the n-th fork
    creates pn, exit ends the process that calls it. Which pids each process knows
    (process_madvise names a process by the pid its pidfd is opened on): its own,
    those of the children it forked, and what its parent knew when it forked it."""

    def __init__(self) -> None:
        self.live = {0}
        self.forks = 0
        self.known: dict[int, set[int]] = {0: {0}}

    def check(self, call: Call) -> None:
        """Raise ProgramError unless `call` is made by a live process; then apply it."""
        if call.proc not in self.live:
            made = "has exited" if call.proc <= self.forks else "is not forked yet"
            raise ProgramError(f"p{call.proc} {made} (the n-th fork() creates pn)")
        if call.name == "process_madvise":
            target = call.arg("target")
            if target not in self.live:
                made = "has exited" if target <= self.forks else "is not forked yet"
                raise ProgramError(f"process_madvise: p{target} {made}")
            if target not in self.known[call.proc]:
                raise ProgramError(
                    f"process_madvise: p{call.proc} does not know the pid of p{target} (a "
                    "process knows its own, its children's and what its parent knew at fork)")
        if call.name == "fork":
            if self.forks + 1 >= MAX_PROCS:
                raise ProgramError(f"a program has at most {MAX_PROCS} processes")
            self.forks += 1
            self.live.add(self.forks)
            self.known[call.proc].add(self.forks)
            self.known[self.forks] = set(self.known[call.proc])
        elif call.name == "exit":
            self.live.discard(call.proc)


def check_program(program: Program) -> None:
    if len(program.calls) > MAX_CALLS:
        raise ProgramError(f"program has {len(program.calls)} calls, at most {MAX_CALLS}")
    procs = Processes()
    for call in program.calls:
        check_call(call)
        procs.check(call)


# ---------------------------------------------------------------- printing

_FLAG_NAMES = {Kind.PROT: PROT_FLAGS, Kind.MLOCK: MLOCK_FLAGS, Kind.MCL: MCL_FLAGS,
               Kind.MREMAP: MREMAP_FLAGS}


def format_flags(kind: Kind, value: int) -> str:
    parts: list[str] = []
    rest = value
    if kind == Kind.MAP:
        mtype = value & MAP_TYPE
        for name, bit in MAP_TYPES.items():
            if mtype == bit:
                parts.append(name)
                rest &= ~MAP_TYPE
        table = MAP_FLAGS
    else:
        table = _FLAG_NAMES[kind]
    for name, bit in table.items():
        if rest & bit:
            parts.append(name)
            rest &= ~bit
    if rest:
        parts.append(f"{rest:#x}")
    if not parts:
        return "PROT_NONE" if kind == Kind.PROT else "0"
    return "|".join(parts)


def format_arg(kind: Kind, value: int) -> str:
    match kind:
        case Kind.ADDR:
            page, off = divmod(value, PAGE)
            return f"@{page}+{off}" if off else f"@{page}"
        case Kind.LEN:
            if value >= WRAP_MIN:
                return f"{value:#x}"
            page, off = divmod(value, PAGE)
            if page == 0:
                return str(off)
            return f"{page}p+{off}" if off else f"{page}p"
        case Kind.TOUCH:
            return next(n for n, v in TOUCH_MODES.items() if v == value)
        case Kind.INT:
            return str(value)
        case Kind.PROC:
            return f"p{value}"
        case Kind.MADV:
            return next((n for n, v in MADV_ADVICE.items() if v == value), str(value))
        case _:
            return format_flags(kind, value)


TEXTS_CACHED = 8192  # about 200 bytes each


@functools.lru_cache(maxsize=TEXTS_CACHED)
def format_call(call: Call) -> str:
    """The call's canonical text. A campaign formats the programs it keeps and its
    mutants, which share most of their calls: a call's text is kept, up to
    TEXTS_CACHED calls."""
    kinds = (kind for _, kind in call.syscall.args)
    args = ", ".join(format_arg(kind, value) for kind, value in zip(kinds, call.args, strict=True))
    prefix = f"p{call.proc}: " if call.proc else ""
    return f"{prefix}{call.name}({args})"


def format_program(program: Program) -> str:
    return "".join(format_call(c) + "\n" for c in program.calls)
