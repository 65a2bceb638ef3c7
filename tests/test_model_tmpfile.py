"""Files on disk (tmpfile: open(DIR, O_TMPFILE | O_RDWR) on ext4) in the model, as a table
(docs/SEMANTICS.md §21).

A tmpfile is mapped like a memfd (FS shared, FP private; `F`/`f` its page-cache pages,
`A` a private copy), with what a disk file adds: a fault on a page the file does not
cache reads ahead (mm/filemap.c do_sync_mmap_readahead) with the fault lock dropped, and
the retried fault maps what fault-around then finds. With this machine's readahead
(8 MiB, far more than any file here) read-around reads the whole file; MADV_RANDOM the
page alone; MADV_SEQUENTIAL from the page on; a PROT_EXEC VMA from the page to the VMA's
end. Write faults map their page alone, as for a memfd. ext4 zeroes the block an
unaligned end falls in through a page-cache folio that stays unread where the block is a
hole, and fault-around skips such a folio (next_uptodate_folio).

Each row was derived by hand from those functions (mm/filemap.c, mm/memory.c,
mm/readahead.c, fs/ext4/inode.c of 6.18) and holds on 6.18.44
(`test_model_tmpfile_kernel.py`); the rows marked [T] were found by a C probe first.
"""

from __future__ import annotations

import pytest

from fuzzer.model import SUPPORTED
from fuzzer.model.pages import Unsupported
from fuzzer.model.state import State
from tests.tables import Case, case, check_model, check_table, model_params, run_model

R, RW, RX = "PROT_READ", "PROT_READ|PROT_WRITE", "PROT_READ|PROT_EXEC"
FS, FP = "MAP_SHARED|MAP_FIXED", "MAP_PRIVATE|MAP_FIXED"
DISK = {"disk_ra_pages": 2048}  # this machine's: /sys/class/bdi/254:0/read_ahead_kb 8192


def new(pages: str) -> str:
    return f"tmpfile()\nftruncate(0, {pages})\n"


F16, N16 = "F" * 16, "." * 16
FILE32 = new("32p") + f"mmap(@0, 32p, {R}, {FS}, 0, 0)\n"
OK32 = ["0", "0", "@0"]

ROWS = [
    # ----------------------------------------------------------- descriptors
    # do_tmpfile: the lowest free descriptor, numbered with memfds
    case("tmpfile-fd-lowest-free", """
        tmpfile()
        memfd_create()
        close(0)
        tmpfile()
        tmpfile()
        """, ["0", "1", "0", "0", "2"], "(arena empty)", features=DISK),
    # inode_newsize_ok: past ext4's s_maxbytes (2^32 - 1 blocks of 4 KiB) is EFBIG; a
    # sparse 1 TiB is fine; a negative length is EINVAL first
    case("tmpfile-ftruncate-efbig", """
        tmpfile()
        ftruncate(0, 0x10000000000)
        ftruncate(0, 0x4000000000000)
        ftruncate(0, 0xffffffffffffffff)
        memfd_create()
        ftruncate(1, 0x4000000000000)
        """, ["0", "0", "-EFBIG", "-EINVAL", "1", "0"], "(arena empty)", features=DISK),
    # no directory the model follows (Features.disk_ra_pages 0): the executor opens ""
    case("tmpfile-without-directory", """
        tmpfile()
        memfd_create()
        """, ["-ENOENT", "0"], "(arena empty)", features={"disk_ra_pages": 0}),
    # ------------------------------------------------------------ read faults
    # [T] the miss at @5 reads the whole file ahead and retries: fault-around then maps
    # the 16-page window @0-15; @20 is cached, so its window @16-31 is mapped too
    case("read-miss-reads-ahead-then-maps-window", FILE32 + """
        touch(@5, read)
        """, [*OK32, "-"], f"@0-31 r--s {F16}{N16}", features=DISK),
    case("read-after-readahead-maps-window", FILE32 + """
        touch(@5, read)
        touch(@20, read)
        """, [*OK32, "-", "-"], f"@0-31 r--s {'F' * 32}", features=DISK),
    # the window is clipped to the VMA and stops at the end of the file (20 pages)
    case("read-window-stops-at-eof", new("20p") + f"""
        mmap(@0, 32p, {R}, {FS}, 0, 0)
        touch(@18, read)
        touch(@25, read)
        """, [*OK32, "-", "SIGBUS/ADRERR"], f"@0-31 r--s {N16}FFFF{'.' * 12}", features=DISK),
    # [T] MADV_RANDOM: no readahead, the page alone; fault-around maps what is cached
    case("random-reads-the-page-alone", FILE32 + """
        madvise(@0, 32p, MADV_RANDOM)
        touch(@5, read)
        touch(@7, read)
        touch(@6, read)
        """, [*OK32, "0", "-", "-", "-"], f"@0-31 r--s .....FFF{'.' * 24}", features=DISK),
    # [T] MADV_SEQUENTIAL: page_cache_sync_ra from the miss: @5-31 cached, @5-15 mapped
    case("sequential-reads-from-the-miss", FILE32 + """
        madvise(@0, 32p, MADV_SEQUENTIAL)
        touch(@5, read)
        madvise(@0, 32p, MADV_NORMAL)
        touch(@0, read)
        """, [*OK32, "0", "-", "0", "-"], f"@0-31 r--s {F16}{N16}", features=DISK),
    # the last touch was a miss (@0-4 not cached): read-around caches them, the retried
    # fault maps the window
    # [T] a VM_EXEC VMA reads from the page to the VMA's end (6.18's exec readahead):
    # @1 of a 2-page VMA caches @1 alone, and fault-around finds nothing else
    case("exec-reads-to-vma-end", new("2p") + f"""
        mmap(@0, 2p, {RX}, MAP_SHARED, 0, 0)
        touch(@1, read)
        """, ["0", "0", "@0", "-"], "@0-1 r-xs .F", features=DISK),
    case("exec-reads-to-vma-end-then-window", new("8p") + f"""
        mmap(@0, 8p, {RX}, {FS}, 0, 0)
        touch(@3, read)
        touch(@1, read)
        """, ["0", "0", "@0", "-", "-"], "@0-7 r-xs .FFFFFFF", features=DISK),
    # @3 reads @3-7 and maps them; @1 misses again (@0-2 not cached): the exec readahead
    # caches @1-7, and the retried fault maps @1-7 (no @0)
    # Campaign bucket: MADV_RANDOM does not stop the exec readahead ("VM_EXEC case below
    # is already intended for random access")
    case("exec-ignores-random", new("8p") + f"""
        mmap(@0, 8p, {RX}, {FS}, 0, 0)
        madvise(@0, 8p, MADV_RANDOM)
        touch(@3, read)
        """, ["0", "0", "@0", "0", "-"], "@0-7 r-xs ...FFFFF", features=DISK),
    # Before 6.18 (exec_readahead False: UML 6.1.176 and 6.12.118, twins in
    # test_kernel.py) VM_EXEC is no case of its own: read-around reads the whole file,
    # and MADV_RANDOM the page alone
    case("exec-reads-around-before-6.18", new("8p") + f"""
        mmap(@0, 8p, {RX}, {FS}, 0, 0)
        touch(@3, read)
        """, ["0", "0", "@0", "-"], "@0-7 r-xs FFFFFFFF",
        features={**DISK, "exec_readahead": False}),
    case("exec-random-reads-the-page-before-6.18", new("8p") + f"""
        mmap(@0, 8p, {RX}, {FS}, 0, 0)
        madvise(@0, 8p, MADV_RANDOM)
        touch(@3, read)
        """, ["0", "0", "@0", "0", "-"], "@0-7 r-xs ...F....",
        features={**DISK, "exec_readahead": False}),
    # ... and MADV_SEQUENTIAL comes before it: from the page to the end of the file
    case("exec-sequential-reads-to-eof", new("8p") + f"""
        mmap(@0, 4p, {RX}, {FS}, 0, 0)
        madvise(@0, 4p, MADV_SEQUENTIAL)
        touch(@1, read)
        mmap(@4, 4p, {RX}, {FS}, 0, 16384)
        touch(@6, read)
        """, ["0", "0", "@0", "0", "-", "@4", "-"], "@0-7 r-xs .FFFFFFF",
         features=DISK),
    # [T] WILLNEED reads @8-11 in; a later miss maps the window all the same
    case("willneed-reads-in-range", FILE32 + """
        madvise(@8, 4p, MADV_WILLNEED)
        touch(@0, read)
        """, [*OK32, "0", "-"], f"@0-31 r--s {F16}{N16}", features=DISK),
    # [T] with MADV_RANDOM the miss reads @0 alone: the window maps @0 and @8-11
    case("willneed-then-random-miss", FILE32 + """
        madvise(@0, 32p, MADV_RANDOM)
        madvise(@8, 4p, MADV_WILLNEED)
        touch(@0, read)
        """, [*OK32, "0", "0", "-"], f"@0-31 r--s F.......FFFF{'.' * 20}", features=DISK),
    # ----------------------------------------------------------- write faults
    # [T] no fault-around for a write: a shared write maps its page, a private one
    # copies it (do_cow_fault); the file is read ahead all the same
    case("shared-write-maps-one-page", new("32p") + f"""
        mmap(@0, 32p, {RW}, {FS}, 0, 0)
        touch(@5, write)
        touch(@7, read)
        """, [*OK32, "-", "-"], f"@0-31 rw-s {F16}{N16}", features=DISK),
    case("private-write-copies-one-page", new("32p") + f"""
        mmap(@0, 32p, {RW}, {FP}, 0, 0)
        touch(@5, write)
        touch(@7, read)
        """, [*OK32, "-", "-"], f"@0-31 rw-p FFFFFAFFFFFFFFFF{N16}", features=DISK),
    # ------------------------------------------------------------- populate
    case("populate-shared-maps-all", new("8p") + f"""
        mmap(@0, 8p, {R}, {FS}|MAP_POPULATE, 0, 0)
        """, ["0", "0", "@0"], "@0-7 r--s FFFFFFFF", features=DISK),
    case("populate-private-writable-copies-all", new("8p") + f"""
        mmap(@0, 8p, {RW}, {FP}|MAP_POPULATE, 0, 0)
        """, ["0", "0", "@0"], "@0-7 rw-p AAAAAAAA", features=DISK),
    case("mlock-populates-file-pages", new("8p") + f"""
        mmap(@0, 8p, {R}, {FS}, 0, 0)
        mlock(@0, 8p)
        """, ["0", "0", "@0", "0"], "@0-7 r--s lo FFFFFFFF", locked=8, features=DISK),
    # -------------------------------------------------- truncation and holes
    # [T] shrinking drops @16-31; growing makes them holes: the miss at @20 reads them
    # again, and the window maps them
    case("truncate-then-regrow-reads-again", FILE32 + """
        touch(@20, read)
        touch(@2, read)
        ftruncate(0, 16p)
        ftruncate(0, 32p)
        touch(@20, read)
        """, [*OK32, "-", "-", "0", "0", "-"], f"@0-31 r--s {'F' * 32}", features=DISK),
    # [T] MADV_REMOVE punches @4-7 out of the cache; the miss at @5 reads them again
    case("remove-then-fault-reads-again", new("32p") + f"""
        mmap(@0, 32p, {RW}, {FS}, 0, 0)
        touch(@20, read)
        touch(@2, read)
        madvise(@4, 4p, MADV_REMOVE)
        touch(@5, read)
        """, [*OK32, "-", "-", "0", "-"], f"@0-31 rw-s {'F' * 32}", features=DISK),
    # Campaign bucket: shrinking to 3p+3575 makes @3's folio (ext4_block_truncate_page
    # of a hole) and leaves it unread: the miss at @0 reads @0-2, fault-around skips @3;
    # a fault on @3 reads it
    case("shrink-to-unaligned-leaves-folio-unread", new("4p") + f"""
        ftruncate(0, 3p+3575)
        mmap(@0, 4p, {R}, {FS}, 0, 0)
        touch(@0, read)
        touch(@3, read)
        """, ["0", "0", "0", "@0", "-", "-"], "@0-3 r--s FFFF", features=DISK),
    case("shrink-to-unaligned-skipped-by-fault-around", new("4p") + f"""
        ftruncate(0, 3p+3575)
        mmap(@0, 4p, {R}, {FS}, 0, 0)
        touch(@0, read)
        """, ["0", "0", "0", "@0", "-"], "@0-3 r--s FFF.", features=DISK),
    # Campaign bucket: growing from 2589 bytes zeroes the old end's block: @0's folio
    # exists unread, so the fault at @0 is no miss (no readahead): @1 stays uncached
    case("grow-from-unaligned-no-readahead", new("2589") + f"""
        ftruncate(0, 2p)
        mmap(@0, 2p, {R}, MAP_SHARED, 0, 0)
        touch(@0, read)
        """, ["0", "0", "0", "@0", "-"], "@0-1 r--s F.", features=DISK),
    case("grow-from-unaligned-miss-skips-folio", new("2589") + f"""
        ftruncate(0, 2p)
        mmap(@0, 2p, {R}, MAP_SHARED, 0, 0)
        touch(@1, read)
        """, ["0", "0", "0", "@0", "-"], "@0-1 r--s .F", features=DISK),
    # Before c7fc0366c656 (6.13, ext4_zeroes_old_eof False: UML 6.1.176, twin in
    # test_kernel.py) growing zeroes nothing at the old end: no folio, so the fault at @0
    # is a miss that reads the whole file, and fault-around maps @1 too
    case("grow-from-unaligned-reads-ahead-before-6.13", new("2589") + f"""
        ftruncate(0, 2p)
        mmap(@0, 2p, {R}, MAP_SHARED, 0, 0)
        touch(@0, read)
        """, ["0", "0", "0", "@0", "-"], "@0-1 r--s FF",
        features={**DISK, "ext4_zeroes_old_eof": False}),
    # UML 6.1.176 campaign bucket (`presence: touch(read) made pages present`, 14 calls
    # minimized to 5): file pages 3-4 mapped, the file grown from 4p+2679 to 5p; 6.18
    # leaves page 4 an unread folio that fault-around skips, 6.1 reads it ahead and
    # maps it
    case("grow-mapped-tail-before-6.13", new("4p+2679") + f"""
        mmap(@0, 2p, {R}, MAP_SHARED, 0, 12288)
        ftruncate(0, 5p)
        touch(@0, read)
        """, ["0", "0", "@0", "0", "-"], "@0-1 r--s FF",
        features={**DISK, "ext4_zeroes_old_eof": False}),
    case("grow-mapped-tail-skips-old-end", new("4p+2679") + f"""
        mmap(@0, 2p, {R}, MAP_SHARED, 0, 12288)
        ftruncate(0, 5p)
        touch(@0, read)
        """, ["0", "0", "@0", "0", "-"], "@0-1 r--s F.", features=DISK),
    # an aligned end zeroes nothing: the miss reads both pages
    case("grow-from-aligned-reads-ahead", new("1p") + f"""
        ftruncate(0, 2p)
        mmap(@0, 2p, {R}, MAP_SHARED, 0, 0)
        touch(@0, read)
        """, ["0", "0", "0", "@0", "-"], "@0-1 r--s FF", features=DISK),
    # ------------------------------------------------------------------ fork
    # dup_mmap copies no PTEs of a shared file VMA: the child faults the cached file
    # (no miss) and maps its window
    case("fork-child-maps-cached-window", FILE32 + """
        touch(@5, read)
        fork()
        p1: touch(@20, read)
        """, [*OK32, "-", "pid", "-"], f"@0-31 r--s {N16}{F16}", features=DISK),
]


@pytest.mark.parametrize("c", model_params(ROWS))
def test_tmpfile_model(c: Case) -> None:
    check_model(c)


def test_table_shape() -> None:
    check_table(ROWS, at_least=20)


def test_tmpfile_is_supported() -> None:
    assert "tmpfile" in SUPPORTED


def _state() -> State:
    return State(features=ROWS[0].model_features())


@pytest.mark.parametrize("text", [
    # a page-cache miss in a VM_HUGEPAGE VMA reads into PMD-order folios
    FILE32 + "madvise(@0, 32p, MADV_HUGEPAGE)\ntouch(@5, read)",
    # a file larger than half the readahead window: read-around misses its start
    new("0x10000000000") + f"mmap(@0, 4p, {R}, {FS}, 0, 0)\ntouch(@0, read)",
    # reclaim of a file page depends on writeback and the folio's size
    FILE32 + "touch(@0, read)\nmadvise(@0, 1p, MADV_PAGEOUT)",
    # MAP_SYNC passes MAP_SHARED_VALIDATE on ext4, then ext4_file_mmap refuses it
    new("1p") + f"mmap(@0, 1p, {R}, MAP_SHARED_VALIDATE|MAP_FIXED|0x80000, 0, 0)",
])
def test_refused(text: str) -> None:
    with pytest.raises(Unsupported):
        run_model(text, _state())


def test_misses_past_mmap_lotsamiss_are_refused() -> None:
    """More page-cache misses than MMAP_LOTSAMISS (100) on one open file: the kernel may
    stop reading ahead. Each regrow of the file makes the next fault a miss."""
    head = new("1p") + f"mmap(@0, 1p, {R}, {FS}, 0, 0)\ntouch(@0, read)\n"
    cycle = "ftruncate(0, 0)\nftruncate(0, 1p)\ntouch(@0, read)\n"
    _, state = run_model(head + cycle * 3, _state())
    (disk,) = state.disk.values()
    assert disk.misses == 4
    disk.misses = 99
    _, state = run_model(cycle, state)  # the 100th miss reads ahead
    with pytest.raises(Unsupported):
        run_model(cycle, state)
