"""memfds: docs/SEMANTICS.md §2 and §9 for files, following mm/memfd.c, mm/shmem.c, fs/open.c.

A memfd is a shmem object like the one behind an anonymous shared mapping
(`State.shmem` holds its page cache, `State.shmem_size` its size), with two
differences: its size is the file's, which `ftruncate` changes, and it lives
while a descriptor (`State.fds`) or a mapping refers to it
(`State.drop_unmapped_objects`). Mapped shared (FS) its pages behave as an
anonymous shared object's; mapped private (FP) a read maps the page-cache page
and a write makes a private copy (`pages.fault`).

The executor starts with no descriptor open and memfd_create takes the lowest
free number, so the model knows every fd. Descriptors are `unsigned int` to
the kernel (ftruncate, close, and mmap's fget): the upper half of the register
is dropped. The file's size in bytes matters only rounded up to whole pages:
a fault at a page offset at or past that is SIGBUS, and shrinking drops whole
pages past it (the tail of a partial last page is zeroed, which the oracle
does not see).
"""

from __future__ import annotations

from fuzzer.model.pages import Prediction, err, ok, unmap_file_pages
from fuzzer.model.state import State
from fuzzer.prog.program import page_up
from fuzzer.prog.syscalls import (
    EBADF,
    EINVAL,
    EOPNOTSUPP,
    EOVERFLOW,
    MAP_32BIT,
    MAP_ANONYMOUS,
    MAP_DENYWRITE,
    MAP_EXECUTABLE,
    MAP_FIXED,
    MAP_GROWSDOWN,
    MAP_HUGETLB,
    MAP_LOCKED,
    MAP_NONBLOCK,
    MAP_NORESERVE,
    MAP_POPULATE,
    MAP_PRIVATE,
    MAP_SHARED,
    MAP_SHARED_VALIDATE,
    MAP_STACK,
    MAP_TYPE,
    PAGE,
)

FD_MASK = 0xFFFF_FFFF
MAP_UNINITIALIZED = 0x4000000
# include/linux/mman.h LEGACY_MAP_MASK (x86-64): what MAP_SHARED_VALIDATE accepts
# from a file without FOP_MMAP_SYNC. MAP_FIXED_NOREPLACE is not in it.
LEGACY_MAP_MASK = (MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_DENYWRITE
                   | MAP_EXECUTABLE | MAP_UNINITIALIZED | MAP_GROWSDOWN | MAP_LOCKED
                   | MAP_NORESERVE | MAP_POPULATE | MAP_NONBLOCK | MAP_STACK | MAP_HUGETLB
                   | MAP_32BIT | ((21 | 30) << 26))
MAX_LFS_FILESIZE = (1 << 63) - 1


def memfd_create(state: State) -> Prediction:
    """A new, empty memfd at the lowest free descriptor (alloc_fd)."""
    fd = min(set(range(len(state.fds) + 1)) - set(state.fds))
    obj = state.next_obj
    state.next_obj += 1
    state.shmem[obj] = set()
    state.shmem_size[obj] = 0
    state.fds[fd] = obj
    return ok(fd)


def ftruncate(state: State, fd: int, length: int) -> Prediction:
    """do_sys_ftruncate, then shmem_setattr: shrinking unmaps the pages past the new end
    from every mapping, private copies included (unmap_mapping_range with even_cows),
    and drops them from the cache; growing adds a hole."""
    if length >= 1 << 63:
        return err(EINVAL)  # a negative off_t, checked before the descriptor
    obj = state.fds.get(fd & FD_MASK)
    if obj is None:
        return err(EBADF)
    # (memfds are O_RDWR and O_LARGEFILE, unsealed; RLIMIT_FSIZE is unlimited and
    # s_maxbytes is MAX_LFS_FILESIZE, which a non-negative off_t never exceeds)
    end = page_up(length) // PAGE
    if end < state.shmem_size[obj]:
        # The kernel unmaps the whole range past the end; the model names the offsets
        # where something is: the cache, and what every process maps, in its arena or
        # outside it. A private copy need not have a cached page behind it any more
        # (a hole punch keeps copies), nor need the caller map its offset.
        gone = {pg for pg in state.shmem[obj] if pg >= end}
        for s in state.processes():
            gone |= {p.attrs.pgoff for p in s.pages
                     if p is not None and p.attrs.obj == obj and p.attrs.pgoff >= end}
            gone |= {pg for v in s.outside_shmem_vmas if v.obj == obj
                     for pg in v.mapped | v.copies if pg >= end}
        unmap_file_pages(state, obj, gone, even_cows=True)
        state.shmem[obj] -= gone
    state.shmem_size[obj] = end
    return ok()


def close(state: State, fd: int) -> Prediction:
    """close_fd: the mappings keep the file; without them it is freed."""
    if state.fds.pop(fd & FD_MASK, None) is None:
        return err(EBADF)
    state.drop_unmapped_objects()
    return ok()


def file_of(state: State, fd: int) -> int | None:
    """The memfd object an mmap's fd names (fget of the low 32 bits), or None."""
    return state.fds.get(fd & FD_MASK)


def file_mmap_error(flags: int, pgoff: int, length: int) -> int:
    """do_mmap's checks on a file mapping, after mlock_future_ok: 0 or an errno.
    `length` is page-aligned; the memfd is O_RDWR, unsealed, on an exec mount."""
    # file_mmap_ok: the range must end within MAX_LFS_FILESIZE
    if length > MAX_LFS_FILESIZE or pgoff > (MAX_LFS_FILESIZE - length) >> 12:
        return EOVERFLOW
    mtype = flags & MAP_TYPE
    if mtype == MAP_SHARED:
        flags &= LEGACY_MAP_MASK  # unknown flags are ignored with plain MAP_SHARED
    if mtype in (MAP_SHARED, MAP_SHARED_VALIDATE) and flags & ~LEGACY_MAP_MASK:
        return EOPNOTSUPP  # shmem has no FOP_MMAP_SYNC: MAP_SYNC is unknown too
    if mtype not in (MAP_SHARED, MAP_SHARED_VALIDATE, MAP_PRIVATE):
        return EINVAL
    if flags & MAP_GROWSDOWN:
        return EINVAL  # VM_GROWSDOWN on a file mapping, shared or private
    return 0


def huge_tlb_error(flags: int) -> int:
    """ksys_mmap_pgoff: MAP_HUGETLB on a file that is not hugetlbfs."""
    return EINVAL if flags & MAP_HUGETLB else 0


__all__ = ["close", "file_mmap_error", "file_of", "ftruncate", "huge_tlb_error",
           "memfd_create"]
