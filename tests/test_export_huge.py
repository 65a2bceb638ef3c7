"""The C reproducer in the huge arena (MMFUZZ_ARENA=huge): it turns THP on as the executor
has it there (c/thp.h: on in MADV_HUGEPAGE VMAs, at 2 MiB alone) and its model expects PMDs.

Skipped in the 64-page arena: `tests/test_huge_arena.py` runs this file with the variable
set. Each case compiles the C, runs it on this kernel, and holds it to its exit code.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fuzzer.observe.probe import probe
from fuzzer.prog import ARENA, parse
from fuzzer.prog.arena import HUGE_PAGES
from fuzzer.reduce.finding import Finding
from tests.test_export import _build
from tests.test_model_mthp_kernel import mthp_sizes

pytestmark = [
    pytest.mark.skipif(ARENA.pages < HUGE_PAGES, reason="the huge arena's: tests/"
                       "test_huge_arena.py runs them with MMFUZZ_ARENA=huge"),
    pytest.mark.kernel,
]
MMFUZZ = Path(sys.executable).with_name("mmfuzz")
RW, AP = "PROT_READ|PROT_WRITE", "MAP_PRIVATE|MAP_ANONYMOUS"
HUGE = f"""
mmap(@0, 512p, {RW}, {AP}, -1, 0)
madvise(@0, 512p, MADV_HUGEPAGE)
touch(@7, write)
mlock(@0, 512p)
"""
SPLITS = "rss: mlock left AnonHugePages different from the huge pages PMDs map"


def _run(tmp: Path, text: str, title: str, kind: str,
         *wrap: str) -> subprocess.CompletedProcess[str]:
    program = parse(text)
    binary = _build(tmp, Finding(program, len(program) - 1, title, kind))
    return subprocess.run([*wrap, str(binary)], capture_output=True, text=True, timeout=60)


@pytest.fixture(autouse=True)
def _pmd_size_alone() -> object:
    """hugepages-2048kB on for advised ranges, every other size off, for each case."""
    if not probe().thp_except_advised:
        pytest.skip("no PR_THP_DISABLE_EXCEPT_ADVISED (6.18+)")
    with mthp_sizes(1 << 9):
        if probe().mthp_orders != 1 << 9:
            pytest.skip(f"cannot set the PMD size alone (mTHP orders {probe().mthp_orders:#x})")
        yield


def test_c_sees_the_huge_page_the_model_expects(tmp_path: Path) -> None:
    proc = _run(tmp_path, HUGE, SPLITS, "rss")
    assert proc.returncode == 0, proc.stdout
    assert "AnonHugePages 2048 kB" in proc.stdout.splitlines()[0]  # expected
    assert "AnonHugePages 2048 kB" in proc.stdout.splitlines()[1]  # observed


def test_c_sees_a_split_that_leaves_every_page(tmp_path: Path) -> None:
    """Under the injection that splits the PMD at the mlock, only AnonHugePages differs."""
    proc = _run(tmp_path, HUGE, SPLITS, "rss",
                str(MMFUZZ), "inject", "--inject", "huge-mlock-splits-pmd", "--")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"reproduced: {SPLITS}" in proc.stdout


def test_c_refuses_a_machine_with_another_thp_size(tmp_path: Path) -> None:
    with mthp_sizes(1 << 9 | 1 << 4):
        proc = _run(tmp_path, HUGE, SPLITS, "rss")
    assert proc.returncode == 2, proc.stdout
    assert "needs hugepages-64kB never" in proc.stdout


def test_c_reproduces_the_collapse_wrap(tmp_path: Path) -> None:
    """README Findings: MADV_COLLAPSE of a range inside a region, starting past its first
    page, is EINVAL on 6.18.44 (fixed upstream); a fixed kernel fails this case."""
    text = f"""
mmap(@0, 1024p, {RW}, {AP}, -1, 0)
madvise(@0, 1024p, MADV_HUGEPAGE)
touch(@3, write)
madvise(@4, 4p, MADV_COLLAPSE)
"""
    proc = _run(tmp_path, text, "result: madvise(COLLAPSE) returned -EINVAL instead of 0",
                "result")
    assert proc.returncode == 1, proc.stdout
    assert "observed: -EINVAL" in proc.stdout
