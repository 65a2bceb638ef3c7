"""Model table: Pss of pages mapped three times or more (docs/SEMANTICS.md §10).

`smaps_account` divides each page by its mapcount, in 1/4096 byte units summed over
the VMA and only then shown in whole kB, so a page mapped three times is not one
mapped twice: the oracle's Pss check needs the real count of every mapping. The
rows are the minimized programs of three soak buckets ("left Pss different from
the shares of pages mapped twice") and their neighbours: a page mapped by several
VMAs outside the arena (mmaps the kernel placed there, mremap duplicates of a
shared mapping), which each count, however often mlockall populates them, but not
where a private one holds its own copy; three mappings in the arena; private pages
shared by three or four processes after fork. `PSS` pins, per row, the mapcounts
of one arena VMA's pages and the Pss the kernel shows for it; the kernel twin
(`test_model_pss_kernel.py`) reads that Pss from smaps. (Rows with
mlockall(MCL_CURRENT) do not pin VmLck: it locks the executor's own VMAs too.)
"""

from __future__ import annotations

import pytest

from fuzzer.model.pages import mapcounts
from fuzzer.prog.syscalls import PAGE
from tests.tables import Case, case, check_model, check_table, model_params

PSS_SHIFT = 12  # fs/proc/task_mmu.c

ROWS = [
    # Bucket 5: @63 lies in the anonymous mapping at @56, so both mmaps of the memfd's
    # second page go outside the arena; MCL_FUTURE locks and populates each. The page at
    # @39 is mapped three times: Pss 4096/3 bytes, 1 kB (the model counted 2: 2 kB).
    case("memfd-page-mapped-by-two-mmaps-outside", """
        mmap(@56, 8p, PROT_NONE, MAP_SHARED|MAP_ANONYMOUS, -1, 0)
        memfd_create()
        ftruncate(0, 2p)
        mmap(@39, 1p, PROT_READ, MAP_SHARED, 0, 4096)
        mlockall(MCL_CURRENT|MCL_FUTURE)
        mmap(@63, 1p, PROT_READ, MAP_SHARED, 0, 4096)
        mmap(@63, 1p, PROT_READ, MAP_SHARED, 0, 4096)
        """, ["@56", "0", "0", "@39", "0", "outside", "outside"],
         "@39 r--s lo f; @56-63 ---s lo ........"),
    # Bucket 6: two private read-only mappings placed outside, populated, map the
    # page-cache page as the shared one does.
    case("memfd-page-mapped-by-two-private-mmaps-outside", """
        memfd_create()
        ftruncate(0, 1p)
        mmap(@0, 1p, PROT_READ, MAP_SHARED, 0, 0)
        mlock2(@0, 1p, 0)
        mmap(@0, 1p, PROT_READ, MAP_PRIVATE|MAP_POPULATE, 0, 0)
        mmap(@0, 1p, PROT_READ, MAP_PRIVATE|MAP_POPULATE, 0, 0)
        """, ["0", "0", "@0", "0", "outside", "outside"], "@0 r--s lo f", locked=1),
    # Bucket 7: mremap with old_size 0 duplicates a shared mapping; a locked one's new
    # VMA is populated, so the last page is mapped once more by each duplicate.
    case("shared-anon-page-duplicated-twice-by-mremap", """
        mmap(@0, 8p, PROT_READ, MAP_SHARED|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        mremap(@7, 0, 1p, MREMAP_MAYMOVE, @0)
        mremap(@7, 0, 1p, MREMAP_MAYMOVE, @0)
        """, ["@0", "outside", "outside"], "@0-7 r--s lo FFFFFFFf", locked=10),
    # Unlocked duplicates map nothing until mlockall populates them; a second
    # MCL_CURRENT maps nothing more (PTEs already there).
    case("mlockall-populates-two-mremap-duplicates-once", """
        mmap(@0, 8p, PROT_READ, MAP_SHARED|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        mremap(@7, 0, 1p, MREMAP_MAYMOVE, @0)
        mremap(@7, 0, 1p, MREMAP_MAYMOVE, @0)
        mlockall(MCL_CURRENT)
        mlockall(MCL_CURRENT)
        """, ["@0", "outside", "outside", "0", "0"], "@0-7 r--s lo FFFFFFFf"),
    # Truncation unmaps the page from every VMA outside; faulted back in at @7 it is
    # mapped once (its duplicates are not touched), while @6 stays mapped three times.
    case("truncation-unmaps-the-page-from-every-duplicate", """
        memfd_create()
        ftruncate(0, 8p)
        mmap(@0, 8p, PROT_READ, MAP_SHARED|MAP_LOCKED, 0, 0)
        mremap(@6, 0, 2p, MREMAP_MAYMOVE, @0)
        mremap(@6, 0, 2p, MREMAP_MAYMOVE, @0)
        ftruncate(0, 7p)
        ftruncate(0, 8p)
        touch(@7, read)
        """, ["0", "0", "@0", "outside", "outside", "0", "0", "-"],
         "@0-7 r--s lo FFFFFFfF", locked=12),
    # A writable private mapping placed outside and populated takes copies of the page:
    # it maps no page-cache page, and the read-only one outside still does.
    case("private-copies-outside-leave-other-mappings-outside", """
        memfd_create()
        ftruncate(0, 1p)
        mmap(@0, 1p, PROT_READ, MAP_SHARED|MAP_POPULATE, 0, 0)
        mmap(@0, 1p, PROT_READ, MAP_PRIVATE|MAP_POPULATE, 0, 0)
        mmap(@0, 1p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_POPULATE, 0, 0)
        """, ["0", "0", "@0", "outside", "outside"], "@0 r--s f"),
    # A private VMA written, made read-only and moved outside (locked, so its new part is
    # populated): fault-around skips the offset where it holds its own copy, so the
    # page-cache page at offset 0 is mapped at @5 alone.
    case("fault-around-outside-skips-a-private-copy", """
        memfd_create()
        ftruncate(0, 4p)
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_FIXED, 0, 0)
        mmap(@2, 1p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        touch(@0, write)
        mprotect(@0, 2p, PROT_READ)
        mlock(@0, 2p)
        mremap(@0, 2p, 4p, MREMAP_MAYMOVE, @0)
        mmap(@5, 1p, PROT_READ, MAP_SHARED|MAP_FIXED|MAP_POPULATE, 0, 0)
        """, ["0", "0", "@0", "@2", "-", "0", "0", "outside", "@5"],
         "@2 r--p .; @5 r--s F", locked=4),
    # Three mappings in the arena, shared and private: each VMA shows a third.
    case("memfd-page-mapped-three-times-in-the-arena", """
        memfd_create()
        ftruncate(0, 1p)
        mmap(@0, 1p, PROT_READ, MAP_SHARED|MAP_FIXED|MAP_POPULATE, 0, 0)
        mmap(@2, 1p, PROT_READ, MAP_SHARED|MAP_FIXED|MAP_POPULATE, 0, 0)
        mmap(@4, 1p, PROT_READ, MAP_PRIVATE|MAP_FIXED|MAP_POPULATE, 0, 0)
        """, ["0", "0", "@0", "@2", "@4"], "@0 r--s f; @2 r--s f; @4 r--p f"),
    # Four pages at a third each: 5461 bytes, 5 kB (rounding page by page in kB says 4).
    case("memfd-pages-mapped-three-times-summed-before-rounding", """
        memfd_create()
        ftruncate(0, 4p)
        mmap(@0, 4p, PROT_READ, MAP_SHARED|MAP_FIXED|MAP_POPULATE, 0, 0)
        mmap(@5, 4p, PROT_READ, MAP_SHARED|MAP_FIXED|MAP_POPULATE, 0, 0)
        mmap(@10, 4p, PROT_READ, MAP_SHARED|MAP_FIXED|MAP_POPULATE, 0, 0)
        """, ["0", "0", "@0", "@5", "@10"],
         "@0-3 r--s ffff; @5-8 r--s ffff; @10-13 r--s ffff"),
    # A fork child has no VM_DONTCOPY VMA outside the arena, so its mlockall maps the
    # page by its own two arena mappings only: three mappings in all, not four.
    case("fork-child-without-dontfork-vma-outside", """
        memfd_create()
        ftruncate(0, 4p)
        mmap(@0, 4p, PROT_READ, MAP_SHARED|MAP_POPULATE, 0, 0)
        mmap(@4, 4p, PROT_READ, MAP_SHARED, 0, 0)
        mmap(@8, 4p, PROT_READ, MAP_SHARED, 0, 0)
        madvise(@4, 4p, MADV_DONTFORK)
        mremap(@4, 4p, 5p, MREMAP_MAYMOVE, @0)
        fork()
        p1: mlockall(MCL_CURRENT)
        """, ["0", "0", "@0", "@4", "@8", "0", "outside", "pid", "0"],
         "@0-3 r--s lo ffff; @8-11 r--s lo ffff"),
    # Private anonymous pages fork left in three processes, then four: the same
    # division (4 pages at a third: 5 kB; at a quarter: 4 kB).
    case("fork-three-processes-share-private-pages", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        fork()
        fork()
        """, ["@0", "pid", "pid"], "@0-3 rw-p aaaa"),
    case("fork-four-processes-share-private-pages", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        fork()
        fork()
        p1: fork()
        """, ["@0", "pid", "pid", "pid"], "@0-3 rw-p aaaa"),
]

# Per row: the first arena page of one VMA, the mapcounts of its pages over every
# process (`pages.mapcounts`), and the Pss in kB that smaps shows for it.
PSS: dict[str, tuple[int, list[int], int]] = {
    "memfd-page-mapped-by-two-mmaps-outside": (39, [3], 1),
    "memfd-page-mapped-by-two-private-mmaps-outside": (0, [3], 1),
    "shared-anon-page-duplicated-twice-by-mremap": (0, [1] * 7 + [3], 29),
    "mlockall-populates-two-mremap-duplicates-once": (0, [1] * 7 + [3], 29),
    "truncation-unmaps-the-page-from-every-duplicate": (0, [1] * 6 + [3, 1], 29),
    "private-copies-outside-leave-other-mappings-outside": (0, [2], 2),
    "fault-around-outside-skips-a-private-copy": (5, [1], 4),
    "memfd-page-mapped-three-times-in-the-arena": (2, [3], 1),
    "memfd-pages-mapped-three-times-summed-before-rounding": (5, [3] * 4, 5),
    "fork-child-without-dontfork-vma-outside": (0, [3] * 4, 5),
    "fork-three-processes-share-private-pages": (0, [3] * 4, 5),
    "fork-four-processes-share-private-pages": (0, [4] * 4, 4),
}


def pss_kb(counts: list[int]) -> int:
    """smaps_account and __show_smap: each page's share, summed, then shown in kB."""
    shares = sum((PAGE << PSS_SHIFT) // n if n >= 2 else PAGE << PSS_SHIFT for n in counts)
    return (shares >> PSS_SHIFT) >> 10


@pytest.mark.parametrize("c", model_params(ROWS))
def test_pss_model(c: Case) -> None:
    check_model(c)


@pytest.mark.parametrize("name", sorted(PSS))
def test_pss_mapcounts(name: str) -> None:
    (c,) = [c for c in ROWS if c.name == name]
    first, counts, kb = PSS[name]
    state = check_model(c)
    assert mapcounts(state)[first:first + len(counts)] == counts
    assert pss_kb(counts) == kb


def test_table_is_large_and_unique() -> None:
    check_table(ROWS, at_least=10)
    assert set(PSS) == {c.name for c in ROWS}
