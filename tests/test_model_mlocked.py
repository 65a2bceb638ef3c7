"""PG_mlocked of each page against the locked VMAs that map it (docs/SEMANTICS.md §20).

A page is mlocked while a VM_LOCKED VMA maps it: `mlock_folio` when the VMA is locked
over a present page (mlock_pte_range) or a page faults into a locked VMA
(folio_add_lru_vma, mlock_new_folio), `munlock_folio` when a locked VMA lets the page
go (munlock, munmap, a copy on write, truncation: `munlock_vma_folio` from the rmap
removal). The cells of a row say, per arena page, what the model holds the kernel to
after the last step (fuzzer/model/mlocked.py): `M` must be mlocked, `u` must not be,
`-` not judged (no page, the zero page, a page mapped twice with a locked mapping, a
shared-memory page that two locked mappings mapped at once since it last had none: the
kernel's count of locked mappings "might undercount"). The kernel twin
(`test_model_mlocked_kernel.py`) runs each row with the flags read from
/proc/kpageflags at every step, and checks the last step's flags against the cells
too. Every row holds on 6.18.44.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from fuzzer.campaign.throughput import workload
from fuzzer.model import State, Unsupported, mlocked
from fuzzer.model.features import NEWEST
from fuzzer.model.state import LARGE
from fuzzer.model.world import World
from fuzzer.model.world import step as world_step
from tests.tables import Case, case, check_model, check_table, model_params

RW, AP = "PROT_READ|PROT_WRITE", "MAP_PRIVATE|MAP_ANONYMOUS"
LOCKED4 = f"mmap(@0, 4p, {RW}, {AP}|MAP_LOCKED, -1, 0)"
MEMFD1 = """
        memfd_create()
        ftruncate(0, 1p)"""
MEMFD4 = """
        memfd_create()
        ftruncate(0, 4p)"""
TMPFILE4 = """
        tmpfile()
        ftruncate(0, 4p)"""
DISK = {"disk_ra_pages": 2048}

ROWS = [
    # mlock populates with write faults (FOLL_WRITE) and marks every page
    case("mlock-populates-and-marks", f"""
        mmap(@0, 8p, {RW}, {AP}, -1, 0)
        touch(@0, write)
        mlock(@0, 8p)
        """, ["@0", "-", "0"], "@0-7 rw-p lo AAAAAAAA", locked=8),
    # munlock of the middle: mlock_fixup splits, munlock_folio clears just those pages
    case("munlock-clears-the-middle", f"""
        mmap(@0, 8p, {RW}, {AP}, -1, 0)
        mlock(@0, 8p)
        munlock(@2, 2p)
        """, ["@0", "0", "0"], "@0-1 rw-p lo AA; @2-3 rw-p AA; @4-7 rw-p lo AAAA", locked=6),
    # MLOCK_ONFAULT marks the page already there, and each page that faults in later;
    # a read fault maps the zero page, which is never mlocked (vm_normal_folio is NULL)
    case("lock-on-fault-marks-what-faults-in", f"""
        mmap(@0, 8p, {RW}, {AP}, -1, 0)
        touch(@1, write)
        mlock2(@0, 8p, MLOCK_ONFAULT)
        touch(@5, write)
        touch(@6, read)
        """, ["@0", "-", "0", "-", "-"], "@0-7 rw-p lo lf .A...AZ.", locked=8),
    # mprotect splits a locked VMA and keeps VM_LOCKED on each part: nothing munlocks
    case("mprotect-split-keeps-the-mark", f"""
        mmap(@0, 8p, {RW}, {AP}|MAP_LOCKED, -1, 0)
        mprotect(@2, 2p, PROT_NONE)
        mprotect(@2, 2p, {RW})
        """, ["@0", "0", "0"], "@0-7 rw-p lo AAAAAAAA", locked=8),
    # MCL_FUTURE locks and populates a new mapping; munlockall clears it all
    case("munlockall-clears-every-page", f"""
        mlockall(MCL_CURRENT|MCL_FUTURE)
        mmap(@0, 4p, {RW}, {AP}, -1, 0)
        munlockall()
        """, ["0", "@0", "0"], "@0-3 rw-p AAAA", locked=0),
    # mremap moves the PTEs: the pages keep their flag at the new place
    case("mremap-moves-the-marked-pages", f"""
        {LOCKED4}
        mremap(@0, 4p, 4p, MREMAP_MAYMOVE|MREMAP_FIXED, @8)
        """, ["@0", "@8"], "@8-11 rw-p lo AAAA", locked=4),
    # growing a locked mapping in place populates (and marks) the new pages
    case("mremap-grows-a-locked-mapping", f"""
        {LOCKED4}
        mremap(@0, 4p, 8p, 0, @0)
        """, ["@0", "@0"], "@0-7 rw-p lo AAAAAAAA", locked=8),
    # a read-only private mapping is populated with the zero page: nothing to judge
    case("read-only-locked-maps-zero-pages", f"""
        mmap(@0, 4p, PROT_READ, {AP}|MAP_LOCKED, -1, 0)
        """, ["@0"], "@0-3 r--p lo ZZZZ", locked=4),
    # the parent's copy on write: its new page faults into a locked VMA (marked); the
    # frames still shared with the child's unlocked VMA are not judged
    case("fork-parent-copy-on-write", f"""
        {LOCKED4}
        fork()
        touch(@0, write)
        """, ["@0", "pid", "-"], "@0-3 rw-p lo Aaaa", locked=4),
    # the child's VMA is not locked (dup_mmap clears VM_LOCKED): its copy is not marked
    case("fork-child-copy-is-not-locked", f"""
        {LOCKED4}
        fork()
        p1: touch(@0, write)
        """, ["@0", "pid", "-"], "@0-3 rw-p Aaaa", locked=0),
    # the child's exit unmaps its unlocked mappings: the parent's pages stay marked
    case("fork-child-exit-leaves-parent-pages-marked", f"""
        {LOCKED4}
        fork()
        p1: exit()
        touch(@0, read)
        """, ["@0", "pid", "exit", "-"], "@0-3 rw-p lo AAAA", locked=4),
    # munlock in the parent clears the frames it still shares with the child
    case("fork-parent-munlock-clears-shared-frames", f"""
        {LOCKED4}
        fork()
        p1: touch(@0, write)
        munlock(@0, 4p)
        """, ["@0", "pid", "-", "0"], "@0-3 rw-p Aaaa", locked=0),
    # two locked mappings of each frame (parent, child), then neither: no flag is left
    case("fork-child-mlock-then-exit", f"""
        {LOCKED4}
        fork()
        p1: mlock(@0, 4p)
        munlock(@0, 4p)
        p1: exit()
        touch(@0, read)
        """, ["@0", "pid", "0", "0", "exit", "-"], "@0-3 rw-p AAAA", locked=0),
    # munmap of the locked VMA munlocks the page-cache pages the other VMA still maps
    case("shmem-page-unmapped-from-its-locked-vma", f"""{MEMFD4}
        mmap(@0, 4p, {RW}, MAP_SHARED|MAP_LOCKED, 0, 0)
        mmap(@8, 4p, {RW}, MAP_SHARED, 0, 0)
        touch(@8, read)
        munmap(@0, 4p)
        """, ["0", "0", "@0", "@8", "-", "0"], "@8-11 rw-s FFFF", locked=0),
    # a shared locked VMA maps its page-cache pages with mlock_vma_folio: each mapped once,
    # by that VMA, is marked
    case("shmem-pages-of-a-locked-vma-marked", f"""{MEMFD4}
        mmap(@0, 4p, {RW}, MAP_SHARED|MAP_LOCKED, 0, 0)
        """, ["0", "0", "@0"], "@0-3 rw-s lo FFFF", locked=4),
    # a read fault maps a page-cache page into a lock-on-fault VMA: marked
    case("shmem-fault-in-onfault-vma-marked", f"""{MEMFD4}
        mmap(@0, 4p, {RW}, MAP_SHARED, 0, 0)
        mlock2(@0, 4p, MLOCK_ONFAULT)
        touch(@1, read)
        """, ["0", "0", "@0", "0", "-"], "@0-3 rw-s lo lf .F..", locked=4),
    # two locked VMAs map each page; one goes: the other still locks it, but the count
    # of locked mappings may have undercounted (a page that entered the LRU mlocked
    # starts at 0), so the flag may be gone: not judged
    case("shmem-two-locked-mappings-then-one", f"""{MEMFD4}
        mmap(@0, 4p, {RW}, MAP_SHARED|MAP_LOCKED, 0, 0)
        mmap(@8, 4p, {RW}, MAP_SHARED|MAP_LOCKED, 0, 0)
        munmap(@8, 4p)
        """, ["0", "0", "@0", "@8", "0"], "@0-3 rw-s lo FFFF", locked=4),
    # ... until no locked mapping is left: munlock clears them, mlock marks them again
    case("shmem-relocked-after-none", f"""{MEMFD4}
        mmap(@0, 4p, {RW}, MAP_SHARED|MAP_LOCKED, 0, 0)
        mmap(@8, 4p, {RW}, MAP_SHARED|MAP_LOCKED, 0, 0)
        munmap(@8, 4p)
        munlock(@0, 4p)
        mlock(@0, 4p)
        """, ["0", "0", "@0", "@8", "0", "0", "0"], "@0-3 rw-s lo FFFF", locked=4),
    # Campaign buckets (6.18.44, the first 5 minutes with these rows' rule; 54 and 39
    # calls minimized to 4 and 5): a MAP_FIXED mmap replaces a locked mapping of a page
    # with a new locked one. The old mapping's munlock is queued (munlock_folio), the
    # new one's mlock_folio finds the flag still set and queues too, and the drain then
    # clears the flag (__munlock_folio: the count reaches 0) and leaves it clear
    # (__mlock_folio: the folio is evictable now, "surprising, but quite possible").
    # Reclaim would set it again (try_to_unmap_one); until then: not judged.
    case("shmem-map-fixed-over-its-locked-mapping", f"""{MEMFD1}
        mmap(@0, 1p, PROT_READ, MAP_SHARED|MAP_LOCKED, 0, 0)
        mmap(@0, 2p, PROT_READ, MAP_SHARED|MAP_FIXED|MAP_LOCKED, 0, 0)
        """, ["0", "0", "@0", "@0"], "@0-1 r--s lo F.", locked=2),
    # Campaign bucket (6.18.44, 11 calls minimized to 6; 10 of 10 runs): the parent's exit
    # munlocks the page its locked VMA maps, queued in its CPU's batch (no stop drains
    # it), and the child's mlock2 of a VMA it locked on fault before faults the page in
    # without draining first (mlock_fixup skips a VMA already locked, and with it
    # mlock_vma_pages_range's lru_add_drain): its mlock_folio queues behind the munlock,
    # and the drain leaves the flag clear, as after a MAP_FIXED replacement. Not judged
    # (world.step). Without the lock on fault the child's mlock2 drains first
    # and marks the page.
    case("shmem-exit-then-fault-in-locked-vma", """
        mmap(@0, 12p, PROT_READ, MAP_SHARED|MAP_ANONYMOUS, -1, 0)
        fork()
        p1: mlock2(@8, 1p, MLOCK_ONFAULT)
        mlock2(@4, 5p, 0)
        exit()
        p1: mlock2(@8, 1p, 0)
        """, ["@0", "pid", "0", "0", "exit", "0"],
        "@0-7 r--s ........; @8 r--s lo F; @9-11 r--s ...", locked=1),
    case("shmem-future-lock-map-fixed-populate", """
        mlockall(MCL_FUTURE)
        fork()
        tmpfile()
        memfd_create()
        ftruncate(1, 1p)
        mmap(@0, 1p, PROT_READ, MAP_SHARED, 1, 0)
        mmap(@0, 1p, PROT_READ, MAP_SHARED|MAP_FIXED|MAP_POPULATE, 1, 0)
        """, ["0", "pid", "0", "1", "0", "@0", "@0"], "@0 r--s lo F", locked=1,
         features=DISK),
    # a locked private file mapping populates private copies (marked); the page-cache
    # pages it copied are mapped only by the unlocked shared VMA
    case("shmem-private-copy-in-a-locked-vma", f"""{MEMFD4}
        mmap(@0, 4p, {RW}, MAP_PRIVATE|MAP_LOCKED, 0, 0)
        mmap(@8, 4p, PROT_READ, MAP_SHARED, 0, 0)
        touch(@8, read)
        """, ["0", "0", "@0", "@8", "-"], "@0-3 rw-p lo AAAA; @8-11 r--s FFFF", locked=4),
    # truncation takes the last two pages from both VMAs; munlock clears the rest
    case("truncation-takes-pages-from-a-locked-vma", f"""{MEMFD4}
        mmap(@0, 4p, PROT_READ, MAP_SHARED|MAP_LOCKED, 0, 0)
        mmap(@8, 4p, PROT_READ, MAP_SHARED, 0, 0)
        touch(@8, read)
        ftruncate(0, 2p)
        munlock(@0, 4p)
        """, ["0", "0", "@0", "@8", "-", "0", "0"], "@0-3 r--s ff..; @8-11 r--s ff..",
         locked=0),
    # MADV_DONTNEED_LOCKED zaps two marked pages; the one that faults back is marked
    case("madv-dontneed-locked-zaps-marked-pages", f"""
        {LOCKED4}
        madvise(@1, 2p, MADV_DONTNEED_LOCKED)
        touch(@1, write)
        """, ["@0", "0", "-"], "@0-3 rw-p lo AA.A", locked=4),
    # MAP_FIXED over locked pages: the new, unlocked mapping's populated pages are not
    case("mmap-fixed-over-locked-pages", f"""
        {LOCKED4}
        mmap(@1, 2p, {RW}, {AP}|MAP_FIXED|MAP_POPULATE, -1, 0)
        """, ["@0", "@1"], "@0 rw-p lo A; @1-2 rw-p AA; @3 rw-p lo A", locked=2),
    # a tmpfile's page cache may hold large folios (readahead's, §21): its pages are not
    # judged while a locked VMA maps any of them, and must not be mlocked once none does
    case("tmpfile-pages-not-judged-while-locked", f"""{TMPFILE4}
        mmap(@0, 4p, PROT_READ, MAP_SHARED|MAP_LOCKED, 0, 0)
        mmap(@8, 4p, PROT_READ, MAP_SHARED, 0, 0)
        touch(@8, read)
        """, ["0", "0", "@0", "@8", "-"], "@0-3 r--s lo ffff; @8-11 r--s ffff", locked=4,
         features=DISK),
    case("tmpfile-pages-munlocked", f"""{TMPFILE4}
        mmap(@0, 4p, PROT_READ, MAP_SHARED|MAP_LOCKED, 0, 0)
        mmap(@8, 4p, PROT_READ, MAP_SHARED, 0, 0)
        touch(@8, read)
        munlock(@0, 4p)
        """, ["0", "0", "@0", "@8", "-", "0"], "@0-3 r--s ffff; @8-11 r--s ffff", locked=0,
         features=DISK),
]

# Large folios (mTHP, §19; 64 kB enabled for MADV_HUGEPAGE VMAs: the kernel twin sets it).
# Their pages are judged only while no large-folio page is locked: none may be mlocked.
K64 = {"mthp_orders": 1 << 4}
HG = f"""
        mmap(@16, 32p, {RW}, {AP}|MAP_FIXED, -1, 0)
        madvise(@16, 32p, MADV_HUGEPAGE)
        touch(@20, write)"""
HG_OK = ["@16", "0", "-"]
ROWS_MTHP = [
    # the write maps a 16-page folio; nothing ever locked it (the small page at @0 is, so
    # the program has a locking call: without one no flag is read at all)
    case("large-folio-never-locked", f"""
        mmap(@0, 1p, {RW}, {AP}|MAP_LOCKED, -1, 0){HG}
        """, ["@0", *HG_OK], f"@0 rw-p lo A; @16-47 rw-p {'A' * 16}{'.' * 16}", locked=1,
         features=K64),
    # mlock covers both folios whole (the second one populated): both mlocked; munlock
    # clears both
    case("large-folios-munlocked-whole", f"""{HG}
        mlock(@16, 32p)
        munlock(@16, 32p)
        """, [*HG_OK, "0", "0"], f"@16-47 rw-p {'A' * 32}", locked=0, features=K64),
    # mlock of half a folio skips it (allow_mlock_munlock); munlock leaves it unmarked
    case("large-folio-partly-locked-then-unlocked", f"""{HG}
        mlock(@16, 8p)
        munlock(@16, 8p)
        """, [*HG_OK, "0", "0"], f"@16-47 rw-p {'A' * 16}{'.' * 16}", locked=0,
         features=K64),
    # a folio partly in a locked VMA may be marked or not: its pages are not judged
    case("large-folio-partly-locked-not-judged", f"""{HG}
        mlock(@16, 32p)
        munlock(@16, 8p)
        """, [*HG_OK, "0", "0"], f"@16-23 rw-p {'A' * 8}; @24-47 rw-p lo {'A' * 24}",
         locked=24, features=K64),
    # Hunt bucket (6.18.44, mTHP 16-128 kB): mprotect_fixup changes a whole VMA, then
    # populates a private locked one that becomes writable; the write faults map blocks
    # (§19). The model changed and faulted page by page, so each fault saw a VMA of one
    # page and mapped small pages, which the munmap of @20 then showed: the kernel's
    # folio lost PG_mlocked whole (munlock_vma_folio), small pages would have kept it.
    case("mprotect-populates-large-folios", """
        mmap(@0, 48p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        madvise(@0, 48p, MADV_HUGEPAGE)
        mlock(@4, 44p)
        mprotect(@16, 32p, PROT_WRITE)
        mmap(@20, 1p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED|MAP_POPULATE, -1, 0)
        """, ["@0", "0", "-ENOMEM", "0", "@20"], "@0-3 ---p ....; @4-15 ---p lo "
         f"{'.' * 12}; @16-19 -w-p lo AAAA; @20 ---p .; @21-47 -w-p lo {'A' * 27}", locked=43,
         features=K64),
    # fork shares both folios with the child's unlocked VMA; the parent's munlock clears them
    case("large-folios-shared-after-fork-munlocked", f"""{HG}
        mlock(@16, 32p)
        fork()
        munlock(@16, 32p)
        """, [*HG_OK, "0", "pid", "0"], f"@16-47 rw-p {'a' * 32}", locked=0, features=K64),
]

# What the model holds the kernel to after each row's last step, page by page from @0.
CELLS = {
    "large-folio-never-locked": "M" + "-" * 15 + "u" * 16,
    "large-folios-munlocked-whole": "-" * 16 + "u" * 32,
    "large-folio-partly-locked-then-unlocked": "-" * 16 + "u" * 16,
    "large-folio-partly-locked-not-judged": "",
    "mprotect-populates-large-folios": "",
    "large-folios-shared-after-fork-munlocked": "-" * 16 + "u" * 32,
    "mlock-populates-and-marks": "MMMMMMMM",
    "munlock-clears-the-middle": "MMuuMMMM",
    "lock-on-fault-marks-what-faults-in": "-M---M",
    "mprotect-split-keeps-the-mark": "MMMMMMMM",
    "munlockall-clears-every-page": "uuuu",
    "mremap-moves-the-marked-pages": "--------MMMM",
    "mremap-grows-a-locked-mapping": "MMMMMMMM",
    "read-only-locked-maps-zero-pages": "",
    "fork-parent-copy-on-write": "M",
    "fork-child-copy-is-not-locked": "u",
    "fork-child-exit-leaves-parent-pages-marked": "MMMM",
    "fork-parent-munlock-clears-shared-frames": "uuuu",
    "fork-child-mlock-then-exit": "uuuu",
    "shmem-page-unmapped-from-its-locked-vma": "--------uuuu",
    "shmem-pages-of-a-locked-vma-marked": "MMMM",
    "shmem-fault-in-onfault-vma-marked": "-M",
    "shmem-two-locked-mappings-then-one": "",
    "shmem-relocked-after-none": "MMMM",
    "shmem-map-fixed-over-its-locked-mapping": "",
    "shmem-exit-then-fault-in-locked-vma": "",
    "shmem-future-lock-map-fixed-populate": "",
    "shmem-private-copy-in-a-locked-vma": "MMMM----uuuu",
    "truncation-takes-pages-from-a-locked-vma": "uu------uu",
    "madv-dontneed-locked-zaps-marked-pages": "MM-M",
    "mmap-fixed-over-locked-pages": "MuuM",
    "tmpfile-pages-not-judged-while-locked": "",
    "tmpfile-pages-munlocked": "uuuu----uuuu",
}


def cells(state: State) -> str:
    """The model's cells of a process, trailing `-` left out."""
    return mlocked.cells(state).rstrip("-")


@pytest.mark.parametrize("c", model_params(ROWS + ROWS_MTHP))
def test_mlocked_model(c: Case) -> None:
    assert cells(check_model(c)) == CELLS[c.name]


def test_table_shape() -> None:
    check_table(ROWS + ROWS_MTHP, at_least=26)
    assert sorted(CELLS) == sorted(c.name for c in ROWS + ROWS_MTHP)


@pytest.mark.parametrize("orders", [0, 1 << 2 | 1 << 4], ids=["small", "mthp-16-64k"])
def test_one_process_shortcut_judges_as_counting_every_mapping(orders: int) -> None:
    """`expected` of a process alone, with nothing outside the arena, skips counting the
    mappings of each frame over the processes (`_alone`): held to the counting rule
    (`counted`) after every step of generated programs, in every process it serves,
    without and with large folios."""
    compared = judged = large = 0
    features = replace(NEWEST, mthp_orders=orders)
    for program in workload(3000, 21):
        world = World.start(State(features=features))
        for call in program.calls:
            try:
                world_step(world, call)
            except Unsupported:
                break
            for _, s in world.live():
                if len(s.processes()) > 1 or s.outside_frames or s.outside_shmem_vmas:
                    continue
                alone = mlocked._alone(s)
                if alone is None:
                    continue
                assert alone == mlocked.counted(s), program.text()
                compared += 1
                judged += alone != (0, 0)
                large += any(p is not None and p.state[-1] == LARGE for p in s.pages)
    assert compared > 10_000 and judged > 5_000, (compared, judged)
    assert large > (100 if orders else -1), large
