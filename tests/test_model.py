"""The reference model against hand-derived expectations, as a table of programs.

Every case is program text, the result of each step, the arena as `render`
prints it at the end and, where locking is involved, `State.locked_pages()`.
The expectations come from docs/SEMANTICS.md and the kernel functions it cites, not
from running the model: a case the model gets wrong stays in the table as a
strict xfail whose reason starts with "model:". `test_model_kernel.py` runs
the same table on the real kernel.

Result notation, one entry a step: `@N` (mmap placed at arena page N),
`outside` (mmap placed outside the arena), `0`, `-EINVAL` and the like, and
for touches `-` (no signal) or `SIGSEGV/MAPERR`, `SIGSEGV/ACCERR`.
"""

from __future__ import annotations

import pytest

from fuzzer.model import State
from fuzzer.prog.syscalls import PAGE
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

ROWS = [
    # ---------------------------------------------------------------- §2 mmap
    # §2: anonymous private and shared, with and without MAP_POPULATE
    case("mmap-private-lazy", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        """, ["@0"], "@0-3 rw-p ....", locked=0),
    case("mmap-private-populate", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        """, ["@0"], "@0-3 rw-p AAAA"),
    case("mmap-shared-lazy", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0)
        """, ["@0"], "@0-3 rw-s ...."),
    # §2 table: shared VMAs populate with read faults, which allocate shmem pages
    case("mmap-shared-populate", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        """, ["@0"], "@0-3 rw-s FFFF"),
    case("mmap-shared-readonly-populate", """
        mmap(@0, 2p, PROT_READ, MAP_SHARED|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        """, ["@0"], "@0-1 r--s FF"),
    case("mmap-shared-write-only-populate", """
        mmap(@0, 2p, PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        """, ["@0"], "@0-1 -w-s FF"),
    # §2 prot: every combination; private read-only (or exec-only) populates Z,
    # private writable (write-only included) takes write faults, PROT_NONE nothing
    case("mmap-prot-read-populate", """
        mmap(@0, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        """, ["@0"], "@0-1 r--p ZZ"),
    case("mmap-prot-write-only-populate", """
        mmap(@0, 2p, PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        """, ["@0"], "@0-1 -w-p AA"),
    case("mmap-prot-exec-only-populate", """
        mmap(@0, 2p, PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        """, ["@0"], "@0-1 --xp ZZ", features=EXEC_READABLE),
    # with protection keys GUP's check_vma_flags refuses the execute-only pkey
    # (arch_vma_access_permitted): populate fails, and mmap ignores the error
    case("mmap-prot-exec-only-populate-pkey", """
        mmap(@0, 2p, PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        """, ["@0"], "@0-1 --xp ..", features=EXEC_PKEY),
    # only a prot of exactly PROT_EXEC gets the pkey (do_mmap): PROT_SEM keeps pkey 0,
    # and the pkey bits are VMA flags, so the two VMAs stay apart (growing both: EFAULT)
    case("mmap-exec-sem-has-no-pkey", """
        mmap(@0, 2p, PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@2, 2p, PROT_EXEC|PROT_SEM, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        touch(@0, read)
        touch(@2, read)
        mremap(@0, 4p, 5p, MREMAP_MAYMOVE, @0)
        """, ["@0", "@2", "SIGSEGV/PKUERR", "-", "-EFAULT"], "@0-3 --xp ..Z.",
        features=EXEC_PKEY),
    # ... and mprotect to any other prot moves a VMA back to pkey 0
    # (arch_override_mprotect_pkey): readable again, and one VMA with its neighbour
    case("mprotect-exec-sem-drops-pkey", """
        mmap(@0, 2p, PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@2, 2p, PROT_EXEC|PROT_SEM, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mprotect(@0, 2p, PROT_EXEC|PROT_SEM)
        touch(@0, read)
        mremap(@0, 4p, 5p, MREMAP_MAYMOVE, @0)
        """, ["@0", "@2", "0", "-", "@0"], "@0-4 --xp Z....", features=EXEC_PKEY),
    # ... and mprotect(PROT_EXEC) gives it: the pages populate left stay, but mlock's
    # populate fails (ENOMEM)
    case("mprotect-exec-gives-pkey", """
        mmap(@0, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        mprotect(@0, 2p, PROT_EXEC)
        touch(@0, read)
        mlock(@0, 2p)
        """, ["@0", "0", "SIGSEGV/PKUERR", "-ENOMEM"], "@0-1 --xp lo ZZ", locked=2,
        features=EXEC_PKEY),
    case("mmap-prot-read-exec-populate", """
        mmap(@0, 2p, PROT_READ|PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        """, ["@0"], "@0-1 r-xp ZZ"),
    case("mmap-prot-write-exec-populate", """
        mmap(@0, 2p, PROT_WRITE|PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        """, ["@0"], "@0-1 -wxp AA"),
    case("mmap-prot-rwx-populate", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE|PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        """, ["@0"], "@0-1 rwxp AA"),
    case("mmap-prot-none-populate", """
        mmap(@0, 2p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        """, ["@0"], "@0-1 ---p .."),
    # §2 prot: mmap ignores unknown prot bits (mprotect rejects them)
    case("mmap-prot-unknown-bits-ignored", """
        mmap(@0, 1p, PROT_READ|PROT_SEM|0x10, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        """, ["@0"], "@0 r--p ."),
    # §2: len is rounded up; 0 is EINVAL; a len that rounds to 0 or is too large ENOMEM
    case("mmap-len-rounds-up", """
        mmap(@0, 1p+1, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        """, ["@0"], "@0-1 rw-p AA"),
    case("mmap-len-zero", """
        mmap(@0, 0, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        """, ["-EINVAL"], "(arena empty)"),
    case("mmap-len-wraps", """
        mmap(@0, 0xffffffffffffffff, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@0, 0xfffff00000000000, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@0, 0xfffff00000000000, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        """, ["-ENOMEM", "-ENOMEM", "-ENOMEM"], "(arena empty)"),
    # §2 MAP_ANONYMOUS: the offset must be page aligned (x86 sys_mmap), else ignored
    case("mmap-offset", """
        mmap(@0, 1p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 100)
        mmap(@0, 1p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 4096)
        """, ["-EINVAL", "@0"], "@0 rw-p ."),
    # §2 order 5: an unaligned MAP_FIXED (or NOREPLACE) address is EINVAL
    case("mmap-fixed-unaligned", """
        mmap(@1+8, 1p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        mmap(@1+8, 1p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0)
        """, ["-EINVAL", "-EINVAL"], "(arena empty)"),
    # §2 MAP_FIXED: whatever overlaps is unmapped first
    case("mmap-fixed-replaces", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        mmap(@1, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        """, ["@0", "@1"], "@0 rw-p A; @1-2 r--p ..; @3 rw-p A"),
    case("mmap-fixed-shared-over-private", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        mmap(@2, 2p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        """, ["@0", "@2"], "@0-1 rw-p AA; @2-3 rw-s .."),
    # §2 MAP_FIXED: locked pages it replaces are dropped and VmLck falls
    case("mmap-fixed-drops-locked", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        mmap(@1, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        """, ["@0", "@1"], "@0 rw-p lo A; @1-2 rw-p ..; @3 rw-p lo A", locked=2),
    case("mmap-fixed-locked-over-locked", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        mmap(@0, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED|MAP_LOCKED, -1, 0)
        """, ["@0", "@0"], "@0-1 r--p lo ZZ; @2-3 rw-p lo AA", locked=4),
    # §2 MAP_FIXED_NOREPLACE: EEXIST on any overlap, and it comes before the type check
    case("mmap-noreplace-eexist", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@3, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0)
        mmap(@0, 1p, PROT_READ, MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0)
        """, ["@0", "-EEXIST", "-EEXIST"], "@0-3 rw-p ...."),
    case("mmap-noreplace-free", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@2, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0)
        """, ["@0", "@2"], "@0-1 rw-p ..; @2-3 r--p .."),
    # §1/§2: a hint is rounded down and used when the whole range is free
    case("mmap-hint-free", """
        mmap(@5+100, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@7, 1p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        """, ["@5", "@7"], "@5-7 rw-p ..."),
    case("mmap-hint-taken", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@2, 4p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@3, 1p, PROT_READ, MAP_SHARED|MAP_ANONYMOUS, -1, 0)
        """, ["@0", "outside", "outside"], "@0-3 rw-p ...."),
    # §10 VmLck covers the whole process: a locked mapping placed outside counts
    case("mmap-hint-taken-locked", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@0, 3p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        """, ["@0", "outside"], "@0-1 rw-p ..", locked=3),
    # §2 MAP_POPULATE: MAP_NONBLOCK cancels it, but not MAP_LOCKED's population
    case("mmap-populate-nonblock", """
        mmap(@0, 4p, PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE|MAP_NONBLOCK, -1, 0)
        """, ["@0"], "@0-3 -w-p ...."),
    case("mmap-locked-nonblock", """
        mmap(@0, 2p, PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED|MAP_NONBLOCK, -1, 0)
        """, ["@0"], "@0-1 -w-p lo AA", locked=2),
    # §2 MAP_LOCKED: lo, counted, populated with errors ignored; PROT_NONE still lo
    case("mmap-locked", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        """, ["@0"], "@0-3 rw-p lo AAAA", locked=4),
    case("mmap-locked-prot-none", """
        mmap(@0, 4p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        """, ["@0"], "@0-3 ---p lo ....", locked=4),
    case("mmap-locked-readonly", """
        mmap(@0, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        """, ["@0"], "@0-1 r--p lo ZZ", locked=2),
    case("mmap-locked-exec-only", """
        mmap(@0, 2p, PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        """, ["@0"], "@0-1 --xp lo ZZ", locked=2, features=EXEC_READABLE),
    case("mmap-locked-exec-only-pkey", """
        mmap(@0, 2p, PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        """, ["@0"], "@0-1 --xp lo ..", locked=2, features=EXEC_PKEY),
    case("mmap-locked-shared", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        mmap(@2, 1p, PROT_NONE, MAP_SHARED|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        """, ["@0", "@2"], "@0-1 rw-s lo FF; @2 ---s lo .", locked=3),
    # §2 MAP_NORESERVE and unknown flag bits change nothing visible
    case("mmap-noreserve", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, -1, 0)
        touch(@1, write)
        """, ["@0", "-"], "@0-1 rw-p .A"),
    case("mmap-unknown-flag-ignored", """
        mmap(@0, 1p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|0x100000000, -1, 0)
        """, ["@0"], "@0 rw-p ."),
    # Not every unknown bit is ignored. x86 MAP_32BIT (0x40): without MAP_FIXED
    # arch_get_unmapped_area_topdown jumps to `bottomup` before looking at the hint
    # and searches below 2 GiB, so the hint is never used.
    case("mmap-32bit-ignores-hint", """
        mmap(@4, 1p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_32BIT, -1, 0)
        mmap(@5, 1p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED|MAP_32BIT, -1, 0)
        """, ["outside", "@5"], "@5 rw-p ."),
    # Map type 0x08 is MAP_DROPPABLE (6.11+, VM_DROPPABLE on 64-bit): do_mmap accepts
    # it for anonymous mappings (private semantics, plus wipe-on-fork and dontdump;
    # test_model_droppable.py has the rest).
    case("mmap-type-droppable", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_ANONYMOUS|0x8, -1, 0)
        touch(@1, write)
        """, ["@0", "-"], "@0-1 rw-p wf .A", features={"map_droppable": True}),
    # §2 order 10: for anonymous mappings a type of 0 or 3 is EINVAL, after placement
    case("mmap-type-0", """
        mmap(@0, 1p, PROT_READ|PROT_WRITE, MAP_ANONYMOUS, -1, 0)
        """, ["-EINVAL"], "(arena empty)"),
    case("mmap-type-3", """
        mmap(@0, 1p, PROT_READ|PROT_WRITE, MAP_SHARED_VALIDATE|MAP_ANONYMOUS, -1, 0)
        """, ["-EINVAL"], "(arena empty)"),
    case("mmap-bad-type-fixed-keeps-old", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        mmap(@0, 2p, PROT_READ, MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        mmap(@1, 1p, PROT_READ, MAP_SHARED_VALIDATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        """, ["@0", "-EINVAL", "-EINVAL"], "@0-1 rw-p AA"),
    # §2 MAP_GROWSDOWN: EINVAL with MAP_SHARED
    case("mmap-shared-growsdown", """
        mmap(@0, 1p, PROT_READ, MAP_SHARED|MAP_ANONYMOUS|MAP_GROWSDOWN, -1, 0)
        """, ["-EINVAL"], "(arena empty)"),
    # §2 order: the executor has no open fd, so a file mapping is EBADF; the x86
    # offset check comes first
    case("mmap-not-anonymous", """
        mmap(@0, 1p, PROT_READ, MAP_PRIVATE, -1, 0)
        mmap(@0, 1p, PROT_READ, MAP_SHARED, 3, 0)
        mmap(@0, 0, PROT_READ, MAP_SHARED, 3, 0)
        mmap(@0, 1p, PROT_READ, MAP_SHARED, 3, 1)
        """, ["-EBADF", "-EBADF", "-EBADF", "-EINVAL"], "(arena empty)"),
    # ------------------------------------------------------------- §5 munmap
    case("munmap-partial", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        munmap(@1, 2p)
        """, ["@0", "0"], "@0 rw-p A; @3 rw-p A"),
    case("munmap-byte-len-rounds-up", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        munmap(@0, 1)
        """, ["@0", "0"], "@1 rw-p A"),
    case("munmap-unmapped-range", """
        munmap(@10, 4p)
        """, ["0"], "(arena empty)"),
    case("munmap-across-hole", """
        mmap(@0, 1p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@2, 1p, PROT_READ, MAP_SHARED|MAP_ANONYMOUS, -1, 0)
        munmap(@0, 3p)
        """, ["@0", "@2", "0"], "(arena empty)"),
    case("munmap-errors", """
        mmap(@0, 1p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        munmap(@0+1, 1p)
        munmap(@0, 0)
        munmap(@0, 0xffffffffffffffff)
        munmap(@0, 0xfffff00000000000)
        """, ["@0", "-EINVAL", "-EINVAL", "-EINVAL", "-EINVAL"], "@0 rw-p ."),
    case("munmap-locked", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        munmap(@2, 2p)
        """, ["@0", "0"], "@0-1 rw-p lo AA", locked=2),
    case("munmap-then-touch", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        munmap(@0, 1p)
        touch(@0, read)
        touch(@1, read)
        """, ["@0", "0", "SIGSEGV/MAPERR", "-"], "@1 rw-p A"),
    # ----------------------------------------------------------- §4 mprotect
    # §1/§4 order: unaligned start, then len 0 (returns 0 even with bad prot),
    # then wrap-around (ENOMEM), then unknown prot bits
    case("mprotect-unaligned", """
        mmap(@0, 1p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mprotect(@0+1, 1p, PROT_READ)
        mprotect(@0+1, 0, PROT_READ)
        """, ["@0", "-EINVAL", "-EINVAL"], "@0 rw-p ."),
    case("mprotect-len-zero", """
        mmap(@0, 1p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mprotect(@0, 0, 0x10)
        mprotect(@5, 0, PROT_READ)
        """, ["@0", "0", "0"], "@0 rw-p ."),
    case("mprotect-unknown-prot", """
        mmap(@0, 1p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mprotect(@0, 1p, PROT_READ|0x10)
        mprotect(@5, 1p, 0x10)
        """, ["@0", "-EINVAL", "-EINVAL"], "@0 rw-p ."),
    case("mprotect-prot-sem-allowed", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mprotect(@0, 1p, PROT_READ|PROT_SEM)
        mprotect(@1, 1p, PROT_SEM)
        """, ["@0", "0", "0"], "@0 r--p .; @1 ---p ."),
    case("mprotect-len-rounds-to-zero", """
        mmap(@0, 1p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mprotect(@0, 0xffffffffffffffff, 0x10)
        mprotect(@0, 0xffffffffffffffff, PROT_READ)
        """, ["@0", "-ENOMEM", "-ENOMEM"], "@0 rw-p ."),
    # do_mprotect_pkey: `end = start + len; if (end <= start) return -ENOMEM;` is
    # checked on the real address, before arch_validate_prot and before any VMA
    case("mprotect-wraps", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mprotect(@0, 0xfffff00000000000, PROT_READ)
        mprotect(@0, 0xfffffffffffff000, PROT_NONE)
        """, ["@0", "-ENOMEM", "-ENOMEM"], "@0-1 rw-p .."),
    case("mprotect-wraps-before-prot-check", """
        mprotect(@0, 0xfffff00000000000, 0x10)
        """, ["-ENOMEM"], "(arena empty)"),
    # §4 errors: ENOMEM for an unmapped start or a hole; VMAs before the hole keep
    # their new protection
    case("mprotect-start-in-hole", """
        mmap(@1, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mprotect(@0, 3p, PROT_READ)
        mprotect(@8, 1p, PROT_READ)
        """, ["@1", "-ENOMEM", "-ENOMEM"], "@1-2 rw-p .."),
    case("mprotect-hole-in-middle", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        mmap(@3, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mprotect(@0, 5p, PROT_READ)
        """, ["@0", "@3", "-ENOMEM"], "@0-1 r--p AA; @3-4 rw-p .."),
    case("mprotect-hole-at-end", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0)
        mprotect(@0, 3p, PROT_READ)
        """, ["@0", "-ENOMEM"], "@0-1 r--s .."),
    # §4 page presence: mprotect never adds or removes pages; PROT_NONE keeps them
    case("mprotect-none-keeps-pages", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        touch(@0, read)
        mprotect(@1, 2p, PROT_NONE)
        touch(@1, read)
        touch(@2, write)
        """, ["@0", "-", "0", "SIGSEGV/ACCERR", "SIGSEGV/ACCERR"],
        "@0 rw-p A; @1-2 ---p AA; @3 rw-p A"),
    case("mprotect-unlocked-readonly-to-rw", """
        mmap(@0, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        mprotect(@0, 2p, PROT_READ|PROT_WRITE)
        """, ["@0", "0"], "@0-1 rw-p ZZ"),
    # §4 splitting: lo and lf are carried into every piece, VmLck unchanged
    case("mprotect-keeps-lock", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        mprotect(@1, 1p, PROT_READ)
        """, ["@0", "0"], "@0 rw-p lo A; @1 r--p lo A; @2-3 rw-p lo AA", locked=4),
    # §4 the one populating case: old lo without write or shared, new write
    case("mprotect-locked-readonly-to-rw", """
        mmap(@0, 3p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        mprotect(@0, 3p, PROT_READ|PROT_WRITE)
        """, ["@0", "0"], "@0-2 rw-p lo AAA", locked=3),
    case("mprotect-locked-readonly-partial", """
        mmap(@0, 4p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        mprotect(@1, 2p, PROT_READ|PROT_WRITE)
        """, ["@0", "0"], "@0 r--p lo Z; @1-2 rw-p lo AA; @3 r--p lo Z", locked=4),
    case("mprotect-locked-none-to-rw", """
        mmap(@0, 4p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        mprotect(@0, 4p, PROT_READ|PROT_WRITE)
        """, ["@0", "0"], "@0-3 rw-p lo AAAA", locked=4),
    case("mprotect-locked-none-to-write-only", """
        mmap(@0, 2p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        mprotect(@0, 2p, PROT_WRITE)
        """, ["@0", "0"], "@0-1 -w-p lo AA", locked=2),
    case("mprotect-locked-none-to-read", """
        mmap(@0, 2p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        mprotect(@0, 2p, PROT_READ)
        """, ["@0", "0"], "@0-1 r--p lo ..", locked=2),
    case("mprotect-locked-none-to-read-to-rw", """
        mmap(@0, 2p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        mprotect(@0, 2p, PROT_READ)
        mprotect(@1, 1p, PROT_READ|PROT_WRITE)
        """, ["@0", "0", "0"], "@0 r--p lo .; @1 rw-p lo A", locked=2),
    case("mprotect-locked-exec-to-rwx", """
        mmap(@0, 2p, PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        mprotect(@0, 2p, PROT_READ|PROT_WRITE|PROT_EXEC)
        """, ["@0", "0"], "@0-1 rwxp lo AA", locked=2, features=EXEC_READABLE),
    # the pkey goes with the write permission, and mprotect_fixup populates
    case("mprotect-locked-exec-to-rwx-pkey", """
        mmap(@0, 2p, PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        mprotect(@0, 2p, PROT_READ|PROT_WRITE|PROT_EXEC)
        """, ["@0", "0"], "@0-1 rwxp lo AA", locked=2, features=EXEC_PKEY),
    case("mprotect-onfault-no-populate", """
        mmap(@0, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mlock2(@0, 2p, MLOCK_ONFAULT)
        mprotect(@0, 2p, PROT_READ|PROT_WRITE)
        """, ["@0", "0", "0"], "@0-1 rw-p lo lf ..", locked=2),
    case("mprotect-locked-shared-no-populate", """
        mmap(@0, 2p, PROT_NONE, MAP_SHARED|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        mprotect(@0, 2p, PROT_READ|PROT_WRITE)
        """, ["@0", "0"], "@0-1 rw-s lo ..", locked=2),
    case("mprotect-locked-populates-before-hole", """
        mmap(@0, 2p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        mprotect(@0, 3p, PROT_READ|PROT_WRITE)
        """, ["@0", "-ENOMEM"], "@0-1 rw-p lo AA", locked=2),
    # §4 errors: GROWSDOWN with GROWSUP is EINVAL before anything else; GROWSDOWN
    # on a VMA without gd is EINVAL; GROWSUP is EINVAL (no VM_GROWSUP on x86) unless
    # the start is unmapped (ENOMEM)
    case("mprotect-grows-both", """
        mmap(@0, 1p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mprotect(@0, 0, PROT_GROWSDOWN|PROT_GROWSUP)
        mprotect(@0+1, 1p, PROT_READ|PROT_GROWSDOWN|PROT_GROWSUP)
        mprotect(@0, 1p, PROT_READ|PROT_GROWSDOWN|PROT_GROWSUP)
        """, ["@0", "-EINVAL", "-EINVAL", "-EINVAL"], "@0 rw-p ."),
    case("mprotect-growsdown", """
        mmap(@1, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mprotect(@1, 1p, PROT_READ|PROT_GROWSDOWN)
        mprotect(@0, 2p, PROT_READ|PROT_GROWSDOWN)
        mprotect(@8, 1p, PROT_READ|PROT_GROWSDOWN)
        mprotect(@1, 0, PROT_READ|PROT_GROWSDOWN)
        """, ["@1", "-EINVAL", "-EINVAL", "-ENOMEM", "0"], "@1-2 rw-p .."),
    case("mprotect-growsup", """
        mmap(@1, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mprotect(@1, 1p, PROT_READ|PROT_GROWSUP)
        mprotect(@0, 2p, PROT_READ|PROT_GROWSUP)
        mprotect(@8, 1p, PROT_READ|PROT_GROWSUP)
        """, ["@1", "-EINVAL", "-ENOMEM", "-ENOMEM"], "@1-2 rw-p .."),
    # -------------------------------------------------- §1, §3 mlock, munlock
    # §1: start rounded down, len' = PAGE_ALIGN(len + (start & 4095))
    case("mlock-rounding", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mlock(@1+5, 2p)
        """, ["@0", "0"], "@0 rw-p .; @1-3 rw-p lo AAA", locked=3),
    case("mlock-len-zero", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mlock(@0, 0)
        mlock(@5, 0)
        mlock(@1+5, 0)
        """, ["@0", "0", "0", "0"], "@0 rw-p .; @1 rw-p lo A", locked=1),
    # §1: an end that wraps is EINVAL, a len' that overflows to 0 is a no-op
    case("mlock-wraps", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mlock(@0, 0xfffff00000000000)
        mlock2(@0, 0xfffffffffffff000, MLOCK_ONFAULT)
        """, ["@0", "-EINVAL", "-EINVAL"], "@0-1 rw-p ..", locked=0),
    case("munlock-wraps", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        munlock(@0, 0xfffff00000000000)
        """, ["@0", "-EINVAL"], "@0-1 rw-p lo AA", locked=2),
    case("mlock-wraps-unmapped", """
        mlock(@8, 0xfffff00000000000)
        """, ["-EINVAL"], "(arena empty)"),
    case("mlock-len-overflows-to-zero", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mlock(@0, 0xffffffffffffffff)
        mlock(@4, 0xffffffffffffffff)
        mlock(@1+5, 0xffffffffffffffff)
        """, ["@0", "0", "0", "0"], "@0 rw-p .; @1 rw-p lo A", locked=1),
    # §3 partial effects
    case("mlock-hole-at-start", """
        mmap(@1, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mlock(@0, 3p)
        """, ["@1", "-ENOMEM"], "@1-2 rw-p ..", locked=0),
    case("mlock-hole-in-middle", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@3, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mlock(@0, 5p)
        """, ["@0", "@3", "-ENOMEM"], "@0-1 rw-p lo ..; @3-4 rw-p ..", locked=2),
    case("mlock-hole-at-end", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mlock(@0, 3p)
        """, ["@0", "-ENOMEM"], "@0-1 rw-p lo ..", locked=2),
    case("mlock-prot-none-inside", """
        mmap(@0, 6p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mprotect(@2, 2p, PROT_NONE)
        mlock(@0, 6p)
        """, ["@0", "0", "-ENOMEM"], "@0-1 rw-p lo AA; @2-3 ---p lo ..; @4-5 rw-p lo ..",
        locked=6),
    case("mlock-prot-none-first", """
        mmap(@0, 2p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@2, 2p, PROT_READ, MAP_SHARED|MAP_ANONYMOUS, -1, 0)
        mlock(@0, 4p)
        """, ["@0", "@2", "-ENOMEM"], "@0-1 ---p lo ..; @2-3 r--s lo ..", locked=4),
    # §3 population follows the §2 table
    case("mlock-by-prot", """
        mmap(@0, 2p, PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@2, 2p, PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@4, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@6, 2p, PROT_READ, MAP_SHARED|MAP_ANONYMOUS, -1, 0)
        mlock(@0, 8p)
        """, ["@0", "@2", "@4", "@6", "0"],
        "@0-1 -w-p lo AA; @2-3 --xp lo ZZ; @4-5 r--p lo ZZ; @6-7 r--s lo FF", locked=8,
        features=EXEC_READABLE),
    # mlock's __mm_populate stops at the pkey's EFAULT (no ignore_errors), reported as
    # ENOMEM (__mlock_posix_error_return); the VMAs are locked all the same
    case("mlock-by-prot-pkey", """
        mmap(@0, 2p, PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@2, 2p, PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@4, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@6, 2p, PROT_READ, MAP_SHARED|MAP_ANONYMOUS, -1, 0)
        mlock(@0, 8p)
        """, ["@0", "@2", "@4", "@6", "-ENOMEM"],
        "@0-1 -w-p lo AA; @2-3 --xp lo ..; @4-5 r--p lo ..; @6-7 r--s lo ..", locked=8,
        features=EXEC_PKEY),
    # mlockall(MCL_CURRENT) ignores the error and goes on with the next VMA
    case("mlockall-by-prot-pkey", """
        mmap(@0, 2p, PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@4, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mlockall(MCL_CURRENT)
        munlockall()
        """, ["@0", "@4", "0", "0"], "@0-1 --xp ..; @4-5 r--p ZZ", features=EXEC_PKEY),
    case("mlock-breaks-zero-page", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        touch(@0, read)
        mlock(@0, 2p)
        """, ["@0", "-", "0"], "@0-1 rw-p lo AA", locked=2),
    case("mlock-twice", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mlock(@0, 2p)
        mlock(@0, 2p)
        """, ["@0", "0", "0"], "@0-1 rw-p lo AA", locked=2),
    # §3: mlock2(0) is mlock; MLOCK_ONFAULT sets lo lf without populating
    case("mlock2-no-flags", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mlock2(@0, 2p, 0)
        """, ["@0", "0"], "@0-1 rw-p lo AA", locked=2),
    case("mlock2-onfault", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mlock2(@0, 4p, MLOCK_ONFAULT)
        touch(@1, write)
        touch(@2, read)
        """, ["@0", "0", "-", "-"], "@0-3 rw-p lo lf .AZ.", locked=4),
    case("mlock2-onfault-prot-none", """
        mmap(@0, 2p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mlock2(@0, 2p, MLOCK_ONFAULT)
        """, ["@0", "0"], "@0-1 ---p lo lf ..", locked=2),
    # §3 relocking between modes
    case("mlock-over-onfault", """
        mmap(@0, 3p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mlock2(@0, 3p, MLOCK_ONFAULT)
        mlock(@0, 2p)
        """, ["@0", "0", "0"], "@0-1 rw-p lo AA; @2 rw-p lo lf .", locked=3),
    case("mlock2-onfault-over-locked", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mlock(@0, 2p)
        mlock2(@0, 4p, MLOCK_ONFAULT)
        """, ["@0", "0", "0"], "@0-3 rw-p lo lf AA..", locked=4),
    case("mlock2-invalid-flags", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mlock2(@0, 2p, 0x2)
        mlock2(@0, 0, 0x2)
        mlock2(@0, 2p, MLOCK_ONFAULT|0x80000000)
        mlock2(@9, 0xfffff00000000000, 0x4)
        """, ["@0", "-EINVAL", "-EINVAL", "-EINVAL", "-EINVAL"], "@0-1 rw-p ..", locked=0),
    # mlock2's flags are an `int` (SYSCALL_DEFINE3(mlock2, ..., int, flags)): the
    # upper 32 bits of the register are dropped before the check
    case("mlock2-flags-are-int", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mlock2(@0, 1p, 0x100000000)
        mlock2(@1, 1p, MLOCK_ONFAULT|0x100000000)
        """, ["@0", "0", "0"], "@0 rw-p lo A; @1 rw-p lo lf .", locked=2),
    # §3: munlock clears lo and lf, never unmaps; a hole gives ENOMEM after the
    # VMAs before it are unlocked
    case("munlock-keeps-pages", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        munlock(@0, 2p)
        """, ["@0", "0"], "@0-1 rw-p AA", locked=0),
    case("munlock-onfault-part", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mlock2(@0, 4p, MLOCK_ONFAULT)
        munlock(@1+5, 1p)
        """, ["@0", "0", "0"], "@0 rw-p lo lf .; @1-2 rw-p ..; @3 rw-p lo lf .", locked=2),
    case("munlock-hole-in-middle", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        mmap(@3, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        munlock(@0, 5p)
        """, ["@0", "@3", "-ENOMEM"], "@0-1 rw-p AA; @3-4 rw-p lo AA", locked=2),
    case("munlock-hole-at-start", """
        mmap(@1, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        munlock(@0, 3p)
        munlock(@3, 0)
        """, ["@1", "-ENOMEM", "0"], "@1-2 rw-p lo AA", locked=2),
    # ------------------------------------------------------------ §9 touches
    case("touch-private", """
        mmap(@0, 3p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        touch(@0, read)
        touch(@1, read)
        touch(@1, write)
        touch(@2+100, write)
        """, ["@0", "-", "-", "-", "-"], "@0-2 rw-p ZAA"),
    case("touch-unmapped", """
        touch(@0, read)
        mmap(@1, 1p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        touch(@2, write)
        """, ["SIGSEGV/MAPERR", "@1", "SIGSEGV/MAPERR"], "@1 rw-p ."),
    case("touch-accerr", """
        mmap(@0, 1p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@1, 1p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        touch(@0, write)
        touch(@1, read)
        touch(@1, write)
        touch(@0, read)
        """, ["@0", "@1", "SIGSEGV/ACCERR", "SIGSEGV/ACCERR", "SIGSEGV/ACCERR", "-"],
        "@0 r--p Z; @1 ---p ."),
    # §9: on x86 write-only and exec-only pages are readable
    case("touch-write-only", """
        mmap(@0, 2p, PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        touch(@0, read)
        touch(@1, write)
        """, ["@0", "-", "-"], "@0-1 -w-p ZA"),
    case("touch-exec-only", """
        mmap(@0, 2p, PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        touch(@0, read)
        touch(@1, write)
        """, ["@0", "-", "SIGSEGV/ACCERR"], "@0-1 --xp Z.", features=EXEC_READABLE),
    # the execute-only pkey denies reads and writes alike (bad_area_access_from_pkeys)
    case("touch-exec-only-pkey", """
        mmap(@0, 2p, PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        touch(@0, read)
        touch(@1, write)
        """, ["@0", "SIGSEGV/PKUERR", "SIGSEGV/PKUERR"], "@0-1 --xp ..", features=EXEC_PKEY),
    case("touch-shared", """
        mmap(@0, 3p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0)
        touch(@0, read)
        touch(@2, write)
        """, ["@0", "-", "-"], "@0-2 rw-s F.F"),
    case("touch-shared-readonly", """
        mmap(@0, 1p, PROT_READ, MAP_SHARED|MAP_ANONYMOUS, -1, 0)
        mmap(@1, 1p, PROT_EXEC, MAP_SHARED|MAP_ANONYMOUS, -1, 0)
        touch(@0, write)
        touch(@0, read)
        touch(@1, read)
        """, ["@0", "@1", "SIGSEGV/ACCERR", "-", "-"], "@0 r--s F; @1 --xs F",
        features=EXEC_READABLE),
    case("touch-shared-readonly-pkey", """
        mmap(@0, 1p, PROT_READ, MAP_SHARED|MAP_ANONYMOUS, -1, 0)
        mmap(@1, 1p, PROT_EXEC, MAP_SHARED|MAP_ANONYMOUS, -1, 0)
        touch(@0, write)
        touch(@0, read)
        touch(@1, read)
        """, ["@0", "@1", "SIGSEGV/ACCERR", "-", "SIGSEGV/PKUERR"], "@0 r--s F; @1 --xs .",
        features=EXEC_PKEY),
    case("touch-locked-readonly", """
        mmap(@0, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mlock2(@0, 2p, MLOCK_ONFAULT)
        touch(@0, read)
        touch(@1, write)
        """, ["@0", "0", "-", "SIGSEGV/ACCERR"], "@0-1 r--p lo lf Z.", locked=2),
]


CASES = model_params(ROWS)


@pytest.mark.parametrize("c", CASES)
def test_model(c: Case) -> None:
    check_model(c)


def test_table_is_large_and_unique() -> None:
    check_table(ROWS, at_least=60)


def test_raising_memlock_needs_cap_sys_resource() -> None:
    """kernel/sys.c do_prlimit: raising a hard limit needs CAP_SYS_RESOURCE.

    A regression test: root without that capability (as in some sandboxes)
    was predicted to succeed, a false alarm on a correct kernel.
    """
    text = "prlimit_memlock(4p)\nprlimit_memlock(8p)\nprlimit_memlock(2p)\n"
    without = State(memlock_limit=8 << 20, memlock_hard=8 << 20, cap_sys_resource=False)
    assert run_model(text, without)[0] == ["0", "-EPERM", "0"]
    assert without.memlock_limit == 2 * PAGE
    with_cap = State(memlock_limit=8 << 20, memlock_hard=8 << 20, cap_sys_resource=True)
    assert run_model(text, with_cap)[0] == ["0", "0", "0"]
