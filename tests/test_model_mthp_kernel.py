"""The mTHP table of `test_model_mthp.py`, run on the real kernel.

Each row names the mTHP orders it is written for (`Features.mthp_orders`). For the
row, every size of its orders gets hugepages-<N>kB/enabled "madvise", and its old
setting back afterwards, whatever happens (the top-level setting is never touched);
the probe is asked again both times, so the model is told what the kernel does. A
row with no orders runs as the host is. Skipped, with the reason, on a kernel without
PR_THP_DISABLE_EXCEPT_ADVISED (before 6.18: the executor disables THP completely),
without the sysfs files, or with other sizes enabled than the row's.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fuzzer.check import Report, check
from fuzzer.executor import executor_path
from fuzzer.model.features import mthp_sizes_kb
from fuzzer.observe.probe import probe
from fuzzer.prog import parse
from fuzzer.trace import Supervisor
from tests.tables import Case, check_kernel, model_params
from tests.test_model_mthp import ROWS

pytestmark = pytest.mark.kernel

THP = Path("/sys/kernel/mm/transparent_hugepage")


def _selected(path: Path) -> str:
    text = path.read_text()
    return text[text.index("[") + 1:text.index("]")]


@contextmanager
def _sizes_set(kbs: list[int], name: str, value: str) -> Iterator[None]:
    """hugepages-<kb>kB/`name` of each size set to `value` for the block, then put back
    (the probe asked again both times); skipped where a file is missing or read-only."""
    paths = [THP / f"hugepages-{kb}kB" / name for kb in kbs]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        pytest.skip(f"no {', '.join(missing)}: this kernel has no such mTHP setting")
    if paths and not os.access(paths[0], os.W_OK):
        pytest.skip("the mTHP sysfs settings are not writable here (not root)")
    old: dict[Path, str] = {}
    try:
        for path in paths:
            old[path] = _selected(path)
            path.write_text(value)
        probe.cache_clear()
        yield
    finally:
        for path, setting in old.items():
            path.write_text(setting)
        probe.cache_clear()


def mthp_sizes(orders: int) -> contextlib.AbstractContextManager[None]:
    """The anonymous sizes of `orders` set to "madvise" for the block, then put back."""
    return _sizes_set(mthp_sizes_kb(orders), "enabled", "madvise")


@pytest.mark.parametrize("c", model_params(ROWS))
def test_mthp_on_kernel(c: Case, run_text: Callable[[str], Report]) -> None:
    orders = int(dict(c.features).get("mthp_orders", 0))
    if orders and not probe().thp_except_advised:
        pytest.skip("no PR_THP_DISABLE_EXCEPT_ADVISED (6.18+): the executor disables THP")
    with mthp_sizes(orders):
        have = probe().mthp_orders
        if have != orders:
            pytest.skip(f"the row is for mTHP sizes {mthp_sizes_kb(orders)} kB; this "
                        f"machine has {mthp_sizes_kb(have)} kB enabled")
        check_kernel(c, run_text)


def test_sizes_are_put_back() -> None:
    """After the rows, every size is as it was (the fixture restores it even on failure)."""
    path = THP / "hugepages-64kB" / "enabled"
    if not path.exists() or not os.access(path, os.W_OK):
        pytest.skip("no writable hugepages-64kB setting")
    before = _selected(path)
    with mthp_sizes(1 << 4):
        assert _selected(path) == "madvise"
    assert _selected(path) == before


def test_steps_say_when_a_large_folio_was_mapped(run_text: Callable[[str], Report]) -> None:
    """check/program.py tells each step whether the model mapped a large folio in it, which
    `mmfuzz stats ops` counts as (call, "folio", "mTHP")."""
    with mthp_sizes(1 << 4):
        if not probe().mthp_orders:
            pytest.skip("no mTHP here (a kernel before 6.18, or no hugepages-64kB)")
        report = run_text("""
            mmap(@16, 32p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
            madvise(@16, 32p, MADV_HUGEPAGE)
            touch(@20, write)
            touch(@21, write)
            madvise(@40, 1p, MADV_POPULATE_WRITE)
            """)
    assert report.divergences == []
    assert [s.large_folios for s in report.steps] == [0, 0, 1, 0, 1]


def test_a_shmem_mthp_setting_keeps_thp_off(tmp_path: Path) -> None:
    """With a shmem mTHP size on for advised VMAs, a VM_HUGEPAGE memfd mapping could get a
    large shmem folio, which the model has no rule for: the probe then says the executor
    keeps THP off everywhere (no anonymous mTHP either), and a fork server started then
    does so: a write in an advised private anonymous VMA maps one page, as the model says."""
    if not probe().thp_except_advised:
        pytest.skip("the executor disables THP here already (before 6.18, or shmem mTHP on)")
    with mthp_sizes(1 << 4), _sizes_set([64], "shmem_enabled", "advise"):
        features = probe()
        assert not features.thp_except_advised and features.mthp_orders == 0
        with Supervisor(executor_path(), budget=10.0) as supervisor:
            report = check(supervisor, parse("""
                mmap(@16, 32p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)
                madvise(@16, 32p, MADV_HUGEPAGE)
                touch(@20, write)
                memfd_create()
                ftruncate(0, 32p)
                mmap(@0, 16p, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_FIXED, 0, 0)
                madvise(@0, 16p, MADV_HUGEPAGE)
                touch(@4, write)
                """))
    assert report.divergences == []
    assert sum(s.large_folios for s in report.steps) == 0
    assert report.snapshot is not None
    present = [i for i, w in enumerate(report.snapshot.pagemap) if w >> 63]
    assert present == [4, 20]
