"""PMD-mapped huge pages in the huge arena against hand-derived expectations
(docs/SEMANTICS.md §22; `fuzzer/model/pmd.py`).

These rows need the 1,024-page arena (`MMFUZZ_ARENA=huge`): `tests/test_huge_arena.py`
runs this file, and its kernel twin `test_model_pmd_kernel.py`, in a pytest of their
own with it set. In the 64-page arena they are skipped. The PMD size is on for them
(`Features.mthp_orders` bit 9: hugepages-2048kB enabled for VM_HUGEPAGE VMAs, which the
twin sets to "madvise" for its rows). Each row also names the page-table state the
model keeps for the two 2 MiB regions of p0 (`State.pmds`: "" none, "t" a table, "H"
a huge page, "Z" the huge zero page), which the twin holds to smaps' AnonHugePages.
Every row was derived from the kernel function named above it and holds on 6.18.44.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from fuzzer.model import step
from fuzzer.model.pages import Unsupported
from fuzzer.model.state import RestVma, State
from fuzzer.model.world import World
from fuzzer.model.world import step as world_step
from fuzzer.oracle import compare
from fuzzer.prog import ARENA, parse
from fuzzer.prog.arena import HUGE_PAGES
from fuzzer.prog.step import Step
from fuzzer.prog.syscalls import PAGE
from fuzzer.snapshot.parse import Snapshot
from tests.synthetic import EXECUTOR_VMA, synthetic_snapshot
from tests.tables import Case, case, check_model, check_table, model_params, run_model

pytestmark = pytest.mark.skipif(
    ARENA.pages < HUGE_PAGES,
    reason="the huge arena's rows: tests/test_huge_arena.py runs them with MMFUZZ_ARENA=huge")

RW, AP = "PROT_READ|PROT_WRITE", "MAP_PRIVATE|MAP_ANONYMOUS"
FIXED = f"{AP}|MAP_FIXED"
K9 = {"mthp_orders": 1 << 9}  # hugepages-2048kB: a PMD
# A VMA of 512 pages, @0-511: the first 2 MiB region whole, MADV_HUGEPAGE
HG = f"""
        mmap(@0, 512p, {RW}, {FIXED}, -1, 0)
        madvise(@0, 512p, MADV_HUGEPAGE)"""
HG_OK = ["@0", "0"]
HUGE = f"{HG}\n        touch(@7, write)"  # a huge page at @0-511
HUGE_OK = [*HG_OK, "-"]


COLLAPSE_WRAP = ("madvise_collapse() of a range that holds no aligned 2 MiB region and starts "
                 "past a region's start returns EINVAL: (hend - hstart) wraps (fixed upstream)")


def dots(n: int) -> str:
    return "." * n


def letters(n: int, c: str = "A") -> str:
    return c * n


# (row, p0's region states at the end)
ROWS: list[tuple[Case, list[str]]] = [
    # do_huge_pmd_anonymous_page: a write on a none PMD in a VM_HUGEPAGE VMA that holds
    # the aligned region whole maps a huge page: all 512 pages
    (case("pmd-write-fault-maps-huge-page", HUGE, HUGE_OK,
          f"@0-511 rw-p {letters(512)}", features=K9), ["H", ""]),
    # without the PMD size: the PTE path, one page (and a page table)
    (case("pmd-off-write-fault-one-page", HUGE, HUGE_OK,
          f"@0-511 rw-p {dots(7)}A{dots(504)}", features={"mthp_orders": 0}), ["t", ""]),
    # ... a read maps the huge zero page (use_zero_page 1): 512 zero pages
    (case("pmd-read-maps-huge-zero-page", f"""{HG}
        touch(@7, read)
        """, [*HG_OK, "-"], f"@0-511 rw-p {letters(512, 'Z')}", features=K9), ["Z", ""]),
    # do_huge_zero_wp_pmd (6.13+): a write to the huge zero page maps a new huge page
    (case("pmd-write-over-huge-zero-page", f"""{HG}
        touch(@7, read)
        touch(@9, write)
        """, [*HG_OK, "-", "-"], f"@0-511 rw-p {letters(512)}", features=K9), ["H", ""]),
    # MADV_POPULATE_WRITE of one page: GUP's write fault maps the whole huge page
    (case("pmd-populate-write-maps-huge-page", f"""{HG}
        madvise(@0, 1p, MADV_POPULATE_WRITE)
        """, [*HG_OK, "0"], f"@0-511 rw-p {letters(512)}", features=K9), ["H", ""]),
    # thp_vma_suitable_order: a VMA 1 page off alignment holds no region whole
    (case("pmd-unaligned-vma-one-page", f"""
        mmap(@1, 512p, {RW}, {FIXED}, -1, 0)
        madvise(@1, 512p, MADV_HUGEPAGE)
        touch(@7, write)
        """, ["@1", "0", "-"], f"@1-512 rw-p {dots(6)}A{dots(505)}", features=K9), ["t", ""]),
    # munmap of one page: __split_huge_pmd, the rest stays mapped (in the same folio)
    (case("pmd-munmap-one-page-splits", f"""{HUGE}
        munmap(@100, 1p)
        """, [*HUGE_OK, "0"], f"@0-99 rw-p {letters(100)}; @101-511 rw-p {letters(411)}",
          features=K9), ["t", ""]),
    # MADV_DONTNEED of one page splits; of the whole PMD zaps it (zap_huge_pmd): the
    # region has no table again, and the next write maps a new huge page
    (case("pmd-dontneed-one-page-splits", f"""{HUGE}
        madvise(@5, 1p, MADV_DONTNEED)
        """, [*HUGE_OK, "0"], f"@0-511 rw-p {letters(5)}.{letters(506)}", features=K9),
     ["t", ""]),
    (case("pmd-dontneed-whole-then-huge-again", f"""{HUGE}
        madvise(@0, 512p, MADV_DONTNEED)
        touch(@9, write)
        """, [*HUGE_OK, "0", "-"], f"@0-511 rw-p {letters(512)}", features=K9), ["H", ""]),
    # a split leaves a page table: the next write after a whole zap takes the PTE path
    (case("pmd-split-then-dontneed-keeps-table", f"""{HUGE}
        madvise(@5, 1p, MADV_DONTNEED)
        madvise(@0, 256p, MADV_DONTNEED)
        touch(@9, write)
        """, [*HUGE_OK, "0", "0", "-"],
          f"@0-511 rw-p {dots(9)}A{dots(246)}{letters(256)}", features=K9), ["t", ""]),
    # mprotect of part: the VMA splits, and the PMD with it
    (case("pmd-mprotect-part-splits", f"""{HUGE}
        mprotect(@0, 10p, PROT_READ)
        """, [*HUGE_OK, "0"], f"@0-9 r--p {letters(10)}; @10-511 rw-p {letters(502)}",
          features=K9), ["t", ""]),
    # mprotect of the whole VMA: change_huge_pmd, still a PMD
    (case("pmd-mprotect-whole-keeps-pmd", f"""{HUGE}
        mprotect(@0, 512p, PROT_READ)
        """, [*HUGE_OK, "0"], f"@0-511 r--p {letters(512)}", features=K9), ["H", ""]),
    # mlock of the whole VMA keeps the PMD; munlock of half splits it
    (case("pmd-mlock-whole-keeps-pmd", f"""{HUGE}
        mlock(@0, 512p)
        """, [*HUGE_OK, "0"], f"@0-511 rw-p lo {letters(512)}", locked=512, features=K9),
     ["H", ""]),
    (case("pmd-munlock-half-splits", f"""{HUGE}
        mlock(@0, 512p)
        munlock(@0, 256p)
        """, [*HUGE_OK, "0", "0"], f"@0-255 rw-p {letters(256)}; @256-511 rw-p lo {letters(256)}",
          locked=256, features=K9), ["t", ""]),
    # mlock of half of an empty VM_HUGEPAGE VMA: the VMA splits first, so neither part
    # holds the region whole: the populate maps 256 pages one by one
    (case("pmd-mlock-half-of-empty-vma", f"""{HG}
        mlock(@0, 256p)
        """, [*HG_OK, "0"], f"@0-255 rw-p lo {letters(256)}; @256-511 rw-p {dots(256)}",
          locked=256, features=K9), ["t", ""]),
    # MADV_NOHUGEPAGE changes the VMA's flags, not its bounds: the PMD stays
    (case("pmd-nohugepage-keeps-pmd", f"""{HUGE}
        madvise(@0, 512p, MADV_NOHUGEPAGE)
        """, [*HUGE_OK, "0"], f"@0-511 rw-p {letters(512)}", features=K9), ["H", ""]),
    # ... and a VMA that has it maps no huge page
    (case("pmd-nohugepage-vma-one-page", f"""
        mmap(@0, 512p, {RW}, {FIXED}, -1, 0)
        madvise(@0, 512p, MADV_NOHUGEPAGE)
        touch(@7, write)
        """, ["@0", "0", "-"], f"@0-511 rw-p {dots(7)}A{dots(504)}", features=K9), ["t", ""]),
    # fork: copy_huge_pmd, both map the huge page; every page shared
    (case("pmd-fork-shares-huge-page", f"""{HUGE}
        fork()
        """, [*HUGE_OK, "pid"], f"@0-511 rw-p {letters(512, 'a')}", features=K9), ["H", ""]),
    # the child's write splits its own PMD and copies one page (do_huge_pmd_wp_page
    # falls back to the PTE path)...
    (case("pmd-child-write-copies-one-page", f"""{HUGE}
        fork()
        p1: touch(@3, write)
        """, [*HUGE_OK, "pid", "-"], f"@0-511 rw-p aaaA{letters(508, 'a')}", features=K9),
     None),
    # ... while the parent's PMD still maps all 512: pagemap gives each of its pages the
    # exclusive bit of the PMD's first page (pagemap_pmd_range), which the child still
    # maps, so page 3 reads shared though only the parent maps it now
    (case("pmd-parent-pages-follow-first-page-shared", f"""{HUGE}
        fork()
        p1: touch(@3, write)
        touch(@8, read)
        """, [*HUGE_OK, "pid", "-", "-"], f"@0-511 rw-p {letters(512, 'a')}", features=K9),
     ["H", ""]),
    # ... and once the child copied page 0, all 512 read exclusive, the 511 it still
    # maps too
    (case("pmd-parent-pages-follow-first-page-exclusive", f"""{HUGE}
        fork()
        p1: touch(@0, write)
        touch(@8, read)
        """, [*HUGE_OK, "pid", "-", "-"], f"@0-511 rw-p {letters(512)}", features=K9),
     ["H", ""]),
    # ... and the child's write to page 0, which only it maps now, still faults (fork
    # left its PMD write-protected) and cannot reuse the folio the parent maps 511 pages
    # of: the child's PMD splits, its pages read one by one. Campaign bucket (huge arena,
    # 6.18.44): `presence: touch(write) left pages not anonymous`, a false alarm of the
    # model, which took the write for a no-op and kept the PMD
    (case("pmd-child-write-to-its-own-page-splits", f"""{HUGE}
        fork()
        touch(@0, write)
        p1: touch(@0, write)
        """, [*HUGE_OK, "pid", "-", "-"], f"@0-511 rw-p A{letters(511, 'a')}", features=K9),
     ["t", ""]),
    # mremap of the whole VMA by 2 MiB: move_huge_pmd, still a PMD there; the source
    # region has no table left
    (case("pmd-mremap-aligned-keeps-pmd", f"""{HUGE}
        mremap(@0, 512p, 512p, MREMAP_MAYMOVE|MREMAP_FIXED, @512)
        """, [*HUGE_OK, "@512"], f"@512-1023 rw-p {letters(512)}", features=K9), ["", "H"]),
    # mremap of half: split, then PTE by PTE; both regions have tables
    (case("pmd-mremap-half-splits", f"""{HUGE}
        mremap(@0, 256p, 256p, MREMAP_MAYMOVE|MREMAP_FIXED, @600)
        """, [*HUGE_OK, "@600"],
          f"@256-511 rw-p {letters(256)}; @600-855 rw-p {letters(256)}", features=K9),
     ["t", "t"]),
    # both regions: a huge page in the first, the huge zero page in the second
    (case("pmd-two-regions", f"""
        mmap(@0, 1024p, {RW}, {FIXED}, -1, 0)
        madvise(@0, 1024p, MADV_HUGEPAGE)
        touch(@7, write)
        touch(@600, read)
        """, ["@0", "0", "-", "-"], f"@0-1023 rw-p {letters(512)}{letters(512, 'Z')}",
          features=K9), ["H", "Z"]),
    # free_pgtables: munmap of the region's only VMA frees its table, so a new VMA there
    # gets a huge page...
    (case("pmd-unmap-frees-table", f"""
        mmap(@0, 512p, {RW}, {FIXED}, -1, 0)
        touch(@3, write)
        munmap(@0, 512p)
        {HG.strip()}
        touch(@7, write)
        """, ["@0", "-", "0", "@0", "0", "-"], f"@0-511 rw-p {letters(512)}", features=K9),
     ["H", ""]),
    # ... and so does a MAP_FIXED mmap over it (vms_clear_ptes, between the VMAs around)
    (case("pmd-map-fixed-frees-table", f"""
        mmap(@0, 512p, {RW}, {FIXED}, -1, 0)
        touch(@3, write)
        {HG.strip()}
        touch(@7, write)
        """, ["@0", "-", "@0", "0", "-"], f"@0-511 rw-p {letters(512)}", features=K9),
     ["H", ""]),
    # ... but not while another VMA lies in the region: a VMA grown over it later
    # finds the table, and its write takes the PTE path
    (case("pmd-table-kept-by-a-neighbour", f"""
        mmap(@0, 1p, PROT_READ, {FIXED}, -1, 0)
        touch(@0, read)
        mmap(@1, 511p, {RW}, {FIXED}, -1, 0)
        munmap(@0, 1p)
        mremap(@1, 511p, 512p, MREMAP_MAYMOVE|MREMAP_FIXED, @512)
        madvise(@512, 512p, MADV_HUGEPAGE)
        touch(@520, write)
        """, ["@0", "-", "@1", "0", "@512", "0", "-"],
          f"@512-1023 rw-p {dots(8)}A{dots(503)}", features=K9), ["", "t"]),
    # do_fault_around clamps its window to the page table (PTRS_PER_PTE): a read at @511
    # maps the cached page @512 of the same VMA no more, which lies in the next region's
    # table. Campaign bucket (huge arena, 6.18.44, a tmpfile): `presence: touch(read)
    # left pages not shmem`, a false alarm of the model, which clamped to the VMA alone
    (case("pmd-fault-around-stops-at-page-table", f"""
        memfd_create()
        ftruncate(0, 2p)
        mmap(@0, 2p, {RW}, MAP_SHARED|MAP_FIXED, 0, 0)
        touch(@0, write)
        touch(@1, write)
        mmap(@511, 2p, PROT_READ, MAP_SHARED|MAP_FIXED, 0, 0)
        touch(@511, read)
        """, ["0", "0", "@0", "-", "-", "@511", "-"], "@0-1 rw-s fF; @511-512 r--s f.",
          features=K9), ["t", ""]),
    # MADV_COLLAPSE: a region mapped by a PMD already is done (SCAN_PMD_MAPPED)...
    (case("pmd-collapse-mapped-is-done", f"""{HUGE}
        madvise(@0, 512p, MADV_COLLAPSE)
        """, [*HUGE_OK, "0"], f"@0-511 rw-p {letters(512)}", features=K9), ["H", ""]),
    # ... one without a page table is SCAN_PMD_NULL: EINVAL
    (case("pmd-collapse-empty-einval", f"""{HG}
        madvise(@0, 512p, MADV_COLLAPSE)
        """, [*HG_OK, "-EINVAL"], f"@0-511 rw-p {dots(512)}", features=K9), ["", ""]),
    # ... a VMA without an anon_vma is EINVAL (__thp_vma_allowable_orders: only smaps and
    # faults may go on without one). Campaign bucket (huge arena, 6.18.44): the model
    # had collapsed nothing and returned 0
    (case("pmd-collapse-no-anon-vma-einval", """
        mmap(@0, 512p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        madvise(@0, 1p, MADV_COLLAPSE)
        """, ["@0", "-EINVAL"], f"@0-511 ---p {dots(512)}", features=K9), ["", ""]),
    # ... with one, a range that holds no aligned region whole collapses nothing: 0
    # (hstart == hend in madvise_collapse)
    (case("pmd-collapse-no-whole-region-is-nothing", f"""
        mmap(@0, 512p, {RW}, {FIXED}, -1, 0)
        touch(@3, write)
        madvise(@0, 1p, MADV_COLLAPSE)
        """, ["@0", "-", "0"], f"@0-511 rw-p ...A{dots(508)}", features=K9), ["t", ""]),
    # ... and so does one that starts past a region's start (hstart > hend): "the madvised
    # range contains no complete PMD-aligned window", a successful no-op. 6.18.44 returns
    # EINVAL there: `thps == ((hend - hstart) >> HPAGE_PMD_SHIFT)` wraps. Fixed upstream
    # ("if (hstart >= hend) return 0;" in madvise_collapse); README Findings
    (case("pmd-collapse-inside-a-region-is-nothing", f"""
        mmap(@0, 512p, {RW}, {FIXED}, -1, 0)
        touch(@1, write)
        madvise(@1, 2p, MADV_COLLAPSE)
        """, ["@0", "-", "0"], f"@0-511 rw-p .A{dots(510)}", features=K9,
          kernel_bug=COLLAPSE_WRAP), ["t", ""]),
    # ... a VMA that holds no region whole is EINVAL before anything is scanned
    (case("pmd-collapse-small-vma-einval", f"""
        mmap(@0, 16p, {RW}, {FIXED}, -1, 0)
        touch(@0, write)
        madvise(@0, 16p, MADV_COLLAPSE)
        """, ["@0", "-", "-EINVAL"], f"@0-15 rw-p A{dots(15)}", features=K9), ["t", ""]),
]

CASES = [c for c, _ in ROWS]
REGIONS = {c.name: regions for c, regions in ROWS}


def test_table_shape() -> None:
    check_table(CASES, at_least=30)


@pytest.mark.parametrize("c", model_params(CASES))
def test_pmd(c: Case) -> None:
    state = check_model(c)
    want = REGIONS[c.name]
    if want is not None:  # (the state of the process that made the last call)
        assert state.pmds == want, c.name


@pytest.mark.parametrize(("text", "why"), [
    # a whole-region zap of a table's last pages: CONFIG_PT_RECLAIM may free it
    (f"""
        mmap(@0, 512p, {RW}, {FIXED}, -1, 0)
        touch(@3, write)
        madvise(@0, 512p, MADV_DONTNEED)
        madvise(@0, 512p, MADV_HUGEPAGE)
        touch(@7, write)
        """, "CONFIG_PT_RECLAIM"),
    # collapsing PTEs into a huge page
    (f"""{HG}
        touch(@3, read)
        madvise(@0, 512p, MADV_COLLAPSE)
        """, "collapse is not modelled"),
])
def test_what_the_model_leaves_unjudged(text: str, why: str) -> None:
    with pytest.raises(Unsupported, match=why):
        run_model(text, State(features=Case("", "", (), "", features=tuple(K9.items()))
                              .model_features()))


def test_a_fork_child_inherits_the_regions() -> None:
    """copy_huge_pmd copies the PMD (and the huge zero page's); a VM_WIPEONFORK VMA's
    child starts without a table."""
    world = World.start(State(features=Case("", "", (), "", features=tuple(K9.items()))
                              .model_features()))
    for call in parse(f"""
            mmap(@0, 1024p, {RW}, {FIXED}, -1, 0)
            madvise(@0, 1024p, MADV_HUGEPAGE)
            touch(@7, write)
            touch(@600, read)
            madvise(@512, 512p, MADV_WIPEONFORK)
            fork()
            """).calls:
        world_step(world, call)
    assert world.proc(0).pmds == ["H", "Z"]
    assert world.proc(1).pmds == ["H", ""]


def test_calls_on_a_pmd_are_features_of_their_own() -> None:
    """Coverage's ` pmd` word: a call whose range meets a region a PMD maps (a huge page
    or the huge zero page) is a feature apart, so the search keeps what reaches it."""
    from tests.test_coverage import model_features

    got = model_features(f"""{HUGE}
        munmap(@100, 1p)
        mprotect(@0, 1p, PROT_READ)
        touch(@600, read)
        """, 1 << 9)
    assert "munmap ok on present folio pmd" in got
    assert "mprotect(RO) ok on present folio" in got  # split by the munmap: no PMD left


def _bend_huge(snap: Snapshot, first_page: int, kb: int) -> Snapshot:
    """`snap` with AnonHugePages of the arena VMA that starts at `first_page` set to `kb`."""
    vmas = tuple(replace(v, anon_huge=kb * 1024) if v.start == ARENA.base + first_page * PAGE
                 else v for v in snap.vmas)
    return replace(snap, vmas=vmas)


# (row, program, the VMA bent: first page and AnonHugePages in kB or None, titles): the
# oracle holds each arena VMA's AnonHugePages to the regions a PMD maps a huge page in,
# against a synthetic kernel that agrees with the model (tests/synthetic.py) but for the
# bend; the kernel twin (test_model_pmd_kernel.py) compares the real smaps.
ORACLE_ROWS = [
    ("huge-page-agrees", f"{HUGE}", None, []),
    ("huge-page-shown-as-ptes", f"{HUGE}", (0, 0),
     ["rss: touch(write) left AnonHugePages different from the huge pages PMDs map"]),
    # smaps_pmd_entry counts the huge zero page in no field
    ("huge-zero-page-counts-nothing", f"{HG}\n        touch(@7, read)", (0, 2048),
     ["rss: touch(read) left AnonHugePages different from the huge pages PMDs map"]),
    # a split leaves a PTE-mapped folio: no PMD, so nothing in AnonHugePages
    ("split-page-is-not-a-pmd", f"{HUGE}\n        munmap(@100, 1p)", (0, 2048),
     ["rss: munmap left AnonHugePages different from the huge pages PMDs map"]),
    ("two-vmas-two-regions", f"""
        mmap(@0, 1024p, {RW}, {FIXED}, -1, 0)
        madvise(@0, 1024p, MADV_HUGEPAGE)
        touch(@7, write)
        touch(@600, write)
        mprotect(@512, 512p, PROT_READ)""", (512, 4096),
     ["rss: mprotect(R) left AnonHugePages different from the huge pages PMDs map"]),
]


@pytest.mark.parametrize(("text", "bend", "titles"),
                         [pytest.param(*r[1:], id=r[0]) for r in ORACLE_ROWS])
def test_oracle_holds_anon_huge_pages_to_the_pmds(
        text: str, bend: tuple[int, int] | None, titles: list[str]) -> None:
    state = State(rest=[RestVma(EXECUTOR_VMA.start, EXECUTOR_VMA.end, lockable=True)],
                  features=Case("", "", (), "", features=tuple(K9.items())).model_features())
    program = parse(text)
    for call in program.calls[:-1]:
        step(state, call)
    last = program.calls[-1]
    pred = step(state, last)
    snap = synthetic_snapshot(state)
    if bend is not None:
        snap = _bend_huge(snap, *bend)
    found = compare(Step(len(program) - 1, last, pred.ret, pred.signal), pred, state, snap)
    assert [d.title for d in found] == titles
