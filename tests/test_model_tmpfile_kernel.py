"""The tmpfile table of `test_model_tmpfile.py`, run on the real kernel (docs/SEMANTICS.md
§21).

As in `test_model_kernel.py`: a case passes when no step diverges from the model and
the kernel's own results and final arena match the table. The rows need a directory on
ext4 with enough readahead (`probe.files_dir`); on a machine without one only the
ENOENT row runs. Below the table, what only the kernel shows: smaps naming the file.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fuzzer.check import Report
from fuzzer.observe.probe import files_dir
from fuzzer.trace import Supervisor
from tests.tables import Case, check_kernel, kernel_params, two_files_mapped
from tests.test_model_tmpfile import ROWS

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("c", kernel_params(ROWS))
def test_tmpfile_on_kernel(c: Case, run_text: Callable[[str], Report]) -> None:
    check_kernel(c, run_text)


def test_smaps_names_the_tmpfile(supervisor: Supervisor) -> None:
    """smaps names an O_TMPFILE file `DIR/#INODE (deleted)`; two files, two inodes, and a
    shared and a private mapping of one show the same inode."""
    directory = files_dir()
    if not directory:
        pytest.skip("no directory for tmpfile's files on this machine (probe.files_problem)")
    vmas = two_files_mapped(supervisor, "tmpfile()")
    assert [v.perms for v in vmas] == ["r--s", "r--p", "r--s"]
    for v in vmas:
        assert v.name == f"{directory}/#{v.inode} (deleted)", v.name
    assert vmas[0].inode == vmas[1].inode != vmas[2].inode
