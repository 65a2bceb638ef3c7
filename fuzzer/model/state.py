"""The model's state: one process's arena, page by page, plus what lies outside it.

VMA boundaries are deliberately not modelled (merging rules vary between
kernels); every page carries the attributes of the VMA it belongs to, and the
oracle compares page by page. Presence uses one letter per page:

    .  not present        Z  the shared zero page
    A  anonymous page, mapped exclusively
    F  shmem (page-cache) page, mapped exclusively
    f  shmem page mapped at more than one address (pagemap shows no X bit;
       `pages.mark_mapped_twice` decides between F and f after every call)
    aN anonymous page fork left shared between processes, N its frame number
       (`world.py`)
    G  a guard marker (MADV_GUARD_INSTALL): no page, and a touch is SIGSEGV
    Al an `A` page MADV_FREE made lazy-free that is still clean: reclaim drops it
       (docs/SEMANTICS.md §16); a frame fork shared from one is `aNl`.
    A+ an `A` page of a large anonymous folio (mTHP, §19); `aN+` once fork shared it.
       Only the first letter of a state is what /proc shows: the oracle sees `A`
       and `a`
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from fuzzer.model.features import NEWEST, Features
from fuzzer.prog.arena import PMD_PAGES
from fuzzer.prog.program import ARENA_PAGES
from fuzzer.prog.syscalls import PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, RLIM_INFINITY, RWX

ABSENT, ZERO, ANON, SHMEM, SHMEM_TWICE = ".", "Z", "A", "F", "f"
GUARD = "G"  # a guard region's PTE marker (docs/SEMANTICS.md §15)
SHARED_ANON = "a"  # followed by the frame number
LAZY = "l"  # ends the state of a lazily freed, clean anonymous page (`Al`, `aNl`)
ANON_LAZY = ANON + LAZY
# ends the state of a page of a large anonymous folio, an mTHP (`A+`, `aN+`;
# docs/SEMANTICS.md §19): what splitting the folio would do is not modelled
LARGE = "+"
ANON_LARGE = ANON + LARGE
PMD_ORDER = 9  # a PMD-mapped huge page: 2**9 pages
PMD_REGIONS = ARENA_PAGES // PMD_PAGES  # aligned 2 MiB regions: 2 in the huge arena, else 0
# what smaps Rss counts (the zero page is not counted)
RESIDENT = frozenset({ANON, ANON_LAZY, ANON_LARGE, SHMEM, SHMEM_TWICE})


@dataclass(frozen=True, slots=True)
class Attrs:
    """What a page inherits from its VMA."""

    shared: bool  # VM_SHARED: MAP_SHARED of shmem, anonymous (AS) or a memfd (FS)
    prot: int  # PROT_READ|PROT_WRITE|PROT_EXEC bits only
    lo: bool = False  # VM_LOCKED
    lf: bool = False  # VM_LOCKONFAULT
    dc: bool = False  # VM_DONTCOPY (MADV_DONTFORK)
    wf: bool = False  # VM_WIPEONFORK
    # Flags that change nothing the oracle compares but keep VMAs apart (§11),
    # which decides mremap's EFAULT and where fault-around stops:
    nr: bool = False  # VM_NORESERVE (MAP_NORESERVE)
    hg: bool = False  # VM_HUGEPAGE (MADV_HUGEPAGE)
    nh: bool = False  # VM_NOHUGEPAGE (MAP_STACK, MADV_NOHUGEPAGE)
    rr: bool = False  # VM_RAND_READ (MADV_RANDOM)
    sr: bool = False  # VM_SEQ_READ (MADV_SEQUENTIAL)
    dd: bool = False  # VM_DONTDUMP (MADV_DONTDUMP)
    mg: bool = False  # VM_MERGEABLE (MADV_MERGEABLE, private mappings only)
    # The execute-only protection key (x86 with PKU, Features.exec_only_readable False):
    # the pkey bits are VMA flags, so they keep VMAs apart too.
    xo: bool = False
    sl: bool = False  # VM_SEALED (mseal, docs/SEMANTICS.md §14): smaps "sl"
    dp: bool = False  # VM_DROPPABLE (MAP_DROPPABLE, docs/SEMANTICS.md §17): smaps "dp"
    # The VMA may hold guard markers (§15): set on the whole VMA by MADV_GUARD_INSTALL and
    # never cleared (VM_MAYBE_GUARD, smaps "gu"; before it, the anon_vma install gave every
    # such VMA). Sticky: no split, merges ignore it and take it along (`vmas.merge`); fork
    # copies the VMA's page tables, shmem pages included (vma_needs_copy).
    gu: bool = False
    # shmem object id: AS, FS and FP (a memfd mapped private) pages have one;
    # 0 for private anonymous, the only mapping without a file
    obj: int = 0
    pgoff: int = 0  # page offset within the shmem object

    # __init__, __eq__ and __hash__ are spelled out: mypyc compiles a class body's
    # methods, while the ones @dataclass generates run as interpreted Python (an Attrs
    # cost ~1 µs to make). tests/test_attrs_copies.py holds them to the generated ones.
    def __init__(self, shared: bool, prot: int, lo: bool = False, lf: bool = False,
                 dc: bool = False, wf: bool = False, nr: bool = False, hg: bool = False,
                 nh: bool = False, rr: bool = False, sr: bool = False, dd: bool = False,
                 mg: bool = False, xo: bool = False, sl: bool = False, dp: bool = False,
                 gu: bool = False, obj: int = 0, pgoff: int = 0) -> None:
        object.__setattr__(self, "shared", shared)
        object.__setattr__(self, "prot", prot)
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "lf", lf)
        object.__setattr__(self, "dc", dc)
        object.__setattr__(self, "wf", wf)
        object.__setattr__(self, "nr", nr)
        object.__setattr__(self, "hg", hg)
        object.__setattr__(self, "nh", nh)
        object.__setattr__(self, "rr", rr)
        object.__setattr__(self, "sr", sr)
        object.__setattr__(self, "dd", dd)
        object.__setattr__(self, "mg", mg)
        object.__setattr__(self, "xo", xo)
        object.__setattr__(self, "sl", sl)
        object.__setattr__(self, "dp", dp)
        object.__setattr__(self, "gu", gu)
        object.__setattr__(self, "obj", obj)
        object.__setattr__(self, "pgoff", pgoff)

    def _key(self) -> tuple[bool, int, bool, bool, bool, bool, bool, bool, bool, bool, bool,
                            bool, bool, bool, bool, bool, bool, int, int]:
        return (self.shared, self.prot, self.lo, self.lf, self.dc, self.wf, self.nr, self.hg,
                self.nh, self.rr, self.sr, self.dd, self.mg, self.xo, self.sl, self.dp,
                self.gu, self.obj, self.pgoff)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Attrs):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    # The copies with a few fields changed are spelled out, not dataclasses.replace:
    # replace is interpreted Python (fields(), a getattr each, keywords), and these
    # run for every page a call touches. tests/test_attrs_copies.py holds each to
    # replace over every field.
    def with_lock(self, lo: bool, lf: bool) -> Attrs:
        return Attrs(self.shared, self.prot, lo, lf, self.dc, self.wf, self.nr, self.hg,
                     self.nh, self.rr, self.sr, self.dd, self.mg, self.xo, self.sl, self.dp,
                     self.gu, self.obj, self.pgoff)

    def with_pgoff(self, pgoff: int) -> Attrs:
        return Attrs(self.shared, self.prot, self.lo, self.lf, self.dc, self.wf, self.nr,
                     self.hg, self.nh, self.rr, self.sr, self.dd, self.mg, self.xo, self.sl,
                     self.dp, self.gu, self.obj, pgoff)

    def merge_key(self) -> Attrs:
        """What two neighbours must share to merge: all but the offset and the sticky gu."""
        return Attrs(self.shared, self.prot, self.lo, self.lf, self.dc, self.wf, self.nr,
                     self.hg, self.nh, self.rr, self.sr, self.dd, self.mg, self.xo, self.sl,
                     self.dp, False, self.obj, 0)

    def with_flags(self, changes: dict[str, bool]) -> Attrs:
        """A copy with some of the boolean VMA flags (lo ... gu) set as `changes` says."""
        assert changes.keys() <= FLAG_NAMES, changes
        get = changes.get
        return Attrs(self.shared, self.prot, get("lo", self.lo), get("lf", self.lf),
                     get("dc", self.dc), get("wf", self.wf), get("nr", self.nr),
                     get("hg", self.hg), get("nh", self.nh), get("rr", self.rr),
                     get("sr", self.sr), get("dd", self.dd), get("mg", self.mg),
                     get("xo", self.xo), get("sl", self.sl), get("dp", self.dp),
                     get("gu", self.gu), self.obj, self.pgoff)

    def with_obj(self, obj: int) -> Attrs:
        return Attrs(self.shared, self.prot, self.lo, self.lf, self.dc, self.wf, self.nr,
                     self.hg, self.nh, self.rr, self.sr, self.dd, self.mg, self.xo, self.sl,
                     self.dp, self.gu, obj, self.pgoff)

    def flags_key(self) -> Attrs:
        """What mprotect, mlock and madvise change in a VMA: everything but the mapping
        (its object and offset) and the sticky gu."""
        return Attrs(False, self.prot, self.lo, self.lf, self.dc, self.wf, self.nr, self.hg,
                     self.nh, self.rr, self.sr, self.dd, self.mg, self.xo, self.sl, self.dp,
                     False, 0, 0)

    def anon_key(self) -> Attrs:
        """What anon_vma_compatible compares: all but protection, offset and the sticky gu."""
        return Attrs(self.shared, 0, self.lo, self.lf, self.dc, self.wf, self.nr, self.hg,
                     self.nh, self.rr, self.sr, self.dd, self.mg, self.xo, self.sl, self.dp,
                     False, self.obj, 0)

    def with_prot(self, prot: int, xo: bool) -> Attrs:
        return Attrs(self.shared, prot, self.lo, self.lf, self.dc, self.wf, self.nr, self.hg,
                     self.nh, self.rr, self.sr, self.dd, self.mg, xo, self.sl, self.dp,
                     self.gu, self.obj, self.pgoff)

    @property
    def populatable(self) -> bool:
        """Whether GUP can fault the page in for populate (check_vma_flags): any of R, W, X
        (populate passes FOLL_FORCE), and no pkey that denies data access."""
        return bool(self.prot & RWX) and not self.xo


FLAG_NAMES = frozenset(("lo", "lf", "dc", "wf", "nr", "hg", "nh", "rr", "sr", "dd", "mg", "xo",
                        "sl", "dp", "gu"))  # Attrs.with_flags


@dataclass(frozen=True, slots=True)
class Page:
    attrs: Attrs
    state: str = ABSENT

    # spelled out for mypyc, as Attrs's are
    def __init__(self, attrs: Attrs, state: str = ABSENT) -> None:
        object.__setattr__(self, "attrs", attrs)
        object.__setattr__(self, "state", state)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Page):
            return NotImplemented
        return self.attrs == other.attrs and self.state == other.state

    def __hash__(self) -> int:
        return hash((self.attrs, self.state))


@dataclass(slots=True)
class DiskFile:
    """What a tmpfile (docs/SEMANTICS.md §21) keeps beyond the page cache every file has."""

    size: int = 0  # in bytes: ext4_truncate zeroes the block of an unaligned new end
    # page-cache misses of mmap faults, an upper bound of the open file's mmap_miss
    # (cache hits lower it): past MMAP_LOTSAMISS the kernel stops reading ahead
    misses: int = 0
    # cached offsets whose folio is not uptodate: ext4_block_truncate_page creates the
    # folio of a hole's partial block and leaves it unread; readahead skips it (it is
    # cached), fault-around skips it (next_uptodate_folio), a fault on it reads it
    unread: set[int] = field(default_factory=set)

    def copy(self) -> DiskFile:
        return DiskFile(self.size, self.misses, set(self.unread))


@dataclass(slots=True)
class OutsideFile:
    """A file VMA (shared or private) the kernel placed outside the arena, by mremap or
    by an mmap that went elsewhere. It is never unmapped (no program can name it) and
    keeps the page-cache pages its own PTEs map: each is one more mapping of its page,
    which counts in Pss and pagemap's X bit (`pages.count_mappings`), however many
    other VMAs map the same page."""

    obj: int  # the shmem object
    first: int  # its first page offset in the object
    count: int  # its length in pages
    attrs: Attrs
    anon: bool  # whether it has an anon_vma (fork copies its page tables: `world.py`)
    mapped: set[int] = field(default_factory=set)  # offsets of the cached pages it maps
    # offsets where a private VMA maps its own copy instead: population and fault-around
    # leave those PTEs alone
    copies: set[int] = field(default_factory=set)
    # offsets of the guard markers that moved with it (§15): population stops at the
    # first, and fault-around leaves them alone
    guards: set[int] = field(default_factory=set)

    def copy(self) -> OutsideFile:
        return OutsideFile(self.obj, self.first, self.count, self.attrs, self.anon,
                           set(self.mapped), set(self.copies), set(self.guards))


@dataclass(slots=True)
class RestVma:
    """A VMA of the executor itself (outside the arena): only its lock flags change."""

    start: int
    end: int
    lockable: bool  # vma_supports_mlock: not VM_IO/PFNMAP/MIXEDMAP/DONTEXPAND, not the gate
    lo: bool = False
    lf: bool = False

    @property
    def pages(self) -> int:
        return (self.end - self.start) // PAGE


@dataclass(slots=True)
class State:
    """One process as the model sees it."""

    pages: list[Page | None] = field(default_factory=lambda: [None] * ARENA_PAGES)
    shmem: dict[int, set[int]] = field(default_factory=dict)  # object -> cached page offsets
    next_obj: int = 1
    outside_locked: int = 0  # pages of locked mappings the kernel placed outside the arena
    outside_mapped: int = 0
    outside_dontfork: int = 0  # of those, pages of VM_DONTCOPY VMAs (a fork child lacks them)
    outside_droppable: int = 0  # ... and of VM_DROPPABLE VMAs (mlockall never locks them)
    rest: list[RestVma] = field(default_factory=list)  # the executor's own VMAs
    def_lo: bool = False  # mm->def_flags after mlockall(MCL_FUTURE): VM_LOCKED
    def_lf: bool = False  # ... and VM_LOCKONFAULT with MCL_ONFAULT
    features: Features = NEWEST  # what the kernel under test supports
    cap_ipc_lock: bool = True  # the executor runs as root
    memlock_limit: int = RLIM_INFINITY  # RLIMIT_MEMLOCK soft limit, bytes (from the process)
    memlock_hard: int = RLIM_INFINITY  # ... and its hard limit
    cap_sys_resource: bool = True  # raising a hard limit needs it (not every root has it)
    # Each shmem object's size in pages: an anonymous one's is its mmap's length
    # (mremap keeps it), a memfd's is its file size rounded up to whole pages
    # (ftruncate sets it; the bytes of a partial last page change nothing the
    # oracle sees). The file VMAs (shared or private) placed outside the arena, each
    # with the page-cache pages it maps.
    shmem_size: dict[int, int] = field(default_factory=dict)
    outside_shmem_vmas: list[OutsideFile] = field(default_factory=list)
    fds: dict[int, int] = field(default_factory=dict)  # open descriptor -> memfd object
    # The objects that are files on disk (tmpfile), not shmem: a page-cache miss reads
    # ahead (§21). One dict for the world, like the cache.
    disk: dict[int, DiskFile] = field(default_factory=dict)
    # Page-cache pages (object, offset) written through a shared mapping: dirty, which
    # reclaim without swap cannot clean (MADV_PAGEOUT keeps them cached, drops the
    # clean ones; docs/SEMANTICS.md §16). One set for the world, like the cache.
    shmem_dirty: set[tuple[int, int]] = field(default_factory=set)
    # Page-cache pages (object, offset) whose PG_mlocked a locked mapping need not keep
    # (§20), since the last call after which no locked mapping mapped them: two locked
    # mappings mapped one at once after some call (its `mlock_count` may undercount),
    # or a call that unmaps and maps in one go (mmap with MAP_FIXED, mremap) left one
    # locked mapped that was before it (the munlock of the old mapping, still queued,
    # clears the flag the new mapping's mlock had found set), or so did the call after
    # an exit that had munlocked one (`world.step`). One set for the world, like the
    # cache (`pages.mark_mapped_twice` keeps it).
    lock_shared: set[tuple[int, int]] = field(default_factory=set)
    # Whether MADV_FREE met (in any process) a frame fork left shared that was not
    # lazily freed already: the frame's folio may be lazy-free then with some of its
    # PTEs dirty (the other processes' ones) and may have been PG_dirty, which the model
    # does not keep, so MADV_PAGEOUT over an `A` page is refused after it (§16).
    lazy_untracked: bool = False
    # After a fork: every live process's State, one list shared by all of them
    # (`world.py`), for what one process does to objects all of them map.
    peers: list[State] = field(default_factory=list)
    # Shared anonymous frames (`aN`) that mremap moved outside the arena: still
    # mapped there, so they still count as sharers (`world.py`). Each with the
    # attributes of the VMA it moved with, whose protection no later call changes.
    outside_frames: list[tuple[str, Attrs]] = field(default_factory=list)
    # Where the kernel put the mapping the next call places outside the arena, as a page
    # number (the call's result, which the checker knows before it steps the model; 0
    # where it is not known: a C reproducer's model, a table row). Only fault-around
    # depends on it: its window is 16 pages aligned in the address (§9, §12).
    placed: int = 0
    # VMA identity, private to vmas.py (docs/SEMANTICS.md §11): per arena page its
    # (VMA id, anon_vma id, VM_ACCOUNT); the pages as vmas.track last saw them;
    # the next id vmas.py hands out.
    vmas: list[tuple[int, int, bool] | None] = field(
        default_factory=lambda: [None] * ARENA_PAGES)
    vmas_seen: list[Page | None] = field(default_factory=lambda: [None] * ARENA_PAGES)
    next_id: int = 1
    # Large folios (mTHP) mapped by this process's faults so far, a fork child's from its
    # parent's count on (`pages.anon_folio`): a step that raised its caller's is counted
    # as such (`mmfuzz stats ops`, check/program.py)
    large_folios: int = 0
    # Per aligned 2 MiB region of the huge arena, its page-table state (`pmd.py`: "" none,
    # "t" a table, "H" a PMD-mapped huge page, "Z" the huge zero page, "?" unknown);
    # empty in the 64-page arena.
    pmds: list[str] = field(default_factory=lambda: [""] * PMD_REGIONS)
    pmds_seen: list[Page | None] = field(default_factory=list)  # the pages pmd.settle saw
    # PMD mappings its faults made so far, of huge pages and of the huge zero page (as
    # large_folios, for `mmfuzz stats ops`)
    huge_pages: int = 0
    huge_zero_pages: int = 0

    def copy(self) -> State:
        new = copy.copy(self)
        new.pages = list(self.pages)
        new.shmem = {obj: set(offs) for obj, offs in self.shmem.items()}
        new.rest = [copy.copy(v) for v in self.rest]
        new.vmas = list(self.vmas)
        new.vmas_seen = list(self.vmas_seen)
        new.pmds = list(self.pmds)
        new.pmds_seen = list(self.pmds_seen)
        new.shmem_size = dict(self.shmem_size)
        new.outside_shmem_vmas = [v.copy() for v in self.outside_shmem_vmas]
        new.fds = dict(self.fds)
        new.disk = {obj: f.copy() for obj, f in self.disk.items()}
        new.shmem_dirty = set(self.shmem_dirty)
        new.lock_shared = set(self.lock_shared)
        new.outside_frames = list(self.outside_frames)
        return new

    def processes(self) -> list[State]:
        """Every live process of the program (this one alone until it forks)."""
        return self.peers or [self]

    def locked_pages(self) -> int:
        """locked_vm: every page of every VM_LOCKED mapping, present or not."""
        inside = sum(1 for p in self.pages if p is not None and p.attrs.lo)
        rest = sum(v.pages for v in self.rest if v.lo)
        return inside + self.outside_locked + rest

    def can_do_mlock(self) -> bool:
        """mm/mlock.c can_do_mlock: a non-zero rlimit, or CAP_IPC_LOCK."""
        return self.memlock_limit != 0 or self.cap_ipc_lock

    def limit_pages(self) -> int:
        return self.memlock_limit // PAGE

    def total_vm(self) -> int:
        """mm->total_vm in pages: every VMA of the process (the gate VMA is not one)."""
        arena = sum(1 for p in self.pages if p is not None)
        return arena + self.outside_mapped + sum(v.pages for v in self.rest)

    def drop_unmapped_objects(self) -> None:
        """A shmem object with no mapping and no descriptor left is freed with its pages."""
        live = {p.attrs.obj for s in self.processes() for p in s.pages
                if p is not None and p.attrs.obj}
        live.update(obj for s in self.processes() for obj in s.fds.values())
        for obj in [o for o in self.shmem if o not in live]:
            del self.shmem[obj]
            self.disk.pop(obj, None)

    def forget_clean(self) -> None:
        """Keep dirtiness only for pages still cached: a page that truncation, a hole
        punch or reclaim dropped comes back clean (after every call, `calls.step`)."""
        if self.shmem_dirty:
            self.shmem_dirty &= {(o, pg) for o, offs in self.shmem.items() for pg in offs}
        for obj, f in self.disk.items():
            if f.unread:
                f.unread &= self.shmem.get(obj, set())


def prot_text(prot: int) -> str:
    return "".join(
        ch if prot & bit else "-"
        for ch, bit in (("r", PROT_READ), ("w", PROT_WRITE), ("x", PROT_EXEC))
    )


__all__ = ["ABSENT", "ANON", "ANON_LARGE", "ANON_LAZY", "GUARD", "LARGE", "LAZY", "PAGE",
           "RESIDENT", "SHARED_ANON", "SHMEM", "SHMEM_TWICE", "ZERO", "Attrs", "OutsideFile",
           "Page", "RestVma", "State"]
