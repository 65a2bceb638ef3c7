"""memfd mappings in the reference model (docs/SEMANTICS.md §2, §7, §9, §11), as a table.

The same shape as `test_model.py`: program text, the result of each step, the
arena as `render` prints it at the end and, where locking is involved,
`State.locked_pages()`. A memfd mapped shared is FS (`rw-s`), mapped private FP
(`rw-p`); `F`/`f` are its page-cache pages mapped once or more than once, `A`
a private copy. Expectations come from docs/SEMANTICS.md and the kernel functions
named beside each case (mm/shmem.c, mm/memory.c, mm/truncate.c, mm/madvise.c,
mm/mmap.c, fs/open.c of 6.18), not from running the model;
`test_model_memfd_kernel.py` runs the same table on the real kernel.

The executor starts with no descriptor open: the first memfd is fd 0.
"""

from __future__ import annotations

import pytest

from fuzzer.model import SUPPORTED, covers
from fuzzer.prog import parse
from tests.tables import (
    EXEC_PKEY,
    EXEC_READABLE,
    Case,
    case,
    check_model,
    check_table,
    model_params,
    run_model,
)

RW = "PROT_READ|PROT_WRITE"
FS = "MAP_SHARED|MAP_FIXED"
FP = "MAP_PRIVATE|MAP_FIXED"
AP = "MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED"
NEW = "memfd_create()\n"

ROWS = [
    # ------------------------------------------------------------ descriptors
    # alloc_fd: the lowest free number; close frees it; fds are unsigned int to the
    # kernel, so 4294967296 is fd 0
    case("fd-lowest-free", """
        memfd_create()
        memfd_create()
        memfd_create()
        close(1)
        memfd_create()
        close(1)
        close(1)
        close(7)
        close(4294967296)
        memfd_create()
        """, ["0", "1", "2", "0", "1", "0", "-EBADF", "-EBADF", "0", "0"], "(arena empty)"),
    # EBADF for a descriptor never opened or closed (ksys_mmap_pgoff's fget, and
    # do_sys_ftruncate); an unaligned offset is EINVAL before the fd is looked at
    # (x86 sys_mmap), and so is a negative length to ftruncate
    case("fd-ebadf", f"""
        mmap(@0, 1p, PROT_READ, {FS}, 0, 0)
        memfd_create()
        mmap(@0, 1p, PROT_READ, {FS}, 1, 0)
        mmap(@0, 1p, PROT_READ, {FS}, -1, 0)
        mmap(@0, 1p, PROT_READ, {FS}, 5, 5)
        ftruncate(1, 1p)
        ftruncate(5, 0xffffffffffffffff)
        close(0)
        ftruncate(0, 1p)
        mmap(@0, 1p, PROT_READ, {FP}, 0, 0)
        """, ["-EBADF", "0", "-EBADF", "-EBADF", "-EINVAL", "-EBADF", "-EINVAL", "0",
              "-EBADF", "-EBADF"], "(arena empty)"),
    # MAP_ANONYMOUS ignores the fd, open or not
    case("fd-ignored-when-anonymous", f"""
        memfd_create()
        mmap(@0, 1p, {RW}, {AP}, 0, 0)
        mmap(@1, 1p, {RW}, {AP}, 9, 0)
        touch(@0, write)
        """, ["0", "@0", "@1", "-"], "@0-1 rw-p A."),
    # -------------------------------------------------------- §9 shared (FS)
    # shmem_fault allocates a hole on a read or a write fault: F
    case("shared-faults-allocate", NEW + f"""
        ftruncate(0, 4p)
        mmap(@0, 4p, {RW}, {FS}, 0, 0)
        touch(@1, read)
        touch(@3, write)
        """, ["0", "0", "@0", "-", "-"], "@0-3 rw-s .F.F"),
    # §2: a new mapping has no pages, even of a file whose cache is full; a read
    # fault maps the cached ones around it (do_fault_around, 16 pages of the VMA)
    case("shared-fault-around", NEW + f"""
        ftruncate(0, 8p)
        mmap(@0, 8p, {RW}, {FS}|MAP_POPULATE, 0, 0)
        munmap(@0, 8p)
        mmap(@0, 8p, {RW}, {FS}, 0, 0)
        touch(@2, read)
        """, ["0", "0", "@0", "0", "@0", "-"], "@0-7 rw-s FFFFFFFF"),
    # ... a write fault maps only its own page (do_shared_fault)
    case("shared-write-no-fault-around", NEW + f"""
        ftruncate(0, 8p)
        mmap(@0, 8p, {RW}, {FS}|MAP_POPULATE, 0, 0)
        munmap(@0, 8p)
        mmap(@0, 8p, {RW}, {FS}, 0, 0)
        touch(@2, write)
        """, ["0", "0", "@0", "0", "@0", "-"], "@0-7 rw-s ..F....."),
    # the cache lives while a descriptor is open; closed and unmapped, the memfd is freed,
    # and the next memfd_create makes an empty one at the same fd
    case("closed-and-unmapped-is-freed", NEW + f"""
        ftruncate(0, 4p)
        mmap(@0, 4p, {RW}, {FS}|MAP_POPULATE, 0, 0)
        munmap(@0, 4p)
        close(0)
        memfd_create()
        ftruncate(0, 4p)
        mmap(@0, 4p, {RW}, {FS}, 0, 0)
        touch(@0, read)
        """, ["0", "0", "@0", "0", "0", "0", "0", "@0", "-"], "@0-3 rw-s F..."),
    # ... but a mapping keeps the file alive after close: fault-around in a second
    # mapping finds the first one's pages, now mapped twice
    case("mapping-outlives-close", NEW + f"""
        ftruncate(0, 4p)
        mmap(@0, 2p, {RW}, {FS}|MAP_POPULATE, 0, 0)
        mmap(@4, 4p, {RW}, {FS}, 0, 0)
        close(0)
        touch(@6, read)
        """, ["0", "0", "@0", "@4", "0", "-"], "@0-1 rw-s ff; @4-7 rw-s ffF."),
    # -------------------------------------------------------- §9 private (FP)
    # a read fault maps the page-cache page (allocating the hole in the memfd): a
    # shared mapping's fault-around then finds it cached
    case("private-read-maps-cache", NEW + f"""
        ftruncate(0, 4p)
        mmap(@0, 4p, {RW}, {FP}, 0, 0)
        mmap(@8, 4p, {RW}, {FS}, 0, 0)
        touch(@1, read)
        touch(@8, read)
        """, ["0", "0", "@0", "@8", "-", "-"], "@0-3 rw-p .f..; @8-11 rw-s Ff.."),
    # a write makes a private anonymous copy: do_wp_page over a mapped cache page,
    # do_cow_fault over nothing (which still allocates the page in the memfd first)
    case("private-write-copies", NEW + f"""
        ftruncate(0, 4p)
        mmap(@0, 4p, {RW}, {FP}, 0, 0)
        mmap(@8, 4p, {RW}, {FS}, 0, 0)
        touch(@1, read)
        touch(@1, write)
        touch(@2, write)
        touch(@8, read)
        """, ["0", "0", "@0", "@8", "-", "-", "-", "-"], "@0-3 rw-p .AA.; @8-11 rw-s FFF."),
    # fault-around in a private mapping maps cached pages but skips PTEs already there
    # (a private copy stays)
    case("private-fault-around-skips-copies", NEW + f"""
        ftruncate(0, 4p)
        mmap(@8, 4p, {RW}, {FS}|MAP_POPULATE, 0, 0)
        mmap(@0, 4p, {RW}, {FP}, 0, 0)
        touch(@1, write)
        touch(@0, read)
        """, ["0", "0", "@8", "@0", "-", "-"], "@0-3 rw-p fAff; @8-11 rw-s fFff"),
    # §2 populate: a read-only private mapping takes read faults (cache pages, holes
    # allocated), a writable one write faults (a private copy of every page)
    case("private-populate", NEW + f"""
        ftruncate(0, 3p)
        mmap(@0, 3p, PROT_READ, {FP}|MAP_POPULATE, 0, 0)
        mmap(@4, 3p, {RW}, {FP}|MAP_POPULATE, 0, 0)
        mmap(@8, 3p, PROT_READ, {FS}, 0, 0)
        touch(@8, read)
        """, ["0", "0", "@0", "@4", "@8", "-"],
        "@0-2 r--p fff; @4-6 rw-p AAA; @8-10 r--s fff"),
    # a read-only private mapping: a write is SIGSEGV/ACCERR, not a copy
    case("private-readonly-write", NEW + f"""
        ftruncate(0, 1p)
        mmap(@0, 1p, PROT_READ, {FP}, 0, 0)
        touch(@0, write)
        touch(@0, read)
        """, ["0", "0", "@0", "SIGSEGV/ACCERR", "-"], "@0 r--p F"),
    # ------------------------------------------------ §9 SIGBUS past the end
    # shmem_get_folio_gfp: an offset at or past the size rounded up to a page is
    # SIGBUS, in shared and private mappings, for reads and writes. A read fault
    # still maps what fault-around finds first (@5 here); the size 1p+1 is 2 pages.
    case("sigbus-past-eof", NEW + f"""
        ftruncate(0, 1p+1)
        mmap(@0, 4p, {RW}, {FS}, 0, 0)
        mmap(@4, 4p, {RW}, {FP}, 0, 0)
        touch(@1, read)
        touch(@2, read)
        touch(@2, write)
        touch(@6, read)
        touch(@7, write)
        touch(@5, write)
        """, ["0", "0", "@0", "@4", "-", "SIGBUS/ADRERR", "SIGBUS/ADRERR", "SIGBUS/ADRERR",
              "SIGBUS/ADRERR", "-"], "@0-3 rw-s .F..; @4-7 rw-p .A.."),
    # a new memfd is empty: every page is past the end
    case("sigbus-empty-file", NEW + f"""
        mmap(@0, 1p, {RW}, {FS}, 0, 0)
        mmap(@1, 1p, {RW}, {FP}, 0, 0)
        touch(@0, read)
        touch(@1, write)
        touch(@1, read)
        """, ["0", "@0", "@1", "SIGBUS/ADRERR", "SIGBUS/ADRERR", "SIGBUS/ADRERR"],
        "@0 rw-s .; @1 rw-p ."),
    # an offset past the end, far from 0: the mapping is made, a touch is SIGBUS;
    # file_mmap_ok refuses only a range that ends past MAX_LFS_FILESIZE (EOVERFLOW)
    case("offset-far-past-eof", NEW + f"""
        ftruncate(0, 1p)
        mmap(@0, 1p, PROT_READ, {FP}, 0, 4611686018427387904)
        touch(@0, read)
        mmap(@1, 1p, PROT_READ, {FP}, 0, -4096)
        mmap(@1, 1p, PROT_READ, {FP}, 0, 9223372036854767616)
        mmap(@2, 2p, PROT_READ, {FP}, 0, 9223372036854767616)
        """, ["0", "0", "@0", "SIGBUS/ADRERR", "-EOVERFLOW", "@1", "-EOVERFLOW"],
        "@0-1 r--p .."),
    # ------------------------------------------------------------- ftruncate
    # shrinking unmaps the pages past the new end from every mapping, private copies
    # included (shmem_setattr: unmap_mapping_range with even_cows), and drops them;
    # growing again adds a hole
    case("truncate-shrink-and-grow", NEW + f"""
        ftruncate(0, 4p)
        mmap(@0, 4p, {RW}, {FS}|MAP_POPULATE, 0, 0)
        mmap(@4, 4p, {RW}, {FP}|MAP_POPULATE, 0, 0)
        ftruncate(0, 1p+1)
        touch(@3, read)
        touch(@7, write)
        ftruncate(0, 4p)
        touch(@3, read)
        touch(@7, read)
        """, ["0", "0", "@0", "@4", "0", "SIGBUS/ADRERR", "SIGBUS/ADRERR", "0", "-", "-"],
        "@0-3 rw-s FF.f; @4-7 rw-p AA.f"),
    # sizes inside a page: 5 bytes keep page 0 and drop page 1; 1p changes nothing
    # more; 0 drops the rest
    case("truncate-sub-page", NEW + f"""
        ftruncate(0, 2p)
        mmap(@0, 2p, {RW}, {FS}|MAP_POPULATE, 0, 0)
        ftruncate(0, 5)
        touch(@0, write)
        ftruncate(0, 1p)
        touch(@1, read)
        ftruncate(0, 0)
        touch(@0, read)
        """, ["0", "0", "@0", "0", "-", "0", "SIGBUS/ADRERR", "0", "SIGBUS/ADRERR"],
        "@0-1 rw-s .."),
    # a huge size is a hole (nothing allocated); a negative one is EINVAL
    case("truncate-huge", NEW + f"""
        ftruncate(0, 0x7fffffffffffffff)
        ftruncate(0, 0x8000000000000000)
        mmap(@0, 2p, {RW}, {FS}, 0, 4096)
        touch(@1, read)
        """, ["0", "0", "-EINVAL", "@0", "-"], "@0-1 rw-s .F"),
    # truncation reaches a locked mapping too; VmLck counts the whole VMA still
    case("truncate-locked", NEW + f"""
        ftruncate(0, 4p)
        mmap(@0, 4p, {RW}, {FS}|MAP_LOCKED, 0, 0)
        ftruncate(0, 2p)
        """, ["0", "0", "@0", "0"], "@0-3 rw-s lo FF..", locked=4),
    # ... and every private copy past the new end, even one whose page-cache page a hole
    # punch dropped (MADV_REMOVE keeps copies): unmap_mapping_range(holebegin, 0,
    # even_cows) takes the whole range, not the cached pages. A touch is SIGBUS then;
    # grown again, a read maps a fresh cache page
    case("truncate-drops-punched-copy", NEW + f"""
        ftruncate(0, 4p)
        mmap(@0, 4p, {RW}, {FP}, 0, 0)
        touch(@2, write)
        mmap(@4, 4p, {RW}, {FS}, 0, 0)
        madvise(@6, 1p, MADV_REMOVE)
        munmap(@4, 4p)
        ftruncate(0, 2p)
        touch(@2, read)
        ftruncate(0, 4p)
        touch(@2, read)
        """, ["0", "0", "@0", "-", "@4", "0", "0", "0", "SIGBUS/ADRERR", "0", "-"],
        "@0-3 rw-p ..F."),
    # ... in another process too, when the caller maps nothing there: the child's copy
    # (fork left it shared, the parent's munmap made it exclusive) goes (`pN:` as in
    # test_model_fork.py)
    case("truncate-drops-copy-in-other-process", NEW + f"""
        ftruncate(0, 4p)
        mmap(@0, 1p, {RW}, {FP}, 0, 8192)
        touch(@0, write)
        mmap(@4, 1p, {RW}, {FS}, 0, 8192)
        madvise(@4, 1p, MADV_REMOVE)
        munmap(@4, 1p)
        fork()
        munmap(@0, 1p)
        ftruncate(0, 2p)
        p1: touch(@0, read)
        ftruncate(0, 4p)
        p1: touch(@0, read)
        """, ["0", "0", "@0", "-", "@4", "0", "0", "pid", "0", "0", "SIGBUS/ADRERR", "0",
              "-"], "@0 rw-p F"),
    # ... and in a private VMA mremap moved outside the arena. Seen through mlockall: a
    # read-only private VMA outside keeps its copy and populates only the other pages
    # (the page at @8 mapped once), but after the shrink and a grow it has no copy and
    # maps both cache pages (mapped twice)
    case("outside-private-keeps-punched-copy", NEW + f"""
        ftruncate(0, 4p)
        mmap(@0, 1p, {RW}, {FP}, 0, 8192)
        touch(@0, write)
        mmap(@4, 1p, {RW}, {FS}, 0, 8192)
        madvise(@4, 1p, MADV_REMOVE)
        munmap(@4, 1p)
        mprotect(@0, 1p, PROT_READ)
        mmap(@1, 1p, PROT_READ, {AP}, -1, 0)
        mremap(@0, 1p, 2p, MREMAP_MAYMOVE, @0)
        mmap(@8, 2p, PROT_READ, {FS}, 0, 8192)
        mlockall(MCL_CURRENT)
        munlockall()
        """, ["0", "0", "@0", "-", "@4", "0", "0", "0", "@1", "outside", "@8", "0", "0"],
        "@1 r--p Z; @8-9 r--s Ff", locked=0),
    case("truncate-drops-outside-private-copy", NEW + f"""
        ftruncate(0, 4p)
        mmap(@0, 1p, {RW}, {FP}, 0, 8192)
        touch(@0, write)
        mmap(@4, 1p, {RW}, {FS}, 0, 8192)
        madvise(@4, 1p, MADV_REMOVE)
        munmap(@4, 1p)
        mprotect(@0, 1p, PROT_READ)
        mmap(@1, 1p, PROT_READ, {AP}, -1, 0)
        mremap(@0, 1p, 2p, MREMAP_MAYMOVE, @0)
        ftruncate(0, 2p)
        ftruncate(0, 4p)
        mmap(@8, 2p, PROT_READ, {FS}, 0, 8192)
        mlockall(MCL_CURRENT)
        munlockall()
        """, ["0", "0", "@0", "-", "@4", "0", "0", "0", "@1", "outside", "0", "0", "@8", "0",
              "0"], "@1 r--p Z; @8-9 r--s ff", locked=0),
    # ---------------------------------------------------------------- §7 madvise
    # REMOVE on a shared mapping punches a hole: every mapping loses the cached page,
    # private mappings' cache pages too, but not their private copies
    # (unmap_mapping_range without even_cows); REMOVE on a private mapping is EACCES
    case("remove-shared-keeps-copies", NEW + f"""
        ftruncate(0, 4p)
        mmap(@0, 4p, {RW}, {FP}, 0, 0)
        mmap(@4, 4p, {RW}, {FS}|MAP_POPULATE, 0, 0)
        touch(@0, read)
        touch(@1, write)
        madvise(@4, 4p, MADV_REMOVE)
        madvise(@0, 4p, MADV_REMOVE)
        touch(@4, read)
        """, ["0", "0", "@0", "@4", "-", "-", "0", "-EACCES", "-"],
        "@0-3 rw-p .A..; @4-7 rw-s F..."),
    # REMOVE needs VM_SHARED|VM_MAYWRITE, not PROT_WRITE: a read-only shared mapping of
    # the O_RDWR memfd punches too; a locked one is EINVAL first
    case("remove-readonly-shared", NEW + f"""
        ftruncate(0, 2p)
        mmap(@0, 2p, PROT_READ, {FS}|MAP_POPULATE, 0, 0)
        mmap(@2, 1p, PROT_READ, {FS}|MAP_LOCKED, 0, 0)
        madvise(@0, 1p, MADV_REMOVE)
        madvise(@2, 1p, MADV_REMOVE)
        """, ["0", "0", "@0", "@2", "0", "-EINVAL"], "@0-1 r--s .F; @2 r--s lo .",
        locked=1),
    # FREE and WIPEONFORK want anonymous memory: EINVAL on FP and FS alike (the walk
    # stops at the first VMA); DONTNEED drops private copies and cache mappings, the
    # cache keeps its pages (fault-around brings them back)
    case("private-advice", NEW + f"""
        ftruncate(0, 2p)
        mmap(@0, 2p, {RW}, {FP}|MAP_POPULATE, 0, 0)
        mmap(@2, 2p, PROT_READ, {FP}|MAP_POPULATE, 0, 0)
        mmap(@4, 2p, {RW}, {FS}, 0, 0)
        madvise(@0, 4p, MADV_FREE)
        madvise(@4, 2p, MADV_FREE)
        madvise(@0, 4p, MADV_WIPEONFORK)
        madvise(@4, 2p, MADV_WIPEONFORK)
        madvise(@0, 4p, MADV_DONTNEED)
        touch(@2, read)
        touch(@0, read)
        """, ["0", "0", "@0", "@2", "@4", "-EINVAL", "-EINVAL", "-EINVAL", "-EINVAL", "0",
              "-", "-"], "@0-1 rw-p ff; @2-3 r--p ff; @4-5 rw-s .."),
    # POPULATE_READ maps cache pages, POPULATE_WRITE copies them; past the end EFAULT
    case("private-madvise-populate", NEW + f"""
        ftruncate(0, 2p)
        mmap(@0, 4p, {RW}, {FP}, 0, 0)
        madvise(@0, 2p, MADV_POPULATE_READ)
        madvise(@0, 2p, MADV_POPULATE_WRITE)
        madvise(@0, 4p, MADV_POPULATE_READ)
        """, ["0", "0", "@0", "0", "0", "-EFAULT"], "@0-3 rw-p AA.."),
    # ------------------------------------------------------- §2, §3 locking
    # populate stops at the end of the file; MAP_LOCKED counts the whole length
    case("map-locked-past-eof", NEW + f"""
        ftruncate(0, 2p)
        mmap(@0, 4p, {RW}, {FS}|MAP_LOCKED, 0, 0)
        mmap(@4, 4p, {RW}, {FP}|MAP_LOCKED, 0, 0)
        """, ["0", "0", "@0", "@4"], "@0-3 rw-s lo FF..; @4-7 rw-p lo AA..", locked=8),
    # §3: mlock of a range past the end sets lo, populates up to it, and is ENOMEM
    case("mlock-past-eof", NEW + f"""
        ftruncate(0, 2p)
        mmap(@0, 4p, PROT_READ, {FS}, 0, 0)
        mlock(@0, 4p)
        mmap(@4, 2p, {RW}, {FP}, 0, 0)
        mlock(@4, 2p)
        """, ["0", "0", "@0", "-ENOMEM", "@4", "0"],
        "@0-3 r--s lo FF..; @4-5 rw-p lo AA", locked=6),
    # §4: a locked read-only private mapping made writable copies every page
    case("mprotect-locked-private-copies", NEW + f"""
        ftruncate(0, 2p)
        mmap(@0, 2p, PROT_READ, {FP}|MAP_LOCKED, 0, 0)
        mprotect(@0, 2p, {RW})
        """, ["0", "0", "@0", "0"], "@0-1 rw-p lo AA", locked=2),
    # mlock2(ONFAULT) faults nothing; the touch then does, copy-on-write included
    case("onfault-private", NEW + f"""
        ftruncate(0, 2p)
        mmap(@0, 2p, {RW}, {FP}, 0, 0)
        mlock2(@0, 2p, MLOCK_ONFAULT)
        touch(@1, write)
        """, ["0", "0", "@0", "0", "-"], "@0-1 rw-p lo lf .A", locked=2),
    # ------------------------------------------------------------ §11 merging
    # Observed through fault-around, which stops at the VMA's edge. Contiguous offsets
    # of one memfd merge ...
    case("merge-contiguous", NEW + f"""
        ftruncate(0, 4p)
        mmap(@0, 4p, {RW}, {FS}|MAP_POPULATE, 0, 0)
        munmap(@0, 4p)
        mmap(@0, 2p, {RW}, {FS}, 0, 0)
        mmap(@2, 2p, {RW}, {FS}, 0, 8192)
        touch(@0, read)
        """, ["0", "0", "@0", "0", "@0", "@2", "-"], "@0-3 rw-s FFFF"),
    # ... other offsets do not
    case("merge-not-contiguous", NEW + f"""
        ftruncate(0, 4p)
        mmap(@0, 4p, {RW}, {FS}|MAP_POPULATE, 0, 0)
        munmap(@0, 4p)
        mmap(@0, 2p, {RW}, {FS}, 0, 0)
        mmap(@2, 2p, {RW}, {FS}, 0, 0)
        touch(@0, read)
        """, ["0", "0", "@0", "0", "@0", "@2", "-"], "@0-3 rw-s FF.."),
    # ... nor different memfds
    case("merge-other-memfd", f"""
        memfd_create()
        memfd_create()
        ftruncate(0, 4p)
        ftruncate(1, 4p)
        mmap(@0, 4p, {RW}, {FS}|MAP_POPULATE, 0, 0)
        mmap(@4, 4p, {RW}, {FS}|MAP_POPULATE, 1, 0)
        munmap(@0, 8p)
        mmap(@0, 2p, {RW}, {FS}, 0, 0)
        mmap(@2, 2p, {RW}, {FS}, 1, 8192)
        touch(@0, read)
        """, ["0", "1", "0", "0", "@0", "@4", "0", "@0", "@2", "-"], "@0-3 rw-s FF.."),
    # private mappings merge the same way (no anon_vma yet)
    case("merge-private", NEW + f"""
        ftruncate(0, 4p)
        mmap(@8, 4p, PROT_READ, {FS}|MAP_POPULATE, 0, 0)
        mmap(@0, 2p, PROT_READ, {FP}, 0, 0)
        mmap(@2, 2p, PROT_READ, {FP}, 0, 8192)
        touch(@0, read)
        """, ["0", "0", "@8", "@0", "@2", "-"], "@0-3 r--p ffff; @8-11 r--s ffff"),
    # do_cow_fault prepares the anon_vma before it asks the file for the page, so a
    # write past the end leaves the VMA one; two such neighbours cannot both merge
    # with a VMA between them (only with the one before it)
    case("sigbus-write-gives-anon-vma", NEW + f"""
        mmap(@0, 1p, {RW}, {FP}, 0, 0)
        touch(@0, write)
        mmap(@2, 1p, {RW}, {FP}, 0, 8192)
        touch(@2, write)
        mmap(@1, 1p, {RW}, {FP}, 0, 4096)
        ftruncate(0, 3p)
        mmap(@8, 3p, PROT_READ, {FS}|MAP_POPULATE, 0, 0)
        touch(@0, read)
        """, ["0", "@0", "SIGBUS/ADRERR", "@2", "SIGBUS/ADRERR", "@1", "0", "@8", "-"],
        "@0-2 rw-p ff.; @8-10 r--s ffF"),
    # --------------------------------------------------------------- §6 mremap
    # a moved file mapping keeps its offsets: a new mapping of the same offsets shares
    # the moved page
    case("mremap-moves-pgoff", NEW + f"""
        ftruncate(0, 4p)
        mmap(@0, 2p, {RW}, {FS}, 0, 8192)
        touch(@0, write)
        mremap(@0, 2p, 2p, MREMAP_MAYMOVE|MREMAP_FIXED, @8)
        mmap(@0, 2p, {RW}, {FS}, 0, 8192)
        touch(@1, read)
        """, ["0", "0", "@0", "-", "@8", "@0", "-"], "@0-1 rw-s fF; @8-9 rw-s f."),
    # growing a locked private mapping in place populates the new pages up to the end
    # of the file, with private copies
    case("mremap-grow-locked-private", NEW + f"""
        ftruncate(0, 3p)
        mmap(@0, 2p, {RW}, {FP}|MAP_LOCKED, 0, 0)
        mremap(@0, 2p, 4p, 0, @0)
        """, ["0", "0", "@0", "@0"], "@0-3 rw-p lo AAA.", locked=4),
    # --------------------------------------------------------- §2 mmap checks
    # do_mmap on a file: MAP_SHARED_VALIDATE rejects flags outside LEGACY_MAP_MASK
    # (MAP_FIXED_NOREPLACE and MAP_SYNC are among them) with EOPNOTSUPP, after EEXIST;
    # plain MAP_SHARED ignores them; GROWSDOWN (shared or private), HUGETLB on a
    # non-hugetlbfs file, and the types 0 and DROPPABLE are EINVAL
    case("mmap-file-flags", NEW + """
        ftruncate(0, 1p)
        mmap(@0, 1p, PROT_READ, MAP_SHARED_VALIDATE|MAP_FIXED, 0, 0)
        mmap(@1, 1p, PROT_READ, MAP_SHARED_VALIDATE|MAP_FIXED_NOREPLACE, 0, 0)
        mmap(@0, 1p, PROT_READ, MAP_SHARED_VALIDATE|MAP_FIXED_NOREPLACE, 0, 0)
        mmap(@1, 1p, PROT_READ, MAP_SHARED_VALIDATE|MAP_FIXED|0x80000, 0, 0)
        mmap(@1, 1p, PROT_READ, MAP_SHARED|MAP_FIXED|0x80000, 0, 0)
        mmap(@2, 1p, PROT_READ, MAP_PRIVATE|MAP_FIXED|MAP_GROWSDOWN, 0, 0)
        mmap(@2, 1p, PROT_READ, MAP_SHARED|MAP_FIXED|MAP_GROWSDOWN, 0, 0)
        mmap(@2, 1p, PROT_READ, MAP_SHARED|MAP_FIXED|MAP_HUGETLB, 0, 0)
        mmap(@2, 1p, PROT_READ, MAP_FIXED, 0, 0)
        mmap(@2, 1p, PROT_READ, MAP_FIXED|0x8, 0, 0)
        touch(@1, read)
        """, ["0", "0", "@0", "-EOPNOTSUPP", "-EEXIST", "-EOPNOTSUPP", "@1", "-EINVAL",
              "-EINVAL", "-EINVAL", "-EINVAL", "-EINVAL", "-"], "@0-1 r--s .F"),
    # every protection maps (the memfd is O_RDWR on an exec mount); mmap's fd is an
    # unsigned int too
    case("mmap-file-prots", NEW + f"""
        ftruncate(0, 4p)
        mmap(@0, 1p, PROT_NONE, {FS}, 0, 0)
        mmap(@1, 1p, PROT_EXEC, {FS}, 0, 4096)
        mmap(@2, 1p, PROT_WRITE, {FS}|MAP_POPULATE, 4294967296, 8192)
        mmap(@3, 1p, PROT_READ|PROT_WRITE|PROT_EXEC, {FP}|MAP_POPULATE, 0, 12288)
        touch(@0, read)
        touch(@1, read)
        """, ["0", "0", "@0", "@1", "@2", "@3", "SIGSEGV/ACCERR", "-"],
        "@0 ---s .; @1 --xs F; @2 -w-s F; @3 rwxp A", features=EXEC_READABLE),
    # a file mapping gets the execute-only pkey too (do_mmap): no fault, no fault-around
    case("mmap-file-prots-pkey", NEW + f"""
        ftruncate(0, 4p)
        mmap(@0, 1p, PROT_NONE, {FS}, 0, 0)
        mmap(@1, 1p, PROT_EXEC, {FS}, 0, 4096)
        mmap(@2, 1p, PROT_WRITE, {FS}|MAP_POPULATE, 4294967296, 8192)
        mmap(@3, 1p, PROT_READ|PROT_WRITE|PROT_EXEC, {FP}|MAP_POPULATE, 0, 12288)
        touch(@0, read)
        touch(@1, read)
        """, ["0", "0", "@0", "@1", "@2", "@3", "SIGSEGV/ACCERR", "SIGSEGV/PKUERR"],
        "@0 ---s .; @1 --xs .; @2 -w-s F; @3 rwxp A", features=EXEC_PKEY),
    # an mmap the kernel places outside the arena (its hint is taken) still populates
    # the memfd: the arena mapping's fault-around finds those pages, mapped twice
    case("outside-mapping-fills-cache", NEW + f"""
        ftruncate(0, 2p)
        mmap(@0, 2p, {RW}, {AP}, -1, 0)
        mmap(@0, 2p, PROT_READ, MAP_SHARED|MAP_POPULATE, 0, 0)
        mmap(@4, 2p, PROT_READ, {FS}, 0, 0)
        touch(@4, read)
        """, ["0", "0", "@0", "outside", "@4", "-"], "@0-1 rw-p ..; @4-5 r--s ff"),
]


@pytest.mark.parametrize("c", model_params(ROWS))
def test_memfd_model(c: Case) -> None:
    check_model(c)


def test_table_shape() -> None:
    check_table(ROWS, at_least=30)


def test_memfd_calls_are_supported() -> None:
    assert {"memfd_create", "ftruncate", "close"} <= SUPPORTED
    for line in ("mmap(@0, 1p, PROT_READ, MAP_SHARED|MAP_FIXED|MAP_HUGETLB, 0, 0)",
                 "mmap(@0, 1p, PROT_READ, MAP_PRIVATE|MAP_FIXED|MAP_GROWSDOWN, 0, 0)",
                 "mmap(@0, 1p, PROT_READ, MAP_FIXED|0x8, 3, 0)"):
        assert covers(parse(line).calls[0]), line  # file mappings: errors the model knows


def test_truncate_frees_nothing_it_should_keep() -> None:
    """The cache after a shrink holds exactly the pages below the new end."""
    _, state = run_model(NEW + f"""
        ftruncate(0, 4p)
        mmap(@0, 4p, {RW}, {FS}|MAP_POPULATE, 0, 0)
        ftruncate(0, 2p+1)
        """)
    (obj,) = state.fds.values()
    assert state.shmem[obj] == {0, 1, 2}
    assert state.shmem_size[obj] == 3
