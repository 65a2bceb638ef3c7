"""What varies between kernel versions, as parameters of the model (pure).

The model must not assume the newest kernel: each feature here is probed on
the kernel under test at start-up (`fuzzer/observe/probe.py`), recorded with
every campaign and sample, and consulted where the semantics differ.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class Features:
    release: str = "unknown"
    lf_mnemonic: bool = True  # smaps prints "lf" for VM_LOCKONFAULT (about 6.2+); else "??"
    pagemap_scan: bool = True  # PAGEMAP_SCAN ioctl (6.7+)
    madv_populate: bool = True  # MADV_POPULATE_READ/WRITE (5.14+)
    madv_dontneed_locked: bool = True  # MADV_DONTNEED_LOCKED (5.18+)
    madv_collapse: bool = True  # MADV_COLLAPSE (6.1+, with THP; else EINVAL as unknown advice)
    mremap_multi_vma_move: bool = True  # MREMAP_FIXED move of a range over several VMAs (~6.17+)
    map_fixed_noreplace: bool = True  # MAP_FIXED_NOREPLACE (4.17+)
    # Found by campaigns in User-Mode Linux 6.1 (fuzzer/kernel):
    write_implies_read: bool = True  # a read of a PROT_WRITE-only page faults it in (x86; not UML)
    thp: bool = True  # CONFIG_TRANSPARENT_HUGEPAGE: MADV_(NO)HUGEPAGE valid (not on UML)
    map_stack_nohugepage: bool = True  # MAP_STACK sets VM_NOHUGEPAGE (6.7+, with thp)
    mremap_checks_first: bool = True  # range checks, then the VMA lookup (6.17+; before: EFAULT)
    madv_populate_stops_at_hole: bool = True  # MADV_POPULATE_*: ENOMEM at a hole (6.9+)
    # A VMA with an anon_vma merges into a neighbour without one (6.18 does; 6.1 did not:
    # is_mergeable_anon_vma wanted the neighbour's anon_vma_chain to be singular).
    merge_into_null_anon_vma: bool = True
    # mprotect_fixup takes VM_ACCOUNT from a private anonymous VMA made read-only before
    # it has an anon_vma (6.18 does; 6.1 kept the charge until munmap).
    mprotect_uncharges: bool = True
    # Data access to a PROT_EXEC-only mapping (GUP's FOLL_FORCE populates it, a read maps
    # the zero page). False on x86 with protection keys (OSPKE): mmap and mprotect give
    # such a mapping the execute-only pkey (arch/x86/mm/pkeys.c execute_only_pkey), whose
    # PKRU bits deny every data access, so populate fails and a touch is SEGV_PKUERR.
    exec_only_readable: bool = True
    mseal: bool = True  # the mseal syscall (6.10+; before it, ENOSYS)
    guard_regions: bool = True  # MADV_GUARD_INSTALL/REMOVE (6.13+; before, EINVAL)
    # MADV_GUARD_INSTALL in shared and file-backed (shmem, memfd) mappings (6.15+; before,
    # is_valid_guard_vma wanted vma_is_anonymous: EINVAL). docs/SEMANTICS.md §15.
    shmem_guards: bool = True
    map_droppable: bool = True  # the MAP_DROPPABLE mapping type (6.11+; before, EINVAL)
    # No swap device (total_swap_pages == 0): MADV_PAGEOUT cannot write anonymous pages
    # out, only drop what needs no writing (docs/SEMANTICS.md §16). With swap, the
    # model refuses MADV_PAGEOUT (what reclaim then takes is not modelled).
    no_swap: bool = True
    process_madvise: bool = True  # the process_madvise syscall (5.10+; before it, ENOSYS)
    # process_madvise takes any advice for the caller's own address space (6.13+,
    # "unrestrict process_madvise() for current process"); before, only the four it
    # takes for another process (COLD, PAGEOUT, WILLNEED, COLLAPSE). §18.
    pmadv_self_any: bool = True
    # prctl(PR_SET_THP_DISABLE, 1, PR_THP_DISABLE_EXCEPT_ADVISED) (6.18+; before, EINVAL),
    # and no shmem mTHP setting that could give a VM_HUGEPAGE shmem VMA a large folio
    # (probe.shmem_thp: the model has none): the executor then disables THP except in
    # VM_HUGEPAGE VMAs (--thp-advised), else completely.
    thp_except_advised: bool = True
    # The anonymous mTHP orders a write fault may give a VM_HUGEPAGE VMA, as a bit mask
    # (bit n: order n, a block of 2**n pages), those whose block fits in the arena: read
    # from sysfs (hugepages-<N>kB/enabled "always" or "madvise", or "inherit" with the
    # top-level enabled "always" or "madvise"). 0 where none is enabled, with
    # thp_except_advised False (the executor disables THP) or without THP: no large folio
    # in the arena. A machine setting, not a release: the default is 0. §19.
    mthp_orders: int = 0
    # The readahead window, in pages, of the disk behind tmpfile's directory (its bdi's
    # ra_pages: read_ahead_kb / 4), where the supervisor found a directory the model
    # follows (probe.files_dir: ext4 with 4 KiB blocks, readahead of at least twice the
    # arena) and gives it to the executor; 0 where it found none (tmpfile is then
    # ENOENT). A machine setting; the default is this project's test host's (8 MiB). §21.
    disk_ra_pages: int = 2048
    # A tmpfile's page-cache miss in a VM_EXEC VMA reads from the page to the VMA's end,
    # MADV_RANDOM or not (6.18+); before, VM_EXEC is not a case of its own there (read-around,
    # or the page alone under MADV_RANDOM). §21.
    exec_readahead: bool = True
    # ext4 zeroes the rest of the old end's block when a truncate grows a file from an
    # unaligned size, through a page-cache folio made if missing, which stays unread over
    # a hole (6.13+ and stable backports: c7fc0366c656 "ext4: partial zero eof block on
    # unaligned inode size extension"); before, growing touched no folio. §21.
    ext4_zeroes_old_eof: bool = True
    # PMD-mapped huge pages (the huge arena only, docs/SEMANTICS.md §22): a read fault
    # maps the huge zero page (transparent_hugepage/use_zero_page 1, a machine setting),
    # and a write to it maps a new huge page (do_huge_zero_wp_pmd, 6.13+; before, the PMD
    # is split into zero-page PTEs and the written page alone is copied).
    huge_zero_page: bool = True
    huge_zero_wp_thp: bool = True

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        """One line for people: the release and what it lacks."""
        missing = [k for k, v in self.as_dict().items() if v is False]
        if not self.disk_ra_pages:
            missing.append("disk files")
        sizes = mthp_sizes_kb(self.mthp_orders)
        return (self.release + (f" (without {', '.join(missing)})" if missing else "")
                + (f", mTHP {'/'.join(f'{kb}K' for kb in sizes)}" if sizes else ""))

    def mthp_orders_desc(self) -> list[int]:
        """The enabled mTHP orders, largest first (the order alloc_anon_folio tries them)."""
        return [n for n in range(ORDER_LIMIT, 0, -1) if self.mthp_orders >> n & 1]


ORDER_LIMIT = 16  # no mTHP order above this (PMD_ORDER is 9 on x86-64)


def mthp_sizes_kb(orders: int) -> list[int]:
    """The folio sizes of an mTHP order mask, in KiB (4 KiB pages), smallest first."""
    return [4 << n for n in range(ORDER_LIMIT + 1) if orders >> n & 1]


NEWEST = Features()
