"""Generation: bytes in, a valid but adversarial Program out.

Any byte string decodes to a program (an exhausted source reads as zeros), so
Atheris can mutate bytes freely. The source is anything with the
FuzzedDataProvider methods used here (`choices.py`, with the weights of every
choice): `atheris.FuzzedDataProvider` in a campaign, `ByteSource` in tests.

Arguments lean towards interesting states, from a rough view of what each
process mapped (`View`: per page, which mapping; its memfds; followed through
mmap, munmap, mremap, fork and exit, and split where a range call may split a
mapping; the model is not consulted, so `prog` stays below `model`):

- a call on a mapping, in a process with nothing mapped, is mostly an mmap
  instead (ftruncate and close with no file open: a memfd_create or a tmpfile);
- most addresses are a mapping's first page or inside one, a few just before
  or after one; most lengths end inside the mapping, at its end or at the end
  of the mapped pages after it (so most mm calls succeed: a random range mostly
  meets a hole, ENOMEM, before the semantics behind it);
- mremap mostly keeps DONTUNMAP's size, moves FIXED to free pages and grows in
  place into free pages;
- a controlled share stays invalid to keep every error path reached: random
  pages and lengths, ranges a page past the mapped ones, sub-page offsets,
  wrapping lengths, unknown flag bits (`choices.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from fuzzer.prog.arena import HUGE_PAGES, PMD_PAGES
from fuzzer.prog.choices import (
    CALLS,
    EXTRA_MAP_FLAGS,
    FILE_MAP_TYPES,
    FILE_OFFSETS,
    FILE_READ_ADVICE,
    FILE_SIZES,
    MADV_CHOICES,
    MADV_GUARDED_SHARED,
    MADV_SHARED,
    MAP_TYPE_CHOICES,
    MCL_CHOICES,
    MEMLOCK_LIMITS,
    MLOCK2_FLAGS,
    MREMAP_CHOICES,
    MSEAL_FLAGS,
    PLACEMENT,
    PMADV_FLAGS,
    PMADV_OTHER,
    PMADV_REMOTE,
    PMADV_VLEN,
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
    lowest_free_fd,
    page_up,
)
from fuzzer.prog.syscalls import (
    MADV_GUARD_INSTALL,
    MADV_GUARD_REMOVE,
    MADV_HUGEPAGE,
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    MAP_SHARED,
    MAP_TYPE,
    MREMAP_DONTUNMAP,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PAGE,
    PROT_READ,
    PROT_WRITE,
    U64,
)

__all__ = ["MAX_GENERATED_CALLS", "ByteSource", "Source", "generate"]
MAX_GENERATED_CALLS = 24
MTHP_PAGES = 16  # a 64 KiB mTHP block: what the generator leaves room for (SEMANTICS §19)
MTHP_MIN_PAGES = 4  # the smallest anonymous mTHP block (16 KiB, order 2)
# The huge arena (MMFUZZ_ARENA=huge) holds 2 MiB regions: lengths that cover one, and
# pages that start one, come often there (docs/SEMANTICS.md §22). The 64-page arena's
# choices are unchanged, so its inputs decode to the programs they always did.
HUGE = ARENA_PAGES >= HUGE_PAGES
LENGTHS = [(72, "pages"), (7, "bytes"), (6, "zero"), (3, "wrap"), (4, "rest"), (8, "block")]
LENGTHS_HUGE = [*LENGTHS, (20, "pmd")]
LENGTHS_ALIGNED = [*LENGTHS, (60, "pmd")]  # from a 2 MiB-aligned page: a third cover one


def _arena_pages(addr: int, length: int) -> range:
    """The arena pages a range starting at `addr` covers (what lies past the arena's end
    left out)."""
    return range(addr // PAGE, min(page_up(addr + length) // PAGE, ARENA_PAGES))


def _may_map(call: Call, shadow: list[int]) -> bool:
    """Whether an mmap is likely to map at its address (a known type, an aligned
    offset, anonymous or with a descriptor; FIXED, or FIXED_NOREPLACE or a hint
    on free pages, which the kernel then takes as it is): the shadow's guess."""
    flags, off, fd = call.arg("flags"), call.arg("off"), call.arg("fd")
    if not (flags & 0xF in (MAP_PRIVATE, MAP_SHARED) and off % PAGE == 0 and (
            bool(flags & MAP_ANONYMOUS) or fd >= 0)):
        return False
    addr, length = call.arg("addr"), call.arg("len")
    pages = _arena_pages(addr, length)
    if flags & MAP_FIXED_NOREPLACE:
        return not any(shadow[i] for i in pages)  # else EEXIST
    if flags & MAP_FIXED:
        return True
    return page_up(addr + length) <= ARENA_SIZE and not any(shadow[i] for i in pages)


@dataclass(slots=True)
class View:
    """One process as the generator guesses it: per arena page the mapping it is
    part of (0: unmapped; a new number for every mmap, and for the part of a
    mapping a range call may have split off), and its open memfds; which mappings
    are shared, and the pages a guard install was aimed at (madvise's advice
    follows them: `Generator.advice`)."""

    pages: list[int] = field(default_factory=lambda: [0] * ARENA_PAGES)
    fds: list[int] = field(default_factory=list)
    shared: set[int] = field(default_factory=set)  # mapping numbers
    guarded: set[int] = field(default_factory=set)  # arena pages

    def copy(self) -> View:
        return View(list(self.pages), list(self.fds), set(self.shared), set(self.guarded))


KNOWN_MREMAP = MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP
# Calls that act on a mapping: with nothing mapped, mostly an mmap comes instead.
NEEDS_MAPPING = frozenset({"touch", "mlock", "mlock2", "munlock", "mprotect", "madvise",
                           "mremap", "mseal", "munmap", "process_madvise"})
NEEDS_FD = frozenset({"ftruncate", "close"})  # ... and with no file open, a memfd_create
FILE_CREATORS = ("memfd_create", "tmpfile")  # (or a tmpfile: a file on disk, §21)
# Range calls that may split a mapping where their range starts or ends.
SPLITS = frozenset({"mprotect", "mlock", "mlock2", "munlock", "madvise", "mseal"})


class Generator:
    """Decodes calls from a Source, keeping a rough shadow of what each process mapped."""

    def __init__(
        self, src: Source, calls: frozenset[str] | None, covers: Callable[[Call], bool] | None
    ) -> None:
        self.src = src
        self.calls = [(w, n) for w, n in CALLS if calls is None or n in calls]
        self.allowed = {n for _, n in self.calls}
        self.covers = covers
        self.views = {0: View()}  # per live process: roughly what it mapped and opened
        self.known = {0: {0}}  # per process: the processes whose pid it knows (Processes)
        self.proc = 0  # the process whose view the next call's arguments come from
        self.forks = 0
        self.next_id = 1  # the number the next mapping gets in a view
        self.size = 0  # the size the last ftruncate gave (to grow or shrink from)
        self.pending: list[Call] = []  # calls that come next whatever the bytes say

    @property
    def shadow(self) -> list[int]:
        """The pages of the current process: 0, or the number of their mapping."""
        return self._view().pages

    @property
    def fds(self) -> list[int]:
        """The current process's open memfds (roughly)."""
        return self._view().fds

    def _view(self) -> View:
        return self.views.setdefault(self.proc, View())

    def mapped(self) -> list[int]:
        return [i for i, m in enumerate(self.shadow) if m]

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def track(self, call: Call) -> None:
        """Update the view of the process that makes `call` with what it likely does."""
        if call.name == "fork":
            self.forks += 1
            self.views[self.forks] = self.views.setdefault(call.proc, View()).copy()
            self.known.setdefault(call.proc, {call.proc}).add(self.forks)
            self.known[self.forks] = set(self.known[call.proc])
            return
        if call.name == "exit":
            self.views.pop(call.proc, None)
            return
        view = self.views.setdefault(call.proc, View())
        if call.name in FILE_CREATORS:
            view.fds.append(lowest_free_fd(view.fds))
        elif call.name == "close" and call.args[0] in view.fds:
            view.fds.remove(call.args[0])
        elif call.name == "mremap":
            self._track_mremap(view, call)
        elif call.name in ("mmap", "munmap") or call.name in SPLITS:
            addr, length = call.args[0], call.args[1]
            if length == 0 or length >= WRAP_MIN:
                return
            if call.name in ("mlock", "mlock2", "munlock"):  # rounded, not refused
                length += addr % PAGE
                addr -= addr % PAGE
            if addr % PAGE:
                return
            pages = _arena_pages(addr, length)
            if call.name == "mmap":
                if _may_map(call, view.pages):
                    self._set(view, pages, self._new_id())
                    if pages and call.args[3] & 0xF == MAP_SHARED:  # as _may_map reads it
                        view.shared.add(view.pages[pages.start])
                    view.guarded -= set(pages)
            elif call.name == "munmap":
                self._set(view, pages, 0)
                view.guarded -= set(pages)
            else:
                self._split(view, pages)
                if call.name == "madvise" and call.args[2] == MADV_GUARD_INSTALL:
                    view.guarded |= {i for i in pages if view.pages[i]}
                elif call.name == "madvise" and call.args[2] == MADV_GUARD_REMOVE:
                    view.guarded -= set(pages)

    def _set(self, view: View, pages: range, value: int) -> None:
        for i in pages:
            view.pages[i] = value

    def _split(self, view: View, pages: range) -> None:
        """The mapped pages of `pages` become mappings of their own (one per mapping
        they were part of): a range call may split a mapping at its range's ends."""
        renamed: dict[int, int] = {}
        for i in pages:
            if view.pages[i]:
                view.pages[i] = renamed.setdefault(view.pages[i], self._new_id())
        view.shared |= {new for old, new in renamed.items() if old in view.shared}

    def _track_mremap(self, view: View, call: Call) -> None:
        """Roughly what a successful mremap did: the kept range moves (FIXED: to
        `new`; else, when it cannot grow in place, out of the arena), a shrink
        unmaps the tail, DONTUNMAP leaves the old range mapped."""
        old, old_len, new_len, flags, new = call.args
        if old % PAGE or new % PAGE or not view.pages[min(old // PAGE, ARENA_PAGES - 1)] or \
                max(old_len, new_len) >= WRAP_MIN or not new_len or flags & ~KNOWN_MREMAP:
            return
        old_pages = _arena_pages(old, old_len)
        moves_to = bool(flags & (MREMAP_FIXED | MREMAP_DONTUNMAP))
        if moves_to and not flags & MREMAP_MAYMOVE:
            return  # EINVAL
        new_pages = _arena_pages(new, new_len)
        if moves_to:
            if flags & MREMAP_DONTUNMAP and old_len != new_len:
                return  # EINVAL
            if not flags & MREMAP_FIXED and any(view.pages[i] for i in new_pages):
                new_pages = range(0)  # a hint that is taken: moved out of the arena
            was = view.pages[old_pages.start] if old_pages else 0
            if not flags & MREMAP_DONTUNMAP:
                self._set(view, old_pages, 0)
            moved = self._new_id()
            self._set(view, new_pages, moved)
            if was in view.shared:
                view.shared.add(moved)
            return
        if new_len <= old_len:
            self._set(view, range(page_up(old + new_len) // PAGE, old_pages.stop), 0)
            return
        grown = range(old_pages.stop, min(page_up(old + new_len) // PAGE, ARENA_PAGES))
        if not any(view.pages[i] for i in grown) and grown.stop * PAGE == page_up(old + new_len):
            self._set(view, grown, view.pages[old // PAGE])
        elif flags & MREMAP_MAYMOVE:
            self._set(view, old_pages, 0)  # moved out of the arena

    def page(self, near_mapped: int = 88, edge: int = 4) -> int:
        """A page index: usually (near_mapped %) in a mapping the program made (often
        its first page), sometimes (edge % each) just before or after one; else any
        page. (Before or after a mapping, a range call mostly meets a hole; an mmap
        there makes a neighbour, which may merge.)"""
        mapped = self.mapped()
        if mapped and chance(self.src, near_mapped):
            i = mapped[self.src.ConsumeIntInRange(0, len(mapped) - 1)]
            match pick(self.src, [(57 - edge, "inside"), (43 - edge, "start"),
                                  (edge, "before"), (edge, "after")]):
                case "inside":
                    return i
                case "start":
                    return self.mapping_start(i)
                case "before":
                    return max(0, self.mapping_start(i) - 1)
                case _:
                    return min(ARENA_PAGES - 1, i + self.vma_run(i))
        if HUGE and chance(self.src, 50):  # a 2 MiB-aligned page: where a PMD can start
            return self.src.ConsumeIntInRange(0, ARENA_PAGES // PMD_PAGES - 1) * PMD_PAGES
        return self.src.ConsumeIntInRange(0, ARENA_PAGES - 1)

    def mapping_start(self, page: int) -> int:
        """The first page of the mapping `page` is in (by the shadow)."""
        while page > 0 and self.shadow[page - 1] == self.shadow[page]:
            page -= 1
        return page

    def addr(self, subpage: int, near_mapped: int = 88, edge: int = 4) -> int:
        base = min(self.page(near_mapped, edge), ARENA_PAGES - 1) * PAGE
        if chance(self.src, subpage):
            base += self.src.ConsumeIntInRange(1, PAGE - 1)
        return base

    def length(self, addr: int) -> int:
        room = ARENA_SIZE - addr
        lengths = LENGTHS if not HUGE else \
            LENGTHS_ALIGNED if addr % (PMD_PAGES * PAGE) == 0 else LENGTHS_HUGE
        kind = pick(self.src, lengths)
        match kind:
            case "pages":
                n = self.src.ConsumeIntInRange(1, 8) * PAGE
            case "block":  # room for a 16-page aligned block: a 64 KiB mTHP (SEMANTICS §19)
                n = self.src.ConsumeIntInRange(MTHP_PAGES, 2 * MTHP_PAGES) * PAGE
            case "pmd":  # room for a 2 MiB region: a PMD-mapped huge page (SEMANTICS §22)
                n = self.src.ConsumeIntInRange(PMD_PAGES, PMD_PAGES + 2 * MTHP_PAGES) * PAGE
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
        return self.named(self.instead(pick(self.src, self.calls)))

    def instead(self, name: str) -> str:
        """The call to make for `name`: mostly an mmap when the process has nothing
        mapped and `name` acts on a mapping, a memfd_create or tmpfile when it has no
        file open and `name` needs one (the rest reach the errors of a hole or a bad
        descriptor, as before)."""
        if name in NEEDS_MAPPING and "mmap" in self.allowed and not any(self.shadow) \
                and chance(self.src, 85):
            return "mmap"
        creators = [c for c in FILE_CREATORS if c in self.allowed]
        if name in NEEDS_FD and creators and not self.fds and chance(self.src, 85):
            return creators[0] if len(creators) == 1 or chance(self.src, 60) else creators[1]
        return name

    def named(self, name: str) -> Call:
        """A call of `name`, its arguments chosen from the shadow of what is mapped."""
        match name:
            case "mlockall":
                return Call("mlockall", (pick(self.src, MCL_CHOICES),))
            case "memfd_create" | "tmpfile":
                # mostly given a size at once: an empty file maps only SIGBUS
                if any(n == "ftruncate" for _, n in self.calls) and chance(self.src, 75):
                    fd = lowest_free_fd(self.fds)
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
                length, advice = self.span(addr), self.advice(addr)
                pages = len(_arena_pages(addr, length)) if length < WRAP_MIN else 0
                if advice == MADV_HUGEPAGE and pages and not addr % PAGE \
                        and chance(self.src, 60):
                    # a write in the range next: where the host enables an mTHP size, the
                    # fault maps a large folio (docs/SEMANTICS.md §19)
                    page = addr // PAGE + self.src.ConsumeIntInRange(0, pages - 1)
                    self.pending.append(Call("touch", (page * PAGE, 1)))
                return Call("madvise", (addr, length, advice))
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
            case "process_madvise":
                return self.process_madvise()
            case "mprotect":
                addr = self.addr(4)
                return Call("mprotect", (addr, self.span(addr), pick(self.src, PROTS)))
            case _:
                addr = self.addr(15 if name != "munmap" else 4)
                return Call(name, (addr, self.span(addr)))

    def advice(self, addr: int) -> int:
        """madvise's advice, mostly from the table for the mapping at `addr`: a shared
        mapping gets more of the advice only shared memory takes (REMOVE's hole punch)
        and of guard regions, one with guard pages most often REMOVE or a guard's
        removal (what a guard meets there: shmem_fallocate, zap, GUARD_REMOVE)."""
        view = self._view()
        page = addr // PAGE
        mapping = view.pages[page] if 0 <= page < ARENA_PAGES and not addr % PAGE else 0
        if mapping not in view.shared or not chance(self.src, 60):
            return pick(self.src, MADV_CHOICES)
        # (a guard install splits the generator's mapping, not the VMA: any shared guard)
        guarded = any(view.pages[i] in view.shared for i in view.guarded)
        return pick(self.src, MADV_GUARDED_SHARED if guarded else MADV_SHARED)

    def process_madvise(self) -> Call:
        """Another live process whose pid the caller knows (or itself), and two ranges
        in what that process mapped."""
        me = self.proc
        others = sorted(n for n in self.known.get(me, {me}) if n != me and n in self.views)
        target = me
        if others and chance(self.src, PMADV_OTHER):
            target = others[self.src.ConsumeIntInRange(0, len(others) - 1)]
        self.proc = target  # the ranges come from the target's mappings
        try:
            addr0 = self.addr(4)
            len0 = self.span(addr0)
            addr1 = self.addr(4)
            len1 = self.span(addr1)
        finally:
            self.proc = me
        vlen = pick(self.src, PMADV_VLEN)
        if target != me or chance(self.src, 50):
            advice = pick(self.src, PMADV_REMOTE)
        else:
            advice = pick(self.src, MADV_CHOICES)
        flags = pick(self.src, PMADV_FLAGS)
        return Call("process_madvise", (target, addr0, len0, addr1, len1, vlen, advice, flags))

    def span(self, addr: int) -> int:
        """A length for a call on a range: mostly (85 %) one that ends inside the
        mapping the range starts in or at its end, or at the end of the mapped pages
        that follow it (a few a page past), else any length. A random length mostly
        runs into a hole, and then mlock, mprotect and madvise stop at ENOMEM before
        the semantics behind it are reached."""
        page = addr // PAGE
        run = self.mapped_run(page)
        if run and chance(self.src, 85):
            vma = self.vma_run(page)
            match pick(self.src, [(38, "in"), (32, "end"), (20, "run"), (10, "past")]):
                case "in":
                    pages = self.src.ConsumeIntInRange(1, vma)
                case "end":
                    pages = vma
                case "run":
                    pages = run
                case _:
                    pages = run + 1
            n = pages * PAGE - (addr % PAGE if chance(self.src, 90) else 0)
            return min(n, ARENA_SIZE - addr)  # the arena's end bounds every range
        return self.length(addr)

    def mapped_run(self, page: int) -> int:
        """How many mapped pages (by the shadow) follow `page`, itself included."""
        run = 0
        while page + run < ARENA_PAGES and self.shadow[page + run]:
            run += 1
        return run

    def vma_run(self, page: int) -> int:
        """How many pages of the mapping `page` is in follow it, itself included (0
        if it is not mapped)."""
        run, mapping = 0, self.shadow[page] if page < ARENA_PAGES else 0
        while mapping and page + run < ARENA_PAGES and self.shadow[page + run] == mapping:
            run += 1
        return run

    def mremap(self) -> Call:
        """Mostly a range inside one mapping, grown, moved to a free range (FIXED)
        or kept the same size (DONTUNMAP): a random one is EFAULT (the range is not
        one mapping) or EINVAL (DONTUNMAP resizing, FIXED overlapping) so often that
        the paths behind the checks would rarely run."""
        flags = pick(self.src, MREMAP_CHOICES)
        old = self.addr(3)
        run = self.vma_run(old // PAGE)
        if run and chance(self.src, 85):
            old_len = min(self.src.ConsumeIntInRange(1, run) * PAGE, ARENA_SIZE - old)
        else:
            old_len = self.length(old)
        room = (ARENA_SIZE - old) // PAGE
        free = self.free_after(old // PAGE)
        if flags & MREMAP_DONTUNMAP and chance(self.src, 85):
            new_len = old_len
        elif run and free and not flags & MREMAP_MAYMOVE and chance(self.src, 70):
            # In place: the range ends its mapping and grows into the free pages after.
            old_len = (old // PAGE + run) * PAGE - old
            new_len = old_len + self.src.ConsumeIntInRange(1, min(free, 4)) * PAGE
        elif old_len < WRAP_MIN and old_len // PAGE < room and chance(self.src, 60):
            new_len = self.src.ConsumeIntInRange(old_len // PAGE + 1, min(room, old_len // PAGE
                                                                           + 4)) * PAGE
        else:
            new_len = self.length(old)
        new = self.addr(2)
        if flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) and new_len < WRAP_MIN and \
                chance(self.src, 85):
            new = self.free_place(new_len, avoid=range(old, old + old_len), near=new)
        if new_len < WRAP_MIN:
            new = min(new, ARENA_SIZE - new_len)
            new -= new % PAGE if chance(self.src, 95) else 0
        return Call("mremap", (old, old_len, new_len, flags, new))

    def free_after(self, page: int) -> int:
        """How many free pages (by the shadow) follow the mapping `page` is in."""
        end = page + self.vma_run(page)
        free = 0
        while end + free < ARENA_PAGES and not self.shadow[end + free]:
            free += 1
        return free

    def free_place(self, length: int, avoid: range, near: int) -> int:
        """An address for `length` bytes outside `avoid`: mostly one whose pages are
        all free, else `near` if it stays clear of `avoid`, else the arena's start."""
        pages = page_up(length) // PAGE
        places = [i * PAGE for i in range(ARENA_PAGES - pages + 1)
                  if not any(self.shadow[i:i + pages])
                  and not (i * PAGE < avoid.stop and avoid.start < i * PAGE + length)]
        if places and chance(self.src, 80):
            return places[self.src.ConsumeIntInRange(0, len(places) - 1)]
        clear = not (near < avoid.stop and avoid.start < near + length)
        return near if clear else 0

    def mmap(self) -> Call:
        addr = self.addr(3, edge=10)
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
        pages = len(_arena_pages(addr, length)) if length < WRAP_MIN else 0
        if flags & MAP_FIXED and pages >= MTHP_MIN_PAGES and not addr % PAGE \
                and flags & MAP_TYPE == MAP_PRIVATE and flags & MAP_ANONYMOUS \
                and chance(self.src, 50):
            # Room for an mTHP block: often advised huge and written at once, in the
            # largest aligned block it holds (16 to 64 KiB), as a program that wants large
            # folios does (docs/SEMANTICS.md §19). Where the host enables a size that
            # fits, the write maps a folio; the calls after it then meet one.
            page = mthp_block(addr // PAGE, pages)
            page += self.src.ConsumeIntInRange(0, MTHP_MIN_PAGES - 1)
            self.pending += [Call("madvise", (addr, pages * PAGE, MADV_HUGEPAGE)),
                             Call("touch", (page * PAGE, 1))]
            if HUGE and pages >= PMD_PAGES and chance(self.src, 70):
                # a 2 MiB region whole: writable, so that the write maps a huge page (§22)
                return Call("mmap", (addr, length, PROT_READ | PROT_WRITE, flags, -1, off))
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
        # Sometimes advised first how to read ahead (RANDOM, SEQUENTIAL, ...), and read:
        # the first miss on a file on disk reads what the advice says (§21), and once
        # any fault has read the file, later advice has nothing left to read.
        pages = min(page_up(length), ARENA_SIZE - addr) // PAGE if length < WRAP_MIN else 0
        if flags & MAP_FIXED and pages and chance(self.src, 50):
            page = addr // PAGE + self.src.ConsumeIntInRange(0, pages - 1)
            if chance(self.src, 30):
                self.pending += [Call("madvise", (addr, pages * PAGE,
                                                  pick(self.src, FILE_READ_ADVICE))),
                                 Call("touch", (page * PAGE, 0))]
            else:
                self.pending.append(Call("touch", (page * PAGE,
                                                   self.src.ConsumeIntInRange(0, 1))))
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
            case "huge":  # sparse; past ext4's largest file (16 TiB) for a tmpfile
                size = 1 << (40 if chance(self.src, 50) else 50)
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
            # The process first: the call's arguments come from what it has mapped
            # (a pending call stays with the process that made the call before it).
            proc = last if self.pending and last in procs.live else self.process(procs, last)
            self.proc = proc
            call = self.call()
            if self.covers is not None and not self.covers(call):
                continue  # e.g. advice the model does not predict: leave it out
            if call.name == "fork" and procs.forks + 1 >= MAX_PROCS:
                continue
            if call.name == "exit" and len(procs.live) < 2:
                continue  # the last process never exits: the program would end
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


def mthp_block(first: int, pages: int) -> int:
    """The first page of the largest naturally aligned block of MTHP_MIN_PAGES to
    MTHP_PAGES pages (a power of two) inside the `pages` pages from `first`; `first`
    if none fits."""
    size = MTHP_PAGES
    while size >= MTHP_MIN_PAGES:
        block = -(-first // size) * size
        if block + size <= first + pages:
            return block
        size //= 2
    return first


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
