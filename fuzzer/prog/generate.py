"""Generation: bytes in, a valid but adversarial Program out.

Any byte string decodes to a program (an exhausted source reads as zeros), so
Atheris can mutate bytes freely. The source is anything with the
FuzzedDataProvider methods used here (`choices.py`, with the weights of every
choice): `atheris.FuzzedDataProvider` in a campaign, `ByteSource` in tests.

Arguments lean towards interesting states: most addresses land on pages the
program already mapped (a rough shadow of the arena is kept for that; the
model is not consulted, so `prog` stays below `model`), lengths straddle
mapping edges, and a few carry sub-page offsets, wrapping lengths or unknown
flag bits to reach the error paths.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from fuzzer.prog.choices import (
    CALLS,
    EXTRA_MAP_FLAGS,
    FILE_MAP_TYPES,
    FILE_OFFSETS,
    FILE_SIZES,
    MADV_CHOICES,
    MAP_TYPE_CHOICES,
    MCL_CHOICES,
    MEMLOCK_LIMITS,
    MLOCK2_FLAGS,
    MREMAP_CHOICES,
    MSEAL_FLAGS,
    PLACEMENT,
    PROTS,
    WRAPPING,
    ByteSource,
    Source,
    chance,
    pick,
)
from fuzzer.prog.program import (
    ARENA_PAGES,
    ARENA_SIZE,
    MAX_PROCS,
    WRAP_MIN,
    Call,
    Processes,
    Program,
    ProgramError,
    check_call,
    page_up,
)
from fuzzer.prog.syscalls import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    MAP_SHARED,
    PAGE,
    U64,
)

__all__ = ["MAX_GENERATED_CALLS", "ByteSource", "Source", "generate"]
MAX_GENERATED_CALLS = 24


def _may_map(call: Call) -> bool:
    """Whether an mmap is likely to map at its address (FIXED, a known type, an
    aligned offset, anonymous or with a descriptor): the shadow's guess."""
    flags, off, fd = call.arg("flags"), call.arg("off"), call.arg("fd")
    return bool(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) and flags & 0xF in (
        MAP_PRIVATE, MAP_SHARED) and off % PAGE == 0 and (
        bool(flags & MAP_ANONYMOUS) or fd >= 0)


class Generator:
    """Decodes calls from a Source, keeping a rough shadow of what the program mapped."""

    def __init__(
        self, src: Source, calls: frozenset[str] | None, covers: Callable[[Call], bool] | None
    ) -> None:
        self.src = src
        self.calls = [(w, n) for w, n in CALLS if calls is None or n in calls]
        self.covers = covers
        self.shadow = [False] * ARENA_PAGES  # roughly: which pages are mapped
        self.fds: list[int] = []  # roughly: which descriptors are open (memfds)
        self.size = 0  # the size the last ftruncate gave (to grow or shrink from)
        self.pending: list[Call] = []  # calls that come next whatever the bytes say

    def mapped(self) -> list[int]:
        return [i for i, m in enumerate(self.shadow) if m]

    def track(self, call: Call) -> None:
        if call.name == "memfd_create":
            self.fds.append(min(set(range(len(self.fds) + 1)) - set(self.fds)))
        elif call.name == "close" and call.args[0] in self.fds:
            self.fds.remove(call.args[0])
        if call.name not in ("mmap", "munmap"):
            return
        addr, length = call.args[0], call.args[1]
        if addr % PAGE or length == 0 or length >= WRAP_MIN:
            return
        if call.name == "mmap" and not _may_map(call):
            return
        for i in range(addr // PAGE, min(page_up(addr + length) // PAGE, ARENA_PAGES)):
            self.shadow[i] = call.name == "mmap"

    def page(self, near_mapped: int = 75) -> int:
        """A page index: usually (near_mapped %) one the program mapped, or a mapping's edge."""
        mapped = self.mapped()
        if mapped and chance(self.src, near_mapped):
            i = mapped[self.src.ConsumeIntInRange(0, len(mapped) - 1)]
            return max(0, i + pick(self.src, [(8, 0), (1, -1), (1, 1)]))
        return self.src.ConsumeIntInRange(0, ARENA_PAGES - 1)

    def addr(self, subpage: int, near_mapped: int = 75) -> int:
        base = min(self.page(near_mapped), ARENA_PAGES - 1) * PAGE
        if chance(self.src, subpage):
            base += self.src.ConsumeIntInRange(1, PAGE - 1)
        return base

    def length(self, addr: int) -> int:
        room = ARENA_SIZE - addr
        kind = pick(self.src, [(80, "pages"), (7, "bytes"), (6, "zero"), (3, "wrap"),
                                (4, "rest")])
        match kind:
            case "pages":
                n = self.src.ConsumeIntInRange(1, 8) * PAGE
            case "bytes":
                n = self.src.ConsumeIntInRange(1, 8 * PAGE)
            case "zero":
                return 0
            case "wrap":
                return WRAPPING[self.src.ConsumeIntInRange(0, len(WRAPPING) - 1)]
            case _:
                n = room
        return min(n, room)

    def call(self) -> Call:
        if self.pending:
            return self.pending.pop(0)
        return self.named(pick(self.src, self.calls))

    def named(self, name: str) -> Call:
        """A call of `name`, its arguments chosen from the shadow of what is mapped."""
        match name:
            case "mlockall":
                return Call("mlockall", (pick(self.src, MCL_CHOICES),))
            case "memfd_create":
                # mostly given a size at once: an empty memfd maps only SIGBUS
                if any(n == "ftruncate" for _, n in self.calls) and chance(self.src, 75):
                    fd = min(set(range(len(self.fds) + 1)) - set(self.fds))
                    self.pending.append(Call("ftruncate", (fd, self.file_size())))
                return Call(name, ())
            case "munlockall" | "drop_cap_ipc_lock" | "fork" | "exit":
                return Call(name, ())
            case "ftruncate":
                return Call(name, (self.fd(), self.file_size()))
            case "close":
                return Call(name, (self.fd(),))
            case "prlimit_memlock":
                return Call(name, (pick(self.src, MEMLOCK_LIMITS),))
            case "madvise":
                addr = self.addr(4)
                return Call("madvise", (addr, self.span(addr), pick(self.src, MADV_CHOICES)))
            case "mremap":
                return self.mremap()
            case "mmap":
                return self.mmap()
            case "touch":
                addr = self.addr(10, near_mapped=92)  # a touch of nothing says little
                return Call("touch", (addr, self.src.ConsumeIntInRange(0, 1)))
            case "mlock2":
                addr = self.addr(15)
                flags = pick(self.src, MLOCK2_FLAGS)
                return Call("mlock2", (addr, self.span(addr), flags))
            case "mseal":
                addr = self.addr(4)
                return Call(name, (addr, self.span(addr), pick(self.src, MSEAL_FLAGS)))
            case "mprotect":
                addr = self.addr(4)
                return Call("mprotect", (addr, self.span(addr), pick(self.src, PROTS)))
            case _:
                addr = self.addr(15 if name != "munmap" else 4)
                return Call(name, (addr, self.span(addr)))

    def span(self, addr: int) -> int:
        """A length for a call on a range: often one that ends inside the mapping the
        range starts in (or just past its end), else any length. A random length
        mostly runs into a hole, and then mlock, mprotect and madvise stop at ENOMEM
        before the semantics behind it are reached."""
        run = self.mapped_run(addr // PAGE)
        if run and chance(self.src, 60):
            n = self.src.ConsumeIntInRange(1, run + (1 if chance(self.src, 15) else 0)) \
                * PAGE - (addr % PAGE if chance(self.src, 90) else 0)
            return min(n, ARENA_SIZE - addr)  # the arena's end bounds every range
        return self.length(addr)

    def mapped_run(self, page: int) -> int:
        """How many mapped pages (by the shadow) follow `page`, itself included."""
        run = 0
        while page + run < ARENA_PAGES and self.shadow[page + run]:
            run += 1
        return run

    def mremap(self) -> Call:
        old = self.addr(3)
        run = self.mapped_run(old // PAGE)
        # Mostly a range inside one mapping, and mostly growth: a random range is
        # EFAULT so often that the paths behind the checks would rarely run.
        if run and chance(self.src, 70):
            old_len = min(self.src.ConsumeIntInRange(1, run) * PAGE, ARENA_SIZE - old)
        else:
            old_len = self.length(old)
        room = (ARENA_SIZE - old) // PAGE
        if old_len < WRAP_MIN and old_len // PAGE < room and chance(self.src, 60):
            new_len = self.src.ConsumeIntInRange(old_len // PAGE + 1, min(room, old_len // PAGE
                                                                           + 4)) * PAGE
        else:
            new_len = self.length(old)
        new = self.addr(2)
        if new_len < WRAP_MIN:
            new = min(new, ARENA_SIZE - new_len)
            new -= new % PAGE if chance(self.src, 95) else 0
        return Call("mremap", (old, old_len, new_len, pick(self.src, MREMAP_CHOICES), new))

    def mmap(self) -> Call:
        addr = self.addr(3)
        length = self.length(addr)
        if self.fds and chance(self.src, 55):
            return self.file_mmap(addr, length)
        flags = pick(self.src, MAP_TYPE_CHOICES) | pick(self.src, PLACEMENT)
        if chance(self.src, 98):
            flags |= MAP_ANONYMOUS
        for weight, bit in EXTRA_MAP_FLAGS:
            if chance(self.src, weight):
                flags |= bit
        off = 0 if chance(self.src, 96) else pick(self.src, [(1, 5), (1, PAGE), (1, 1 << 40)])
        return Call("mmap", (addr, length, pick(self.src, PROTS), flags, -1, off))

    def file_mmap(self, addr: int, length: int) -> Call:
        """A memfd mapped shared or private, mostly at a whole-page offset near 0."""
        flags = pick(self.src, FILE_MAP_TYPES) | pick(self.src, PLACEMENT)
        for weight, bit in EXTRA_MAP_FLAGS:
            if chance(self.src, weight):
                flags |= bit
        match pick(self.src, FILE_OFFSETS):
            case "zero":
                off = 0
            case "pages":
                off = self.src.ConsumeIntInRange(1, 4) * PAGE
            case "unaligned":
                off = self.src.ConsumeIntInRange(1, PAGE - 1)
            case "far":
                off = 1 << 40
            case _:
                off = -PAGE
        call = Call("mmap", (addr, length, pick(self.src, PROTS), flags, self.fd(), off))
        # Often touched at once: a file mapping's faults (fault-around, copy-on-write,
        # SIGBUS past the end) are what it is for, and a random touch seldom lands on it.
        pages = min(page_up(length), ARENA_SIZE - addr) // PAGE if length < WRAP_MIN else 0
        if flags & MAP_FIXED and pages and chance(self.src, 50):
            page = addr // PAGE + self.src.ConsumeIntInRange(0, pages - 1)
            self.pending.append(Call("touch", (page * PAGE, self.src.ConsumeIntInRange(0, 1))))
        return call

    def fd(self) -> int:
        """Mostly an open memfd; sometimes a number that may be closed or never opened."""
        if self.fds and chance(self.src, 92):
            return self.fds[self.src.ConsumeIntInRange(0, len(self.fds) - 1)]
        return pick(self.src, [(6, self.src.ConsumeIntInRange(0, 4)), (1, -1), (1, 1 << 32)])

    def file_size(self) -> int:
        """ftruncate's length: whole pages, a few bytes either side of a page edge,
        inside the first page, 0, the size again; rarely huge or negative."""
        pages = self.src.ConsumeIntInRange(1, 8)
        match pick(self.src, FILE_SIZES):
            case "pages":
                size = pages * PAGE
            case "over":
                size = pages * PAGE + self.src.ConsumeIntInRange(1, PAGE - 1)
            case "under":
                size = pages * PAGE - self.src.ConsumeIntInRange(1, PAGE - 1)
            case "zero":
                size = 0
            case "bytes":
                size = self.src.ConsumeIntInRange(1, PAGE - 1)
            case "same":
                size = self.size
            case "huge":
                size = 1 << 40
            case _:
                size = U64
        self.size = size if size < 1 << 63 else self.size
        return size

    def process(self, procs: Processes, last: int) -> int:
        """Which process makes the next call: mostly the one that made the last call
        (or the child a fork just made), sometimes another live one."""
        live = sorted(procs.live)
        if last in procs.live and (len(live) == 1 or chance(self.src, 60)):
            return last
        return live[self.src.ConsumeIntInRange(0, len(live) - 1)]

    def program(self) -> Program:
        count = self.src.ConsumeIntInRange(1, MAX_GENERATED_CALLS)
        calls: list[Call] = []
        procs, last = Processes(), 0
        for _ in range(count):
            if calls and self.src.remaining_bytes() == 0:
                break  # the bytes ran out: a shorter program, not a degenerate tail
            call = self.call()
            if self.covers is not None and not self.covers(call):
                continue  # e.g. advice the model does not predict: leave it out
            if call.name == "fork" and procs.forks + 1 >= MAX_PROCS:
                continue
            if call.name == "exit" and len(procs.live) < 2:
                continue  # the last process never exits: the program would end
            proc = self.process(procs, last)
            call = replace(call, proc=proc)
            try:
                check_call(call)  # whatever the arguments, never a range past the arena
            except ProgramError:
                continue
            procs.check(call)
            last = procs.forks if call.name == "fork" and chance(self.src, 50) else proc
            self.track(call)
            calls.append(call)
        if not calls:  # every call was left out: a program still has one
            calls.append(Call("touch", (0, 0)))
        return Program(tuple(calls))


def generate(
    src: Source,
    calls: frozenset[str] | None = None,
    covers: Callable[[Call], bool] | None = None,
) -> Program:
    """Decode a program from a FuzzedDataProvider-like source.

    `calls` limits the call names; `covers` (the model's) drops calls it cannot
    predict. Neither is imported here: `prog` stays below `model`.
    """
    return Generator(src, calls, covers).program()
