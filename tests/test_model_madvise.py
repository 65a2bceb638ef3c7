"""The madvise model against hand-derived expectations (docs/SEMANTICS.md §7, mm/madvise.c).

Same table style and notation as `test_model.py`: program text, the result of
each step, the arena as `render` prints it at the end and, where locking is
involved, `State.locked_pages()`. Every expectation comes from docs/SEMANTICS.md or
the kernel function named in the comment, not from running the model.
`test_model_madvise_kernel.py` runs the same table on the real kernel.
"""

from __future__ import annotations

import pytest

from fuzzer.model import State, step
from fuzzer.model.features import Features
from fuzzer.model.madvise import HPAGE_PMD_PAGES, UNSUPPORTED_ADVICE
from fuzzer.oracle.views import model_view, render
from fuzzer.prog import parse
from fuzzer.prog.program import ARENA_PAGES
from tests.tables import Case, case, check_model, check_table, model_params, run_model

ROWS = [
    # ------------------------------------------- §1, §7 arguments (is_valid_madvise)
    # §1: an unaligned start is EINVAL, even with len 0 (alignment is checked first)
    case("madvise-unaligned", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@0+1, 1p, MADV_DONTNEED)
        madvise(@1+100, 0, MADV_DONTNEED)
        """, ["@0", "-EINVAL", "-EINVAL"], "@0-1 rw-p AA"),
    # §7: an unknown advice is EINVAL; madvise_behavior_valid comes before everything,
    # so it wins over len 0. 26 and 104 are unassigned, 5-7 are holes in the numbering,
    # 0xffffffff is the int -1 (the kernel's internal __MADV_SET_ANON_VMA_NAME)
    case("madvise-unknown-advice", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@0, 1p, 5)
        madvise(@0, 1p, 6)
        madvise(@0, 1p, 7)
        madvise(@0, 1p, 26)
        madvise(@0, 1p, 104)
        madvise(@0, 1p, 0xffffffff)
        madvise(@0, 0, 7)
        """, ["@0", "-EINVAL", "-EINVAL", "-EINVAL", "-EINVAL", "-EINVAL", "-EINVAL", "-EINVAL"],
        "@0-1 rw-p AA"),
    # SYSCALL_DEFINE3(madvise, ..., int, behavior): the upper 32 bits are dropped,
    # so 0x100000004 is MADV_DONTNEED and 0x100000007 is still unknown
    case("madvise-advice-is-int", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@0, 1p, 0x100000004)
        madvise(@1, 1p, 0x100000007)
        """, ["@0", "0", "-EINVAL"], "@0-1 rw-p .A"),
    # §1: len 0 returns 0 without looking at VMAs (madvise_should_skip)
    case("madvise-len-zero", """
        mmap(@0, 1p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        madvise(@0, 0, MADV_DONTNEED)
        madvise(@5, 0, MADV_REMOVE)
        """, ["@0", "0", "0"], "@0 rw-p lo A", locked=1),
    # §1: len is rounded up to whole pages
    case("madvise-len-rounds-up", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@0, 1, MADV_DONTNEED)
        madvise(@1, 1p+1, MADV_DONTNEED)
        """, ["@0", "0", "0"], "@0-3 rw-p ...A"),
    # §1: a len that rounds up to 0 is EINVAL ("rounded up from small -ve to zero"),
    # and so is an end that wraps, mapped or not
    case("madvise-len-rounds-to-zero", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@0, 0xffffffffffffffff, MADV_DONTNEED)
        madvise(@0, 0xfffffffffffff001, MADV_NORMAL)
        """, ["@0", "-EINVAL", "-EINVAL"], "@0-1 rw-p AA"),
    case("madvise-wraps", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@0, 0xfffff00000000000, MADV_DONTNEED)
        madvise(@0, 0xfffffffffffff000, MADV_DONTFORK)
        madvise(@9, 0xffffe00000000000, MADV_POPULATE_WRITE)
        """, ["@0", "-EINVAL", "-EINVAL", "-EINVAL"], "@0-1 rw-p AA"),
    # -------------------------------------------------- §7 holes (madvise_walk_vmas)
    # §7: the advice is applied to every mapped part, then ENOMEM
    case("madvise-hole-in-middle", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        mmap(@3, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@0, 5p, MADV_DONTNEED)
        """, ["@0", "@3", "-ENOMEM"], "@0-1 rw-p ..; @3-4 rw-p .."),
    case("madvise-hole-at-start-and-end", """
        mmap(@1, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@0, 3p, MADV_DONTNEED)
        touch(@1, write)
        touch(@2, write)
        madvise(@1, 3p, MADV_DONTFORK)
        """, ["@1", "-ENOMEM", "-", "-", "-ENOMEM"], "@1-2 rw-p dc AA"),
    case("madvise-all-hole", """
        mmap(@0, 1p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@2, 3p, MADV_DONTNEED)
        madvise(@2, 3p, MADV_NORMAL)
        madvise(@2, 3p, MADV_COLD)
        """, ["@0", "-ENOMEM", "-ENOMEM", "-ENOMEM"], "@0 rw-p A"),
    # §7: an error from one VMA stops the walk at once: the VMA before it is
    # zapped, the one after it is not
    case("madvise-error-stops-walk", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        mmap(@2, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        mmap(@4, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@0, 6p, MADV_DONTNEED)
        """, ["@0", "@2", "@4", "-EINVAL"], "@0-1 rw-p ..; @2-3 rw-p lo AA; @4-5 rw-p AA",
        locked=2),
    # madvise_walk_vmas returns a VMA's error at once, so it wins over an earlier hole
    case("madvise-error-after-hole", """
        mmap(@0, 1p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        mmap(@2, 1p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@0, 3p, MADV_WIPEONFORK)
        """, ["@0", "@2", "-EINVAL"], "@0 rw-p wf A; @2 rw-s F"),
    # ------------------------------------------------------------------ DONTNEED
    # §7 DONTNEED: PTEs are zapped; AP data is lost, the next read gives Z
    case("dontneed-private", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        touch(@3, read)
        madvise(@0, 4p, MADV_DONTNEED)
        touch(@0, read)
        touch(@1, write)
        """, ["@0", "-", "0", "-", "-"], "@0-3 rw-p ZA.."),
    case("dontneed-zero-pages", """
        mmap(@0, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@1, 1p, MADV_DONTNEED)
        """, ["@0", "0"], "@0-1 r--p Z."),
    # §7 DONTNEED: AS data stays in shmem and comes back on the next fault, with
    # fault-around (§9) mapping the other cached pages of the window
    case("dontneed-shared-comes-back", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0)
        touch(@0, write)
        touch(@2, write)
        madvise(@0, 4p, MADV_DONTNEED)
        touch(@3, read)
        """, ["@0", "-", "-", "0", "-"], "@0-3 rw-s F.FF"),
    # §7 DONTNEED: EINVAL on lo VMAs, lf included (madvise_dontneed_free_valid_vma)
    case("dontneed-locked-einval", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        madvise(@0, 2p, MADV_DONTNEED)
        """, ["@0", "-EINVAL"], "@0-1 rw-s lo FF", locked=2),
    case("dontneed-onfault-einval", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mlock2(@0, 2p, MLOCK_ONFAULT)
        touch(@0, write)
        madvise(@0, 2p, MADV_DONTNEED)
        """, ["@0", "0", "-", "-EINVAL"], "@0-1 rw-p lo lf A.", locked=2),
    # DONTNEED does not look at protection: present PROT_NONE pages (§4) are zapped
    case("dontneed-prot-none", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        mprotect(@0, 2p, PROT_NONE)
        madvise(@1, 1p, MADV_DONTNEED)
        """, ["@0", "0", "0"], "@0-1 ---p A."),
    # §7 DONTNEED_LOCKED: allowed on lo; the VMA stays lo and VmLck does not change,
    # but the pages are gone (and nothing faults them back until mlock, §3)
    case("dontneed-locked-on-lo", """
        mmap(@0, 3p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        madvise(@0, 2p, MADV_DONTNEED_LOCKED)
        """, ["@0", "0"], "@0-2 rw-p lo ..A", locked=3),
    case("dontneed-locked-then-mlock", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        madvise(@0, 2p, MADV_DONTNEED_LOCKED)
        mlock(@1, 1p)
        """, ["@0", "0", "0"], "@0-1 rw-p lo .A", locked=2),
    case("dontneed-locked-onfault-shared", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        mlock2(@0, 2p, MLOCK_ONFAULT)
        madvise(@0, 2p, MADV_DONTNEED_LOCKED)
        touch(@1, read)
        """, ["@0", "0", "0", "-"], "@0-1 rw-s lo lf FF", locked=2),
    case("dontneed-locked-unlocked-vma", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@0, 2p, MADV_DONTNEED_LOCKED)
        """, ["@0", "0"], "@0-1 rw-p .."),
    # ---------------------------------------------------------------------- FREE
    # §7 FREE: AP only; pages stay present (lazily freed, no reclaim here)
    case("free-private-stays", """
        mmap(@0, 3p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@2, 1p, MADV_DONTNEED)
        touch(@2, read)
        madvise(@0, 3p, MADV_FREE)
        touch(@0, write)
        """, ["@0", "0", "-", "0", "-"], "@0-2 rw-p AAZ"),
    # §7 FREE: EINVAL on AS (not vma_is_anonymous) and on lo
    case("free-shared-einval", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@0, 2p, MADV_FREE)
        """, ["@0", "-EINVAL"], "@0-1 rw-s FF"),
    case("free-locked-einval", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        madvise(@0, 2p, MADV_FREE)
        """, ["@0", "-EINVAL"], "@0-1 rw-p lo AA", locked=2),
    case("free-then-shared-einval", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        mmap(@2, 2p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@0, 4p, MADV_FREE)
        """, ["@0", "@2", "-EINVAL"], "@0-1 rw-p AA; @2-3 rw-s FF"),
    # -------------------------------------------------------------------- REMOVE
    # §7 REMOVE: a hole is punched in the shmem object; the punched pages are not
    # cached any more, so fault-around cannot bring them back
    case("remove-shared-punches", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@1, 2p, MADV_REMOVE)
        madvise(@0, 4p, MADV_DONTNEED)
        touch(@0, read)
        """, ["@0", "0", "0", "-"], "@0-3 rw-s F..F"),
    # §7 REMOVE: EINVAL on AP (no vm_file) and on lo
    case("remove-private-einval", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@0, 2p, MADV_REMOVE)
        """, ["@0", "-EINVAL"], "@0-1 rw-p AA"),
    case("remove-locked-einval", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        madvise(@0, 2p, MADV_REMOVE)
        """, ["@0", "-EINVAL"], "@0-1 rw-s lo FF", locked=2),
    # §7 REMOVE: EACCES only without VM_SHARED|VM_MAYWRITE; an anonymous-shared
    # mapping has both whatever its protection, so read-only and PROT_NONE work
    case("remove-readonly-and-prot-none", """
        mmap(@0, 2p, PROT_READ, MAP_SHARED|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@0, 1p, MADV_REMOVE)
        mprotect(@0, 2p, PROT_NONE)
        madvise(@1, 1p, MADV_REMOVE)
        """, ["@0", "0", "0", "0"], "@0-1 ---s .."),
    # the walk punches the shared VMA, then stops with EINVAL at the private one
    case("remove-stops-at-private", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        mmap(@2, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@0, 4p, MADV_REMOVE)
        """, ["@0", "@2", "-EINVAL"], "@0-1 rw-s ..; @2-3 rw-p AA"),
    # ------------------------------------------------------ DONTFORK, DOFORK (dc)
    # §7: DONTFORK sets dc, DOFORK clears it; VMAs split and merge; no page changes (§12.7)
    case("dontfork-dofork", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@0, 4p, MADV_DONTFORK)
        madvise(@1, 2p, MADV_DOFORK)
        """, ["@0", "0", "0"], "@0 rw-p dc A; @1-2 rw-p AA; @3 rw-p dc A"),
    case("dontfork-shared-and-locked", """
        mmap(@0, 2p, PROT_READ, MAP_SHARED|MAP_ANONYMOUS, -1, 0)
        mmap(@2, 2p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        madvise(@0, 4p, MADV_DONTFORK)
        """, ["@0", "@2", "0"], "@0-1 r--s dc ..; @2-3 ---p lo dc ..", locked=2),
    # dc is carried into every piece by mprotect and mlock (vma_modify_flags)
    case("dontfork-kept-by-mprotect-mlock", """
        mmap(@0, 3p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        madvise(@0, 3p, MADV_DONTFORK)
        mprotect(@1, 1p, PROT_READ)
        mlock(@2, 1p)
        """, ["@0", "0", "0", "0"], "@0 rw-p dc .; @1 r--p dc .; @2 rw-p lo dc A", locked=1),
    # ---------------------------------------------------- WIPEONFORK, KEEPONFORK (wf)
    # §7: WIPEONFORK sets wf on AP; pages stay (§12.7)
    case("wipeonfork-private", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@1, 1p, MADV_WIPEONFORK)
        """, ["@0", "0"], "@0 rw-p A; @1 rw-p wf A"),
    # §7: WIPEONFORK on AS is EINVAL (vm_file set, VM_SHARED set); the AP VMA
    # before it has already been changed
    case("wipeonfork-shared-einval", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@2, 2p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0)
        mmap(@4, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        madvise(@0, 6p, MADV_WIPEONFORK)
        """, ["@0", "@2", "@4", "-EINVAL"], "@0-1 rw-p wf ..; @2-3 rw-s ..; @4-5 rw-p .."),
    # §7: KEEPONFORK clears wf; it is EINVAL only on VM_DROPPABLE, so AS is fine
    case("keeponfork", """
        mmap(@0, 3p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@3, 1p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0)
        madvise(@0, 3p, MADV_WIPEONFORK)
        madvise(@1, 3p, MADV_KEEPONFORK)
        """, ["@0", "@3", "0", "0"], "@0 rw-p wf .; @1-2 rw-p ..; @3 rw-s ."),
    case("wipeonfork-and-dontfork", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        madvise(@0, 2p, MADV_WIPEONFORK)
        madvise(@1, 1p, MADV_DONTFORK)
        touch(@1, write)
        """, ["@0", "0", "0", "-"], "@0 rw-p wf .; @1 rw-p dc wf A"),
    # ------------------------------------------------------ POPULATE_READ / _WRITE
    # §7 POPULATE_READ: normal permissions; on AP it maps Z, even in lo VMAs
    case("populate-read-private", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@2, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        touch(@1, write)
        madvise(@0, 4p, MADV_POPULATE_READ)
        """, ["@0", "@2", "-", "0"], "@0-1 rw-p ZA; @2-3 r--p ZZ"),
    case("populate-read-locked", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        madvise(@0, 2p, MADV_DONTNEED_LOCKED)
        madvise(@0, 2p, MADV_POPULATE_READ)
        """, ["@0", "0", "0"], "@0-1 rw-p lo ZZ", locked=2),
    # GUP does not skip lf (only populate_vma_page_range does, for mlock)
    case("populate-onfault", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mlock2(@0, 4p, MLOCK_ONFAULT)
        madvise(@0, 2p, MADV_POPULATE_READ)
        madvise(@2, 2p, MADV_POPULATE_WRITE)
        """, ["@0", "0", "0", "0"], "@0-3 rw-p lo lf ZZAA", locked=4),
    # §7 POPULATE_WRITE: real pages, replacing Z
    case("populate-write-private", """
        mmap(@0, 3p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@3, 1p, PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        touch(@0, read)
        madvise(@0, 4p, MADV_POPULATE_WRITE)
        """, ["@0", "@3", "-", "0"], "@0-2 rw-p AAA; @3 -w-p A"),
    # §7: PROT_NONE is EINVAL, and so is WRITE on a read-only VMA. check_vma_flags
    # wants VM_READ itself for a read, so write-only and exec-only VMAs (which a
    # touch can read on x86, §9) are EINVAL for POPULATE_READ too
    case("populate-einval", """
        mmap(@0, 1p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@1, 1p, PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@2, 1p, PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@3, 1p, PROT_READ, MAP_SHARED|MAP_ANONYMOUS, -1, 0)
        madvise(@0, 1p, MADV_POPULATE_READ)
        madvise(@0, 1p, MADV_POPULATE_WRITE)
        madvise(@1, 1p, MADV_POPULATE_READ)
        madvise(@2, 1p, MADV_POPULATE_READ)
        madvise(@2, 1p, MADV_POPULATE_WRITE)
        madvise(@3, 1p, MADV_POPULATE_WRITE)
        """, ["@0", "@1", "@2", "@3", "-EINVAL", "-EINVAL", "-EINVAL", "-EINVAL", "-EINVAL",
              "-EINVAL"], "@0 ---p .; @1 -w-p .; @2 --xp .; @3 r--s ."),
    # faultin_page_range goes in order: the VMA before the bad one is populated
    case("populate-stops-at-readonly", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@2, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@4, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        madvise(@0, 6p, MADV_POPULATE_WRITE)
        """, ["@0", "@2", "@4", "-EINVAL"], "@0-1 rw-p AA; @2-3 r--p ..; @4-5 rw-p .."),
    # §7 POPULATE: a hole is ENOMEM, and unlike the walk it stops there
    case("populate-hole-stops", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        mmap(@3, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        madvise(@0, 5p, MADV_POPULATE_WRITE)
        madvise(@2, 3p, MADV_POPULATE_READ)
        """, ["@0", "@3", "-ENOMEM", "-ENOMEM"], "@0-1 rw-p AA; @3-4 rw-p .."),
    # §7, §9: POPULATE_READ on AS takes read faults, with fault-around of cached
    # pages; POPULATE_WRITE takes write faults, which map only their own page
    case("populate-shared", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0)
        madvise(@1, 1p, MADV_POPULATE_WRITE)
        madvise(@3, 1p, MADV_POPULATE_WRITE)
        madvise(@0, 4p, MADV_DONTNEED)
        madvise(@0, 1p, MADV_POPULATE_READ)
        """, ["@0", "0", "0", "0", "0"], "@0-3 rw-s FF.F"),
    case("populate-write-shared-write-only", """
        mmap(@0, 2p, PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0)
        madvise(@0, 1p, MADV_POPULATE_WRITE)
        """, ["@0", "0"], "@0-1 -w-s F."),
    # §9: fault-around happens inside a fault; touching a page that is already
    # present takes no fault, so the cached page DONTNEED zapped stays unmapped
    case("dontneed-shared-touch-present", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@1, 1p, MADV_DONTNEED)
        touch(@0, read)
        """, ["@0", "0", "-"], "@0-1 rw-s F."),
    # ------------------------------------------ advice with no visible effect here
    # VM_RAND_READ, VM_SEQ_READ, VM_HUGEPAGE, VM_NOHUGEPAGE, VM_DONTDUMP and
    # VM_MERGEABLE are not compared; THP is disabled for the executor and KSM is
    # off, and WILLNEED finds no swap entries (madvise_willneed): nothing changes
    case("hints-private", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        touch(@0, write)
        touch(@1, read)
        madvise(@0, 4p, MADV_RANDOM)
        madvise(@1, 2p, MADV_SEQUENTIAL)
        madvise(@0, 4p, MADV_NORMAL)
        madvise(@0, 3p, MADV_WILLNEED)
        madvise(@0, 4p, MADV_MERGEABLE)
        madvise(@2, 2p, MADV_UNMERGEABLE)
        madvise(@0, 1p, MADV_HUGEPAGE)
        madvise(@1, 1p, MADV_NOHUGEPAGE)
        madvise(@0, 2p, MADV_DONTDUMP)
        madvise(@1, 3p, MADV_DODUMP)
        touch(@2, read)
        """, ["@0", "-", "-", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "-"],
        "@0-3 rw-p AZZ."),
    # The same on a whole AS object: no VMA is split between its pages, so a read
    # fault still maps its cached neighbours (§9 fault-around)
    case("hints-shared-whole", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@0, 4p, MADV_RANDOM)
        madvise(@0, 4p, MADV_HUGEPAGE)
        madvise(@0, 4p, MADV_DONTDUMP)
        madvise(@0, 4p, MADV_MERGEABLE)
        madvise(@2, 2p, MADV_UNMERGEABLE)
        madvise(@0, 4p, MADV_WILLNEED)
        madvise(@0, 4p, MADV_DONTNEED)
        touch(@0, read)
        """, ["@0", "0", "0", "0", "0", "0", "0", "0", "-"], "@0-3 rw-s FFFF"),
    # flag-only advice on part of an AS object splits its VMA (madvise_update_vma):
    # do_fault_around's window stops at the VMA's edge (§9); MERGEABLE leaves shared
    # VMAs alone (vma_ksm_compatible), so it splits nothing
    case("split-shared-stops-fault-around", """
        mmap(@0, 8p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@0, 8p, MADV_DONTNEED)
        madvise(@4, 4p, MADV_DONTFORK)
        touch(@4, read)
        madvise(@0, 2p, MADV_NOHUGEPAGE)
        touch(@2, read)
        """, ["@0", "0", "0", "-", "0", "-"], "@0-3 rw-s ..FF; @4-7 rw-s dc FFFF"),
    case("split-shared-hints-stop-fault-around", """
        mmap(@0, 12p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@0, 12p, MADV_DONTNEED)
        madvise(@2, 2p, MADV_RANDOM)
        madvise(@4, 2p, MADV_SEQUENTIAL)
        madvise(@6, 2p, MADV_DONTDUMP)
        madvise(@8, 2p, MADV_HUGEPAGE)
        madvise(@10, 1p, MADV_MERGEABLE)
        touch(@4, read)
        touch(@10, read)
        """, ["@0", "0", "0", "0", "0", "0", "0", "-", "-"], "@0-11 rw-s ....FF....FF"),
    # ... and undoing the flags merges the pieces again (NORMAL clears rr and sr,
    # DODUMP clears dd): the window spans them
    case("split-shared-hints-undone", """
        mmap(@0, 8p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@0, 8p, MADV_DONTNEED)
        madvise(@2, 2p, MADV_RANDOM)
        madvise(@4, 2p, MADV_DONTDUMP)
        madvise(@0, 8p, MADV_NORMAL)
        madvise(@0, 8p, MADV_DODUMP)
        touch(@7, read)
        """, ["@0", "0", "0", "0", "0", "0", "-"], "@0-7 rw-s FFFFFFFF"),
    # the flag-only advice never fails on our VMAs, lo and PROT_NONE included
    case("hints-locked-prot-none-hole", """
        mmap(@0, 2p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        madvise(@0, 3p, MADV_SEQUENTIAL)
        madvise(@0, 2p, MADV_WILLNEED)
        madvise(@0, 2p, MADV_NOHUGEPAGE)
        madvise(@0, 2p, MADV_DODUMP)
        """, ["@0", "-ENOMEM", "0", "0", "0"], "@0-1 ---p lo ..", locked=2),
    # WILLNEED and COLD map nothing: cached shmem pages zapped by DONTNEED stay
    # unmapped (shmem_swapin_range only reads swap entries in)
    case("willneed-cold-map-nothing", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@0, 2p, MADV_DONTNEED)
        madvise(@0, 2p, MADV_WILLNEED)
        madvise(@0, 2p, MADV_COLD)
        """, ["@0", "0", "0", "0"], "@0-1 rw-s .."),
    # COLD only deactivates pages (presence unchanged); can_madv_lru_vma makes
    # lo VMAs EINVAL, and that error stops the walk
    case("cold", """
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        mmap(@2, 2p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        touch(@1, read)
        madvise(@0, 4p, MADV_COLD)
        mlock(@2, 1p)
        madvise(@0, 4p, MADV_COLD)
        """, ["@0", "@2", "-", "0", "0", "-EINVAL"], "@0-1 rw-p AA; @2 rw-s lo F; @3 rw-s F",
        locked=1),
    # ------------------------------------------------- §7 MADV_COLLAPSE (6.1+)
    # madvise_collapse asks thp_vma_allowable_order(PMD_ORDER) first (6.1:
    # hugepage_vma_check), which outside a fault wants an aligned 2 MiB range at the
    # VMA's end (thp_vma_suitable_order at vm_end - HPAGE_PMD_SIZE): no VMA of the
    # arena has one, so the first VMA of the range is EINVAL, advised HUGEPAGE or not.
    # The walk skips a hole before it; a range with no VMA at all is ENOMEM
    # (madvise_walk_vmas); len 0 is 0 and an unaligned start EINVAL, as for any advice.
    case("collapse-arena-vma-einval", """
        mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        madvise(@0, 4p, MADV_COLLAPSE)
        madvise(@0, 4p, MADV_HUGEPAGE)
        madvise(@1, 2p, MADV_COLLAPSE)
        mmap(@10, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        madvise(@6, 6p, MADV_COLLAPSE)
        madvise(@6, 4p, MADV_COLLAPSE)
        madvise(@6, 0, MADV_COLLAPSE)
        madvise(@0+1, 1p, MADV_COLLAPSE)
        """, ["@0", "-EINVAL", "0", "-EINVAL", "@10", "-EINVAL", "-ENOMEM", "0", "-EINVAL"],
        "@0-3 rw-p AAAA; @10-11 rw-p .."),
    # every kind of VMA alike: shared anonymous, a memfd shared and private, locked,
    # PROT_NONE, sealed (COLLAPSE is no discard: can_madvise_modify lets it by), and a
    # guard marker's VMA; nothing changes
    case("collapse-every-kind-einval", """
        memfd_create()
        ftruncate(0, 2p)
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_SHARED, 0, 0)
        madvise(@0, 2p, MADV_COLLAPSE)
        mmap(@2, 2p, PROT_READ, MAP_PRIVATE|MAP_POPULATE, 0, 0)
        madvise(@2, 2p, MADV_COLLAPSE)
        mmap(@4, 2p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        madvise(@4, 2p, MADV_COLLAPSE)
        mmap(@6, 2p, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        madvise(@6, 2p, MADV_COLLAPSE)
        mmap(@8, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
        mseal(@8, 2p, 0)
        madvise(@8, 2p, MADV_COLLAPSE)
        mmap(@12, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        madvise(@12, 1p, MADV_GUARD_INSTALL)
        madvise(@12, 2p, MADV_COLLAPSE)
        """, ["0", "0", "@0", "-EINVAL", "@2", "-EINVAL", "@4", "-EINVAL", "@6", "-EINVAL",
              "@8", "0", "-EINVAL", "@12", "0", "-EINVAL"],
        "@0-1 rw-s ..; @2-3 r--p FF; @4-5 rw-s lo FF; @6-7 ---p ..; @8-9 r--p sl ZZ; "
        "@12-13 rw-p G.", locked=2),
]


@pytest.mark.parametrize("c", model_params(ROWS))
def test_madvise_model(c: Case) -> None:
    check_model(c)


def test_table_is_large_and_unique() -> None:
    check_table(ROWS, at_least=40)
    for c in ROWS:
        assert "madvise(" in c.text, c.name


UNSUPPORTED_SETUP = """
    mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)
    mmap(@4, 2p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0)
"""


def test_pageout_after_free_as_int() -> None:
    """The advice register's upper half is dropped: 0x100000015 is MADV_PAGEOUT, which
    discards the pages MADV_FREE left lazy and clean (test_model_pageout.py, §16)."""
    results, state = run_model(UNSUPPORTED_SETUP + "madvise(@0, 2p, MADV_FREE)\n"
                               "madvise(@0, 2p, 0x100000015)\n")
    assert results == ["@0", "@4", "0", "0"]
    assert render(model_view(state.pages[:4])) == "@0-3 rw-p ..AA"


def test_unsupported_advice_listed() -> None:
    """A generator can leave out exactly these values (the program format refuses them
    too: they retire physical pages of the machine)."""
    assert set(UNSUPPORTED_ADVICE) == {100, 101}


# Shared-object advice the model does predict: the whole object, or no change to dc.
@pytest.mark.parametrize("last", [
    "madvise(@4, 2p, MADV_RANDOM)",
    "madvise(@0, 6p, MADV_DONTFORK)",
    "madvise(@5, 1p, MADV_DOFORK)",
    "madvise(@4, 1p, MADV_MERGEABLE)",
    "madvise(@5, 1p, MADV_KEEPONFORK)",
])
def test_shared_advice_supported(last: str) -> None:
    results, _ = run_model(UNSUPPORTED_SETUP + last)
    assert results[-1] == "0"


def test_no_arena_vma_can_hold_a_huge_page() -> None:
    """MADV_COLLAPSE is EINVAL at every VMA of the arena (madvise._collapse) only because
    none is 2 MiB long: an arena that grew to hold one would need the collapse modelled."""
    assert ARENA_PAGES < HPAGE_PMD_PAGES


def test_collapse_unknown_without_it() -> None:
    """Before 6.1, or without CONFIG_TRANSPARENT_HUGEPAGE (User-Mode Linux),
    MADV_COLLAPSE is unknown advice: EINVAL before the walk, so a range with no VMA
    is EINVAL too, not ENOMEM."""
    results, _ = run_model("""
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        madvise(@0, 2p, MADV_COLLAPSE)
        madvise(@4, 2p, MADV_COLLAPSE)
        madvise(@4, 0, MADV_COLLAPSE)
        """, State(features=Features(madv_collapse=False)))
    assert results == ["@0", "-EINVAL", "-EINVAL", "-EINVAL"]


def test_older_kernels_lack_advice() -> None:
    """Before 5.14 (POPULATE) and 5.18 (DONTNEED_LOCKED) these values are unknown: EINVAL."""
    program = parse("""
        mmap(@0, 2p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
        madvise(@0, 2p, MADV_POPULATE_READ)
        madvise(@0, 2p, MADV_POPULATE_WRITE)
        madvise(@0, 2p, MADV_DONTNEED_LOCKED)
        """)
    state = State(features=Features(madv_populate=False, madv_dontneed_locked=False))
    results = [step(state, call).ret for call in program.calls]
    assert results[1:] == [-22, -22, -22]
    assert render(model_view(state.pages)) == "@0-1 rw-p lo AA"
