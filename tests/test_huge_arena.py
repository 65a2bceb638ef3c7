"""The huge arena's tables, in a pytest of their own with MMFUZZ_ARENA=huge.

The arena is bound when `fuzzer.prog.program` is first imported (fuzzer/prog/arena.py),
so this process, in the 64-page arena, cannot run them: it starts one that can, on the
PMD table (`test_model_pmd.py`), its kernel twin, the injections and the C reproducers
(`test_export_huge.py`), and holds it to having run every row (a skip there, other than
the twin's rows for another machine, is a failure here).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fuzzer.prog.arena import SIZE_ENV

ROOT = Path(__file__).resolve().parent.parent


def _pytest_huge(*files: str) -> tuple[int, dict[str, int], str]:
    """Run pytest on `files` with MMFUZZ_ARENA=huge: its exit code, its tally ("passed":
    n, ...) and its output."""
    env = {**os.environ, SIZE_ENV: "huge"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-rs", *files], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=1200)
    tally = {word: int(n) for n, word in
             re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed)", proc.stdout)}
    return proc.returncode, tally, proc.stdout + proc.stderr


def _first_reason(out: str) -> str:
    """The first skip reason in pytest -rs output."""
    m = re.search(r"^SKIPPED \[\d+\] [^:]+:\d+: (.*)$", out, re.M)
    return m[1] if m else "(no reason given)"


def test_pmd_rows_in_the_huge_arena() -> None:
    from tests.test_model_pmd import CASES

    rc, tally, out = _pytest_huge("tests/test_model_pmd.py")
    assert rc == 0, out[-4000:]
    assert tally.get("skipped", 0) == 0, out[-4000:]
    assert tally["passed"] >= len(CASES) + 1, out[-4000:]


@pytest.mark.kernel
def test_pmd_rows_on_the_kernel_in_the_huge_arena() -> None:
    from tests.test_model_pmd import CASES

    rc, tally, out = _pytest_huge("tests/test_model_pmd_kernel.py")
    assert rc == 0, out[-4000:]
    if not tally.get("passed"):  # every row skipped: this kernel or machine has no PMD THP
        pytest.skip(f"every row skipped in the huge arena: {_first_reason(out)}")
    # a row for a machine other than this one is skipped with its reason (-rs shows it)
    assert tally.get("passed", 0) + tally.get("skipped", 0) >= len(CASES), out[-4000:]
    assert tally.get("passed", 0) >= len(CASES) // 2, out[-4000:]


@pytest.mark.kernel
def test_pmd_injections_are_detected_in_the_huge_arena() -> None:
    from tests.test_inject import HUGE_CASES

    ids = [f"tests/test_inject.py::test_injection_is_detected[{name}]" for name in HUGE_CASES]
    rc, tally, out = _pytest_huge(*sorted(ids))
    assert rc == 0, out[-4000:]
    if not tally.get("passed"):
        pytest.skip(f"every case skipped in the huge arena: {_first_reason(out)}")
    assert tally.get("passed") == len(HUGE_CASES), out[-4000:]


@pytest.mark.kernel
def test_c_reproducers_in_the_huge_arena() -> None:
    rc, tally, out = _pytest_huge("tests/test_export_huge.py")
    assert rc == 0, out[-4000:]
    if not tally.get("passed"):
        pytest.skip(f"every case skipped in the huge arena: {_first_reason(out)}")
    assert tally.get("passed") == 4, out[-4000:]
