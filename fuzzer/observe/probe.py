"""Probing the kernel under test for the features the model takes as parameters.

Each probe makes a few syscalls on scratch mappings of this process (never the
arena, never a child) and undoes them; a probe that cannot tell reports the
newest behaviour, so an unknown kernel is held to current semantics.
"""

from __future__ import annotations

import ctypes
import os
import resource
from functools import cache

from fuzzer.model.features import Features
from fuzzer.model.state import PMD_ORDER
from fuzzer.observe.pageflags import own_pagemap_word
from fuzzer.prog.arena import HUGE_PAGES, PMD_PAGES
from fuzzer.prog.program import ARENA_PAGES
from fuzzer.prog.syscalls import (
    ENOMEM,
    ENOSYS,
    MADV_COLLAPSE,
    MADV_DONTNEED_LOCKED,
    MADV_GUARD_INSTALL,
    MADV_GUARD_REMOVE,
    MADV_HUGEPAGE,
    MADV_NOHUGEPAGE,
    MADV_NORMAL,
    MADV_POPULATE_READ,
    MADV_RANDOM,
    MAP_ANONYMOUS,
    MAP_DROPPABLE,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    MAP_SHARED,
    MAP_STACK,
    MLOCK_ONFAULT,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PAGE,
    PR_GET_THP_DISABLE,
    PR_SET_THP_DISABLE,
    PR_THP_DISABLE_EXCEPT_ADVISED,
    PROT_EXEC,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
    RLIM_INFINITY,
    SYS_PRCTL,
    SYSCALLS,
)
from fuzzer.snapshot.parse import PM_EXCLUSIVE, PM_PRESENT

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
CAP_SYS_RESOURCE = 24
PAGEMAP_SCAN = 0xC0606610  # _IOWR('f', 16, struct pm_scan_arg), 96 bytes
SYS_IOCTL = 16
ENOTTY = 25
EINVAL = 22


def _sys(name: str, *args: int) -> int:
    nr = SYSCALLS[name].nr if name in SYSCALLS else {"ioctl": SYS_IOCTL, "prctl": SYS_PRCTL}[name]
    ret = _libc.syscall(ctypes.c_long(nr), *(ctypes.c_ulong(a & (2**64 - 1)) for a in args))
    return -ctypes.get_errno() if ret == -1 else int(ret)


def _scratch(pages: int, prot: int = PROT_READ | PROT_WRITE) -> int:
    addr = _sys("mmap", 0, pages * PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    if addr < 0:
        raise OSError(-addr, "probe: mmap failed")
    return addr


def _vmflags(addr: int) -> set[str]:
    with open("/proc/self/smaps") as f:
        inside = False
        for line in f:
            head = line.split(" ", 1)[0]
            if "-" in head and not head.endswith(":"):
                start, end = (int(x, 16) for x in head.split("-"))
                inside = start <= addr < end
            elif inside and line.startswith("VmFlags:"):
                return set(line.split()[1:])
    return set()


def _lf_mnemonic() -> bool:
    p = _scratch(1)
    try:
        if _sys("mlock2", p, PAGE, MLOCK_ONFAULT) != 0:
            return True
        return "??" not in _vmflags(p)
    finally:
        _sys("munmap", p, PAGE)


def _madvise_ok(advice: int, lock: bool) -> bool:
    p = _scratch(1)
    try:
        if lock:
            _sys("mlock", p, PAGE)
        return _sys("madvise", p, PAGE, advice) == 0
    finally:
        _sys("munmap", p, PAGE)


def _madv_collapse() -> bool:
    # A range with no VMA: ENOMEM where the advice is known (the walk finds nothing),
    # EINVAL where it is not (before 6.1, or without THP: madvise_behavior_valid).
    p = _scratch(1)
    _sys("munmap", p, PAGE)
    return _sys("madvise", p, PAGE, MADV_COLLAPSE) == -ENOMEM


def _pagemap_scan() -> bool:
    fd = os.open("/proc/self/pagemap", os.O_RDONLY)
    try:
        return _sys("ioctl", fd, PAGEMAP_SCAN, 0) != -ENOTTY
    finally:
        os.close(fd)


def _guard_regions() -> bool:
    # Removing guards where there are none changes nothing; before 6.13 it is EINVAL.
    p = _scratch(1)
    try:
        return _sys("madvise", p, PAGE, MADV_GUARD_REMOVE) == 0
    finally:
        _sys("munmap", p, PAGE)


def _shmem_guards() -> bool:
    # A guard in a shared anonymous (shmem) mapping: 6.15+; before, EINVAL.
    p = _sys("mmap", 0, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
    if p < 0:
        raise OSError(-p, "probe: mmap failed")
    try:
        return _sys("madvise", p, PAGE, MADV_GUARD_INSTALL) == 0
    finally:
        _sys("munmap", p, PAGE)


def _map_droppable() -> bool:
    # Before 6.11 the mapping type 0x08 is unknown: EINVAL.
    p = _sys("mmap", 0, PAGE, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS, -1, 0)
    if p < 0:
        return False
    _sys("munmap", p, PAGE)
    return True


def _no_swap() -> bool:
    """Whether no swap is in use (SwapTotal 0): reclaim then keeps dirty anonymous pages."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("SwapTotal:"):
                return int(line.split()[1]) == 0
    return True


def _mseal() -> bool:
    # A zero length seals nothing (do_mseal returns before it looks at the VMAs).
    return _sys("mseal", 0, 0, 0) != -ENOSYS


def _process_madvise() -> bool:
    # flags 0, no iovecs: the pidfd -1 is EBADF where the syscall exists
    return _sys("process_madvise", -1, 0, 0, 0, 0) != -ENOSYS


SYS_PIDFD_OPEN = 434


def _pmadv_self_any() -> bool:
    """process_madvise of MADV_NORMAL on a page of this process through its own pidfd:
    6.13+ takes any advice for the caller's own address space, before only four."""
    if not _process_madvise():
        return False
    fd = int(_libc.syscall(ctypes.c_long(SYS_PIDFD_OPEN), ctypes.c_long(os.getpid()),
                           ctypes.c_ulong(0)))
    if fd < 0:
        return True  # cannot tell: the newest behaviour
    p = _scratch(1)
    try:
        iov = (ctypes.c_ulong * 2)(p, PAGE)
        return _sys("process_madvise", fd, ctypes.addressof(iov), 1, MADV_NORMAL, 0) == PAGE
    finally:
        _sys("munmap", p, PAGE)
        os.close(fd)


def _multi_vma_move() -> bool:
    src, dst = _scratch(2), _scratch(2)
    try:
        _sys("mprotect", src + PAGE, PAGE, PROT_READ)  # two VMAs
        ret = _sys("mremap", src, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, dst)
        return ret == dst
    finally:
        _sys("munmap", src, 2 * PAGE)
        _sys("munmap", dst, 2 * PAGE)


def _fixed_noreplace() -> bool:
    p = _scratch(1)
    try:
        ret = _sys("mmap", p, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                   -1, 0)
        if ret >= 0 and ret != p:
            _sys("munmap", ret, PAGE)
        return ret < 0
    finally:
        _sys("munmap", p, PAGE)


def _write_implies_read() -> bool:
    # write(2) from a PROT_WRITE-only page reads it through the fault handler's rules
    # (copy_from_user), without risking a SIGSEGV here.
    p = _scratch(1, PROT_WRITE)
    rfd, wfd = os.pipe()
    try:
        os.write(wfd, (ctypes.c_char * 1).from_address(p))
        return True
    except OSError:
        return False
    finally:
        os.close(rfd)
        os.close(wfd)
        _sys("munmap", p, PAGE)


def _exec_only_readable() -> bool:
    # mlock populates with FOLL_FORCE, which reaches a PROT_EXEC-only page unless the
    # execute-only pkey denies data access (then -EFAULT, which mlock reports as ENOMEM).
    p = _scratch(1, PROT_EXEC)
    try:
        return _sys("mlock", p, PAGE) == 0
    finally:
        _sys("munmap", p, PAGE)


def _map_stack_nohugepage() -> bool:
    p = _scratch(1)
    try:
        _sys("mmap", p, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED
             | MAP_STACK, -1, 0)
        return "nh" in _vmflags(p)
    finally:
        _sys("munmap", p, PAGE)


def _mremap_checks_first() -> bool:
    # A move onto itself overlaps (EINVAL) -- unless the missing VMA is noticed first.
    p = _scratch(1)
    _sys("munmap", p, PAGE)
    return _sys("mremap", p, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, p) == -EINVAL


def _merge_into_null_anon_vma() -> bool:
    # mlock populates the middle page only: it alone gets an anon_vma. After munlock,
    # does it merge back with its neighbours (which have none)?
    p = _scratch(3)
    try:
        if _sys("mlock", p + PAGE, PAGE) != 0:
            return True  # cannot tell without mlock: the newest behaviour
        _sys("munlock", p + PAGE, PAGE)
        return _vma_count(p, p + 3 * PAGE) == 1
    finally:
        _sys("munmap", p, 3 * PAGE)


def _mprotect_uncharges() -> bool:
    # An unfaulted private writable mapping made read-only: does it lose "ac"? (Between
    # PROT_NONE pages, so that it is a VMA of its own, not a part of one with an anon_vma.)
    p = _scratch(3, PROT_NONE)
    try:
        _sys("mmap", p + PAGE, PAGE, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
        _sys("mprotect", p + PAGE, PAGE, PROT_READ)
        return "ac" not in _vmflags(p + PAGE)
    finally:
        _sys("munmap", p, 3 * PAGE)


def _vma_count(start: int, end: int) -> int:
    with open("/proc/self/maps") as f:
        heads = (line.split(" ", 1)[0].split("-") for line in f)
        return sum(1 for a, b in heads if int(a, 16) < end and int(b, 16) > start)


def _madv_populate_stops_at_hole() -> bool:
    p = _scratch(2)
    try:
        _sys("munmap", p, PAGE)
        _sys("mprotect", p + PAGE, PAGE, PROT_NONE)
        return _sys("madvise", p, 2 * PAGE, MADV_POPULATE_READ) != -EINVAL
    finally:
        _sys("munmap", p, 2 * PAGE)


def _thp_except_advised() -> bool:
    """Whether PR_SET_THP_DISABLE takes PR_THP_DISABLE_EXCEPT_ADVISED (6.18+; EINVAL
    before, and without THP): set on this process, then its own setting put back
    (PR_GET_THP_DISABLE: 0 enabled, 1 disabled, 3 disabled except where advised)."""
    was = _sys("prctl", PR_GET_THP_DISABLE, 0, 0, 0, 0)
    ok = _sys("prctl", PR_SET_THP_DISABLE, 1, PR_THP_DISABLE_EXCEPT_ADVISED, 0, 0) == 0
    if ok and was >= 0:
        _sys("prctl", PR_SET_THP_DISABLE, int(was != 0), was & PR_THP_DISABLE_EXCEPT_ADVISED,
             0, 0)
    return ok


THP_SYSFS = "/sys/kernel/mm/transparent_hugepage"


def mthp_orders(top: str, sizes: dict[int, str], arena_pages: int = ARENA_PAGES) -> int:
    """The order mask of anonymous mTHP sizes a VM_HUGEPAGE VMA may get (pure).

    `top` is the top-level enabled setting, `sizes` each hugepages-<N>kB/enabled
    setting by size in KiB (the words in brackets). Per `__thp_vma_allowable_orders`
    (mm/huge_memory.c), a VM_HUGEPAGE VMA takes huge_anon_orders_always and _madvise,
    and _inherit when the top level is "always" or "madvise"
    (hugepage_global_enabled). Only blocks that fit in the arena count.
    """
    mask = 0
    for kb, setting in sizes.items():
        pages = kb // 4
        order = pages.bit_length() - 1
        # THP_ORDERS_ALL_ANON leaves out orders 0 and 1 (8 KiB is a shmem size only)
        if kb % 4 or pages != 1 << order or order < 2 or pages > arena_pages:
            continue
        if setting in ("always", "madvise") or (
                setting == "inherit" and top in ("always", "madvise")):
            mask |= 1 << order
    return mask


def _selected(path: str) -> str:
    """The bracketed word of a THP sysfs setting ("always [madvise] never" -> "madvise")."""
    with open(path) as f:
        text = f.read()
    return text[text.index("[") + 1:text.index("]")] if "[" in text else ""


def shmem_thp(top: str, sizes: dict[int, str]) -> bool:
    """Whether a shmem VMA with VM_HUGEPAGE could get a large folio (pure): `top` is
    shmem_enabled, `sizes` each hugepages-<N>kB/shmem_enabled (the words in brackets).

    Per shmem_allowable_huge_orders (mm/shmem.c), "always", "within_size" and "advise"
    let a VM_HUGEPAGE VMA have its size, "inherit" sizes follow the top-level setting,
    and a top-level "force" forces it. The model has no shmem large folios, so then the
    executor keeps THP off everywhere (`thp_except_advised` False). Read conservatively:
    any such setting counts, even a size the arena cannot hold."""
    if top not in ("never", "deny", ""):
        return True
    return any(setting not in ("never", "inherit") for setting in sizes.values())


def _thp_settings(name: str) -> tuple[str, dict[int, str]] | None:
    """The top-level THP setting `name` ("enabled", "shmem_enabled") and each size's
    (hugepages-<N>kB/`name`, by N; a size without that file has none: hugepages-8kB has
    shmem_enabled only); None without the sysfs files (no THP, or no mTHP before 6.8:
    the sizes are then empty)."""
    try:
        top = _selected(f"{THP_SYSFS}/{name}")
        sizes = {int(n[len("hugepages-"):-len("kB")]): _selected(f"{THP_SYSFS}/{n}/{name}")
                 for n in os.listdir(THP_SYSFS) if n.startswith("hugepages-")
                 and n.endswith("kB") and os.path.exists(f"{THP_SYSFS}/{n}/{name}")}
    except (OSError, ValueError):
        return None
    return top, sizes


def _shmem_thp() -> bool:
    """shmem_thp of the host's settings (False without them: no THP)."""
    settings = _thp_settings("shmem_enabled")
    return settings is not None and shmem_thp(*settings)


def huge_zero_page() -> bool:
    """transparent_hugepage/use_zero_page (True where the file is missing: no THP, and
    then nothing asks)."""
    try:
        with open(f"{THP_SYSFS}/use_zero_page") as f:
            return f.read().strip() != "0"
    except OSError:
        return True


def huge_region_words(write: bool) -> tuple[int, int] | None:
    """A read fault on the first page of a 2 MiB-aligned MADV_HUGEPAGE mapping of our
    own, then a write there if `write`: the pagemap words of its first two pages (a PMD
    maps both on consecutive frames); None where no such mapping could be made."""
    try:
        p = _scratch(2 * PMD_PAGES)
    except OSError:
        return None
    try:
        huge = -(-p // (PMD_PAGES * PAGE)) * PMD_PAGES * PAGE
        if _sys("madvise", huge, PMD_PAGES * PAGE, MADV_HUGEPAGE) != 0:
            return None
        ctypes.c_char.from_address(huge).value  # noqa: B018 -- a read fault
        if write:
            ctypes.c_char.from_address(huge).value = b"x"
        return own_pagemap_word(huge), own_pagemap_word(huge + PAGE)
    except OSError:
        return None
    finally:
        _sys("munmap", p, 2 * PMD_PAGES * PAGE)


def _huge_zero_wp_thp() -> bool:
    """Whether a write to the huge zero page maps a huge page (6.13+): after a read and a
    write of the first page of our own huge-page region, is the second page exclusive (a
    new huge page) or the zero page (a split)? True where it cannot tell (no PMD size on,
    no huge zero page, no pagemap): then the model maps no huge zero page for it to
    matter."""
    if not _mthp_orders(HUGE_PAGES) >> PMD_ORDER & 1 or not huge_zero_page():
        return True
    words = huge_region_words(write=True)
    return words is None or not words[1] & PM_PRESENT or bool(words[1] & PM_EXCLUSIVE)


def _mthp_orders(arena_pages: int = ARENA_PAGES) -> int:
    """The host's anonymous mTHP orders for VM_HUGEPAGE VMAs (0 without the settings)."""
    settings = _thp_settings("enabled")
    return mthp_orders(*settings, arena_pages) if settings is not None else 0


@cache
def memlock_limits() -> tuple[int, int]:
    """RLIMIT_MEMLOCK (soft, hard) in bytes, as every executor inherits it from us."""
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    infinite = resource.RLIM_INFINITY
    return (RLIM_INFINITY if soft == infinite else soft,
            RLIM_INFINITY if hard == infinite else hard)


@cache
def has_capability(cap: int) -> bool:
    """Whether we (and so every executor) hold `cap` in the effective set."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> cap & 1)
    return False


FILES_ENV = "MMFUZZ_FILES"  # the directory for tmpfile's files, if not the default
FILES_DIR = "/var/tmp/mmfuzz-files"
EXT4_SUPER_MAGIC = 0xEF53
# The readahead the model needs: a read-around window (ra_pages, centred on the miss and
# clipped at 0) covering the whole arena from any page of it, i.e. twice the arena.
MIN_READ_AHEAD_KB = 2 * ARENA_PAGES * PAGE // 1024


class _Statfs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("f_bsize", ctypes.c_long),
                ("rest", ctypes.c_long * 14)]


def _statfs_type(path: str) -> tuple[int, int]:
    buf = _Statfs()
    if _libc.statfs(path.encode(), ctypes.byref(buf)) != 0:
        return 0, 0
    return buf.f_type & 0xFFFF_FFFF, buf.f_bsize


def read_ahead_kb(dev: int) -> int:
    """The readahead of the block device behind a file system (its queue's read_ahead_kb,
    which its bdi's ra_pages is; a partition's is its disk's); 0 if unknown."""
    node = f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}"
    try:
        real = os.path.realpath(node)
        if os.path.exists(os.path.join(real, "partition")):
            real = os.path.dirname(real)
        with open(os.path.join(real, "queue", "read_ahead_kb")) as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


def files_problem(path: str) -> str:
    """Why `path` cannot hold tmpfile's files ("" when it can): the model follows ext4
    with 4 KiB blocks, mounted exec and writable, with readahead >= MIN_READ_AHEAD_KB,
    where O_TMPFILE works."""
    try:
        st = os.stat(path)
    except OSError as e:
        return f"{path}: {e.strerror}"
    ftype, bsize = _statfs_type(path)
    if ftype != EXT4_SUPER_MAGIC:
        return f"{path} is not on ext4 (file system type {ftype:#x})"
    if bsize != PAGE:
        return f"{path}: ext4 with {bsize}-byte blocks, not {PAGE}"
    vfs = os.statvfs(path)
    if vfs.f_flag & (os.ST_NOEXEC | os.ST_RDONLY):
        return f"{path} is on a noexec or read-only mount"
    ra = read_ahead_kb(st.st_dev)
    if ra < MIN_READ_AHEAD_KB:
        return f"{path}: readahead {ra} kB, the model needs {MIN_READ_AHEAD_KB} kB or more"
    try:
        os.close(os.open(path, os.O_TMPFILE | os.O_RDWR, 0o600))
    except OSError as e:
        return f"{path}: O_TMPFILE: {e.strerror}"
    return ""


@cache
def files_dir() -> str:
    """The directory the executor makes tmpfile's files in (--files), made if missing;
    "" where none fits the model (tmpfile is then ENOENT, Features.disk_ra_pages 0)."""
    path = os.environ.get(FILES_ENV) or FILES_DIR
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError:
        return ""
    return "" if files_problem(path) else path


def _tmpfile_cached(sizes: tuple[int, ...], pages: int, prot: int, advice: int | None,
                    read: int) -> list[bool]:
    """Which of the first `pages` pages of a fresh tmpfile are cached after its sizes were
    set in turn (ftruncate), it was mapped private with `prot`, advised `advice` (if any)
    and read at page `read`: mincore, which counts only uptodate folios. Needs files_dir."""
    fd = os.open(files_dir(), os.O_TMPFILE | os.O_RDWR, 0o600)
    try:
        for size in sizes:
            os.ftruncate(fd, size)
        p = _sys("mmap", 0, pages * PAGE, prot, MAP_PRIVATE, fd, 0)
        if p < 0:
            raise OSError(-p, "probe: mmap of a tmpfile failed")
        try:
            if advice is not None:
                _sys("madvise", p, pages * PAGE, advice)
            ctypes.c_char.from_address(p + read * PAGE).value  # noqa: B018 -- the miss reads
            cached = (ctypes.c_ubyte * pages)()
            if _libc.mincore(ctypes.c_void_p(p), ctypes.c_size_t(pages * PAGE), cached) != 0:
                raise OSError(ctypes.get_errno(), "probe: mincore failed")
            return [bool(c & 1) for c in cached]
        finally:
            _sys("munmap", p, pages * PAGE)
    finally:
        os.close(fd)


def _exec_readahead() -> bool:
    """Whether a page-cache miss in an executable mapping of a file reads from the page to
    the VMA's end, MADV_RANDOM or not (6.18, "mm/filemap: allow arch to request folio size
    for exec memory"); before, such a VMA read around like any other, and MADV_RANDOM read
    the page alone. A 4-page tmpfile mapped PROT_READ|PROT_EXEC and advised MADV_RANDOM:
    its first page is read, then mincore says whether its last is cached. True where
    there is no directory for tmpfile's files (nothing reads a file then)."""
    if not files_dir():
        return True
    return _tmpfile_cached((4 * PAGE,), 4, PROT_READ | PROT_EXEC, MADV_RANDOM, 0)[3]


def _ext4_zeroes_old_eof() -> bool:
    """Whether growing a file from an unaligned size leaves a page-cache folio at the old
    end (ext4 zeroes the rest of that block through it: c7fc0366c656, 6.13+ and stable
    backports), unread over a hole. A 1-page file of 100 bytes grown to 2 pages, mapped,
    and read at page 1: the miss reads the file ahead, which skips a folio already there;
    mincore (which counts only uptodate folios) then says page 0 is not cached where the
    zeroing made its folio, and cached where it did not. True where there is no directory
    for tmpfile's files."""
    if not files_dir():
        return True
    return not _tmpfile_cached((100, 2 * PAGE), 2, PROT_READ, None, 1)[0]


def disk_ra_pages() -> int:
    """Features.disk_ra_pages: the readahead of files_dir's disk in pages, 0 without one."""
    path = files_dir()
    return read_ahead_kb(os.stat(path).st_dev) * 1024 // PAGE if path else 0


@cache
def probe() -> Features:
    """The features of the running kernel (probed once per process; a test that changes
    the host's mTHP settings clears the cache: `probe.cache_clear()`)."""
    thp = _madvise_ok(MADV_NOHUGEPAGE, lock=False)
    # The executor leaves THP to VM_HUGEPAGE VMAs (and the model predicts anonymous mTHP)
    # only where no shmem large folio could come with it (shmem_thp).
    except_advised = _thp_except_advised() and not _shmem_thp()
    return Features(
        release=os.uname().release,
        lf_mnemonic=_lf_mnemonic(),
        pagemap_scan=_pagemap_scan(),
        madv_populate=_madvise_ok(MADV_POPULATE_READ, lock=False),
        madv_dontneed_locked=_madvise_ok(MADV_DONTNEED_LOCKED, lock=True),
        madv_collapse=_madv_collapse(),
        mremap_multi_vma_move=_multi_vma_move(),
        map_fixed_noreplace=_fixed_noreplace(),
        write_implies_read=_write_implies_read(),
        thp=thp,
        map_stack_nohugepage=_map_stack_nohugepage(),
        mremap_checks_first=_mremap_checks_first(),
        madv_populate_stops_at_hole=_madv_populate_stops_at_hole(),
        merge_into_null_anon_vma=_merge_into_null_anon_vma(),
        mprotect_uncharges=_mprotect_uncharges(),
        exec_only_readable=_exec_only_readable(),
        mseal=_mseal(),
        guard_regions=_guard_regions(),
        shmem_guards=_guard_regions() and _shmem_guards(),
        map_droppable=_map_droppable(),
        no_swap=_no_swap(),
        process_madvise=_process_madvise(),
        pmadv_self_any=_pmadv_self_any(),
        thp_except_advised=except_advised,
        # Without the flag the executor disables THP completely (executor.c): no mTHP.
        mthp_orders=_mthp_orders() if except_advised and thp else 0,
        disk_ra_pages=disk_ra_pages(),
        exec_readahead=_exec_readahead(),
        ext4_zeroes_old_eof=_ext4_zeroes_old_eof(),
        huge_zero_page=huge_zero_page(),
        huge_zero_wp_thp=_huge_zero_wp_thp(),
    )
