"""mremap in the reference model (docs/SEMANTICS.md §6, with §11 for VMA identity), as a table.

The same shape as `test_model.py`: every case is program text, the result of
each step, the arena as `render` prints it at the end and, where locking is
involved, `State.locked_pages()`. Expectations come from docs/SEMANTICS.md and
mm/mremap.c / mm/vma.c of 6.18, not from running the model. A case the model
gets wrong is a strict xfail whose reason starts with "model:"; a case the
kernel gets wrong carries `kernel_bug`, which `test_model_mremap_kernel.py`
(the same table on the real kernel) turns into a strict xfail "kernel: ...".

Result notation: `@N` (an address in the arena), `outside` (an address the
kernel chose outside it), `0`, `-EINVAL` and the like; for touches `-` (no
signal), `SIGSEGV/MAPERR`, `SIGSEGV/ACCERR` or `SIGBUS/ADRERR`.
"""

from __future__ import annotations

import pytest

from fuzzer.model import State, step, vmas
from fuzzer.model.features import Features
from fuzzer.oracle.views import model_view, render
from fuzzer.prog import parse
from tests.tables import (
    EXEC_PKEY,
    EXEC_READABLE,
    Case,
    case,
    check_model,
    check_table,
    model_params,
    prediction_text,
    run_model,
)

# Mappings the cases build on, spelled out as program text.
AP = "MAP_PRIVATE|MAP_ANONYMOUS"
AS = "MAP_SHARED|MAP_ANONYMOUS"
RW = "PROT_READ|PROT_WRITE"
MOVE = "MREMAP_MAYMOVE|MREMAP_FIXED"
DONTUNMAP = "MREMAP_MAYMOVE|MREMAP_FIXED|MREMAP_DONTUNMAP"
VMLCK_LEAK = ("DONTUNMAP of a VM_LOCKED VMA: move_vma() adds new_len to locked_vm "
              "(vrm_stat_account) and dontunmap_complete() clears VM_LOCKED on the old VMA "
              "without taking it off, so VmLck exceeds the locked VMAs (and stays after munmap)")

# Run as two rows: on kernels with and without mremap_checks_first.
DUPLICATED_TARGET = """
    mmap(@0, 1p, PROT_NONE, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
    mremap(@0, 0, 1p, MREMAP_MAYMOVE|MREMAP_FIXED, @0)
    mmap(@4, 2p, PROT_NONE, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
    mremap(@5, 0, 2p, MREMAP_MAYMOVE|MREMAP_FIXED, @4)
    """

ROWS = [
    # ------------------------------------------- §6 check_mremap_params (all EINVAL)
    # flags outside MAYMOVE|FIXED|DONTUNMAP
    case("param-unknown-flag", f"""
        mmap(@0, 2p, {RW}, {AP}, -1, 0)
        mremap(@0, 2p, 2p, 0x8, @0)
        mremap(@0, 2p, 4p, MREMAP_MAYMOVE|0x100, @0)
        """, ["@0", "-EINVAL", "-EINVAL"], "@0-1 rw-p .."),
    # an unaligned old address
    case("param-unaligned-old", f"""
        mmap(@0, 2p, {RW}, {AP}, -1, 0)
        mremap(@0+1, 1p, 1p, 0, @0)
        mremap(@0+100, 1p, 2p, MREMAP_MAYMOVE, @0)
        """, ["@0", "-EINVAL", "-EINVAL"], "@0-1 rw-p .."),
    # new_len 0, after PAGE_ALIGN (which wraps ~0 to 0), or above TASK_SIZE
    case("param-new-len", f"""
        mmap(@0, 2p, {RW}, {AP}, -1, 0)
        mremap(@0, 2p, 0, 0, @0)
        mremap(@0, 2p, 0xffffffffffffffff, MREMAP_MAYMOVE, @0)
        mremap(@0, 2p, 0xfffff00000000000, 0, @0)
        mremap(@0, 2p, 0xfffff00000000000, MREMAP_MAYMOVE, @0)
        """, ["@0", "-EINVAL", "-EINVAL", "-EINVAL", "-EINVAL"], "@0-1 rw-p .."),
    # FIXED or DONTUNMAP without MAYMOVE
    case("param-needs-maymove", f"""
        mmap(@0, 2p, {RW}, {AP}, -1, 0)
        mremap(@0, 2p, 2p, MREMAP_FIXED, @10)
        mremap(@0, 2p, 2p, MREMAP_DONTUNMAP, @10)
        mremap(@0, 2p, 2p, MREMAP_FIXED|MREMAP_DONTUNMAP, @10)
        """, ["@0", "-EINVAL", "-EINVAL", "-EINVAL"], "@0-1 rw-p .."),
    # DONTUNMAP with old_len != new_len
    case("param-dontunmap-resize", f"""
        mmap(@0, 2p, {RW}, {AP}, -1, 0)
        mremap(@0, 2p, 4p, MREMAP_MAYMOVE|MREMAP_DONTUNMAP, @10)
        mremap(@0, 2p, 1p, {DONTUNMAP}, @10)
        """, ["@0", "-EINVAL", "-EINVAL"], "@0-1 rw-p .."),
    # a FIXED target (or DONTUNMAP hint) overlapping the old range, or unaligned
    case("param-target-overlap-unaligned", f"""
        mmap(@0, 4p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mremap(@0, 2p, 2p, {MOVE}, @1)
        mremap(@2, 2p, 4p, {MOVE}, @0)
        mremap(@0, 2p, 2p, {MOVE}, @10+1)
        mremap(@0, 2p, 2p, MREMAP_MAYMOVE|MREMAP_DONTUNMAP, @1)
        mremap(@0, 2p, 2p, MREMAP_MAYMOVE|MREMAP_DONTUNMAP, @10+8)
        """, ["@0", "-EINVAL", "-EINVAL", "-EINVAL", "-EINVAL", "-EINVAL"], "@0-3 rw-p AAAA"),
    # check_mremap_params runs before the VMA lookup: EINVAL wins over EFAULT
    case("param-before-vma", """
        mremap(@10, 1p, 1p, 0x10, @0)
        mremap(@10+1, 1p, 1p, 0, @0)
        mremap(@10, 1p, 1p, MREMAP_MAYMOVE|MREMAP_FIXED, @10)
        mremap(@10, 1p, 1p, MREMAP_MAYMOVE, @0)
        """, ["-EINVAL", "-EINVAL", "-EINVAL", "-EFAULT"], "(arena empty)"),
    # without FIXED or DONTUNMAP the new address is not looked at, aligned or not
    case("param-new-ignored", f"""
        mmap(@0, 1p, {RW}, {AP}, -1, 0)
        mremap(@0, 1p, 2p, MREMAP_MAYMOVE, @5+3)
        """, ["@0", "@0"], "@0-1 rw-p .."),
    # --------------------------------------------------- §6 check_prep_vma
    # no VMA at the old address: EFAULT, whatever the size change; for a pure
    # FIXED move (remap_move) a gap at the start of the range is EFAULT too
    case("vma-none", f"""
        mmap(@4, 2p, {RW}, {AP}, -1, 0)
        mremap(@0, 1p, 1p, 0, @0)
        mremap(@0, 2p, 1p, 0, @0)
        mremap(@3, 1p, 2p, MREMAP_MAYMOVE, @0)
        mremap(@2, 4p, 4p, {MOVE}, @20)
        mremap(@6, 1p, 1p, 0, @0)
        """, ["@4", "-EFAULT", "-EFAULT", "-EFAULT", "-EFAULT", "-EFAULT"],
        "@4-5 rw-p .."),
    # a range crossing the end of its VMA: EFAULT when growing or moving
    case("vma-crosses-end", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mmap(@2, 2p, PROT_READ, {AP}, -1, 0)
        mremap(@0, 3p, 4p, 0, @0)
        mremap(@0, 3p, 4p, MREMAP_MAYMOVE, @0)
        mremap(@1, 2p, 3p, {MOVE}, @10)
        mremap(@0, 3p, 3p, MREMAP_MAYMOVE|MREMAP_DONTUNMAP, @10)
        """, ["@0", "@2", "-EFAULT", "-EFAULT", "-EFAULT", "-EFAULT"],
        "@0-1 rw-p AA; @2-3 r--p .."),
    # old_len 0 "duplicates" a mapping: EINVAL for a private one (after the lookup)
    case("vma-old-len-zero-private", f"""
        mmap(@0, 2p, {RW}, {AP}, -1, 0)
        mremap(@0, 0, 1p, MREMAP_MAYMOVE, @0)
        mremap(@0, 0, 1p, {MOVE}, @10)
        mremap(@4, 0, 1p, MREMAP_MAYMOVE, @0)
        """, ["@0", "-EINVAL", "-EINVAL", "-EFAULT"], "@0-1 rw-p .."),
    # resizing across VMAs is EFAULT even with FIXED; a FIXED shrink only needs the
    # part it keeps inside the VMA (the tail it unmaps may cross VMAs)
    case("vma-resize-across-fixed", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mmap(@2, 2p, PROT_READ, {AP}|MAP_POPULATE, -1, 0)
        mremap(@0, 4p, 5p, {MOVE}, @10)
        mremap(@0, 4p, 3p, {MOVE}, @10)
        mremap(@0, 4p, 2p, {MOVE}, @10)
        """, ["@0", "@2", "-EFAULT", "-EFAULT", "@10"], "@10-11 rw-p AA"),
    # ------------------------------------------------------ §6 same size, shrink
    # the same size without FIXED or DONTUNMAP returns old_addr and changes nothing,
    # even if the range runs past the VMA
    case("same-size-noop", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mremap(@0, 8p, 8p, 0, @0)
        mremap(@1, 5p, 5p, MREMAP_MAYMOVE, @30)
        """, ["@0", "@0", "@1"], "@0-1 rw-p AA"),
    # shrink: the tail is unmapped in place (new_len rounds up), VmLck falls
    case("shrink-locked", f"""
        mmap(@0, 4p, {RW}, {AP}|MAP_LOCKED, -1, 0)
        mremap(@0, 4p, 1p+5, 0, @0)
        """, ["@0", "@0"], "@0-1 rw-p lo AA", locked=2),
    # check_prep_vma skips the VMA checks for a shrink: the unmapped tail may cross
    # other VMAs and holes
    case("shrink-across-vmas", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mmap(@2, 2p, PROT_READ, {AP}|MAP_POPULATE, -1, 0)
        mmap(@5, 2p, PROT_READ, {AS}|MAP_LOCKED, -1, 0)
        mremap(@0, 7p, 1p, 0, @0)
        """, ["@0", "@2", "@5", "@0"], "@0 rw-p A", locked=0),
    # a huge old_len makes the tail's do_vmi_munmap fail (EINVAL); ~0 aligns to 0,
    # which is the private "duplicate" case (EINVAL)
    case("shrink-old-len-wraps", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mremap(@0, 0xfffff00000000000, 1p, 0, @0)
        mremap(@0, 0xffffffffffffffff, 1p, 0, @0)
        """, ["@0", "-EINVAL", "-EINVAL"], "@0-1 rw-p AA"),
    # mremap_to unmaps a FIXED target before it shrinks: when the shrink then fails,
    # the target is gone all the same
    case("shrink-fixed-fails-after-target", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mmap(@10, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mremap(@0, 0xfffff00000000000, 1p, {MOVE}, @10)
        """, ["@0", "@10", "-EINVAL"], "@0-1 rw-p AA; @11 rw-p A"),
    # ------------------------------------------------------------ §6 grow
    # grow in place: the range ends the VMA and the space after it is free; the new
    # part is not populated unless the VMA is locked
    case("grow-in-place", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mremap(@0, 2p, 4p, 0, @0)
        mmap(@10, 4p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mremap(@12, 2p, 3p, 0, @0)
        """, ["@0", "@0", "@10", "@12"], "@0-3 rw-p AA..; @10-14 rw-p AAAA."),
    # not in place: the next VMA is adjacent, or the range does not end the VMA;
    # without MAYMOVE that is ENOMEM
    case("grow-blocked", f"""
        mmap(@0, 4p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mmap(@4, 1p, PROT_READ, {AP}, -1, 0)
        mremap(@0, 4p, 5p, 0, @0)
        mremap(@0, 2p, 3p, 0, @0)
        """, ["@0", "@4", "-ENOMEM", "-ENOMEM"], "@0-3 rw-p AAAA; @4 r--p ."),
    # ... with MAYMOVE the kernel picks a new address (outside the arena) and the
    # old range, only it, is unmapped
    case("grow-moves-outside", f"""
        mmap(@0, 4p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mmap(@4, 1p, PROT_READ, {AP}, -1, 0)
        mremap(@1, 2p, 3p, MREMAP_MAYMOVE, @0)
        """, ["@0", "@4", "outside"], "@0 rw-p A; @3 rw-p A; @4 r--p ."),
    # §10: VmLck covers the whole process, so a locked VMA moved outside still counts,
    # grown (locked_vm += delta)
    case("grow-moves-outside-locked", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_LOCKED, -1, 0)
        mmap(@2, 1p, PROT_READ, {AP}, -1, 0)
        mremap(@0, 2p, 3p, MREMAP_MAYMOVE, @0)
        """, ["@0", "@2", "outside"], "@2 r--p .", locked=3),
    # a shared VMA moved outside still maps its object: mlockall(MCL_CURRENT) populates
    # it (up to the object's end), so an arena page of the same offset is mapped twice;
    # with MCL_ONFAULT nothing is populated
    case("grow-moves-outside-shared-mlockall", f"""
        mmap(@46, 8p, PROT_WRITE, {AS}, -1, 0)
        mremap(@52, 1p, 4p, MREMAP_MAYMOVE, @12)
        mlockall(MCL_CURRENT|MCL_ONFAULT)
        touch(@53, read)
        mlockall(MCL_CURRENT)
        munlockall()
        """, ["@46", "outside", "0", "-", "0", "0"], "@46-51 -w-s FFFFFF; @53 -w-s f",
        locked=0),
    # growing a lo VMA: locked_vm += delta, then mm_populate of the new part
    case("grow-locked-populates", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_LOCKED, -1, 0)
        mremap(@0, 2p, 4p, 0, @0)
        """, ["@0", "@0"], "@0-3 rw-p lo AAAA", locked=4),
    # §3: without CAP_IPC_LOCK a locked VMA grows only within RLIMIT_MEMLOCK
    # (mlock_future_ok in check_prep_vma): EAGAIN; moves and unlocked VMAs are not held
    case("grow-locked-rlimit", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_LOCKED, -1, 0)
        mmap(@10, 2p, {RW}, {AP}, -1, 0)
        drop_cap_ipc_lock()
        prlimit_memlock(3p)
        mremap(@0, 2p, 4p, 0, @0)
        mremap(@0, 2p, 3p, 0, @0)
        mremap(@0, 3p, 4p, MREMAP_MAYMOVE, @0)
        mremap(@10, 2p, 8p, 0, @0)
        mremap(@0, 3p, 3p, {MOVE}, @20)
        mremap(@20, 3p, 4p, {MOVE}, @30)
        """, ["@0", "@10", "0", "0", "-EAGAIN", "@0", "-EAGAIN", "@10", "@20", "-EAGAIN"],
        "@10-17 rw-p ........; @20-22 rw-p lo AAA", locked=3),
    # ... read-only: Z pages; PROT_NONE: nothing (populate errors are ignored)
    case("grow-locked-readonly-and-none", f"""
        mmap(@0, 1p, PROT_READ, {AP}|MAP_LOCKED, -1, 0)
        mremap(@0, 1p, 3p, 0, @0)
        mmap(@4, 1p, PROT_NONE, {AP}|MAP_LOCKED, -1, 0)
        mremap(@4, 1p, 2p, 0, @0)
        """, ["@0", "@0", "@4", "@4"], "@0-2 r--p lo ZZZ; @4-5 ---p lo ..", locked=5),
    # ... lock-on-fault: lo lf carry over, the new part is not populated
    case("grow-onfault", f"""
        mmap(@0, 2p, {RW}, {AP}, -1, 0)
        mlock2(@0, 2p, MLOCK_ONFAULT)
        touch(@0, write)
        mremap(@0, 2p, 4p, 0, @0)
        """, ["@0", "0", "-", "@0"], "@0-3 rw-p lo lf A...", locked=4),
    # ... shared: populated from the object, but not past its end (GUP fails at EOF)
    case("grow-locked-shared-eof", f"""
        mmap(@0, 2p, {RW}, {AS}|MAP_LOCKED, -1, 0)
        mremap(@0, 2p, 4p, 0, @0)
        """, ["@0", "@0"], "@0-3 rw-s lo FF..", locked=4),
    # ... within the object's size, even where the mmap's tail was unmapped before
    # this module looked (it infers the size from what it sees)
    case("grow-locked-shared-size-unseen", f"""
        mmap(@0, 4p, {RW}, {AS}, -1, 0)
        munmap(@2, 2p)
        mlock(@0, 2p)
        mremap(@0, 2p, 4p, 0, @0)
        """, ["@0", "0", "0", "@0"], "@0-3 rw-s lo FFFF", locked=4),
    # the object keeps its size: shrink, grow back, and its data is there again
    # (the read fault maps the cached page after it too)
    case("grow-shared-within-object", f"""
        mmap(@0, 4p, {RW}, {AS}, -1, 0)
        touch(@3, write)
        mremap(@0, 4p, 2p, 0, @0)
        mremap(@0, 2p, 4p, 0, @0)
        touch(@2, read)
        """, ["@0", "-", "@0", "@0", "-"], "@0-3 rw-s ..FF"),
    # past the object's end a fault is SIGBUS (shmem_fault), so the page stays absent
    case("grow-shared-past-eof-sigbus", f"""
        mmap(@0, 2p, {RW}, {AS}|MAP_POPULATE, -1, 0)
        mremap(@0, 2p, 3p, 0, @0)
        touch(@2, read)
        """, ["@0", "@0", "SIGBUS/ADRERR"], "@0-2 rw-s FF."),
    # ... a write there maps nothing; a read first maps what fault-around finds
    # cached before the end (do_read_fault), then is SIGBUS all the same
    case("grow-shared-past-eof-read-faults-around", f"""
        mmap(@0, 2p, {RW}, {AS}|MAP_POPULATE, -1, 0)
        madvise(@0, 2p, MADV_DONTNEED)
        mremap(@0, 2p, 4p, 0, @0)
        touch(@3, write)
        touch(@2, read)
        """, ["@0", "0", "@0", "SIGBUS/ADRERR", "SIGBUS/ADRERR"], "@0-3 rw-s FF.."),
    # ... MADV_POPULATE_* stops there with EFAULT (the fault's VM_FAULT_SIGBUS), the
    # pages before it populated
    case("grow-shared-past-eof-madv-populate", f"""
        mmap(@0, 2p, {RW}, {AS}, -1, 0)
        mremap(@0, 2p, 4p, 0, @0)
        madvise(@0, 4p, MADV_POPULATE_WRITE)
        madvise(@0, 4p, MADV_DONTNEED)
        madvise(@1, 3p, MADV_POPULATE_READ)
        """, ["@0", "@0", "-EFAULT", "0", "-EFAULT"], "@0-3 rw-s FF.."),
    # ... §3: mlock sets lo on all of it and counts it, populates up to the end, then
    # fails (EFAULT -> ENOMEM); ONFAULT populates nothing, so it succeeds
    case("grow-shared-past-eof-mlock", f"""
        mmap(@0, 2p, {RW}, {AS}, -1, 0)
        mremap(@0, 2p, 4p, 0, @0)
        mlock2(@0, 4p, MLOCK_ONFAULT)
        mlock(@0, 4p)
        """, ["@0", "@0", "0", "-ENOMEM"], "@0-3 rw-s lo FF..", locked=4),
    # ... mlockall populates with errors ignored: 0, pages up to the end present
    case("grow-shared-past-eof-mlockall", f"""
        mmap(@0, 2p, PROT_READ, {AS}, -1, 0)
        mremap(@0, 2p, 4p, 0, @0)
        mmap(@8, 2p, {RW}, {AP}, -1, 0)
        mlockall(MCL_CURRENT)
        munlockall()
        """, ["@0", "@0", "@8", "0", "0"], "@0-3 r--s FF..; @8-9 rw-p AA", locked=0),
    # a FIXED grow of part of a locked shared VMA: the moved page and the populated
    # tail share the object with the old VMA, so pages mapped twice lose X (f)
    case("grow-fixed-shared-maps-twice", f"""
        mmap(@40, 2p, {RW}, {AS}|MAP_LOCKED, -1, 0)
        mremap(@40, 1p, 3p, {MOVE}, @50)
        """, ["@40", "@50"], "@41 rw-s lo f; @50-52 rw-s lo Ff.", locked=4),
    # the first populate fault past the object's end still maps the cached pages
    # around it (do_fault_around), then fails; here the lo VMA was never populated
    # (mlock stopped at the hole)
    case("grow-locked-shared-eof-fault-around", f"""
        mmap(@0, 2p, {RW}, {AS}, -1, 0)
        touch(@1, write)
        mremap(@0, 2p, 1p, 0, @0)
        mremap(@0, 1p, 2p, 0, @0)
        mlock(@0, 3p)
        mremap(@0, 2p, 4p, 0, @0)
        """, ["@0", "-", "@0", "@0", "-ENOMEM", "@0"], "@0-3 rw-s lo .F..", locked=4),
    # do_fault_around's window starts at the VMA when the 16-page aligned one starts
    # before it: a read at @45 in a VMA @40-51 maps cached @49 (the window is @40-51,
    # not @32-47)
    case("fault-around-window-from-vma-start", f"""
        mmap(@40, 12p, {RW}, {AS}, -1, 0)
        touch(@49, write)
        mremap(@40, 12p, 8p, 0, @0)
        mremap(@40, 8p, 12p, 0, @0)
        touch(@45, read)
        """, ["@40", "-", "@40", "@40", "-"], "@40-51 rw-s .....F...F.."),
    # ... so a VMA that starts inside an aligned block gets all 16 pages from its start
    # (the aligned window @16-31 would give only @20-31)
    case("fault-around-window-unaligned-vma", f"""
        mmap(@20, 16p, {RW}, {AS}|MAP_POPULATE, -1, 0)
        madvise(@20, 16p, MADV_DONTNEED)
        touch(@21, read)
        """, ["@20", "0", "-"], "@20-35 rw-s FFFFFFFFFFFFFFFF"),
    # ... and the window is 16 pages from there, not the rest of the aligned block
    case("fault-around-window-sixteen-pages", f"""
        mmap(@4, 24p, {RW}, {AS}|MAP_POPULATE, -1, 0)
        madvise(@4, 24p, MADV_DONTNEED)
        touch(@5, read)
        """, ["@4", "0", "-"], "@4-27 rw-s FFFFFFFFFFFFFFFF........"),
    # ------------------------------------------------------------ §6 moves
    # page tables move: presence and pagemap bits are kept, the old range goes
    case("move-carries-pages", f"""
        mmap(@0, 4p, {RW}, {AP}, -1, 0)
        touch(@0, write)
        touch(@1, read)
        mremap(@0, 3p, 3p, {MOVE}, @10)
        """, ["@0", "-", "-", "@10"], "@3 rw-p .; @10-12 rw-p AZ."),
    # a FIXED move unmaps the target first, exactly as munmap: VmLck falls
    case("move-replaces-target", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mmap(@9, 4p, PROT_READ, {AP}|MAP_LOCKED, -1, 0)
        mremap(@0, 2p, 2p, {MOVE}, @10)
        """, ["@0", "@9", "@10"], "@9 r--p lo Z; @10-11 rw-p AA; @12 r--p lo Z", locked=2),
    # a locked VMA moves with its flags: VmLck unchanged
    case("move-locked", f"""
        mmap(@0, 3p, {RW}, {AP}|MAP_LOCKED, -1, 0)
        mremap(@0, 3p, 3p, {MOVE}, @20)
        """, ["@0", "@20"], "@20-22 rw-p lo AAA", locked=3),
    # FIXED with growth: the old pages move, the new tail is empty unless locked
    case("move-fixed-grow", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mremap(@0, 2p, 4p, {MOVE}, @10)
        mmap(@20, 1p, {RW}, {AP}|MAP_LOCKED, -1, 0)
        mremap(@20, 1p, 3p, {MOVE}, @30)
        """, ["@0", "@10", "@20", "@30"], "@10-13 rw-p AA..; @30-32 rw-p lo AAA", locked=3),
    # FIXED with shrink: the tail is unmapped, the rest moves
    case("move-fixed-shrink", f"""
        mmap(@0, 4p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mremap(@0, 4p, 2p, {MOVE}, @10)
        """, ["@0", "@10"], "@10-11 rw-p AA"),
    # a shared VMA moves with its object and offsets: a read fault at the new place
    # maps what the object caches
    case("move-shared-keeps-object", f"""
        mmap(@0, 4p, {RW}, {AS}, -1, 0)
        touch(@0, write)
        touch(@3, write)
        mremap(@0, 4p, 4p, {MOVE}, @16)
        touch(@17, read)
        """, ["@0", "-", "-", "@16", "-"], "@16-19 rw-s FF.F"),
    # a target inside the VMA being moved from: the target is unmapped first; an
    # unfaulted VMA takes the pgoff of its new address and merges with both sides
    case("move-within-own-vma", f"""
        mmap(@0, 8p, {RW}, {AP}, -1, 0)
        mremap(@0, 2p, 2p, {MOVE}, @4)
        mremap(@2, 6p, 7p, 0, @0)
        """, ["@0", "@4", "@2"], "@2-8 rw-p ......."),
    # 6.17+ remap_move: a pure FIXED move may span VMAs and holes; the gaps are kept,
    # and what the target has where the source had a hole stays
    case("move-multi-vma", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mmap(@3, 2p, PROT_READ, {AS}|MAP_POPULATE, -1, 0)
        mmap(@10, 6p, PROT_EXEC, {AP}|MAP_POPULATE, -1, 0)
        mremap(@0, 6p, 6p, {MOVE}, @10)
        """, ["@0", "@3", "@10", "@10"],
        "@10-11 rw-p AA; @12 --xp Z; @13-14 r--s FF; @15 --xp Z", features=EXEC_READABLE),
    case("move-multi-vma-pkey", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mmap(@3, 2p, PROT_READ, {AS}|MAP_POPULATE, -1, 0)
        mmap(@10, 6p, PROT_EXEC, {AP}|MAP_POPULATE, -1, 0)
        mremap(@0, 6p, 6p, {MOVE}, @10)
        """, ["@0", "@3", "@10", "@10"],
        "@10-11 rw-p AA; @12 --xp .; @13-14 r--s FF; @15 --xp .", features=EXEC_PKEY),
    # ... starting and ending inside VMAs
    case("move-multi-vma-partial", f"""
        mmap(@0, 3p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mmap(@3, 3p, PROT_READ, {AP}|MAP_POPULATE, -1, 0)
        mremap(@1, 4p, 4p, {MOVE}, @20)
        """, ["@0", "@3", "@20"], "@0 rw-p A; @5 r--p Z; @20-21 rw-p AA; @22-23 r--p ZZ"),
    # ... EFAULT for a hole at the start or nothing in the range; resizing stays a
    # single-VMA operation
    case("move-multi-vma-errors", f"""
        mmap(@2, 2p, {RW}, {AP}, -1, 0)
        mmap(@5, 1p, {RW}, {AP}, -1, 0)
        mremap(@1, 4p, 4p, {MOVE}, @20)
        mremap(@8, 4p, 4p, {MOVE}, @20)
        mremap(@2, 4p, 5p, {MOVE}, @20)
        mremap(@2, 4p, 4p, {MOVE}, @20)
        """, ["@2", "@5", "-EFAULT", "-EFAULT", "-EFAULT", "@20"], "@20-21 rw-p ..; @23 rw-p ."),
    # ------------------------------------------------------------ §6 DONTUNMAP
    # the old VMA stays with its protection and no pages (an AP read gives Z)
    case("dontunmap-private", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mremap(@0, 2p, 2p, {DONTUNMAP}, @10)
        touch(@0, read)
        """, ["@0", "@10", "-"], "@0-1 rw-p Z.; @10-11 rw-p AA"),
    # ... a locked old VMA loses lo and lf; the new one keeps them
    case("dontunmap-locked", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_LOCKED, -1, 0)
        mremap(@0, 2p, 2p, {DONTUNMAP}, @10)
        """, ["@0", "@10"], "@0-1 rw-p ..; @10-11 rw-p lo AA", locked=2,
        kernel_bug=VMLCK_LEAK),
    # ... and when the target is right after the source, copy_vma merges the source into
    # the new VMA (an anonymous VMA without an anon_vma takes the target's pgoff), so
    # dontunmap_complete clears VM_LOCKED on both: nothing is locked, VmLck is 8 kB
    case("dontunmap-locked-into-neighbour", f"""
        mmap(@0, 1p, PROT_NONE, {AP}|MAP_LOCKED, -1, 0)
        mremap(@0, 1p, 1p, {DONTUNMAP}, @1)
        """, ["@0", "@1"], "@0 ---p .; @1 ---p lo .", locked=1, kernel_bug=VMLCK_LEAK),
    # ... and the leaked locked_vm outlives the VMAs: without CAP_IPC_LOCK it counts
    # against RLIMIT_MEMLOCK, so a later mlock of one page fails with nothing locked
    case("dontunmap-locked-leak-blocks-mlock", f"""
        mmap(@0, 4p, {RW}, {AP}, -1, 0)
        drop_cap_ipc_lock()
        prlimit_memlock(4p)
        mlock(@0, 4p)
        mremap(@0, 4p, 4p, {DONTUNMAP}, @10)
        munmap(@0, 20p)
        mmap(@30, 1p, {RW}, {AP}, -1, 0)
        mlock(@30, 1p)
        """, ["@0", "0", "0", "0", "@10", "0", "@30", "0"], "@30 rw-p lo A", locked=1,
        kernel_bug=VMLCK_LEAK),
    # ... a locked old VMA is split around the moved range first, so only that range
    # loses them ("mm/mremap: fix locked_vm leak by splitting VMA for MREMAP_DONTUNMAP",
    # stable 6.1.191; 6.1.192 agrees with this row, 6.18.44 unlocks the whole VMA)
    case("dontunmap-locked-partial", f"""
        mmap(@0, 4p, {RW}, {AP}|MAP_LOCKED, -1, 0)
        mremap(@0, 2p, 2p, {DONTUNMAP}, @10)
        """, ["@0", "@10"], "@0-1 rw-p ..; @2-3 rw-p lo AA; @10-11 rw-p lo AA", locked=4,
        kernel_bug="DONTUNMAP of part of a locked VMA: dontunmap_complete() clears "
                   "VM_LOCKED on the whole old VMA, unlocking pages the call never moved "
                   "(fixed in stable 6.1.191 by splitting the VMA first)"),
    # ... lock-on-fault moves with the pages
    case("dontunmap-onfault", f"""
        mmap(@0, 2p, {RW}, {AP}, -1, 0)
        mlock2(@0, 2p, MLOCK_ONFAULT)
        touch(@1, write)
        mremap(@0, 2p, 2p, {DONTUNMAP}, @10)
        """, ["@0", "0", "-", "@10"], "@0-1 rw-p ..; @10-11 rw-p lo lf .A", locked=2,
        kernel_bug=VMLCK_LEAK),
    # ... an unfaulted VMA moved next to itself merges with its old range in copy_vma,
    # and dontunmap_complete then unlocks the merged VMA: the new range loses lo
    case("dontunmap-locked-merges-with-source", f"""
        mmap(@20, 2p, PROT_READ, {AP}|MAP_LOCKED, -1, 0)
        mremap(@20, 2p, 2p, {DONTUNMAP}, @22)
        """, ["@20", "@22"], "@20-21 r--p ..; @22-23 r--p lo ZZ", locked=2,
        kernel_bug="DONTUNMAP of an unfaulted locked VMA to an adjacent address: copy_vma() "
                   "merges the new VMA with the old one and dontunmap_complete() clears "
                   "VM_LOCKED on the merged VMA, so the new range is unlocked too (and "
                   "locked_vm still grows by new_len)"),
    # ... and when the target splits the old VMA first, the new range merges with the
    # piece before it, and the piece after it, split from the moved page, stays locked
    case("dontunmap-locked-merges-both-sides", f"""
        mmap(@56, 6p, PROT_EXEC, {AP}|MAP_LOCKED, -1, 0)
        mremap(@61, 1p, 1p, {DONTUNMAP}, @58)
        """, ["@56", "@58"], "@56-60 --xp lo ZZZZZ; @61 --xp .", locked=5,
        kernel_bug="DONTUNMAP of an unfaulted locked VMA into a hole it was split around: "
                   "copy_vma() merges both sides with the new range and dontunmap_complete() "
                   "clears VM_LOCKED on all of it, unlocking pages the call never moved"),
    # ... without FIXED the new address is a hint: used if free, else outside
    case("dontunmap-hint", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mremap(@0, 2p, 2p, MREMAP_MAYMOVE|MREMAP_DONTUNMAP, @10)
        mremap(@10, 2p, 2p, MREMAP_MAYMOVE|MREMAP_DONTUNMAP, @0)
        """, ["@0", "@10", "outside"], "@0-1 rw-p ..; @10-11 rw-p .."),
    # ... several VMAs at once with FIXED (remap_move)
    case("dontunmap-multi-vma", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mmap(@2, 2p, PROT_READ, {AP}|MAP_POPULATE, -1, 0)
        mremap(@0, 4p, 4p, {DONTUNMAP}, @10)
        """, ["@0", "@2", "@10"], "@0-1 rw-p ..; @2-3 r--p ..; @10-11 rw-p AA; @12-13 r--p ZZ"),
    # ... for AS the data stays in the object and comes back on the next fault
    case("dontunmap-shared-data-returns", f"""
        mmap(@0, 2p, {RW}, {AS}|MAP_POPULATE, -1, 0)
        mremap(@0, 2p, 2p, {DONTUNMAP}, @10)
        munmap(@10, 2p)
        touch(@0, read)
        """, ["@0", "@10", "0", "-"], "@0-1 rw-s FF"),
    # ... and while the new VMA still maps it, the page is mapped twice (no X bit)
    case("dontunmap-shared-maps-twice", f"""
        mmap(@0, 2p, {RW}, {AS}|MAP_POPULATE, -1, 0)
        mremap(@0, 2p, 2p, {DONTUNMAP}, @10)
        touch(@0, read)
        """, ["@0", "@10", "-"], "@0-1 rw-s ff; @10-11 rw-s ff"),
    # ... once the new VMA is gone the old one maps the pages alone again (X is back)
    case("dontunmap-shared-second-mapping-goes", f"""
        mmap(@0, 2p, {RW}, {AS}|MAP_POPULATE, -1, 0)
        mremap(@0, 2p, 2p, {DONTUNMAP}, @10)
        touch(@0, read)
        munmap(@10, 2p)
        """, ["@0", "@10", "-", "0"], "@0-1 rw-s FF"),
    # ... the same with the new VMA outside the arena (the hint is taken); MADV_REMOVE
    # through the old one unmaps the page from both (shmem_fallocate), so the page a
    # later read allocates is mapped once
    case("dontunmap-shared-outside-remove", f"""
        mmap(@0, 2p, {RW}, {AS}|MAP_POPULATE, -1, 0)
        mmap(@10, 2p, {RW}, {AP}, -1, 0)
        mremap(@0, 2p, 2p, MREMAP_MAYMOVE|MREMAP_DONTUNMAP, @10)
        touch(@0, read)
        madvise(@0, 1p, MADV_REMOVE)
        touch(@0, read)
        """, ["@0", "@10", "outside", "-", "0", "-"], "@0-1 rw-s Ff; @10-11 rw-p .."),
    # ------------------------------------------------ §6 old_len 0 on a shared VMA
    # a second mapping of the same object; populated when locked (pages mapped twice)
    case("dup-shared-fixed", f"""
        mmap(@0, 3p, {RW}, {AS}|MAP_LOCKED, -1, 0)
        mremap(@1, 0, 2p, {MOVE}, @10)
        """, ["@0", "@10"], "@0-2 rw-s lo Fff; @10-11 rw-s lo ff", locked=5),
    # ... unlocked, the duplicate starts empty; populating it maps the pages twice, and
    # zapping one mapping's PTE gives the other's page X back
    case("dup-shared-populate-maps-twice", f"""
        mmap(@0, 2p, {RW}, {AS}|MAP_POPULATE, -1, 0)
        mremap(@0, 0, 2p, {MOVE}, @10)
        madvise(@10, 2p, MADV_POPULATE_READ)
        madvise(@0, 1p, MADV_DONTNEED)
        """, ["@0", "@10", "0", "0"], "@0-1 rw-s .f; @10-11 rw-s Ff"),
    # ... a FIXED target at the old address itself: old_len 0 does not overlap, so the
    # target (the old VMA) is unmapped first and the lookup after it fails
    case("dup-shared-target-is-source", f"""
        mmap(@4, 3p, {RW}, {AS}|MAP_POPULATE, -1, 0)
        mremap(@5, 0, 2p, {MOVE}, @5)
        """, ["@4", "-EFAULT"], "@4 rw-s F"),
    # ... never in place (the range never ends the VMA): ENOMEM, or outside with MAYMOVE
    case("dup-shared-maymove", f"""
        mmap(@0, 2p, {RW}, {AS}|MAP_POPULATE, -1, 0)
        mremap(@0, 0, 1p, 0, @0)
        mremap(@0, 0, 1p, MREMAP_MAYMOVE, @0)
        """, ["@0", "-ENOMEM", "outside"], "@0-1 rw-s FF", locked=0),
    # ------------------------------------------------ §11 which VMA holds a page
    # a split that is undone merges back: the VMA ends where it did
    case("vma-mprotect-split-restored", f"""
        mmap(@0, 4p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mprotect(@1, 2p, PROT_READ)
        mremap(@0, 4p, 5p, 0, @0)
        mprotect(@1, 2p, {RW})
        mremap(@0, 4p, 6p, 0, @0)
        """, ["@0", "0", "-EFAULT", "0", "@0"], "@0-5 rw-p AAAA.."),
    # mlock splits; the locked piece cannot grow into its neighbour; munlock merges
    case("vma-mlock-split", f"""
        mmap(@0, 4p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mlock(@1, 2p)
        mremap(@0, 4p, 5p, 0, @0)
        mremap(@1, 2p, 3p, 0, @0)
        munlock(@1, 2p)
        mremap(@0, 4p, 5p, 0, @0)
        """, ["@0", "0", "-EFAULT", "-ENOMEM", "0", "@0"], "@0-4 rw-p AAAA.", locked=0),
    # growing in place joins the next VMA when they can merge (vma_merge_extend) ...
    case("vma-grow-joins-next", f"""
        mmap(@0, 2p, {RW}, {AP}, -1, 0)
        mmap(@4, 2p, {RW}, {AP}, -1, 0)
        mremap(@0, 2p, 4p, 0, @0)
        mremap(@0, 6p, 7p, 0, @0)
        """, ["@0", "@4", "@0", "@0"], "@0-6 rw-p ......."),
    # ... but not when each had its own anon_vma (both faulted while apart)
    case("vma-grow-separate-anon-vmas", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mmap(@4, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mremap(@0, 2p, 4p, 0, @0)
        mremap(@0, 6p, 7p, 0, @0)
        """, ["@0", "@4", "@0", "-EFAULT"], "@0-5 rw-p AA..AA"),
    # a faulted VMA moved by mremap keeps its pgoff and does not merge with a fresh
    # neighbour; an unfaulted one takes the new address's pgoff and does
    case("vma-moved-pgoff", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mmap(@10, 2p, {RW}, {AP}, -1, 0)
        mremap(@0, 2p, 2p, {MOVE}, @12)
        mremap(@10, 4p, 4p, MREMAP_MAYMOVE|MREMAP_DONTUNMAP, @30)
        mmap(@20, 2p, {RW}, {AP}, -1, 0)
        mremap(@20, 2p, 2p, {MOVE}, @8)
        mremap(@8, 4p, 4p, MREMAP_MAYMOVE|MREMAP_DONTUNMAP, @30)
        """, ["@0", "@10", "@12", "-EFAULT", "@20", "@8", "@30"],
        "@8-13 rw-p ....AA; @30-33 rw-p ...."),
    # two anonymous shared mmaps never merge (different objects)
    case("vma-shared-never-merge", f"""
        mmap(@0, 2p, {RW}, {AS}, -1, 0)
        mmap(@2, 2p, {RW}, {AS}, -1, 0)
        mremap(@0, 4p, 5p, MREMAP_MAYMOVE, @0)
        mremap(@0, 4p, 4p, {MOVE}, @10)
        """, ["@0", "@2", "-EFAULT", "@10"], "@10-13 rw-s ...."),
    # a gap filled after both sides faulted: the new VMA joins the left one only
    # (their anon_vmas differ), seen at an mremap in between
    case("vma-gap-filled-after-faults", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mmap(@3, 1p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mremap(@0, 1p, 1p, 0, @0)
        mmap(@2, 1p, {RW}, {AP}, -1, 0)
        mremap(@0, 4p, 5p, 0, @0)
        """, ["@0", "@3", "@0", "@2", "-EFAULT"], "@0-3 rw-p AA.A"),
    # ... the same without an mremap in between: track() sees the three mmaps and the
    # faults at once and replays the faults last
    case("vma-gap-filled-unseen", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mmap(@3, 1p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mmap(@2, 1p, {RW}, {AP}, -1, 0)
        mremap(@0, 4p, 5p, 0, @0)
        """, ["@0", "@3", "@2", "-EFAULT"], "@0-3 rw-p AA.A"),
    # MAP_FIXED over a faulted VMA makes a new VMA, even where its pages have the same
    # offsets and the same kind as before: no anon_vma, no VM_ACCOUNT, one VMA
    case("vma-fixed-replace-same-offsets", f"""
        mmap(@42, 3p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mmap(@42, 6p, PROT_READ, {AP}|MAP_FIXED, -1, 0)
        mremap(@43, 5p, 6p, 0, @42)
        """, ["@42", "@42", "@43"], "@42-48 r--p ......."),
    # MAP_NORESERVE keeps a VMA apart (nr versus ac)
    case("vma-noreserve", f"""
        mmap(@0, 2p, {RW}, {AP}, -1, 0)
        mmap(@2, 2p, {RW}, {AP}|MAP_NORESERVE, -1, 0)
        mremap(@0, 4p, 5p, 0, @0)
        """, ["@0", "@2", "-EFAULT"], "@0-3 rw-p ...."),
    # ... read-only too, where neither has VM_ACCOUNT: nr alone differs
    case("vma-noreserve-readonly", f"""
        mmap(@0, 2p, PROT_READ, {AP}, -1, 0)
        mmap(@2, 2p, PROT_READ, {AP}|MAP_NORESERVE, -1, 0)
        mremap(@0, 4p, 5p, 0, @0)
        """, ["@0", "@2", "-EFAULT"], "@0-3 r--p ...."),
    # ... nr survives mprotect and mlock, and making an nr VMA writable does not
    # charge it (mprotect_fixup: no VM_ACCOUNT with VM_NORESERVE), so it merges with
    # its writable nr neighbour
    case("vma-noreserve-mprotect-mlock", f"""
        mmap(@0, 2p, PROT_READ, {AP}|MAP_NORESERVE, -1, 0)
        mmap(@2, 2p, {RW}, {AP}|MAP_NORESERVE, -1, 0)
        mprotect(@0, 2p, {RW})
        mlock(@0, 4p)
        munlock(@0, 4p)
        mremap(@0, 4p, 5p, 0, @0)
        """, ["@0", "@2", "0", "0", "0", "@0"], "@0-4 rw-p AAAA.", locked=0),
    # ... and mremap: an unfaulted nr VMA moved next to a plain one stays apart; next
    # to another nr VMA it merges
    case("vma-noreserve-moved", f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_NORESERVE, -1, 0)
        mmap(@10, 2p, {RW}, {AP}, -1, 0)
        mremap(@0, 2p, 2p, {MOVE}, @12)
        mremap(@10, 4p, 5p, 0, @0)
        mmap(@20, 2p, {RW}, {AP}|MAP_NORESERVE, -1, 0)
        mremap(@20, 2p, 2p, {MOVE}, @14)
        mremap(@12, 4p, 5p, 0, @0)
        """, ["@0", "@10", "@12", "-EFAULT", "@20", "@14", "@12"], "@10-16 rw-p ......."),
    # mprotect_fixup uncharges VMA by VMA: made read-only, a private anonymous VMA keeps
    # VM_ACCOUNT only if it has an anon_vma. mprotect(@4, 2p) over the tail of a
    # populated VMA and the whole of an unfaulted one leaves two VMAs (ac versus not);
    # made writable again, the second is charged again and they merge
    case("vma-mprotect-uncharge-per-vma", f"""
        mmap(@0, 6p, PROT_WRITE, {AP}|MAP_FIXED, -1, 0)
        mprotect(@5, 1p, {RW})
        madvise(@0, 1p, MADV_POPULATE_WRITE)
        mprotect(@4, 2p, PROT_NONE)
        mremap(@4, 2p, 3p, MREMAP_MAYMOVE, @0)
        mprotect(@4, 2p, PROT_WRITE)
        mremap(@4, 2p, 3p, MREMAP_MAYMOVE, @0)
        """, ["@0", "0", "0", "0", "-EFAULT", "0", "@4"], "@0-6 -w-p A......"),
    # ... on a kernel that never uncharges (6.1) both keep it: one VMA
    case("vma-mprotect-no-uncharge", f"""
        mmap(@0, 6p, PROT_WRITE, {AP}|MAP_FIXED, -1, 0)
        mprotect(@5, 1p, {RW})
        madvise(@0, 1p, MADV_POPULATE_WRITE)
        mprotect(@4, 2p, PROT_NONE)
        mremap(@4, 2p, 3p, MREMAP_MAYMOVE, @0)
        """, ["@0", "0", "0", "0", "@4"], "@0-3 -w-p A...; @4-6 ---p ...",
        features={"mprotect_uncharges": False, "merge_into_null_anon_vma": False}),
    # ... without the populate neither keeps VM_ACCOUNT: one VMA
    case("vma-mprotect-uncharge-both", f"""
        mmap(@0, 6p, PROT_WRITE, {AP}|MAP_FIXED, -1, 0)
        mprotect(@5, 1p, {RW})
        mprotect(@4, 2p, PROT_NONE)
        mremap(@4, 2p, 3p, MREMAP_MAYMOVE, @0)
        """, ["@0", "0", "0", "@4"], "@0-3 -w-p ....; @4-6 ---p ..."),
    # ... with the second VMA populated instead, the split-off tail loses VM_ACCOUNT
    # and the second keeps it
    case("vma-mprotect-uncharge-tail", f"""
        mmap(@0, 6p, PROT_WRITE, {AP}|MAP_FIXED, -1, 0)
        mprotect(@5, 1p, {RW})
        madvise(@5, 1p, MADV_POPULATE_WRITE)
        mprotect(@3, 3p, PROT_READ)
        mremap(@3, 3p, 4p, MREMAP_MAYMOVE, @0)
        """, ["@0", "0", "0", "0", "-EFAULT"], "@0-2 -w-p ...; @3-5 r--p ..A"),
    # MAP_STACK gives VM_NOHUGEPAGE (6.7+), which keeps the VMA apart until
    # MADV_NOHUGEPAGE gives its neighbour the same flag
    case("vma-stack-nohugepage", f"""
        mmap(@0, 2p, {RW}, {AP}, -1, 0)
        mmap(@2, 2p, {RW}, {AP}|MAP_STACK, -1, 0)
        mremap(@0, 4p, 5p, 0, @0)
        madvise(@0, 2p, MADV_NOHUGEPAGE)
        mremap(@0, 4p, 5p, 0, @0)
        """, ["@0", "@2", "-EFAULT", "0", "@0"], "@0-4 rw-p ....."),
    # MADV_HUGEPAGE sets hg and clears nh: a split that does not merge back
    case("vma-hugepage-split", f"""
        mmap(@0, 4p, {RW}, {AP}|MAP_STACK, -1, 0)
        madvise(@2, 2p, MADV_HUGEPAGE)
        mremap(@0, 4p, 5p, 0, @0)
        madvise(@2, 2p, MADV_NOHUGEPAGE)
        mremap(@0, 4p, 5p, 0, @0)
        """, ["@0", "0", "-EFAULT", "0", "@0"], "@0-4 rw-p ....."),
    # the other flag-only advice splits private VMAs as well: dd (DONTDUMP) and mg
    # (MERGEABLE, private only) until DODUMP and UNMERGEABLE; rr and sr until NORMAL
    case("vma-madvise-flags-split", f"""
        mmap(@0, 4p, {RW}, {AP}, -1, 0)
        madvise(@1, 1p, MADV_DONTDUMP)
        mremap(@0, 1p, 2p, 0, @0)
        madvise(@1, 1p, MADV_DODUMP)
        madvise(@2, 2p, MADV_MERGEABLE)
        mremap(@0, 4p, 5p, 0, @0)
        madvise(@2, 2p, MADV_UNMERGEABLE)
        madvise(@0, 1p, MADV_SEQUENTIAL)
        mremap(@1, 3p, 4p, 0, @0)
        madvise(@0, 1p, MADV_NORMAL)
        mremap(@0, 5p, 6p, 0, @0)
        """, ["@0", "0", "-ENOMEM", "0", "0", "-EFAULT", "0", "0", "@1", "0", "@0"],
        "@0-5 rw-p ......"),
    # old_len 0 (the "duplicate" case) overlaps nothing, so a FIXED target may be the
    # old VMA itself: mremap_to() unmaps it, then vma_to_resize() finds no VMA (EFAULT).
    # Before 6.17 the model asserted it was there: a 6.12 campaign's workers died on it.
    case("fixed-target-is-the-duplicated-vma", DUPLICATED_TARGET,
         ["@0", "-EFAULT", "@4", "-EINVAL"], "@4-5 ---s .."),
    case("fixed-target-is-the-duplicated-vma-before-6.17", DUPLICATED_TARGET,
         ["@0", "-EFAULT", "@4", "-EINVAL"], "@4-5 ---s ..",
         features={"mremap_checks_first": False}),
    # Before 6.17 mremap_to() unmaps the FIXED target, then a shrunk source's tail, and
    # only then looks the source up: a huge old_len wraps past the target (no overlap),
    # the target was the source, and the tail's do_munmap is EINVAL (a length past
    # TASK_SIZE) before vma_to_resize()'s EFAULT. A 6.12 guest campaign's bucket (a model
    # mistake: the model looked the source up between the two unmaps, as 6.17+ does:
    # its mremap_to() looks the source up again right after the target's unmap).
    case("fixed-target-then-huge-tail-before-6.17", """
        mmap(@0, 1p, PROT_NONE, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        mremap(@0, 0xfffffffffffff000, 1p, MREMAP_MAYMOVE|MREMAP_FIXED, @0)
        """, ["@0", "-EINVAL"], "(arena empty)", features={"mremap_checks_first": False}),
    case("fixed-target-then-huge-tail", """
        mmap(@0, 1p, PROT_NONE, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
        mremap(@0, 0xfffffffffffff000, 1p, MREMAP_MAYMOVE|MREMAP_FIXED, @0)
        """, ["@0", "-EFAULT"], "(arena empty)"),
]

@pytest.mark.parametrize("c", model_params(ROWS))
def test_model_mremap(c: Case) -> None:
    check_model(c)


def check_vmas(state: State) -> None:
    """The VMA picture covers exactly the mapped pages, each VMA in one piece."""
    vmas.track(state)
    assert [v is None for v in state.vmas] == [p is None for p in state.pages]
    seen: set[int] = set()
    for i, slot in enumerate(state.vmas):
        if slot is None:
            continue
        if i == 0 or state.vmas[i - 1] is None or state.vmas[i - 1][0] != slot[0]:
            assert slot[0] not in seen, f"VMA {slot[0]} in two pieces"
            seen.add(slot[0])
        elif state.vmas[i - 1] != slot:
            raise AssertionError(f"one VMA, two anon_vmas or accounts at page {i}")


@pytest.mark.parametrize("c", ROWS, ids=[c.name for c in ROWS])
def test_vma_picture_is_consistent(c: Case) -> None:
    state = State()
    for call in parse(c.text).calls:
        step(state, call)
        check_vmas(state)


def test_track_after_every_call_mlock_pieces() -> None:
    """mlock pieces faulted one after the other keep their own anon_vmas (§11)."""
    results, _ = run_model(f"""
        mmap(@10, 4p, {RW}, {AP}, -1, 0)
        mlock(@10, 2p)
        touch(@12, write)
        munlock(@10, 2p)
        mremap(@10, 4p, 5p, 0, @0)
        """)
    assert results[-1] == "-EFAULT"


def test_multi_vma_move_needs_the_feature() -> None:
    """Before about 6.17 (no remap_move) a FIXED move is a single-VMA operation."""
    text = f"""
        mmap(@0, 2p, {RW}, {AP}|MAP_POPULATE, -1, 0)
        mmap(@2, 2p, PROT_READ, {AP}|MAP_POPULATE, -1, 0)
        mremap(@0, 4p, 4p, {MOVE}, @10)
        mremap(@0, 2p, 2p, {MOVE}, @10)
        """
    state = State(features=Features(mremap_multi_vma_move=False))
    results = [prediction_text(call, step(state, call)) for call in parse(text).calls]
    assert results == ["@0", "@2", "-EFAULT", "@10"]
    assert render(model_view(state.pages)) == "@2-3 r--p ZZ; @10-11 rw-p AA"


def test_table_is_large_and_unique() -> None:
    check_table(ROWS, at_least=40)


# A locked shared anonymous VMA that a fork child maps too, grown by a move outside the
# arena: the growth is populated with read faults from the first new page (offset 2),
# and fault-around maps the cached pages before it only inside that fault's 16-page
# window, aligned in the address the kernel chose. Offset 0, which the parent had
# dropped (DONTNEED_LOCKED), is mapped again there or not, and the child's page 0 reads
# `f` or `F` (a campaign on 6.18.44 found the model assuming the whole VMA: a false alarm
# of the model, one run in several, as the address came).
GROWN_OUTSIDE = """
    mmap(@0, 4p, PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_LOCKED, -1, 0)
    madvise(@0, 1p, MADV_DONTNEED_LOCKED)
    fork()
    p1: touch(@0, read)
    mremap(@0, 2p, 6p, MREMAP_MAYMOVE, @0)
    """


@pytest.mark.parametrize(("slot", "child"), [
    (None, "@0-3 -w-s ffff"),  # the address not known (a C reproducer): the whole VMA
    (0, "@0-3 -w-s ffff"),  # offsets 0-5 in one window
    (13, "@0-3 -w-s ffff"),  # offset 2 at slot 15: the window holds offsets 0 and 1
    (14, "@0-3 -w-s Ffff"),  # offset 2 starts a window: neither 0 nor 1 is mapped again
    (15, "@0-3 -w-s Ffff"),  # offset 1 in the window of offset 2, offset 0 not
])
def test_fault_around_outside_the_arena_follows_the_address(slot: int | None,
                                                            child: str) -> None:
    """mremap.map_outside with State.placed: the page number of the VMA's start, which
    check/program.py takes from the call's result (slot: its place in a 16-page window)."""
    from fuzzer.model import World
    from fuzzer.model.state import RestVma
    from fuzzer.model.world import step as world_step
    from fuzzer.prog.syscalls import PAGE

    world = World.start(State(rest=[RestVma(0, PAGE, lockable=True)]))
    calls = parse(GROWN_OUTSIDE).calls
    for i, call in enumerate(calls):
        if i == len(calls) - 1 and slot is not None:
            world.proc(0).placed = 0x7F1234560 + slot
        world_step(world, call)
    assert render(model_view(world.proc(1).pages)) == child
