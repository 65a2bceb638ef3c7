"""The memfd table of `test_model_memfd.py`, run on the real kernel.

As in `test_model_kernel.py`: a case passes when no step diverges from the
model and the kernel's own results, final arena and VmLck match the table.
Below the table, what only the kernel can show: the page cache itself, read
with mincore through a shared mapping, and smaps naming the memfd.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fuzzer.check import Report
from fuzzer.trace import Supervisor
from tests.tables import Case, check_kernel, kernel_params, two_files_mapped
from tests.test_model_memfd import ROWS

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("c", kernel_params(ROWS))
def test_memfd_on_kernel(c: Case, run_text: Callable[[str], Report]) -> None:
    check_kernel(c, run_text)


def test_smaps_names_the_memfd(supervisor: Supervisor) -> None:
    """smaps shows `/memfd:mmfuzz (deleted)` with the memfd's inode for shared and
    private mappings alike, `s` and `p` in the permissions; two memfds, two inodes."""
    vmas = two_files_mapped(supervisor, "memfd_create()")
    assert [v.perms for v in vmas] == ["r--s", "r--p", "r--s"]
    assert {v.name for v in vmas} == {"/memfd:mmfuzz (deleted)"}
    assert vmas[0].inode == vmas[1].inode != vmas[2].inode
    assert vmas[0].inode != 0
