"""Feature probes on the running kernel: each answer checked against its release."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from fuzzer.model.features import NEWEST, Features
from fuzzer.observe.probe import (
    files_dir,
    files_problem,
    mthp_orders,
    probe,
    read_ahead_kb,
    shmem_thp,
)

pytestmark = pytest.mark.kernel


def release() -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    assert m is not None
    return int(m[1]), int(m[2])


# (feature, first release that has it)
SINCE = [
    ("map_fixed_noreplace", (4, 17)),
    ("madv_populate", (5, 14)),
    ("madv_dontneed_locked", (5, 18)),
    ("mseal", (6, 10)),
    ("guard_regions", (6, 13)),
    ("shmem_guards", (6, 15)),
    ("map_droppable", (6, 11)),
    ("process_madvise", (5, 10)),
    ("pmadv_self_any", (6, 13)),
    ("lf_mnemonic", (6, 2)),
    ("pagemap_scan", (6, 7)),
    ("mremap_multi_vma_move", (6, 17)),
    # Found by campaigns in User-Mode Linux 6.1 (tests/test_kernel.py, UML_DIFFERENCES):
    ("map_stack_nohugepage", (6, 7)),  # with THP, which x86 kernels here have
    ("madv_populate_stops_at_hole", (6, 9)),
    ("mremap_checks_first", (6, 17)),
    ("thp_except_advised", (6, 18)),  # PR_THP_DISABLE_EXCEPT_ADVISED
]
# Not a matter of the release alone: the architecture (x86, not UML), the CPU
# (protection keys), the configuration (THP), or a change whose release is known only
# to lie between two.
OTHER = {"write_implies_read", "thp", "merge_into_null_anon_vma", "exec_only_readable",
         "mprotect_uncharges", "no_swap", "mthp_orders", "disk_ra_pages",
         "exec_readahead",  # 6.18+, but probed only where tmpfile's files can be made
         "ext4_zeroes_old_eof",  # 6.13+ and stable backports, probed likewise
         "madv_collapse",  # 6.1+, and only with THP
         "huge_zero_page",  # a sysfs setting (use_zero_page)
         "huge_zero_wp_thp"}  # 6.13+, probed only where the PMD size is on


@pytest.mark.parametrize(("feature", "since"), SINCE)
def test_probe_matches_release(feature: str, since: tuple[int, int]) -> None:
    assert getattr(probe(), feature) is (release() >= since)


def test_probe_covers_every_feature_and_leaves_no_mapping() -> None:
    assert {f for f, _ in SINCE} | OTHER | {"release"} == set(Features().as_dict())
    with open("/proc/self/maps") as f:
        before = f.read()
    probe.cache_clear()
    features = probe()
    with open("/proc/self/maps") as f:
        after = f.read()
    assert features.release == os.uname().release
    assert len(after.splitlines()) <= len(before.splitlines())


def test_probe_on_x86() -> None:
    assert os.uname().machine == "x86_64"
    thp = os.path.exists("/sys/kernel/mm/transparent_hugepage")
    assert (probe().write_implies_read, probe().thp) == (True, thp)
    if release() >= (6, 18):  # 6.1 (UML) does not merge; 6.18 does
        assert probe().merge_into_null_anon_vma and probe().mprotect_uncharges


def test_no_swap_follows_proc_swaps() -> None:
    """MADV_PAGEOUT's model needs to know whether reclaim can write anonymous pages out:
    the probe agrees with /proc/swaps (a header line, then one line per swap area)."""
    with open("/proc/swaps") as f:
        areas = f.read().splitlines()[1:]
    assert probe().no_swap is (not areas)


def test_exec_only_pkey_follows_the_cpu() -> None:
    """x86 gives PROT_EXEC-only mappings the execute-only pkey where the kernel
    enabled protection keys (X86_FEATURE_OSPKE: `ospke` in /proc/cpuinfo)."""
    with open("/proc/cpuinfo") as f:
        ospke = "ospke" in f.read().split()
    assert probe().exec_only_readable is not ospke


def test_summary_names_what_is_missing() -> None:
    old = Features(release="5.10", pagemap_scan=False, mremap_multi_vma_move=False)
    assert old.summary() == "5.10 (without pagemap_scan, mremap_multi_vma_move)"
    assert NEWEST.summary() == "unknown"
    assert Features(release="6.18", disk_ra_pages=0).summary() == "6.18 (without disk files)"


def test_files_problem_names_what_the_model_does_not_follow(tmp_path: Path) -> None:
    """tmpfile's directory must be on ext4 with enough readahead (§21): /dev/shm is
    tmpfs, a missing path says so, and the probe's own directory passes where the
    machine has one (then disk_ra_pages is its disk's readahead in pages)."""
    assert "not on ext4" in files_problem("/dev/shm")
    assert "No such file" in files_problem(str(tmp_path / "missing"))
    directory = files_dir()
    if directory:
        assert files_problem(directory) == ""
        assert probe().disk_ra_pages == read_ahead_kb(os.stat(directory).st_dev) // 4 >= 128
    else:
        assert probe().disk_ra_pages == 0


def test_thp_probe_puts_the_setting_back() -> None:
    """The PR_THP_DISABLE_EXCEPT_ADVISED probe sets it on this process and restores it:
    PR_GET_THP_DISABLE reads what it read before (0 here: THP as the system says)."""
    import ctypes
    libc = ctypes.CDLL(None)
    before = libc.prctl(42, 0, 0, 0, 0)  # PR_GET_THP_DISABLE
    probe.cache_clear()
    probe()
    assert libc.prctl(42, 0, 0, 0, 0) == before


@pytest.mark.parametrize(("top", "sizes", "want"), [
    ("madvise", {64: "never", 2048: "inherit"}, 0),  # this host's defaults
    ("madvise", {64: "madvise", 2048: "inherit"}, 1 << 4),
    ("never", {16: "inherit", 32: "always", 64: "madvise"}, 1 << 3 | 1 << 4),
    ("always", {16: "inherit", 128: "never", 256: "madvise"}, 1 << 2 | 1 << 6),
    ("madvise", {512: "madvise", 1024: "always", 2048: "always"}, 0),  # larger than the arena
    ("always", {8: "always"}, 0),  # order 1 is no anonymous order
])
def test_mthp_orders_from_sysfs(top: str, sizes: dict[int, str], want: int) -> None:
    assert mthp_orders(top, sizes, arena_pages=64) == want


@pytest.mark.parametrize(("top", "sizes", "want"), [
    ("never", {8: "never", 64: "never", 2048: "inherit"}, False),  # this host's defaults
    ("deny", {64: "inherit"}, False),  # deny: no shmem THP at all, inherit follows it
    ("advise", {64: "never", 2048: "inherit"}, True),  # PMD for advised VMAs
    ("within_size", {64: "never"}, True),
    ("force", {64: "never"}, True),
    ("never", {16: "advise"}, True),  # one size for advised VMAs
    ("never", {64: "always"}, True),
    ("never", {32: "within_size"}, True),
    ("never", {4096: "always"}, True),  # conservative: any size, even past the arena
])
def test_shmem_thp_from_sysfs(top: str, sizes: dict[int, str], want: bool) -> None:
    """Where a VM_HUGEPAGE shmem VMA could get a large folio, which the model lacks:
    then the executor keeps THP off everywhere (shmem_allowable_huge_orders)."""
    assert shmem_thp(top, sizes) == want


def test_mthp_orders_follow_sysfs() -> None:
    path = "/sys/kernel/mm/transparent_hugepage"
    if not os.path.exists(path) or not probe().thp_except_advised:
        assert probe().mthp_orders == 0
        return
    probe.cache_clear()
    want = 0
    with open(f"{path}/enabled") as f:
        top = f.read().split("[")[1].split("]")[0]
    for name in os.listdir(path):
        if name.startswith("hugepages-") and os.path.exists(f"{path}/{name}/enabled"):
            with open(f"{path}/{name}/enabled") as f:
                setting = f.read().split("[")[1].split("]")[0]
            kb = int(name[len("hugepages-"):-2])
            if kb <= 256 and (setting in ("always", "madvise")
                              or (setting == "inherit" and top != "never")):
                want |= 1 << (kb // 4).bit_length() - 1
    assert probe().mthp_orders == want
