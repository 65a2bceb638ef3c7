"""memfds and tmpfiles: docs/SEMANTICS.md §2, §9 and §21, following mm/memfd.c, mm/shmem.c,
fs/open.c, mm/filemap.c.

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

A tmpfile (open(DIR, O_TMPFILE | O_RDWR) on ext4, §21) is the same kind of object
with its page cache in `State.disk` as well: a fault on a page it does not cache
reads ahead (`pages.fault`), and ext4 sets its largest size.
"""

from __future__ import annotations

from fuzzer.model.pages import Prediction, Unsupported, err, ok, unmap_file_pages
from fuzzer.model.state import DiskFile, State
from fuzzer.prog.program import lowest_free_fd, page_up
from fuzzer.prog.syscalls import (
    EBADF,
    EFBIG,
    EINVAL,
    ENOENT,
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
    MAP_SYNC,
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
# fs/ext4/super.c ext4_max_size for an extent-mapped file with 4 KiB blocks: 2^32 - 1
# blocks (the logical block number is 32 bits): the s_maxbytes ftruncate checks
EXT4_MAX_BYTES = ((1 << 32) - 1) * PAGE


def memfd_create(state: State) -> Prediction:
    """A new, empty memfd at the lowest free descriptor (alloc_fd)."""
    fd, _ = _new_file(state)
    return ok(fd)


def _new_file(state: State) -> tuple[int, int]:
    """An empty file object at the lowest free descriptor: (descriptor, object)."""
    fd = lowest_free_fd(state.fds)
    obj = state.next_obj
    state.next_obj += 1
    state.shmem[obj] = set()
    state.shmem_size[obj] = 0
    state.fds[fd] = obj
    return fd, obj


def tmpfile(state: State) -> Prediction:
    """open(DIR, O_TMPFILE | O_RDWR, 0600) (do_tmpfile, ext4_tmpfile): a new, empty, unnamed
    file at the lowest free descriptor; ENOENT where the supervisor has no directory for
    it (the executor then opens "")."""
    if not state.features.disk_ra_pages:
        return err(ENOENT)
    fd, obj = _new_file(state)
    state.disk[obj] = DiskFile()
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
    disk = state.disk.get(obj)
    if disk is not None and length > EXT4_MAX_BYTES:
        return err(EFBIG)  # inode_newsize_ok, from ext4_setattr
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
    if disk is not None:
        # ext4 zeroes the rest of the block an unaligned end falls in, through its
        # page-cache folio, made if missing and left unread when the block is a hole
        # (every block the cache lacks is one here: nothing the model follows writes a
        # page out and drops it): ext4_setattr's ext4_truncate, for any size not above
        # the old one ("even if i_size didn't change"), zeroes past the new end; growing
        # past an unaligned end zeroes past the old one [T] (since 6.13: ext4_zeroes_old_eof;
        # before, growing makes no folio)
        zeroed = length if length <= disk.size else \
            disk.size if state.features.ext4_zeroes_old_eof else 0
        if zeroed % PAGE and zeroed // PAGE not in state.shmem[obj]:
            state.shmem[obj].add(zeroed // PAGE)
            disk.unread.add(zeroed // PAGE)
        disk.size = length
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


def file_mmap_error(flags: int, pgoff: int, length: int, disk: bool = False) -> int:
    """do_mmap's checks on a file mapping, after mlock_future_ok: 0 or an errno.
    `length` is page-aligned; the memfd is O_RDWR, unsealed, on an exec mount. A tmpfile
    (`disk`) is too, and ext4 has FOP_MMAP_SYNC: MAP_SYNC passes MAP_SHARED_VALIDATE's
    check, and ext4_file_mmap refuses it later (no DAX), a path the model does not
    follow."""
    error = _file_mmap_error(flags, pgoff, length, disk)
    if not error and disk and flags & MAP_TYPE == MAP_SHARED_VALIDATE and flags & MAP_SYNC:
        raise Unsupported("MAP_SYNC on a tmpfile (ext4_file_mmap's EOPNOTSUPP, after the "
                          "old mappings were taken apart)")
    return error


def _file_mmap_error(flags: int, pgoff: int, length: int, disk: bool) -> int:
    # file_mmap_ok: the range must end within MAX_LFS_FILESIZE
    if length > MAX_LFS_FILESIZE or pgoff > (MAX_LFS_FILESIZE - length) >> 12:
        return EOVERFLOW
    mtype = flags & MAP_TYPE
    if mtype == MAP_SHARED:
        flags &= LEGACY_MAP_MASK  # unknown flags are ignored with plain MAP_SHARED
    if mtype in (MAP_SHARED, MAP_SHARED_VALIDATE) and \
            flags & ~(LEGACY_MAP_MASK | (MAP_SYNC if disk else 0)):
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
           "memfd_create", "tmpfile"]
