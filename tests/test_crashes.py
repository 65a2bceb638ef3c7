"""crashes/ stays true: its repro.c files are what `export` writes today.

Each folder's minimized.prog is the source (the program with the header
prog_text writes: title, kind, diverging step, expected and observed); its
repro.c is generated from it. This test regenerates both from minimized.prog
and compares; after a change to the exporter, `pytest tests/test_crashes.py
--regen-golden` rewrites them (review `git diff crashes/`). Folders a campaign
wrote there (`<title>-<bucket id>/`) are checked the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fuzzer.reduce.csource import c_source
from fuzzer.reduce.export import prog_text, read_prog
from fuzzer.reduce.finding import ExportError

CRASHES = Path(__file__).parent.parent / "crashes"
FOLDERS = sorted(p.parent for p in CRASHES.glob("*/minimized.prog"))


def test_there_are_committed_reproducers() -> None:
    assert FOLDERS, f"no {CRASHES}/*/minimized.prog"


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_folder_is_what_export_writes(folder: Path,
                                      golden: Callable[[Path, str], None]) -> None:
    source = folder / "minimized.prog"
    finding, bucket_id = read_prog(source.read_text(), str(source))
    golden(source, prog_text(finding, bucket_id))
    golden(folder / "repro.c", c_source(finding, bucket_id))


def test_read_prog_reads_what_prog_text_writes() -> None:
    text = ("# bucket #3: lock: mlock left pages unlocked\n"
            "# kind lock, diverging at step 1: mlock(@0, 1p)\n"
            "# expected: @0 rw-p lo A\n# observed: @0 rw-p A\n"
            "mmap(@0, 1p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n"
            "mlock(@0, 1p)\n")
    finding, bucket_id = read_prog(text, "x.prog")
    assert bucket_id == 3 and prog_text(finding, bucket_id) == text
    assert (finding.kind, finding.step, finding.observed) == ("lock", 1, "@0 rw-p A")
    with pytest.raises(ExportError, match=r"x\.prog: no `# TITLE`"):
        read_prog("mlock(@0, 1p)\n", "x.prog")
